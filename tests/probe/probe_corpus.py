"""The differential corpus with the reference material added: the published models, their Google-shaped
forms and what fix_model makes of those (a uniquely named module, importable from tests and benchmarks)."""

from __future__ import annotations

from pathlib import Path
from typing import List

from deeplab_nnapi.fixer.engine import fix_bytes
from deeplab_nnapi.probe.differential import Corpus, Entry
from reference_support import REFERENCE_MODELS, google_shaped


def reference_entries(models: List[Path] = REFERENCE_MODELS) -> List[Entry]:
    out: List[Entry] = []
    for path in models:
        data = path.read_bytes()
        google = google_shaped(data)
        out.append(Entry(f"reference:{path.stem}", "reference", path.name, data))
        out.append(Entry(f"google:{path.stem}", "google", f"{path.name}, Google-shaped", google))
        out.append(
            Entry(
                f"fixed:{path.stem}",
                "fixed",
                f"fix_model of {path.name}, Google-shaped",
                fix_bytes(google).data,
            )
        )
    return out


def full_corpus(seed: int = 1, scale: float = 1.0) -> Corpus:
    return Corpus.build(seed, scale, reference_entries())
