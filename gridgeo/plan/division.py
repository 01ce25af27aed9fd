"""Automatic division: grids of whole blocks, contiguous, compact, with households inside a band.

The method is recombination on spanning trees, as in GerryChain's ReCom
(DeFord, Duchin and Solomon, "Recombination: a family of Markov chains for
redistricting", 2021), used here as an optimiser rather than a sampler:

1. **first draft**: the blocks' adjacency graph is cut recursively along
   random spanning trees, each cut chosen so that both sides can hold their
   share of grids inside the band (GerryChain's ``recursive_tree_part``);
2. **recombination**: two neighbouring grids are merged, several random
   spanning trees of the merged area are drawn, and the cut edge that best
   balances the two halves is taken if it improves the plan; a grid under
   the band may instead be merged into a neighbour, and one over it split,
   when that brings them inside;
3. the plan's objective, compared in this order: fewer grids outside the
   band, fewer households outside it, a shorter total boundary between
   grids (more compact grids).

Every grid is a subtree of a spanning tree of its blocks, so it is always
contiguous. Unlike spopt's max-p (a floor only) the band has a ceiling too;
unlike GerryChain's tolerance around one ideal size the number of grids
follows from the households.
"""

from __future__ import annotations

import logging
import time
import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.plan._kernel import checked_band, new_rows, prefixes, shared_edges, union
from gridgeo.plan.impact import DEFAULT_BAND
from gridgeo.plan.state import PlanState
from gridgeo.schema import DEFAULT_SCHEME, number_units

__all__ = ["suggest_division", "DIVISION_COLUMNS"]

log = logging.getLogger(__name__)

DIVISION_COLUMNS = ("parent", "blocks", "total", "grids", "under", "within", "over", "share_within", "min", "max",
                    "oversize_blocks", "steps", "seconds")
"""The columns of the division report (``attrs["division"]``)."""

_TREES = 4          # spanning trees drawn per recombination
_PATIENCE = 120     # recombinations without improvement before stopping
_MAX_STEPS = 1500   # recombinations at most, per parent


def suggest_division(parent, blocks=None, *, band=DEFAULT_BAND, of: str = "households", seed: int = 0,
                     patience: int = _PATIENCE, max_steps: int = _MAX_STEPS, scheme=None):
    """Propose grids of whole blocks, contiguous and compact, with households inside the band.

    Parameters
    ----------
    parent : PlanState or GeoDataFrame
        A plan state: its level is divided afresh inside each unit of the
        level above (each level-1 grid of the village), and the new state is
        returned, ready to adjust by hand. Or units to divide (level-1 grids,
        a park), with their `blocks`: a GeoDataFrame of new units of the
        level below them is returned.
    blocks : GeoDataFrame, optional
        With a GeoDataFrame `parent`: the blocks
        (:func:`gridgeo.plan.blocks`), with the `of` column.
    band : (low, high), default (300, 500)
        The target of `of` per grid, bounds included.
    of : str, default "households"
    seed : int, default 0
        The same seed gives the same division.
    patience, max_steps : int
        Stop after `patience` recombinations without improvement, or after
        `max_steps`, per unit divided.
    scheme : CodeScheme, optional
        With a GeoDataFrame `parent`: the code scheme of the new units' codes
        (default :data:`gridgeo.schema.DEFAULT_SCHEME`); a plan state has its own.

    Returns
    -------
    PlanState or GeoDataFrame
        ``attrs["division"]``: one row per unit divided (:data:`DIVISION_COLUMNS`):
        its ``blocks`` and ``total``, the ``grids`` made and how many are
        ``under``, ``within`` and ``over`` the band, ``share_within``, the
        ``min`` and ``max`` per grid, the ``oversize_blocks`` (comma-joined
        ids of blocks that alone exceed the band: they cannot be inside it),
        the ``steps`` of recombination and the ``seconds`` taken. A
        GeoDataFrame also has ``attrs["assignment"]``, the grid code of each
        block id.

    Notes
    -----
    Codes are numbered in reading order under each parent
    (:func:`gridgeo.schema.number_units`) and names are ``<village>第<n>网格``.
    Units of the level below that the plan carries are recoded into their
    new grid. A unit whose blocks form several pieces (an island) has each
    piece divided alone. The number of grids of a piece is its total over
    the middle of the band, moved inside ``[total / high, total / low]``
    when that range holds a whole number; recombination then merges a grid
    under the band into a neighbour, or splits one over it, whenever that
    brings it inside.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> proposal = gridgeo.plan.suggest_division(state, band=(300, 500))
    >>> report = proposal.attrs["division"]
    >>> int(report["grids"].sum()) == len(proposal.units)
    True
    >>> gridgeo.plan.impact(proposal)["contiguous"].all()
    np.True_
    """
    low, high = checked_band(band)
    if isinstance(parent, PlanState):
        if blocks is not None:
            raise TypeError("a PlanState has its blocks: call suggest_division(state, band=...)")
        return _divide_state(parent, (low, high), of, seed, patience, max_steps)
    return _divide_units(parent, blocks, (low, high), of, seed, patience, max_steps, scheme or DEFAULT_SCHEME)


