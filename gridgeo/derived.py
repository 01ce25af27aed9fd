"""What a store's published data derives, computed once per data version and kept in the store.

A service shows figures per unit, walking coverage, the ground each life
circle serves and the areas it leaves out, labels and vector tiles. At city
scale (800,000 addresses, 816,000 events) computing them takes a minute and
a few GB of memory; kept in the store under the data version they come from
(:attr:`gridgeo.store.Store.version`), they let any process on the store (a
restarted service, a second worker, another machine on the same PostGIS)
answer at once, reading only the items it needs.

The rules:

- The items of version ``v`` are computed from the published data at ``v``
  and nothing else; they are written under ``v`` and the version is marked
  complete in the last write, so a reader takes a version whole or not at
  all (:func:`latest`).
- An item whose inputs did not change since the last complete version (the
  layers it depends on have the same :meth:`~gridgeo.store.Store.layer_version`)
  is copied from it instead of computed again: publishing a plan of grids
  leaves the walking coverage of every address and the ground served alone.
  Finer than layers: the areas left out depend on the grids through the
  units of the top level only (they are cut to them), and the tile geometry
  of each layer (simplified per zoom from that layer's geometry alone) is
  copied when the layer's geometry is the same, in the same order (a digest
  of its WKB): a publish of level-2 grids leaves both alone for the other
  levels. Copied or computed, the items are the same bytes.
- Finer still, a publish of grids that stays inside some units of the second
  level (villages: the planner's everyday publish) is prepared from those
  units alone when nothing else changed (addresses, events, stations, roads,
  boundaries, the roster, the metric CRS) and the units of the first two levels are the
  same but for their names. The **changed parents** are the second-level
  units above every unit added, removed, or changed in anything but its name
  (geometry, code, parent, workers ...), before and after. The rule that makes
  it exact: :func:`gridgeo.assign` places a point level by level from the
  top, so which village holds a point depends on the first two levels alone,
  and every figure of a unit below a village is made from the points that
  village holds. So the figures, coverage per unit and event counts of the
  units under the changed parents are computed from the points those parents
  hold (read from the store within their bounds, the walking distances from
  the version before); their ancestors' counts are the old ones plus the
  changed parents' differences (their rates computed again); every other row,
  label and feature is copied, with the names of the new grids. The tile
  geometry of a changed layer is simplified again as a whole (a coverage is
  simplified edge by edge across units: a unit alone would not give the same
  bytes). A rename alone assigns nothing. The public tables are computed from
  the figures so made, as always. Made either way, the items are the same
  bytes (``tests/test_derived_incremental.py``).
- A **rename alone** (no changed parent: every unit keeps its code, level,
  parent, geometry and other columns, only names differ) changes no count and
  no position: the events' placement (each event's unit as a position among
  the same sorted codes) is the version before's, and so are the cells of the
  public event indicators withheld under the minimum count (decided from the
  counts along codes and parents, never names): its table is the version
  before's with the new names.
- **Only what changed is written.** An item of the new version that did not
  change refers to the row of the version before that holds its bytes instead
  of holding a copy (:meth:`gridgeo.store.Store.copy_derived`). It did not
  change when its inputs did not (the rules above decide it: the same layer
  versions, metric CRS, top units, minimum count and period, or a rename
  alone), or when made again it has the same bytes as the version before's (a
  level the publish left alone, the tile layers of stations, roads and
  boundaries in an incremental build). A publish that renames a grid of the
  city writes its names (grids, labels, figures, the renamed level's tiles:
  about 10 MB) and none of the walking coverage, tile geometry or events
  (about 170 MB).
- The events placed in the grids (:func:`gridgeo.events.place`: each event's
  unit at every level, as a position among that level's sorted codes) are
  kept too (``placed``), so that a service counts the events over time
  without reading and placing 816,000 of them in every worker
  (:meth:`Derived.placed`). A publish inside some villages places again the
  events the changed parents hold (the same rule) and renumbers every other
  event's units among the new codes: a code added or removed shifts the
  positions after it, never an event's unit.
- One process builds a version at a time: :func:`build` claims it in the
  store, renews the claim as it goes and lets go at the end (a claim not
  renewed for five minutes is taken over: its process died). A failure is
  recorded with its reason, and readers keep the last complete version.
- Once a version is complete, older ones are forgotten except the one
  before it (still being served by processes that have not looked yet).

Examples
--------
>>> import tempfile, gridgeo.store, gridgeo.sample
>>> from gridgeo import derived
>>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
>>> town = gridgeo.sample.load()
>>> version = s.load({"grids": town.grids, "stations": town.stations, "addresses": town.addresses,
...                   "events": town.events, "roads": town.roads}, author="网格办", progress=False)
>>> derived.build(s, progress=False) == version
True
>>> kept = derived.latest(s)
>>> kept.version == version, int(kept.figures().loc["350582106", "households"]) > 0
(True, True)
"""

from __future__ import annotations

import io
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from typing import Callable

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely

__all__ = ["Derived", "build", "latest", "unit_table", "public_table", "public_event_table", "COVERAGE_MINUTES", "TILE_FIGURES",
           "PUBLIC_FIGURES", "COVERAGE_FIGURES", "DerivedError"]

COVERAGE_MINUTES = (5, 10, 15)
"""The life circles (minutes of walking) whose coverage is kept."""

TILE_FIGURES = ["households", "population", "households_per_worker", "events_per_1000", "band", "share_15min",
                "stations"]
"""The figures carried in grid tiles, for styling without another request."""

PUBLIC_FIGURES = [
    "addresses", "households", "population", "units", "workers", "households_per_worker",
    "events", "events_per_1000", "stations", "band", "share_5min", "share_10min", "share_15min",
    "has_station",
]
"""Figures per unit a service shows (for anonymous callers with the minimum count of
:mod:`gridgeo.disclosure` applied): aggregates only."""

COVERAGE_FIGURES = [*(f"households_{m}min" for m in COVERAGE_MINUTES), "farthest_m"]
"""Figures per unit that only the coverage answers carry (the counts the shares come from)."""

STALE_AFTER = 300.0
"""Seconds after which a claim nobody renewed is taken over."""

CORE = ("grids", "labels", "events", "placed", "nearest", "served", "coverage", "uncovered", "figures", "public",
        "public_events", "heat", "tiles")
"""Items computed before a version is marked complete: what the one map needs."""

LATE = ("service_areas",)
"""Items computed after: the version is served without them meanwhile (:meth:`Derived.pending`)."""

_ITEMS: dict[str, tuple[str, ...]] = {
    "grids": ("grids",),
    "labels": ("grids",),
    "events": ("events", "metric"),
    "placed": ("grids", "events"),
    "nearest": ("addresses", "stations", "roads", "metric", "walking"),
    "served": ("stations", "roads", "metric", "walking"),
    "service_areas": ("stations", "roads", "metric", "walking"),
    "coverage": ("grids", "addresses", "stations", "roads", "walking"),
    "uncovered": ("top", "addresses", "stations", "roads", "metric", "walking"),
    "figures": ("grids", "addresses", "events", "stations", "roads", "roster", "walking"),
    "public": ("grids", "addresses", "events", "stations", "roads", "roster", "min_count", "walking", "audit"),
    "public_events": ("grids", "events", "min_count", "heat_period", "audit"),
    "heat": ("events", "metric", "min_count", "heat_period"),
    "tiles": ("grids", "addresses", "events", "stations", "roads", "boundaries", "roster", "walking"),
}
"""Item -> the layers it is computed from, ``metric``: the metric CRS it measures in (the
grids' Gauss-Krüger zone, which a publish of grids seldom changes), ``top``: the units of the
top level (the areas left out are cut to them: a publish below the top level leaves them
alone), ``min_count``: the minimum count of the public figures, ``heat_period``: the period the
public event indicators are counted by, ``walking``: how walks are measured
(:data:`gridgeo.network.MEASURE`), and ``audit``: how public answers are audited
(:data:`gridgeo.disclosure.AUDIT`). An item of a complete version made by another recipe (an
older gridgeo's: walks in the metric CRS, a province audited as one whole area) is pending
(:meth:`Derived.pending`): it is made again, in the same version, as an item the version lacks
is added."""


