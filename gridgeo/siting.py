"""Where to put new service stations: maximal coverage, set covering, p-median.

Given candidate sites (road junctions by default, or a list of available
buildings), the households at every address, the existing stations (kept
fixed) and a walking radius, three classic location models choose the new
sites, solved exactly by spopt with the HiGHS solver through PuLP:

- :func:`maximal_coverage` (MCLP): the best ``k`` new sites for the most
  households within the radius;
- :func:`set_covering` (LSCP): the fewest new sites so that every household
  (or a chosen share) is within the radius;
- :func:`p_median`: ``k`` new sites that minimise the total walking distance
  of the households to their nearest station.

The cost matrix is walking distance along the network
(:func:`gridgeo.network.distances`, kept sparse by the radius) and is made
small before it reaches the solver, exactly where it can be:

- households already within the radius of a station cannot be covered
  again, so coverage models see only the others;
- addresses that the same set of candidates covers are one demand unit (an
  exact aggregation for coverage models);
- a candidate covering a subset of what another covers is dropped (also
  exact);
- for the p-median, candidates are screened to the ``max_candidates`` with
  the largest stand-alone saving, and addresses are grouped at their
  nearest network node (see :func:`p_median`).

Every answer comes back as a :class:`Siting`: the chosen sites with the
households each newly covers, the addresses newly covered, and the figures
before and after, recomputed exactly with :func:`gridgeo.coverage.nearest_station`;
given the grids (``units=``), the same figures per unit of a level
(:attr:`Siting.per_unit`: households gained per grid).

:func:`evaluate` gives the same answer for any sites at all, without
solving: a site moved by hand on the map is judged by the same rule as the
ones the models chose. :func:`scope` cuts the addresses and the units to one
unit (a town, a village) or a box, for a proposal made there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import coverage as gcov
from gridgeo import crs as gcrs
from gridgeo import network as gnet
from gridgeo.schema import check

__all__ = ["Siting", "Scope", "candidate_sites", "maximal_coverage", "set_covering", "p_median", "evaluate",
           "per_unit", "scope"]

log = logging.getLogger(__name__)

NEW_KIND = "new_site"
"""The ``kind`` given to chosen sites when they join the stations."""


@dataclass
class Siting:
    """The answer of a siting model.

    Attributes
    ----------
    sites : GeoDataFrame
        The chosen sites in the order the candidates were given: ``site_id``,
        ``households_new``, ``population_new`` and ``addresses_new`` (newly
        brought within the radius, each counted at the site now nearest to
        it), the candidate's own columns, points in EPSG:4490.
    newly_covered : DataFrame
        The addresses newly within the radius: ``addr_id``, ``households``,
        ``population``, ``site_id``, ``distance_before_m``, ``distance_m``.
    figures : DataFrame
        Rows ``before``, ``after`` and ``change``: households, share,
        population and addresses within the radius, households within each
        life circle, and the mean and
        total walking distance of households to their nearest station.
    feasible : bool
        False when the request cannot be met (households no candidate
        reaches, a share out of reach); the sites are then the best partial
        answer and `message` says what is missing.
    message : str
    model : str
        ``"maximal_coverage"``, ``"set_covering"``, ``"p_median"`` or
        ``"evaluate"`` (sites given, see :func:`evaluate`).
    details : dict
        The size of the problem handed to the solver, its status, objective
        and time.
    per_unit : GeoDataFrame or None
        Given ``units=``: :func:`per_unit` of the answer, the households and
        addresses within the radius of every unit of the level, before and
        after, and gained. None without units.
    totals : dict
        The same figures for every address given: ``addresses``,
        ``households``, ``addresses_before`` ... ``households_gained``,
        ``share_before``, ``share_after`` (of households), ``radius_m``.
    """

    sites: gpd.GeoDataFrame
    newly_covered: pd.DataFrame
    figures: pd.DataFrame
    feasible: bool
    message: str
    model: str
    details: dict = dataclasses.field(default_factory=dict)
    per_unit: gpd.GeoDataFrame | None = None
    totals: dict = dataclasses.field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Siting({self.model}: {len(self.sites)} site(s); {self.message})"


# ----------------------------------------------------------------------------
# Candidates
# ----------------------------------------------------------------------------


def candidate_sites(network, *, min_degree: int = 3, within=None) -> gpd.GeoDataFrame:
    """Road junctions as candidate sites.

    Parameters
    ----------
    network : WalkNetwork
    min_degree : int, default 3
        Nodes where at least this many road pieces meet.
    within : GeoDataFrame or geometry, optional
        Keep only junctions inside it (a town, the grids needing a station).

    Returns
    -------
    GeoDataFrame
        ``site_id`` (``"J<node>"``), ``node``, ``degree``, points in EPSG:4490.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> net = network.build(sample.load().roads)
    >>> sites = candidate_sites(net)
    >>> bool((sites["degree"] >= 3).all()), sites.crs.to_epsg()
    (True, 4490)
    """
    nodes = network.nodes()
    keep = nodes["degree"].to_numpy() >= min_degree
    if within is not None:
        area = within.to_crs(gcrs.STORAGE_CRS).geometry.union_all() if hasattr(within, "geometry") else within
        keep &= nodes.geometry.within(area).to_numpy()
    out = nodes[keep].drop(columns="component")
    out.insert(0, "node", np.flatnonzero(keep))
    out.insert(0, "site_id", [f"J{n}" for n in out["node"]])
    return out.reset_index(drop=True)


# ----------------------------------------------------------------------------
# The three models
# ----------------------------------------------------------------------------


def maximal_coverage(addresses, stations, network, *, k: int, radius_m: float = 1000.0, candidates=None,
                     kinds=None, weight: str = "households", time_limit_s: float = 60.0, solver=None, units=None,
                     level: str = "grid2", assignment=None) -> Siting:
    """The best `k` new sites for the most households within `radius_m` (MCLP).

    Parameters
    ----------
    addresses : GeoDataFrame
        Standard addresses with the `weight` column (households).
    stations : GeoDataFrame
        The existing stations, kept.
    network : WalkNetwork, or roads to build it from
    k : int
        How many new sites.
    radius_m : float, default 1000
        Walking distance that counts as covered (1,000 m: the 15-minute
        life circle of GB 50180-2018).
    candidates : GeoDataFrame of points, optional
        Available sites (``site_id`` if present, else the index, names
        them). Default: the junctions of :func:`candidate_sites`.
    kinds : str or list of str, optional
        Only these kinds of existing stations count.
    weight : str, default "households"
        The address column to cover (``"population"``...).
    time_limit_s : float, default 60
        Stop the solver after this long with the best answer found; the
        answer then says it is not proven optimal (``details["optimal"]``).
    solver : pulp solver, optional
        Default ``pulp.HiGHS(msg=False, timeLimit=time_limit_s)``.
    units : GeoDataFrame or AssignIndex, optional
        The grids: the answer then carries :attr:`Siting.per_unit`, the
        figures of every unit of `level` (see :func:`per_unit`).
    level : str, default "grid2"
        The level of those figures (any level of `units`).
    assignment : DataFrame, optional
        :func:`gridgeo.assign` of the addresses (indexed like them, with a
        `level` column), to avoid assigning again.

    Returns
    -------
    Siting

    Notes
    -----
    Exact: the reductions applied before the solver (covered households
    left out, addresses with the same covering candidates merged, dominated
    candidates dropped) do not change the optimum. When fewer than `k`
    candidates cover anything new, only those are returned and `message`
    says so.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> net = network.build(s.roads)
    >>> best = maximal_coverage(s.addresses, s.stations, net, k=2)
    >>> len(best.sites), bool(best.figures.loc["change", "households_covered"] > 0)
    (2, True)
    """
    p = _prepare(addresses, stations, network, candidates, radius_m, kinds, weight, (units, level, assignment))
    solver = _highs(solver, time_limit_s)
    units, cover, cand = _coverage_units(p)
    if len(cand) == 0:
        return _answer(p, [], "maximal_coverage", feasible=False, details={},
                       message=f"no candidate is within {radius_m:g} m of a household not yet covered")
    k_eff = min(int(k), len(cand))
    chosen, details = _solve_mclp(units, cover, k_eff, solver)
    message = f"{k_eff} new site(s)" + ("" if k_eff == k else
                                        f"; only {len(cand)} useful candidate(s) for the {k} asked")
    return _answer(p, cand[chosen], "maximal_coverage", feasible=k_eff == k, message=message, details=details)


def set_covering(addresses, stations, network, *, radius_m: float = 1000.0, share: float = 1.0, candidates=None,
                 kinds=None, weight: str = "households", time_limit_s: float = 60.0, solver=None, units=None,
                 level: str = "grid2", assignment=None) -> Siting:
    """The fewest new sites so that `share` of households are within `radius_m` (LSCP).

    With ``share=1`` every household must be covered: one set-covering
    model. With a smaller share, the smallest `k` whose maximal coverage
    reaches the share (a binary search over `k`, each step an exact MCLP).

    Parameters
    ----------
    addresses, stations, network, radius_m, candidates, kinds, weight, time_limit_s, solver, units, level, assignment
        As in :func:`maximal_coverage`.
    share : float, default 1.0
        The share of the total `weight` (households) that must end up
        within `radius_m` of a station, existing or new.

    Returns
    -------
    Siting
        When some households are beyond the radius of every candidate (or
        the share cannot be reached), ``feasible`` is False, `message` says
        how many are out of reach, and the sites are the best partial
        answer: those covering everything that can be covered.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> net = network.build(s.roads)
    >>> plan = set_covering(s.addresses, s.stations, net, share=0.97)
    >>> bool(plan.figures.loc["after", "share_covered"] >= 0.97), plan.feasible
    (True, True)
    """
    if not 0 < share <= 1:
        raise ValueError(f"share must be in (0, 1], got {share}")
    p = _prepare(addresses, stations, network, candidates, radius_m, kinds, weight, (units, level, assignment))
    solver = _highs(solver, time_limit_s)
    units, cover, cand = _coverage_units(p)
    total = p.weight.sum()
    covered = p.weight[p.existing <= radius_m].sum()
    reachable = units["weight"].sum()
    out_of_reach = total - covered - reachable
    target = share * total - covered
    if target <= 1e-9:
        return _answer(p, [], "set_covering", feasible=True, details={},
                       message=f"the existing stations already cover {covered / total:.1%}: no new site needed")
    if len(cand) == 0:
        return _answer(p, [], "set_covering", feasible=False, details={},
                       message=f"no candidate is within {radius_m:g} m of the {out_of_reach:g} households left out")
    all_chosen, details = _solve_lscp(units, cover, solver)
    if share >= 1 or reachable < target - 1e-9:
        feasible = out_of_reach <= 1e-9 if share >= 1 else False
        message = (f"{len(all_chosen)} new site(s) cover every household"
                   if feasible else
                   f"infeasible: {out_of_reach:g} {p.weight_name} are beyond {radius_m:g} m of every candidate "
                   f"and station; the best partial answer, {len(all_chosen)} site(s), covers all the others "
                   f"({(covered + reachable) / total:.1%})")
        return _answer(p, cand[all_chosen], "set_covering", feasible=feasible, message=message, details=details)
    chosen, details = _smallest_k_reaching(units, cover, target, len(all_chosen), solver)
    message = f"{len(chosen)} new site(s) bring {share:.0%} of {p.weight_name} within {radius_m:g} m"
    return _answer(p, cand[chosen], "set_covering", feasible=True, message=message, details=details)


def p_median(addresses, stations, network, *, k: int, radius_m: float = 1000.0, candidates=None, kinds=None,
             weight: str = "households", max_candidates: int = 60, aggregate: bool = True,
             time_limit_s: float = 60.0, solver=None, units=None, level: str = "grid2",
             assignment=None) -> Siting:
    """`k` new sites minimising the total walking distance of households (p-median).

    Every household walks to its nearest station, existing or new; a new
    site serves households within `radius_m` of it.

    Parameters
    ----------
    addresses, stations, network, candidates, kinds, weight, time_limit_s, solver, units, level, assignment
        As in :func:`maximal_coverage`.
    k : int
        How many new sites.
    radius_m : float, default 1000
        The farthest a new site serves (and the radius of the coverage
        figures reported).
    max_candidates : int, default 60
        Candidates are screened to those with the largest stand-alone
        saving (the distance they would save if built alone).
    aggregate : bool, default True
        Group addresses at the nearest node of their road, their distances
        averaged by `weight`: small models for a whole town. With False
        every address is its own demand unit (exact, for small areas).

    Returns
    -------
    Siting
        ``details["objective"]`` is the model's total weighted distance.

    Notes
    -----
    Households no station reaches count at the largest distance any
    reached household walks. The model is exact over the screened
    candidates when ``aggregate=False``; the figures reported are always
    recomputed exactly.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> net = network.build(s.roads)
    >>> plan = p_median(s.addresses, s.stations, net, k=3)
    >>> bool(plan.figures.loc["change", "total_distance_km"] < 0)
    True
    """
    p = _prepare(addresses, stations, network, candidates, radius_m, kinds, weight, (units, level, assignment))
    solver = _highs(solver, time_limit_s)
    existing = np.where(np.isfinite(p.existing), p.existing,
                        np.nanmax(np.where(np.isfinite(p.existing), p.existing, np.nan), initial=radius_m))
    pairs = p.pairs[p.pairs["distance_m"].to_numpy() < existing[p.pairs["origin"].to_numpy()]]
    saving = np.bincount(pairs["destination"], minlength=len(p.candidates),
                         weights=(existing[pairs["origin"]] - pairs["distance_m"]) * p.weight[pairs["origin"]])
    useful = np.flatnonzero(saving > 0)
    cand = useful[np.argsort(-saving[useful], kind="stable")][:max_candidates]
    if len(cand) == 0:
        return _answer(p, [], "p_median", feasible=False, details={},
                       message=f"no candidate brings any household nearer within {radius_m:g} m")
    cand = np.sort(cand)
    pairs = pairs[np.isin(pairs["destination"], cand)]
    cost, weights, modelled = _median_units(p, pairs, cand, existing, aggregate)
    k_eff = min(int(k), len(cand))
    chosen, details = _solve_pmedian(cost, weights, k_eff, solver)
    # households no candidate brings nearer stay with their station: a constant of the objective
    rest = np.ones(len(existing), dtype=bool)
    rest[modelled] = False
    details.update(objective=details["objective"] + float((p.weight[rest] * existing[rest]).sum()),
                   candidates_screened=int(len(useful)))
    message = f"{k_eff} new site(s)" + ("" if k_eff == k else f"; only {len(cand)} candidate(s) save any distance")
    return _answer(p, cand[chosen], "p_median", feasible=k_eff == k, message=message, details=details)


# ----------------------------------------------------------------------------
# Any sites at all: evaluate, and the figures per unit
# ----------------------------------------------------------------------------


def evaluate(addresses, stations, network, sites, *, radius_m: float = 1000.0, units=None, level: str = "grid2",
             assignment=None, kinds=None, weight: str = "households") -> Siting:
    """The figures of any given new sites, with the existing stations kept: no solving.

    The answer a model gives for the sites it chose, for sites chosen by
    anyone: a proposal whose site a planner moved by hand is judged again by
    exactly the same rule (:func:`gridgeo.coverage.nearest_station` over the
    existing stations and the sites together, on the same walking network).

    Parameters
    ----------
    addresses, stations, network, radius_m, units, level, assignment, kinds, weight
        As in :func:`maximal_coverage`.
    sites : GeoDataFrame of points
        The new sites (``site_id`` if present, else the index, names them;
        ids must be unique). It may be empty: the figures are then those of
        the existing stations.

    Returns
    -------
    Siting
        ``model="evaluate"``, the sites in the order given, with the
        households each newly brings within `radius_m`; ``feasible`` is
        True.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> net = network.build(s.roads)
    >>> best = maximal_coverage(s.addresses, s.stations, net, k=2)
    >>> again = evaluate(s.addresses, s.stations, net, best.sites, units=s.grids)
    >>> bool((again.figures == best.figures).all().all())
    True
    >>> int(again.per_unit["households_gained"].sum()) == int(best.figures.loc["change", "households_covered"])
    True
    """
    p = _prepare(addresses, stations, network, sites, radius_m, kinds, weight, (units, level, assignment),
                 pairs=False, empty=True)
    n = len(p.candidates)
    return _answer(p, np.arange(n), "evaluate", feasible=True, details={},
                   message=f"{n} site(s) given / 给定 {n} 个站点")


def per_unit(before, after, units, *, radius_m: float, level: str = "grid2", assignment=None) -> gpd.GeoDataFrame:
    """Households and addresses within `radius_m` of a station in every unit of a level, before and after.

    Parameters
    ----------
    before, after : GeoDataFrame
        :func:`gridgeo.coverage.nearest_station` of the same addresses
        (same index), with the existing stations and with the new sites
        added.
    units : GeoDataFrame or AssignIndex
        The grids; every unit of `level` gets a row, with zeros when it
        holds no address.
    radius_m : float
        Within it (``distance <= radius_m``, the boundary rule of
        :func:`gridgeo.coverage.nearest_station`) an address counts as covered.
    level : str, default "grid2"
    assignment : DataFrame, optional
        :func:`gridgeo.assign` of the addresses (indexed like them, with a
        `level` column); by default they are assigned here.

    Returns
    -------
    GeoDataFrame
        One row per unit of `level`, by code: ``code``, ``name``,
        ``parent``, ``addresses``, ``households``, ``addresses_before``,
        ``addresses_after``, ``addresses_gained``, ``households_before``,
        ``households_after``, ``households_gained`` (after minus before),
        ``share_before`` and ``share_after`` (of the unit's households; NaN
        for a unit without households), the unit polygon in EPSG:4490.
        ``attrs``: ``level``, ``radius_m`` and ``outside`` (addresses in no
        unit of the level, counted in the totals of :attr:`Siting.figures`
        but in no row).

    Notes
    -----
    Each address counts in exactly one unit (the boundary rule of
    :func:`gridgeo.assign`), so the rows of a full level add up to the
    totals. Adding sites never takes a household out of the radius, except
    in one case: an address by a road piece cut off from every station is
    measured from the nearest connected road (``resnapped``); a new site on
    its own piece makes it walk on that piece instead, which may be farther.
    ``households_gained`` is then negative, not hidden.

    Examples
    --------
    >>> from gridgeo import sample, coverage
    >>> s = sample.load()
    >>> cov = coverage.nearest_station(s.addresses, s.stations, method="straight")
    >>> table = per_unit(cov, cov, s.grids, radius_m=500)
    >>> int(table["households_gained"].abs().sum()), len(table) == int((s.grids["level"] == "grid2").sum())
    (0, True)
    """
    from gridgeo.assignment import assign

    frame = _unit_frame(units)
    if level not in set(frame["level"]):
        raise ValueError(f"units have no level {level!r}: pass level= one of {frame['level'].unique().tolist()}")
    if not before.index.equals(after.index):
        raise ValueError("before and after are not of the same addresses (their indexes differ)")
    if assignment is None:
        assignment = assign(before, units, levels=[level], name="addresses")
    codes = assignment[level].astype(object).reindex(before.index).to_numpy()
    placed = pd.notna(codes)
    hh = gcov._weights(before).get("households", np.ones(len(before)))
    cols = {"addresses": np.ones(len(before)), "households": hh}
    for label, cov in (("before", before), ("after", after)):
        within = (cov["distance_m"] <= radius_m).to_numpy()
        cols[f"addresses_{label}"] = within.astype(float)
        cols[f"households_{label}"] = np.where(within, hh, 0.0)
    table = pd.DataFrame(cols)[placed].groupby(codes[placed]).sum()
    rows = frame[frame["level"] == level][["code", "name", "parent", frame.geometry.name]]
    out = rows.join(table, on="code").sort_values("code").reset_index(drop=True)
    counts = list(cols)
    out[counts] = out[counts].fillna(0.0)
    for what in ("addresses", "households"):
        out[f"{what}_gained"] = out[f"{what}_after"] - out[f"{what}_before"]
    for label in ("before", "after"):
        out[f"share_{label}"] = out[f"households_{label}"] / out["households"].where(out["households"] > 0)
    order = ["code", "name", "parent", "addresses", "households", "addresses_before", "addresses_after",
             "addresses_gained", "households_before", "households_after", "households_gained", "share_before",
             "share_after"]
    for col in order[3:11]:
        if np.all(np.mod(out[col].to_numpy(dtype=float), 1) == 0):
            out[col] = out[col].astype(np.int64)
    out = gpd.GeoDataFrame(out[order + [frame.geometry.name]], geometry=frame.geometry.name, crs=frame.crs)
    out.attrs = {"level": level, "radius_m": float(radius_m), "outside": int((~placed).sum())}
    return out


@dataclass
class Scope:
    """A proposal's ground: see :func:`scope`."""

    addresses: gpd.GeoDataFrame   # the addresses inside (their own index)
    units: gpd.GeoDataFrame       # the units of the level inside
    assignment: pd.DataFrame      # the addresses' codes (indexed like `addresses`)
    area: object                  # a shapely geometry: where candidate sites may stand
    level: str


