#!/usr/bin/env python3
"""Rewrite an existing .tflite so that the stock NNAPI delegate takes it whole, with exact rewrites only."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.fix_model import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
