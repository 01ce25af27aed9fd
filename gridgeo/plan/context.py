"""What lies around and across a plan: the neighbouring units, and the fences inside it.

A planner paints the grids of one village; to see where they are, the
workbench draws the villages around it (:func:`neighbouring_units`) and, inside
it, the units of the levels between the village and the painted level that the
plan may not change (:func:`fences`: the level-1 grids, for a plan that
redraws level 2 only). The rule the fences state, once: **a block can be
painted only into a grid inside the same fence** (the fence of a grid is the
fence of its blocks); any edit that moves a block across one is refused with
``level_not_editable``. :func:`fences` gives every block its fence, so a page
can show what a stroke would cross before it sends it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.plan._kernel import check_state as _check_state
from gridgeo.plan._kernel import prefixes as _prefixes
from gridgeo.plan.errors import PlanError
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme, check

__all__ = ["neighbouring_units", "fences", "fence_level", "block_pairs", "within_steps"]


def neighbouring_units(grids, code: str, *, scheme: CodeScheme = DEFAULT_SCHEME) -> gpd.GeoDataFrame:
    """The units of the same level as ``code`` that touch it (share an edge or a corner).

    Parameters
    ----------
    grids : GeoDataFrame
        Grids holding ``code`` and the other units of its level (any CRS
        :func:`gridgeo.crs.to_storage` accepts).
    code : str
        The unit (a village) whose neighbours are wanted.
    scheme : CodeScheme

    Returns
    -------
    GeoDataFrame
        ``code``, ``name``, ``level``, ``parent`` and the polygon (EPSG:4490)
        of every unit of that level whose polygon intersects the unit's,
        itself excluded, ordered by code; across a town's edge too.

    Raises
    ------
    PlanError
        ``unknown_unit`` when no unit has the code.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> around = gridgeo.plan.neighbouring_units(s.grids, "350582106201")
    >>> len(around) > 0, set(around["level"]), "350582106201" in set(around["code"])
    (True, {'village'}, False)
    """
    frame = check(gcrs.to_storage(grids, name="grids"), "grids", scheme=scheme, name="grids")
    code = str(code)
    own = frame[frame["code"] == code]
    if own.empty:
        raise PlanError("unknown_unit", f"the grids have no unit {code}: pass the code of a unit they hold",
                        f"网格数据中没有单元 {code}：请传入存在的单元编码", codes=[code])
    level = own["level"].iloc[0]
    same = frame[(frame["level"] == level) & (frame["code"] != code)]
    touching = shapely.intersects(same.geometry.array, own.geometry.iloc[0])
    out = same.loc[touching, ["code", "name", "level", "parent", frame.geometry.name]]
    return gpd.GeoDataFrame(out.sort_values("code").reset_index(drop=True), geometry=frame.geometry.name,
                            crs=gcrs.STORAGE_CRS)


def fence_level(state) -> str | None:
    """The deepest level between the plan's parent and its painted level that the plan may not
    change (``"grid1"`` for a plan of a village that redraws ``grid2`` only), or None.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, editable=["grid2", "grid3"])
    >>> gridgeo.plan.fence_level(state), gridgeo.plan.fence_level(gridgeo.plan.start(
    ...     s.grids, "350582106201", roads=s.roads))
    ('grid1', None)
    """
    _check_state(state)
    scheme = state.scheme
    between = scheme.names[scheme.index(scheme.level_of(state.parent)) + 1:scheme.index(state.level)]
    fixed = [lv for lv in between if lv not in state.editable]
    return fixed[-1] if fixed else None


def fences(state) -> tuple[pd.Series, gpd.GeoDataFrame]:
    """Every block's fence, and the fences: the units of :func:`fence_level` inside the plan.

    A block can be painted only into a grid inside the same fence; an edit
    that moves one across is refused (``level_not_editable``). A block no
    grid holds keeps the fence it started in.

    Returns
    -------
    (Series, GeoDataFrame)
        The fence's code by ``block_id`` ("" for every block when the plan
        has no fence), and the fences' ``code``, ``name``, ``level`` and
        polygon (EPSG:4490), ordered by code (empty without a fence).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, editable=["grid2", "grid3"])
    >>> of, units = gridgeo.plan.fences(state)
    >>> sorted(set(of)) == sorted(units["code"]), len(of) == len(state.blocks)
    (True, True)
    >>> all(of[b] == g[:len(units["code"].iloc[0])] for b, g in state.assignment.items())
    True
    """
    level = fence_level(state)
    index = pd.Index(state._blocks.ids, name="block_id")
    if level is None:
        empty = gpd.GeoDataFrame({"code": [], "name": [], "level": []}, geometry=[], crs=gcrs.STORAGE_CRS)
        return pd.Series("", index=index, name="fence", dtype="str"), empty
    width = state.scheme.width(level)
    now = _prefixes(state._codes, width)
    then = _prefixes(state._start_codes, width)
    of = np.where(now != "", now, then)
    units = state._context[state._context["level"] == level]
    units = units[units["code"].isin(set(of))][["code", "name", "level", units.geometry.name]]
    return (pd.Series(of, index=index, name="fence", dtype="str"),
            gpd.GeoDataFrame(units.sort_values("code").reset_index(drop=True), geometry=units.geometry.name,
                             crs=gcrs.STORAGE_CRS))


def block_pairs(state) -> pd.DataFrame:
    """The pairs of blocks that share an edge (not just a corner): ``a``, ``b`` (block ids) and
    ``length_m``, the graph a brush of radius *n* blocks walks.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> pairs = gridgeo.plan.block_pairs(state)
    >>> list(pairs.columns), bool((pairs["length_m"] > 0).all())
    (['a', 'b', 'length_m'], True)
    """
    _check_state(state)
    b = state._blocks
    return pd.DataFrame({"a": pd.array(b.ids[b.pair_i], dtype="str"), "b": pd.array(b.ids[b.pair_j], dtype="str"),
                         "length_m": b.shared})


def within_steps(state, block: str, steps: int) -> list:
    """The area brush of radius ``steps`` blocks: the block and every block reached from it
    across at most ``steps`` shared edges (:func:`block_pairs`), ordered by block id.

    ``steps=0`` is the block alone.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> first = state.blocks["block_id"].iloc[0]
    >>> gridgeo.plan.within_steps(state, first, 0) == [first]
    True
    >>> len(gridgeo.plan.within_steps(state, first, 2)) > len(gridgeo.plan.within_steps(state, first, 1)) > 1
    True
    """
    _check_state(state)
    if steps < 0:
        raise ValueError(f"steps must be 0 or more, got {steps}")
    b = state._blocks
    start = int(b.positions([block], doing="brush")[0])
    graph = b.graph
    seen = {start}
    ring = [start]
    for _ in range(int(steps)):
        ring = [int(n) for p in ring for n in graph.indices[graph.indptr[p]:graph.indptr[p + 1]] if int(n) not in seen]
        seen.update(ring)
    return sorted(str(b.ids[p]) for p in seen)
