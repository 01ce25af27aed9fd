"""What the endpoints read of the derived data served (:mod:`gridgeo.derived`).

Each function takes the :class:`~api.services.Services` and returns a value
read from the version served, kept in memory until the version changes. All
the work is gridgeo's, done once per version by ``gridgeo prepare``: these
functions only say which item feeds which endpoint.

Every one of them raises :class:`api.services.Preparing` while no version is
complete (a store never prepared): a route that reads through this module
answers 503 then, and says so in its ``responses`` (:data:`PREPARING`).
"""

from __future__ import annotations

import hashlib

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

import gridgeo
import gridgeo.maps
import gridgeo.search
from api.encode import dumps, feature_collection
from api.problems import Problem, responses
from api.services import log
from gridgeo import disclosure
from gridgeo import derived as gderived
from gridgeo import events as gevents
from gridgeo.derived import COVERAGE_FIGURES, COVERAGE_MINUTES, PUBLIC_FIGURES, TILE_FIGURES  # noqa: F401 - the endpoints' vocabulary
from gridgeo.tiles import TileSet, event_cells

PREPARING = responses(503)
"""The OpenAPI ``responses`` of a route that reads the derived data: a 503 with ``Retry-After``."""

CLASSED_FIGURES = [f for f in PUBLIC_FIGURES if f != "band"]
"""The public figures that are numbers (a flag counts as 0 or 1): what class breaks are made of."""


def warm(services) -> None:
    """Read what the one map asks for first (its tile set with the public figures, the figures
    per unit, the coverage view, the events placed in the grids), so
    that the first requests after a start find it read.

    Each step waits for a quiet moment (:meth:`~api.services.Services.when_quiet`): a burst of
    requests right after a start (a map's first tiles) is answered first, and a request that
    needs a value not read yet reads it itself.
    """
    for step in _WARM_STEPS:
        if not services.when_quiet():
            return
        step(services)


def _warm_events(services):
    if summary(services).get("events"):
        placed = placed_events(services)  # a viewer's first filter of the events then counts at once,
        placed.nested, placed.order("deepest")  # a unit's from its own events (their tree, their order),
        event_tally(services)  # and a change of category reads its counts


_WARM_STEPS = (
    lambda services: tiles(services),
    lambda services: public_figures(services, authorised=True),
    lambda services: coverage_per_unit(services),
    lambda services: uncovered(services, 15),
    lambda services: served(services, 15),
    _warm_events,
)


def grids(services) -> gpd.GeoDataFrame:
    """The grids of the version served."""
    return services.derived("grids", lambda kept: kept.grids())


def index(services) -> gridgeo.AssignIndex:
    return services.derived("index", lambda kept: gridgeo.AssignIndex(grids(services), scheme=services.store.scheme))


def metric(services) -> pyproj.CRS | None:
    """The one metric CRS of the published data (from the grids)."""
    def build(kept):
        wkt = kept.summary.get("metric_crs")
        return pyproj.CRS.from_wkt(wkt) if wkt else None
    return services.derived("metric", build)


def summary(services) -> dict:
    return services.kept.summary


def nearest(services, *, bbox=None) -> gpd.GeoDataFrame | None:
    """Every address's nearest station by walking distance (all kinds), read for a box only."""
    return services.kept.nearest(bbox=bbox)


def coverage_per_unit(services) -> pd.DataFrame | None:
    return services.derived("coverage_per_unit", lambda kept: kept.coverage())


def figures(services) -> pd.DataFrame:
    """stats.figures of the published data, with the coverage shares joined in."""
    return services.derived("figures", lambda kept: kept.figures())


