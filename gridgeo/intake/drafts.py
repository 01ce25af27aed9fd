"""A grid file as draft plans: what the office can fix in the workbench before it publishes.

A file whose grids fail validation is refused by a load; the office can open
it as draft plans instead (:func:`to_plans`), fix them on the workbench with
the existing tools, and publish them there, where publishing validates again.
Opening never publishes anything.

The rule: the file's units are grouped by the unit they redraw the inside of,
one plan each. When the file's top level lies below the scheme's village
level (a file of level-2 grids) that is the village each unit lies in, so
that a plan is what the workbench opens (a village's grids); otherwise it is
the parent of the file's top level (a file of villages: their town). A plan
redraws the file's levels inside its unit: the published units of those
levels there are replaced by the file's (the ones with the same code as
edits of them, the others as removed), the rest of the store is untouched.

The workbench edits a village's grids as unions of road-bounded blocks, so
the units of the level it paints are laid on the village's blocks
(:func:`gridgeo.plan.lay`: each block to the unit covering most of it); the
plan's log says how much of the drawn area that kept and how many blocks no
unit covered. Units of other levels (level-3 plots) keep their geometry as
drawn.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["to_plans", "plan_parent", "plan_parents"]


def plan_parent(code: str, level: str, scheme) -> str:
    """The unit whose inside a plan holding ``code`` (at ``level``) redraws.

    Examples
    --------
    >>> from gridgeo.schema import DEFAULT_SCHEME
    >>> plan_parent("3505821062010101", "grid2", DEFAULT_SCHEME)  # a level-2 grid: its village
    '350582106201'
    >>> plan_parent("350582106201", "village", DEFAULT_SCHEME)    # a village: its town
    '350582106'
    """
    village = scheme.village_level
    if scheme.index(level) > scheme.index(village):
        return code[: scheme.width(village)]
    above = scheme.parent_level(level)
    return code[: scheme.width(above)] if above else ""


def plan_parents(intake, scheme) -> list[str]:
    """The units :func:`to_plans` would open a plan of for a grid file (sorted; ``""``
    for the whole city), so that a caller can check who may plan them first.

    Examples
    --------
    >>> import gridgeo.sample
    >>> from gridgeo import intake
    >>> from gridgeo.schema import DEFAULT_SCHEME
    >>> grids = gridgeo.sample.load().grids
    >>> got = intake.inspect(grids[grids["code"].str.startswith("350582106201") & (grids["level"] == "grid2")],
    ...                      name="grid2.geojson")
    >>> plan_parents(got, DEFAULT_SCHEME)
    ['350582106201']
    """
    frame = intake.frame
    if frame is None or intake.kind != "grids" or not len(frame):
        return []
    return sorted({plan_parent(c, lv, scheme) for c, lv in zip(frame["code"], frame["level"])})


def to_plans(intake, store, *, name: str, author: str) -> list:
    """Open an inspected grid file as draft plans in ``store``, one per unit redrawn.

    Parameters
    ----------
    intake : gridgeo.intake.Intake
        A grid file, inspected against ``store``. Validation errors (overlaps,
        gaps, invalid polygons) are allowed: fixing them is what the drafts are
        for. Errors of the file itself (unreadable, codes lost, a wrong
        coordinate system, columns missing) are not.
    store : gridgeo.store.Store
    name : str
        The plans' name; with several plans, each is suffixed with its unit's name.
    author : str

    Returns
    -------
    list of gridgeo.store.Plan
        Drafts: each holds the file's units inside its unit.

    Raises
    ------
    ValueError
        If the file holds no grids, could not be read that far, has errors
        of its own, or names a unit the store does not have.

    Examples
    --------
    >>> import tempfile, gridgeo.store, gridgeo.sample
    >>> from gridgeo import intake
    >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
    >>> grids = gridgeo.sample.load().grids
    >>> _ = s.load({"grids": grids}, author="demo")
    >>> village = grids[grids["code"].str.startswith("350582106201") & (grids["level"] == "grid2")]
    >>> got = intake.inspect(village.iloc[1:], name="grid2.geojson", store=s)   # one grid left out
    >>> got.ok                                 # a load would be refused: the village is not covered
    False
    >>> [p.info["parent"] for p in intake.to_plans(got, s, name="导入", author="网格办")]
    ['350582106201']
    """
    if intake.frame is None or intake.kind != "grids":
        raise ValueError(f"{intake.source} holds {intake.kind or 'nothing readable'}, not grids: only grid files "
                         "open as draft plans")
    own = [f for f in intake.findings if f.severity == "error"]
    if own:
        raise ValueError(f"{intake.source} cannot open as a draft plan: {own[0].message_en}")
    scheme = store.scheme
    frame = intake.frame
    keys = pd.Series([plan_parent(c, lv, scheme) for c, lv in zip(frame["code"], frame["level"])],
                     index=frame.index)
    parents = sorted(set(keys))
    known = store.read("grids", where={"code": [p for p in parents if p]}, columns=["code", "name"])
    names = dict(zip(known["code"], known["name"]))
    missing = [p for p in parents if p and p not in names]
    if missing:
        raise ValueError(f"{intake.source}: the store has no unit {', '.join(missing[:5])}, inside which the file's "
                         "units lie: load or publish it first")
    levels = [lv for lv in scheme.names if lv in set(frame["level"])]
    plans = []
    for parent in parents:
        units = frame[(keys == parent).to_numpy()]
        title = name if len(parents) == 1 else f"{name} · {names.get(parent, parent or '全域')}"
        plan = store.create_plan(title, parent=parent, levels=levels, author=author,
                                 description=f"imported from {intake.source}")
        painted = _lay_on_blocks(plan, units, store, author, intake.source) if parent else None
        rest = units if painted is None else units[units["level"] != painted]
        if len(rest) or painted is None:
            _save_as_drawn(plan, rest, author, intake.source, levels=set(rest["level"]) if painted else None)
        plans.append(plan)
    return plans


def _lay_on_blocks(plan, units, store, author, source) -> str | None:
    """Lay the file's units of the plan's painted level on its blocks (what the
    workbench edits); the level laid, or None when the plan has no blocks."""
    from gridgeo import plan as gplan
    from gridgeo.plan.errors import PlanError

    try:
        state = gplan.from_store(store, plan.id)
    except (PlanError, ValueError):
        return None
    mine = units[units["level"] == state.level]
    if mine.empty:
        return None
    try:
        laid = gplan.lay(state, mine)
    except PlanError as exc:
        plan.abandon(author=author, message=f"could not be laid on the blocks: {exc}")
        raise ValueError(f"{source}: {exc}") from exc
    report = laid.attrs["laid"]
    kept = float(report["kept_share"].mul(report["drawn_m2"]).sum() / max(report["drawn_m2"].sum(), 1e-9))
    gplan.save(laid, store, author=author,
               message=f"imported from {source}: {len(mine)} {state.level} units laid on the blocks, keeping "
                       f"{kept:.1%} of the drawn area; {len(laid.attrs['kept_blocks'])} block(s) no unit of the "
                       "file covers kept their published grid")
    return state.level


def _save_as_drawn(plan, units, author, source, *, levels=None):
    """Replace the plan's units (of ``levels``, or all) with the file's, geometry as drawn."""
    copied = plan.read()
    if levels is not None:
        copied = copied[copied["level"].isin(levels)]
    stated = dict(zip(copied["code"], copied["revision"].astype(int)))
    edits = units.drop(columns=[c for c in ("revision", "author") if c in units.columns]).copy()
    edits["revision"] = pd.array([stated.get(c) for c in edits["code"]], dtype="Int64")
    gone = {c: r for c, r in stated.items() if c not in set(units["code"])}
    plan.save(edits if len(edits) else None, author=author, remove=gone, base_revision=int(plan.info["revision"]),
              message=f"imported from {source}: {len(units)} units, {len(gone)} removed")
