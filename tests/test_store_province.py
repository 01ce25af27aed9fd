"""A province in PostGIS: one county's pages, counts and plans, and what a bulk load leaves for the planner.

The province is two copies of the committed town sample side by side
(:func:`gridgeo.sample.province`), loaded into PostGIS and into a GeoPackage.
References are independent of PostGIS: shapely's ``intersects`` on the loaded
frames, sorted by pandas, and the GeoPackage store (SQLite plans its own reads).
"""

from __future__ import annotations

import pandas as pd
import pytest
import shapely

import gridgeo.sample
import gridgeo.store as gstore

pytestmark = pytest.mark.postgis

KEYS = {"addresses": "addr_id", "roads": "segment_id", "grid2": "code", "events": "event_id"}
COUNTY = "350582"  # copy 0 of the province: the town itself, last in key order (the copy is 350501)


@pytest.fixture(scope="module")
def province(sample):
    return gridgeo.sample.province(sample, 2)


def _layers(p):
    return {"grids": p.grids, "stations": p.stations, "addresses": p.addresses, "events": p.events,
            "roads": p.roads}


@pytest.fixture(scope="module")
def stores(postgis, province, tmp_path_factory):
    """The province in PostGIS and in a GeoPackage, with a second revision of the addresses
    (every tenth household count changed) so that reads at revision 1 look in the history too."""
    url = postgis.new_database("province")
    path = tmp_path_factory.mktemp("province") / "province.gpkg"
    changed = province.addresses.copy()
    changed.loc[changed.index[::10], "households"] += 1
    out = {}
    for name, where in (("postgis", url), ("gpkg", str(path))):
        store = gstore.open(where, create=True)
        store.load(_layers(province), author="网格办", progress=False)
        store.load({"addresses": changed}, author="网格办", progress=False)
        out[name] = store
    yield out
    for store in out.values():
        store.close()


def _county_box(province):
    units = province.grids[province.grids["code"].str.startswith(COUNTY)]
    return tuple(float(v) for v in units.total_bounds)


def _plan(store, sql, params) -> str:
    return "\n".join(r[0] for r in store._db.query("EXPLAIN " + sql, params))


@pytest.mark.parametrize("layer", ["addresses", "roads", "events"])
def test_a_countys_page_is_read_box_first_and_is_the_page_shapely_gives(stores, province, layer):
    """A county's box covers under half of the province's extent: PostGIS reads the box's rows
    from the GiST index first instead of walking the key's index through the other county's rows;
    the pages are those of shapely's intersects sorted by the key, and the GeoPackage's."""
    pg, gpkg = stores["postgis"], stores["gpkg"]
    key = KEYS[layer]
    box = _county_box(province)
    frame = pg.read(layer, columns=[key])
    hit = sorted(frame[key][shapely.intersects(frame.geometry.array, shapely.box(*box))])
    assert 0 < len(hit) < len(frame)
    if layer != "roads":  # the copy's codes (350501...) come before the county's (350582...); road ids not
        assert min(hit) > min(frame[key])

    assert pg._db.selective_box(layer, box)
    sql, params = pg._select(layer, [key, "revision"], [], [], revision=None, bbox=box, limit=50, offset=0)
    plan = _plan(pg, sql, params)
    assert "MATERIALIZED" in sql and f"{layer}_geom_gist" in plan, plan
    assert f"Index Scan using {layer}_{key}" not in plan, plan

    for limit, offset in ((50, 0), (50, 30), (7, len(hit) - 3), (10, len(hit) + 5)):
        got = pg.read(layer, bbox=box, limit=limit, offset=offset)
        assert got[key].tolist() == hit[offset:offset + limit], (limit, offset)
        other = gpkg.read(layer, bbox=box, limit=limit, offset=offset)
        pd.testing.assert_frame_equal(got.drop(columns="geometry"), other.drop(columns="geometry"))
        assert got.geometry.geom_equals_exact(other.geometry, 0).all()
    assert pg.count(layer, bbox=box) == gpkg.count(layer, bbox=box) == len(hit)


