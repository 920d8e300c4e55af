"""The patch engine: for every tree given (TensorFlow first, then tensorflow/models) select, check and
apply/reverse/commit the patches, all or nothing.

1. **open** every tree, and repair what an interrupted earlier run left (:mod:`.journal`);
2. **validate** before any planning: the layout and version (:mod:`.layout`), the selected patch files
   (sha256, paths inside the tree; :mod:`.select`), the rule the models patches come from, where each
   touched path really is and that it can be read (the link policy, :mod:`.treefiles`), local changes
   in touched files (refused unless ``allow_dirty``; our own earlier result does not count);
3. **plan** every tree in a scratch workspace (:mod:`.planner`); a conflict stops the run with every tree
   unchanged; a status is claimed only with the evidence :mod:`.evidence` asks for;
4. **verify** (also with ``check``): every touched file is still what the plan was made from, and every
   file that changes can be replaced;
5. unless ``check``: **write** every tree through its journal, so that even a killed run leaves a state
   the next run repairs.

So a failing patch k of n leaves every tree byte-identical to how it started, and a second run finds
every patch already applied and changes nothing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching import journal, treefiles
from deeplab_nnapi.patching.gitops import ScratchIndex, Tree
from deeplab_nnapi.patching.layout import TreeLayout, detect
from deeplab_nnapi.patching.manifest import Manifest
from deeplab_nnapi.patching.planner import Planner, RunOptions, TreeJob
from deeplab_nnapi.patching.report import RunReport, TreeReport
from deeplab_nnapi.patching.select import LoadedPatch, group_paths, load_groups, select_for_tree
from deeplab_nnapi.patching.workspace import apply_keeping_line_ends

__all__ = ["run_jobs", "RunOptions", "TreeJob", "RunReport"]


def _foreign_changes(tree: Tree, groups: List[List[LoadedPatch]], rule, dirty: List[str]) -> List[str]:
    """The dirty entries that are not just our own change: a touched file whose content equals HEAD's with
    the patches applied (cleanly or by 3-way) or with the rule applied is ours, e.g. from an earlier run."""
    paths = group_paths(groups)
    scratch = ScratchIndex(tree, None)
    try:
        info = tree.head_index_info(paths)
        if info:
            tree.must("update-index", "--add", "--index-info", env=scratch.env, stdin=info.encode())
        head_text = {rel: scratch.content(rel) for rel in paths}
        for group in groups:
            for lp in group:
                if scratch.apply(lp.file).ok:
                    break
                if apply_keeping_line_ends(scratch, lp, ignore_whitespace=True).ok:
                    break
                if not tree.plain:
                    snap = scratch.snapshot()
                    if scratch.apply(lp.file, threeway=True).ok:
                        break
                    scratch.restore(snap)
        foreign = []
        for entry in dirty:
            rel = entry[3:]
            if " -> " in rel or rel.endswith(" (symlink)"):
                foreign.append(entry)
                continue
            got = tree.read_worktree(rel)
            if rule is not None and rule.file(rel) is not None and got is not None and head_text.get(rel):
                try:
                    if rule.file(rel).apply(head_text[rel]).text == got[0]:
                        continue
                except ValueError:
                    pass
            want = scratch.entry(rel)
            if got is None and want is None:
                continue
            if got is None or want is None or want[0] != got[1]:
                foreign.append(entry)
                continue
            sha = tree.must("hash-object", "--stdin", stdin=got[0]).out.strip()
            if sha != want[1]:
                foreign.append(entry)
        return foreign
    finally:
        scratch.close()


def _resolve_touched(tree: Tree, paths: List[str], opts: RunOptions, log) -> None:
    """Apply the link policy (:mod:`.treefiles`) to every touched path before anything is planned: a
    refused link, a directory, a folder the run cannot read is an error naming it (exit 2)."""
    seen = {}
    for rel in paths:
        res = tree.resolve(rel)
        if res is None:
            continue
        other = seen.get(res.ident)
        if other is not None:
            raise UsageError(
                f"{tree.path}: {other} and {rel} are the same file ({res.shown_real}); refused"
            )
        seen[res.ident] = rel
        tree.read_worktree(rel)  # a file the run cannot read is named now, before git calls it changed
        if res.linked and not res.inside and opts.commit:
            raise UsageError(
                f"{rel}: the symlink {res.chain()} leads outside the tree; --commit cannot record a file "
                "outside the repository; refused"
            )
        if res.linked:
            where = "inside the tree" if res.inside else "OUTSIDE the tree (--follow-symlinks)"
            log(f"{tree.path}: {rel}: symlink {res.chain()}, {where}: patched through it (that file is "
                "read and written, the link is kept)")
        elif res.nlink > 1:
            log(f"{tree.path}: {rel} has {res.nlink} hard links; it is replaced, the other names keep "
                "the old text")


def _require_models_tree(tree: Tree, paths: List[str]) -> None:
    """Bad input (exit 2), not a conflict: a --models-dir where no file any models patch touches exists."""
    if paths and not any(tree.resolve(rel) is not None for rel in paths):
        raise UsageError(
            f"--models-dir {tree.path}: none of the files the patches touch exists ({paths[0]}, ...); "
            "is this the top of a tensorflow/models tree?"
        )


def _refuse_plain_commit(tree: Tree) -> None:
    if tree.outer is not None:
        raise UsageError(
            f"{tree.path} is inside the git repository {tree.outer[0].working_tree_dir} but not "
            "at its top; --commit needs the tree to be a repository of its own"
        )
    raise UsageError(f"{tree.path} is not a git repository; --commit needs one")


def _where(tree: Tree) -> str:
    if not tree.plain:
        return ""
    if tree.outer is None:
        return " (plain directory, no git history)"
    return f" (inside {tree.outer[0].working_tree_dir}: patched as a plain directory)"


class _Prepared:
    def __init__(
        self, tree: Tree, job: TreeJob, layout: Optional[TreeLayout], loaded, rule, report: TreeReport
    ):
        self.tree, self.job, self.layout, self.loaded, self.rule, self.report = (
            tree,
            job,
            layout,
            loaded,
            rule,
            report,
        )


def _prepare(
    manifest: Manifest, job: TreeJob, tree: Tree, opts: RunOptions, workdir: Path, report: TreeReport
) -> _Prepared:
    layout = None
    if job.target == "tensorflow":
        layout = detect(tree.path, job.request)
        report.layout, report.version_source = layout.name, layout.version_source
        report.version = layout.shown_version
        groups = select_for_tree(manifest, job.target, layout.version, tree.path, layout.patch_layout)
        rule = None
    else:
        report.layout = "models"
        groups = select_for_tree(manifest, job.target, None, tree.path)
        rule = manifest.rule("models")
    loaded = load_groups(manifest, job.target, groups, tree.path, workdir)
    paths = group_paths(loaded)
    if rule is not None:
        paths = sorted(set(paths) | {f.path for f in rule.files})
    _resolve_touched(tree, paths, opts, opts.log or (lambda m: None))
    report.links = [r.to_json() for r in tree.resolved()]
    if job.target == "models":
        _require_models_tree(tree, paths)
    if opts.commit and tree.plain:
        _refuse_plain_commit(tree)
    dirty = tree.dirty(paths)
    if dirty and not opts.allow_dirty and not opts.commit:
        dirty = _foreign_changes(tree, loaded, rule, dirty)
    if dirty and (opts.commit or not opts.allow_dirty):
        files = ", ".join(d[3:] for d in dirty)
        hint = "--commit needs them clean" if opts.commit else "commit or stash them, or pass --allow-dirty"
        raise UsageError(f"{tree.path} has local changes in files the patches touch ({files}); {hint}")
    return _Prepared(tree, job, layout, loaded, rule, report)


def run_jobs(manifest: Manifest, jobs: Sequence[TreeJob], opts: RunOptions) -> RunReport:
    """Plan every job, then (unless check) write them all. Returns the report; raises ToolError on
    bad input. A conflict does not raise: the report's ``ok`` is False and nothing was changed."""
    report = RunReport(mode=opts.mode, commit=opts.commit, manifest=str(manifest.path))
    trees: List[Tree] = []
    planners: List[Planner] = []
    workdir = Path(tempfile.mkdtemp(prefix="deeplab-nnapi-patches-"))
    log = opts.log or (lambda m: None)
    direction = "reverse" if opts.reverse else "apply"
    try:
        prepared = []
        for job in jobs:
            tree = Tree.open(job.path, label=f"--{'tf' if job.target == 'tensorflow' else 'models'}-dir")
            tree.follow_symlinks = opts.follow_symlinks
            trees.append(tree)
            treport = TreeReport(
                job.target,
                str(tree.path),
                git=not tree.plain,
                requested=job.request.text if job.request else None,
            )
            report.trees.append(treport)
            treport.recovered = journal.repair(tree, direction, opts.check, log)
            prepared.append(_prepare(manifest, job, tree, opts, workdir, treport))
        for pre in prepared:
            what = pre.job.target
            if pre.layout is not None:
                what = {
                    "tensorflow": f"TensorFlow {pre.layout.shown_version}",
                    "tflite-only": f"TFLite-only tree, {pre.layout.version_source}",
                    "litert": f"{pre.layout.shown_version or 'LiteRT'} tree",
                }[pre.layout.name]
            log(f"{pre.tree.path}: {what}, {len(pre.loaded)} group(s) of patches{_where(pre.tree)}")
            planner = Planner(pre.tree, pre.job, opts, pre.loaded, pre.report, rule=pre.rule)
            planners.append(planner)
            pre.report.head_before = pre.report.head_after = planner.base
            if not planner.run():
                return report
        _between_plan_and_write(planners)
        changes = _changes(planners)
        if opts.check:
            return report
        _write(planners, direction, changes)
        return report
    finally:
        for pl in planners:
            pl.close()
        for t in trees:
            t.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _between_plan_and_write(planners: List[Planner]) -> None:
    """Nothing; tests replace it to change a file between the plan and the write (or, with --check, the
    check that the plan's files are still there as read)."""


