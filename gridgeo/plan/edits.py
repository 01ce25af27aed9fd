"""Edits of a plan: reassign blocks, add, merge, split and redraw grids, renumber, rename.

Each verb takes a :class:`~gridgeo.plan.PlanState` and returns a new one in
which the level is still a valid coverage of its parent: the changed grids
are rebuilt as unions of their blocks, the units below them recoded, and the
whole plan checked with :func:`gridgeo.validate`. An edit gridgeo refuses
raises :class:`~gridgeo.plan.PlanError` (with English and Chinese messages)
and the state it was given is unchanged, as every state is.

New units get the next free sequence number under their parent
(:meth:`gridgeo.schema.CodeScheme.make_code`); :func:`renumber` puts the codes
back in reading order when the planner is done.
"""

from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.plan._kernel import check_state as _check_state
from gridgeo.plan._kernel import new_rows as _new_rows
from gridgeo.plan.errors import DOING_ZH, PlanError
from gridgeo.plan.state import PlanState
from gridgeo.schema import reading_order

__all__ = ["reassign", "unassign", "add", "merge", "split", "redraw", "renumber", "rename"]


def reassign(state: PlanState, blocks, to_code: str) -> PlanState:
    """Move blocks from their grids into a neighbouring grid (painting, as in Districtr).

    Parameters
    ----------
    state : PlanState
    blocks : str or list of str
        Block ids (``state.blocks["block_id"]``); unassigned blocks may be
        painted too.
    to_code : str
        The grid that takes them.

    Returns
    -------
    PlanState
        The same state if every block is already in `to_code`.

    Raises
    ------
    PlanError
        ``unknown_blocks``, ``unknown_unit``; ``not_neighbours`` when some
        blocks reach `to_code` neither directly nor through other moved
        blocks (the grid would get a detached piece); ``empties_unit`` when a
        grid would lose all its blocks (merge it instead); ``invalid_result``.

    Notes
    -----
    A grid that gives blocks away may fall into pieces: that is allowed, and
    :func:`gridgeo.plan.impact` flags it (``contiguous`` False).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> a, b = state.units["code"][:2]
    >>> edge = gridgeo.plan.border_blocks(state, a, b)[:1]
    >>> after = gridgeo.plan.reassign(state, edge, b)
    >>> after.assignment[edge[0]] == b
    True
    >>> int(after.blocks["households"].sum()) == int(state.blocks["households"].sum())
    True
    """
    _check_state(state)
    to_code = _unit(state, to_code, "reassign")
    pos = state._blocks.positions(blocks, doing="reassign")
    moving = np.unique(pos[state._codes[pos] != to_code])
    if not len(moving):
        return state
    detached = _detached(state, moving, state._codes == to_code)
    if len(detached):
        ids = list(state._blocks.ids[detached])
        raise PlanError("not_neighbours",
                        f"cannot reassign block(s) {', '.join(ids[:10])} to {to_code}: they do not touch it, "
                        "directly or through the other blocks moved. Paint blocks next to the grid",
                        f"无法将图块 {'、'.join(ids[:10])} 划入 {to_code}：它们与该网格不相邻。请选择与网格相邻的图块",
                        codes=[to_code], blocks=ids)
    codes = state._codes.copy()
    codes[moving] = to_code
    return state.relabelled(codes, state.units, edit=_entry("reassign", f"{len(moving)} block(s) to {to_code}",
                                                         f"{len(moving)} 个图块划入 {to_code}",
                                                         blocks=list(state._blocks.ids[moving]), to=to_code))


