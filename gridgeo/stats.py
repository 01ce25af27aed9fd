"""Figures per unit at every level, rolled up the hierarchy, and the balance a planner reads.

:func:`figures` counts, for every town, village and grid, its standard
addresses and their households, population and market units, its grid
events by status and category, and its stations by kind. It is what the
one-map choropleth, the ``/stats`` endpoints and the impact of a replanning
are computed from. :func:`balance` sums up, per level, how even the grids
are: households per grid, grids outside the target band, households per
grid worker.

Figures are public aggregates: nothing about a single address (its id, its
text, its position) ever appears in them.

How the figures roll up
-----------------------
Every point is placed with :func:`gridgeo.assign` and counted once, in the
deepest unit of a full level that holds it (a level-2 grid, normally).
Every unit of a full level then gets the sum of its children at the next
full level, so a parent always equals the sum of its children. A partial
level (level-3 enterprise plots) counts the points inside its units; their
parent counts all of its points, in a plot or not. A point that a faulty
plan leaves in a gap of a full level (inside a village but in none of its
grids) is counted in the deepest unit that holds it, and a warning names
those units: there the parent exceeds the sum of its children.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.schema import (DEFAULT_SCHEME, EVENT_CATEGORIES, EVENT_STATUSES, STATION_KINDS, CodeScheme,
                            check)

__all__ = ["figures", "balance", "whole", "DEFAULT_BANDS", "BANDS", "SUMMED"]

DEFAULT_BANDS = {"grid2": (300, 500)}
"""Target households per unit, by level: the urban level-2 grid's 300–500
households. Give rural plans or other levels their own bands."""

#: The values of the ``band`` column.
BANDS = ("under", "within", "over")

SUMMED = ("addresses", "households", "population", "units", "workers", "events", "stations")
"""Figures of a unit that are the sums of its children's."""

_ADDRESS_SUMS = ("households", "population", "units")


