"""Deciding one file of the tensorflow/models patch set by the rule the patches are generated from.

The rule (:mod:`.pyrule`) tells, for the file's current text, which call sites still need the change.
That, not whether some patch reverse-applies, is what "applied" means here: a file is already-applied
only when every site is done, so a half-patched tree is never taken for a patched one.

Apply, when some site is still to do:

1. the variant generated for exactly this text (the file's blob is its pre-image): **clean**;
2. another variant that applies (a fork with edits elsewhere in the file): **clean**;
3. a variant whose pre-image blob is in the repository's history, by 3-way merge: **3way**;
4. otherwise the rule itself edits the text (a fork whose lines changed, e.g. a ``tf.compat.v1``
   migration): **rule**, with the sites it changed listed.
After 1-3 the file is scanned again; a site still to do is finished by the rule. A site the rule cannot
decide (``align_corners=flag``) is a conflict. ``--reverse`` mirrors it.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from deeplab_nnapi.patching import evidence
from deeplab_nnapi.patching.gitops import MailInfo
from deeplab_nnapi.patching.pyrule import DONE, TODO, RuleError, Site
from deeplab_nnapi.patching.report import PatchReport
from deeplab_nnapi.patching.rulefile import FileRule
from deeplab_nnapi.patching.select import LoadedPatch


def unit_identity(pl, unit) -> Tuple[str, str, int]:
    fr, variants = unit
    rule_rel = pl.rule.path.name
    return f"models-{fr.slug}", f"models/{rule_rel} ({fr.path})", fr.order


def _report(pl, unit, lp: Optional[LoadedPatch], strategy, state, message="", sites=None) -> PatchReport:
    fr, variants = unit
    if lp is not None:
        rep = pl.report_for(lp, strategy, state, message, variants)
    else:
        name, file, order = unit_identity(pl, unit)
        rep = PatchReport(
            name,
            pl.job.target,
            file,
            order,
            strategy,
            state,
            message,
            alternatives=[v.name for v in variants] if len(variants) > 1 else [],
        )
    rep.path = fr.path
    rep.sites = list(sites or [])
    return rep


def _conflict(pl, unit, message: str) -> PatchReport:
    return _report(pl, unit, None, None, "conflict", message)


def _rule_info(pl, fr: FileRule, sites: List[str]) -> MailInfo:
    name, _, email = pl.rule.author.partition(" <")
    body = (
        pl.rule.body
        + "\n\nChanged in "
        + fr.path
        + " (by the rule, no patch fitted this text):\n"
        + "\n".join(f"- {s}" for s in sites)
    )
    return MailInfo(name, email.rstrip(">"), pl.rule.date, fr.subject, body)


def decide(pl, unit) -> PatchReport:
    fr, variants = unit
    text = pl.ws.content(fr.path)
    if text is None:
        if fr.optional:
            return _report(
                pl,
                unit,
                None,
                "not-present",
                "not-present",
                f"{fr.path} is not in this tree (older layout); nothing to change",
            )
        return _conflict(pl, unit, f"{fr.path}: file is missing from the tree {pl.tree.path}")
    try:
        sites = fr.scan(text)
        if any(s.state not in (TODO, DONE) for s in sites):
            fr.apply(text)  # raises RuleError naming the site
    except RuleError as exc:
        return _conflict(pl, unit, f"{exc}")
    return _reverse(pl, unit, text, sites) if pl.opts.reverse else _apply(pl, unit, text, sites)


def _by_blob(variants: List[LoadedPatch], rel: str, blob: Optional[str], post: bool) -> Optional[LoadedPatch]:
    if blob is None:
        return None
    return next((v for v in variants if v.patch.blob_of(rel, post=post) == blob), None)


def _apply(pl, unit, text: bytes, sites: List[Site]) -> PatchReport:
    fr, variants = unit
    todo = [s for s in sites if s.state == TODO]
    blob = pl.ws.blob(fr.path)
    if not todo:
        if not sites:
            why = evidence.why_not_a_known_module(text)
            if why is not None:
                return _conflict(pl, unit, f"{fr.path} has no call the rule changes, but {why}: not a "
                                 "DeepLab file the rule knows; refused")
            return _report(
                pl,
                unit,
                None,
                "not-needed",
                "not-needed",
                f"{fr.path} has no call the rule changes; nothing to do",
            )
        lp = _by_blob(variants, fr.path, blob, post=True)
        return _report(
            pl,
            unit,
            lp,
            "already-applied",
            "already-applied",
            "" if lp is not None else f"every call site the rule changes in {fr.path} is already done",
        )
    used, strategy = _static(pl, fr, variants, blob, reverse=False)
    after = pl.ws.content(fr.path)
    left = [s for s in fr.scan(after) if s.state == TODO]
    changed = [s.describe() for s in todo]
    if left:
        after = fr.apply(after).text
        pl.ws.set_content(fr.path, after)
        strategy = f"{strategy}+rule" if strategy else "rule"
    msg = ""
    if strategy == "rule":
        msg = f"no patch fits this text of {fr.path}; the rule changed {len(changed)} call site(s)"
    elif strategy.endswith("+rule"):
        msg = f"{used.name} left {len(left)} call site(s) to do; the rule changed them"
    rep = _report(pl, unit, used, strategy, pl.changed_state(), msg, changed)
    if pl.opts.commit:
        pl.record_commit(rep, pl._commit_info(used) if used is not None else _rule_info(pl, fr, changed))
    return rep


def _reverse(pl, unit, text: bytes, sites: List[Site]) -> PatchReport:
    fr, variants = unit
    ours = [s for s in sites if s.state == DONE and s.value is not None]
    blob = pl.ws.blob(fr.path)
    if not ours:
        state = "not-needed" if not sites else "not-applied"
        why = evidence.why_not_a_known_module(text) if not sites else None
        if why is not None:
            return _conflict(pl, unit, f"{fr.path} has no call the rule changes, but {why}: not a "
                             "DeepLab file the rule knows; refused")
        return _report(
            pl,
            unit,
            _by_blob(variants, fr.path, blob, post=False),
            state,
            state,
            f"nothing of the rule's in {fr.path}; nothing to reverse",
        )
    used, strategy = _static(pl, fr, variants, blob, reverse=True)
    after = pl.ws.content(fr.path)
    left = [s for s in fr.scan(after) if s.state == DONE and s.value is not None]
    if left:
        after = fr.revert(after).text
        pl.ws.set_content(fr.path, after)
        strategy = f"{strategy}+rule" if strategy else "rule"
    changed = [s.describe() for s in ours]
    msg = (
        f"no patch fits this text of {fr.path}; the rule put back {len(changed)} call site(s)"
        if strategy == "rule"
        else ""
    )
    rep = _report(pl, unit, used, strategy, pl.changed_state(), msg, changed)
    if pl.opts.commit:
        pl.record_commit(rep, pl._commit_info(used) if used is not None else _rule_info(pl, fr, changed))
    return rep


def _static(pl, fr: FileRule, variants: List[LoadedPatch], blob: Optional[str], reverse: bool):
    """Try the generated patches: (the variant used, its strategy) or (None, "")."""
    exact = _by_blob(variants, fr.path, blob, post=reverse)
    order = ([exact] if exact is not None else []) + [v for v in variants if v is not exact]
    for lp in order:
        pr = pl.ws.probe(lp)
        goes = pr.rev.ok if reverse else pr.fwd.ok
        if goes and not pr.ambiguous and pl.ws.apply(lp, reverse=reverse).ok:
            return lp, "clean"
    for lp in order:
        if pl.ws.why_no_3way(lp, reverse=reverse) is None and pl.ws.try_3way(lp, reverse=reverse) is None:
            return lp, "3way"
    return None, ""