# --- the two entry points -----------------------------------------------------------


def _divide_state(state, band, of, seed, patience, max_steps):
    b = state._blocks
    if of not in b.sums:
        raise KeyError(f"the blocks have no {of!r}: they have {list(b.sums.columns)}")
    weights = b.sums[of].to_numpy(dtype=float)
    owner = _block_parents(state)
    graph = b.graph
    codes = np.full(len(b.ids), "", dtype=object)
    report = []
    for parent in pd.unique(owner):
        members = np.flatnonzero(owner == parent)
        labels, info = _divide_members(graph, members, weights, b.ids, band, seed, patience, max_steps)
        new = _region_codes(b.metric_geoms, members, labels, parent, state.level, state.scheme)
        codes[members] = new
        report.append({"parent": parent, **info})
    units = new_rows(state, sorted(set(codes)))
    table = _report_table(report, codes, weights, band)
    edit = {"edit": "suggest_division", "message": f"suggest_division: {len(units)} grids, "
            f"{int(table['within'].sum())} within {band[0]:g}–{band[1]:g}",
            "message_zh": f"自动划分：{len(units)} 个网格，{int(table['within'].sum())} 个在 {band[0]:g}–{band[1]:g} 之间"}
    return state.relabelled(codes, units, edit=edit, attrs={**state.attrs, "division": table})


def _divide_units(units, blocks, band, of, seed, patience, max_steps, scheme):
    from scipy import sparse
    if not isinstance(units, gpd.GeoDataFrame) or blocks is None:
        raise TypeError("suggest_division takes a PlanState, or the units to divide (GeoDataFrame) and their "
                        "blocks (gridgeo.plan.blocks)")
    units = gcrs.to_storage(units, name="parent")
    frame = gcrs.to_storage(blocks, name="blocks")
    if of not in frame.columns:
        raise KeyError(f"the blocks have no {of!r} column: make them with gridgeo.plan.blocks(..., addresses)")
    metric = gcrs.metric_crs(units)
    geoms = np.asarray(frame.geometry.to_crs(metric).array)
    inner = shapely.point_on_surface(frame.geometry.array)
    blk, unit = shapely.STRtree(units.geometry.array).query(inner, predicate="within")
    owner = np.full(len(frame), -1)
    owner[blk] = unit
    i, j, shared = shared_edges(geoms)
    n = len(frame)
    graph = sparse.csr_matrix((np.concatenate([shared, shared]), (np.concatenate([i, j]), np.concatenate([j, i]))),
                              shape=(n, n))
    weights = pd.to_numeric(frame[of], errors="coerce").fillna(0).to_numpy(dtype=float)
    ids = frame["block_id"].astype("str").to_numpy(dtype=object) if "block_id" in frame else np.arange(n).astype(str)
    codes = np.full(n, "", dtype=object)
    rows, report = [], []
    for k, (code, level, name) in enumerate(zip(units["code"], units["level"], units.get("name", units["code"]))):
        members = np.flatnonzero(owner == k)
        if not len(members):
            continue
        child = scheme.child_level(level)
        labels, info = _divide_members(graph, members, weights, ids, band, seed, patience, max_steps)
        new = _region_codes(geoms, members, labels, code, child, scheme)
        codes[members] = new
        for c in sorted(set(new)):
            part = members[new == c]
            rows.append({"code": c, "name": f"{name}第{scheme.sequence(c)}网格", "level": child, "parent": code,
                         "blocks": len(part), of: weights[part].sum(),
                         "geometry": union(frame.geometry.array[part])})
        report.append({"parent": code, **info})
    out = gpd.GeoDataFrame(rows, geometry="geometry", crs=gcrs.STORAGE_CRS)
    out[of] = np.rint(out[of]).astype(np.int64) if np.all(weights == np.rint(weights)) else out[of]
    out.attrs["division"] = _report_table(report, codes, weights, band)
    out.attrs["assignment"] = pd.Series(codes, index=pd.Index(ids, name="block_id"), name="grid", dtype="str")
    return out


