"""Tile exports as MBTiles and PMTiles, and the zoom range an export honours.

Every output is read back by a client that is not gridgeo: GDAL's MBTiles
driver (``ogrinfo``, ``ogr2ogr``), Python's sqlite3, the ``pmtiles``
package's reader, and mapbox_vector_tile; tiles are compared with the tiles
gridgeo renders in-process for the same z/x/y.
"""

import doctest
import gzip
import json
import re
import sqlite3
import subprocess

import mapbox_vector_tile
import numpy as np
import pytest
import shapely
from pmtiles.reader import MmapSource, Reader, all_tiles
from pmtiles.tile import Compression, TileType
from shapely.geometry import shape
from typer.testing import CliRunner

from gridgeo.cli import app
from gridgeo.tiles import (
    TMS,
    TileLayer,
    TileSet,
    archive,
    directory,
    event_counts,
    export,
    grid_layers,
    station_layer,
)

LOW, HIGH = 5, 13  # below every layer's own minzoom (towns start at 8), up to a zoom with every layer
# the zooms each layer is drawn at, by the documented rule: the top layer (town) from --minzoom,
# the others from their own minzoom, all cut at --maxzoom
DRAWN = {"town": (5, 13), "village": (10, 13), "grid1": (11, 13), "grid2": (11, 13), "grid3": (13, 13),
         "stations": (12, 13), "events": (11, 13)}


@pytest.fixture(scope="module")
def tileset(sample):
    """The tile set `gridgeo tiles export sample_geojson` builds: grid levels, stations, event counts."""
    counts = event_counts(sample.events, sample.grids, level="grid2", by="category")
    return TileSet([*grid_layers(sample.grids), station_layer(sample.stations),
                    TileLayer(counts, "events", minzoom=11, maxzoom=16)], version="test")


@pytest.fixture(scope="module")
def reference(tileset):
    """``{(z, x, y): tile}`` rendered in-process by a tile set whose layers carry the DRAWN zooms."""
    redrawn = TileSet([TileLayer(layer.frame, name, minzoom=DRAWN[name][0], maxzoom=DRAWN[name][1],
                                 fields=list(layer.fields), description=layer.description)
                       for name, layer in tileset.layers.items()])
    tiles = {}
    for tile in TMS.tiles(*tileset.bounds, zooms=list(range(LOW, HIGH + 1))):
        data = redrawn.tile(tile.z, tile.x, tile.y)
        if data:
            tiles[(tile.z, tile.x, tile.y)] = data
    return tiles


