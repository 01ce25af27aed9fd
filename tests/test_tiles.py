"""Vector tiles: geometry against the source, shared edges, winding, empty tiles,
TileJSON, the cache, GDAL as an independent reader, and public event counts."""

import doctest
import json
import re
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2
from shapely.geometry import shape
from typer.testing import CliRunner

from gridgeo.cli import app
from gridgeo.tiles import layers as tile_layers
from gridgeo.tiles import mvt
from gridgeo.tiles import (
    TMS,
    TileCache,
    TileError,
    TileLayer,
    TileSet,
    event_counts,
    grid_layers,
    road_layer,
    station_layer,
)

EXTENT = 4096
PIXEL = EXTENT / 256  # one pixel of a 256-pixel tile, in tile units
BUFFER = 80


@pytest.fixture(scope="module")
def counts(sample):
    return event_counts(sample.events, sample.grids, level="grid2", by="category")


@pytest.fixture(scope="module")
def tiles(sample, counts):
    return TileSet([*grid_layers(sample.grids), station_layer(sample.stations),
                    TileLayer(counts, "events", minzoom=11, maxzoom=16)], version="test")


@pytest.fixture(scope="module")
def mercator(sample):
    """The source grids in Web Mercator, projected by geopandas (the reference)."""
    return sample.grids.to_crs(3857)


def decode(data, layer):
    """Features of one layer of a tile, in tile coordinates (y down)."""
    decoded = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return decoded[layer]["features"] if layer in decoded else []


def tile_box(tile):
    b = TMS.xy_bounds(tile)
    return b, (b.right - b.left) / EXTENT


def to_mercator(geom, tile):
    b, unit = tile_box(tile)
    return shapely.transform(geom, lambda xy: np.c_[b.left + xy[:, 0] * unit, b.top - xy[:, 1] * unit])


def tiles_of(frame, zoom, limit=None):
    """The tiles holding the representative points of the frame's features."""
    points = frame.representative_point()
    found = sorted({TMS.tile(p.x, p.y, zoom) for p in points})
    return found[:limit] if limit else found


def raw_rings(data, layer):
    """Rings of every polygon feature, decoded from the command stream by hand (spec 4.3)."""
    tile = vector_tile_pb2.tile()
    tile.ParseFromString(data)
    found = next(lay for lay in tile.layers if lay.name == layer)
    out = []
    for feature in found.features:
        assert feature.type == 3  # POLYGON
        commands, i, x, y, rings, ring = list(feature.geometry), 0, 0, 0, [], []
        while i < len(commands):
            command, count = commands[i] & 7, commands[i] >> 3
            i += 1
            if command == 7:  # ClosePath
                rings.append(ring)
                continue
            for _ in range(count):
                x += (commands[i] >> 1) ^ -(commands[i] & 1)
                y += (commands[i + 1] >> 1) ^ -(commands[i + 1] & 1)
                i += 2
                ring = [(x, y)] if command == 1 else ring + [(x, y)]
        out.append(rings)
    return out


def surveyor_area(ring):
    xy = np.asarray(ring, dtype=float)
    return 0.5 * float(np.sum(xy[:, 0] * np.roll(xy[:, 1], -1) - np.roll(xy[:, 0], -1) * xy[:, 1]))


# --- geometry --------------------------------------------------------------------


@pytest.mark.parametrize("level, zoom", [("town", 9), ("village", 11), ("grid2", 12), ("grid2", 14),
                                         ("grid2", 16), ("grid3", 13), ("grid3", 16)])
