#!/usr/bin/env python3
"""Apply deeplab-nnapi's patches to TensorFlow / tensorflow/models trees (see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.apply_patches import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
