#!/usr/bin/env python3
"""Build docker/Dockerfile with the docker SDK; see `python tools/build_image.py --help`."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from deeplab_nnapi.cli.build_image import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