def test_tiles_match_the_source_within_the_tile_resolution(tiles, sample, mercator, level, zoom):
    source = mercator[mercator["level"] == level].set_index("code").geometry
    for tile in tiles_of(sample.level(level), zoom, limit=6):
        b, unit = tile_box(tile)
        inside = shapely.box(b.left, b.bottom, b.right, b.top)
        features = decode(tiles.tile(zoom, tile.x, tile.y, layers=level), level)
        got = {f["properties"]["code"]: to_mercator(shape(f["geometry"]), tile) for f in features}
        assert got, f"{level} tile {tile} is empty"
        # clipped to the tile box buffered by BUFFER units: polygons reach into the buffer, not beyond
        xy = np.concatenate([shapely.get_coordinates(shape(f["geometry"])) for f in features])
        assert xy.min() >= -BUFFER and xy.max() <= EXTENT + BUFFER
        if not all(_buffered_box(tile).contains(source[code]) for code in got):
            assert xy.min() == -BUFFER or xy.max() == EXTENT + BUFFER
        for code, geom in got.items():
            reference = source[code].intersection(inside)
            decoded = geom.intersection(inside)
            # parts thinner than the tile grid vanish by design: leave them out of the comparison
            parts = shapely.get_parts(reference)
            reference = shapely.union_all(parts[shapely.area(parts) > (2 * unit) ** 2])
            if reference.is_empty:
                continue
            assert decoded.hausdorff_distance(reference) <= 2 * PIXEL * unit, (level, zoom, tile, code)
            mean_shift = decoded.symmetric_difference(reference).area / reference.length
            assert mean_shift <= PIXEL / 2 * unit, (level, zoom, tile, code)
        # every unit that shows in the tile by more than a sliver is there
        hits = source[source.intersection(inside).area > (4 * PIXEL * unit) ** 2]
        assert set(hits.index) <= set(got), (level, zoom, tile)


@pytest.mark.parametrize("level, zoom", [("village", 11), ("grid2", 12), ("grid2", 13), ("grid2", 15)])
def test_neighbours_share_edges_after_simplification(tiles, sample, level, zoom):
    for tile in tiles_of(sample.level(level), zoom, limit=8):
        features = decode(tiles.tile(zoom, tile.x, tile.y, layers=level), level)
        polygons = shapely.clip_by_rect(np.array([shape(f["geometry"]) for f in features]), 0, 0, EXTENT, EXTENT)
        polygons = polygons[~shapely.is_empty(polygons)]
        union = shapely.union_all(polygons)
        overlap = shapely.area(polygons).sum() - union.area
        assert overlap <= 1.0, (tile, overlap)  # in tile units squared: less than one grid cell in all
        # the level tiles the town without holes, so any hole in the decoded union is a gap
        holes = [ring for part in shapely.get_parts(union) for ring in part.interiors]
        assert not [h for h in holes if shapely.Polygon(h).area > 1.0], (tile, holes)


def test_polygon_winding_follows_the_spec(sample, grids):
    town = grids[grids["level"] == "town"].iloc[0]
    grid2 = grids[grids["level"] == "grid2"]
    # an enclave: a level-2 grid that does not touch the town's boundary, cut out of the town
    enclave = grid2[~grid2.boundary.intersects(town.geometry.boundary)].iloc[0]
    holed = gpd.GeoDataFrame({"code": [town["code"]]}, geometry=[town.geometry.difference(enclave.geometry)],
                             crs=grids.crs)
    assert len(holed.geometry.iloc[0].interiors) == 1
    layered = TileSet([TileLayer(holed, "holed", minzoom=14, maxzoom=14), *grid_layers(sample.grids)])
    point = enclave.geometry.representative_point()
    tile = TMS.tile(point.x, point.y, 14)
    (rings,) = raw_rings(layered.tile(14, tile.x, tile.y, layers="holed"), "holed")
    areas = [surveyor_area(r) for r in rings]
    assert areas[0] > 0  # exterior: positive area in tile coordinates, y down
    assert sum(a < 0 for a in areas) == 1  # the enclave, wound the other way

    for rings in raw_rings(layered.tile(14, tile.x, tile.y, layers="grid2"), "grid2"):
        assert all(surveyor_area(r) > 0 for r in rings)  # the sample's grids have no holes


def test_a_point_is_in_exactly_the_tile_that_holds_it(tiles, sample):
    zoom = 14
    stations = sample.stations
    expected = {}
    for sid, p in zip(stations["station_id"], stations.geometry):
        expected.setdefault(TMS.tile(p.x, p.y, zoom), set()).add(sid)
    merc = stations.to_crs(3857).set_index("station_id").geometry
    seen = []
    for tile in {TMS.tile(p.x, p.y, zoom) for p in stations.geometry} | set(tiles_of(sample.level("grid2"), zoom)):
        features = decode(tiles.tile(zoom, tile.x, tile.y, layers="stations"), "stations")
        ids = {f["properties"]["station_id"] for f in features}
        assert ids == expected.get(tile, set()), tile
        _, unit = tile_box(tile)
        for f in features:
            position = to_mercator(shape(f["geometry"]), tile)
            assert position.distance(merc[f["properties"]["station_id"]]) <= 1.5 * unit
        seen += ids
    assert sorted(seen) == sorted(stations["station_id"])