def _walk_measure() -> str:
    from gridgeo.network import MEASURE

    return MEASURE


def _audit_rule() -> str:
    from gridgeo.disclosure import AUDIT

    return AUDIT


_RECIPES = {"walking": _walk_measure, "audit": _audit_rule}
"""The inputs of :data:`_ITEMS` that are this gridgeo's own ways of computing, not the store's data."""


def _pending(manifest: dict) -> list[str]:
    """The items a version's manifest lacks, or keeps from another recipe, in the order they are made."""
    items = manifest["items"]
    return [item for item in (*CORE, *LATE) if item not in items
            or any(items[item]["depends"].get(name) != recipe() for name, recipe in _RECIPES.items()
                   if name in _ITEMS[item])]


class DerivedError(RuntimeError):
    """A version's derived data is missing or could not be built (the message says which and why)."""


class Derived:
    """The derived data kept for one complete version of a store.

    Items are read from the store when first asked for; a process keeps
    what it reads (see :attr:`gridgeo.store.Store.version`).

    Parameters
    ----------
    store : gridgeo.store.Store
    version : int
        A complete version (:meth:`gridgeo.store.Store.derived_versions`).
    """

    def __init__(self, store, version: int):
        self.store = store
        self.version = int(version)
        raw = store.get_derived(self.version, "manifest")
        if raw is None or not store.derived_state(self.version)["complete"]:
            raise DerivedError(f"{store.url} keeps no complete derived data for version {version}: run "
                               "`gridgeo prepare` (or gridgeo.derived.build)")
        self.manifest = json.loads(raw)

    def __repr__(self) -> str:
        return f"<derived data of {self.store.url} at version {self.version}>"

    def _get(self, name: str) -> bytes | None:
        return self.store.get_derived(self.version, name)

    def pending(self) -> list[str]:
        """Items of the version still being computed after it was marked complete (the stations'
        service areas take minutes at city scale: the map does not wait for them), items this
        gridgeo keeps that a version prepared by an older one lacks, and items an older one made
        by another recipe (walks measured in the metric CRS, a province audited as one whole area;
        see ``walking`` and ``audit`` in :data:`_ITEMS`): :func:`build` makes them (and a service
        calls it), the service meanwhile making the missing ones itself and serving the others as
        they were."""
        return _pending(json.loads(self._get("manifest")))

    def has(self, item: str) -> bool:
        """Whether the version has ``item`` (an empty layer leaves some out: no coverage without stations)."""
        return item in self.manifest["items"] and self.manifest["items"][item]["present"]

    @property
    def summary(self) -> dict:
        """What the pages need before any figure: ``bounds`` (degrees), ``events``
        (first and last day reported, or None), ``counts`` per layer,
        ``metric_crs`` (WKT) and ``region``."""
        return self.manifest["summary"]

    def grids(self) -> gpd.GeoDataFrame:
        """The published grids of the version (every level, EPSG:4490)."""
        return _geo(self._get("grids"))

    def figures(self) -> gpd.GeoDataFrame | pd.DataFrame:
        """:func:`gridgeo.stats.figures` of the version, with the coverage shares
        per unit joined in (``share_5min`` ... ``has_station``, ``farthest_m``), indexed by code."""
        return _plain(self._get("figures"))

    def public_figures(self, min_count: int) -> pd.DataFrame:
        """:func:`public_table` of the version: read from the store when the version was prepared
        with this minimum count (the service's: ``GRIDGEO_MIN_COUNT``), else computed."""
        data = self._get(f"public/k{int(min_count)}")
        if data is None:
            return public_table(self.figures(), self.coverage(), min_count, scheme=self.store.scheme)
        out = _object_columns_in(_plain(data))
        out.attrs = json.loads(self._get(f"public/k{int(min_count)}.attrs"))
        return out

    def public_indicators(self, min_count: int, period: str) -> pd.DataFrame | None:
        """The public event indicators of the version (:func:`public_event_table`): every unit's
        indicators per ``period``, all categories together, under ``min_count``; read from the
        store when the version was prepared with this minimum count and period, else None (the
        caller computes them)."""
        name = f"public_events/k{int(min_count)}/{period}"
        data = self._get(name)
        if data is None:
            return None
        out = _plain(data)
        attrs = json.loads(self._get(f"{name}.attrs"))
        if attrs.get("as_of") is not None:
            attrs["as_of"] = pd.Timestamp(attrs["as_of"])
        out.attrs = attrs
        return out

    def heat_blocks(self, min_count: int, period: str) -> pd.DataFrame | None:
        """The blocks of the public heat map (:func:`gridgeo.disclosure.event_blocks` of :meth:`events`),
        read from the store when the version was prepared with this minimum count and period (the
        service's ``GRIDGEO_MIN_COUNT`` and ``GRIDGEO_HEAT_PERIOD``), else None (the caller makes them):
        the public heat map never reads the events themselves."""
        name = f"heat/k{int(min_count)}/{period}"
        data = self._get(name)
        if data is None:
            return None
        out = _plain(data)
        out.attrs = {**json.loads(self._get(f"{name}.attrs")), "withheld": _plain(self._get(f"{name}.withheld"))}
        return out

    def coverage(self) -> pd.DataFrame | None:
        """:func:`gridgeo.coverage.per_grid` of the version (None without addresses or stations)."""
        data = self._get("coverage")
        return None if data is None else _plain(data)

    def nearest(self, *, bbox=None) -> gpd.GeoDataFrame | None:
        """Every address's nearest station (:func:`gridgeo.coverage.nearest_station`),
        or only those in ``bbox`` (west, south, east, north in degrees); None without
        addresses or stations."""
        data = self._get("nearest")
        if data is None:
            return None
        out = _geo(data, bbox=bbox)
        out.attrs.update(json.loads(self._get("nearest.attrs") or b"{}"))
        return out

    def uncovered(self, minutes: int) -> gpd.GeoDataFrame | None:
        """:func:`gridgeo.coverage.uncovered_areas` of a life circle (None without
        addresses or stations)."""
        data = self._get("uncovered")
        if data is None:
            return None
        if minutes not in COVERAGE_MINUTES:
            raise ValueError(f"minutes must be one of {list(COVERAGE_MINUTES)}, got {minutes}")
        areas = _geo(data)
        return areas[areas["circle"] == minutes].drop(columns="circle").reset_index(drop=True)

    def served(self, minutes: int | None = None) -> gpd.GeoDataFrame | None:
        """:func:`gridgeo.coverage.served_ground` of every life circle, or of one (None
        without stations or roads)."""
        data = self._get("served")
        if data is None:
            return None
        ground = _geo(data)
        return ground if minutes is None else ground[ground["circle"] == minutes].reset_index(drop=True)

    def service_areas(self, minutes: int | None = None) -> gpd.GeoDataFrame | None:
        """:func:`gridgeo.coverage.service_areas` of every station (None without stations or roads):
        of one life circle's ``minutes`` only, or of all."""
        data = self._get("service_areas")
        if data is None:
            return None
        return _geo(data) if minutes is None else _geo(data, filters=[("circle", "==", int(minutes))])

    def events(self) -> pd.DataFrame:
        """The events in the metric CRS, as little as a heat map needs: ``x``, ``y``,
        ``category``, ``reported_at`` (no id, no text)."""
        data = self._get("events")
        return pd.DataFrame({"x": [], "y": [], "category": [], "reported_at": []}) if data is None else _plain(data)

    def placed(self, index):
        """The events placed in the grids of the version (:func:`gridgeo.events.place`), as it placed them.

        Parameters
        ----------
        index : gridgeo.AssignIndex
            The index of the version's grids (:meth:`grids`), which the placement refers to
            (each event's unit is a position in ``index.codes[level]``).

        Returns
        -------
        gridgeo.events.Placed or None
            None when the version keeps no placement (prepared before it was kept, or without
            events or grids), or when ``index`` has other levels or codes than the grids it was
            made in: the caller places the events itself.
        """
        arrays = _placed_arrays(self._get("placed"), self._get("placed.attrs"))
        return None if arrays is None else _placed_in(arrays, index)

    def labels(self, level: str) -> list:
        """Where the map writes each unit's name: ``[[lat, lon, code, name, radius_m], ...]``, the
        radius being that of the unit's largest inscribed circle (how much room the name has)."""
        return json.loads(self._get("labels") or b"{}").get(level, [])

    def tiles(self, *, cache=None, figures: pd.DataFrame | None = None, tag: str | None = None):
        """The tile set of the one map at this version: grid levels with their
        figures, stations, event counts; each zoom's geometry read from the
        store when a tile of it is first asked for.

        Parameters
        ----------
        cache : gridgeo.tiles.TileCache, optional
        figures : DataFrame, optional
            Figures per unit (indexed by code) to carry instead of the kept
            ones: :func:`gridgeo.disclosure.public_figures` for a public map.
            The grid layers then carry its :data:`TILE_FIGURES` and
            ``suppressed``, the events layer its ``events`` per unit and
            ``suppressed`` (no breakdown by category).
        tag : str, optional
            Added to the tile set's version (``"12.k10"``), so that tiles with
            other figures never share cache entries or ETags.
        """
        from gridgeo.tiles import TileLayer, TileSet

        info = json.loads(self._get("tiles"))
        layers = []
        for spec in info["layers"]:
            frame, fields = _geo(self._get(f"tiles/{spec['name']}")), spec["fields"]
            if figures is not None and "code" in frame.columns:
                frame, fields = _carrying(frame, fields, figures, events=spec["name"] == "events")
            layers.append(TileLayer(frame, spec["name"], minzoom=spec["minzoom"], maxzoom=spec["maxzoom"],
                                    fields=fields, description=spec["description"]))
        kept = {spec["name"] for spec in info["layers"] if spec["zooms"]}

        def simplified(name, z):
            if name not in kept:
                return None
            data = self._get(f"tiles/{name}/{z}")
            return None if data is None else shapely.from_wkb(_wkb_column(data))

        version = str(self.version) if tag is None else f"{self.version}.{tag}"
        return TileSet(layers, version=version, cache=cache, simplified=simplified)


