"""Build-time layout of the package (everything else is in pyproject.toml).

The library is ``tools/deeplab_nnapi``; the patch set lives at the top of the repository (``patches/``), where
a clone's tools read it. The wheel carries it inside the package as ``deeplab_nnapi/patches/``, mapped here
at build time (never copied in git), so that an installed ``deeplab-apply-patches`` finds it
(``deeplab_nnapi.resources.patches_dir``).

Every directory is a package here (namespace discovery), so data directories need no ``__init__.py`` and a
file of a listed kind added later under ``tools/deeplab_nnapi/`` or ``patches/`` ships without a change here.
"""

from setuptools import find_namespace_packages, setup

#: What the tools read at run time besides code: data tables, the patch set (patches, manifests, rule,
#: READMEs), C++ sources, build files and notes kept beside the code.
DATA = ["*.toml", "*.json", "*.txt", "*.md", "*.patch", "*.cc", "*.h", "BUILD"]

_SKIP = ["*__pycache__*"]
PACKAGES = find_namespace_packages("tools", include=["deeplab_nnapi", "deeplab_nnapi.*"], exclude=_SKIP)
PATCHES = ["deeplab_nnapi.patches"] + [
    f"deeplab_nnapi.patches.{p}" for p in find_namespace_packages("patches", exclude=_SKIP)
]

setup(
    packages=PACKAGES + PATCHES,
    package_dir={"": "tools", "deeplab_nnapi.patches": "patches"},
    package_data={"": DATA},
)