def test_a_point_on_a_tile_corner_is_in_one_tile_only():
    zoom, x0, y0 = 14, 13583, 7025
    corners = [TMS.ul(x0 + dx, y0 + dy, zoom) for dx in range(3) for dy in range(3)]
    points = gpd.GeoDataFrame({"n": range(len(corners))}, geometry=[shapely.Point(c.x, c.y) for c in corners],
                              crs=4490)
    tileset = TileSet(TileLayer(points, "corners", minzoom=zoom, maxzoom=zoom))
    holders = {}
    for x in range(x0 - 1, x0 + 4):
        for y in range(y0 - 1, y0 + 4):
            for f in decode(tileset.tile(zoom, x, y), "corners"):
                holders.setdefault(f["properties"]["n"], []).append((x, y))
    for n, corner in enumerate(corners):
        assert len(holders[n]) == 1  # never twice, never dropped
        # morecantile's tile() for the corner, or a neighbour: on the edge itself the
        # projection's floating-point noise decides which side the point is on
        expected = TMS.tile(corner.x, corner.y, zoom)
        (x, y), = holders[n]
        assert abs(x - expected.x) <= 1 and abs(y - expected.y) <= 1


def test_empty_tiles_outside_the_data_or_the_zooms(tiles, sample):
    centre = sample.level("grid2").union_all().representative_point()
    assert tiles.tile(3, 0, 0) == b""  # far away
    assert tiles.tile(16, 0, 0) == b""
    below = TMS.tile(centre.x, centre.y, 7)  # below every layer's minzoom
    assert tiles.tile(below.z, below.x, below.y) == b""
    above = TMS.tile(centre.x, centre.y, 17)
    assert tiles.tile(above.z, above.x, above.y) == b""
    grid3_too_early = TMS.tile(centre.x, centre.y, 12)
    assert tiles.tile(12, grid3_too_early.x, grid3_too_early.y, layers="grid3") == b""
    assert tiles.tile(12, grid3_too_early.x, grid3_too_early.y, layers="grid2") != b""
    for bad in [(12, 4096, 0), (-1, 0, 0), (30, 0, 0)]:
        with pytest.raises(TileError):
            tiles.tile(*bad)
    with pytest.raises(KeyError, match="addresses"):
        tiles.tile(12, 0, 0, layers="addresses")


# --- TileJSON ----------------------------------------------------------------------


def test_tilejson(tiles, sample):
    doc = tiles.tilejson("https://example.org/tiles/grid2/{z}/{x}/{y}.mvt", layers="grid2")
    json.dumps(doc)  # serialisable as it is
    assert doc["tilejson"] == "3.0.0"
    assert doc["tiles"] == ["https://example.org/tiles/grid2/{z}/{x}/{y}.mvt"]
    assert doc["bounds"] == pytest.approx(list(sample.level("grid2").total_bounds))
    west, south, east, north = doc["bounds"]
    assert west < doc["center"][0] < east and south < doc["center"][1] < north
    assert (doc["minzoom"], doc["maxzoom"]) == (11, 16) and doc["center"][2] == 11
    (layer,) = doc["vector_layers"]
    assert layer["id"] == "grid2" and (layer["minzoom"], layer["maxzoom"]) == (11, 16) and layer["description"]
    assert layer["fields"] == {"code": "String", "name": "String", "level": "String", "parent": "String"}

    whole = tiles.tilejson("/tiles/{z}/{x}/{y}.mvt")
    assert [v["id"] for v in whole["vector_layers"]] == ["town", "village", "grid1", "grid2", "grid3",
                                                          "stations", "events"]
    assert (whole["minzoom"], whole["maxzoom"]) == (8, 16)
    assert whole["bounds"] == pytest.approx(list(sample.grids.total_bounds))
    events = next(v for v in whole["vector_layers"] if v["id"] == "events")
    assert events["fields"]["events"] == "Number"