def unit_figures(services, *, authorised: bool) -> pd.DataFrame:
    """Figures per unit (:data:`PUBLIC_FIGURES` and :data:`COVERAGE_FIGURES`) as a caller may see
    them: every figure for an authorised caller (viewer and up); for anyone else those of
    :func:`gridgeo.disclosure.public_figures` with the service's minimum count. Either way a
    ``suppressed`` column, and ``attrs["min_count"]`` (None: nothing suppressed)."""
    def build(kept):
        if authorised:
            table = gderived.unit_table(figures(services), coverage_per_unit(services))
            table["suppressed"] = False
            table.attrs = {"min_count": None}
            return table
        return kept.public_figures(services.settings.min_count)  # kept by `gridgeo prepare` for this k
    return services.derived("figures:authorised" if authorised else "figures:public", build)


def public_figures(services, *, authorised: bool = False) -> pd.DataFrame:
    """:data:`PUBLIC_FIGURES` per unit as a caller may see them (see :func:`unit_figures`)."""
    def build(kept):
        table = unit_figures(services, authorised=authorised)
        out = table[[c for c in table.columns if c not in COVERAGE_FIGURES]]
        out.attrs = dict(table.attrs)
        return out
    return services.derived("public_figures:authorised" if authorised else "public_figures", build)


def unit_bounds(services) -> dict[str, tuple[float, float, float, float]]:
    """Each unit's bounds (minx, miny, maxx, maxy) by code: a unit's page looks one up instead of
    indexing the whole grids frame, which grows with a province's cities."""
    def build(kept):
        frame = grids(services)
        return dict(zip(frame["code"], map(tuple, shapely.bounds(frame.geometry.array).tolist())))
    return services.derived("unit_bounds", build)


def children(services, code: str, *, authorised: bool) -> pd.DataFrame:
    """The rows of :func:`public_figures` whose parent is ``code``, in the table's order (the
    positions of each parent's children found once per version, not by a scan per request)."""
    table = public_figures(services, authorised=authorised)

    def build(kept):
        return table.groupby("parent", sort=False).indices
    positions = services.derived("children:authorised" if authorised else "children", build)
    return table.iloc[positions.get(code, np.empty(0, dtype=int))]


def finder(services) -> gridgeo.search.Finder:
    """The units of the version served, found by code, name, pinyin or several words (``/search``)."""
    def build(kept):
        units = public_figures(services)
        return gridgeo.search.Finder(units[["name", "level", "parent"]], scheme=services.store.scheme)
    return services.derived("finder", build)


def service_areas_body(services, minutes: int, kinds=None) -> tuple[bytes, str] | None:
    """The GeoJSON of the stations' service areas of a life circle (of the station ``kinds``, or all),
    encoded once per version and parameters, with its ETag (a digest of the body); None while the
    areas are still being prepared or without stations or roads. Only the body is kept: the
    circle's areas are read for it and let go."""
    kinds = tuple(sorted(set(kinds))) if kinds else ()

    def build(kept):
        found = kept.service_areas(minutes)
        if found is None:
            return None
        chosen = found[~found.geometry.is_empty]
        if kinds:
            chosen = chosen[chosen["kind"].isin(kinds)]
        body = dumps(feature_collection(chosen, ["station_id", "name", "kind", "circle", "distance_m"], raw=True)).encode()
        return body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
    return services.derived(f"areas:{minutes}:{','.join(kinds)}", build)


def served(services, minutes: int) -> gpd.GeoDataFrame | None:
    return services.derived(f"served:{minutes}", lambda kept: kept.served(minutes))


def uncovered(services, minutes: int) -> gpd.GeoDataFrame | None:
    return services.derived(f"uncovered:{minutes}", lambda kept: kept.uncovered(minutes))


def labels(services, level: str) -> list:
    return services.derived(f"labels:{level}", lambda kept: kept.labels(level))


def tiles(services) -> TileSet:
    """The tile set of the one map: grid levels with figures, stations, event counts.

    Tiles are public whoever asks (a shared cache hands them to anyone), so
    they carry the public figures: those of :func:`unit_figures` for an
    anonymous caller, tagged with the minimum count in their version."""
    def build(kept):
        tileset = kept.tiles(cache=services.tile_cache, figures=unit_figures(services, authorised=False),
                             tag=services.tile_tag)
        return tileset
    return services.derived("tiles", build)