def _carrying(frame, fields, figures, *, events: bool):
    """A tile layer's frame with the figures of ``figures`` instead of its own (same rows, same order)."""
    rows = figures.reindex(frame["code"].astype(str).to_numpy()).set_axis(frame.index)
    if events:  # the count per unit only: a breakdown by category is not a public figure
        kept = [f for f in fields if not f.startswith("events")]
        carried = ["events"]
        suppressed = rows["events"].isna() if "events" in rows.columns else pd.Series(False, index=frame.index)
    else:
        kept = [f for f in fields if f not in TILE_FIGURES]
        carried = [c for c in TILE_FIGURES if c in rows.columns]
        suppressed = rows["suppressed"].fillna(False) if "suppressed" in rows.columns else \
            pd.Series(False, index=frame.index)
    frame = frame.drop(columns=[f for f in fields if f not in kept])
    for column in carried:
        frame[column] = rows[column] if column in rows.columns else pd.NA
    frame["suppressed"] = suppressed.astype(bool)
    return frame, [*kept, *carried, "suppressed"]


def unit_table(figures: pd.DataFrame, coverage: pd.DataFrame | None) -> pd.DataFrame:
    """The figures per unit a service may show: ``name``, ``level``, ``parent``, the
    :data:`PUBLIC_FIGURES` there are and, with coverage, the :data:`COVERAGE_FIGURES` (the
    counts the shares come from, audited with them), indexed by ``code``; no minimum count yet."""
    keep = ["name", "level", "parent", *[c for c in PUBLIC_FIGURES if c in figures.columns]]
    table = pd.DataFrame(figures[keep])
    table.index.name = "code"
    if coverage is not None:
        counts = coverage.set_index("code")[[c for c in COVERAGE_FIGURES if c in coverage.columns]]
        table = table.join(counts)
    return table


def public_table(figures: pd.DataFrame, coverage: pd.DataFrame | None, min_count: int, *,
                 scheme=None) -> pd.DataFrame:
    """:func:`unit_table` as anyone may see it: :func:`gridgeo.disclosure.public_figures` with
    minimum count ``min_count`` (``scheme``: the store's, which says where the counties are), the
    same columns and ``suppressed``; its ``attrs`` say what was withheld."""
    from gridgeo import disclosure

    table = unit_table(figures, coverage)
    public = disclosure.public_figures(table, min_count, scheme=scheme)
    out = public[[c for c in table.columns if c in public.columns] + ["suppressed"]]
    out.attrs = dict(public.attrs)
    return out


def public_event_table(placed, min_count: int, period: str = "month", *, scheme=None) -> pd.DataFrame:
    """What anyone may see of the events over time: :func:`gridgeo.events.indicators` of every
    level per ``period``, all categories together, under the minimum count
    (:func:`gridgeo.disclosure.public_indicators`, with the store's ``scheme``). The service
    answers anonymous questions about events by filtering it; :func:`build` keeps it so that a prepared store answers at once."""
    from gridgeo import disclosure
    from gridgeo import events as gevents

    return disclosure.public_indicators(gevents.indicators(placed, period=period), min_count, scheme=scheme)


def latest(store) -> Derived | None:
    """The newest complete derived data of a store no newer than its data
    version, or None when there is none (run :func:`build`)."""
    current = store.version
    versions = [v for v in store.derived_versions() if v <= current]
    return Derived(store, versions[-1]) if versions else None


def build(store, *, owner: str | None = None, progress: bool | None = None,
          log: Callable[[str], None] | None = None, min_count: int | None = None,
          heat_period: str = "month") -> int | None:
    """Compute and keep the derived data of the store's current data version.

    Items whose inputs are unchanged since the newest complete version are
    copied from it. Nothing happens when the version is complete already.

    Parameters
    ----------
    store : gridgeo.store.Store
    owner : str, optional
        Who builds, as the claim records it (default: host and process id).
    progress : bool, optional
        Say what is being computed on stderr (default: when stderr is a terminal).
    log : callable, optional
        Called with a line per step instead.
    min_count : int, optional
        The minimum count of the public figures kept (:meth:`Derived.public_figures`;
        default :data:`gridgeo.disclosure.MIN_COUNT`): a service with another reads the
        figures and applies it itself.
    heat_period : str, default "month"
        The period of the public event indicators kept (:meth:`Derived.public_indicators`; the
        service's ``GRIDGEO_HEAT_PERIOD``): a service with another computes them itself.

    Returns
    -------
    int or None
        The version now complete, or None when another process holds the claim.

    Raises
    ------
    DerivedError
        When a step fails: the failure is recorded in the store with its
        reason (see :meth:`gridgeo.store.Store.derived_state`), and the claim
        let go.
    """
    version = store.version
    late_only = store.derived_state(version)["complete"]
    if late_only and not Derived(store, version).pending():
        return version
    owner = owner or f"{socket.gethostname()}:{os.getpid()}"
    if not store.claim_derived(version, owner, stale_after=STALE_AFTER):
        return None
    say = log or ((lambda line: print(line, file=sys.stderr, flush=True))
                  if (progress if progress is not None else sys.stderr.isatty()) else (lambda line: None))
    try:
        from gridgeo.disclosure import MIN_COUNT

        _Builder(store, version, owner, say, MIN_COUNT if min_count is None else int(min_count),
                 heat_period).run(late_only=late_only)
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        try:
            store.release_derived(version, owner, failed=reason)
        except Exception:  # the store may be what failed; the claim then goes stale
            pass
        if isinstance(exc, Exception):
            raise DerivedError(f"preparing version {version} of {store.url} failed: {reason}") from exc
        raise
    store.release_derived(version, owner)
    done = [v for v in store.derived_versions() if v <= version]
    store.drop_derived(before=done[-2] if len(done) > 1 else done[-1])
    return version


