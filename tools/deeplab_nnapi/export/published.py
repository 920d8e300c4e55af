"""The published DeepLab v3 MobileNetV2 models as pinned weights: the container's default weight source.

Public API::

    from deeplab_nnapi.export.published import load_published, fetch_published
    table = load_published()                      # PublishedSet: repository, commit, the eight models
    got = fetch_published(Path("weights"), local_dir=None)   # downloaded (or copied) and sha256-checked
    [(m.name, m.quantization, path) for m, path in got]

The table is ``data/published_models.toml``: the repository, one commit, and per file its path, size and
sha256. The files come from ``local_dir`` when one is given (a build context without network; it must hold
every file), else from the repository's raw URL at the commit; either way it must have the pinned sha256, or
nothing is kept under its name (:class:`deeplab_nnapi.export.download.DownloadError`, exit 1).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import List, Optional, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.export.download import DownloadError, fetch
from deeplab_nnapi.fileio import sha256_file

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib  # type: ignore[no-redef]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
QUANTIZATIONS = ("qat", "dummy", "calibrated")


@dataclass(frozen=True)
class PublishedModel:
    path: str  # inside the repository
    sha256: str
    size: int
    quantization: Optional[str]  # None: the variant's own default

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class PublishedSet:
    repository: str
    commit: str
    url: str
    license: str
    models: Tuple[PublishedModel, ...]

    def url_of(self, model: PublishedModel) -> str:
        return self.url.format(repository=self.repository, commit=self.commit, path=model.path)

    @property
    def source(self) -> str:
        """``owner/name@commit``, as the report cites it."""
        return f"{self.repository}@{self.commit}"


def load_published(path: Optional[Path] = None) -> PublishedSet:
    """The table (default: the package's ``data/published_models.toml``), validated."""
    if path is None:
        text = resources.files("deeplab_nnapi").joinpath("data/published_models.toml").read_text("utf-8")
        where = "data/published_models.toml"
    else:
        text, where = Path(path).read_text(encoding="utf-8"), str(path)
    d = tomllib.loads(text)
    if d.get("schema") != 1:
        raise UsageError(f"{where}: schema {d.get('schema')!r}, expected 1")
    commit = str(d.get("commit", ""))
    if not _COMMIT.match(commit):
        raise UsageError(f"{where}: commit {commit!r} is not a full 40-hex commit id")
    models = []
    for i, m in enumerate(d.get("model", [])):
        sha, q = str(m.get("sha256", "")), m.get("quantization")
        if not _SHA256.match(sha):
            raise UsageError(f"{where}: model {i + 1} ({m.get('path')}): sha256 {sha!r} is not a sha256")
        if q is not None and q not in QUANTIZATIONS:
            raise UsageError(f"{where}: model {m.get('path')}: quantization {q!r} not in {QUANTIZATIONS}")
        models.append(PublishedModel(str(m["path"]), sha, int(m["size"]), q))
    names = [m.name for m in models]
    if not models or len(set(names)) != len(names):
        raise UsageError(f"{where}: needs models with distinct file names")
    return PublishedSet(str(d["repository"]), commit, str(d["url"]), str(d.get("license", "")), tuple(models))


def fetch_published(
    dest: Path,
    *,
    local_dir: Optional[Path] = None,
    table: Optional[PublishedSet] = None,
    progress=None,
) -> List[Tuple[PublishedModel, Path]]:
    """Every model of the table in ``dest`` under its file name, sha256-checked: copied from ``local_dir``
    when one is given (it must hold every file), else downloaded. Raises DownloadError (exit 1) on a missing
    or wrong file or a failed download."""
    table = table or load_published()
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda _msg: None)
    out = []
    for model in table.models:
        target = dest / model.name
        local = Path(local_dir) / model.name if local_dir is not None else None
        if local is not None:
            if not local.is_file():
                raise DownloadError(f"{local_dir}: no {model.name} (a local directory must hold all "
                                    f"{len(table.models)} files of {table.source})")
            got = sha256_file(local)
            if got != model.sha256:
                raise DownloadError(f"{local}: sha256 {got}, but {table.source} pins {model.sha256} "
                                    f"for {model.path}")
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(local, tmp)
            tmp.replace(target)
            say(f"{model.name}: from {local_dir} (sha256 {model.sha256[:12]} ok)")
        else:
            fetch(table.url_of(model), dest, model.sha256, filename=model.name)
            say(f"{model.name}: downloaded from {table.source} (sha256 {model.sha256[:12]} ok)")
        out.append((model, target))
    return out