def event_blocks(services) -> pd.DataFrame:
    """The events cut into blocks of at least k (:func:`gridgeo.disclosure.event_blocks`),
    made once per version with the service's minimum count and shortest period."""
    def build(kept):
        settings = services.settings
        prepared = kept.heat_blocks(settings.min_count, settings.heat_period)  # `gridgeo prepare` kept them
        if prepared is not None:
            return prepared
        events = services.derived("events", lambda kept: kept.events())
        return disclosure.event_blocks(events, settings.min_count, period=settings.heat_period)
    return services.derived("event_blocks", build)


def public_heat(services, *, category=None, start=None, end=None, cell_m: float) -> pd.DataFrame:
    """The public heat map (:func:`gridgeo.disclosure.heat`): ``lat``, ``lon``, ``count``, and
    what was withheld in ``attrs``."""
    return disclosure.heat(event_blocks(services), cell_m=cell_m, crs=metric(services), category=category,
                           start=start, end=end)


def events_heat(services, *, category=None, start=None, end=None, cell_m: float = 100.0) -> list[list[float]]:
    """Event counts on a square grid of ``cell_m`` metres: [lat, lon, count] per cell
    (:func:`gridgeo.tiles.event_cells`), in the published data's metric CRS: every event,
    for authorised callers."""
    events = services.derived("events", lambda kept: kept.events())
    crs = metric(services)
    if events.empty or crs is None:
        return []
    keep = pd.Series(True, index=events.index)
    if category:
        keep &= events["category"].isin(category)
    if start is not None:
        keep &= events["reported_at"] >= pd.Timestamp(start)
    if end is not None:
        keep &= events["reported_at"] < pd.Timestamp(end)
    chosen = events[keep.to_numpy()]
    points = gpd.GeoDataFrame(chosen[["category", "reported_at"]],
                              geometry=gpd.points_from_xy(chosen["x"], chosen["y"]), crs=crs)
    cells = event_cells(points, cell_m=cell_m, crs=crs)
    return [[float(a), float(b), int(n)] for a, b, n in zip(cells["lat"], cells["lon"], cells["count"])]


# --- events over time (gridgeo.events) ------------------------------------------------------------


def placed_events(services) -> gevents.Placed:
    """The published events (with their closing and step times) placed in the grids, once per version:
    the placement `gridgeo prepare` kept (``Derived.placed``), or, for a store prepared before it was
    kept, the events layer read and placed here; ordered by category (:func:`gridgeo.events.by_category`),
    so that the one map's filter on a category reads its run of the arrays instead of every event."""
    def build(kept):
        placed = kept.placed(index(services))
        if placed is not None:
            log.info("events of version %d: %d placed as prepared", kept.version, len(placed))
            return gevents.by_category(placed)
        store = services.store
        at = None if store.layer_version("events") <= kept.version else kept.version
        log.info("events of version %d: no placement kept (prepared before it was), reading and placing them",
                 kept.version)
        frame = store.read("events", at=at)
        return gevents.by_category(gevents.place(frame, index(services)))
    return services.derived("events:placed", build)


TALLIED = ("month", "quarter", "year")
"""The period kinds whose counts per category are kept (:func:`event_tally`): weeks and days would
take 4 to 30 times the memory of months for what is asked far less."""


def event_tally(services) -> gevents.Tally | None:
    """Every unit's indicators per category and period of the public heat map's period (the one map's
    first), counted once per version (:func:`gridgeo.events.tally`, about 18 MB for a city by months):
    the one map's change of category then reads its columns instead of counting its events. None for a
    period kind not in :data:`TALLIED`."""
    period = services.settings.heat_period
    if period not in TALLIED:
        return None
    return services.derived(f"events:tally:{period}", lambda kept: gevents.tally(placed_events(services),
                                                                                 period=period))


def memo(services, key: tuple, build):
    """``build()`` kept for the version served under ``key`` (questions with free parameters: dates,
    categories), in the service's cache of derived values: bounded by bytes with the rest
    (``GRIDGEO_CACHE_MB``), least recently used first out."""
    return services.derived(_memo_name(key), lambda kept: build())


