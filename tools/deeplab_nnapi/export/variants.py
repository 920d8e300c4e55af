"""The DeepLab variant table (``data/variants.toml``): load, validate, select by name.

Every rule about a variant (dataset, classes, crop, output stride, quantization, checkpoint, export flags,
converter settings) lives in the table; this module only parses and checks it. A new variant is one
``[[variant]]`` entry.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from deeplab_nnapi.errors import UsageError

DEFAULT_TABLE = Path(__file__).resolve().parents[1] / "data" / "variants.toml"

QUANTIZATION_MODES = ("qat", "dummy", "calibrated")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ConverterSettings:
    input_array: str = "MobilenetV2/MobilenetV2/input"
    output_array: str = "ArgMax"
    mean: float = 128.0
    std: float = 127.0
    default_ranges_min: float = 0.0
    default_ranges_max: float = 6.0
    # qat only: also give tensors without a FakeQuant range the default range (off: such tensors make
    # the converter leave float ops, which the verification then reports)
    qat_fallback_default_ranges: bool = False

    @property
    def default_ranges(self) -> Tuple[float, float]:
        return (self.default_ranges_min, self.default_ranges_max)

    def to_json(self) -> dict:
        return {
            "input_array": self.input_array,
            "output_array": self.output_array,
            "mean": self.mean,
            "std": self.std,
            "default_ranges": list(self.default_ranges),
            "qat_fallback_default_ranges": self.qat_fallback_default_ranges,
        }


@dataclass(frozen=True)
class Checkpoint:
    name: str
    url: str
    sha256: str  # "" = not pinned
    member_dir: str
    prefix: str = "model.ckpt"
    quantization_aware: bool = False

    @property
    def pinned(self) -> bool:
        return bool(self.sha256)

    @property
    def filename(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Variant:
    name: str
    dataset: str
    num_classes: int
    crop_size: int
    output_stride: int
    quantization: str
    checkpoint: Optional[Checkpoint]
    export_flags: Tuple[str, ...] = ()
    converter: ConverterSettings = field(default_factory=ConverterSettings)
    crop_width: Optional[int] = None  # None: square, crop_size x crop_size

    @property
    def crop(self) -> Tuple[int, int]:
        """(height, width) of the input."""
        return (self.crop_size, self.crop_width or self.crop_size)

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        return (1, *self.crop, 3)

    @property
    def output_shape(self) -> Tuple[int, int, int]:
        return (1, *self.crop)

    @property
    def crop_text(self) -> str:
        h, w = self.crop
        return str(h) if h == w else f"{h}x{w}"

    def with_quantization(self, mode: str) -> Variant:
        return replace(self, quantization=mode)

    def resized(self, crop: Optional[Tuple[int, int]] = None, output_stride: Optional[int] = None) -> Variant:
        """The same network at another crop (height, width) and/or output stride: the export flags follow,
        the name too (``..._<crop>_os<stride>...``, e.g. ``deeplabv3_mnv2_pascal_769_os16_quant``). The
        weights do not depend on either."""
        h, w = crop or self.crop
        stride = output_stride or self.output_stride
        where = f"variant {self.name} at {h}x{w} os{stride}"
        _check_crop(h, stride, where)
        _check_crop(w, stride, where)
        flags = [f for f in self.export_flags if f.split("=", 1)[0] not in ("--crop_size", "--output_stride")]
        flags += [f"--crop_size={h}", f"--crop_size={w}", f"--output_stride={stride}"]
        size = str(h) if h == w else f"{h}x{w}"
        name, n = _SIZE_IN_NAME.subn(f"_{size}_os{stride}", self.name, count=1)
        if not n:
            name = f"{self.name}_{size}_os{stride}"
        return replace(self, name=name, crop_size=h, crop_width=None if h == w else w, output_stride=stride,
                       export_flags=tuple(flags))


_SIZE_IN_NAME = re.compile(r"_\d+(?:x\d+)?_os\d+")


def _check_crop(size: int, stride: int, where: str) -> None:
    if stride not in (8, 16, 32):
        raise UsageError(f"{where}: output_stride must be 8, 16 or 32")
    if size < stride + 1 or (size - 1) % stride:
        raise UsageError(f"{where}: crop size {size} must be output_stride * k + 1 (e.g. 257, 513, 769)")


def parse_crop(text: str) -> Tuple[int, int]:
    """``"769"`` -> (769, 769); ``"1025x2049"`` -> (1025, 2049) (height x width)."""
    m = re.fullmatch(r"\s*(\d+)\s*(?:[x,]\s*(\d+)\s*)?", text or "")
    if not m:
        raise UsageError(f"--crop-size {text!r}: expected N or HxW (e.g. 769 or 1025x2049)")
    h = int(m.group(1))
    return (h, int(m.group(2)) if m.group(2) else h)


_FLOAT_KEYS = ("mean", "std", "default_ranges_min", "default_ranges_max")
_STR_KEYS = ("input_array", "output_array")
_BOOL_KEYS = ("qat_fallback_default_ranges",)


def _converter(raw: dict, base: ConverterSettings, where: str) -> ConverterSettings:
    unknown = set(raw) - set(_FLOAT_KEYS) - set(_STR_KEYS) - set(_BOOL_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown converter key(s): {', '.join(sorted(unknown))}")
    vals = {}
    for k in _STR_KEYS:
        if k in raw:
            if not isinstance(raw[k], str) or not raw[k]:
                raise UsageError(f"{where}: converter.{k} must be a non-empty string")
            vals[k] = raw[k]
    for k in _FLOAT_KEYS:
        if k in raw:
            if isinstance(raw[k], bool) or not isinstance(raw[k], (int, float)):
                raise UsageError(f"{where}: converter.{k} must be a number")
            vals[k] = float(raw[k])
    for k in _BOOL_KEYS:
        if k in raw:
            if not isinstance(raw[k], bool):
                raise UsageError(f"{where}: converter.{k} must be true or false")
            vals[k] = raw[k]
    out = replace(base, **vals)
    if out.std <= 0:
        raise UsageError(f"{where}: converter.std must be > 0")
    if out.default_ranges_min >= out.default_ranges_max:
        raise UsageError(f"{where}: converter.default_ranges_min must be < default_ranges_max")
    return out


def _req(d: dict, key: str, typ, where: str):
    if key not in d:
        raise UsageError(f"{where}: missing key {key!r}")
    val = d[key]
    if typ is int and (isinstance(val, bool) or not isinstance(val, int)):
        raise UsageError(f"{where}: {key} must be an integer")
    if typ is not int and not isinstance(val, typ):
        raise UsageError(f"{where}: {key} must be {typ.__name__}")
    return val


def parse_table(data: dict, source: str = "variants.toml") -> Dict[str, Variant]:
    """Validate a parsed table; return the variants by name, in table order."""
    if data.get("schema") != 1:
        raise UsageError(f"{source}: unsupported schema {data.get('schema')!r} (expected 1)")
    base = _converter(data.get("converter", {}), ConverterSettings(), f"{source} [converter]")
    checkpoints: Dict[str, Checkpoint] = {}
    for cname, raw in (data.get("checkpoint") or {}).items():
        where = f"{source} [checkpoint.{cname}]"
        url = _req(raw, "url", str, where)
        if not re.match(r"^(https?|file)://", url):
            raise UsageError(f"{where}: url must be http(s):// or file://")
        sha = _req(raw, "sha256", str, where).lower()
        if sha and not _SHA_RE.match(sha):
            raise UsageError(f"{where}: sha256 must be 64 hex digits or \"\" (not pinned)")
        checkpoints[cname] = Checkpoint(
            name=cname, url=url, sha256=sha, member_dir=_req(raw, "member_dir", str, where),
            prefix=raw.get("prefix", "model.ckpt"),
            quantization_aware=bool(raw.get("quantization_aware", False)))
    variants: Dict[str, Variant] = {}
    for i, raw in enumerate(data.get("variant") or []):
        where = f"{source} [[variant]] #{i + 1}"
        name = _req(raw, "name", str, where)
        where = f"{source} variant {name!r}"
        if not _NAME_RE.match(name):
            raise UsageError(f"{where}: name may hold only letters, digits, '_', '.', '-'")
        if name in variants:
            raise UsageError(f"{where}: duplicate name")
        unknown = set(raw) - {"name", "dataset", "num_classes", "crop_size", "output_stride",
                              "quantization", "checkpoint", "export_flags", "converter"}
        if unknown:
            raise UsageError(f"{where}: unknown key(s): {', '.join(sorted(unknown))}")
        num_classes = _req(raw, "num_classes", int, where)
        if not 2 <= num_classes <= 65535:
            raise UsageError(f"{where}: num_classes must be in 2..65535")
        crop = _req(raw, "crop_size", int, where)
        stride = _req(raw, "output_stride", int, where)
        if stride not in (8, 16, 32):
            raise UsageError(f"{where}: output_stride must be 8, 16 or 32")
        if crop < stride + 1 or (crop - 1) % stride:
            raise UsageError(f"{where}: crop_size must be output_stride * k + 1 (e.g. 257, 513)")
        quant = _req(raw, "quantization", str, where)
        if quant not in QUANTIZATION_MODES:
            raise UsageError(f"{where}: quantization must be one of {', '.join(QUANTIZATION_MODES)}")
        cname = _req(raw, "checkpoint", str, where)
        if cname not in checkpoints:
            raise UsageError(f"{where}: unknown checkpoint {cname!r}")
        ckpt = checkpoints[cname]
        if quant == "qat" and not ckpt.quantization_aware:
            raise UsageError(f"{where}: quantization 'qat' needs a quantization-aware checkpoint")
        flags = raw.get("export_flags", [])
        if not isinstance(flags, list) or not all(isinstance(f, str) and f.startswith("--") for f in flags):
            raise UsageError(f"{where}: export_flags must be a list of --flag strings")
        for reserved in ("--checkpoint_path", "--export_path"):
            if any(f.split("=", 1)[0] == reserved for f in flags):
                raise UsageError(f"{where}: export_flags must not set {reserved} (the exporter does)")
        # The flags must agree with the table's own fields (one source of truth for the model shape).
        _check_flag(flags, "--num_classes", [num_classes], where)
        _check_flag(flags, "--crop_size", [crop, crop], where)
        _check_flag(flags, "--output_stride", [stride], where, default=[8])
        if quant == "qat" and "--quantize_delay_step=0" not in flags:
            raise UsageError(f"{where}: a 'qat' variant must export with --quantize_delay_step=0")
        conv = _converter(raw.get("converter", {}), base, where)
        variants[name] = Variant(
            name=name, dataset=_req(raw, "dataset", str, where), num_classes=num_classes, crop_size=crop,
            output_stride=stride, quantization=quant, checkpoint=ckpt, export_flags=tuple(flags),
            converter=conv)
    if not variants:
        raise UsageError(f"{source}: no [[variant]] entries")
    return variants


def _check_flag(flags: Sequence[str], flag: str, expected: List[int], where: str,
                default: Optional[List[int]] = None) -> None:
    vals = [f.split("=", 1)[1] for f in flags if f.split("=", 1)[0] == flag and "=" in f]
    if not vals and default is not None:
        vals = [str(v) for v in default]
    try:
        got = [int(v) for v in vals]
    except ValueError:
        raise UsageError(f"{where}: {flag} must be an integer") from None
    if got != expected:
        raise UsageError(f"{where}: export_flags {flag} {got} disagree with the table ({expected})")


def load_variants(path: Union[str, Path, None] = None) -> Dict[str, Variant]:
    """Load and validate the variant table (default: the packaged ``data/variants.toml``)."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read variant table {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{p}: not valid TOML: {exc}") from None
    return parse_table(data, p.name)


