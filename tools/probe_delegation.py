#!/usr/bin/env python3
"""Build the real NNAPI delegate of a TF/LiteRT tree and probe models with it (see --help)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.probe_delegation import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