class _Builder:
    """The steps of :func:`build`, each reading what it needs once."""

    def __init__(self, store, version, owner, say, min_count, heat_period="month"):
        self.store, self.version, self.owner, self.say = store, version, owner, say
        self.min_count = min_count
        self.heat_period = heat_period
        self.layer_versions = {kind: store.layer_version(kind) for kind in
                               ("grids", "stations", "addresses", "events", "roads", "boundaries", "roster")}
        self._read: dict = {}
        self._made: dict = {}
        self._renewed = time.monotonic()
        previous = [v for v in store.derived_versions() if v < version]
        self.previous = Derived(store, previous[-1]) if previous else None
        self.manifest = {"version": version, "items": {}, "seconds": {}}

    # --- inputs --------------------------------------------------------------------------

    def layer(self, kind: str) -> gpd.GeoDataFrame:
        if kind not in self._read:
            store = self.store
            # a publish during the build must not leak in: read the version's rows
            at = None if store.layer_version(kind) <= self.version else self.version
            with self.step(f"reading {kind}"):
                frame = store.read(kind, at=at)
            self._read[kind] = frame.drop(columns=[c for c in ("revision", "author") if c in frame.columns])
        return self._read[kind]

    def made(self, name: str, fn):
        if name not in self._made:
            self._made[name] = fn()
        return self._made[name]

    def metric(self):
        from gridgeo.crs import metric_crs

        def make():  # the grids' zone; a store without grids takes it from the first layer it has
            for kind in ("grids", "stations", "addresses", "events", "roads"):
                if self.layer_versions[kind] and len(self.layer(kind)):
                    return metric_crs(self.layer(kind))
            return None
        return self.made("metric", make)

    def top(self) -> gpd.GeoDataFrame:
        """The units of the top level (the first row's level), in the order of the grids."""
        grids = self.layer("grids")
        return grids[grids["level"] == grids["level"].iloc[0]] if len(grids) else grids

    def top_digest(self) -> str:
        return self.made("top", lambda: _digest(self.top().geometry))

    def index(self):
        import gridgeo

        return self.made("index", lambda: gridgeo.AssignIndex(self.layer("grids"), scheme=self.store.scheme))

    def network(self):
        from gridgeo import network

        return self.made("network", lambda: network.build(self.layer("roads"), metric=self.metric()))

    def nearest_frame(self):
        def make():
            from gridgeo import coverage

            if self.previous is not None and self.reused("nearest"):
                return self.previous.nearest()
            addresses, stations = self.layer("addresses"), self.layer("stations")
            if addresses.empty or stations.empty:
                return None
            roads = self.layer("roads")
            if roads.empty:
                return coverage.nearest_station(addresses, stations, method="straight")
            return coverage.nearest_station(addresses, stations, self.network(), method="network")
        return self.made("nearest", make)

    def has_events(self) -> bool:
        if "events" in self._read or self.changed() is None:
            return not self.layer("events").empty
        return bool(self.store.counts().get("events", 0))

    # --- a publish inside some villages (the module's rules) --------------------------------

    def changed(self):
        """What an incremental build recomputes (:class:`_Changed`), or None: compute in full."""
        return self.made("changed", self._changed)

    def _changed(self):
        before = self.previous
        if before is None or not all(before.has(item) for item in ("grids", "labels", "figures", "tiles")) \
                or not all(item in before.manifest["items"] for item in ("coverage", "nearest")):
            return None
        was = before.summary.get("layer_versions") or {}
        if was.get("grids") == self.layer_versions["grids"] or any(
                was.get(kind) != self.layer_versions[kind]
                for kind in ("stations", "addresses", "events", "roads", "boundaries", "roster")):
            return None
        metric = self.metric()
        if metric is None or before.summary.get("metric_crs") != metric.to_wkt():
            return None
        if before.has("coverage") != before.has("nearest"):
            return None
        if not self.reused("nearest"):  # the walks of the version before were measured otherwise
            return None
        changed = _Changed.between(before.grids(), self.layer("grids"), self.store.scheme)
        if changed is not None:
            self.manifest["incremental"] = {"from": before.version, "parents": changed.parents}
        return changed

    def renamed_only(self) -> bool:
        """Whether the publish changed names of units and nothing else (no changed parent: the same
        codes, levels, parents, geometries and other columns; the same points, stations and roads)."""
        changed = self.changed()
        return changed is not None and not changed.parents

    def part(self):
        """The grids below the changed parents (their index) and the points the parents hold."""
        def make():
            from gridgeo.assignment import AssignIndex, assign

            changed, store = self.changed(), self.store
            if not changed.parents:
                return None
            grids = self.layer("grids")
            sub = grids[grids["code"].isin(changed.new_under).to_numpy()]
            bbox = tuple(float(v) for v in sub.total_bounds)
            upper = grids[grids["level"].isin(store.scheme.names[:2]).to_numpy()]
            second = store.scheme.names[1]
            upper_index = AssignIndex(upper, scheme=store.scheme)

            def held(frame, name):  # the points the changed parents hold, by the rule of gridgeo.assign
                if frame is None or frame.empty:
                    return frame
                placed = assign(frame, upper_index, levels=[second], name=name)
                return frame[placed[second].astype(object).isin(changed.parents).to_numpy()]

            def read(kind):
                at = None if store.layer_version(kind) <= self.version else self.version
                with self.step(f"reading {kind} of {len(changed.parents)} changed parent(s)"):
                    frame = store.read(kind, bbox=bbox, at=at)
                return held(frame.drop(columns=[c for c in ("revision", "author") if c in frame.columns]), kind)

            nearest = self.previous.nearest(bbox=bbox) if self.previous.has("nearest") else None
            with self.step("placing the changed parents' points"):
                return _Part(index=AssignIndex(sub, scheme=store.scheme), addresses=read("addresses"),
                             events=read("events"), stations=held(self.layer("stations"), "stations"),
                             nearest=held(nearest, "addresses"))
        return self.made("part", make)

    def _in_order(self, frame, codes):
        """``frame``'s rows in the order of a full computation: by level, then by code."""
        rank = frame["level"].map({lv: i for i, lv in enumerate(self.store.scheme.names)}).to_numpy()
        return frame.iloc[np.lexsort((np.asarray(codes, dtype=object), rank))]

    def _named(self, frame, codes):
        """``frame`` with the names, levels and parents of the new grids (copied rows keep the old ones)."""
        grids = self.layer("grids").set_index("code")
        for column in ("name", "level", "parent"):
            if column in frame.columns:
                new = grids[column].reindex(np.asarray(codes, dtype=object)).to_numpy()
                frame[column] = pd.array(new, dtype=frame[column].dtype)
        return frame

    def _coverage_of_changed(self):
        from gridgeo import coverage

        changed, part = self.changed(), self.part()
        old = self.previous.coverage()
        if old is None:
            return None
        keep = old[~old["code"].isin(changed.old_under).to_numpy()]
        if part is not None and part.nearest is not None and len(part.nearest):
            made = coverage.per_grid(part.nearest, part.index, stations=part.stations)
            keep = pd.concat([keep, _like(made, old)])
        out = self._in_order(keep, keep["code"]).reset_index(drop=True)
        out.attrs = old.attrs
        return self._named(out, out["code"])

    def _figures_of_changed(self):
        from gridgeo import stats

        changed, part = self.changed(), self.part()
        old = self.previous.figures()
        keep = old.drop(index=[c for c in changed.old_under if c in old.index])
        if part is not None:
            roster = self.layer("roster")  # as in a full build: the staffing figures come from it
            made = stats.figures(part.index, addresses=part.addresses, events=part.events,
                                 stations=part.stations, roster=roster if len(roster) else None)
            made = pd.DataFrame(made.drop(columns=made.geometry.name))
            cov = self.coverage_frame()
            if cov is not None:
                share = [c for c in cov.columns if c.startswith("share_") or c in ("has_station", "farthest_m")]
                made = made.join(cov.set_index("code")[share])
            made = _like(made, old, fill=0)
            # the ancestors: their counts plus the changed parents' differences, their rates again
            counts = [c for c in old.columns if pd.api.types.is_integer_dtype(old[c].dtype)]
            above = changed.ancestors
            rows = old.loc[above].copy()
            for parent in changed.parents:
                diff = made.loc[parent, counts].to_numpy() - (old.loc[parent, counts].to_numpy()
                                                              if parent in old.index else 0)
                for code in changed.above[parent]:
                    rows.loc[code, counts] = rows.loc[code, counts].to_numpy() + diff
            rows = _like(stats._with_rates(rows, stats._checked_bands(stats._default_bands(self.store.scheme),
                                                                      self.store.scheme)), old)
            keep = pd.concat([keep.drop(index=above), made, rows])
        out = self._in_order(keep, keep.index)
        out.attrs = old.attrs
        return self._named(out, out.index)

    def _kept_tile_layers(self) -> dict:
        """In an incremental build, the specs of the tile layers that do not read the grids (stations,
        roads, boundaries) as the version before has them: their layers did not change, and their
        items are copied (never read)."""
        if self.changed() is None:
            return {}
        return {spec["name"]: spec for spec in json.loads(self.previous._get("tiles"))["layers"]
                if spec["name"] in ("stations", "roads", "boundaries")}

    def _event_counts_of_changed(self, level):
        from gridgeo.tiles import event_counts

        changed, part = self.changed(), self.part()
        old = _geo(self.previous._get("tiles/events"))
        keep = old[~old["code"].isin(changed.old_under).to_numpy()]
        grids = self.layer("grids")
        units = grids[(grids["level"] == level).to_numpy() & grids["code"].isin(changed.new_under).to_numpy()]
        if part is not None and len(units):
            events = part.events
            if events is None or events.empty:
                made = units[["code", "name", "level", "parent", units.geometry.name]].assign(events=0)
            else:
                made = event_counts(events, units, level=level, by="category", scheme=self.store.scheme)
            keep = pd.concat([keep, _like(made, old, fill=0)])
        out = keep.sort_values("code").reset_index(drop=True)
        return gpd.GeoDataFrame(self._named(out, out["code"]), geometry=old.geometry.name, crs=old.crs)

    # --- bookkeeping -----------------------------------------------------------------------

    @contextmanager
    def step(self, what: str):
        self.say(f"  {what} ...")
        start = time.perf_counter()
        yield
        self.manifest["seconds"][what] = round(time.perf_counter() - start, 2)
        if time.monotonic() - self._renewed > STALE_AFTER / 5:
            self.store.claim_derived(self.version, self.owner, stale_after=STALE_AFTER)
            self._renewed = time.monotonic()

    def depends(self, item: str) -> dict:
        def of(name):
            if name == "metric":  # pyproj takes half a second to say it: once per build
                return self.made("metric_name", lambda: self.metric().to_string()
                                 if self.metric() is not None else None)
            if name == "top":
                return self.top_digest()
            if name == "heat_period":
                return self.heat_period
            if name in _RECIPES:
                return _RECIPES[name]()
            return self.min_count if name == "min_count" else self.layer_versions[name]
        return {name: of(name) for name in _ITEMS[item]}

    def reused(self, item: str) -> bool:
        """Whether the previous complete version has ``item`` from the same inputs."""
        if self.previous is None:
            return False
        before = self.previous.manifest["items"].get(item)
        return before is not None and before["depends"] == self.depends(item)

    def keep(self, item: str, items: dict[str, bytes] | None, *, copied=()):
        """Write an item's blobs (None: the item has no data, e.g. coverage without stations); ``copied``:
        its blobs copied from the version before. A blob made again with the same bytes as the version
        before's is kept by reference too (:meth:`gridgeo.store.Store.copy_derived`): only what
        changed is written."""
        same = []
        if items and self.previous is not None:
            same = [name for name, data in items.items() if self.previous._get(name) == data]
            if same:
                self.store.copy_derived(self.previous.version, self.version, same)
        written = {name: data for name, data in (items or {}).items() if name not in same}
        if written:
            self.store.put_derived(self.version, written)
        self.manifest["items"][item] = {"depends": self.depends(item), "present": bool(items) or bool(copied),
                                        "names": sorted([*(items or {}), *copied])}
        if copied:
            self.manifest["items"][item]["copied_names"] = len(copied)
        if same:
            self.manifest["items"][item]["same_names"] = len(same)

    def copy(self, item: str) -> None:
        before = self.previous.manifest["items"][item]
        with self.step(f"{item}: unchanged since version {self.previous.version}, copied"):
            if before["names"]:
                self.store.copy_derived(self.previous.version, self.version, before["names"])
        self.manifest["items"][item] = {**before, "copied_from": self.previous.version}

    # --- the steps ---------------------------------------------------------------------------

    def run(self, *, late_only: bool = False) -> None:
        start = time.perf_counter()
        if late_only:
            self.manifest = json.loads(self.store.get_derived(self.version, "manifest"))
        else:
            self.say(f"preparing version {self.version} of {self.store.url}")
            self.items(CORE)
            self.manifest["summary"] = self._summary()
            self.manifest["seconds"]["total"] = round(time.perf_counter() - start, 2)
            self.store.put_derived(self.version, {"manifest": json.dumps(self.manifest).encode()}, complete=True)
            self.say(f"version {self.version} prepared in {self.manifest['seconds']['total']:.1f} s: served from now")
        missing = _pending(self.manifest)
        if missing:
            self.items(missing)
            self.manifest["seconds"]["late"] = round(time.perf_counter() - start, 2)
            self.store.put_derived(self.version, {"manifest": json.dumps(self.manifest).encode()})
            self.say(f"{', '.join(missing)} of version {self.version} prepared")

    def items(self, names) -> None:
        for item in names:
            if self.reused(item):
                self.copy(item)
                continue
            with self.step(item):
                made = getattr(self, f"_{item}")()
                made, copied = made if isinstance(made, tuple) else (made, [])
                self.keep(item, made, copied=copied)

    def _grids(self):
        return {"grids": _bytes(self.layer("grids"))}

    def _labels(self):
        from gridgeo.crs import metric_crs
        from gridgeo.labels import label_points

        grids = self.layer("grids")
        changed = self.changed()
        kept = json.loads(self.previous._get("labels") or b"{}") if changed is not None else {}
        out = {}
        for level in self.store.scheme.names:
            units = grids[(grids["level"] == level).to_numpy()]
            if units.empty:
                continue
            # copied: a unit whose outline did not change, measured in the same metric CRS (with its new name)
            metric = metric_crs(units)
            old = changed.old[(changed.old["level"] == level).to_numpy()] if changed is not None else units.iloc[:0]
            before = {row[2]: row for row in kept.get(level, [])} \
                if len(old) and metric == metric_crs(old) else {}
            same = units["code"].isin(list(before)).to_numpy().copy()
            if same.any():
                same[same] = _same_geometry(units[same], changed.old)
            todo = units[~same]
            made = label_points(todo, levels=[level], scheme=self.store.scheme, metric=metric) if len(todo) \
                else None
            rows, fresh = [], iter([] if made is None else
                                   zip(made.geometry, made["code"], made["name"], made["radius_m"]))
            for code, name, again in zip(units["code"], units["name"], same):
                if again:
                    lat, lon, _, _, radius = before[code]
                    rows.append([lat, lon, code, name, radius])
                else:
                    p, c, n, r = next(fresh)
                    rows.append([round(p.y, 6), round(p.x, 6), c, n, round(float(r), 1)])
            out[level] = rows
        return {"labels": json.dumps(out, ensure_ascii=False).encode()}

    def events_frame(self) -> pd.DataFrame | None:
        """The events as :meth:`Derived.events` gives them (None without events or a metric CRS)."""
        def make():
            events = self.layer("events")
            if events.empty or self.metric() is None:
                return None
            located = events[events.geometry.notna().to_numpy() & ~events.geometry.is_empty.to_numpy()]
            points = located.geometry.to_crs(self.metric())
            return pd.DataFrame({"x": points.x.to_numpy(), "y": points.y.to_numpy(),
                                 "category": located["category"].astype("category").to_numpy(),
                                 "reported_at": located["reported_at"].to_numpy()})
        return self.made("events_frame", make)

    def _events(self):
        compact = self.events_frame()
        return None if compact is None else {"events": _bytes(compact)}

    def _heat(self):
        from gridgeo import disclosure

        compact = self.events_frame()
        if compact is None:
            return None
        # from the events as kept (through Parquet), so that the blocks equal what a service makes of them
        blocks = disclosure.event_blocks(_plain(_bytes(compact)), self.min_count, period=self.heat_period)
        attrs = dict(blocks.attrs)
        withheld = attrs.pop("withheld")
        blocks.attrs = {}
        name = f"heat/k{self.min_count}/{self.heat_period}"
        return {name: _bytes(blocks), f"{name}.attrs": json.dumps(attrs, default=_json_scalar).encode(),
                f"{name}.withheld": _bytes(withheld)}

    def _nearest(self):
        result = self.nearest_frame()
        if result is None:
            return None
        attrs = {k: v for k, v in result.attrs.items() if isinstance(v, (str, int, float, list, dict))}
        return {"nearest": _bytes(result, bbox=True), "nearest.attrs": json.dumps(attrs).encode()}

    def _served(self):
        from gridgeo import coverage

        stations, roads = self.layer("stations"), self.layer("roads")
        if stations.empty or roads.empty:
            return None
        return {"served": _bytes(coverage.served_ground(stations, self.network(), circles=list(COVERAGE_MINUTES)))}

    def _service_areas(self):
        from gridgeo import coverage

        stations, roads = self.layer("stations"), self.layer("roads")
        if stations.empty or roads.empty:
            return None
        return {"service_areas": _bytes(coverage.service_areas(stations, self.network()))}

    def coverage_frame(self):
        def make():
            from gridgeo import coverage

            if self.changed() is not None:
                return self._coverage_of_changed()
            result = self.nearest_frame()
            if result is None or self.layer("grids").empty:
                return None
            return coverage.per_grid(result, self.index(), stations=self.layer("stations"))
        return self.made("coverage", make)

    def _coverage(self):
        table = self.coverage_frame()
        return None if table is None else {"coverage": _bytes(table)}

    def _uncovered(self):
        from gridgeo import coverage

        result = self.nearest_frame()
        grids = self.layer("grids")
        if result is None or grids.empty:
            return None
        top = self.top()
        areas = [coverage.uncovered_areas(result, minutes=m, within=top).assign(circle=m) for m in COVERAGE_MINUTES]
        return {"uncovered": _bytes(pd.concat(areas, ignore_index=True))}

    def figures_frame(self):
        def make():
            from gridgeo import stats

            if self.layer("grids").empty:
                return pd.DataFrame({"name": [], "level": [], "parent": []}, index=pd.Index([], name="code"))
            if self.changed() is not None:
                return self._figures_of_changed()
            roster = self.layer("roster")  # the staffing figures come from it where there is one
            f = stats.figures(self.index(), addresses=self.layer("addresses"), events=self.layer("events"),
                              stations=self.layer("stations"), roster=roster if len(roster) else None)
            cov = self.coverage_frame()
            if cov is not None:
                cov = cov.set_index("code") if "code" in cov.columns else cov
                share = [c for c in cov.columns if c.startswith("share_") or c in ("has_station", "farthest_m")]
                f = f.join(cov[share])
            return f
        return self.made("figures", make)

    def _figures(self):
        f = self.figures_frame()
        plain = pd.DataFrame(f.drop(columns=f.geometry.name) if isinstance(f, gpd.GeoDataFrame) else f)
        return {"figures": _bytes(plain)}

    def _public(self):
        # from the items as written, as a service reading them would compute it
        read = lambda name: self.store.get_derived(self.version, name)  # noqa: E731
        coverage = read("coverage")
        table = public_table(_plain(read("figures")), None if coverage is None else _plain(coverage),
                             self.min_count, scheme=self.store.scheme)
        name = f"public/k{self.min_count}"
        return {name: _bytes(_object_columns_out(table)),
                f"{name}.attrs": json.dumps(table.attrs, default=_json_scalar).encode()}

    def placed_frame(self):
        """The published events placed in the version's grids (:func:`gridgeo.events.place`), as a
        :class:`gridgeo.events.Placed` in :meth:`index`."""
        def make():
            from gridgeo import events as gevents

            if self.reused("placed"):
                kept = self.previous.placed(self.index())
                if kept is not None:
                    return kept
            return gevents.place(self.layer("events"), self.index())
        return self.made("placed_events", make)

    def _placed(self):
        if not self.has_events() or self.layer("grids").empty:
            return None
        if self.renamed_only() and self.previous.has("placed"):  # the same codes: the same positions
            names = self.previous.manifest["items"]["placed"]["names"]
            self.store.copy_derived(self.previous.version, self.version, names)
            return {}, names
        if self.changed() is not None:
            placement = self._placed_of_changed()
            if placement is not None:
                return _placed_items(placement)
        return _placed_items(_placement(self.placed_frame()))

    def _placed_of_changed(self):
        """The placement of the version before, with the events the changed parents hold placed again in
        the grids below them (:meth:`part`) and every unit's position renumbered among the new codes;
        None when the version before keeps no placement of the grids it had (then: in full)."""
        from gridgeo import events as gevents

        changed, scheme = self.changed(), self.store.scheme
        old = _placed_arrays(self.previous._get("placed"), self.previous._get("placed.attrs"))
        if old is None:
            return None
        old_levels, old_codes = _level_codes(changed.old, scheme)
        if old_levels != old["levels"] or any(_codes_digest(old_codes[lv]) != old["digests"][lv] for lv in old_levels):
            return None
        levels, codes = _level_codes(self.layer("grids"), scheme)
        n = len(old["reported"])
        unit = {}
        for lv in levels:  # positions among the new codes (a code gone: -1, only under a changed parent)
            if lv in old_codes:
                renumber = np.append(codes[lv].get_indexer(old_codes[lv]), -1)
                unit[lv] = renumber[old["unit"][lv]]  # -1 takes the last: none
            else:
                unit[lv] = np.full(n, -1, dtype=np.int64)
        part = self.part()
        if part is not None:
            second = scheme.names[1]
            parents = old_codes[second].get_indexer(changed.parents)
            mine = np.isin(old["unit"][second], parents[parents >= 0])
            events = part.events
            held = 0 if events is None else len(events)
            if int(mine.sum()) != held:  # not the same events: place them all again rather than guess
                self.say(f"  the changed parents hold {held} events read by box but {int(mine.sum())} placed in "
                         f"them at version {self.previous.version}: placing every event again")
                return None
            if mine.any():  # in the order of the layer's key, as the full read gives them
                again = gevents.place(events, part.index)
                if not (np.array_equal(again.reported, old["reported"][mine])
                        and np.array_equal(again.closed, old["closed"][mine])):
                    self.say("  the changed parents' events read by box are not those placed in them at version "
                             f"{self.previous.version}, in that order: placing every event again")
                    return None
                for lv in levels:
                    if lv in again.index.levels:
                        found = codes[lv].get_indexer(again.index.codes[lv])
                        unit[lv][mine] = np.where(again.unit[lv] >= 0, found[again.unit[lv]], -1)
                    elif scheme.names.index(lv) > 1:  # a level the redrawn villages no longer have
                        unit[lv][mine] = -1
        return {**old, "levels": levels, "codes": codes, "unit": unit}

    def _public_events(self):
        from gridgeo import disclosure
        from gridgeo import events as gevents

        raw_name = f"events_indicators/{self.heat_period}"
        if not self.has_events() or self.layer("grids").empty:
            return None
        name = f"public_events/k{self.min_count}/{self.heat_period}"
        if self.changed() is not None and self.previous._get(raw_name) is not None:
            raw = self._indicators_of_changed(raw_name)
        else:
            raw = gevents.indicators(self.placed_frame(), period=self.heat_period)
        kept = self.previous._get(name) if self.renamed_only() else None
        if kept is not None:  # the same counts in the same hierarchy: the same cells withheld, new names
            table = _plain(kept)
            table = self._named(table, table["code"])
            table.attrs = json.loads(self.previous._get(f"{name}.attrs"))
        else:
            # public_event_table's rule, from the kept rows
            table = disclosure.public_indicators(raw, self.min_count, scheme=self.store.scheme)
        attrs, raw_attrs = dict(table.attrs), dict(raw.attrs)
        table.attrs, raw.attrs = {}, {}
        return {name: _bytes(table), f"{name}.attrs": json.dumps(attrs, default=_json_scalar).encode(),
                raw_name: _bytes(raw), f"{raw_name}.attrs": json.dumps(raw_attrs, default=_json_scalar).encode()}

    def _indicators_of_changed(self, name):
        """The event indicators of every unit (before the minimum count): the version before's, those of
        the units under the changed parents made again from the events they hold."""
        from gridgeo import events as gevents

        changed, part = self.changed(), self.part()
        old = _plain(self.previous._get(name))
        old.attrs = json.loads(self.previous._get(f"{name}.attrs"))
        old.attrs["as_of"] = pd.Timestamp(old.attrs["as_of"])
        keep = old[~old["code"].isin(changed.old_under).to_numpy()]
        if part is not None:
            made = gevents.indicators_as_in(gevents.place(part.events, part.index), old)
            keep = pd.concat([keep, _like(made, old)])
        out = self._in_order(keep, keep["code"]).reset_index(drop=True)
        out.attrs = old.attrs
        return self._named(out, out["code"])

    def _tiles(self):
        from gridgeo.tiles import (DEFAULT_ZOOMS, TileLayer, TileSet, boundary_layer, event_counts, grid_layers,
                                   road_layer, station_layer)

        f = self.figures_frame()
        carried = pd.DataFrame(f[[c for c in TILE_FIGURES if c in f.columns]])
        scheme = self.store.scheme
        grids = self.layer("grids")
        layers = list(grid_layers(grids, figures=carried, scheme=scheme)) if len(grids) else []
        kept = self._kept_tile_layers()
        stations = self.layer("stations")
        if not stations.empty:
            layers.append(kept["stations"] if "stations" in kept else station_layer(stations))
        if "roads" in kept:
            layers.append(kept["roads"])
        elif not (roads := self.layer("roads")).empty:
            layers.append(road_layer(roads))
        if self.has_events() and len(grids):
            main = scheme.level(scheme.main_level)
            if self.changed() is not None:
                counts = self._event_counts_of_changed(main.name)
            else:
                counts = event_counts(self.layer("events"), grids, level=main.name, by="category", scheme=scheme)
            lo, hi = DEFAULT_ZOOMS["events"]
            layers.append(TileLayer(counts, "events", minzoom=lo, maxzoom=hi,
                                    description=f"Grid events counted per {main.label_en}, by category"))
        if "boundaries" in kept:
            layers.append(kept["boundaries"])
        elif not (boundaries := self.layer("boundaries")).empty:
            # every boundary set in one layer: the map shows a set by its boundary_set
            layers.append(boundary_layer(boundaries))
        if not layers:
            return None
        tiles = TileSet([layer for layer in layers if not isinstance(layer, dict)], version=str(self.version))
        before = {spec["name"]: spec for spec in json.loads(self.previous._get("tiles") or b'{"layers": []}')["layers"]} \
            if self.previous is not None and self.previous.has("tiles") else {}
        items, specs, copied, simplified = {}, [], [], {}
        for layer in layers:
            if isinstance(layer, dict):  # a layer that does not read the grids, as the version before has it
                name, zooms = layer["name"], range(layer["minzoom"], layer["maxzoom"] + 1) if layer["zooms"] else ()
                copied += [f"tiles/{name}", *(f"tiles/{name}/{z}" for z in zooms)]
                specs.append(layer)
                continue
            name, layer = layer.name, tiles.layers[layer.name]
            zooms = layer.kind != "point"
            spec = {"name": name, "minzoom": layer.minzoom, "maxzoom": layer.maxzoom, "fields": list(layer.fields),
                    "description": layer.description, "zooms": zooms}
            items[f"tiles/{name}"] = _bytes(layer.frame)
            if zooms:
                # a layer's zooms are simplified from its geometry alone (in its order): a publish
                # that left it alone (another level, or names only) copies them
                spec["geometry"] = _digest(layer.frame.geometry)
                names = [f"tiles/{name}/{z}" for z in range(layer.minzoom, layer.maxzoom + 1)]
                old = before.get(name, {})
                if (old.get("geometry"), old.get("minzoom"), old.get("maxzoom")) == \
                        (spec["geometry"], spec["minzoom"], spec["maxzoom"]):
                    copied += names
                else:  # a layer with the same geometry as one made already (events per grid) takes its zooms
                    for z, item in zip(range(layer.minzoom, layer.maxzoom + 1), names):
                        key = (layer.kind, spec["geometry"], z)
                        if key not in simplified:
                            simplified[key] = _wkb_bytes(tiles.zoom_geometry(name, z))
                        items[item] = simplified[key]
            specs.append(spec)
        items["tiles"] = json.dumps({"layers": specs}).encode()
        if copied:
            self.store.copy_derived(self.previous.version, self.version, copied)
        return items, copied

    def _summary(self) -> dict:
        grids = self.layer("grids")
        metric = self.metric()
        if "events" in self._read:
            stamps = self._read["events"]["reported_at"]
        else:  # copied from the version before: its kept events say when they were reported
            kept = self.store.get_derived(self.version, "events")
            stamps = _plain(kept)["reported_at"] if kept is not None else pd.Series([], dtype=object)
        period = None
        if len(stamps):
            first, last = pd.Timestamp(stamps.min()), pd.Timestamp(stamps.max())
            period = {"first": first.strftime("%Y-%m-%d"), "last": last.strftime("%Y-%m-%d")}
        return {
            "bounds": [round(float(v), 6) for v in grids.total_bounds] if len(grids) else None,
            "events": period,
            "counts": {k: int(v) for k, v in self.store.counts().items()},
            "metric_crs": metric.to_wkt() if metric is not None else None,
            "layer_versions": self.layer_versions,
        }


