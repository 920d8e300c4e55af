"""Planning one tree: decide every group of patch alternatives in a scratch workspace, in order, and (with
``--commit``) make one commit per patch. Nothing here writes the work tree; :mod:`.journal` does that
once every tree planned without a conflict.

How a group is decided is the business of :mod:`.patch_group` (the TensorFlow patches: variants by
version and shape) and :mod:`.rule_group` (the tensorflow/models patches: one group per file, decided
by the rule the patches are generated from).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

from deeplab_nnapi.errors import UsageError
from deeplab_nnapi.patching.gitops import MailInfo, Tree, commit_tree, mailinfo
from deeplab_nnapi.patching.report import PatchReport, TreeReport
from deeplab_nnapi.patching.select import LoadedPatch, group_paths
from deeplab_nnapi.patching.tfversion import VersionRequest
from deeplab_nnapi.patching.workspace import Workspace


@dataclass
class TreeJob:
    target: str  # "tensorflow" | "models"
    path: Path
    request: Optional[VersionRequest] = None  # TensorFlow only


@dataclass
class RunOptions:
    check: bool = False
    reverse: bool = False
    commit: bool = False
    allow_dirty: bool = False
    log: Optional[Callable[[str], None]] = None
    follow_symlinks: bool = False  # patch through a symlink that leaves the tree (see treefiles)

    @property
    def mode(self) -> str:
        return ("reverse" if self.reverse else "apply") + ("-check" if self.check else "")


class Planner:
    def __init__(
        self,
        tree: Tree,
        job: TreeJob,
        opts: RunOptions,
        groups: List[List[LoadedPatch]],
        report: TreeReport,
        rule=None,
    ):
        self.tree = tree
        self.job = job
        self.opts = opts
        self.groups = groups
        self.report = report
        self.rule = rule
        self.paths = group_paths(groups)
        #: what is decided, in order: a group of patch alternatives, or (rule file, its variants)
        self.units: list = list(groups)
        if rule is not None:
            self.paths = sorted(set(self.paths) | {f.path for f in rule.files})
            self.units = [
                (fr, [lp for g in groups for lp in g if lp.patch.touches == (fr.path,)]) for fr in rule.files
            ]
        self.base = tree.head()
        self.ws = Workspace(tree, self.base if opts.commit else None, self.paths)
        self.parent = self.base
        self.commits: List[str] = []
        #: patch name -> why its text was not taken for fixed-upstream (for the conflict message)
        self.not_fixed: dict = {}

    def log(self, msg: str) -> None:
        if self.opts.log:
            self.opts.log(msg)

    def close(self) -> None:
        self.ws.close()

    # -- the plan
    def run(self) -> bool:
        from deeplab_nnapi.patching import patch_group, rule_group

        decide = rule_group.decide if self.rule is not None else patch_group.decide
        units = list(reversed(self.units)) if self.opts.reverse else self.units
        total = len(units)
        for k, unit in enumerate(units, 1):
            rep = decide(self, unit)
            self.report.patches.append(rep)
            self.log(
                f"[{self.job.target} {k}/{total}] {rep.name}: {rep.state}"
                + (f" ({rep.strategy})" if rep.strategy and rep.strategy != rep.state else "")
                + (f" - {rep.message}" if rep.state == "conflict" or rep.strategy == "rule" else "")
            )
            if rep.state == "conflict":
                for rest in units[k:]:
                    self.report.patches.append(self._not_reached(rest))
                return False
        return True

    def _not_reached(self, unit) -> PatchReport:
        if isinstance(unit, tuple):
            from deeplab_nnapi.patching.rule_group import unit_identity

            name, file, order = unit_identity(self, unit)
            return PatchReport(
                name, self.job.target, file, order, None, "not-reached", "an earlier patch does not apply"
            )
        p = unit[0].patch
        return PatchReport(
            p.name, p.target, p.file, p.order, None, "not-reached", "an earlier patch does not apply"
        )

    # -- reports and commits
    def report_for(
        self, lp: LoadedPatch, strategy, state, message="", alts: Optional[Sequence] = None
    ) -> PatchReport:
        p = lp.patch
        return PatchReport(
            p.name,
            p.target,
            p.file,
            p.order,
            strategy,
            state,
            message,
            alternatives=[a.patch.name for a in alts] if alts and len(alts) > 1 else [],
            shape=p.shape,
        )

    def done(self, lp: LoadedPatch, strategy: str, group, message: str = "", sites=None) -> PatchReport:
        """Record a change made in the workspace (and its commit in --commit mode)."""
        rep = self.report_for(lp, strategy, self.changed_state(), message, alts=group)
        rep.sites = list(sites or [])
        if self.opts.commit:
            self.record_commit(rep, self._commit_info(lp))
        return rep

    def changed_state(self) -> str:
        if self.opts.reverse:
            return "would-reverse" if self.opts.check else "reversed"
        return "would-apply" if self.opts.check else "applied"

    def record_commit(self, rep: PatchReport, info: MailInfo) -> None:
        """Commit the workspace as it is now on top of the previous commit (``--commit``)."""
        if self.opts.reverse and not info.subject.startswith("Revert "):
            info = self._revert_info(info, rep.file, rep.name)
        tree_sha = self.ws.write_tree()
        self.parent = commit_tree(self.tree, tree_sha, self.parent, info)
        self.commits.append(self.parent)
        rep.commit = self.parent

    def _commit_info(self, lp: LoadedPatch) -> MailInfo:
        info = mailinfo(self.tree, lp.data)
        if info is None:
            raise UsageError(
                f"patch {lp.patch.name}: {lp.patch.file} has no From:/Subject: header; "
                "--commit needs git format-patch files"
            )
        return self._revert_info(info, lp.patch.file, lp.patch.name) if self.opts.reverse else info

    def _revert_info(self, info: MailInfo, file: str, name: str) -> MailInfo:
        me = self.tree.git("var", "GIT_AUTHOR_IDENT")
        m = re.match(r"^(.*) <(.*)> \d+ [+-]\d{4}$", me.out.strip()) if me.ok else None
        who, email = (m.group(1), m.group(2)) if m else (info.author, info.email)
        return MailInfo(
            who, email, "", f'Revert "{info.subject}"', f"This reverts the patch {file} ({name})."
        )

    def final_states(self):
        return self.ws.final_states(self.paths)