def unassign(state: PlanState, blocks) -> PlanState:
    """Take blocks out of their grids into the holding pen (the eraser, as in Districtr).

    A block in the pen is in no grid (its code is ""): the plan may be edited
    on, and the ground it leaves uncovered is not refused meanwhile, but
    :func:`gridgeo.plan.save` refuses the plan until every block is painted
    into a grid again (with :func:`reassign`, into a grid inside the block's
    fence: :func:`gridgeo.plan.fences`).

    Parameters
    ----------
    state : PlanState
    blocks : str or list of str
        Block ids; those already in the pen are left there.

    Raises
    ------
    PlanError
        ``unknown_blocks``; ``empties_unit`` when a grid would lose all its
        blocks (merge it instead).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> block, grid = next(iter(state.assignment.items()))
    >>> erased = gridgeo.plan.unassign(state, [block])
    >>> erased.assignment[block], int((erased.assignment == "").sum())
    ('', 1)
    >>> gridgeo.plan.reassign(erased, [block], grid).assignment.equals(state.assignment)
    True
    """
    _check_state(state)
    pos = np.unique(state._blocks.positions(blocks, doing="unassign"))
    pos = pos[state._codes[pos] != ""]
    if not len(pos):
        return state
    codes = state._codes.copy()
    codes[pos] = ""
    return state.relabelled(codes, state.units, edit=_entry("unassign", f"{len(pos)} block(s) to the holding pen",
                                                         f"{len(pos)} 个图块移入待分配区",
                                                         blocks=list(state._blocks.ids[pos])))


def add(state: PlanState, blocks, *, parent: str | None = None, name: str | None = None) -> PlanState:
    """A new grid made of some blocks, taken from the grids that hold them.

    Parameters
    ----------
    state : PlanState
    blocks : list of str
        Block ids; they must form one piece.
    parent : str, optional
        The unit the new grid belongs to (a level-1 grid); default: the
        parent of the grids holding most of the blocks' households.
    name : str, optional
        Default ``<village>第<n>网格``.

    Returns
    -------
    PlanState
        With the new grid under the next free code of its parent.

    Raises
    ------
    PlanError
        ``unknown_blocks``, ``not_contiguous`` (the blocks are in pieces),
        ``empties_unit``, ``codes_exhausted``, ``invalid_result``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> first = state.blocks["block_id"][:1].tolist()
    >>> after = gridgeo.plan.add(state, first)
    >>> len(after.units) - len(state.units), after.units["code"].iloc[-1]
    (1, '3505821062010105')
    """
    _check_state(state)
    pos = np.unique(state._blocks.positions(blocks, doing="add a grid"))
    if not len(pos):
        raise PlanError("no_blocks", "a new grid needs at least one block: pick the blocks it is made of",
                        "新网格至少要包含一个图块：请选择组成它的图块")
    if _pieces_of(state, pos) > 1:
        ids = list(state._blocks.ids[pos])
        raise PlanError("not_contiguous", "cannot add a grid of blocks that are not all joined by shared edges: "
                        "pick one piece of blocks", "新网格的图块必须连成一片：请选择相连的图块", blocks=ids)
    parent = parent or _parent_of_blocks(state, pos)
    code = state._next_codes(parent, 1)[0]
    codes = state._codes.copy()
    codes[pos] = code
    units = pd.concat([state.units, _new_rows(state, [code], {code: name})], ignore_index=True)
    return state.relabelled(codes, units, edit=_entry("add", f"{code} from {len(pos)} block(s)",
                                                    f"由 {len(pos)} 个图块新增 {code}",
                                                    blocks=list(state._blocks.ids[pos]), code=code))


def merge(state: PlanState, codes, *, into: str | None = None) -> PlanState:
    """Join neighbouring grids into one.

    Parameters
    ----------
    state : PlanState
    codes : list of str
        Two or more grids forming one piece (each touches another along an edge).
    into : str, optional
        The code (and name) the merged grid keeps; default the smallest.

    Raises
    ------
    PlanError
        ``unknown_unit``, ``not_neighbours`` (the grids are not one piece),
        ``empties_parent`` (a level-1 grid would be left empty),
        ``invalid_result``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> pair = gridgeo.plan.neighbours(state).iloc[0]
    >>> after = gridgeo.plan.merge(state, [pair["a"], pair["b"]])
    >>> len(state.units) - len(after.units)
    1
    """
    _check_state(state)
    codes = list(dict.fromkeys(_unit(state, c, "merge") for c in ([codes] if isinstance(codes, str) else codes)))
    if len(codes) < 2:
        raise PlanError("too_few_grids", f"merging needs two or more different grids, got {codes}: pick another",
                        f"合并至少需要两个不同的网格，当前为 {'、'.join(codes)}：请再选一个", codes=codes)
    into = _unit(state, into, "merge") if into is not None else min(codes)
    if into not in codes:
        raise PlanError("bad_target", f"the grid that keeps its code ({into}) must be one of the grids merged, "
                        f"{codes}", f"保留编码的网格（{into}）必须是参与合并的网格之一", codes=[into, *codes])
    if not _units_joined(state, codes):
        raise PlanError("not_neighbours", f"cannot merge {', '.join(codes)}: they do not form one piece "
                        "(each must share an edge with another). Merge neighbouring grids",
                        f"无法合并 {'、'.join(codes)}：这些网格互不相邻，请合并相邻的网格", codes=codes)
    new = state._codes.copy()
    new[np.isin(new, codes)] = into
    units = state.units[~state.units["code"].isin([c for c in codes if c != into])]
    return state.relabelled(new, units, edit=_entry("merge", f"{', '.join(codes)} into {into}",
                                                  f"{'、'.join(codes)} 合并为 {into}", codes=codes,
                                                  into=into))