# --- bytes -----------------------------------------------------------------------------------


def _bytes(frame, *, bbox: bool = False) -> bytes:
    """A frame as Parquet (GeoParquet for a GeoDataFrame: its CRS and geometry kept)."""
    buffer = io.BytesIO()
    if isinstance(frame, gpd.GeoDataFrame):
        frame.to_parquet(buffer, write_covering_bbox=bbox)
    else:
        frame.to_parquet(buffer)
    return buffer.getvalue()


def _geo(data: bytes, *, bbox=None, filters=None) -> gpd.GeoDataFrame:
    return gpd.read_parquet(io.BytesIO(data), bbox=tuple(bbox) if bbox is not None else None, filters=filters)


def _plain(data: bytes) -> pd.DataFrame:
    table = pq.read_table(io.BytesIO(data))
    if b"geo" in (table.schema.metadata or {}):
        return gpd.read_parquet(io.BytesIO(data))
    return table.to_pandas()


_WITHHELD = ".withheld"
"""Suffix of the column saying where an object column of a table held ``pd.NA`` (withheld)."""


def _object_columns_out(table: pd.DataFrame) -> pd.DataFrame:
    """A table whose object columns mix text, NaN (no value) and ``pd.NA`` (withheld), as
    Parquet keeps it: each such column as text, and where it was ``pd.NA`` beside it."""
    out = table.copy()
    for column in table.columns[table.dtypes == object]:
        out[column + _WITHHELD] = table[column].map(lambda v: v is pd.NA).astype(bool)
    return out


