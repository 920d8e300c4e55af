"""Stand-in executables for the engine tests (nothing is built): ``buildah``, ``docker``, ``debootstrap``.

Each writes its arguments, one call per line (JSON list), to ``$FAKE_LOG``. ``buildah bud`` prints stage lines
as buildah does (``[1/3] STEP 1/2: FROM ... AS name``), fills ``--output type=local,dest=DIR`` with a proof's
files, and fails like a RUN step when ``$FAKE_FAIL`` is set (printing that text first). ``buildah inspect``
succeeds (the base image "exists"). ``docker info`` answers when ``$FAKE_DOCKER_UP`` is set.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path
from typing import List

BUILDAH = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(["buildah"] + args) + "\\n")
    while args[:1] == ["--storage-driver"]:  # buildah's global options come before the command
        args = args[2:]
    if args and args[0] in ("bud", "build"):
        target = args[args.index("--target") + 1] if "--target" in args else "last"
        for i, name in enumerate(["base", "inputs", target], 1):
            print(f"[{{i}}/3] STEP 1/2: FROM parent AS {{name}}", flush=True)
            print(f"[{{i}}/3] STEP 2/2: RUN true", flush=True)
        if os.environ.get("FAKE_FAIL"):
            print(os.environ["FAKE_FAIL"], flush=True)
            print("error building at STEP \\"RUN python3 preflight.py\\": exit status 1", flush=True)
            sys.exit(1)
        out = [a for a in args if a.startswith("type=local,dest=")]
        if out:
            dest = out[0].split("dest=", 1)[1]
            for rel, data in (("host/nnapi_probe", "ELF"), ("models/m.tflite", "TFL3"),
                              ("models/manifest.json", "{{}}"), ("report/report.md", "# report\\n"),
                              ("report/report.json", "{{}}")):
                path = os.path.join(dest, rel)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as f:
                    f.write(data)
        print("0123456789abcdef" * 4)
    sys.exit(0)
    """)

DOCKER = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(["docker"] + args) + "\\n")
    if args[:1] == ["info"]:
        sys.exit(0 if os.environ.get("FAKE_DOCKER_UP") else 1)
    out = [a for a in args if a.startswith("type=local,dest=")]
    if out:
        dest = out[0].split("dest=", 1)[1]
        os.makedirs(os.path.join(dest, "report"), exist_ok=True)
        with open(os.path.join(dest, "report", "report.md"), "w") as f:
            f.write("# report\\n")
    sys.exit(0)
    """)

SIMPLE = textwrap.dedent("""\
    #!{python}
    import json, os, sys
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps([os.path.basename(sys.argv[0])] + sys.argv[1:]) + "\\n")
    """)


def fake_bin(directory: Path, *names: str) -> Path:
    """Write the named stand-ins into ``directory`` (made if needed); returns it."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = {"buildah": BUILDAH, "docker": DOCKER}
    for name in names:
        path = directory / name
        path.write_text(texts.get(name, SIMPLE).format(python=sys.executable))
        path.chmod(0o755)
    return directory


def calls(log: Path) -> List[List[str]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


#: The system tools the ci scripts use besides the engines (linked into a directory of their own, so that a
#: real buildah or docker in /usr/bin is not on the test's PATH).
TOOLS = (
    "bash",
    "sh",
    "env",
    "cat",
    "date",
    "dirname",
    "basename",
    "mkdir",
    "rm",
    "cp",
    "ls",
    "id",
    "df",
    "tail",
    "head",
    "tr",
    "cut",
    "awk",
    "find",
    "sort",
    "sha256sum",
    "printf",
    "grep",
    "sed",
    "mktemp",
    "git",
    "uname",
    "readlink",
    "true",
    "false",
    "test",
    "ln",
    "wc",
)


def env_with(bin_dir: Path, log: Path, **extra: str) -> dict:
    """The environment for a script run: ``bin_dir`` and links to the basic system tools on PATH (no real
    buildah, docker or debootstrap), the log, and ``extra``."""
    import shutil

    system = Path(bin_dir).parent / "system-bin"
    system.mkdir(exist_ok=True)
    for tool in TOOLS:
        found = shutil.which(tool)
        if found and not (system / tool).exists():
            (system / tool).symlink_to(found)
    drop = (
        "DOCKER_HOST",
        "BUILDAH_ISOLATION",
        "STORAGE_DRIVER",
        "ENGINE",
        "TF_DIR",
        "MODELS_DIR",
        "WEIGHTS_DIR",
        "TARGET",
        "OUT",
        "EXTRA_BUILD_ARGS",
    )
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PATH=os.pathsep.join([str(bin_dir), str(system)]), FAKE_LOG=str(log), **extra)
    return env
