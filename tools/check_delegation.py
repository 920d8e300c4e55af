#!/usr/bin/env python3
"""Predict how TFLite's NNAPI delegate partitions .tflite models; read benchmark_model profiles."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.check_delegation import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