@pytest.fixture(scope="module")
def outputs(tileset, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    return {kind: export(tileset, root / name, minzoom=LOW, maxzoom=HIGH)
            for kind, name in [("dir", "tiles"), ("mbtiles", "jinjiang.mbtiles"), ("pmtiles", "jinjiang.pmtiles")]}


def directory_tiles(root):
    return {(int(p.parent.parent.name), int(p.parent.name), int(p.stem)): p.read_bytes() for p in root.rglob("*.pbf")}


def mbtiles_tiles(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    for _, _, _, data in rows:
        assert data[:2] == b"\x1f\x8b", "tile_data is gzip-compressed, as tippecanoe writes it"
    return {(z, x, (1 << z) - 1 - row): gzip.decompress(data) for z, x, row, data in rows}


def mbtiles_metadata(path):
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return dict(db.execute("SELECT name, value FROM metadata"))


def pmtiles_read(path):
    with open(path, "rb") as f:
        source = MmapSource(f)
        reader = Reader(source)
        tiles = {zxy: bytes(data) for zxy, data in all_tiles(source)}
        return reader.header(), reader.metadata(), tiles


def vector_layers_of_dir(root):
    meta = json.loads((root / "metadata.json").read_text("utf-8"))
    return meta, json.loads(meta["json"])["vector_layers"]


def features_per_layer(tiles, zoom):
    """Features of each layer at a zoom, summed over tiles, as mapbox_vector_tile decodes them."""
    counts = {}
    for (z, _, _), data in tiles.items():
        if z == zoom:
            for name, layer in mapbox_vector_tile.decode(data).items():
                counts[name] = counts.get(name, 0) + len(layer["features"])
    return counts


def ogrinfo(*args):
    return subprocess.run(["ogrinfo", "-ro", *args], capture_output=True, text=True, check=True).stdout


def gdal_counts(path, zoom):
    summary = ogrinfo("-so", "-al", "-oo", f"ZOOM_LEVEL={zoom}", str(path))
    return {name: int(n) for name, n in re.findall(r"Layer name: (\S+).*?Feature Count: (\d+)", summary, re.DOTALL)}


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- what is written: the tiles gridgeo renders, and only the non-empty ones ----------------------


def test_the_directory_holds_the_tiles_rendered_in_process(outputs, reference):
    written = directory_tiles(outputs["dir"])
    assert written.keys() == reference.keys()
    assert all(written[key] == reference[key] for key in reference)
    assert {z for z, _, _ in written} == set(range(LOW, HIGH + 1))


def test_mbtiles_holds_the_same_tiles_in_tms_rows(outputs, reference):
    path = outputs["mbtiles"]
    assert path.read_bytes()[:16] == b"SQLite format 3\x00"
    written = mbtiles_tiles(path)
    assert written.keys() == reference.keys()   # TMS rows flipped back give the XYZ addresses
    for key, data in reference.items():
        assert written[key] == data, key
        assert mapbox_vector_tile.decode(written[key]) == mapbox_vector_tile.decode(data)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == 0x4D504258
        index = db.execute("SELECT sql FROM sqlite_master WHERE name = 'tile_index'").fetchone()[0]
        assert "UNIQUE" in index and "zoom_level, tile_column, tile_row" in index


def test_mbtiles_metadata_follow_the_specification(outputs, tileset):
    meta = mbtiles_metadata(outputs["mbtiles"])
    assert {"name", "format", "bounds", "center", "minzoom", "maxzoom", "json"} <= meta.keys()
    assert (meta["name"], meta["format"], meta["minzoom"], meta["maxzoom"]) == ("jinjiang", "pbf", "5", "13")
    bounds = [float(v) for v in meta["bounds"].split(",")]
    assert np.allclose(bounds, tileset.bounds, atol=1e-7)
    lon, lat, zoom = (float(v) for v in meta["center"].split(","))
    assert bounds[0] < lon < bounds[2] and bounds[1] < lat < bounds[3] and zoom == LOW
    _, from_dir = vector_layers_of_dir(outputs["dir"])
    assert json.loads(meta["json"])["vector_layers"] == from_dir


@pytest.mark.gdal
@pytest.mark.parametrize("zoom", [6, 11, 13])
def test_gdal_reads_the_mbtiles_layers_and_features(outputs, reference, zoom):
    counts = gdal_counts(outputs["mbtiles"], zoom)
    assert list(counts) == list(DRAWN)       # from the json metadata, in the tile set's order
    decoded = features_per_layer(reference, zoom)
    assert counts == {name: decoded.get(name, 0) for name in DRAWN}
    if zoom == 6:                            # below the towns' own z8: only the town, drawn as asked
        assert counts["town"] == 1 and sum(counts.values()) == 1


@pytest.mark.gdal
def test_gdal_finds_every_station_where_it_is(outputs, sample):
    """A TMS row left unflipped would put the points south of the equator."""
    run = subprocess.run(["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", "-oo", f"ZOOM_LEVEL={HIGH}",
                          str(outputs["mbtiles"]), "stations"], capture_output=True, text=True, check=True)
    found = {f["properties"]["station_id"]: shape(f["geometry"]) for f in json.loads(run.stdout)["features"]}
    truth = sample.stations.to_crs(3857).set_index("station_id").geometry
    assert found.keys() == set(truth.index)
    unit = (TMS.xy_bounds(0, 0, HIGH).right - TMS.xy_bounds(0, 0, HIGH).left) / 4096
    for station_id, points in found.items():   # GDAL reads them as one-point MultiPoints
        (x, y), = shapely.get_coordinates(points)
        point = truth[station_id]
        assert abs(x - point.x) <= 1.5 * unit and abs(y - point.y) <= 1.5 * unit, station_id


def test_pmtiles_reads_back_as_the_directory(outputs, tileset):
    header, meta, tiles = pmtiles_read(outputs["pmtiles"])
    assert all(data[:2] == b"\x1f\x8b" for data in tiles.values())
    assert {key: gzip.decompress(data) for key, data in tiles.items()} == directory_tiles(outputs["dir"])
    assert (header["min_zoom"], header["max_zoom"], header["center_zoom"]) == (LOW, HIGH, LOW)
    assert header["tile_type"] == TileType.MVT and header["tile_compression"] == Compression.GZIP
    assert header["clustered"]               # tiles in Hilbert order
    west, south, east, north = tileset.bounds
    assert header["min_lon_e7"] <= west * 1e7 < header["min_lon_e7"] + 1
    assert header["min_lat_e7"] <= south * 1e7 < header["min_lat_e7"] + 1
    assert header["max_lon_e7"] - 1 < east * 1e7 <= header["max_lon_e7"]
    assert header["max_lat_e7"] - 1 < north * 1e7 <= header["max_lat_e7"]
    dir_meta, from_dir = vector_layers_of_dir(outputs["dir"])
    assert meta["vector_layers"] == from_dir
    assert meta["tilestats"] == json.loads(dir_meta["json"])["tilestats"]
    assert (meta["name"], meta["format"], meta["version"]) == ("jinjiang", "pbf", "2")


def test_a_second_export_gives_the_same_bytes(outputs, tileset, tmp_path):
    """gzip without a timestamp: the same tiles make the same archive (caches and CDNs can trust it)."""
    again = export(tileset, tmp_path / "jinjiang.pmtiles", minzoom=LOW, maxzoom=HIGH)  # the name is in the metadata
    assert again.read_bytes() == outputs["pmtiles"].read_bytes()


# --- the zoom range ----------------------------------------------------------------------------------


@pytest.mark.gdal
def test_minzoom_below_the_layers_draws_the_top_layer_and_the_metadata_say_so(outputs):
    meta, layers = vector_layers_of_dir(outputs["dir"])
    assert (meta["minzoom"], meta["maxzoom"]) == (LOW, HIGH)
    assert {v["id"]: (v["minzoom"], v["maxzoom"]) for v in layers} == DRAWN
    written = directory_tiles(outputs["dir"])
    for z in range(LOW, 8):
        at_zoom = [data for (tz, _, _), data in written.items() if tz == z]
        assert at_zoom and all(set(mapbox_vector_tile.decode(d)) == {"town"} for d in at_zoom), z
    summary = ogrinfo("-so", "-al", str(outputs["dir"] / str(LOW)))   # GDAL's MVT driver, the directory
    assert re.search(r"Layer name: town.*?Feature Count: 1\n", summary, re.DOTALL)


def test_a_narrower_range_leaves_out_the_layers_it_does_not_reach(tileset, tmp_path):
    path = export(tileset, tmp_path / "low.mbtiles", maxzoom=10)
    meta = mbtiles_metadata(path)
    layers = {v["id"]: (v["minzoom"], v["maxzoom"]) for v in json.loads(meta["json"])["vector_layers"]}
    assert layers == {"town": (8, 10), "village": (10, 10)}
    assert (meta["minzoom"], meta["maxzoom"]) == ("8", "10")
    assert {z for z, _, _ in mbtiles_tiles(path)} == {8, 9, 10}
    stats = [s["layer"] for s in json.loads(meta["json"])["tilestats"]["layers"]]
    assert stats == ["town", "village"]


def test_the_metadata_start_where_the_tiles_do(tileset, tmp_path):
    """At z0 the whole town is smaller than a tile unit: nothing is written there, and no file claims it."""
    path = export(tileset, tmp_path / "world.pmtiles", minzoom=0, maxzoom=2, layers="town")
    header, meta, tiles = pmtiles_read(path)
    assert {z for z, _, _ in tiles} == {1, 2}
    assert (header["min_zoom"], header["max_zoom"]) == (1, 2)
    assert [(v["id"], v["minzoom"], v["maxzoom"]) for v in meta["vector_layers"]] == [("town", 1, 2)]
    nothing = tmp_path / "nothing.mbtiles"
    with pytest.raises(ValueError, match="nothing to write.*choose higher zooms"):
        export(tileset, nothing, minzoom=0, maxzoom=0, layers="town")
    assert not nothing.exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("zooms, message", [
    ({"maxzoom": 10, "layers": "grid3"}, r"maxzoom=10 is below z13, where the layers \['grid3'\] start: give "),
    ({"minzoom": 17, "layers": "grid3"}, r"minzoom=17 is above z16.*give maxzoom too"),
    ({"minzoom": 12, "maxzoom": 25}, r"need 0 <= minzoom <= maxzoom <= 24, got minzoom=12, maxzoom=25"),
    ({"minzoom": 9.5}, r"minzoom should be a whole number"),
])
def test_impossible_zooms_are_refused_with_what_to_do(tileset, tmp_path, zooms, message):
    with pytest.raises((ValueError, TypeError), match=message):
        export(tileset, tmp_path / "x.mbtiles", **zooms)
    assert list(tmp_path.iterdir()) == []


# --- writing safely --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["old.mbtiles", "old.pmtiles"])
def test_an_existing_archive_is_kept_unless_asked_and_a_failure_changes_nothing(tileset, tmp_path, monkeypatch,
                                                                                name):
    path = export(tileset, tmp_path / name, minzoom=12, maxzoom=12, layers="stations")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export(tileset, path, minzoom=13, maxzoom=13, layers="stations")
    calls = []

    def failing(self, sources, z, x, y):
        calls.append((z, x, y))
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return original(self, sources, z, x, y)

    original = TileSet.render_sources
    monkeypatch.setattr(TileSet, "render_sources", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        export(tileset, path, minzoom=13, maxzoom=13, overwrite=True)
    monkeypatch.undo()
    assert path.read_bytes() == before and leftovers(tmp_path) == []
    path.chmod(0o640)
    export(tileset, path, minzoom=13, maxzoom=13, layers="stations", overwrite=True)
    assert path.read_bytes() != before and (path.stat().st_mode & 0o777) == 0o640


def test_the_format_follows_the_suffix_or_is_refused_when_they_disagree(tileset, tmp_path):
    assert [directory.output_format(p) for p in ("a.MBTiles", "a.pmtiles", "tiles", "tiles.v2")] == \
        ["mbtiles", "pmtiles", "dir", "dir"]
    with pytest.raises(ValueError, match=r"ends in \.mbtiles but the format asked is 'pmtiles'"):
        export(tileset, tmp_path / "a.mbtiles", format="pmtiles")
    with pytest.raises(ValueError, match="unknown tile format 'geojson'"):
        export(tileset, tmp_path / "a", format="geojson")
    plain = export(tileset, tmp_path / "stations", format="mbtiles", minzoom=12, maxzoom=12, layers="stations")
    assert plain.is_file() and plain.read_bytes()[:15] == b"SQLite format 3"
    (tmp_path / "folder.pmtiles").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        export(tileset, tmp_path / "folder.pmtiles", overwrite=True)


# --- the command line ---------------------------------------------------------------------------------


@pytest.mark.gdal
def test_cli_writes_mbtiles_and_pmtiles_from_the_suffix(tmp_path, tileset):
    runner = CliRunner()
    args = ["--minzoom", "5", "--maxzoom", "12", "--layers", "town,grid2,grid3"]
    result = runner.invoke(app, ["tiles", "export", "sample_geojson", str(tmp_path / "t.mbtiles"), *args])
    assert result.exit_code == 0, result.output
    assert "(mbtiles)" in result.output and "town z5-12, grid2 z11-12" in result.output
    assert "left out (no zoom of theirs in the range written): grid3" in result.output
    assert list(gdal_counts(tmp_path / "t.mbtiles", 5)) == ["town", "grid2"]
    written = mbtiles_tiles(tmp_path / "t.mbtiles")
    for (z, x, y), data in written.items():
        if z >= 11:   # where both layers are their own: what the service would serve
            assert data == tileset.tile(z, x, y, layers=["town", "grid2"]), (z, x, y)

    result = runner.invoke(app, ["tiles", "export", "sample_geojson", str(tmp_path / "t.pmtiles"), *args])
    assert result.exit_code == 0, result.output
    _, _, tiles = pmtiles_read(tmp_path / "t.pmtiles")
    assert {key: gzip.decompress(data) for key, data in tiles.items()} == written

    result = runner.invoke(app, ["tiles", "export", "sample_geojson", str(tmp_path / "d"), "--format", "dir",
                                 "--minzoom", "0", "--maxzoom", "1", "--layers", "town"])
    assert result.exit_code == 0, result.output
    assert "no tile at zoom 0" in result.output and "the metadata say z1-1" in result.output

    refused = runner.invoke(app, ["tiles", "export", "sample_geojson", str(tmp_path / "t.pmtiles"),
                                  "--format", "mbtiles"])
    assert refused.exit_code != 0 and "ends in .pmtiles but the format asked is 'mbtiles'" in refused.output
    again = runner.invoke(app, ["tiles", "export", "sample_geojson", str(tmp_path / "t.mbtiles"), *args])
    assert again.exit_code != 0 and "--overwrite" in again.output


def test_docstring_examples_run():
    for module in (directory, archive):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        assert result.failed == 0 and result.attempted, module.__name__


def test_cli_exports_an_offices_files_as_gridgeo_load_reads_them(sample, tmp_path):
    """A GBK shapefile in a zone-prefixed Gauss-Krüger system with numeric codes and level labels,
    and a station sheet picked on Amap (GCJ-02) under a Chinese file name: the grids come out at
    their codes, the sheet as the layer "stations" where the stations really are."""
    import geopandas as gpd
    import pyogrio

    from office_files import grid_shapefile, station_table

    town = sample.grids["code"].iloc[0][:9]
    grid2 = sample.level("grid2")
    grid2 = grid2[grid2["code"].str.startswith(town)]
    stations = sample.stations[sample.stations["grid_code"].str.startswith(town)]
    shp = grid_shapefile(tmp_path, grid2, name="二级网格.shp")
    sheet = tmp_path / "服务站.xlsx"
    station_table(stations, headers=("站点编号", "名称", "类型", "所属网格", "高德经度", "高德纬度")).to_excel(
        sheet, index=False)
    out = tmp_path / "tiles"
    result = CliRunner().invoke(app, ["tiles", "export", str(shp), str(sheet), str(out), "--format", "dir",
                                      "--minzoom", "14", "--maxzoom", "14"])
    assert result.exit_code == 0, result.output
    assert "layers: grid2 z14-14, stations z14-14" in result.output
    drawn = pyogrio.read_dataframe(str(out / "14"), layer="grid2")
    assert set(drawn["code"]) == set(grid2["code"])
    got = pyogrio.read_dataframe(str(out / "14"), layer="stations").drop_duplicates("station_id")
    where = gpd.GeoSeries(stations.geometry.to_numpy(), index=stations["station_id"].to_numpy(),
                          crs=stations.crs).to_crs(3857)
    shown = gpd.GeoSeries(got.geometry.to_numpy(), index=got["station_id"].to_numpy(), crs=3857)
    assert set(shown.index) == set(where.index)
    off = shown.distance(where.loc[shown.index])
    assert float(off.max()) < 5.0, off.describe()  # GCJ-02 read as it is would be hundreds of metres off