def scope(addresses, units, *, unit: str | None = None, bbox=None, level: str = "grid2", assignment=None,
          index=None) -> Scope:
    """The addresses and units of one unit (a town, a village) or of a box, for a proposal made there.

    Parameters
    ----------
    addresses : GeoDataFrame
    units : GeoDataFrame
        The grids (every level).
    unit : str, optional
        A unit's code: its addresses are those :func:`gridgeo.assign` puts
        in it, its units those of `level` below it (or itself, when it is of
        `level`).
    bbox : (west, south, east, north), optional
        Degrees (EPSG:4490): the addresses the box covers, and the units of
        `level` whose interior meets the box. Give `unit` or `bbox`, not both.
    level : str, default "grid2"
    assignment : DataFrame, optional
        :func:`gridgeo.assign` of `addresses` at every level, to avoid
        assigning again.
    index : AssignIndex, optional
        Built from `units`, to assign with.

    Returns
    -------
    Scope
        ``addresses``, ``units``, ``assignment`` (at `level` and the unit's
        level), ``area`` (the unit's polygon or the box) and ``level``.

    Raises
    ------
    KeyError
        No unit has the code.
    ValueError
        Neither or both of `unit` and `bbox`; a box out of order; `level`
        above the unit's.

    Examples
    --------
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> village = s.grids[s.grids["level"] == "village"].iloc[0]
    >>> there = scope(s.addresses, s.grids, unit=village["code"])
    >>> bool((there.units["parent"].str[:12] == village["code"]).all()), len(there.addresses) > 0
    (True, True)
    """
    from gridgeo.assignment import assign

    if (unit is None) == (bbox is None):
        raise ValueError("give the scope as unit= (a code) or bbox= (west, south, east, north), one of them "
                         "— 请给出范围：单元编码或经纬度框，二者之一")
    frame = _unit_frame(units)
    if level not in set(frame["level"]):
        raise ValueError(f"units have no level {level!r}: pass level= one of {frame['level'].unique().tolist()}")
    addresses = gcrs.to_storage(addresses, name="addresses")
    if unit is not None:
        row = frame[frame["code"] == unit]
        if row.empty:
            raise KeyError(f"no unit has the code {unit!r} — 没有编码为 {unit!r} 的单元")
        own = row["level"].iloc[0]
        inside = _descendants(frame, unit, level)
        if inside.empty:
            raise ValueError(f"unit {unit!r} is a {own}: the figures must be of its level or one below it, "
                             f"not {level!r} — 单元 {unit!r} 属于 {own} 层级，统计层级须为该层级或其下级")
        levels = list(dict.fromkeys([own, level]))
        if assignment is None or any(lv not in assignment.columns for lv in levels):
            assignment = assign(addresses, index if index is not None else units, levels=levels, name="addresses")
        keep = (assignment[own].astype(object).reindex(addresses.index) == unit).to_numpy()
        area = row.geometry.iloc[0]
    else:
        west, south, east, north = (float(v) for v in bbox)
        if not (west < east and south < north):
            raise ValueError(f"bbox must be west < east and south < north, got {tuple(bbox)} "
                             "— 经纬度框须西 < 东、南 < 北")
        area = shapely.box(west, south, east, north)
        keep = shapely.covers(area, addresses.geometry.array)
        candidates = frame[frame["level"] == level]
        meets = candidates.intersects(area).to_numpy() & ~candidates.touches(area).to_numpy()
        inside = candidates[meets]
        if assignment is None or level not in assignment.columns:
            assignment = assign(addresses[keep], index if index is not None else units, levels=[level],
                                name="addresses").reindex(addresses.index)
    chosen = addresses[keep]
    return Scope(chosen, inside.reset_index(drop=True), assignment.loc[chosen.index], area, level)


