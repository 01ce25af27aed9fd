"""Other offices' boundaries in the store: named sets (警格, 学区) beside the grids.

On both backends, through the library and through ``gridgeo load`` as an office
loads its files. References are independent of the store: the sample's
precincts themselves, shapely's equality, and the file's own bytes and the
store's (a refused load leaves both byte-identical).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

import gridgeo.store as gstore
from gridgeo import crs as gcrs
from gridgeo import io
from office_files import digest
from test_intake import fingerprint, load

SET = "警格"


def _precincts(sample):
    return sample.boundaries()


def test_a_boundary_set_round_trips_with_history_and_leaves_other_sets_alone(store, sample):
    precincts = _precincts(sample)
    before = store.version
    revision = store.load({"boundaries": precincts}, author="公安分局", progress=False)
    assert revision == store.version == before + 1
    assert store.boundary_sets() == [SET] and SET in store.collections()
    got = store.read(SET).sort_values("boundary_id").reset_index(drop=True)
    expected = precincts.sort_values("boundary_id").reset_index(drop=True)
    assert got["boundary_id"].tolist() == expected["boundary_id"].tolist()
    assert got["name"].tolist() == expected["name"].tolist() and got["name"].str.contains("警格").all()
    assert (got["boundary_key"] == SET + "/" + got["boundary_id"]).all()
    assert shapely.equals(got.geometry.array, expected.geometry.array).all()
    assert store.count(SET) == store.counts()[SET] == len(precincts)
    # a second set, then the first replaced by a smaller file: the second is untouched
    school = precincts.iloc[:5].assign(boundary_set="学区")
    store.load({"boundaries": school}, author="教育局", progress=False)
    smaller = precincts.iloc[:10].assign(name=lambda f: f["name"] + "（调整）")
    third = store.load({"boundaries": smaller}, author="公安分局", progress=False)
    assert store.counts()[SET] == 10 and store.counts()["学区"] == 5
    assert set(store.read("学区")["revision"]) == {revision + 1}
    # the replaced precincts are in the history, readable as they were
    old = store.read(SET, at=revision)
    assert len(old) == len(precincts) and not old["name"].str.endswith("（调整）").any()
    h = store.history(SET, code=f"{SET}/{precincts['boundary_id'].iloc[0]}")
    assert h["revision"].tolist() == [revision, third] and int(h["retired"].iloc[0]) == third
    assert store.audit(revision=third)["what"].iloc[0]["layers"]["boundaries"] == \
        {"added": 0, "changed": 10, "removed": len(precincts) - 10}
    # the same file again changes nothing; a bbox read finds what shapely finds
    assert store.load({"boundaries": smaller}, author="公安分局", progress=False) == third
    box = (118.45, 24.78, 118.47, 24.80)
    expected_ids = smaller.loc[smaller.intersects(shapely.box(*box)), "boundary_id"]
    assert sorted(store.read(SET, bbox=box)["boundary_id"]) == sorted(expected_ids)
    # a rollback to before the change brings the 42 back
    store.rollback(revision + 1, author="管理员")
    assert store.counts()[SET] == len(precincts)


@pytest.mark.parametrize("name", ["grid2", "stations", "a/b", ""])
def test_a_set_cannot_take_the_name_of_a_layer(store, sample, name):
    before = (store.revision, store.version)
    with pytest.raises(gstore.StoreError, match="boundary set"):
        store.load({"boundaries": _precincts(sample).assign(boundary_set=name)}, author="x", progress=False)
    assert (store.revision, store.version) == before


def test_ids_repeated_in_a_set_are_refused_naming_the_rows(store, sample):
    bad = _precincts(sample).copy()
    bad.loc[bad.index[3], "boundary_id"] = bad["boundary_id"].iloc[0]
    with pytest.raises(Exception, match="used by rows"):
        store.load({"boundaries": bad}, author="x", progress=False)
    assert store.boundary_sets() == []


def test_an_older_store_gains_the_boundary_tables_when_opened(url, backend, sample):
    with gstore.open(url) as store:
        with store._db.write() as tx:  # a store of schema version 3: no boundaries
            for table in ("boundaries", "boundaries_history"):
                tx.execute(f"DROP TABLE {table}")
                if backend == "gpkg":
                    tx.execute(f"DROP TABLE rtree_{table}_geom")
                    for registry in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_ogr_contents",
                                     "gpkg_extensions"):
                        tx.execute(f"DELETE FROM {registry} WHERE table_name = ?", (table,))
            tx.execute("UPDATE gridgeo_meta SET value = '3' WHERE key = 'schema_version'")
    with gstore.open(url) as store:
        assert store.schema_version == gstore.SCHEMA_VERSION == 5
        store.load({"boundaries": _precincts(sample)}, author="公安分局", progress=False)
        assert store.count(SET) == len(sample.precincts)
        assert len(store.read(SET, bbox=tuple(sample.precincts.total_bounds))) == len(sample.precincts)
    if backend == "gpkg":  # GDAL sees the new tables as layers, their R-trees sound
        import pyogrio
        import sqlite3

        assert len(pyogrio.read_dataframe(url, layer="boundaries")) == len(sample.precincts)
        with sqlite3.connect(url) as conn:
            assert conn.execute("SELECT rtreecheck('rtree_boundaries_geom')").fetchone()[0] == "ok"


# --- through `gridgeo load`, as an office loads its file --------------------------------------


def _office_shapefile(folder, sample, *, name="派出所警格.shp"):
    """The precincts as a police station's GIS writes them: GBK, Chinese field names, drawn on Amap
    (GCJ-02) and saved without a .prj."""
    frame = sample.precincts.rename(columns={"precinct_id": "警格编号", "name": "警格名称", "station_id": "派出所"})
    frame = gcrs.convert(frame.drop(columns=["town"]), "cgcs2000", "gcj02")
    frame = gpd.GeoDataFrame(frame, geometry="geometry", crs=None)
    path = Path(folder) / name
    frame.to_file(path, encoding="gbk")
    for leftover in path.parent.glob(path.stem + ".prj"):
        leftover.unlink()
    return path


def test_cli_loads_an_office_shapefile_as_a_named_set(url, tmp_path, sample):
    path = _office_shapefile(tmp_path, sample)
    code, out = load(path, "--store", url, "--layer", "boundaries", "--name", SET, "--crs", "gcj02")
    assert code == 0, out
    assert "boundary_id ← 警格编号" in out
    with gstore.open(url) as store:
        got = store.read(SET).sort_values("boundary_id").reset_index(drop=True)
        assert store.boundary_sets() == [SET]
    expected = sample.precincts.sort_values("precinct_id").reset_index(drop=True)
    assert got["boundary_id"].tolist() == expected["precinct_id"].tolist()
    assert got["警格名称" if "警格名称" in got else "name"].tolist() == expected["name"].tolist()
    # GCJ-02 converted back: within a few centimetres of the precincts drawn
    metric = gcrs.metric_crs(expected)
    a = gpd.GeoSeries(got.geometry.array, crs=4490).to_crs(metric)
    b = gpd.GeoSeries(expected.geometry.array, crs=4490).to_crs(metric)
    assert float(np.max([x.hausdorff_distance(y) for x, y in zip(a, b)])) < 0.05


def _amap_declared_wgs84(folder, sample):
    return _office_shapefile(folder, sample), ["--layer", "boundaries", "--name", SET, "--crs", "wgs84"], \
        "pass --crs gcj02"


def _empty_set_file(folder, sample):
    path = Path(folder) / "警格.geojson"
    io.write(sample.precincts.iloc[:0], path)
    return path, ["--layer", "boundaries", "--name", SET], "holds no rows"


def _no_set_name(folder, sample):
    path = Path(folder) / "areas.geojson"
    io.write(sample.precincts, path)
    return path, ["--layer", "boundaries"], "--name"


def _set_named_like_a_level(folder, sample):
    path = Path(folder) / "警格.geojson"
    io.write(sample.precincts, path)
    return path, ["--layer", "boundaries", "--name", "grid2"], "cannot be called 'grid2'"


def _repeated_ids(folder, sample):
    frame = sample.precincts.copy()
    frame.loc[frame.index[5], "precinct_id"] = frame["precinct_id"].iloc[0]
    path = Path(folder) / "警格.geojson"
    io.write(frame, path)
    return path, ["--layer", "boundaries", "--name", SET], "used by rows"


@pytest.mark.parametrize("case", [_amap_declared_wgs84, _empty_set_file, _no_set_name, _set_named_like_a_level,
                                  _repeated_ids])
def test_a_refused_boundary_load_leaves_store_and_file_byte_identical(case, url, tmp_path, sample):
    # a set already published: a refused load must not wipe it, nor touch anything else
    with gstore.open(url) as store:
        store.load({"boundaries": _precincts(sample)}, author="公安分局", progress=False)
    path, extra, said = case(tmp_path, sample)
    before = fingerprint(url), digest(path)
    code, out = load(path, "--store", url, *extra)
    assert code == 1, out
    assert said in out and "refused" in out
    assert (fingerprint(url), digest(path)) == before
    with gstore.open(url) as store:
        assert store.counts()[SET] == len(sample.precincts)


def test_gridgeo_load_of_the_sample_holds_its_precincts_as_the_set(empty_url, sample):
    code, out = load(Path(__file__).resolve().parent.parent / "sample_geojson", "--store", empty_url)
    assert code == 0, out
    with gstore.open(empty_url) as store:
        assert store.boundary_sets() == [SET]
        got = store.read(SET)
        assert sorted(got["boundary_id"]) == sorted(sample.precincts["precinct_id"])


# --- the roster: who answers for each grid -----------------------------------------------------


def _roster_sheet(folder, sample, *, name="网格员花名册.xlsx", edit=None):
    """The roster as a grid office keeps it: an Excel sheet with Chinese headers, the police deputy
    written 副网格长 as some offices do, phone numbers typed as numbers."""
    sheet = sample.roster().rename(columns={"grid_code": "网格编码", "name": "姓名", "role": "职务/岗位",
                                            "phone": "联系电话"})
    sheet.loc[sheet["职务/岗位"] == "警格民警", "职务/岗位"] = "副网格长"
    sheet["联系电话"] = sheet["联系电话"].astype("int64")
    if edit is not None:
        sheet = edit(sheet)
    path = Path(folder) / name
    sheet.to_excel(path, index=False)
    return path


def test_a_roster_loads_from_an_office_sheet_and_is_kept_with_history(url, tmp_path, sample):
    expected = sample.roster()
    code, out = load(_roster_sheet(tmp_path, sample), "--store", url)
    assert code == 0, out
    assert "grid_code ← 网格编码" in out and "role ← 职务/岗位" in out
    with gstore.open(url) as store:
        first = store.revision
        got = store.read("roster")
        assert got.geometry.isna().all()  # people, not places
        key = ["grid_code", "role", "name", "phone"]
        assert sorted(map(tuple, got[key].values.tolist())) == sorted(map(tuple, expected[key].values.tolist()))
        assert set(got["role"]) == {"网格长", "专职网格员", "兼职网格员", "警格民警"}
        # every level-2 grid has one head, and those a precinct serves a police deputy
        grid2 = set(sample.level("grid2")["code"])
        assert got[got["role"] == "网格长"].groupby("grid_code").size().reindex(sorted(grid2)).eq(1).all()
        assert set(got.loc[got["role"] == "警格民警", "grid_code"]) == grid2
    # a new roster replaces the old, which stays in the history at its revision
    code, out = load(_roster_sheet(tmp_path, sample, name="花名册2.xlsx", edit=lambda s: s.iloc[10:]),
                     "--store", url)
    assert code == 0, out
    with gstore.open(url) as store:
        assert store.count("roster") == len(expected) - 10
        assert store.count("roster", at=first) == len(expected)
        assert store.audit()["what"].iloc[-1]["layers"]["roster"]["removed"] == 10


def test_a_roster_naming_a_grid_the_store_lacks_is_refused_and_changes_nothing(url, tmp_path, sample):
    def wrong(sheet):
        sheet = sheet.copy()
        sheet.loc[sheet.index[4], "网格编码"] = "3505821069999999"
        return sheet

    path = _roster_sheet(tmp_path, sample, edit=wrong)
    before = fingerprint(url), digest(path)
    code, out = load(path, "--store", url)
    assert code == 1 and "3505821069999999" in out and "line" in out, out
    assert (fingerprint(url), digest(path)) == before