def figures(grids, *, addresses=None, events=None, stations=None, roster=None, bands=None,
            scheme: CodeScheme | None = None, client=None) -> gpd.GeoDataFrame:
    """Counts and sums per unit at every level, each parent the sum of its children.

    Parameters
    ----------
    grids : GeoDataFrame or gridgeo.AssignIndex
        The grids (every level in one frame, checked with
        :func:`gridgeo.schema.check`), or the index built from them (reused
        to place the points, the cheap way for repeated calls).
    addresses : GeoDataFrame, optional
        Standard addresses (一标), with ``households``, ``population`` and
        ``units`` counts where known.
    events : GeoDataFrame, optional
        Grid events with ``category`` and ``status``.
    stations : GeoDataFrame, optional
        Stations with ``kind``, counted where they stand.
    roster : DataFrame, optional
        Who answers for each grid (:mod:`gridgeo.roster`: ``grid_code``,
        ``role``): the ``workers`` then come from it, the full-time and
        part-time grid workers' posts (:data:`gridgeo.roster.WORKER_ROLES`; not
        the head, not the police deputy) on the unit and every unit below it
        (:func:`gridgeo.roster.posts`), instead of the grids' ``workers`` column.
    bands : dict of str to (low, high), optional
        Target households per unit by level (default :data:`DEFAULT_BANDS`);
        the levels not named have no band.
    scheme : CodeScheme, optional
        The levels, which are full (roll up) and which partial; default the
        index's, or :data:`gridgeo.schema.DEFAULT_SCHEME`.
    client : distributed.Client, optional
        Run on this Dask cluster, one task per top-level unit, with the same
        answer (the partition rule of :mod:`gridgeo.distribute`). Then a
        layer may also be one written by
        :func:`gridgeo.distribute.partition` (``dataset["events"]``, or its
        folder) or a store's layer (:class:`gridgeo.distribute.StoreLayer`):
        each task reads its unit's file or rows on its worker, and the
        categories and kinds beyond the known ones are read from that
        column alone, on the workers (a store's layer is read once: they
        come from the rows its tasks read, where they are held).

    Returns
    -------
    GeoDataFrame
        One row per unit, indexed by ``code``, ordered by level then code,
        in EPSG:4490, with these columns (counts are integers):

        - ``name``, ``level``, ``parent`` (the enclosing unit's code) and the
          unit's polygon;
        - ``addresses``: standard addresses; ``households``, ``population``,
          ``units`` (market entities): their sums, for the address columns
          present;
        - ``events``; ``events_<status>`` for every status
          (``events_open``, ``events_in_progress``, ``events_closed``) and
          ``events_<category>`` for every category (``events_dispute`` ...),
          known ones always, others when present;
        - ``events_per_1000``: events per 1,000 residents (NaN without
          residents);
        - ``stations`` and ``stations_<kind>`` for every kind;
        - ``workers``: grid workers of the unit and everything below it, and
          ``households_per_worker`` (NaN without workers), when a roster is
          given (its posts) or else the grids have a ``workers`` column;
        - ``band``: ``under``, ``within`` or ``over`` the level's target band
          of households (bounds included in ``within``), missing for levels
          without a band.

        ``attrs["unplaced"]`` counts, per layer, the points no unit holds
        (``outside``) and the unusable ones (``invalid``); for a roster, its
        rows naming no unit (``unknown``).

    Raises
    ------
    gridgeo.schema.SchemaError
        If the grids or a layer fail the schema (missing columns, duplicate
        ids, negative counts...), with every problem listed.

    See Also
    --------
    balance : how even the units of each level are.
    gridgeo.assign : where each point lies.

    Notes
    -----
    The layers a call does not give have no columns. See the module notes
    for how partial levels and faulty plans are counted.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses, events=s.events,
    ...                           stations=s.stations)
    >>> town = f[f["level"] == "town"].iloc[0]
    >>> int(town["households"]) == int(f.loc[f["level"] == "village", "households"].sum())
    True
    >>> f.loc[f["level"] == "grid2", "band"].value_counts().index.tolist()[:1]
    ['within']
    """
    if client is None and any(_stored(layer) for layer in (addresses, events, stations)):
        raise TypeError("分区存储或数据库中的图层在 Dask 集群上读取：请给 client / a layer stored partitioned "
                        "(gridgeo.distribute.partition) or in a store (gridgeo.distribute.StoreLayer) is read on "
                        "a Dask cluster: give client=")
    if client is not None:
        out = _figures_on_dask(client, grids, addresses=addresses, events=events, stations=stations,
                               bands=bands, scheme=scheme)
    else:
        out = _figures(grids, addresses=addresses, events=events, stations=stations, bands=bands, scheme=scheme)
    return out if roster is None else _staffed(out, roster)


def _stored(layer) -> bool:
    from gridgeo import distribute

    return layer is not None and distribute.is_stored(layer)


def _staffed(out, roster):
    """`out` with its ``workers`` and ``households_per_worker`` from the roster's posts."""
    from gridgeo.roster import posts

    counted = posts(roster, out)
    out["workers"] = counted["workers"].to_numpy()
    out.attrs.setdefault("unplaced", {})["roster"] = {"unknown": counted.attrs["unknown"]}
    if "households" in out.columns:
        out["households_per_worker"] = out["households"] / out["workers"].where(out["workers"] > 0)
    return out


def _figures(grids, *, addresses, events, stations, bands, scheme, others=None):
    """:func:`figures` in this process; `others` fixes the categories beyond the known ones
    (``{column: sorted values}``; default: those present)."""
    from gridgeo.assignment import AssignIndex

    index = grids if isinstance(grids, AssignIndex) else AssignIndex(grids, scheme=scheme or DEFAULT_SCHEME)
    bands = _checked_bands(_default_bands(index.scheme) if bands is None else bands, index.scheme)
    units = _unit_table(index)
    tree = _UnitTree(index, units, index.scheme)
    layers = {
        "addresses": (addresses, _address_values),
        "events": (events, _event_values),
        "stations": (stations, _station_values),
    }
    columns, unplaced = {}, {}
    for layer, (points, values) in layers.items():
        if points is None:
            continue
        points = check(points, layer, scheme=index.scheme, name=layer)
        placed = _placed(points, index, layer)
        unplaced[layer] = {s: int((placed["status"] == s).sum()) for s in ("outside", "invalid")}
        columns.update(tree.totals(placed, values(points, layer, others), layer))
    if "workers" in units.columns:
        units["workers"] = tree.rolled_up(units["workers"].to_numpy())
    out = units.join(pd.DataFrame(columns, index=units.index))
    out = _with_rates(out, bands)
    out.attrs["unplaced"] = unplaced
    return out