def _unit_frame(units) -> gpd.GeoDataFrame:
    frame = units if isinstance(units, gpd.GeoDataFrame) else getattr(units, "grids", None)
    if frame is None:
        raise TypeError(f"units must be the grids (a GeoDataFrame) or an AssignIndex, got {type(units).__name__}")
    return gcrs.to_storage(frame, name="units")


def _descendants(frame, code, level) -> gpd.GeoDataFrame:
    """The units of `level` that are `code` or lie below it (by the ``parent`` column)."""
    parent = frame["parent"].astype(object).fillna("").to_numpy()
    codes = frame["code"].astype(object).to_numpy()
    found, frontier = {code}, {code}
    while frontier:
        frontier = set(codes[np.isin(parent, list(frontier))]) - found
        found |= frontier
    return frame[np.isin(codes, list(found)) & (frame["level"] == level).to_numpy()]


# ----------------------------------------------------------------------------
# Preparing a problem
# ----------------------------------------------------------------------------


@dataclass
class _Problem:
    addresses: gpd.GeoDataFrame  # every address (checked)
    stations: gpd.GeoDataFrame   # the existing stations of the requested kinds
    network: gnet.WalkNetwork
    candidates: gpd.GeoDataFrame
    radius_m: float
    weight_name: str
    demand: np.ndarray           # positions in addresses of the addresses with weight > 0
    weight: np.ndarray           # their weight
    existing: np.ndarray         # their walking distance to the nearest existing station (inf: none)
    pairs: pd.DataFrame | None   # origin (into demand), destination (into candidates), distance_m <= radius
    snapped: gnet.Snapped | None  # the demand addresses on the network
    before: gpd.GeoDataFrame     # nearest_station of every address, before
    units: tuple = (None, "grid2", None)  # (units, level, assignment) for the figures per unit


