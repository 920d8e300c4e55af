"""Deciding a group of patch alternatives (the TensorFlow patches: one variant per upstream shape).

Apply, in this order, the first that holds:

1. a variant's reverse applies: **already-applied**;
2. a variant applies: **clean**;
3. a variant for another TF version at the same position applies or is applied (release boundaries
   read from source may be off by one; the shapes are distinct): the same, with a *fallback* note;
4. the same two checks ignoring whitespace (forks that re-indented the file): **clean-ignore-whitespace**
   or already-applied;
5. a reverse 3-way merge takes a variant out: already-applied (a drifted tree patched earlier by 3-way);
6. the check the patch relaxes is gone from the file, with evidence (:mod:`.evidence`: a complete,
   readable text with the code the check lived in and no trace of the check): **fixed-upstream**;
7. a 3-way merge with the pre-image blob from the repository's history: **3way**;
8. otherwise a **conflict** naming the patch, the file and the hunk.

``--reverse`` mirrors it (not-applied instead of already-applied). An applied or already-applied result
that still has the check somewhere (the file had it twice) is a conflict, never a patched tree.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from deeplab_nnapi.patching import evidence
from deeplab_nnapi.patching.patchfile import describe_failure
from deeplab_nnapi.patching.report import PatchReport
from deeplab_nnapi.patching.select import LoadedPatch
from deeplab_nnapi.patching.workspace import Probe

WS = "clean-ignore-whitespace"


def decide(pl, group: List[LoadedPatch]) -> PatchReport:
    return _reverse(pl, group) if pl.opts.reverse else _apply(pl, group)


def _split(pl, group: List[LoadedPatch]):
    main, extra = [lp for lp in group if not lp.fallback], [lp for lp in group if lp.fallback]
    probes = [pl.ws.probe(lp) for lp in main]
    for pr in probes:
        if pr.ambiguous:
            return (
                main,
                extra,
                probes,
                pl.report_for(
                    pr.loaded,
                    None,
                    "conflict",
                    f"patch {pr.loaded.name}: both the patch and its reverse apply to {pl.tree.path}; "
                    "cannot tell whether it is applied",
                    main,
                ),
            )
    return main, extra, probes, None


def _note(pl, lp: LoadedPatch, main: List[LoadedPatch]) -> str:
    if lp.fallback:
        return (
            f"fallback: the variant for TensorFlow {lp.patch.versions_text} fits this tree "
            f"(TensorFlow {pl.report.version}); the variant for its version does not"
        )
    if len(main) > 1 and pl.report.version is None and lp.patch.shape:
        return f"chosen by the text: the delegate has shape {lp.patch.shape}"
    return ""


def _first(pl, candidates: List[LoadedPatch], main, reverse: bool, ignore_ws: bool,
           probes: Optional[List[Probe]] = None) -> Optional[PatchReport]:
    """The first candidate that is already in (apply) / already out (reverse) or goes through. ``probes``:
    the candidates' probes when already made (the workspace unchanged since)."""
    if probes is None:
        probes = [pl.ws.probe(lp, ignore_whitespace=ignore_ws) for lp in candidates]
    for pr in probes:
        if pr.ambiguous:
            continue
        note = _note(pl, pr.loaded, main)
        if ignore_ws:
            note = (note + "; " if note else "") + "whitespace differs from upstream (re-indented tree)"
        already, goes = (pr.fwd.ok, pr.rev.ok) if reverse else (pr.rev.ok, pr.fwd.ok)
        if already:
            left = None if reverse else _check_left(pl, pr.loaded, main)
            if left is not None:
                return left
            state = "not-applied" if reverse else "already-applied"
            return pl.report_for(
                pr.loaded, state, state, note or ("not applied; nothing to reverse" if reverse else ""), main
            )
        if goes:
            snap = pl.ws.scratch.snapshot()
            if pl.ws.apply(pr.loaded, reverse=reverse, ignore_whitespace=ignore_ws).ok:
                left = None if reverse else _check_left(pl, pr.loaded, main)
                if left is not None:
                    pl.ws.scratch.restore(snap)
                    return left
                return pl.done(pr.loaded, WS if ignore_ws else "clean", main, note)
    return None


def _check_left(pl, lp: LoadedPatch, group) -> Optional[PatchReport]:
    """A conflict when the workspace (with the patch in) still has the check the patch relaxes: the file
    has it more than once, and relaxing one copy is not the change the patch stands for."""
    for rel in lp.parsed.paths():
        data = pl.ws.content(rel)
        if data is not None and evidence.check_present(lp.patch, data):
            rep = pl.report_for(
                lp,
                None,
                "conflict",
                f"patch {lp.name}: {rel} still has the check after the patch's change (the file has it "
                "more than once, or in another place as well); refused",
                group,
            )
            rep.path, rep.shape = rel, None
            return rep
    return None