def _unit_table(index) -> gpd.GeoDataFrame:
    grids = index.grids
    keep = ["code", "name", "level", "parent"] + (["workers"] if "workers" in grids.columns else [])
    units = grids[keep + [grids.geometry.name]].set_index("code")
    if "workers" in units.columns:
        units["workers"] = pd.to_numeric(units["workers"]).fillna(0).astype(np.int64)
    return units


def _placed(points, index, layer):
    from gridgeo.assignment import assign

    return assign(points, index, name=layer)


class _UnitTree:
    """Where each unit's counts come from: the units of full levels sum
    their children at the next full level; partial-level units count their
    own points."""

    def __init__(self, index, units, scheme):
        self.levels = index.levels
        sizes = [len(index.codes[lv]) for lv in self.levels]
        self.start = dict(zip(self.levels, np.cumsum([0] + sizes)))
        self.full = [lv for lv in self.levels if scheme.level(lv).full]
        self.partial = [lv for lv in self.levels if lv not in self.full]
        self.codes = units.index
        self.level = units["level"].to_numpy()
        self.roll_up = self._ancestor_matrix(units)

    def _ancestor_matrix(self, units):
        """Sparse (unit x unit): 1 where the row is the column's unit or one
        of its ancestors, for units of full levels; partial units only count
        themselves."""
        from scipy import sparse
        n = len(units)
        position = pd.Series(np.arange(n), index=self.codes)
        parent = position.reindex(units["parent"]).to_numpy()
        parent = np.where(np.isin(self.level, self.full) & ~np.isnan(parent), parent, -1).astype(np.int64)
        rows, cols = [np.arange(n)], [np.arange(n)]
        current = parent.copy()
        while (current >= 0).any():
            live = np.flatnonzero(current >= 0)
            rows.append(current[live])
            cols.append(live)
            current[live] = parent[current[live]]
        rows, cols = np.concatenate(rows), np.concatenate(cols)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))

    def rolled_up(self, own):
        """Per unit, its own value plus those of everything below it (full levels)."""
        return np.rint(self.roll_up @ np.asarray(own, dtype=np.float64)).astype(np.int64)

    def totals(self, placed, values, layer):
        """{column: per-unit totals} of the per-point `values`."""
        n = len(self.codes)
        names = list(values)
        matrix = np.column_stack([values[c] for c in names]).astype(np.float64)
        deepest = self._deepest_full(placed)
        direct = self._sum_into(deepest, matrix, n)
        self._warn_gaps(direct, names, layer)
        counted = self.roll_up @ direct
        for lv in self.partial:
            codes = placed[lv].cat.codes.to_numpy()
            where = np.where(codes >= 0, self.start[lv] + codes, -1)
            counted = counted + self._sum_into(where, matrix, n)
        return {c: np.rint(counted[:, i]).astype(np.int64) for i, c in enumerate(names)}

    def _deepest_full(self, placed):
        deepest = np.full(len(placed), -1, dtype=np.int64)
        for lv in self.full:
            codes = placed[lv].cat.codes.to_numpy()
            deepest = np.where(codes >= 0, self.start[lv] + codes, deepest)
        return deepest

    @staticmethod
    def _sum_into(unit, matrix, n):
        from scipy import sparse
        held = unit >= 0
        spread = sparse.csr_matrix((np.ones(held.sum()), (unit[held], np.flatnonzero(held))),
                                   shape=(n, len(unit)))
        return np.asarray(spread @ matrix)

    def _warn_gaps(self, direct, names, layer):
        finest = self.full[-1] if self.full else None
        above = ~np.isin(self.level, [finest]) & np.isin(self.level, self.full)
        stuck = np.flatnonzero(above & (direct[:, names.index(layer)] > 0))
        if len(stuck):
            listed = ", ".join(f"{self.codes[i]} ({int(direct[i, names.index(layer)])})" for i in stuck[:10])
            warnings.warn(
                f"{layer}: points in {len(stuck)} unit(s) lie in none of their {finest} children, "
                f"so there the parent exceeds the sum of its children: {listed}. The plan has gaps: "
                "check it with gridgeo.validate", stacklevel=4)