def _prepare(addresses, stations, network, candidates, radius_m, kinds, weight, units=(None, "grid2", None),
             *, pairs: bool = True, empty: bool = False) -> _Problem:
    if not np.isfinite(radius_m) or radius_m <= 0:
        raise ValueError(f"radius_m must be a positive number of metres, got {radius_m}")
    addresses = check(gcrs.to_storage(addresses, name="addresses"), "addresses", name="addresses")
    if weight not in addresses.columns:
        raise ValueError(f"addresses have no {weight!r} column to weigh demand by: "
                         f"pass weight= one of {[c for c in addresses.columns if c != 'geometry']}")
    stations = gcov._select_kinds(check(gcrs.to_storage(stations, name="stations"), "stations", name="stations"),
                                  kinds)
    net = network if isinstance(network, gnet.WalkNetwork) else gnet.build(network)
    candidates = _candidate_frame(candidates, net, empty=empty)
    _check_units(units, addresses)
    before = gcov.nearest_station(addresses, stations, net, circles=_circles(radius_m))
    w = pd.to_numeric(addresses[weight], errors="coerce").fillna(0).to_numpy(dtype=float)
    demand = np.flatnonzero(w > 0)
    existing = before["distance_m"].to_numpy()[demand]
    snapped = found = None
    if pairs:
        snapped = _as_measured(net, net.locate(addresses.iloc[demand], name="addresses"), stations, before, demand)
        found = gnet.distances(net, snapped, net.locate(candidates, name="candidates"), limit_m=radius_m)
        log.info("siting: %d demand address(es), %d candidate(s), %d pair(s) within %g m",
                 len(demand), len(candidates), len(found), radius_m)
    return _Problem(addresses, stations, net, candidates, float(radius_m), weight, demand, w[demand],
                    np.where(np.isnan(existing), np.inf, existing), found, snapped, before, units)