def _block_parents(state) -> np.ndarray:
    """The unit of the level above each block belongs to (a level-1 grid, or the plan's parent)."""
    above = state.scheme.parent_level(state.level)
    width = state.scheme.width(above)
    if state.scheme.level_of(state.parent) == above:
        return np.full(len(state._codes), state.parent, dtype=object)
    now = prefixes(state._codes, width)
    then = prefixes(state._start_codes, width)
    owner = np.where(now != "", now, then)
    if np.any(owner == ""):
        missing = list(state._blocks.ids[owner == ""][:10])
        raise ValueError(f"block(s) {', '.join(missing)} belong to no {above} unit: paint them into a grid first")
    return owner


def _region_codes(metric_geoms, members, labels, parent, level, scheme) -> np.ndarray:
    """Codes in reading order for the regions of one parent."""
    regions = np.unique(labels)
    shapes = [shapely.coverage_union_all(metric_geoms[members[labels == r]]) for r in regions]
    codes = number_units(shapes, parent, level, scheme=scheme)
    return np.array(codes, dtype=object)[np.searchsorted(regions, labels)]


def _report_table(report, codes, weights, band) -> pd.DataFrame:
    """The division report: per unit divided, the balance its grids reached."""
    low, high = band
    sums = pd.Series(weights).groupby(codes).sum()
    rows = []
    for row in report:
        mine = sums[sums.index.str.startswith(row["parent"])]
        rows.append({**row, "grids": len(mine), "under": int((mine < low).sum()),
                     "within": int(((mine >= low) & (mine <= high)).sum()), "over": int((mine > high).sum()),
                     "min": float(mine.min()), "max": float(mine.max())})
    table = pd.DataFrame(rows, columns=[c for c in DIVISION_COLUMNS if c != "share_within"])
    table["share_within"] = table["within"] / table["grids"]
    return table[list(DIVISION_COLUMNS)]


# --- the division of one unit ------------------------------------------------------------


def _divide_members(graph, members, weights, ids, band, seed, patience, max_steps):
    """Labels 0..k-1 for the blocks of one unit, and what the division reached."""
    from scipy.sparse.csgraph import connected_components
    started = time.perf_counter()
    sub = graph[members][:, members].tocsr()
    w = weights[members]
    low, high = band
    oversize = [str(b) for b in ids[members][w > high]]
    if oversize:
        warnings.warn(f"block(s) {', '.join(oversize)} alone hold more than {high:g}: the grids holding them "
                      "cannot be inside the band", stacklevel=4)
    rng = np.random.default_rng(seed)
    n_pieces, piece = connected_components(sub, directed=False)
    labels = np.empty(len(members), dtype=np.int64)
    steps = 0
    offset = 0
    for p in range(n_pieces):
        nodes = np.flatnonzero(piece == p)
        region = _Recombination(sub[nodes][:, nodes].tocsr(), w[nodes], band, rng)
        steps += region.optimise(patience=patience, max_steps=max_steps)
        labels[nodes] = region.labels + offset
        offset += region.labels.max() + 1
    seconds = time.perf_counter() - started
    log.info("divided %d blocks into %d grids in %.2f s (%d steps)", len(members), offset, seconds, steps)
    return labels, {"blocks": len(members), "total": float(w.sum()), "oversize_blocks": ",".join(oversize),
                    "steps": steps, "seconds": seconds}