def _figures_on_dask(client, grids, *, addresses, events, stations, bands, scheme):
    """:func:`figures` one task per top-level unit (:mod:`gridgeo.distribute`), concatenated in order."""
    from gridgeo import distribute
    from gridgeo.assignment import AssignIndex

    if isinstance(grids, AssignIndex):
        grids, scheme = grids.grids, grids.scheme
    scheme = scheme or DEFAULT_SCHEME
    layers = distribute.held(client, {"addresses": addresses, "events": events, "stations": stations}, grids,
                             scheme=scheme)  # a store's layer read once, for both uses below
    others = {(layer, column): (_others_stored(client, frame, column, known) if distribute.is_stored(frame)
                                else _others(frame, column, known))
              for layer, frame in layers.items() if frame is not None
              for column, known in _CATEGORIES.get(layer, ())}
    parts, unplaced, top = distribute.split(grids, layers, scheme=scheme, client=client)
    results = distribute.run(client, _figures_part, parts, bands=bands, scheme=scheme, others=others)
    out = pd.concat(results) if results else _figures(grids.iloc[:0], **layers, bands=bands, scheme=scheme)
    out = gpd.GeoDataFrame(out, geometry=results[0].geometry.name, crs=results[0].crs) if results else out
    rank = out["level"].map({lv: i for i, lv in enumerate(scheme.names)}).to_numpy()
    out = out.iloc[np.lexsort((out.index.to_numpy(dtype=object), rank))]
    for result in results:
        for layer, counts in result.attrs["unplaced"].items():
            for status, n in counts.items():
                unplaced[layer][status] += n
    out.attrs = {"unplaced": unplaced}
    return out


def _figures_part(part, *, bands, scheme, others):
    from gridgeo.assignment import AssignIndex

    index = AssignIndex(part.grids, scheme=scheme, _one_call=True)  # built for this task alone: the lighter one
    return _figures(index, **part.layers, bands=bands, scheme=scheme, others=others)


# the categorical columns counted one-hot, per layer, with their known values
_CATEGORIES = {"events": (("status", EVENT_STATUSES), ("category", EVENT_CATEGORIES)),
               "stations": (("kind", STATION_KINDS),)}


def _others(frame, column, known):
    """The values of `column` beyond the `known` ones, sorted: the extra one-hot columns."""
    if column not in frame.columns:
        return []
    values = pd.unique(frame[column].astype("str").to_numpy())
    return sorted(v for v in values if isinstance(v, str) and v not in known)


def _others_stored(client, stored, column, known):
    """:func:`_others` of a layer stored partitioned, from its `column` read on the workers, file by file."""
    from gridgeo import distribute

    if column not in distribute.stored_layer(stored).columns:
        return []
    found = distribute.summarise(client, stored, [column], _distinct_text)
    return sorted({v for values in found for v in values} - set(known))


def _distinct_text(frame):
    return {v for v in pd.unique(frame.iloc[:, 0].astype("str").to_numpy()) if isinstance(v, str)}


def _address_values(addresses, layer, others=None):
    values = {layer: np.ones(len(addresses))}
    for column in _ADDRESS_SUMS:
        if column in addresses.columns:
            values[column] = pd.to_numeric(addresses[column], errors="coerce").fillna(0).to_numpy()
    return values


def _event_values(events, layer, others=None):
    values = {layer: np.ones(len(events))}
    for column, known in _CATEGORIES[layer]:
        values.update(_one_hot(events, column, known, layer, (others or {}).get((layer, column))))
    return values


