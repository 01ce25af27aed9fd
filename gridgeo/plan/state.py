"""A plan as blocks painted into grids: the state every edit, impact and diff works on.

:func:`start` opens the units of one level inside a parent (the level-2 grids
of a village) as a :class:`PlanState`: the parent's road-bounded blocks, which
grid each block belongs to, and everything about the blocks that later work
needs, computed once: their household, population and unit sums, the
stations and the walking coverage in each, their areas, perimeters and the
length of every edge they share. An edit then only relabels blocks: figures,
contiguity and compactness of every grid follow from the labels by a few
array sums, with no spatial join.

A state never changes. Every edit (:mod:`gridgeo.plan.edits`) returns a new
one that shares the blocks, after checking it with :func:`gridgeo.validate`;
an edit that would introduce an error is refused with a :class:`PlanError`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo import crs as gcrs
from gridgeo.plan.blocks import blocks as make_blocks
from gridgeo.plan.blocks import point_blocks, with_sums
from gridgeo.plan._kernel import (AREA_RTOL as _AREA_RTOL, GRID_COLUMNS as _GRID_COLUMNS,  # noqa: F401
                                  SHARED_MIN_M as _SHARED_MIN_M)
from gridgeo.plan._kernel import labels as _labels
from gridgeo.plan._kernel import prefixes as _prefixes
from gridgeo.plan._kernel import shared_edges as _shared_edges
from gridgeo.plan._kernel import union as _union
from gridgeo.plan._kernel import unit_rows as _unit_rows
from gridgeo.plan._kernel import validation as _validation
from gridgeo.plan.errors import DOING_ZH, PlanError
from gridgeo.schema import COUNT_COLUMNS, DEFAULT_SCHEME, CodeScheme, check

__all__ = ["PlanState", "start"]



@dataclass(frozen=True, eq=False)
class _Blocks:
    """The blocks of a state and what is known about them; shared by every version."""

    frame: gpd.GeoDataFrame    # block_id, sums..., geometry (EPSG:4490)
    ids: np.ndarray            # block ids
    position: dict             # block id -> position
    geoms: np.ndarray          # storage geometries
    metric: pyproj.CRS
    metric_geoms: np.ndarray
    area: np.ndarray           # m²
    perimeter: np.ndarray      # m
    pair_i: np.ndarray         # neighbouring blocks, i < j
    pair_j: np.ndarray
    shared: np.ndarray         # m of edge shared by each pair
    sums: pd.DataFrame         # per block: addresses, households..., stations, households_<m>min
    circles: tuple             # life circles (minutes) with a coverage column

    @property
    def graph(self) -> sparse.csr_matrix:
        """Symmetric adjacency of the blocks, weighted by shared edge length."""
        from scipy import sparse
        n = len(self.ids)
        rows = np.concatenate([self.pair_i, self.pair_j])
        cols = np.concatenate([self.pair_j, self.pair_i])
        return sparse.csr_matrix((np.concatenate([self.shared, self.shared]), (rows, cols)), shape=(n, n))

    def positions(self, block_ids, *, doing) -> np.ndarray:
        """Positions of block ids, or a PlanError naming the unknown ones."""
        ids = [str(b) for b in ([block_ids] if isinstance(block_ids, str) else block_ids)]
        unknown = [b for b in ids if b not in self.position]
        if unknown:
            shown = ", ".join(unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            raise PlanError("unknown_blocks",
                            f"cannot {doing}: {len(unknown)} block(s) are not blocks of this plan: {shown}. "
                            "Use the block_id values of state.blocks",
                            f"无法{DOING_ZH.get(doing, doing)}：{len(unknown)} 个图块不属于本方案：{shown}。"
                            "请使用 state.blocks 中的 block_id",
                            blocks=unknown)
        return np.array([self.position[b] for b in ids], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class PlanState:
    """One version of a level's units inside a parent unit, as blocks painted into grids.

    Make one with :func:`start`; change it with the verbs of
    :mod:`gridgeo.plan` (:func:`~gridgeo.plan.split`, :func:`~gridgeo.plan.merge`,
    :func:`~gridgeo.plan.reassign` ...), each returning a new state; measure
    it with :func:`~gridgeo.plan.impact` and compare two with
    :func:`~gridgeo.plan.diff`.

    Attributes
    ----------
    parent : str
        The code of the unit whose inside is planned (a village).
    level : str
        The level whose units are painted (``"grid2"``).
    units : GeoDataFrame
        The level's units now: ``code``, ``name``, ``level``, ``parent``, any
        other columns the grids had, the polygon (EPSG:4490), ordered by code.
    scheme : CodeScheme
    editable : tuple of str
        The levels an edit may change: the level itself, the levels between
        it and the parent (their units follow their children) and the levels
        below it (their units are recoded when their block changes grid).
    log : tuple of dict
        The edits applied since :func:`start`, oldest first.
    attrs : dict
        Metadata: ``"division"`` (the report of
        :func:`~gridgeo.plan.suggest_division`), ``"import"`` (of
        :func:`~gridgeo.plan.read_csv`), ``"store"`` (the store's plan and
        the revisions the state is based on, from :func:`~gridgeo.plan.from_store`).
    """

    parent: str
    level: str
    units: gpd.GeoDataFrame
    scheme: CodeScheme
    editable: tuple
    log: tuple
    attrs: dict
    _blocks: _Blocks = field(repr=False)
    _codes: np.ndarray = field(repr=False)           # per block: the unit's code, "" for none
    _start_codes: np.ndarray = field(repr=False)     # per block, at start: for the levels in between
    _context: gpd.GeoDataFrame = field(repr=False)   # the parent and the units between it and the level
    _children: gpd.GeoDataFrame = field(repr=False)  # units below the level, now
    _child_block: np.ndarray = field(repr=False)     # the block of each child
    _errors: frozenset = field(repr=False)           # (kind, code) of the validation errors now

    def __repr__(self) -> str:
        return (f"<PlanState {self.level} in {self.parent}: {len(self.units)} units on {len(self._codes)} blocks, "
                f"{len(self.log)} edit(s)>")

    # --- reading ----------------------------------------------------------------

    @property
    def blocks(self) -> gpd.GeoDataFrame:
        """The blocks with their sums and the ``grid`` (code) each is painted into ("" for none)."""
        out = self._blocks.frame.copy()
        out.insert(1, "grid", pd.array(self._codes, dtype="str"))
        return out

    @property
    def assignment(self) -> pd.Series:
        """The block-to-grid table: grid code by block id ("" for an unassigned block)."""
        return pd.Series(self._codes, index=pd.Index(self._blocks.ids, name="block_id"), name="grid",
                         dtype="str")

    @property
    def metric_crs(self) -> pyproj.CRS:
        """The CRS areas and lengths are measured in."""
        return self._blocks.metric

    def to_grids(self) -> gpd.GeoDataFrame:
        """Every unit the plan holds: the levels between the parent and the level
        (following their children), the level, and the levels below it.

        Returns
        -------
        GeoDataFrame
            The grids' columns, EPSG:4490, ordered by level then code: what
            :meth:`gridgeo.store.Plan.save` takes and :func:`gridgeo.validate` checks.

        Examples
        --------
        >>> import gridgeo
        >>> s = gridgeo.sample.load()
        >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
        >>> state.to_grids().groupby("level").size().to_dict()
        {'grid1': 1, 'grid2': 4}
        """
        parts = [self._between(), self.units, self._children]
        frame = pd.concat([p for p in parts if len(p)], ignore_index=True)
        out = gpd.GeoDataFrame(frame, geometry="geometry", crs=gcrs.STORAGE_CRS)
        order = out["level"].map({lv: i for i, lv in enumerate(self.scheme.names)})
        return out.iloc[np.lexsort((out["code"].to_numpy(), order.to_numpy()))].reset_index(drop=True)

    # --- internals the verbs share --------------------------------------------------

    def _between(self) -> gpd.GeoDataFrame:
        """The units between the parent and the level, each the union of its blocks."""
        units = self._context[self._context["code"] != self.parent]
        if not len(units):
            return units
        out = units.copy()
        geoms = out.geometry.array.copy()
        prefixes = {lv: (_prefixes(self._codes, self.scheme.width(lv)), _prefixes(self._start_codes,
                                                                                 self.scheme.width(lv)))
                    for lv in pd.unique(out["level"])}
        for pos, (code, level) in enumerate(zip(out["code"], out["level"])):
            now, then = prefixes[level]
            if np.any((now == code) != (then == code)):
                geoms[pos] = _union(self._blocks.geoms[now == code])
        out["geometry"] = geoms
        return out

    def _neighbours(self, codes) -> pd.DataFrame:
        """Pairs of units (a, b) sharing an edge, with its length in metres."""
        b = self._blocks
        a, c = codes[b.pair_i], codes[b.pair_j]
        keep = (a != c) & (a != "") & (c != "")
        pairs = pd.DataFrame({"a": np.minimum(a[keep], c[keep]), "b": np.maximum(a[keep], c[keep]),
                              "length": b.shared[keep]})
        return pairs.groupby(["a", "b"], as_index=False)["length"].sum()

    def _village_name(self, parent_code: str) -> str:
        """The name new units are named after: the village's (or the nearest named ancestor's)."""
        names = dict(zip(self._context["code"], self._context["name"]))
        width = self.scheme.width(self.scheme.village_level)
        for code in (parent_code[:width], parent_code, self.parent):
            if names.get(code):
                return names[code]
        return ""

    def _next_codes(self, parent_code: str, count: int) -> list[str]:
        """New codes under a parent, after every sequence number used in this plan."""
        used = [self.scheme.sequence(c) for c in self.units["code"] if self.scheme.parent_code(c) == parent_code]
        used += [self.scheme.sequence(c) for c in pd.unique(self._start_codes)
                 if c and self.scheme.parent_code(c) == parent_code]
        first = max(used, default=0) + 1
        try:
            return [self.scheme.make_code(parent_code, self.level, first + k) for k in range(count)]
        except ValueError as exc:
            raise PlanError("codes_exhausted", f"no new {self.level} code is left under {parent_code}: {exc}. "
                            "Renumber the units first (gridgeo.plan.renumber)",
                            f"{parent_code} 下已无可用的新编码：请先重新编号（gridgeo.plan.renumber）",
                            codes=[parent_code]) from None

    def relabelled(self, codes, units, *, edit: dict, renamed: dict | None = None, attrs=None,
                 refuse: bool = True) -> "PlanState":
        """The state with these block labels and units, checked; or a PlanError and nothing changed.

        ``units`` holds the rows the level should have; a geometry of None is
        computed from the blocks, as is the geometry of every unit whose
        blocks changed. ``renamed`` maps old codes to new ones (renumbering).
        With ``refuse=False`` (an import) validation errors are kept, not refused.
        """
        codes = np.asarray(codes, dtype=object)
        renamed = renamed or {}
        moved = codes != np.array([renamed.get(c, c) for c in self._codes], dtype=object)
        touched = set(codes[moved]) | set(self._codes[moved])
        units = units.copy()
        geoms = units.geometry.array.copy()
        for pos, code in enumerate(units["code"]):
            if geoms[pos] is None or code in touched:
                geoms[pos] = _union(self._blocks.geoms[codes == code])
        units["geometry"] = geoms
        units = units.sort_values("code").reset_index(drop=True)
        _refuse_empty(units, codes, self.level)
        children = _recoded_children(self, codes)
        new = dataclasses.replace(self, units=units, _codes=codes, _children=children,
                                  log=self.log + (edit,), attrs=dict(self.attrs if attrs is None else attrs))
        _refuse_empty_between(new)
        _refuse_fixed_levels(self, new)
        return _checked(self, new, edit, refuse=refuse)


def _refuse_empty(units, codes, level):
    present = set(codes)
    empty = [c for c in units["code"] if c not in present]
    if empty:
        raise PlanError("empties_unit",
                        f"the edit would leave {level} unit(s) {', '.join(empty)} without any block: "
                        "merge them into a neighbour instead (gridgeo.plan.merge)",
                        f"该操作会使网格 {'、'.join(empty)} 不含任何图块：请改用合并（gridgeo.plan.merge）",
                        codes=empty)


def _refuse_empty_between(state):
    between = state._context[state._context["code"] != state.parent]
    for code, level in zip(between["code"], between["level"]):
        width = state.scheme.width(level)
        if not np.any(_prefixes(state._codes, width) == code):
            raise PlanError("empties_parent",
                            f"the edit would leave {level} unit {code} without any {state.level} unit: "
                            "keep at least one grid in it",
                            f"该操作会使上级单元 {code} 不含任何下级网格：请至少保留一个网格",
                            codes=[code])


def _refuse_fixed_levels(before, after):
    """Refuse an edit that changes a level the state may not change (a store plan's other levels)."""
    changed = set()
    if np.any(before._codes != after._codes) or not before.units[["code", "name"]].equals(
            after.units[["code", "name"]]):
        changed.add(before.level)
    between = before._context[before._context["code"] != before.parent]
    for level in pd.unique(between["level"]):
        # a block moves between units of a level in between when it lands in another than the one
        # it was in (or, out of the holding pen, than the one it started in); into the pen it moves nowhere
        if len(_fence_moves(before, after, level)[0]):
            changed.add(level)
    recoded = before._children["code"].to_numpy() != after._children["code"].to_numpy()
    changed |= set(after._children["level"][recoded])
    fixed = sorted(changed - set(before.editable))
    if fixed:
        fenced = [lv for lv in fixed if lv in set(between["level"])]
        crossed = _crossed(before, after, fenced)
        if crossed:
            label = {lv: before.scheme.level(lv).label or lv for lv in before.scheme.names}
            names = dict(zip(before._context["code"], before._context["name"]))
            pairs_en = "; ".join(f"{names.get(a) or a} ({a}) -> {names.get(b) or b} ({b})" for a, b in crossed[:5])
            pairs_zh = "；".join(f"{names.get(a) or a}（{a}）→ {names.get(b) or b}（{b}）" for a, b in crossed[:5])
            blocks = list(before._blocks.ids[_crossing_blocks(before, after, fenced)][:50])
            raise PlanError("level_not_editable",
                            f"the edit would move blocks across the {'/'.join(fixed)} boundary: {pairs_en}. "
                            f"This plan redraws {', '.join(before.editable)} only: paint inside one "
                            f"{fixed[-1]} unit, or open a plan that redraws {fixed[-1]} too",
                            f"该操作会把图块跨越{label[fenced[-1]]}边界：{pairs_zh}。本方案只调整"
                            f"{'、'.join(label[lv] for lv in before.editable)}：请在同一个{label[fenced[-1]]}内绘制，"
                            f"或新建包含{label[fenced[-1]]}的方案",
                            codes=sorted({c for pair in crossed for c in pair}), blocks=blocks)
        raise PlanError("level_not_editable",
                        f"the edit would change level(s) {fixed}, which this plan does not redraw "
                        f"(it redraws {list(before.editable)}): open a plan that includes them, e.g. "
                        f"store.create_plan(..., levels={sorted(set(before.editable) | set(fixed))})",
                        f"该操作会改动本方案不包含的层级 {fixed}：请新建包含这些层级的方案",
                        codes=[])


def _fence_moves(before, after, level):
    """The blocks an edit puts into another unit of ``level`` than the one they were in (a block
    out of the holding pen: than the one it started in), with the units (from, to)."""
    width = before.scheme.width(level)
    was = _prefixes(before._codes, width)
    was = np.where(was != "", was, _prefixes(before._start_codes, width))
    now = _prefixes(after._codes, width)
    moved = np.flatnonzero((now != "") & (was != "") & (was != now))
    return moved, was[moved], now[moved]


def _crossed(before, after, levels) -> list:
    """The (from, to) units of ``levels`` that blocks of an edit move between."""
    pairs = set()
    for level in levels:
        _, a, b = _fence_moves(before, after, level)
        pairs |= set(zip(a, b))
    return sorted(pairs)


def _crossing_blocks(before, after, levels) -> np.ndarray:
    return np.unique(np.concatenate([_fence_moves(before, after, level)[0] for level in levels] or [[]])).astype(int)


def _recoded_children(state, codes) -> gpd.GeoDataFrame:
    """The units below the level, recoded where their block changed grid or their grid its code."""
    children = state._children
    if not len(children):
        return children
    scheme = state.scheme
    out = children.copy()
    child_level = scheme.child_level(state.level)
    direct = (out["level"] == child_level).to_numpy()
    new_parent = out["parent"].to_numpy(dtype=object).copy()
    blk = state._child_block[direct]
    new_parent[direct] = np.where(blk >= 0, codes[np.clip(blk, 0, None)], new_parent[direct])
    mapping = {}
    used: dict[str, set] = {}
    for code, parent in zip(out["code"][direct], new_parent[direct]):
        used.setdefault(parent, set()).add(scheme.sequence(code) if code[:len(parent)] == parent else 0)
    for pos in np.flatnonzero(direct):
        code, parent = out["code"].iat[pos], new_parent[pos]
        if code.startswith(parent):
            continue
        seq = scheme.sequence(code)
        taken = used.setdefault(parent, set())
        if seq in taken:
            seq = max(taken) + 1
        taken.add(seq)
        mapping[code] = scheme.make_code(parent, child_level, seq)
    out.loc[direct, "parent"] = new_parent[direct]
    # deeper levels follow their parent's new code
    codes_now = out["code"].to_numpy(dtype=object).copy()
    codes_now[direct] = [mapping.get(c, c) for c in codes_now[direct]]
    for level in scheme.names[scheme.index(child_level) + 1:]:
        deeper = (out["level"] == level).to_numpy()
        width = scheme.width(scheme.parent_level(level))
        for pos in np.flatnonzero(deeper):
            old_parent = codes_now[pos][:width]
            if old_parent in mapping:
                mapping[codes_now[pos]] = mapping[old_parent] + codes_now[pos][width:]
                codes_now[pos] = mapping[codes_now[pos]]
                out.iat[pos, out.columns.get_loc("parent")] = mapping[old_parent]
    out["code"] = pd.array(codes_now, dtype="str")
    return out


def _checked(before, after, edit, *, refuse=True) -> PlanState:
    """The new state if validation finds no error the old one did not have."""
    report = _validation(after)
    errors = report[report["severity"] == "error"]
    keys = frozenset(zip(errors["kind"], errors["code"]))
    new = errors[[k not in before._errors for k in zip(errors["kind"], errors["code"])]]
    pen = after._codes == ""
    if len(new) and pen.any():
        # the holding pen: ground left uncovered by blocks waiting to be painted is not refused
        # while editing (gridgeo.plan.save refuses a state with blocks in the pen)
        held = shapely.buffer(_union(after._blocks.geoms[pen]), 1e-7)
        waiting = (new["kind"] == "uncovered").to_numpy() & shapely.covers(held, np.asarray(new.geometry.array))
        new = new[~waiting]
    if refuse and len(new):
        first = new.iloc[0]
        raise PlanError("invalid_result",
                        f"{edit.get('edit', 'the edit')} refused: the result would fail validation with "
                        f"{len(new)} new error(s), first {first['kind']} at {first['code']}: {first['message_en']}",
                        f"{edit.get('edit', '该操作')} 被拒绝：结果将新增 {len(new)} 个校验错误，"
                        f"首个为 {first['code']}：{first['message_zh']}",
                        codes=list(pd.unique(new["code"])), report=new.reset_index(drop=True))
    return dataclasses.replace(after, _errors=keys)


# ----------------------------------------------------------------------------
# start
# ----------------------------------------------------------------------------


def start(grids, parent: str, *, level: str | None = None, roads=None, blocks=None, addresses=None,
          stations=None, coverage=None, network=None, editable=None, scheme: CodeScheme = DEFAULT_SCHEME,
          name: str = "grids") -> PlanState:
    """Open the units of a level inside a parent unit as a plan state to edit and measure.

    Parameters
    ----------
    grids : GeoDataFrame
        The grids: at least the parent unit, the units of `level` inside it
        and those between; units below `level` inside the parent are carried
        along (recoded when their block changes grid). Any CRS
        :func:`gridgeo.crs.to_storage` accepts.
    parent : str
        The code of the unit whose inside is planned (a village, a level-1 grid).
    level : str, optional
        The level painted; default ``"grid2"`` when the scheme has it below
        the parent, else the parent's child level.
    roads : GeoDataFrame, optional
        The street network the blocks are cut from (:func:`gridgeo.plan.blocks`);
        not needed with `blocks`.
    blocks : GeoDataFrame, optional
        Blocks made before (:func:`gridgeo.plan.blocks`, or enterprise plots
        at level 3), in the parent; those whose inside lies outside it are
        ignored.
    addresses : GeoDataFrame, optional
        Standard addresses, summed per block (households, population, units).
        Without them the blocks' own sums are used.
    stations : GeoDataFrame, optional
        Stations, counted per block: a grid with none is "without a station".
    coverage : GeoDataFrame, optional
        :func:`gridgeo.coverage.nearest_station` of the addresses: the
        households within each life circle are summed per block.
    network : gridgeo.network.WalkNetwork or roads, optional
        With `stations` and `addresses` and no `coverage`: computes it.
    editable : list of str, optional
        The levels edits may change (default: every level of the plan). A
        store plan that redraws ``grid2`` only refuses edits that move blocks
        between level-1 grids.
    scheme : CodeScheme
    name : str
        What to call `grids` in messages.

    Returns
    -------
    PlanState

    Raises
    ------
    PlanError
        ``unknown_parent`` if no unit has the code; ``blocks_do_not_follow``
        if a unit of the level is not a union of whole blocks (give
        ``blocks`` made with ``boundaries=`` the grids, or the roads).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses,
    ...                            stations=s.stations)
    >>> state
    <PlanState grid2 in 350582106201: 4 units on 106 blocks, 0 edit(s)>
    >>> int(state.blocks["households"].sum()) == int(gridgeo.stats.figures(
    ...     s.grids, addresses=s.addresses).loc["350582106201", "households"])
    True
    """
    frame = check(gcrs.to_storage(grids, name=name), "grids", scheme=scheme, name=name)
    scope = frame[frame["code"] == str(parent)]
    if scope.empty:
        raise PlanError("unknown_parent", f"{name} has no unit with code {parent!r}: pass the code of a "
                        "village (or level-1 grid) present in the grids",
                        f"{name} 中没有编码为 {parent!r} 的单元：请传入存在的村社（或一级网格）编码",
                        codes=[str(parent)])
    parent = str(parent)
    scope_level = scope["level"].iloc[0]
    level = level or _default_level(scheme, scope_level)
    if scheme.index(level) <= scheme.index(scope_level):
        raise ValueError(f"level {level!r} is not below the parent {parent} ({scope_level})")
    inside = frame[frame["code"].str.startswith(parent) & (frame["code"] != parent)]
    depth = inside["level"].map(scheme.index)
    units = _unit_rows(inside[inside["level"] == level])
    context = pd.concat([scope, inside[(depth < scheme.index(level)).to_numpy()]], ignore_index=True)
    context = gpd.GeoDataFrame(context, geometry="geometry", crs=gcrs.STORAGE_CRS)
    children = gpd.GeoDataFrame(inside[(depth > scheme.index(level)).to_numpy()].reset_index(drop=True),
                                geometry="geometry", crs=gcrs.STORAGE_CRS)

    block_frame = _scope_blocks(scope, units, roads=roads, blocks=blocks, addresses=addresses)
    topo = _topology(block_frame, scope, stations=stations, coverage=coverage, network=network,
                     addresses=addresses)
    codes = _labels(topo, units, level)
    child_block = point_blocks(topo.geoms, shapely.point_on_surface(children.geometry.array))
    present = [lv for lv in scheme.names if lv in set(context["level"]) | set(children["level"]) | {level}]
    state = PlanState(
        parent=parent, level=level, units=units, scheme=scheme,
        editable=tuple(present[1:] if editable is None else [lv for lv in scheme.names if lv in set(editable)]),
        log=(), attrs={}, _blocks=topo, _codes=codes, _start_codes=codes.copy(), _context=context,
        _children=children, _child_block=child_block, _errors=frozenset())
    report = _validation(state)
    errors = report[report["severity"] == "error"]
    return dataclasses.replace(state, _errors=frozenset(zip(errors["kind"], errors["code"])))


def _default_level(scheme, scope_level):
    main = scheme.main_level
    if scheme.index(main) > scheme.index(scope_level):
        return main
    child = scheme.child_level(scope_level)
    if child is None:
        raise ValueError(f"a {scope_level} unit has no level below it to plan")
    return child


def _scope_blocks(scope, units, *, roads, blocks, addresses):
    """The blocks inside the parent, with their sums."""
    if blocks is None:
        if roads is None:
            raise ValueError("start needs the roads to cut the parent into blocks (roads=...), "
                             "or the blocks themselves (blocks=gridgeo.plan.blocks(...))")
        return make_blocks(scope, roads, addresses, boundaries=units if len(units) else None)
    given = gcrs.to_storage(blocks, name="blocks")
    if "block_id" not in given.columns:
        raise ValueError("blocks need a block_id column: make them with gridgeo.plan.blocks")
    inside = shapely.covers(scope.geometry.iloc[0], shapely.point_on_surface(given.geometry.array))
    given = given[inside].reset_index(drop=True)
    if addresses is not None:
        keep = [c for c in given.columns if c in ("block_id", "parent", "area_m2") or c == given.geometry.name]
        given = with_sums(given[keep], addresses)
    return given


def _topology(frame, scope, *, stations, coverage, network, addresses) -> _Blocks:
    geoms = frame.geometry.array
    metric = gcrs.metric_crs(scope)
    metric_geoms = np.asarray(gpd.GeoSeries(geoms, crs=gcrs.STORAGE_CRS).to_crs(metric).array, dtype=object)
    i, j, shared = _shared_edges(metric_geoms)
    sums = pd.DataFrame({c: frame[c].to_numpy() for c in ("addresses",) + COUNT_COLUMNS if c in frame.columns})
    if stations is not None:
        points = check(gcrs.to_storage(stations, name="stations"), "stations", name="stations")
        where = point_blocks(geoms, points.geometry.array)
        sums["stations"] = np.bincount(where[where >= 0], minlength=len(frame))
    circles = ()
    if coverage is None and network is not None and stations is not None and addresses is not None:
        coverage = _coverage(geoms, addresses, stations, network)
    if coverage is not None:
        circles = _coverage_sums(sums, geoms, coverage)
    ids = frame["block_id"].astype("str").to_numpy(dtype=object)
    return _Blocks(
        frame=frame.reset_index(drop=True), ids=ids, position={b: k for k, b in enumerate(ids)}, geoms=np.asarray(geoms),
        metric=metric, metric_geoms=metric_geoms, area=shapely.area(metric_geoms),
        perimeter=shapely.length(metric_geoms),
        pair_i=i, pair_j=j, shared=shared, sums=sums, circles=circles)


def _coverage(block_geoms, addresses, stations, network):
    from gridgeo.coverage import nearest_station

    points = gcrs.to_storage(addresses, name="addresses")
    inside = point_blocks(block_geoms, points.geometry.array) >= 0
    return nearest_station(points[inside], stations, network)


def _coverage_sums(sums, block_geoms, coverage) -> tuple:
    """Households within each life circle, per block; the circles' minutes."""
    circles = sorted(int(m) for m in coverage.attrs.get("circles", {}))
    if not circles:
        raise ValueError("coverage should be the result of gridgeo.coverage.nearest_station "
                         "(its attrs name the life circles)")
    points = gcrs.to_storage(coverage, name="coverage")
    where = point_blocks(block_geoms, points.geometry.array)
    inside = where >= 0
    hh = pd.to_numeric(points["households"], errors="coerce").fillna(0).to_numpy() if "households" in points \
        else np.ones(len(points))
    circle = pd.to_numeric(points["circle"], errors="coerce").to_numpy()
    for minutes in circles:
        within = inside & (circle <= minutes)
        sums[f"households_{minutes}min"] = np.bincount(where[within], weights=hh[within], minlength=len(sums))
    return tuple(circles)