def test_figures_joined_on_code_are_published(sample):
    grid2 = sample.level("grid2")
    figures = pd.DataFrame({"code": grid2["code"], "households": np.arange(len(grid2)) * 3})
    (layer,) = [lay for lay in grid_layers(sample.grids, figures=figures) if lay.name == "grid2"]
    assert layer.fields["households"] == "Number"
    tileset = TileSet(layer)
    tile = tiles_of(grid2, 14)[0]
    for f in decode(tileset.tile(14, tile.x, tile.y), "grid2"):
        expected = figures.loc[figures["code"] == f["properties"]["code"], "households"].item()
        assert f["properties"]["households"] == expected
    with pytest.raises(ValueError, match="more than once"):
        grid_layers(sample.grids, figures=pd.concat([figures, figures.head(1)]))


# --- the encoder, against mapbox-vector-tile's ------------------------------------------


def _in_tile_units(geoms, tile):
    """Web Mercator geometries clipped to the buffered tile, in (unrounded) tile coordinates, y down."""
    b, unit = tile_box(tile)
    pad = BUFFER * unit
    clipped = shapely.clip_by_rect(geoms, b.left - pad, b.bottom - pad, b.right + pad, b.top + pad)
    clipped = clipped[~shapely.is_empty(clipped)]
    return shapely.transform(clipped, lambda xy: np.c_[(xy[:, 0] - b.left) / unit, (b.top - xy[:, 1]) / unit])


def _both_encoders(name, geoms, kind, columns):
    """Our layer and mapbox-vector-tile's encoding of the same features, both decoded by mapbox-vector-tile."""
    attributes = mvt.Attributes(columns)
    ids = np.arange(len(geoms))
    ours = mvt.encode_tile([mvt.encode_layer(name, geoms, kind=kind, ids=ids, attributes=attributes)])
    features = [{"geometry": g, "id": i, "properties": {k: v[i] for k, v in columns.items() if v[i] is not None}}
                for i, g in enumerate(geoms)]
    theirs = mapbox_vector_tile.encode([{"name": name, "features": features}], default_options={
        "y_coord_down": True, "check_winding_order": False, "quantize_bounds": None, "extents": EXTENT})
    options = {"default_options": {"y_coord_down": True}}
    return mapbox_vector_tile.decode(ours, **options), mapbox_vector_tile.decode(theirs, **options)


def _columns(n, rng):
    """Attributes of every kind the encoder takes, some missing."""
    def holes(values):
        return [None if rng.random() < 0.2 else v for v in values]

    return {
        "name": holes([f"网格{i}" for i in range(n)]),
        "count": holes(rng.integers(-1000, 10**12, n).tolist()),
        "share": holes(rng.random(n).round(3).tolist()),
        "has_station": holes((rng.random(n) < 0.5).tolist()),
        "band": holes(rng.choice(["low", "ok", "high"], n).tolist()),
    }


@pytest.mark.parametrize("level, zoom", [("town", 10), ("village", 12), ("grid2", 14), ("grid2", 16),
                                         ("grid3", 15)])
def test_polygon_layers_decode_as_mapbox_vector_tile_encodes_them(sample, mercator, level, zoom):
    rng = np.random.default_rng(zoom)
    units = mercator[mercator["level"] == level].geometry.array
    for tile in tiles_of(sample.level(level), zoom, limit=5):
        geoms = _in_tile_units(units, tile)
        ours, theirs = _both_encoders(level, geoms, "polygon", _columns(len(geoms), rng))
        assert ours == theirs, (level, zoom, tile)
        assert len(ours[level]["features"]) == len(geoms)