def _station_values(stations, layer, others=None):
    values = {layer: np.ones(len(stations))}
    for column, known in _CATEGORIES[layer]:
        values.update(_one_hot(stations, column, known, layer, (others or {}).get((layer, column))))
    return values


def _one_hot(frame, column, known, layer, others=None):
    """{f"{layer}_{value}": 0/1 per row} for every known value and any other present
    (or the `others` given)."""
    if column not in frame.columns:
        return {}
    values = frame[column].astype("str").to_numpy()
    others = _others(frame, column, known) if others is None else others
    return {f"{layer}_{v}": (values == v).astype(np.float64) for v in [*known, *others]}


def whole(figures, level: str | None = None) -> dict:
    """The figures of the whole area above the top level (a city over its towns).

    The rule, as for any parent: the counts (:data:`SUMMED`) are the sums of
    the units of ``level``; the rates are computed again from those sums
    (events per 1,000 residents, households per worker), never averaged; a
    coverage share ``share_<n>min`` is the households within the circle over
    all households (each unit's share weighted by its households).

    Parameters
    ----------
    figures : DataFrame
        :func:`figures` (or the public subset of its columns).
    level : str, optional
        The level whose units make up the whole (default: the top level present).

    Returns
    -------
    dict
        Plain Python values: the counts, ``events_per_1000``,
        ``households_per_worker``, the shares and ``has_station``.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses, events=s.events)
    >>> city = whole(f, "village")
    >>> city["households"] == int(f.loc[f["level"] == "town", "households"].sum())
    True
    >>> round(city["events_per_1000"], 3) == round(float(f.loc[f["level"] == "town", "events_per_1000"].iloc[0]), 3)
    True
    """
    if level is None:
        present = list(figures["level"].unique())
        level = present[0] if present else None
    units = figures[figures["level"] == level]
    total = {c: int(units[c].sum()) for c in SUMMED if c in units.columns}
    if total.get("workers"):
        total["households_per_worker"] = total["households"] / total["workers"]
    if total.get("population") and "events" in total:
        total["events_per_1000"] = total["events"] / total["population"] * 1000
    households = units["households"] if "households" in units.columns else None
    for share in [c for c in units.columns if c.startswith("share_")]:
        if households is not None and households.sum() > 0:
            total[share] = float((units[share].fillna(0) * households).sum() / households.sum())
    if "stations" in total:
        total["has_station"] = bool(total["stations"])
    return total


def _with_rates(out, bands):
    if "events" in out.columns and "population" in out.columns:
        residents = out["population"].where(out["population"] > 0)
        out["events_per_1000"] = out["events"] / residents * 1000
    if "workers" in out.columns and "households" in out.columns:
        out["households_per_worker"] = out["households"] / out["workers"].where(out["workers"] > 0)
    if "households" in out.columns:
        out["band"] = _band(out["households"], out["level"], bands)
    return out


def _default_bands(scheme) -> dict:
    """:data:`DEFAULT_BANDS` for the default scheme; for another, the same
    band on its main level (:attr:`~gridgeo.schema.CodeScheme.main_level`)."""
    if all(lv in scheme.names for lv in DEFAULT_BANDS):
        return dict(DEFAULT_BANDS)
    return {scheme.main_level: next(iter(DEFAULT_BANDS.values()))}


def _checked_bands(bands, scheme):
    unknown = [lv for lv in bands if lv not in scheme.names]
    if unknown:
        raise KeyError(f"bands given for unknown level(s) {unknown}: the levels are {list(scheme.names)}")
    for lv, (low, high) in bands.items():
        if not low <= high:
            raise ValueError(f"the band of {lv} should be (low, high) with low <= high, got {(low, high)}")
    return dict(bands)


def _band(values, level, bands):
    """under / within / over each level's (low, high) band, bounds within;
    missing for levels without a band."""
    low = level.map({lv: b[0] for lv, b in bands.items()}).astype(float).to_numpy()
    high = level.map({lv: b[1] for lv, b in bands.items()}).astype(float).to_numpy()
    values = np.asarray(values, dtype=float)
    code = np.select([values < low, values > high, values >= low], [0, 2, 1], default=-1)
    return pd.Categorical.from_codes(code, categories=list(BANDS))