def split(state: PlanState, code: str, line, *, crs=None) -> PlanState:
    """Cut a grid along a line (typically a road) into two or more grids.

    The line and the grid's boundary cut the grid into parts; each block
    goes to the part holding most of its area, so the cut follows block
    edges (exactly, when the line runs along roads). The part with the most
    households keeps the code, the name and the other columns; the others
    get the next free codes.

    Parameters
    ----------
    state : PlanState
    code : str
    line : shapely LineString or MultiLineString, or a GeoSeries of lines
        Drawn across the grid from edge to edge.
    crs : str, int or pyproj.CRS, optional
        The line's coordinate system when it is a bare geometry (default
        EPSG:4490).

    Raises
    ------
    PlanError
        ``unknown_unit``; ``line_does_not_split`` when the line leaves all
        the blocks on one side (it must cross the grid from edge to edge);
        ``codes_exhausted``; ``invalid_result``.

    Examples
    --------
    >>> import gridgeo, shapely
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> code = state.units["code"].iloc[0]
    >>> grid = state.units.geometry.iloc[0]
    >>> x = grid.centroid.x
    >>> cut = shapely.LineString([(x, grid.bounds[1] - 0.01), (x, grid.bounds[3] + 0.01)])
    >>> after = gridgeo.plan.split(state, code, cut)
    >>> len(after.units) - len(state.units)
    1
    """
    _check_state(state)
    code = _unit(state, code, "split")
    cut = _storage_geometry(line, crs, "line")
    grid = state.units.loc[state.units["code"] == code].geometry.iloc[0]
    parts = shapely.get_parts(shapely.polygonize(shapely.get_parts(
        shapely.union_all([shapely.boundary(grid), *shapely.get_parts(cut)]))))
    parts = parts[shapely.within(shapely.point_on_surface(parts), grid)]
    mine = np.flatnonzero(state._codes == code)
    side = _majority(state, mine, parts)
    groups = [mine[side == k] for k in np.unique(side)]
    if len(groups) < 2:
        raise PlanError("line_does_not_split",
                        f"the line does not cut grid {code} in two: draw it across the grid from one edge to "
                        "the other, along roads",
                        f"该线未将网格 {code} 分为两部分：请沿道路从网格一侧边界画到另一侧", codes=[code])
    hh = _households(state)
    groups.sort(key=lambda g: -hh[g].sum())
    new_codes = state._next_codes(state.scheme.parent_code(code), len(groups) - 1)
    codes = state._codes.copy()
    for group, new in zip(groups[1:], new_codes):
        codes[group] = new
    return state.relabelled(codes, pd.concat([state.units, _new_rows(state, new_codes)], ignore_index=True),
                          edit=_entry("split", f"{code} into {code}, {', '.join(new_codes)}",
                                      f"{code} 拆分为 {code}、{'、'.join(new_codes)}", code=code,
                                      new=new_codes))