@pytest.mark.parametrize("zoom", [12, 14, 16])
def test_a_roads_tile_holds_the_roads_that_cross_it(sample, zoom):
    """Every road segment whose line (projected by geopandas) crosses a tile's box is in the tile,
    none is there that comes nowhere near it, and each is where the source puts it, with its
    name and class. (A road's id names the road, and a road has several segments: a feature is
    matched to its segment by the feature id, the segment's row.)"""
    layer = road_layer(sample.roads)
    tiles = TileSet([layer], version="roads-test")
    source = sample.roads.to_crs(3857).reset_index(drop=True)
    checked = 0
    for tile in tiles_of(sample.roads, zoom)[::7][:6]:
        features = decode(tiles.tile(zoom, tile.x, tile.y), "roads")
        got = {f["id"]: f for f in features}
        assert len(got) == len(features), "a segment is in a tile once"
        b, unit = tile_box(tile)
        inner = shapely.box(b.left, b.bottom, b.right, b.top)
        outer = inner.buffer((BUFFER + 8) * unit, join_style="mitre")
        must = set(np.flatnonzero(source.intersects(inner)))
        may = set(np.flatnonzero(source.intersects(outer)))
        assert must <= set(got) <= may, (zoom, tile, sorted(must - set(got))[:5], sorted(set(got) - may)[:5])
        for row in must:
            feature = got[row]
            line = to_mercator(shapely.geometry.shape(feature["geometry"]), tile)
            full = source.geometry.iloc[row]
            # simplified for the zoom: every point of the tile's line lies within the tolerance
            # (8 units) and the rounding of the source line, and every point of the source line
            # inside the tile within as much of the tile's line
            assert _farthest(line, full) <= 10 * unit, (zoom, tile, row)
            assert _farthest(full.intersection(inner), line) <= 10 * unit, (zoom, tile, row)
            for column in ("road_id", "name", "class"):
                assert feature["properties"][column] == source[column].iloc[row]
        checked += len(must)
    assert checked > 20


def _farthest(line, other) -> float:
    """How far the farthest point of ``line`` (every metre along it) is from ``other``."""
    points = shapely.get_coordinates(shapely.segmentize(line, 1.0))
    return float(shapely.distance(shapely.points(points), other).max()) if len(points) else 0.0


def test_holes_lines_and_points_decode_as_mapbox_vector_tile_encodes_them(sample):
    rng = np.random.default_rng(3)
    town = sample.level("town").to_crs(3857).geometry.iloc[0]
    grid2 = sample.level("grid2").to_crs(3857).geometry
    holed = shapely.MultiPolygon([town.difference(grid2.iloc[40]).difference(grid2.iloc[90]), grid2.iloc[40]])
    roads = sample.roads.to_crs(3857).geometry.array
    stations = sample.stations.to_crs(3857).geometry.array
    for zoom in (13, 15):
        centre = sample.level("grid2").geometry.iloc[40].representative_point()
        tile = TMS.tile(centre.x, centre.y, zoom)
        polygons = _in_tile_units(np.array([holed]), tile)
        assert shapely.get_num_interior_rings(shapely.get_parts(polygons)).sum() >= 1
        lines = _in_tile_units(roads, tile)
        points = _in_tile_units(stations, tile)
        for name, geoms, kind in (("holed", polygons, "polygon"), ("roads", lines, "line"),
                                  ("stations", points, "point")):
            assert len(geoms), (name, zoom)
            ours, theirs = _both_encoders(name, geoms, kind, _columns(len(geoms), rng))
            assert ours == theirs, (name, zoom)


def test_features_that_round_to_nothing_are_left_out_like_mapbox_vector_tile():
    lines = np.array([shapely.LineString([(1.1, 1.1), (1.2, 0.9), (0.8, 1.3)]),  # one point after rounding
                      shapely.LineString([(0, 0), (0.2, 0.1), (5, 5)])])
    ours, theirs = _both_encoders("lines", lines, "line", {"n": [1, 2]})
    assert ours == theirs and [f["properties"]["n"] for f in ours["lines"]["features"]] == [2]
    assert mvt.encode_layer("lines", lines[:1], kind="line", ids=[0], attributes=mvt.Attributes({"n": [1]})) == b""