def _object_columns_in(frame: pd.DataFrame) -> pd.DataFrame:
    """The table :func:`_object_columns_out` was given, read back: the same values and dtypes."""
    marks = [c for c in frame.columns if c.endswith(_WITHHELD)]
    for mark in marks:
        column = mark[: -len(_WITHHELD)]
        values = frame[column].astype(object)
        values = values.where(values.notna(), np.nan)
        values[frame[mark].to_numpy(bool)] = pd.NA
        frame[column] = values
    return frame.drop(columns=marks)


def _digest(geometry) -> str:
    """A digest of geometries in their order (their WKB): equal digests, equal inputs."""
    import hashlib

    digest = hashlib.sha256()
    for wkb in shapely.to_wkb(np.asarray(geometry.array if hasattr(geometry, "array") else geometry,
                                         dtype=object)):
        digest.update(len(wkb).to_bytes(8, "little") + wkb)
    return digest.hexdigest()


def _json_scalar(value):
    """NumPy numbers (as figures' attrs hold them) and times (ISO 8601) in JSON."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _wkb_bytes(geoms) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"wkb": pa.array(shapely.to_wkb(np.asarray(geoms, dtype=object)), pa.binary())}),
                   buffer)
    return buffer.getvalue()


def _wkb_column(data: bytes) -> np.ndarray:
    return np.asarray(pq.read_table(io.BytesIO(data)).column("wkb").to_pylist(), dtype=object)


# --- the events placed in the grids ------------------------------------------------------------


def _level_codes(grids, scheme) -> tuple[tuple, dict]:
    """``(levels, codes)`` of grids as :class:`gridgeo.AssignIndex` numbers them: the levels present,
    top first, and each level's codes sorted (an event's unit is a position among them)."""
    from gridgeo.schema import level_names

    levels = tuple(level_names(grids, scheme))
    codes = {}
    for lv in levels:
        mine = np.asarray(grids["code"].to_numpy(dtype=object)[(grids["level"] == lv).to_numpy()], dtype=object)
        codes[lv] = pd.Index(np.sort(mine), dtype="str", name=lv)
    return levels, codes


def _codes_digest(codes) -> str:
    import hashlib

    return hashlib.sha256("\0".join(map(str, codes)).encode()).hexdigest()


def _placement(placed) -> dict:
    """A :class:`gridgeo.events.Placed` as :func:`_placed_items` keeps it: its arrays, and its index's
    levels and codes instead of the index."""
    index = placed.index
    return {"levels": tuple(index.levels), "codes": dict(index.codes), "unit": placed.unit,
            "reported": placed.reported, "closed": placed.closed, "category": placed.category,
            "status": placed.status, "steps": placed.steps, "attrs": placed.attrs}


def _placed_items(placement) -> dict[str, bytes]:
    """A placement (:func:`_placement`) as two items: ``placed``, its arrays as Parquet (each level's
    unit as an int32 position among the level's codes, -1 none; the times as int64 seconds; category
    and status as int32 codes), and ``placed.attrs``: what the arrays refer to (the levels, a digest
    of each level's codes, the category and status names, the step columns) and the counts aside."""
    columns = {f"unit/{lv}": np.asarray(placement["unit"][lv], dtype=np.int32) for lv in placement["levels"]}
    columns["reported"] = np.asarray(placement["reported"], dtype=np.int64)
    columns["closed"] = np.asarray(placement["closed"], dtype=np.int64)
    for name in ("category", "status"):
        columns[name] = np.asarray(placement[name].codes, dtype=np.int32)
    for name, values in placement["steps"].items():
        columns[f"step/{name}"] = np.asarray(values, dtype=np.int64)
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer)
    meta = {"levels": list(placement["levels"]),
            "codes": {lv: _codes_digest(placement["codes"][lv]) for lv in placement["levels"]},
            "categories": [str(c) for c in placement["category"].categories],
            "statuses": [str(c) for c in placement["status"].categories],
            "steps": list(placement["steps"]), "attrs": placement["attrs"]}
    return {"placed": buffer.getvalue(), "placed.attrs": json.dumps(meta, default=_json_scalar).encode()}