def redraw(state: PlanState, code: str, polygon, *, crs=None) -> PlanState:
    """A grid gets a newly drawn outline: it takes the blocks mostly inside it
    from its neighbours, and gives up the blocks mostly outside it.

    Each piece of blocks it gives up goes to the grid sharing the longest
    edge with that piece.

    Parameters
    ----------
    state : PlanState
    code : str
    polygon : shapely Polygon or MultiPolygon, or a GeoSeries
        The drawn outline.
    crs : str, int or pyproj.CRS, optional
        Its coordinate system when a bare geometry (default EPSG:4490).

    Raises
    ------
    PlanError
        ``unknown_unit``; ``empties_unit`` (the outline holds no block, or
        takes all of a neighbour's); ``enclosed`` (a released piece touches
        no other grid); ``invalid_result``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> code = state.units["code"].iloc[0]
    >>> outline = state.units.geometry.iloc[0].buffer(0.001)       # a bit larger all round
    >>> after = gridgeo.plan.redraw(state, code, outline)
    >>> int((after.assignment == code).sum()) > int((state.assignment == code).sum())
    True
    """
    _check_state(state)
    code = _unit(state, code, "redraw")
    drawn = _storage_geometry(polygon, crs, "polygon")
    candidates = np.flatnonzero(shapely.intersects(state._blocks.geoms, drawn) | (state._codes == code))
    inside = candidates[_majority(state, candidates, np.array([drawn])) == 0]
    codes = state._codes.copy()
    codes[inside] = code
    released = np.setdiff1d(np.flatnonzero(state._codes == code), inside)
    codes = _give_away(state, codes, released, code)
    return state.relabelled(codes, state.units, edit=_entry("redraw", f"{code} redrawn", f"{code} 已重绘", code=code))


def renumber(state: PlanState, parent: str | None = None) -> PlanState:
    """Codes in reading order (north to south, west to east) under each parent.

    Names of the form ``<village>第<n>网格`` follow their new number; units
    below the level keep their own numbers under their grid's new code.

    Parameters
    ----------
    state : PlanState
    parent : str, optional
        Renumber only the grids of this parent (a level-1 grid); default all.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> after = gridgeo.plan.renumber(gridgeo.plan.add(state, state.blocks["block_id"][:1].tolist()))
    >>> sorted(after.units["code"].str[-2:])
    ['01', '02', '03', '04', '05']
    """
    _check_state(state)
    scheme = state.scheme
    units = state.units.copy()
    parents = units["parent"].to_numpy(dtype=object)
    wanted = pd.unique(parents) if parent is None else [str(parent)]
    if parent is not None and str(parent) not in set(parents):
        raise PlanError("unknown_unit", f"no {state.level} unit of this plan has parent {parent}",
                        f"本方案中没有上级为 {parent} 的网格", codes=[str(parent)])
    metric = units.to_crs(state.metric_crs).geometry.array
    renamed = {}
    for p in wanted:
        mine = np.flatnonzero(parents == p)
        for pos, rank in zip(mine, reading_order(metric[mine])):
            renamed[units["code"].iat[pos]] = scheme.make_code(p, state.level, int(rank) + 1)
    renamed = {old: new for old, new in renamed.items() if old != new}
    if not renamed:
        return state
    village = {p: state._village_name(p) for p in wanted}
    names = [_renamed(n, village.get(p, ""), scheme.sequence(c), scheme.sequence(renamed[c]))
             if c in renamed else n for c, n, p in zip(units["code"], units["name"], parents)]
    units["name"] = pd.array(names, dtype="str")
    units["code"] = units["code"].map(lambda c: renamed.get(c, c)).astype("str")
    codes = np.array([renamed.get(c, c) for c in state._codes], dtype=object)
    return state.relabelled(codes, units, renamed=renamed,
                          edit=_entry("renumber", f"{len(renamed)} code(s) changed",
                                                f"{len(renamed)} 个编码已更改", renamed=renamed))


