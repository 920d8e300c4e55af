#!/usr/bin/env python3
"""Export the DeepLab variants as verified single-partition uint8 TFLite models (see --help)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.export_models import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
