"""Run TensorFlow 1.x code (tensorflow/models' DeepLab and slim) on TensorFlow 2.x + tf_slim.

The upstream code imports ``tensorflow`` expecting the 1.x API, ``tensorflow.contrib.{slim, framework,
layers, training, quantize}`` (gone in 2.x) and NumPy aliases such as ``np.int`` (gone in NumPy 1.24).
:class:`CompatLayer` loads the packages of a models tree (``deeplab``, ``nets``; see
``data/tf1compat.toml``) with an import function of their own, so that, in those modules only:

* ``import tensorflow as tf`` gives ``tf.compat.v1`` (plus ``tf.contrib`` and the real ``tf.compat``);
* ``tensorflow.contrib.*`` are stand-ins built from tf_slim (``contrib.slim`` -> ``tf_slim``,
  ``contrib.framework.arg_scope`` -> ``tf_slim.arg_scope``, ``contrib.training.HParams`` -> :class:`HParams`,
  ...); ``contrib.quantize`` imports but refuses to run (the QAT ranges are read by :mod:`.qat` instead);
* ``import numpy as np`` gives NumPy with the removed aliases (``np.int`` is ``int``, ...).

Nothing else in the process changes: ``sys.modules['tensorflow']`` and ``numpy`` stay the real modules, and
:meth:`CompatLayer.uninstall` removes the import hook, the loaded models-tree modules and the module
aliases again. Two process-wide settings cannot be scoped this way and are the caller's job (the export
runs the DeepLab code in a child process for that reason, see :mod:`.deeplab_graph`): the environment of
:attr:`CompatLayer.environment` (``TF_USE_LEGACY_KERAS=1``, read when TensorFlow is imported) and absl's
global ``FLAGS``, which DeepLab's modules define on import.

The models tree is never written to: no bytecode is cached next to its sources.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from deeplab_nnapi.errors import UsageError

TABLE = Path(__file__).resolve().parents[1] / "data" / "tf1compat.toml"


class Tf1CompatError(RuntimeError):
    """The TF 1.x code used something that has no stand-in under TF 2.x."""


# ----------------------------------------------------------------------------------------------------
# the table


@dataclass(frozen=True)
class ContribSpec:
    name: str
    sources: Tuple[str, ...] = ()
    extra: Tuple[Tuple[str, str], ...] = ()
    missing: str = ""


@dataclass(frozen=True)
class CompatTable:
    packages: Dict[str, str]
    tf_base: str
    tf_attributes: Dict[str, str]
    contrib: Dict[str, ContribSpec]
    numpy_aliases: Dict[str, str]
    module_aliases: Dict[str, str]
    environment: Dict[str, str] = field(default_factory=dict)
    contrib_prefixes: Dict[str, str] = field(default_factory=dict)


def load_table(path: Union[str, Path, None] = None) -> CompatTable:
    p = Path(path) if path is not None else TABLE
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the TF1 compatibility table {p}: {exc}") from None
    if data.get("schema") != 1:
        raise UsageError(f"{p.name}: unsupported schema {data.get('schema')!r}")
    contrib = {}
    for name, raw in (data.get("contrib") or {}).items():
        if not name.startswith("tensorflow.contrib"):
            raise UsageError(f"{p.name}: contrib entry {name!r} is not under tensorflow.contrib")
        extra = tuple(sorted((raw.get("extra") or {}).items()))
        contrib[name] = ContribSpec(name, tuple(raw.get("from", ())), extra, raw.get("missing", ""))
    tf = data.get("tensorflow") or {}
    return CompatTable(
        packages=dict(data.get("packages") or {}), tf_base=tf.get("base", "tensorflow.compat.v1"),
        tf_attributes=dict(tf.get("attributes") or {}), contrib=contrib,
        numpy_aliases=dict(data.get("numpy_aliases") or {}),
        module_aliases=dict(data.get("module_aliases") or {}),
        environment={k: str(v) for k, v in (data.get("environment") or {}).items()},
        contrib_prefixes=dict(data.get("contrib_prefixes") or {}))


def _resolve(ref: str) -> Any:
    """``"module:attr"`` -> the object; a builtin name (``"int"``) -> that builtin."""
    if ":" not in ref:
        return getattr(builtins, ref)
    mod, _, attr = ref.partition(":")
    return getattr(importlib.import_module(mod), attr)


# ----------------------------------------------------------------------------------------------------
# stand-ins


class HParams:
    """The part of ``tf.contrib.training.HParams`` that model code uses: named values as attributes."""

    def __init__(self, hparam_def=None, model_structure=None, **kwargs):
        if hparam_def is not None:
            raise Tf1CompatError("HParams(hparam_def=...) (a protobuf) is not supported")
        self._names: List[str] = []
        for name, value in kwargs.items():
            self.add_hparam(name, value)

    def add_hparam(self, name: str, value) -> None:
        if name in self._names or name.startswith("_"):
            raise ValueError(f"hyperparameter name is reserved or already used: {name}")
        self._names.append(name)
        setattr(self, name, value)

    def set_hparam(self, name: str, value) -> None:
        if name not in self._names:
            raise ValueError(f"unknown hyperparameter {name}")
        setattr(self, name, value)

    def override_from_dict(self, values: Dict[str, Any]) -> HParams:
        for name, value in values.items():
            self.set_hparam(name, value)
        return self

    def values(self) -> Dict[str, Any]:
        return {n: getattr(self, n) for n in self._names}

    def get(self, key: str, default=None):
        return getattr(self, key) if key in self._names else default

    def __contains__(self, key: str) -> bool:
        return key in self._names

    def __repr__(self) -> str:
        return f"HParams({self.values()!r})"


def _refusing(qualname: str, why: str) -> Callable:
    def refuse(*_args, **_kwargs):
        raise Tf1CompatError(f"{qualname}: {why}")

    refuse.__name__ = qualname.rsplit(".", 1)[-1]
    return refuse


class ContribModule(types.ModuleType):
    """A ``tensorflow.contrib.*`` stand-in: child stand-ins, extras, then the names of its source modules."""

    def __init__(self, spec: ContribSpec):
        super().__init__(spec.name)
        self.__dict__["_spec"] = spec

    def __getattr__(self, attr: str):
        if attr.startswith("__"):
            raise AttributeError(attr)
        spec: ContribSpec = self.__dict__["_spec"]
        for key, ref in spec.extra:
            if key == attr:
                value = _resolve(ref)
                break
        else:
            for src in spec.sources:
                mod = importlib.import_module(src)
                if hasattr(mod, attr):
                    value = getattr(mod, attr)
                    break
            else:
                if spec.missing:
                    return _refusing(f"{spec.name}.{attr}", spec.missing)
                raise AttributeError(f"module {spec.name!r} has no attribute {attr!r}: no TF 2.x stand-in "
                                     f"(add it to deeplab_nnapi/data/tf1compat.toml)")
        self.__dict__[attr] = value
        return value


class Tf1View(types.ModuleType):
    """``tensorflow`` as TF 1.x code sees it: ``tf.compat.v1`` plus a few attributes of our own."""

    def __init__(self, base: types.ModuleType, attributes: Dict[str, Any]):
        super().__init__("tensorflow")
        self.__dict__.update(attributes)
        self.__dict__["_base"] = base

    def __getattr__(self, attr: str):
        return getattr(self.__dict__["_base"], attr)

    def __dir__(self):
        return sorted(set(dir(self.__dict__["_base"])) | set(self.__dict__))


class NumpyView(types.ModuleType):
    """``numpy`` with the aliases NumPy 1.24 removed."""

    def __init__(self, base: types.ModuleType, aliases: Dict[str, Any]):
        super().__init__("numpy")
        self.__dict__.update(aliases)
        self.__dict__["_base"] = base

    def __getattr__(self, attr: str):
        return getattr(self.__dict__["_base"], attr)


# ----------------------------------------------------------------------------------------------------
# loading the models tree's modules


class _Loader(importlib.machinery.SourceFileLoader):
    """Executes a models-tree module with the compatibility import; never writes bytecode there."""

    def __init__(self, fullname: str, path: str, module_builtins: dict):
        super().__init__(fullname, path)
        self._builtins = module_builtins

    def exec_module(self, module: types.ModuleType) -> None:
        module.__dict__["__builtins__"] = self._builtins
        super().exec_module(module)

    def set_data(self, path, data, *, _mode=0o666):  # the bytecode cache: not in the user's tree
        return None


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, roots: Dict[str, Path], module_builtins: dict):
        self.roots = roots
        self.module_builtins = module_builtins

    def find_spec(self, fullname, path=None, target=None):
        parts = fullname.split(".")
        base = self.roots.get(parts[0])
        if base is None:
            return None
        pkg_dir = base.joinpath(*parts)
        init = pkg_dir / "__init__.py"
        if init.is_file():
            origin, search = init, [str(pkg_dir)]
        else:
            origin, search = pkg_dir.parent / (parts[-1] + ".py"), None
            if not origin.is_file():
                return None
        loader = _Loader(fullname, str(origin), self.module_builtins)
        return importlib.util.spec_from_file_location(fullname, str(origin), loader=loader,
                                                      submodule_search_locations=search)


class CompatLayer:
    """Import hook for one models tree. Use as a context manager, or :meth:`install` / :meth:`uninstall`."""

    def __init__(self, tree: Union[str, Path], table: Optional[CompatTable] = None,
                 packages: Optional[Dict[str, str]] = None):
        self.tree = Path(tree).resolve()
        self.table = table or load_table()
        pkgs = packages if packages is not None else self.table.packages
        self.roots = {name: self.tree / rel for name, rel in pkgs.items()}
        self._finder: Optional[_Finder] = None
        self._aliases_added: List[str] = []
        self._real_import = builtins.__import__
        self.tf_view: Optional[Tf1View] = None
        self.np_view: Optional[NumpyView] = None
        self.contrib: Dict[str, ContribModule] = {}

    @property
    def environment(self) -> Dict[str, str]:
        """Environment variables the process must have before TensorFlow is imported."""
        return dict(self.table.environment)

    # -- install / uninstall --------------------------------------------------------------------------

    def install(self) -> CompatLayer:
        if self._finder is not None:
            return self
        import numpy

        tf_base = importlib.import_module(self.table.tf_base)
        self.contrib = self._contrib_modules()
        attrs = {}
        for attr, modname in self.table.tf_attributes.items():
            attrs[attr] = self.contrib.get(modname) or importlib.import_module(modname)
        self.tf_view = Tf1View(tf_base, attrs)
        self.np_view = NumpyView(numpy, {k: _resolve(v) for k, v in self.table.numpy_aliases.items()})
        for alias, real in self.table.module_aliases.items():
            if alias not in sys.modules:
                try:
                    sys.modules[alias] = importlib.import_module(real)
                except ImportError:
                    continue  # e.g. tf-keras not installed: tf_slim's batch_norm will say so when used
                self._aliases_added.append(alias)
        module_builtins = dict(vars(builtins))
        module_builtins["__import__"] = self._import
        self._finder = _Finder(self.roots, module_builtins)
        sys.meta_path.insert(0, self._finder)
        return self

    def uninstall(self) -> None:
        if self._finder is None:
            return
        if self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        for name, mod in list(sys.modules.items()):
            if isinstance(getattr(mod, "__loader__", None), _Loader) and name.split(".")[0] in self.roots:
                del sys.modules[name]
        for alias in self._aliases_added:
            sys.modules.pop(alias, None)
        self._aliases_added = []
        self._finder = None

    def __enter__(self) -> CompatLayer:
        return self.install()

    def __exit__(self, *exc) -> None:
        self.uninstall()

    def import_module(self, name: str) -> types.ModuleType:
        """Import a models-tree module (e.g. ``deeplab.model``) through the hook."""
        if self._finder is None:
            raise RuntimeError("CompatLayer.import_module() before install()")
        if name.split(".")[0] not in self.roots:
            raise ValueError(f"{name} is not in the models tree's packages ({', '.join(self.roots)})")
        return importlib.import_module(name)

    # -- internals -------------------------------------------------------------------------------------

    def _contrib_modules(self) -> Dict[str, ContribModule]:
        specs = dict(self.table.contrib)
        for name in list(specs):  # parents of every listed module exist (tensorflow.contrib.layers.python)
            parts = name.split(".")
            for i in range(2, len(parts)):
                parent = ".".join(parts[:i])
                specs.setdefault(parent, ContribSpec(parent))
        mods = {name: ContribModule(spec) for name, spec in specs.items()}
        for name, mod in mods.items():
            parent, _, leaf = name.rpartition(".")
            if parent in mods:
                mods[parent].__dict__[leaf] = mod
        return mods

    def _import(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0:
            for prefix, target in self.table.contrib_prefixes.items():
                if (name == prefix or name.startswith(prefix + ".")) and fromlist:
                    name = target + name[len(prefix):]
            top = name.partition(".")[0]
            if top == "tensorflow":
                if name == "tensorflow":
                    return self.tf_view
                if name.startswith("tensorflow.contrib"):
                    mod = self.contrib.get(name)
                    if mod is None:
                        raise ModuleNotFoundError(f"No module named {name!r}: no TF 2.x stand-in (add it to "
                                                  "deeplab_nnapi/data/tf1compat.toml)", name=name)
                    for attr in fromlist or ():
                        if attr != "*" and not hasattr(mod, attr):
                            raise ImportError(f"cannot import {attr!r} from {name!r}: no TF 2.x stand-in "
                                              "(add it to deeplab_nnapi/data/tf1compat.toml)", name=name)
                    return mod if fromlist else self.tf_view
                mod = self._real_import(name, globals, locals, fromlist, level)
                return mod if fromlist else self.tf_view
            if top == "numpy":
                mod = self._real_import(name, globals, locals, fromlist, level)
                return self.np_view if (name == "numpy" or not fromlist) else mod
        return self._real_import(name, globals, locals, fromlist, level)
