#!/usr/bin/env python3
"""Draw segmentation overlays and partition diagrams of DeepLab models, with an HTML report."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.draw_pictures import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