@pytest.mark.parametrize("module", [mvt, tile_layers], ids=lambda m: m.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


# --- cache and ETag ----------------------------------------------------------------


def test_cache_returns_identical_bytes_and_a_new_version_misses(sample, tmp_path):
    layers = grid_layers(sample.grids)
    cache = TileCache(max_bytes=8 * 2**20, directory=tmp_path / "cache")
    cached = TileSet(layers, version="v1", cache=cache)
    fresh = TileSet(layers, version="v1")
    wanted = [(z, t.x, t.y) for z in (12, 14) for t in tiles_of(sample.level("grid2"), z, limit=4)]
    first = [cached.tile(*t, layers="grid2") for t in wanted]
    assert cache.misses == len(wanted) and cache.hits == 0
    again = [cached.tile(*t, layers="grid2") for t in wanted]
    assert cache.hits == len(wanted)
    assert again == first == [fresh.tile(*t, layers="grid2") for t in wanted]

    z, x, y = wanted[0]
    assert (tmp_path / "cache" / "v1" / "grid2" / str(z) / str(x) / f"{y}.mvt").read_bytes() == first[0]
    restarted = TileSet(layers, version="v1", cache=TileCache(directory=tmp_path / "cache"))
    assert restarted.tile(z, x, y, layers="grid2") == first[0] and restarted.cache.hits == 1

    # a publish: the grids change, the version changes, nothing old is served
    moved = sample.grids.copy()
    moved["geometry"] = moved.geometry.translate(0.001, 0)
    published = TileSet(grid_layers(moved), version="v2", cache=cache)
    misses = cache.misses
    changed = published.tile(z, x, y, layers="grid2")
    assert cache.misses == misses + 1 and changed != first[0]
    assert published.etag(z, x, y, layers="grid2") != cached.etag(z, x, y, layers="grid2")
    assert cached.etag(z, x, y, layers="grid2") == fresh.etag(z, x, y, layers="grid2")
    assert cached.etag(z, x, y, layers="grid2") != cached.etag(z, x, y + 1, layers="grid2")
    cache.retain("v2")
    assert not (tmp_path / "cache" / "v1").exists() and (tmp_path / "cache" / "v2").exists()
    assert cache.get("v1", "grid2", z, x, y) is None


def test_prepared_zooms_give_the_same_tiles(sample):
    layers = grid_layers(sample.grids)
    wanted = [(z, t.x, t.y) for z in (13, 16) for t in tiles_of(sample.level("grid3"), z, limit=3)]
    prepared = TileSet(layers).prepare(layers=["grid2", "grid3"])
    assert [prepared.tile(*t) for t in wanted] == [TileSet(layers).tile(*t) for t in wanted]


def test_default_version_follows_the_content(sample):
    layers = grid_layers(sample.grids)
    assert TileSet(layers).version == TileSet(grid_layers(sample.grids)).version
    renamed = sample.grids.copy()
    renamed.loc[renamed.index[-1], "name"] = "新名字"
    assert TileSet(grid_layers(renamed)).version != TileSet(layers).version


def test_memory_cache_is_bounded_by_bytes():
    cache = TileCache(max_bytes=10_000)
    for i in range(100):
        cache.put("v", "grid2", 14, i, 0, bytes(1000))
    assert cache.nbytes <= 10_000 and 0 < len(cache) < 100
    assert cache.get("v", "grid2", 14, 99, 0) == bytes(1000)  # the newest stays
    assert cache.get("v", "grid2", 14, 0, 0) is None  # the oldest went


def test_rendering_from_many_threads_gives_the_serial_bytes(sample):
    layers = grid_layers(sample.grids)
    wanted = [(z, t.x, t.y) for z in (13, 15) for t in tiles_of(sample.level("grid3"), z, limit=6)]
    serial = [TileSet(layers).tile(*t) for t in wanted]
    shared = TileSet(layers, cache=TileCache(max_bytes=2**20))
    barrier = threading.Barrier(4)

    def burst(_):
        barrier.wait()  # all threads start together, on the same cold tiles
        return [shared.tile(*t) for t in wanted]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(burst, range(4)))
    assert all(r == serial for r in results)


# --- export, read back by GDAL ------------------------------------------------------


def _ogrinfo(*args):
    run = subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, check=True)
    return run.stdout


