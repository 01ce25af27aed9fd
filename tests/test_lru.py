"""The service's memory bound (gridgeo.lru, api.services): what it keeps never passes the bound,
what it drops is made again equal, and /coverage/areas is encoded once per version with an ETag."""

from __future__ import annotations

import threading

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from gridgeo.lru import ENTRY_OVERHEAD, LRUCache, nbytes

# --- the estimate, against independent measures ------------------------------------------------------


def test_bytes_and_arrays_count_exactly():
    assert nbytes(b"x" * 10_000) >= 10_000
    assert nbytes(b"x" * 10_000) - 10_000 < 100
    array = np.zeros(12_345)
    assert nbytes(array) == array.nbytes


def test_a_frame_counts_its_text_and_its_coordinates(sample):
    grids = sample.grids
    plain = pd.DataFrame(grids.drop(columns="geometry"))
    # pandas' own deep count for the columns ...
    assert nbytes(plain) == int(plain.memory_usage(deep=True).sum())
    # ... and the geometry at least as much as its WKB (16 bytes a coordinate pair, plus headers),
    # at most a small fixed cost a geometry more
    wkb = sum(len(b) for b in shapely.to_wkb(grids.geometry.array))
    geometry = nbytes(grids) - nbytes(plain)
    coords = int(shapely.get_num_coordinates(grids.geometry.array).sum())
    assert 16 * coords <= geometry <= wkb + 200 * len(grids)


def test_shared_parts_count_once():
    array = np.zeros(100_000)
    assert nbytes([array, array]) < 1.1 * nbytes([array])


def test_a_tile_set_grows_as_zooms_are_read(sample):
    from gridgeo.tiles import TileSet, grid_layers

    tiles = TileSet(grid_layers(sample.grids[sample.grids["level"] == "grid2"]))
    before = tiles.nbytes
    source = tiles.sources["grid2"]
    tiles.zoom_geometry("grid2", 12)
    grown = tiles.nbytes - before
    geoms, _ = source._zooms[12]
    assert grown >= 16 * int(shapely.get_num_coordinates(geoms).sum())


# --- the cache ------------------------------------------------------------------------------------------


def test_least_recently_used_goes_first_and_the_bound_holds():
    rng = np.random.default_rng(1)
    bound = 50_000
    cache = LRUCache(bound)
    order: list[int] = []  # an independent model: keys by last use, and sizes
    sizes = {}
    for _ in range(2_000):
        key = int(rng.integers(0, 40))
        if rng.random() < 0.5 and key in sizes and key in cache:
            assert cache.get(key) is not None
            order.remove(key)
            order.append(key)
        else:
            size = int(rng.integers(100, 15_000))
            cache.put(key, b"x" * size)
            if key in order:
                order.remove(key)
            order.append(key)
            sizes[key] = nbytes(b"x" * size) + ENTRY_OVERHEAD
            while sum(sizes[k] for k in order) > bound:
                order.pop(0)
        assert cache.nbytes <= bound
        assert cache.keys() == order
        assert cache.nbytes == sum(sizes[k] for k in order)


def test_a_value_larger_than_the_bound_is_handed_back_not_kept():
    cache = LRUCache(1_000)
    cache.put("small", b"s" * 100)
    value = cache.get_or_make("big", lambda: b"b" * 5_000)
    assert value == b"b" * 5_000
    assert "big" not in cache and "small" in cache and cache.nbytes <= 1_000


def test_none_is_not_kept_and_a_value_is_made_once_for_many_threads():
    cache = LRUCache(10_000)
    assert cache.get_or_make("pending", lambda: None) is None and "pending" not in cache
    made = []
    gate = threading.Barrier(8)

    def make():
        made.append(1)
        return b"v" * 100

    def ask():
        gate.wait()
        assert cache.get_or_make("k", make) == b"v" * 100

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1


def test_settle_measures_growing_values_again():
    class Growing:
        def __init__(self):
            self.size = 100

        @property
        def nbytes(self):
            return self.size

    cache = LRUCache(2_000)
    cache.put("old", b"o" * 500)
    grows = Growing()
    cache.put("grows", grows)
    grows.size = 1_400
    cache.settle()
    assert cache.nbytes <= 2_000
    assert "old" not in cache and cache.get("grows") is grows