def balance(figures, *, of="households", bands=None, within=None,
            scheme: CodeScheme = DEFAULT_SCHEME) -> pd.DataFrame:
    """How even the units of each level are: the planner's balance sheet.

    Parameters
    ----------
    figures : DataFrame
        The result of :func:`figures`.
    of : str, default "households"
        The figure to summarise (``households``, ``population``,
        ``events`` ...).
    bands : dict of str to (low, high), optional
        Target band of `of` per level (default :data:`DEFAULT_BANDS` when
        `of` is households, else none).
    within : str, optional
        A level (``"town"``) to summarise the levels below it separately
        inside each of its units, e.g. the grids of every town.
    scheme : CodeScheme
        The levels and code widths.

    Returns
    -------
    DataFrame
        Indexed by ``level`` (and, with `within`, the code of the enclosing
        unit, in an index level named after it), levels top first, with
        ``count`` (of units), ``total``, ``min``, ``median``, ``max``, ``mean``, ``cv``
        (coefficient of variation: population standard deviation over the
        mean); for levels with a band ``band_low``, ``band_high``,
        ``under``, ``within``, ``over`` (units below, inside (bounds
        included) and above it) and ``share_within``; with staffing (a
        ``workers`` column) ``workers`` and the ``min``, ``median`` and
        ``max`` of ``households_per_worker``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
    >>> b = gridgeo.stats.balance(f)
    >>> row = b.loc["grid2"]
    >>> int(row["count"]) == int(row["under"] + row["within"] + row["over"]) == 128
    True
    """
    if of not in figures.columns:
        raise KeyError(f"figures have no column {of!r}: compute them with the layer it comes from "
                       f"(they have {[c for c in figures.columns if c != 'geometry']})")
    bands = _checked_bands((_default_bands(scheme) if of == "households" else {}) if bands is None else bands,
                           scheme)
    table = pd.DataFrame({"level": figures["level"].to_numpy(), "value": figures[of].to_numpy(float)},
                         index=figures.index)
    if "households_per_worker" in figures.columns:
        table["workers"] = figures["workers"].to_numpy()
        table["per_worker"] = figures["households_per_worker"].to_numpy()
    keys = ["level"]
    if within is not None:
        below = table["level"].map(scheme.index) > scheme.index(within)
        table = table[below.to_numpy()]
        table[within] = table.index.str[:scheme.width(within)]
        keys.append(within)
    groups = table.groupby(keys, sort=False)
    out = pd.DataFrame({
        "count": groups.size(),
        "total": groups["value"].sum(),
        "min": groups["value"].min(),
        "median": groups["value"].median(),
        "max": groups["value"].max(),
        "mean": groups["value"].mean(),
    })
    out["cv"] = groups["value"].std(ddof=0) / out["mean"].where(out["mean"] > 0)
    if bands:
        out = out.join(_band_counts(table, keys, bands))
    if "per_worker" in table.columns:
        out["workers"] = groups["workers"].sum()
        for stat in ("min", "median", "max"):
            out[f"households_per_worker_{stat}"] = groups["per_worker"].agg(stat)
    order = {lv: i for i, lv in enumerate(scheme.names)}
    return out.sort_index(key=lambda c: c.map(order) if c.name == "level" else c)


def _band_counts(table, keys, bands):
    """Per group of a level with a band: its bounds and the units under, within, over it."""
    banded = table[table["level"].isin(list(bands)).to_numpy()]
    band = pd.Series(_band(banded["value"], banded["level"], bands), index=banded.index)
    counts = pd.get_dummies(band).astype(np.int64).groupby([banded[k] for k in keys], sort=False).sum()
    counts.columns = list(BANDS)
    counts["share_within"] = counts["within"] / counts.sum(axis=1)
    level = counts.index.get_level_values("level")
    counts.insert(0, "band_high", level.map(lambda lv: bands[lv][1]).to_numpy(dtype=float))
    counts.insert(0, "band_low", level.map(lambda lv: bands[lv][0]).to_numpy(dtype=float))
    return counts