def _apply(pl, group: List[LoadedPatch]) -> PatchReport:
    main, extra, probes, ambiguous = _split(pl, group)
    if ambiguous is not None:
        return ambiguous
    for k, (cands, ws) in enumerate(((main, False), (extra, False), (main + extra, True))):
        got = _first(pl, cands, main, reverse=False, ignore_ws=ws, probes=probes if k == 0 else None)
        if got is not None:
            return got
    for pr in probes:
        if pl.ws.applied_by_3way(pr.loaded):
            left = _check_left(pl, pr.loaded, main)
            if left is not None:
                return left
            return pl.report_for(
                pr.loaded,
                "already-applied",
                "already-applied",
                "already in the tree (recognised by a reverse 3-way merge)",
                main,
            )
    fixed = _fixed_upstream(
        pl,
        probes,
        main,
        "fixed upstream / already relaxed: the check this patch removes is not in {paths}; nothing to do",
    )
    if fixed is not None:
        return fixed
    done, reasons = _three_way(pl, probes, main, reverse=False)
    return done if done is not None else _conflict(pl, probes, reasons, main, reverse=False)


def _reverse(pl, group: List[LoadedPatch]) -> PatchReport:
    main, extra, probes, ambiguous = _split(pl, group)
    if ambiguous is not None:
        return ambiguous
    for k, (cands, ws) in enumerate(((main, False), (extra, False), (main + extra, True))):
        got = _first(pl, cands, main, reverse=True, ignore_ws=ws, probes=probes if k == 0 else None)
        if got is not None:
            return got
    done, reasons = _three_way(pl, probes, main, reverse=True)
    if done is not None:
        return done
    fixed = _fixed_upstream(
        pl,
        probes,
        main,
        "the check this patch removes is absent and the patch is not recognisably "
        "applied (fixed upstream); nothing to reverse",
    )
    return fixed if fixed is not None else _conflict(pl, probes, reasons, main, reverse=True)


def _three_way(pl, probes: List[Probe], group, reverse: bool) -> Tuple[Optional[PatchReport], list]:
    reasons = []
    for pr in probes:
        why = pl.ws.why_no_3way(pr.loaded, reverse=reverse)
        if why is None:
            snap = pl.ws.scratch.snapshot()
            res = pl.ws.try_3way(pr.loaded, reverse=reverse)
            if res is None:
                left = None if reverse else _check_left(pl, pr.loaded, group)
                if left is not None:
                    pl.ws.scratch.restore(snap)
                    return left, []
                return pl.done(pr.loaded, "3way", group), []
            tail, _, _ = describe_failure(
                pr.loaded.name, pr.loaded.patch.file, pr.loaded.parsed, pl.tree.path, res.err, reverse
            )
            why = f"3-way merge: {tail}"
        reasons.append((pr, why))
    return None, reasons


def _fixed_upstream(pl, probes: List[Probe], group, message: str) -> Optional[PatchReport]:
    """fixed-upstream, when the text shows it (see :mod:`.evidence`); else None, and the reason is kept
    for the conflict message."""
    for pr in probes:
        texts = [pl.ws.content(rel) for rel in pr.loaded.parsed.paths()]
        why = evidence.why_not_fixed_upstream(pr.loaded.patch, [t for t in texts if t is not None])
        if why is None:
            text = message.format(paths=", ".join(pr.loaded.parsed.paths()))
            rep = pl.report_for(pr.loaded, "fixed-upstream", "fixed-upstream", text, group)
            rep.shape = None  # no shape of the check: it is gone
            return rep
        pl.not_fixed[pr.loaded.name] = why
    return None


def _conflict(pl, probes: List[Probe], reasons, group, reverse: bool) -> PatchReport:
    parts = []
    first_hunk = first_path = None
    for pr, why3 in reasons:
        err = pr.rev.err if reverse else pr.fwd.err
        tail, path, hunk = describe_failure(
            pr.loaded.name, pr.loaded.patch.file, pr.loaded.parsed, pl.tree.path, err, reverse
        )
        first_hunk = first_hunk or hunk
        first_path = first_path or path
        why_not = pl.not_fixed.get(pr.loaded.name)
        parts.append(
            f"patch {pr.loaded.name} ({pr.loaded.patch.file}) does not "
            f"{'reverse' if reverse else 'apply'} to {pl.tree.path}: {tail}; {why3}"
            + ("" if why_not in (None, "the check is there") else f"; not fixed upstream either: {why_not}")
        )
    msg = parts[0] if len(parts) == 1 else f"none of the {len(parts)} variants applies: " + " | ".join(parts)
    rep = pl.report_for(probes[0].loaded, None, "conflict", msg, group)
    rep.hunk, rep.path, rep.shape = first_hunk, first_path, None  # the text has none of the known shapes
    return rep
