#!/usr/bin/env python3
"""Compare a DeepLab .tflite with a reference model tensor by tensor (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.compare_models import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