def rename(state: PlanState, code: str, name: str) -> PlanState:
    """Give a grid a new name; its blocks, outline and code stay as they are.

    Parameters
    ----------
    state : PlanState
    code : str
        A grid of the plan's level.
    name : str
        The new name: not empty (leading and trailing spaces are dropped),
        and not the name of another grid of the plan: no two grids of one
        plan share a name, so that a person can tell them apart without
        their codes.

    Raises
    ------
    PlanError
        ``unknown_unit``; ``empty_name``; ``duplicate_name`` naming the grid
        that has the name already.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> code = state.units["code"].iloc[0]
    >>> after = gridgeo.plan.rename(state, code, "东区网格")
    >>> after.units.set_index("code").at[code, "name"], after.assignment.equals(state.assignment)
    ('东区网格', True)
    >>> gridgeo.plan.rename(state, code, "  ")
    Traceback (most recent call last):
    ...
    gridgeo.plan.errors.PlanError: a grid's name cannot be empty: give 3505821062010... a name
    >>> other = state.units["name"].iloc[1]
    >>> gridgeo.plan.rename(state, code, other)
    Traceback (most recent call last):
    ...
    gridgeo.plan.errors.PlanError: grid 3505821062010... (前垵村第1网格) cannot be called 前垵村第2网格: ...
    """
    _check_state(state)
    code = _unit(state, code, "rename")
    name = str(name).strip()
    if not name:
        raise PlanError("empty_name", f"a grid's name cannot be empty: give {code} a name",
                        f"网格名称不能为空：请为 {code} 命名", codes=[code])
    units = state.units.copy()
    at = units["code"] == code
    before = str(units.loc[at, "name"].iloc[0])
    if before == name:
        return state
    holder = units.loc[~at & (units["name"].astype("str").str.strip() == name), "code"]
    if len(holder):
        other = str(holder.iloc[0])
        raise PlanError("duplicate_name",
                        f"grid {code} ({before}) cannot be called {name}: grid {other} of this plan has that name "
                        "already, and two grids of one plan must be told apart by name. Choose another name, "
                        "or rename the other grid first",
                        f"网格“{before}”不能改名为“{name}”：本方案的另一个网格（{other}）已使用该名称，"
                        "同一方案中的网格名称不能重复。请换一个名称，或先为另一个网格改名",
                        codes=[code, other])
    units.loc[at, "name"] = name
    entry = _entry("rename", f"{code} {before} -> {name}", f"{code} 由“{before}”改名为“{name}”", code=code,
                   name=name)
    return dataclasses.replace(state, units=units, log=state.log + (entry,))


# --- helpers the planner's tools use ---------------------------------------------


def neighbours(state: PlanState) -> pd.DataFrame:
    """Pairs of grids that share an edge: ``a``, ``b`` (a < b) and ``length_m``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> list(gridgeo.plan.neighbours(state).columns)
    ['a', 'b', 'length_m']
    """
    _check_state(state)
    return state._neighbours(state._codes).rename(columns={"length": "length_m"})


def border_blocks(state: PlanState, code: str, other: str) -> list:
    """The blocks of grid `code` that share an edge with grid `other`.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> pair = gridgeo.plan.neighbours(state).iloc[0]
    >>> len(gridgeo.plan.border_blocks(state, pair["a"], pair["b"])) > 0
    True
    """
    _check_state(state)
    b = state._blocks
    c = state._codes
    first = (c[b.pair_i] == code) & (c[b.pair_j] == other)
    second = (c[b.pair_j] == code) & (c[b.pair_i] == other)
    pos = np.unique(np.concatenate([b.pair_i[first], b.pair_j[second]]))
    return list(b.ids[pos])


# --- steps ------------------------------------------------------------------------


def _unit(state, code, doing) -> str:
    code = str(code)
    if code not in set(state.units["code"]):
        raise PlanError("unknown_unit", f"cannot {doing}: this plan has no {state.level} unit {code} "
                        f"(it has {', '.join(state.units['code'][:8])}{' ...' if len(state.units) > 8 else ''})",
                        f"无法{DOING_ZH.get(doing, doing)}：本方案中没有网格 {code}", codes=[code])
    return code


def _entry(edit, text, text_zh, **details) -> dict:
    return {"edit": edit, "message": f"{edit} {text}", "message_zh": text_zh, **details}


def _storage_geometry(geometry, crs, what):
    if isinstance(geometry, gpd.GeoSeries):
        return shapely.union_all(gcrs.to_storage(geometry, name=what).geometry.array)
    if not isinstance(geometry, shapely.Geometry):
        raise TypeError(f"{what} should be a shapely geometry or a GeoSeries, got {type(geometry).__name__}")
    return gcrs.to_storage(geometry, source=crs or "cgcs2000", name=what)


def _households(state) -> np.ndarray:
    sums = state._blocks.sums
    return sums["households"].to_numpy(dtype=float) if "households" in sums else state._blocks.area