def _check_units(units, addresses):
    """Refuse, before any work, figures per unit that cannot be made (a level the units lack)."""
    frame, level, assignment = units
    if frame is None:
        return
    levels = _unit_frame(frame)["level"].unique().tolist()
    if level not in levels:
        raise ValueError(f"units have no level {level!r}: pass level= one of {levels} — "
                         f"网格中没有层级 {level!r}，请选择 {levels} 之一")
    if assignment is not None and level not in assignment.columns:
        raise ValueError(f"the assignment has no column {level!r}: assign the addresses with levels=[..., "
                         f"{level!r}] — 地址归属结果缺少 {level!r} 列")
    if assignment is not None and not assignment.index.equals(addresses.index):
        raise ValueError("the assignment is not indexed like the addresses: pass gridgeo.assign(addresses, ...) "
                         "of these very addresses — 地址归属结果与地址不对应")


def _circles(radius_m) -> dict:
    """The standard circles, and the siting radius as one more, keyed between its neighbours.

    Minutes must grow with metres (:func:`gridgeo.coverage.nearest_station`), and the
    standard's 5 and 10 minutes are stricter than the walking speed: 10 minutes' walk at
    4 km/h (667 m) lies between its 10 (500 m) and 15 minutes (1,000 m). So the radius is
    keyed by a minute label between those of its neighbours (whole minutes apart, so
    that the labels stay distinct as integers); only its metres count.
    """
    circles = dict(gcov.GB50180_CIRCLES)
    radius_m = float(radius_m)
    if radius_m in circles.values():
        return circles
    below = [m for m, d in circles.items() if d < radius_m]
    above = [m for m, d in circles.items() if d > radius_m]
    if not above:
        key = max(max(below) + 1, radius_m / (gcov.WALKING_SPEED_KMH * 1000 / 60))
    else:
        key = ((max(below) if below else 0) + min(above)) / 2
    circles[key] = radius_m
    return dict(sorted(circles.items(), key=lambda kv: kv[1]))