def public_indicators(services) -> pd.DataFrame:
    """Every unit's indicators per period of the public heat map (``GRIDGEO_HEAT_PERIOD``), for all
    categories, under the minimum count (:func:`gridgeo.disclosure.public_indicators`): made once per
    version; anonymous questions are filters of it."""
    settings = services.settings

    def build(kept):
        prepared = kept.public_indicators(settings.min_count, settings.heat_period)  # `gridgeo prepare` kept it
        if prepared is not None:
            return prepared
        return gderived.public_event_table(placed_events(services), settings.min_count, settings.heat_period,
                                           scheme=services.store.scheme)
    return services.derived("events:public", build)


def public_event_question(services, period: str, start, end, category, indicator: str | None = None) -> None:
    """What an anonymous caller may ask of the events (a 422 otherwise): whole periods of the public heat
    map, every category, the published indicators."""
    settings = services.settings
    if indicator in disclosure.WITHHELD_INDICATORS:
        raise Problem(422, "Unprocessable Content", f"公开的事件指标不含 {indicator} / {indicator} is not among the "
                      "public event indicators (use on_time_rate, or a viewer key)")
    if period != settings.heat_period:
        raise Problem(422, "Unprocessable Content", f"公开的事件指标按 {settings.heat_period} 统计 / public event "
                      f"indicators are counted by {settings.heat_period} (period={period}); a viewer key gives "
                      "other periods")
    if category:
        raise Problem(422, "Unprocessable Content", "公开的事件指标不分类别 / public event indicators are for all "
                      "categories together (a breakdown could single out events); a viewer key gives categories")
    try:
        disclosure.aligned_period(start, end, settings.heat_period)
    except disclosure.DisclosureError as exc:
        raise Problem(422, "Unprocessable Content", str(exc)) from None


def event_units(services, *, authorised: bool, level, period, category=None) -> pd.DataFrame:
    """Every unit's indicators of a level per period as a caller may see them: :func:`event_indicators` for
    an authorised caller, the level's rows of :func:`public_indicators` for anyone else (ask
    :func:`public_event_question` first)."""
    if authorised:
        return event_indicators(services, level=level, period=period, category=category)
    public = public_indicators(services)
    return public[(public["level"] == level).to_numpy()]


def event_indicators(services, *, level, period, start=None, end=None, category=None, unit=None) -> pd.DataFrame:
    """:func:`gridgeo.events.indicators` of one level (for authorised callers): every unit, or the units inside
    ``unit`` (:func:`_level_table`)."""
    return _level_table(services, _indicators_key(level, period, start, end, category), unit,
                        lambda inside: gevents.indicators(placed_events(services), level=level, period=period,
                                                          start=start, end=end, category=category, unit=inside))


def _level_table(services, key: tuple, unit, count) -> pd.DataFrame:
    """A table of every unit of a level, ``count(None)``, kept under ``key``; or with ``unit`` the rows of
    the units inside it: those of the whole table when it is kept already, else ``count(unit)``, counted
    from the unit's events alone (a town's or a county's first question costs its events, not the whole
    area's) and kept apart."""
    if unit:
        whole = services.peek(_memo_name(key))
        if whole is not None:
            part = whole[whole["code"].str.startswith(unit).to_numpy()].reset_index(drop=True)
            part.attrs = dict(whole.attrs)
            return part
        return memo(services, (*key, "unit", unit), lambda: count(unit))
    return memo(services, key, lambda: count(None))


def event_trends(services, *, level, period, start=None, end=None, category=None, indicator=None,
                 unit=None) -> pd.DataFrame:
    """:func:`gridgeo.events.trends` of one level and indicator (for authorised callers): every unit, or the
    units inside ``unit`` (:func:`_level_table`)."""
    return _level_table(services, ("trends", level, period, start, end, tuple(category or ()), indicator), unit,
                        lambda inside: gevents.trends(placed_events(services), level=level, period=period,
                                                      start=start, end=end, category=category, indicator=indicator,
                                                      unit=inside))


