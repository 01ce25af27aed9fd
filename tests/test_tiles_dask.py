"""Tile exports rendered on a Dask cluster are the in-process exports, byte for byte.

The tile set is the one ``gridgeo tiles export`` builds from the town sample (grid levels, stations,
event counts); a two-worker LocalCluster renders runs of tiles, and the directory, the MBTiles file and
the PMTiles file it writes are compared with those written in this process, byte for byte.
"""

import pickle
import warnings

import pytest
import shapely

from gridgeo.tiles import TileLayer, TileSet, directory, event_counts, export, grid_layers, station_layer

LOW, HIGH = 8, 15


@pytest.fixture(scope="module")
def client(dask_client):
    return dask_client


@pytest.fixture(scope="module")
def tileset(sample):
    counts = event_counts(sample.events, sample.grids, level="grid2", by="category")
    return TileSet([*grid_layers(sample.grids), station_layer(sample.stations),
                    TileLayer(counts, "events", minzoom=11, maxzoom=16)], version="test")


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name", ["tiles", "jinjiang.mbtiles", "jinjiang.pmtiles"])
def test_an_export_rendered_on_dask_is_the_same_bytes(tileset, client, tmp_path, name):
    here = export(tileset, tmp_path / "here" / name, minzoom=LOW, maxzoom=HIGH)
    there = export(tileset, tmp_path / "dask" / name, minzoom=LOW, maxzoom=HIGH, client=client)
    if here.is_dir():
        ours, theirs = files(here), files(there)
        assert sum(k.endswith(".pbf") for k in ours) > 2 * directory._RUN_MIN  # several runs, on both workers
        assert ours.keys() == theirs.keys()
        assert all(ours[k] == theirs[k] for k in ours)
    else:
        assert here.stat().st_size > 100_000
        assert here.read_bytes() == there.read_bytes()


def test_kept_zoom_geometry_reaches_the_workers(sample, client, tmp_path):
    """A tile set whose ``simplified`` is a closure (it does not pickle) renders the geometry it keeps."""
    grids = sample.grids[sample.grids["level"] == "grid1"]
    layer = TileLayer(grids, "grid1", minzoom=10, maxzoom=12, fields=["code"])
    made = TileSet(layer, version="kept")
    # kept geometry that differs from what simplifying again gives: each unit's convex hull
    hulls = {z: shapely.convex_hull(made.zoom_geometry("grid1", z)) for z in range(10, 13)}
    kept = TileSet(layer, version="kept", simplified=lambda name, z: hulls.get(z))
    with pytest.raises(Exception):
        pickle.dumps(kept)
    here = export(kept, tmp_path / "here" / "grid1.mbtiles")  # the name is in the metadata: the same one
    there = export(kept, tmp_path / "dask" / "grid1.mbtiles", client=client)
    assert here.read_bytes() == there.read_bytes()
    assert here.read_bytes() != export(made, tmp_path / "made" / "grid1.mbtiles").read_bytes()


def test_a_warning_on_the_workers_is_raised_here_once(sample, client, tmp_path):
    grids = sample.grids[sample.grids["level"] == "grid2"].copy()
    first, second = grids.index[:2]
    grids.loc[first, "geometry"] = grids.loc[second, "geometry"].buffer(1e-4)  # overlaps: no coverage
    tiles = TileSet(TileLayer(grids, "grid2", minzoom=11, maxzoom=13, fields=["code"]))
    with warnings.catch_warnings(record=True) as here:
        warnings.simplefilter("always")
        here_file = export(tiles, tmp_path / "here" / "grid2.pmtiles")
    with warnings.catch_warnings(record=True) as there:
        warnings.simplefilter("always")
        there_file = export(tiles, tmp_path / "dask" / "grid2.pmtiles", client=client)
    coverage = [str(w.message) for w in there if "not a valid polygon coverage" in str(w.message)]
    assert len(coverage) == 1
    assert coverage == [str(w.message) for w in here if "not a valid polygon coverage" in str(w.message)]
    assert here_file.read_bytes() == there_file.read_bytes()