def _as_measured(net, snapped, stations, before, demand):
    """Place resnapped addresses where nearest_station measured them from (a piece with a station)."""
    moved = before["status"].to_numpy()[demand] == "resnapped"
    if not moved.any():
        return snapped
    served = np.unique(net.node_component[net.edge_u[net.locate(stations, name="stations").edge]])
    piece = net.node_component[net.edge_u[snapped.edge]]
    again, _ = gcov._resnap_isolated(net, snapped, piece, served)
    return again


def _candidate_frame(candidates, net, *, empty: bool = False) -> gpd.GeoDataFrame:
    if candidates is None:
        candidates = candidate_sites(net)
    else:
        candidates = gcrs.to_storage(candidates, name="candidates")
        if "site_id" not in candidates.columns:
            candidates = candidates.assign(site_id=[str(i) for i in candidates.index])
        if candidates["site_id"].duplicated().any():
            dup = candidates["site_id"][candidates["site_id"].duplicated()].iloc[0]
            raise ValueError(f"candidates: site_id {dup!r} is used more than once; give every site its own id")
    if len(candidates) == 0 and not empty:
        raise ValueError("no candidate sites: pass candidates=..., or a network with junctions")
    return candidates.reset_index(drop=True)


def _coverage_units(p: _Problem):
    """Demand units for coverage models: the addresses not yet covered, merged by covering set.

    Returns (units, cover, cand): units has ``weight`` and ``members`` (a
    list of demand positions); cover is a boolean sparse matrix units x
    cand; cand are the candidate positions kept (non-dominated, useful).
    """
    from scipy import sparse
    open_ = p.existing > p.radius_m
    pairs = p.pairs[open_[p.pairs["origin"].to_numpy()]]
    origin, dest = pairs["origin"].to_numpy(), pairs["destination"].to_numpy()
    if len(origin) == 0:
        return pd.DataFrame({"weight": [], "members": []}), sparse.csr_matrix((0, 0), dtype=bool), np.zeros(0, int)
    # a covering set's signature: two independent random 64-bit sums of its members
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=(2, len(p.candidates)), dtype=np.uint64)
    order = np.lexsort((dest, origin))
    origin, dest = origin[order], dest[order]
    starts = np.flatnonzero(np.r_[True, origin[1:] != origin[:-1]])
    with np.errstate(over="ignore"):
        sig = np.column_stack([np.add.reduceat(keys[0][dest], starts), np.add.reduceat(keys[1][dest], starts)])
    addr = origin[starts]
    _, unit_of = np.unique(sig, axis=0, return_inverse=True)
    unit_of = unit_of.ravel()
    units = pd.DataFrame({"unit": unit_of, "addr": addr, "weight": p.weight[addr]}).groupby("unit").agg(
        weight=("weight", "sum"), members=("addr", list))
    unit_of_pair = np.repeat(unit_of, np.diff(np.r_[starts, len(origin)]))
    cover = sparse.csr_matrix((np.ones(len(dest), dtype=bool), (unit_of_pair, dest)),
                              shape=(len(units), len(p.candidates)))
    cover.sum_duplicates()
    cover.data[:] = True
    cand = _undominated(cover)
    return units, cover[:, cand].tocsr(), cand


def _undominated(cover, *, keep: str = "largest") -> np.ndarray:
    """Columns of a boolean matrix not dominated by another (ties: the first).

    ``keep="largest"`` drops a column whose rows lie inside another's (a
    candidate covering less); ``keep="smallest"`` drops one whose rows hold
    all of another's (a demand unit covered whenever the other is).
    """
    cover = cover.astype(np.int32).tocsc()
    size = np.asarray(cover.sum(axis=0)).ravel()
    useful = np.flatnonzero(size > 0)
    c = cover[:, useful]
    inter = (c.T @ c).tocoo()
    a, b, n = inter.row, inter.col, inter.data
    sa, sb = size[useful][a], size[useful][b]
    if keep == "largest":  # a inside b
        dominated = (a != b) & (n == sa) & ((sb > sa) | ((sb == sa) & (b < a)))
    else:  # b inside a
        dominated = (a != b) & (n == sb) & ((sa > sb) | ((sa == sb) & (b < a)))
    drop = np.zeros(len(useful), dtype=bool)
    drop[a[dominated]] = True
    return useful[~drop]