def _changes(planners: List[Planner]) -> List[Tuple[Planner, List[Tuple[str, object, object]]]]:
    """Per tree, the files the plan changes, after making sure that (1) every touched file is still what
    the plan was made from (read again, through its links resolved again) and (2) every file that changes
    can be replaced, with its folder and the journal's. Either failing is an error naming the file (exit
    2), before anything is written; ``--check`` reports it too."""
    out = []
    for pl in planners:
        files = []
        for rel, new in pl.final_states().items():
            try:
                pl.tree.resolve(rel, fresh=True)
            except UsageError as exc:
                raise UsageError(f"{exc}; nothing was changed, run again") from None
            old = pl.tree.read_worktree(rel)
            if old != pl.ws.loaded.get(rel):
                raise UsageError(
                    f"{_shown(pl.tree, rel)} changed during the run (its text is not what the plan was made "
                    "from); nothing was changed, run again"
                )
            if old != new:
                files.append((rel, old, new))
        for rel, _, _ in files:
            why = treefiles.writable_problem(pl.tree.resolve(rel), pl.tree.path, rel)
            if why is not None:
                raise UsageError(f"{pl.tree.path}: {why}")
        if files or (pl.opts.commit and pl.commits):
            where = journal.journal_dir(pl.tree).parent
            if not os.access(where, os.W_OK | os.X_OK):
                raise UsageError(f"{where}: not writable (the run's journal goes there); refused, nothing "
                                 "was changed")
        out.append((pl, files))
    return out


def _shown(tree: Tree, rel: str) -> str:
    res = tree.resolve(rel)
    if res is not None and res.linked:
        return f"{tree.path / rel} (-> {res.shown_real})"
    return str(tree.path / rel)


def _write(planners: List[Planner], direction: str, planned) -> None:
    changes = []
    for pl, files in planned:
        head = (pl.base, pl.parent) if pl.opts.commit and pl.commits else None
        if files or head:
            reset = sorted({q for p in pl.paths for q in (p, pl.tree.git_path(p)) if q}) if head else []
            changes.append(journal.TreeChange(pl.tree, direction, files, head, reset))
    journal.commit_changes(changes)
    for pl in planners:
        ch = next((c for c in changes if c.tree is pl.tree), None)
        if ch is None:
            continue
        pl.report.changed_files = [_changed_name(pl.tree, rel) for rel, _, _ in ch.files]
        if ch.head:
            pl.report.head_after = ch.head[1]


def _changed_name(tree: Tree, rel: str) -> str:
    """The file that changed on disk: the touched path, or the target of the symlink it was patched
    through (relative to the tree, or absolute outside it)."""
    res = tree.resolve(rel)
    return res.shown_real if res is not None and res.linked else rel