def _placed_arrays(data: bytes | None, meta: bytes | None) -> dict | None:
    """The placement :func:`_placed_items` kept (with ``digests`` of the codes instead of the codes),
    or None when there is none."""
    if data is None or meta is None:
        return None
    meta = json.loads(meta)
    table = pq.read_table(io.BytesIO(data))

    def column(name):
        return table.column(name).to_numpy().astype(np.int64)

    def categorical(name, names):
        return pd.Categorical.from_codes(table.column(name).to_numpy().astype(np.int64),
                                         categories=pd.Index(names, dtype="str"), validate=False)

    return {"levels": tuple(meta["levels"]), "digests": meta["codes"],
            "unit": {lv: column(f"unit/{lv}") for lv in meta["levels"]},
            "reported": column("reported"), "closed": column("closed"),
            "category": categorical("category", meta["categories"]),
            "status": categorical("status", meta["statuses"]),
            "steps": {name: column(f"step/{name}") for name in meta["steps"]}, "attrs": meta["attrs"]}


def _placed_in(arrays: dict, index):
    """The kept placement as :class:`gridgeo.events.Placed` in ``index``, or None when ``index`` is not
    the one it was made in (other levels, or other codes at a level)."""
    from gridgeo.events import Placed

    if tuple(index.levels) != arrays["levels"] or any(
            _codes_digest(index.codes[lv]) != arrays["digests"][lv] for lv in arrays["levels"]):
        return None
    return Placed(index=index, unit=arrays["unit"], reported=arrays["reported"], closed=arrays["closed"],
                  category=arrays["category"], status=arrays["status"], steps=arrays["steps"],
                  attrs=dict(arrays["attrs"]))