class _Recombination:
    """Recombination on spanning trees of one connected set of blocks."""

    def __init__(self, graph, weights, band, rng):
        from scipy import sparse
        self.graph = graph
        self.w = weights
        self.low, self.high = band
        self.rng = rng
        coo = sparse.triu(graph, k=1).tocoo()
        self.ei, self.ej, self.length = coo.row, coo.col, coo.data
        self.labels = self._tree_partition(_region_count(weights.sum(), band))

    # the objective: (grids outside the band, amount outside it, boundary between grids)

    def _outside(self, total):
        return np.maximum(self.low - total, 0) + np.maximum(total - self.high, 0)

    def _score(self, sums, cut):
        out = self._outside(np.asarray(sums, dtype=float))
        return (int((out > 0).sum()), float(out.sum()), float(cut))

    # first draft

    def _tree_partition(self, k) -> np.ndarray:
        labels = np.zeros(len(self.w), dtype=np.int64)
        todo = [(np.arange(len(self.w)), k)]
        next_label = 0
        while todo:
            part, parts = todo.pop()
            if parts == 1 or len(part) == 1:
                labels[part] = next_label
                next_label += 1
                continue
            first = parts // 2
            cut = self._best_cut(part, first, parts - first, trees=_TREES)
            if cut is None:
                labels[part] = next_label
                next_label += 1
                continue
            todo += [(cut[0], first), (cut[1], parts - first)]
        return labels

    def _best_cut(self, nodes, parts_a, parts_b, *, trees):
        """Split `nodes` along a random spanning tree so that each side can hold its grids; best of `trees`."""
        best, best_key = None, None
        total = self.w[nodes].sum()
        for _ in range(trees):
            found = self._tree_cuts(nodes)
            if found is None:
                return None
            order, size, sums = found
            s = sums[1:]  # every non-root node: cut the edge to its parent
            excess = self._band_excess(s, parts_a) + self._band_excess(total - s, parts_b)
            swapped = self._band_excess(s, parts_b) + self._band_excess(total - s, parts_a)
            ideal = total * parts_a / (parts_a + parts_b)
            for sides, ex, target in ((0, excess, ideal), (1, swapped, total - ideal)):
                key = np.lexsort((np.abs(s - target), ex))[:3]
                for pos in key:
                    cand = (float(ex[pos]), float(self._cut_length(nodes, order, pos + 1, size[pos + 1])))
                    if best_key is None or cand < best_key:
                        inside = order[pos + 1: pos + 1 + size[pos + 1]]
                        rest = np.setdiff1d(nodes, inside, assume_unique=True)
                        best_key = cand
                        best = (inside, rest) if sides == 0 else (rest, inside)
        return best

    def _band_excess(self, s, parts):
        return np.maximum(parts * self.low - s, 0) + np.maximum(s - parts * self.high, 0)

    def _tree_cuts(self, nodes):
        """A random spanning tree of `nodes`, in depth-first order: (order, subtree sizes, subtree sums).

        Kruskal's algorithm on random edge weights, as GerryChain draws its
        trees; in depth-first (pre)order every subtree is a contiguous run.
        """
        m = len(nodes)
        if m < 2:
            return None
        local = np.full(len(self.w), -1, dtype=np.int64)
        local[nodes] = np.arange(m)
        keep = (local[self.ei] >= 0) & (local[self.ej] >= 0)
        shuffled = self.rng.permutation(int(keep.sum()))
        a = local[self.ei[keep]][shuffled].tolist()
        b = local[self.ej[keep]][shuffled].tolist()
        root_of = list(range(m))

        def find(x):
            while root_of[x] != x:
                root_of[x] = root_of[root_of[x]]
                x = root_of[x]
            return x

        adjacent = [[] for _ in range(m)]
        joined = 0
        for u, v in zip(a, b):
            ru, rv = find(u), find(v)
            if ru != rv:
                root_of[ru] = rv
                adjacent[u].append(v)
                adjacent[v].append(u)
                joined += 1
                if joined == m - 1:
                    break
        if joined < m - 1:
            return None
        root = int(self.rng.integers(m))
        order, pred, stack = [], [-1] * m, [root]
        seen = [False] * m
        seen[root] = True
        while stack:
            u = stack.pop()
            order.append(u)
            for v in adjacent[u]:
                if not seen[v]:
                    seen[v] = True
                    pred[v] = u
                    stack.append(v)
        size = [1] * m
        sums = self.w[nodes].tolist()
        for v in reversed(order[1:]):
            size[pred[v]] += size[v]
            sums[pred[v]] += sums[v]
        order = np.asarray(order)
        return nodes[order], np.asarray(size)[order], np.asarray(sums)[order]

    def _cut_length(self, nodes, order, start, size):
        inside = np.zeros(len(self.w), dtype=bool)
        inside[order[start:start + size]] = True
        member = np.zeros(len(self.w), dtype=bool)
        member[nodes] = True
        keep = member[self.ei] & member[self.ej] & (inside[self.ei] != inside[self.ej])
        return self.length[keep].sum()

    # improvement

    def optimise(self, *, patience, max_steps) -> int:
        since, steps = 0, 0
        while since < patience and steps < max_steps:
            steps += 1
            since = 0 if self._step() else since + 1
        self.labels = np.unique(self.labels, return_inverse=True)[1]
        return steps

    def _sums(self):
        return np.bincount(self.labels, weights=self.w)

    def _step(self) -> bool:
        pairs = self._region_pairs()
        if not len(pairs):
            return self._split_over()
        sums = self._sums()
        out = self._outside(sums) > 0
        weight = 1.0 + 4.0 * (out[pairs[:, 0]] | out[pairs[:, 1]])
        r1, r2 = pairs[self.rng.choice(len(pairs), p=weight / weight.sum())]
        if self._merge_if_better(r1, r2, sums) or self._split_over():
            return True
        nodes = np.flatnonzero((self.labels == r1) | (self.labels == r2))
        current = self._score([sums[r1], sums[r2]], self._between(r1, r2))
        cut = self._best_cut(nodes, 1, 1, trees=_TREES)
        if cut is None:
            return False
        a, b = cut
        proposed = self._score([self.w[a].sum(), self.w[b].sum()], self._length_between(a, b))
        if proposed < current:
            self.labels[a], self.labels[b] = r1, r2
            return True
        return False

    def _region_pairs(self):
        la, lb = self.labels[self.ei], self.labels[self.ej]
        diff = la != lb
        pairs = np.column_stack([np.minimum(la[diff], lb[diff]), np.maximum(la[diff], lb[diff])])
        return np.unique(pairs, axis=0) if len(pairs) else pairs

    def _between(self, r1, r2):
        la, lb = self.labels[self.ei], self.labels[self.ej]
        keep = ((la == r1) & (lb == r2)) | ((la == r2) & (lb == r1))
        return self.length[keep].sum()

    def _length_between(self, a, b):
        side = np.zeros(len(self.w), dtype=np.int8)
        side[a], side[b] = 1, 2
        keep = ((side[self.ei] == 1) & (side[self.ej] == 2)) | ((side[self.ei] == 2) & (side[self.ej] == 1))
        return self.length[keep].sum()

    def _merge_if_better(self, r1, r2, sums) -> bool:
        """Merge a grid under the band into its neighbour when the two fit inside it together."""
        together = sums[r1] + sums[r2]
        if not (self.low <= together <= self.high):
            return False
        if not (sums[r1] < self.low or sums[r2] < self.low):
            return False
        self.labels[self.labels == r2] = r1
        return True

    def _split_over(self) -> bool:
        """Split a grid over the band in two when both halves can be inside it."""
        sums = self._sums()
        over = np.flatnonzero(sums > self.high)
        if not len(over):
            return False
        r = int(self.rng.choice(over))
        if sums[r] < 2 * self.low:
            return False
        nodes = np.flatnonzero(self.labels == r)
        cut = self._best_cut(nodes, 1, 1, trees=_TREES)
        if cut is None:
            return False
        a, b = cut
        if self._score([self.w[a].sum(), self.w[b].sum()], 0)[0] > 0:
            return False
        self.labels[b] = self.labels.max() + 1
        return True


def _region_count(total, band) -> int:
    """How many grids a piece with this total should start with."""
    low, high = band
    fewest = int(np.ceil(total / high)) if high > 0 else 1
    most = int(np.floor(total / low)) if low > 0 else fewest
    k = int(round(total / ((low + high) / 2))) if high > 0 else 1
    if fewest <= most:
        k = min(max(k, fewest), most)
    return max(k, 1)