def event_ranked(services, *, level, period, category=None, indicator, unit=None) -> pd.DataFrame:
    """One indicator of the units of ``level`` inside ``unit`` (every unit: none) per period with its changes
    (:func:`gridgeo.events.changes`): what the one map's ranking ranks. Made from :func:`event_indicators` of
    the unit, so a unit's first ranking counts the unit's events alone (:func:`_level_table`); kept per level,
    period, categories, indicator and unit."""
    key = ("ranked", level, period, tuple(category or ()), indicator, unit or "", None)
    return memo(services, key, lambda: gevents.changes(
        event_indicators(services, level=level, period=period, category=category, unit=unit or None), indicator))


def event_overview(services, *, unit, levels, period, category=None) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """:func:`event_region` of a unit and :func:`event_indicators` of some levels (all the data's periods), as
    one filter of the one map asks them: what is not kept yet made in one pass over the placed events
    (:func:`gridgeo.events.overview`), then kept as each would be on its own."""
    levels = list(dict.fromkeys(levels))
    region_key = _region_key(unit, period, category)
    level_keys = [_indicators_key(lv, period, None, None, category) for lv in levels]
    missing = [lv for lv, key in zip(levels, level_keys) if services.peek(_memo_name(key)) is None]
    if missing:
        counted = event_tally(services) if period == services.settings.heat_period and category and \
            len(category) == 1 else None
        if counted is not None and str(category[0]) in counted.categories:  # the same tables, read
            made, table = counted.overview(placed_events(services), unit=unit or None, level=missing,
                                               category=category)
        else:
            made, table = gevents.overview(placed_events(services), unit=unit or None, level=missing, period=period,
                                           category=category)
        region = memo(services, region_key, lambda: made)  # or the one kept meanwhile: the same
        kinds = table["level"].to_numpy(dtype=object)
        for lv in missing:  # each level's rows are one run of the table
            rows = np.flatnonzero(kinds == lv)
            part = table.iloc[rows[0]:rows[-1] + 1].reset_index(drop=True) if len(rows) else table.iloc[:0]
            part.attrs = dict(table.attrs)
            memo(services, _indicators_key(lv, period, None, None, category), lambda part=part: part)
    else:
        region = event_region(services, unit=unit, period=period, category=category)
    tables = [event_indicators(services, level=lv, period=period, category=category) for lv in levels]
    return region, tables


def _memo_name(key: tuple) -> str:
    return f"events:{key!r}"


def _indicators_key(level, period, start, end, category) -> tuple:
    return ("indicators", level, period, start, end, tuple(category or ()))


def _region_key(unit, period, category) -> tuple:
    return ("region", unit or "", period, tuple(category or ()))


def event_region(services, *, unit, period, category=None) -> pd.DataFrame:
    """:func:`gridgeo.events.region` of a unit (or the whole area: ``unit`` empty) over all the data's
    periods, for authorised callers; kept per unit, period and categories."""
    key = _region_key(unit, period, category)
    return memo(services, key, lambda: gevents.region(placed_events(services), unit=unit or None, period=period,
                                                      category=category))


def public_region(services, unit) -> pd.DataFrame:
    """A unit's (or the whole area's) public indicators per period of the public heat map: the unit's rows
    of :func:`public_indicators`, or :func:`gridgeo.disclosure.public_whole` of the whole area (with the
    units' audit, which may withhold the whole area: above the counties of a province)."""
    settings = services.settings
    if unit:
        table = public_indicators(services)
        return table[table["code"] == unit]
    return memo(services, ("region:public", settings.min_count, settings.heat_period), lambda: disclosure.public_whole(
        gevents.region(placed_events(services), period=settings.heat_period), settings.min_count,
        audit=public_indicators(services)))