def _median_units(p: _Problem, pairs, cand, existing, aggregate):
    """Cost matrix (units x [existing] + candidates) and weights for the p-median."""
    col = np.searchsorted(cand, pairs["destination"].to_numpy())
    origin = pairs["origin"].to_numpy()
    addrs = np.unique(origin)
    if aggregate:
        net, s = p.network, p.snapped
        near_u = s.along_m <= net.edge_length[s.edge] / 2
        node = np.where(near_u, net.edge_u[s.edge], net.edge_v[s.edge])
        _, unit_of_addr = np.unique(node[addrs], return_inverse=True)
    else:
        unit_of_addr = np.arange(len(addrs))
    unit_of_addr = unit_of_addr.ravel()
    n_units = int(unit_of_addr.max()) + 1
    w = p.weight[addrs]
    weights = np.bincount(unit_of_addr, weights=w, minlength=n_units)
    # each address pays its existing distance unless a candidate is nearer
    base = np.bincount(unit_of_addr, weights=w * existing[addrs], minlength=n_units)
    cost = np.repeat(base[:, None], len(cand) + 1, axis=1)
    pos = np.searchsorted(addrs, origin)
    np.add.at(cost, (unit_of_addr[pos], col + 1), p.weight[origin] * (pairs["distance_m"].to_numpy() - existing[origin]))
    return cost / weights[:, None], weights, addrs


# ----------------------------------------------------------------------------
# Solving with spopt
# ----------------------------------------------------------------------------


def _highs(solver, time_limit_s):
    import pulp

    return solver if solver is not None else pulp.HiGHS(msg=False, timeLimit=time_limit_s)


@contextlib.contextmanager
def _quiet_pulp():
    # spopt builds its variables the way PuLP 3 deprecates: one warning per variable
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pulp\.")
        yield


def _solve_mclp(units, cover, k, solver):
    from spopt.locate import MCLP

    cost = np.where(cover.toarray(), 0.0, np.inf)
    start = time.perf_counter()
    with _quiet_pulp():
        model = MCLP.from_cost_matrix(cost, units["weight"].to_numpy(), service_radius=1.0, p_facilities=k)
        model.solve(solver, results=False)
    return _chosen(model), _details(model, cost.shape, start)


def _solve_lscp(units, cover, solver):
    from spopt.locate import LSCP

    start = time.perf_counter()
    rows, cols, fixed = _reduce_set_cover(cover)
    if len(rows) == 0:
        return np.sort(fixed), {"demand_units": 0, "candidates": 0, "status": "Optimal", "optimal": True,
                                "objective": float(len(fixed)), "fixed": int(len(fixed)),
                                "solve_s": round(time.perf_counter() - start, 3)}
    cost = np.where(cover[rows][:, cols].toarray(), 0.0, np.inf)
    with _quiet_pulp():
        model = LSCP.from_cost_matrix(cost, service_radius=1.0)
        model.solve(solver, results=False)
    details = _details(model, cost.shape, start)
    details.update(objective=details["objective"] + len(fixed), fixed=int(len(fixed)))
    return np.sort(np.concatenate([fixed, cols[_chosen(model)]])), details


def _reduce_set_cover(cover):
    """Exact reductions of a set-covering problem: (rows left, columns left, columns forced).

    Repeated until nothing changes: a row only one column covers forces that
    column (its rows are then covered); a row whose columns include all of
    another row's is covered whenever that one is; a column whose rows are
    inside another's is never needed.
    """
    m = cover.astype(np.int32).tocsr()
    rows, cols, fixed = np.arange(m.shape[0]), np.arange(m.shape[1]), []
    while len(rows):
        sub = m[rows][:, cols]
        per_row = np.diff(sub.indptr)
        forced = np.unique(sub.indices[sub.indptr[:-1][per_row == 1]])
        if len(forced):
            fixed.append(cols[forced])
            done = np.asarray(sub[:, forced].sum(axis=1)).ravel() > 0
            rows, cols = rows[~done], np.delete(cols, forced)
            continue
        before = (len(rows), len(cols))
        rows = rows[_undominated(sub.T, keep="smallest")]
        cols = cols[_undominated(m[rows][:, cols])]
        if (len(rows), len(cols)) == before:
            break
    fixed = np.concatenate(fixed) if fixed else np.zeros(0, dtype=int)
    return rows, cols, fixed


def _smallest_k_reaching(units, cover, target, k_max, solver):
    """The smallest k whose maximal coverage reaches `target` (binary search over exact MCLPs)."""
    weights = units["weight"].to_numpy()
    lo, hi, best = 1, k_max, None
    while lo <= hi:
        k = (lo + hi) // 2
        chosen, details = _solve_mclp(units, cover, k, solver)
        reached = weights[np.asarray(cover[:, chosen].sum(axis=1)).ravel() > 0].sum()
        if reached >= target - 1e-9:
            best, hi = (chosen, details), k - 1
        else:
            lo = k + 1
    if best is None:  # k_max sites (the full set cover) always reach it
        best = _solve_lscp(units, cover, solver)
    return best


def _solve_pmedian(cost, weights, k, solver):
    from spopt.locate import PMedian

    start = time.perf_counter()
    with _quiet_pulp():
        model = PMedian.from_cost_matrix(cost, weights, p_facilities=k + 1,
                                         predefined_facilities_arr=np.array([0]))
        model.solve(solver, results=False)
    chosen = np.array([j - 1 for j in _chosen(model) if j > 0], dtype=int)
    return chosen, _details(model, cost.shape, start)