@pytest.mark.gdal
def test_export_is_read_by_gdal(tiles, sample, tmp_path):
    out = tiles.export(tmp_path / "tiles", minzoom=12, maxzoom=13)
    meta = json.loads((out / "metadata.json").read_text("utf-8"))
    stats = {lay["layer"]: lay for lay in json.loads(meta["json"])["tilestats"]["layers"]}
    assert stats["grid2"]["count"] == len(sample.level("grid2")) and stats["grid2"]["geometry"] == "Polygon"

    summary = _ogrinfo("-al", "-so", str(out / "13"))
    counts = {name: int(n) for name, n in re.findall(r"Layer name: (\S+).*?Feature Count: (\d+)", summary, re.S)}
    assert set(counts) == {"town", "village", "grid1", "grid2", "grid3", "stations", "events"}
    # a point is written once; a polygon at least once, at most once per tile it reaches
    assert counts["stations"] == len(sample.stations)
    written = {int(p.stem) for p in (out / "13").rglob("*.pbf")}
    assert written
    merc = sample.grids.to_crs(3857)
    tiles13 = [t for t in TMS.tiles(*tiles.bounds, zooms=[13])]
    for level in ("village", "grid2", "grid3"):
        units = merc[merc["level"] == level].geometry
        reach = sum(int(units.intersects(_buffered_box(t)).sum()) for t in tiles13)
        assert len(units) <= counts[level] <= reach, level
        distinct = _ogrinfo("-q", str(out / "13"), "-sql", f"SELECT COUNT(DISTINCT code) AS n FROM {level}")
        assert f"n (Integer) = {len(units)}" in distinct
    early = _ogrinfo("-al", "-so", str(out / "12"))  # grid3 starts at 13: listed, but empty
    assert re.search(r"Layer name: grid3.*?Feature Count: 0\n", early, re.S)

    with pytest.raises(FileExistsError):
        tiles.export(out, minzoom=12, maxzoom=12)


def _buffered_box(tile):
    b, unit = tile_box(tile)
    pad = BUFFER * unit
    return shapely.box(b.left - pad, b.bottom - pad, b.right + pad, b.top + pad)


@pytest.mark.gdal
def test_cli_exports_a_sample_directory(tmp_path):
    runner = CliRunner()
    out = tmp_path / "tiles"
    result = runner.invoke(app, ["tiles", "export", "sample_geojson", str(out), "--minzoom", "12",
                                 "--maxzoom", "12", "--layers", "grid2,stations"])
    assert result.exit_code == 0, result.output
    summary = _ogrinfo("-al", "-so", str(out / "12"))
    assert re.findall(r"Layer name: (\S+)", summary) == ["grid2", "stations"]
    refused = runner.invoke(app, ["tiles", "export", "sample_geojson/addresses.geojson", str(tmp_path / "x")])
    assert refused.exit_code != 0 and "never published" in refused.output


# --- public event counts ----------------------------------------------------------------


def test_event_counts_per_unit_match_a_spatial_join(sample, counts):
    grid2 = sample.level("grid2")
    joined = gpd.sjoin(sample.events, grid2[["code", "geometry"]], predicate="intersects")
    # the boundary rule: an event on a shared edge counts for the smallest code
    owner = joined.sort_values("code").groupby(level=0)["code"].first()
    expected = owner.value_counts().reindex(grid2["code"], fill_value=0)
    got = counts.set_index("code")["events"].reindex(grid2["code"])
    assert (got == expected).all()
    by_category = counts.filter(like="events_").sum(axis=1)
    assert (by_category == counts["events"]).all()
    assert counts.attrs["outside"] == len(sample.events) - len(owner)


def test_event_counts_per_hexagon(sample):
    hexagons = event_counts(sample.events, sample.grids, hexagon=400)
    assert hexagons["events"].sum() == len(sample.events) and (hexagons["events"] > 0).all()
    assert shapely.coverage_is_valid(hexagons.geometry.array)  # neighbours share their edges exactly
    joined = gpd.sjoin(sample.events, hexagons[["cell", "geometry"]], predicate="intersects")
    expected = joined.groupby("cell").size()
    assert (hexagons.set_index("cell")["events"] - expected.reindex(hexagons["cell"])).abs().max() <= 1
    metric = hexagons.to_crs(hexagons.estimate_utm_crs())
    assert metric.area.median() == pytest.approx(np.sqrt(3) / 2 * 400**2, rel=0.01)


def test_no_record_level_attribute_reaches_a_public_layer(tiles, sample, counts):
    allowed = {"code", "name", "level", "parent", "events"}
    assert set(counts.columns) - {"geometry"} <= allowed | {c for c in counts.columns if c.startswith("events_")}
    private = set(sample.events["event_id"]) | set(sample.addresses["address"]) | set(sample.addresses["addr_id"])
    for tile in tiles_of(sample.level("grid2"), 13):
        for f in decode(tiles.tile(13, tile.x, tile.y, layers="events"), "events"):
            assert set(f["properties"]) <= allowed | {k for k in f["properties"] if k.startswith("events_")}
            assert not set(map(str, f["properties"].values())) & private
        assert decode(tiles.tile(13, tile.x, tile.y, layers="events"), "events")
