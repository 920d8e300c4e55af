#!/usr/bin/env python3
"""Generate the tensorflow/models patches from patches/models/rule.toml (see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.generate_model_patches import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