# --- a publish inside some villages ----------------------------------------------------------


class _Part:
    """The grids below the changed parents (``index``) and the points those parents hold."""

    def __init__(self, **parts):
        self.__dict__.update(parts)


class _Changed:
    """What a publish of grids changed, when it stays inside some second-level units (the module's rules).

    ``parents``: the changed parents (sorted codes; empty for a rename alone); ``old_under`` and
    ``new_under``: the codes of the units at or below them before and after; ``above``: each parent's
    ancestors; ``ancestors``: all of them; ``old``: the grids before.
    """

    @classmethod
    def between(cls, old, new, scheme):
        """The changes from grids ``old`` to ``new``, or None when they reach the first two levels."""
        if len(scheme.names) < 2 or set(old.columns) != set(new.columns) or old.empty or new.empty:
            return None
        upper = set(scheme.names[:2])
        o, n = old.set_index("code"), new.set_index("code")
        if not (o.index.is_unique and n.index.is_unique):
            return None
        common = o.index.intersection(n.index)
        same = _same_geometry(new.set_index("code").loc[common].reset_index(), old)
        for column in [c for c in o.columns if c not in ("name", o.geometry.name)]:
            a, b = o.loc[common, column].astype(object), n.loc[common, column].astype(object)
            same &= ((a == b) | (a.isna() & b.isna())).to_numpy()
        touched = [*o.index.difference(n.index), *n.index.difference(o.index), *common[~same]]
        parents = set()
        for frame in (o, n):
            level, parent = frame["level"].to_dict(), frame["parent"].to_dict()
            for code in touched:
                if code not in frame.index:
                    continue
                if level[code] in upper:
                    return None  # a town or village itself changed: compute in full
                while code in level and level[code] != scheme.names[1]:
                    code = parent[code]
                if code not in level:
                    return None
                parents.add(code)
        self = cls()
        self.old, self.parents = old, sorted(parents)
        self.old_under, self.new_under = _under(o, self.parents), _under(n, self.parents)
        parent_of = n["parent"].to_dict()
        self.above = {}
        for code in self.parents:
            chain, up = [], parent_of.get(code)
            while up in parent_of:
                chain.append(up)
                up = parent_of[up]
            self.above[code] = chain
        self.ancestors = sorted({c for chain in self.above.values() for c in chain})
        return self


def _under(frame, parents) -> list:
    """The codes of ``parents`` and of every unit below them in ``frame`` (indexed by code)."""
    found, level = set(parents) & set(frame.index), set(parents) & set(frame.index)
    parent = frame["parent"]
    while level:
        level = set(parent.index[parent.isin(level).to_numpy()]) - found
        found |= level
    return sorted(found)


def _same_geometry(units, old) -> np.ndarray:
    """Per unit of ``units``, whether ``old`` has a unit of the same code with the same geometry (WKB)."""
    before = old.set_index("code").geometry.reindex(units["code"].to_numpy())
    a = shapely.to_wkb(np.asarray(units.geometry.array, dtype=object))
    b = np.array([None if g is None else shapely.to_wkb(g) for g in before.array], dtype=object)
    return np.array([x == y for x, y in zip(a, b)], dtype=bool)


def _like(made, old, fill=None):
    """``made`` with the columns of ``old`` in its order and dtypes (one-hot columns of
    categories the made rows lack: ``fill``)."""
    extra = [c for c in made.columns if c not in old.columns]
    if extra:
        raise DerivedError(f"recomputed rows have columns the version before lacks: {extra}")
    made = made.copy()
    for column in old.columns:
        if column not in made.columns:
            made[column] = fill
    made = made[list(old.columns)]
    for column in old.columns:
        if column != getattr(old, "_geometry_column_name", None) and made[column].dtype != old[column].dtype:
            made[column] = made[column].astype(old[column].dtype)
    return made