def test_a_box_first_page_keeps_the_sort_order_and_reads_the_history(stores, province):
    """``sortby`` (missing values last, ties by the key) and a read at revision 1 (the current
    table and the history together) give the same page box first as the GeoPackage gives."""
    pg, gpkg = stores["postgis"], stores["gpkg"]
    box = _county_box(province)
    for query in ({"sortby": "-households,address"}, {"sortby": "households"}, {"at": 1}, {"at": 2},
                  {"at": 1, "sortby": "-households"}):
        got = pg.read("addresses", bbox=box, limit=40, offset=25, **query)
        other = gpkg.read("addresses", bbox=box, limit=40, offset=25, **query)
        assert len(got) == 40, query
        pd.testing.assert_frame_equal(got.drop(columns="geometry"), other.drop(columns="geometry"), obj=str(query))
    # the independent reference for one of them: pandas on the frame as loaded
    frame = province.addresses
    inside = frame[shapely.intersects(frame.geometry.array, shapely.box(*box))]
    expected = inside.sort_values(["households", "addr_id"], ascending=[False, True], na_position="last")
    got = pg.read("addresses", bbox=box, limit=40, offset=25, at=1, sortby="-households")
    assert got["addr_id"].tolist() == expected["addr_id"].iloc[25:65].tolist()


def test_a_box_over_most_of_the_layer_keeps_the_walk_along_the_key(stores, province):
    """Around the whole province the page is the first rows in key order: no box-first rewrite."""
    pg = stores["postgis"]
    x0, y0, x1, y1 = province.addresses.total_bounds
    box = (x0 - 0.01, y0 - 0.01, x1 + 0.01, y1 + 0.01)
    assert not pg._db.selective_box("addresses", box)
    sql, _ = pg._select("addresses", ["addr_id", "revision"], [], [], revision=None, bbox=box, limit=20, offset=0)
    assert "MATERIALIZED" not in sql
    assert pg.read("addresses", bbox=box, limit=20)["addr_id"].tolist() == \
        sorted(province.addresses["addr_id"])[:20]


def test_a_bulk_load_leaves_statistics_and_the_connections_run_without_jit(postgis, province):
    """Right after a load (no autovacuum yet) the planner knows the rows: ``ANALYZE`` ran once the
    load committed; a refused load (rows written, then refused) leaves the rows and the planner's
    row counts as they were."""
    url = postgis.new_database("analyzed")
    tables = "('addresses', 'events', 'roads')"
    with gstore.open(url, create=True) as store:
        store.load(_layers(province), author="网格办", progress=False)
        analysed = dict(store._db.query(f"SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                                        f"WHERE relname IN {tables}"))  # by ANALYZE, not autovacuum
        assert analysed == {"addresses": True, "events": True, "roads": True}
        stats = dict(store._db.query(f"SELECT relname, reltuples FROM pg_class WHERE relname IN {tables}"))
        assert stats == pytest.approx({"addresses": len(province.addresses), "events": len(province.events),
                                       "roads": len(province.roads)}, rel=0.02)  # estimated from a sample
        box = store._db.query("SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                              "(SELECT ST_EstimatedExtent('addresses', 'geom') AS e) s")[0]
        assert box == pytest.approx(tuple(province.addresses.total_bounds), abs=1e-3)  # float4 boxes
        assert store._db.query("SHOW jit")[0][0] == "off"

        before = (store.version, store.read("addresses")["addr_id"].tolist(), stats)
        # new addresses (written, analysed) and then events already published: the append is refused
        more = province.addresses.assign(addr_id="X" + province.addresses["addr_id"])
        with pytest.raises(gstore.StoreError, match="already published"):
            store.load({"addresses": more, "events": province.events.iloc[:3]}, mode="append", author="网格办",
                       progress=False)
        after_stats = dict(store._db.query(f"SELECT relname, reltuples FROM pg_class WHERE relname IN {tables}"))
        assert (store.version, store.read("addresses")["addr_id"].tolist(), after_stats) == before
