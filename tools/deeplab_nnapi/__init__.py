"""deeplab-nnapi: make DeepLab v3 (MobileNetV2) TFLite models run as one NNAPI delegate partition.

One module per concept; the command-line front ends live in :mod:`deeplab_nnapi.cli` and the
``tools/*.py`` scripts only call them.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.2.0"

#: Root of the source checkout (``tools/deeplab_nnapi/../..``).
REPO_ROOT = Path(__file__).resolve().parents[2]