def _majority(state, positions, parts) -> np.ndarray:
    """For each block, the part holding more than half of its area, -1 for none."""
    metric_parts = np.asarray(gpd.GeoSeries(parts, crs=gcrs.STORAGE_CRS).to_crs(state.metric_crs).array)
    geoms = state._blocks.metric_geoms[positions]
    blk, part = shapely.STRtree(metric_parts).query(geoms, predicate="intersects")
    share = shapely.area(shapely.intersection(geoms[blk], metric_parts[part])) / state._blocks.area[positions][blk]
    best = np.full(len(positions), -1)
    if len(blk):
        table = pd.DataFrame({"blk": blk, "part": part, "share": share}).sort_values(["blk", "share"])
        last = table.groupby("blk").tail(1)
        last = last[last["share"] > 0.5]
        best[last["blk"].to_numpy()] = last["part"].to_numpy()
    return best


def _subgraph_components(state, positions):
    """Connected components of the blocks at `positions` (labels aligned with them)."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    b = state._blocks
    n = len(b.ids)
    member = np.zeros(n, dtype=bool)
    member[positions] = True
    keep = member[b.pair_i] & member[b.pair_j]
    graph = sparse.csr_matrix((np.ones(keep.sum()), (b.pair_i[keep], b.pair_j[keep])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels[positions]


def _pieces_of(state, positions) -> int:
    return len(np.unique(_subgraph_components(state, positions)))


def _detached(state, moving, target_mask) -> np.ndarray:
    """The moving blocks not joined to the target's blocks through target or moving blocks."""
    together = np.union1d(np.flatnonzero(target_mask), moving)
    labels = _subgraph_components(state, together)
    joined = np.unique(labels[target_mask[together]])
    return together[~np.isin(labels, joined) & ~target_mask[together]]


def _units_joined(state, codes) -> bool:
    """Whether the grids form one piece, each touching another along an edge."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components
    pairs = state._neighbours(state._codes)
    pairs = pairs[pairs["a"].isin(codes) & pairs["b"].isin(codes)]
    index = {c: k for k, c in enumerate(codes)}
    graph = sparse.csr_matrix((np.ones(len(pairs)), (pairs["a"].map(index), pairs["b"].map(index))),
                              shape=(len(codes), len(codes)))
    return connected_components(graph, directed=False)[0] == 1


def _parent_of_blocks(state, positions) -> str:
    current = state._codes[positions]
    assigned = current[current != ""]
    if len(assigned):
        weights = pd.Series(_households(state)[positions][current != ""] + 1e-9).groupby(
            [state.scheme.parent_code(c) for c in assigned]).sum()
        return str(weights.idxmax())
    parent_level = state.scheme.parent_level(state.level)
    if state.scheme.level_of(state.parent) == parent_level:
        return state.parent
    raise PlanError("no_parent", "these blocks belong to no grid: say which unit the new grid belongs to (parent=)",
                    "这些图块不属于任何网格：请指明新网格所属的上级单元")


def _renamed(name, village, old, new) -> str:
    return f"{village}第{new}网格" if village and name == f"{village}第{old}网格" else name


def _give_away(state, codes, released, code) -> np.ndarray:
    """Each connected piece of released blocks to the grid sharing the longest edge with it."""
    if not len(released):
        return codes
    b = state._blocks
    piece = np.full(len(codes), -1)
    piece[released] = _subgraph_components(state, released)
    rows = []
    for a, c in ((b.pair_i, b.pair_j), (b.pair_j, b.pair_i)):
        mask = (piece[a] >= 0) & (piece[c] < 0) & (codes[c] != code) & (codes[c] != "")
        rows.append(pd.DataFrame({"piece": piece[a][mask], "to": codes[c][mask], "length": b.shared[mask]}))
    edges = pd.concat(rows).groupby(["piece", "to"], as_index=False)["length"].sum()
    best = edges.sort_values(["piece", "length", "to"], ascending=[True, False, True]).groupby("piece").head(1)
    target = dict(zip(best["piece"], best["to"]))
    stuck = [p for p in np.unique(piece[released]) if p not in target]
    if stuck:
        ids = list(b.ids[released[np.isin(piece[released], stuck)]])
        raise PlanError("enclosed", f"the outline drawn for {code} gives up block(s) {', '.join(ids[:10])} that "
                        "touch no other grid: draw the outline so that they stay inside, or reassign them first",
                        f"为 {code} 绘制的边界放弃的图块 {'、'.join(ids[:10])} 不与其他网格相邻：请调整边界使其保留在内",
                        codes=[code], blocks=ids)
    out = codes.copy()
    out[released] = [target[p] for p in piece[released]]
    return out
