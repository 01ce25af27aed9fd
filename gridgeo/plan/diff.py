"""Compare two plans: which grids changed, and who moves from which grid to which."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.plan.impact import DEFAULT_BAND, impact
from gridgeo.plan._kernel import labels, unit_rows
from gridgeo.plan.state import PlanState

__all__ = ["diff", "PlanDiff", "CHANGES"]

CHANGES = ("unchanged", "renumbered", "reshaped", "split", "merged", "added", "removed")
"""The values of the ``change`` column of :attr:`PlanDiff.units`."""


@dataclass(frozen=True)
class PlanDiff:
    """What changes from plan ``a`` to plan ``b``.

    Attributes
    ----------
    units : GeoDataFrame
        One row per code in either plan, ordered by code: ``code``,
        ``change`` (one of :data:`CHANGES`), ``related`` (the other codes of
        the split, merge or renumbering, comma-joined), ``name_before``,
        ``name_after``, ``<figure>_before`` and ``<figure>_after`` for
        blocks, addresses, households, population, units, ``band_before``,
        ``band_after``, and the polygon after (before, for a removed grid).
    moves : GeoDataFrame
        The from-to table: one row per pair of grids (``from_code``,
        ``to_code``; ``""`` for unassigned blocks) between which blocks move,
        with the ``blocks``, ``addresses``, ``households``, ``population``,
        ``units`` and ``area_m2`` moved and the area moved as its polygon.
    summary : dict
        ``grids_before``, ``grids_after``, a count per change, and the
        ``addresses_moved``, ``households_moved``, ``population_moved``.
    """

    units: gpd.GeoDataFrame
    moves: gpd.GeoDataFrame
    summary: dict

    @property
    def empty(self) -> bool:
        """True when the plans have the same grids with the same blocks and names."""
        return bool(self.moves.empty and (self.units["change"] == "unchanged").all()
                    and (self.units["name_before"] == self.units["name_after"]).all())

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {v}" for k, v in self.summary.items() if k in CHANGES and v)
        return (f"<PlanDiff {self.summary['grids_before']} -> {self.summary['grids_after']} grids ({counts}); "
                f"{self.summary.get('households_moved', 0)} households move>")


def diff(a, b, *, band=DEFAULT_BAND) -> PlanDiff:
    """Compare two plans of the same parent and level, block by block.

    Parameters
    ----------
    a, b : PlanState or GeoDataFrame
        The plans before and after. At least one is a :class:`PlanState`;
        a GeoDataFrame of grids (the published ones, a plan read from a
        store) is laid on its blocks (each of its units must be a union of
        them).
    band : (low, high), default (300, 500)
        For the ``band_before`` and ``band_after`` columns.

    Returns
    -------
    PlanDiff

    Notes
    -----
    How changes are named, with each grid's main destination (the grid of
    the other plan that gets most of its area) and main source: a grid whose
    blocks are exactly those of a grid of the other plan under another code
    is ``renumbered``; a grid of ``a`` that is the main source of two or
    more grids of ``b`` is ``split`` (and so are they); grids of ``a`` whose
    main destination is the same grid of ``b`` are ``merged`` (and so is
    it); any other grid present in both with other blocks is ``reshaped``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> gridgeo.plan.diff(state, state).empty
    True
    >>> pair = gridgeo.plan.neighbours(state).iloc[0]
    >>> d = gridgeo.plan.diff(state, gridgeo.plan.merge(state, [pair["a"], pair["b"]]))
    >>> d.units["change"].tolist().count("merged")
    2
    >>> d.moves[["from_code", "to_code"]].values.tolist() == [[pair["b"], pair["a"]]]
    True
    """
    a, b = _on_same_blocks(a, b)
    before, after = impact(a, band=band), impact(b, band=band)
    relations = _relations(a, b)
    moves = _moves(a, b, relations)
    units = _units(a, b, before, after, relations)
    return PlanDiff(units=units, moves=moves, summary=_summary(units, moves, before, after))


def _on_same_blocks(a, b):
    if not isinstance(a, PlanState) and not isinstance(b, PlanState):
        raise TypeError("diff needs at least one PlanState (gridgeo.plan.start) to lay the other plan on its "
                        f"blocks, got {type(a).__name__} and {type(b).__name__}")
    if not isinstance(a, PlanState):
        a = _laid_on(b, a, "a")
    if not isinstance(b, PlanState):
        b = _laid_on(a, b, "b")
    same = a._blocks is b._blocks or (
        len(a._blocks.ids) == len(b._blocks.ids) and np.array_equal(a._blocks.ids, b._blocks.ids)
        and bool(np.all(shapely.equals(a._blocks.geoms, b._blocks.geoms))))
    if not same or a.parent != b.parent or a.level != b.level:
        raise ValueError(f"the plans are not on the same blocks ({a.level} in {a.parent} on {len(a._blocks.ids)} "
                         f"blocks, {b.level} in {b.parent} on {len(b._blocks.ids)}): compare plans of one parent, "
                         "opened with the same roads or blocks")
    return a, b


def _laid_on(state, grids, name):
    if not isinstance(grids, gpd.GeoDataFrame):
        raise TypeError(f"{name} should be a PlanState or a GeoDataFrame of grids, got {type(grids).__name__}")
    frame = gcrs.to_storage(grids, name=name)
    units = unit_rows(frame[(frame["level"] == state.level) & frame["code"].astype("str").str.startswith(state.parent)])
    codes = labels(state._blocks, units, state.level)
    return dataclasses.replace(state, units=units, _codes=codes, log=())


def _moves(a, b, relations) -> gpd.GeoDataFrame:
    """Blocks changing grid, summed per (from, to); a grid only renumbered moves nobody."""
    blocks = a._blocks
    moved = np.flatnonzero([x != y and (x, y) not in relations["twins"] for x, y in zip(a._codes, b._codes)])
    table = blocks.sums.iloc[moved].copy()
    table.insert(0, "to_code", b._codes[moved])
    table.insert(0, "from_code", a._codes[moved])
    table["blocks"] = 1
    table["area_m2"] = blocks.area[moved]
    table["_pos"] = moved
    keys = ["from_code", "to_code"]
    sums = table.drop(columns="_pos").groupby(keys, as_index=False).sum()
    geoms = [shapely.coverage_union_all(blocks.geoms[g["_pos"].to_numpy()]) for _, g in table.groupby(keys)]
    cols = ["from_code", "to_code", "blocks"] + [c for c in sums.columns if c not in ("from_code", "to_code", "blocks")]
    out = gpd.GeoDataFrame(sums[cols], geometry=geoms if len(sums) else [], crs=gcrs.STORAGE_CRS)
    for col in keys:
        out[col] = out[col].astype("str")
    return out.sort_values(keys).reset_index(drop=True)


def _units(a, b, before, after, rel) -> gpd.GeoDataFrame:
    codes = sorted(set(before["code"]) | set(after["code"]))
    figures = ["blocks"] + [c for c in ("addresses", "households", "population", "units") if c in before.columns]
    table = pd.DataFrame({"code": codes})
    bi, ai = before.set_index("code"), after.set_index("code")
    table["change"], table["related"] = zip(*[_change(c, a, b, rel) for c in codes]) if codes else ((), ())
    table["name_before"] = table["code"].map(bi["name"]).fillna("").astype("str")
    table["name_after"] = table["code"].map(ai["name"]).fillna("").astype("str")
    for col in figures:
        table[f"{col}_before"] = table["code"].map(bi[col]).fillna(0).astype(np.int64)
        table[f"{col}_after"] = table["code"].map(ai[col]).fillna(0).astype(np.int64)
    table["band_before"] = table["code"].map(bi["band"].astype(object)).astype("category")
    table["band_after"] = table["code"].map(ai["band"].astype(object)).astype("category")
    geoms = [ai.geometry.get(c) if c in ai.index else bi.geometry.get(c) for c in codes]
    return gpd.GeoDataFrame(table, geometry=geoms, crs=gcrs.STORAGE_CRS)


def _change(code, a, b, rel) -> tuple[str, str]:
    """The change of one code and the codes related to it."""
    if code in rel["same"]:
        return "unchanged", ""
    if code in rel["renumbered"]:
        return "renumbered", ",".join(rel["renumbered"][code])
    for kind in ("split", "merged"):
        if code in rel[kind]:
            return kind, ",".join(c for c in rel[kind][code] if c != code)
    in_a, in_b = code in set(a.units["code"]), code in set(b.units["code"])
    return ("reshaped" if in_a and in_b else "added" if in_b else "removed"), ""


def _relations(a, b) -> dict:
    """Which grids are the same, renumbered, split or merged between the plans."""
    area = a._blocks.area
    flows = pd.DataFrame({"a": a._codes, "b": b._codes, "area": area})
    flows = flows[(flows["a"] != "") & (flows["b"] != "")].groupby(["a", "b"], as_index=False)["area"].sum()
    dest = flows.sort_values(["a", "area"]).groupby("a").tail(1).set_index("a")["b"]
    src = flows.sort_values(["b", "area"]).groupby("b").tail(1).set_index("b")["a"]
    blocks_a = {c: frozenset(np.flatnonzero(a._codes == c)) for c in a.units["code"]}
    blocks_b = {c: frozenset(np.flatnonzero(b._codes == c)) for c in b.units["code"]}
    same = {c for c in blocks_a if blocks_b.get(c) == blocks_a[c]}
    twin_b = {v: k for k, v in blocks_b.items()}
    twin_a = {v: k for k, v in blocks_a.items()}
    renumbered = {}
    for c, blk in blocks_a.items():
        if c not in same and blk in twin_b:
            renumbered.setdefault(c, []).append(twin_b[blk])
    for c, blk in blocks_b.items():
        if c not in same and blk in twin_a:
            renumbered.setdefault(c, []).append(twin_a[blk])
    split, merged = {}, {}
    for parent, group in src.groupby(src):
        if len(group) >= 2:
            family = sorted({parent, *group.index})
            for c in family:
                split.setdefault(c, family)
    for child, group in dest.groupby(dest):
        if len(group) >= 2:
            family = sorted({child, *group.index})
            for c in family:
                merged.setdefault(c, family)
    twins = {(c, twin_b[blk]) for c, blk in blocks_a.items() if c not in same and blk in twin_b}
    return {"same": same, "renumbered": renumbered, "twins": twins, "split": split, "merged": merged}


def _summary(units, moves, before, after) -> dict:
    counts = units["change"].value_counts()
    out = {"grids_before": len(before), "grids_after": len(after), **{c: int(counts.get(c, 0)) for c in CHANGES}}
    for col in ("blocks", "addresses", "households", "population"):
        if col in moves.columns:
            out[f"{col}_moved"] = int(moves[col].sum())
    return out