def load_converter_defaults(path: Union[str, Path, None] = None) -> ConverterSettings:
    """The table's shared ``[converter]`` settings (used by ``--from-graph``)."""
    p = Path(path) if path is not None else DEFAULT_TABLE
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read variant table {p}: {exc}") from None
    return _converter(data.get("converter", {}), ConverterSettings(), f"{p.name} [converter]")


def select(variants: Dict[str, Variant], spec: Optional[str]) -> List[Variant]:
    """``None``/"all" -> every variant; else a comma-separated list of names (unknown -> exit 2)."""
    if spec is None or spec.strip() == "all":
        return list(variants.values())
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if not names:
        raise UsageError("--variants: empty list")
    unknown = [n for n in names if n not in variants]
    if unknown:
        raise UsageError(f"unknown variant(s) {', '.join(unknown)}; known: {', '.join(variants)}")
    seen: List[str] = []
    for n in names:
        if n not in seen:
            seen.append(n)
    return [variants[n] for n in seen]


def ad_hoc_variant(name: str, num_classes: int, input_size: int, quantization: str,
                   converter: Optional[ConverterSettings] = None) -> Variant:
    """A variant for ``--from-graph``: no checkpoint, no export flags."""
    if quantization not in QUANTIZATION_MODES:
        raise UsageError(f"--quantization must be one of {', '.join(QUANTIZATION_MODES)}")
    if not _NAME_RE.match(name):
        raise UsageError(f"--name {name!r}: only letters, digits, '_', '.', '-'")
    if not 2 <= num_classes <= 65535:
        raise UsageError("--num-classes must be in 2..65535")
    if input_size < 2:
        raise UsageError("--input-size must be >= 2")
    return Variant(name=name, dataset="custom", num_classes=num_classes, crop_size=input_size,
                   output_stride=0, quantization=quantization, checkpoint=None,
                   converter=converter or ConverterSettings())