def classes(services, key: tuple, values, *, scheme: str, k: int) -> dict:
    """Class breaks of a choropleth's values (the one map's rule, :func:`gridgeo.maps.breaks`): ``min``,
    ``bins`` (upper bounds, closed above) and ``counts``, over the known values; kept under ``key``."""
    def build():
        known = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        known = known[np.isfinite(known)]
        bins, counts = gridgeo.maps.breaks(known, scheme=scheme, k=k)
        return {"min": float(known.min()) if len(known) else None, "bins": [float(b) for b in bins],
                "counts": [int(c) for c in counts]}
    return memo(services, ("classes", *key, scheme, k), build)


def event_hotspots(services, *, level, method="gi", start=None, end=None, category=None) -> pd.DataFrame:
    """:func:`gridgeo.events.hotspots` of a level: events per 100 households (999 permutations, seed 0)."""
    key = ("hotspots", level, method, start, end, tuple(category or ()))
    return memo(services, key, lambda: gevents.hotspots(placed_events(services), level=level, base=figures(services),
                                                        method=method, start=start, end=end, category=category))


# --- other offices' boundaries against the grids (gridgeo.crosswalk) --------------------------------------


def crosswalk(services, boundary_set: str, level: str):
    """``(table, report)`` of a boundary set against a grid level at the version served:
    :func:`gridgeo.crosswalk.crosswalk` (with the names, :func:`gridgeo.crosswalk.with_names`)
    and :func:`gridgeo.crosswalk.misalignment`, households by the published addresses, the
    grids' assignment index reused; made once per version and set."""
    def build(kept):
        store = services.store
        at = {kind: None if store.layer_version(kind) <= kept.version else kept.version
              for kind in ("boundaries", "addresses")}
        other = store.read(boundary_set, at=at["boundaries"])
        counts = [c for c in ("households", "population") if c in store.columns("addresses")]
        addresses = store.read("addresses", at=at["addresses"], columns=counts)
        units = grids(services)
        options = dict(level=level, other_id="boundary_id", addresses=addresses if len(addresses) else None,
                       index=index(services), scheme=store.scheme, name="grids", other_name=boundary_set)
        table = gridgeo.crosswalk.crosswalk(units, other, **options)
        report = gridgeo.crosswalk.misalignment(units, other, **options)
        return gridgeo.crosswalk.with_names(table, units, other, other_id="boundary_id"), report
    return services.derived(f"crosswalk:{boundary_set}:{level}", build)


def public_crosswalk(services, boundary_set: str, level: str) -> pd.DataFrame:
    """The crosswalk table as the public may see it (:func:`gridgeo.disclosure.public_crosswalk`)."""
    def build(kept):
        table, _ = crosswalk(services, boundary_set, level)
        return disclosure.public_crosswalk(table, public_figures(services, authorised=False),
                                           services.settings.min_count)
    return services.derived(f"crosswalk:{boundary_set}:{level}:public", build)


def roster(services):
    """The roster published at the version served (who answers for each grid), once per version."""
    def build(kept):
        store = services.store
        at = None if store.layer_version("roster") <= kept.version else kept.version
        return store.read("roster", at=at).drop(columns=["revision", "geometry"], errors="ignore")
    return services.derived("roster", build)


# --- where the next stations go (gridgeo.siting) ---------------------------------------------------


def siting_inputs(services):
    """``(addresses, stations, network, assignment)`` of the version served, for
    :mod:`gridgeo.siting`: the published layers, the walking network built from the
    roads in the data's metric CRS (as ``gridgeo prepare`` builds it for coverage),
    and the addresses' codes at every level. None without addresses, stations or
    roads. Made once per version."""
    def build(kept):
        store = services.store
        layers = {}
        for kind in ("addresses", "stations", "roads"):
            at = None if store.layer_version(kind) <= kept.version else kept.version
            layers[kind] = store.read(kind, at=at)
            if layers[kind].empty:
                return False
        network = gridgeo.network.build(layers["roads"], metric=metric(services))
        assignment = gridgeo.assign(layers["addresses"], index(services), name="addresses")
        return layers["addresses"], layers["stations"], network, assignment
    made = services.derived("siting", build)
    return made or None