def _chosen(model) -> np.ndarray:
    return np.array([j for j, var in enumerate(model.fac_vars) if (var.value() or 0) > 0.5], dtype=int)


def _details(model, shape, start) -> dict:
    import pulp

    return {"demand_units": int(shape[0]), "candidates": int(shape[1]),
            "status": pulp.LpStatus[model.problem.status],
            "optimal": model.problem.sol_status == pulp.LpSolutionOptimal,
            "objective": float(pulp.value(model.problem.objective) or 0.0),
            "solve_s": round(time.perf_counter() - start, 3)}


# ----------------------------------------------------------------------------
# The answer
# ----------------------------------------------------------------------------


def _answer(p: _Problem, chosen, model, *, feasible, message, details) -> Siting:
    chosen = np.sort(np.asarray(chosen, dtype=int))
    sites = p.candidates.iloc[chosen].reset_index(drop=True)
    new = gpd.GeoDataFrame({
        "station_id": sites["site_id"].astype(str).to_numpy(),
        "name": [f"新站点 {s}" for s in sites["site_id"]],
        "kind": NEW_KIND, "grid_code": "",
    }, geometry=sites.geometry.array, crs=gcrs.STORAGE_CRS)
    stations = pd.concat([p.stations[["station_id", "name", "kind", "grid_code", "geometry"]], new],
                         ignore_index=True)
    after = gcov.nearest_station(p.addresses, gpd.GeoDataFrame(stations, crs=gcrs.STORAGE_CRS), p.network,
                                 circles=_circles(p.radius_m))
    newly = _newly_covered(p, after)
    per_site = newly.groupby("site_id")[["households", "population", "addresses"]].sum()
    # sites given back (a proposal evaluated again) carry the figures of before: they are made anew
    sites = sites.drop(columns=[f"{c}_new" for c in per_site.columns], errors="ignore")
    key = sites["site_id"].astype(str)  # as the stations' ids the coverage names
    for col in per_site.columns:
        sites[f"{col}_new"] = key.map(per_site[col]).fillna(0).astype(np.int64).to_numpy()
    lead = ["site_id", "households_new", "population_new", "addresses_new"]
    sites = sites[lead + [c for c in sites.columns if c not in lead]]
    if details.get("optimal") is False:
        message += f" (the best found in the time limit, {details['solve_s']:.0f} s: not proven optimal)"
    log.info("siting (%s): %s", model, message)
    frame, level, assignment = p.units
    table = None if frame is None else per_unit(p.before, after, frame, radius_m=p.radius_m, level=level,
                                                 assignment=assignment)
    return Siting(sites=sites, newly_covered=newly.drop(columns="addresses"),
                  figures=_figures(p, after), feasible=bool(feasible), message=message, model=model,
                  details=details, per_unit=table, totals=_totals(p, after))


def _totals(p, after) -> dict:
    hh = gcov._weights(p.before).get("households", np.ones(len(p.before)))
    out = {"addresses": len(hh), "households": float(hh.sum())}
    for label, cov in (("before", p.before), ("after", after)):
        within = (cov["distance_m"] <= p.radius_m).to_numpy()
        out[f"addresses_{label}"] = int(within.sum())
        out[f"households_{label}"] = float(hh[within].sum())
    for what in ("addresses", "households"):
        out[f"{what}_gained"] = out[f"{what}_after"] - out[f"{what}_before"]
    for label in ("before", "after"):
        out[f"share_{label}"] = out[f"households_{label}"] / out["households"] if out["households"] else None
    out["radius_m"] = p.radius_m
    return out


def _newly_covered(p, after) -> pd.DataFrame:
    before_d = p.before["distance_m"].to_numpy()
    after_d = after["distance_m"].to_numpy()
    w = pd.to_numeric(p.addresses[p.weight_name], errors="coerce").fillna(0).to_numpy()
    newly = (after_d <= p.radius_m) & ~(before_d <= p.radius_m) & (w > 0)
    out = pd.DataFrame({
        "addr_id": p.addresses["addr_id"].to_numpy()[newly],
        "households": p.before["households"].to_numpy()[newly] if "households" in p.before else 1,
        "population": p.before["population"].to_numpy()[newly] if "population" in p.before else 0,
        "addresses": 1,
        "site_id": after["station_id"].astype(str).to_numpy()[newly],
        "distance_before_m": before_d[newly],
        "distance_m": after_d[newly],
    }, index=p.addresses.index[newly])
    return out


def _figures(p, after) -> pd.DataFrame:
    rows = {}
    for label, cov in (("before", p.before), ("after", after)):
        table = gcov.summary(cov)
        d = cov["distance_m"].to_numpy()
        hh = cov["households"].to_numpy(dtype=float) if "households" in cov else np.ones(len(cov))
        reached = ~np.isnan(d)
        row = {
            "households_covered": table.loc[table["distance_m"] == p.radius_m, "households"].iloc[0],
            "share_covered": table.loc[table["distance_m"] == p.radius_m, "share_households"].iloc[0],
            "population_covered": table.loc[table["distance_m"] == p.radius_m, "population"].iloc[0]
            if "population" in table else np.nan,
            "addresses_covered": table.loc[table["distance_m"] == p.radius_m, "addresses"].iloc[0],
        }
        for minutes, metres in gcov.GB50180_CIRCLES.items():
            row[f"households_{minutes}min"] = table.loc[table["distance_m"] == metres, "households"].iloc[0]
        row["mean_distance_m"] = float((d[reached] * hh[reached]).sum() / max(hh[reached].sum(), 1e-9))
        row["total_distance_km"] = float((d[reached] * hh[reached]).sum() / 1000)
        row["unreachable_households"] = float(hh[~reached].sum())
        rows[label] = row
    out = pd.DataFrame(rows).T
    out.loc["change"] = out.loc["after"] - out.loc["before"]
    return out