# --- the service ----------------------------------------------------------------------------------------


MAP_REQUESTS = [
    "/map/config.json", "/stats/grid2", "/stats/village", "/stats/town", "/coverage?minutes=15",
    "/coverage?minutes=5&level=village", "/map/served/15.json", "/map/labels/grid2.json", "/events/heat",
    "/coverage/areas?minutes=15", "/coverage/areas?minutes=10&kind=grid2_station",
]


def _tiles_of(sample) -> list[str]:
    """Tiles over the middle of the sample's grids, of every grid level and the stations."""
    from gridgeo.tiles._grid import TMS

    middle = sample.grids[sample.grids["level"] == "grid2"].geometry.iloc[len(sample.grids) // 4]
    point = middle.representative_point()
    out = []
    for layer, zooms in (("town", (9, 11)), ("village", (12,)), ("grid1", (13,)), ("grid2", (14, 15)),
                         ("grid3", (15,)), ("stations", (14,)), ("events", (13,))):
        for z in zooms:
            t = TMS.tile(point.x, point.y, z)
            out.append(f"/tiles/{layer}/{z}/{t.x}/{t.y}.mvt")
    return out


@pytest.fixture(scope="module")
def small_client(api_settings):
    """The service with room for a few values only: every request drops others."""
    from fastapi.testclient import TestClient

    from api import create_app

    settings = api_settings.model_copy(update={"cache_mb": 2, "tile_cache_bytes": 0})
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def test_the_service_keeps_within_its_bound_and_answers_alike(small_client, client, sample):
    services = small_client.app.state.services
    bound = services.kept_values.max_bytes
    assert bound == 2 * 2**20
    for _ in range(2):
        for path in MAP_REQUESTS + _tiles_of(sample):
            small, large = small_client.get(path), client.get(path)
            assert small.status_code == large.status_code, path
            assert small.status_code in (200, 204), (path, small.text[:200])
            assert small.content == large.content, path  # dropped values are made again equal
            assert services.kept_values.nbytes <= bound, path
    assert services.kept_values.evictions > 0  # the bound was reached: some answers were made twice


def test_service_areas_are_encoded_once_with_an_etag(client, sample):
    services = client.app.state.services
    first = client.get("/coverage/areas", params={"minutes": 10, "kind": ["grid3_point", "grid2_station"]})
    assert first.status_code == 200 and first.headers["content-type"] == "application/geo+json"
    etag = first.headers["etag"]
    version = services.version
    kept = [k for k in services.kept_values.keys() if k[0] == version and "grid3_point" in str(k[1])]
    assert kept == [(version, "areas:10:grid2_station,grid3_point")]  # the kinds' order does not matter
    again = client.get("/coverage/areas", params={"minutes": 10, "kind": ["grid2_station", "grid3_point"]})
    assert again.content == first.content and again.headers["etag"] == etag
    # the body is the library's service areas of those kinds, as GeoJSON
    areas = services.kept.service_areas()
    chosen = areas[(areas["circle"] == 10) & ~areas.geometry.is_empty & areas["kind"].isin(["grid3_point",
                                                                                             "grid2_station"])]
    body = first.json()
    assert [f["properties"]["station_id"] for f in body["features"]] == chosen["station_id"].tolist()
    got = gpd.GeoDataFrame.from_features(body["features"], crs=4490)
    assert shapely.equals_exact(got.geometry.array, chosen.geometry.array, tolerance=1e-6).all()
    # a repeat with the tag is a 304 without a body; another life circle has another tag
    same = client.get("/coverage/areas", params={"minutes": 10, "kind": ["grid2_station", "grid3_point"]},
                      headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    other = client.get("/coverage/areas", params={"minutes": 15}, headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


def test_docstring_examples_run():
    import doctest

    import gridgeo.lru

    result = doctest.testmod(gridgeo.lru, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 5
