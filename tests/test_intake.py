"""gridgeo.intake and ``gridgeo load``: an office's own files, and data nobody here made.

Every file is written the way offices write them (tests/office_files.py) and
goes in through the command line, as a user loads it. What comes out is
checked against the sample it was made from (codes digit for digit,
geometries within a centimetre), and against independent computations: a
spatial join for stations in their grids, pyogrio alone for what GDAL makes
of wide .dbf numbers. Every refusal leaves the store and the input files
byte-identical, on both backends.
"""

from __future__ import annotations

import doctest
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from typer.testing import CliRunner

import gridgeo.store as gstore
from gridgeo import crs as gcrs
from gridgeo import intake, io
from gridgeo.cli import app
from office_files import KIND_LABELS, digest, excel_mangled_csv, grid_shapefile, station_table


def load(*args):
    result = CliRunner().invoke(app, ["load", *map(str, args), "--no-progress", "--author", "网格办"])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def fingerprint(url) -> str:
    """What a store holds, exactly: the GeoPackage's bytes, or every PostGIS table's rows."""
    if not gstore.is_postgis(url):
        return digest(url)
    import psycopg

    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")]
        parts = []
        for table in tables:
            row = conn.execute(f'SELECT count(*), md5(coalesce(string_agg(t::text, \'|\' ORDER BY t::text), \'\')) '
                               f'FROM "{table}" t').fetchone()
            parts.append(f"{table}:{row[0]}:{row[1]}")
    return "\n".join(parts)


# --- an office's grid shapefile ----------------------------------------------------------


def test_a_gbk_shapefile_in_a_zone_with_chinese_fields_loads_exactly(url, tmp_path, sample):
    grids = sample.grids[sample.grids["level"].isin(["grid2", "grid3"])]
    path = grid_shapefile(tmp_path, grids)
    assert pyogrio.read_info(path)["ogr_types"][0] == "OFTReal"  # GDAL alone reads the codes as floats
    before = gstore.open(url).counts()
    code, out = load(path, "--store", url)
    assert code == 0, out
    assert "code ← 网格编码" in out and "level ← 网格等级" in out and "grid2 128, grid3 90" in out
    with gstore.open(url) as store:
        after = store.counts()
        stored = store.read("grids", level=["grid2", "grid3"])
        assert store.count("grids", where={"revision": 1}) == before["town"] + before["village"] + before["grid1"]
    assert after == before
    # every code digit for digit, the 19-digit level-3 codes included, with its name, level and parent
    want = grids.set_index("code")[["name", "level", "parent"]].sort_index()
    got = stored.set_index("code")[["name", "level", "parent"]].sort_index()
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    assert got.index.str.len().max() == 19
    # geometries back within a centimetre of the sample's (GK zone 39 and back)
    ref = grids.set_index("code").geometry.reindex(stored["code"])
    metric = gcrs.metric_crs(grids)
    gap = shapely.hausdorff_distance(np.asarray(stored.to_crs(metric).geometry.array),
                                     np.asarray(ref.to_crs(metric).array))
    assert gap.max() < 0.01


def test_a_whole_city_in_number_fields_reads_the_top_levels_parent_0_as_none(tmp_path, sample):
    """A number field cannot be empty: the town's parent comes out of an office's GIS as 0."""
    path = grid_shapefile(tmp_path, sample.grids)
    assert (io.read(path)["上级编码"] == 0).sum() == 1  # a number field: the town's parent is 0
    got = intake.inspect(path)
    assert got.ok, got.problems()
    assert [f.kind for f in got.findings if f.severity == "note"].count("zero_parent") == 1
    want = sample.grids.set_index("code")[["name", "level", "parent"]].sort_index()
    pd.testing.assert_frame_equal(got.frame.set_index("code")[["name", "level", "parent"]].sort_index(), want,
                                  check_dtype=False)


def test_a_level_label_no_scheme_knows_is_not_blamed_on_the_scheme(tmp_path, sample):
    """A typo in one level label: no other built-in scheme reads the file either, so none is named."""
    frame = io.read(grid_shapefile(tmp_path, sample.grids[sample.grids["level"] == "grid2"]))
    assert (frame["网格等级"] == "二级网格").all()
    frame.loc[3, "网格等级"] = "二级网络"
    io.write(frame, tmp_path / "错字.gpkg")
    got = intake.inspect(tmp_path / "错字.gpkg")
    assert {f.kind for f in got.errors} == {"unknown_level"}, got.problems()


def test_wide_dbf_number_fields_are_read_as_their_exact_digits(tmp_path, sample):
    grid3 = sample.grids[sample.grids["level"] == "grid3"]
    path = grid_shapefile(tmp_path, grid3)
    floats = pyogrio.read_dataframe(path)
    assert floats.iloc[:, 0].nunique() < len(grid3)  # as floats, distinct codes collide
    read = io.read(path)
    assert read["网格编码"].tolist() == grid3["code"].tolist()
    assert read["网格编码"].nunique() == len(grid3) == 90


def test_levels_from_code_lengths_and_parents_from_prefixes(tmp_path, sample):
    grids = sample.grids[sample.grids["level"].isin(["grid1", "grid2"])]
    plain = gpd.GeoDataFrame({"编码": grids["code"].to_numpy(), "名称": grids["name"].to_numpy()},
                             geometry=grids.geometry.to_numpy(), crs=4490)
    path = tmp_path / "村网格.geojson"
    io.write(plain, path)
    got = intake.inspect(path)
    assert got.ok, got.problems()
    assert got.frame["level"].tolist() == grids["level"].tolist()
    assert got.frame["parent"].tolist() == grids["parent"].tolist()
    assert {f.kind for f in got.findings} >= {"level_from_code", "parent_from_code"}


def test_a_mapping_from_a_dry_run_is_reused(tmp_path, sample, url):
    grids = sample.grids[sample.grids["level"] == "grid1"]
    odd = gpd.GeoDataFrame({"WG_DM": grids["code"].to_numpy(), "WG_MC": grids["name"].to_numpy(),
                            "JB": ["一级"] * len(grids)}, geometry=grids.geometry.to_numpy(), crs=4490)
    path = tmp_path / "grid1_2026.geojson"
    io.write(odd, path)
    code, out = load(path, "--store", url, "--dry-run")
    assert code == 1 and "no column for code among" in out  # WG_DM is no name offices usually use
    mapping = tmp_path / "mapping.json"
    code, out = load(path, "--store", url, "--dry-run", "--map", "code=WG_DM", "--map", "name=WG_MC",
                     "--map", "level=JB", "--save-mapping", mapping)
    assert code == 0, out
    assert "dry run: nothing was changed" in out and "grid1: replaces 31 of 31" in out
    saved = json.loads(mapping.read_text(encoding="utf-8"))
    assert saved["columns"] == {"code": "WG_DM", "name": "WG_MC", "level": "JB"} and saved["kind"] == "grids"
    code, out = load(path, "--store", url, "--mapping", mapping)
    assert code == 0, out
    with gstore.open(url) as store:
        assert sorted(store.read("grid1")["code"]) == sorted(grids["code"])


# --- station sheets ------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["amap_excel", "baidu_gbk_csv", "amap_location_csv", "wgs84_english_csv"])
def test_station_sheets_load_in_the_right_place(form, tmp_path, sample, url):
    stations = sample.stations
    if form == "amap_excel":
        path, extra = tmp_path / "站点.xlsx", ["--crs", "gcj02"]
        station_table(stations, "gcj02").to_excel(path, index=False)
    elif form == "baidu_gbk_csv":  # no --crs: 百度经度/百度纬度 say it
        path, extra = tmp_path / "服务站.csv", []
        station_table(stations, "bd09", headers=("站点编号", "站点名称", "站点类型", "所属网格编码", "百度经度",
                                                 "百度纬度")).to_csv(path, index=False, encoding="gbk")
    elif form == "amap_location_csv":
        path, extra = tmp_path / "stations.csv", ["--crs", "gcj02"]
        station_table(stations, "gcj02", headers=("id", "name", "type", "grid", "location"),
                      location=True).to_csv(path, index=False)
    else:
        path, extra = tmp_path / "points.csv", ["--crs", "wgs84", "--layer", "stations", "--lon", "E", "--lat", "N"]
        station_table(stations, "wgs84", headers=("station_id", "name", "kind", "grid_code", "E", "N")
                      ).to_csv(path, index=False)
    before = digest(path)
    code, out = load(path, "--store", url, *extra)
    assert code == 0, out
    assert digest(path) == before
    with gstore.open(url) as store:
        got = store.read("stations").set_index("station_id").loc[stations["station_id"]]
    assert (got["kind"].to_numpy() == stations["kind"].to_numpy()).all()
    assert (got["grid_code"].to_numpy() == stations["grid_code"].to_numpy()).all()
    metric = gcrs.metric_crs(stations)
    moved = gpd.GeoSeries(got.geometry.array, crs=4490).to_crs(metric).distance(
        stations.geometry.to_crs(metric), align=False)
    assert moved.max() < 0.2  # 6 decimals of a degree are 0.1 m


def test_amap_stations_declared_wgs84_are_caught_with_the_offset_and_the_fix(url, tmp_path, sample):
    path = tmp_path / "站点.xlsx"
    station_table(sample.stations, "gcj02").to_excel(path, index=False)
    before = fingerprint(url), digest(path)
    code, out = load(path, "--store", url, "--crs", "wgs84")
    assert code == 1
    assert "pass --crs gcj02" in out and "请用 --crs gcj02" in out
    # the figures in the message, against an independent spatial join of the stations as declared
    as_declared = gpd.GeoDataFrame({"grid_code": sample.stations["grid_code"].to_numpy()},
                                   geometry=gpd.points_from_xy(*station_xy(path)), crs=4490)
    inside = gpd.sjoin(as_declared, sample.grids[["code", "geometry"]], predicate="within")
    in_own = (inside["code"] == inside["grid_code"]).groupby(level=0).any().reindex(as_declared.index,
                                                                                    fill_value=False)
    outside = int((~in_own).sum())
    assert outside == 90 and f"({outside} of 104)" in out
    shift = int(out.split("sits ")[1].split(" m off")[0].replace(",", ""))
    assert 540 <= shift <= 600
    assert (fingerprint(url), digest(path)) == before


def station_xy(path):
    table = pd.read_excel(path)
    return table["经度"].to_numpy(), table["纬度"].to_numpy()


def test_detect_offset_as_a_library_function(sample):
    amap = gcrs.convert(sample.stations, "cgcs2000", "gcj02").set_crs(4490, allow_override=True)
    fit = intake.detect_offset(amap, sample.grids, declared="wgs84").set_index("system")
    assert fit.attrs["better"] == "gcj02"
    assert fit.loc["wgs84", "checked"] == 104 and round(fit.loc["wgs84", "misfit"] * 104) == 90
    assert fit.loc["gcj02", "misfit"] == 0
    # the right system fits, and nothing is flagged
    right = intake.detect_offset(sample.stations, sample.grids, declared="cgcs2000")
    assert right.attrs["better"] is None and right.set_index("system").loc["cgcs2000", "misfit"] == 0
    # level-2 grids drawn on Amap, checked against their parents
    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    others = sample.grids[sample.grids["level"] != "grid2"]
    shifted = gcrs.convert(grid2, "cgcs2000", "gcj02").set_crs(4490, allow_override=True)
    assert intake.detect_offset(shifted, others, declared="wgs84").attrs["better"] == "gcj02"


# --- refusals change nothing ----------------------------------------------------------------


def _empty_roads(folder, sample):
    path = Path(folder) / "roads.geojson"
    io.write(sample.roads.iloc[:0], path)
    return path, [], "holds no rows"


def _header_only_events(folder, sample):
    path = Path(folder) / "events.csv"
    path.write_text("事件编号,事件类型,状态,上报时间,经度,纬度\n", encoding="utf-8")
    return path, ["--crs", "wgs84"], "holds no rows"


def _wrong_zone(folder, sample):
    grids = sample.grids[sample.grids["level"] == "grid2"]
    return grid_shapefile(folder, grids, name="错带.shp", prj_epsg=4549), [], "pass --crs 'EPSG:4527'"


def _overlapping_grids(folder, sample):
    grids = sample.grids[sample.grids["level"] == "grid2"].copy()
    first = grids.index[0]
    grids.loc[first, "geometry"] = grids.loc[first, "geometry"].buffer(0.002)
    path = Path(folder) / "grid2.geojson"
    io.write(grids, path)
    return path, [], "overlap"


def _mangled_codes(folder, sample):
    return excel_mangled_csv(folder, sample.stations), ["--crs", "gcj02"], "lost digits"


def _unknown_level_labels(folder, sample):
    grids = sample.grids[sample.grids["level"] == "grid1"]
    frame = gpd.GeoDataFrame({"网格编码": grids["code"].to_numpy(), "网格名称": grids["name"].to_numpy(),
                              "网格等级": ["片区"] * len(grids)}, geometry=grids.geometry.to_numpy(), crs=4490)
    path = Path(folder) / "片区.geojson"
    io.write(frame, path)
    return path, [], "--value level:片区=<level>"


@pytest.mark.parametrize("case", [_empty_roads, _header_only_events, _wrong_zone, _overlapping_grids,
                                  _mangled_codes, _unknown_level_labels])
def test_every_refusal_leaves_store_and_input_byte_identical(case, url, tmp_path, sample):
    path, extra, said = case(tmp_path, sample)
    before = fingerprint(url), digest(path)
    code, out = load(path, "--store", url, *extra)
    assert code == 1, out
    assert said in out and "nothing was loaded" in out or "refused" in out
    assert said in out
    assert (fingerprint(url), digest(path)) == before
    with gstore.open(url) as store:  # and nothing non-finite anywhere
        for kind in ("grids", "stations"):
            xy = shapely.get_coordinates(np.asarray(store.read(kind).geometry.array))
            assert np.isfinite(xy).all()


def test_a_file_of_one_level_replaces_that_level_under_its_parents_only(url, tmp_path, sample):
    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    village = grid2["code"].str[:12].value_counts().index[0]
    one = grid2[grid2["code"].str.startswith(village)].assign(name=lambda f: f["name"] + "（新）")
    path = tmp_path / "grid2.geojson"
    io.write(one, path)
    code, out = load(path, "--store", url)
    assert code == 0, out
    with gstore.open(url) as store:
        now = store.read("grid2")
        assert len(now) == len(grid2)
        mine = now["code"].str.startswith(village)
        assert set(now.loc[mine, "revision"]) == {2} and now.loc[mine, "name"].str.endswith("（新）").all()
        assert set(now.loc[~mine, "revision"]) == {1}
        assert store.counts()["grid3"] == 90 and store.count("village") == 28
        before = fingerprint(url)
    # the same file as the whole level would leave every other village uncovered: refused
    code, out = load(path, "--store", url, "--scope", "level")
    assert code == 1 and "uncovered" in out
    assert fingerprint(url) == before


def test_non_finite_coordinates_never_reach_a_store(tmp_path, sample):
    stations = sample.stations.copy()
    stations.loc[stations.index[3], "geometry"] = shapely.Point(np.inf, 24.7)
    with gstore.open(tmp_path / "s.gpkg", create=True) as store:
        with pytest.raises(gcrs.CRSError, match="not finite"):
            store.load({"stations": stations}, author="测试", progress=False)
        assert store.version == 0


def test_a_killed_first_load_leaves_nothing_behind_after_the_next(tmp_path):
    store = tmp_path / "new.gpkg"
    proc = subprocess.Popen([sys.executable, "-m", "gridgeo", "load", "sample_geojson", "--store", str(store),
                             "--no-progress"], cwd=Path(__file__).parent.parent)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".loading-*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert list(tmp_path.glob(".loading-*")), "the load never staged"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".loading-*")) and not store.exists()
    code, out = load("sample_geojson", "--store", store)
    assert code == 0, out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.gpkg"]


# --- data nobody here made --------------------------------------------------------------------


def test_libpysal_polygons_are_refused_with_located_reasons(tmp_path, url):
    import libpysal.examples

    tokyo = Path(libpysal.examples.__file__).parent / "tokyo" / "tokyomet262.shp"
    before = fingerprint(url), digest(tokyo)
    code, out = load(tokyo, "--store", url, "--layer", "grids")
    assert code == 1 and "no column for code, name" in out and "'GEOCODE'" in out
    code, out = load(tokyo, "--store", url, "--layer", "grids", "--map", "code=GEOCODE", "--map", "name=AREANAME")
    assert code == 1 and "far_from_store" in out and "km from the store's grids" in out
    assert (fingerprint(url), digest(tokyo)) == before
    # into an empty store: codes of no level's width, named with their lines
    got = intake.inspect(tokyo, kind="grids", columns={"code": "GEOCODE", "name": "AREANAME"})
    assert not got.ok
    unknown = [f for f in got.findings if f.kind == "unknown_level"]
    assert unknown and "'08203'" in unknown[0].message_en and unknown[0].rows[0] == 1
    outside = [f for f in got.findings if f.kind == "outside_china"]
    assert outside and outside[0].severity == "warning"


def test_docstring_examples_run():
    import gridgeo.intake.aliases
    import gridgeo.intake.codes
    import gridgeo.intake.coordinates
    import gridgeo.intake.inspection
    import gridgeo.intake.mapping
    import gridgeo.intake.offset

    here = os.getcwd()
    try:
        os.chdir(Path(__file__).parent.parent)
        for module in (gridgeo.intake.aliases, gridgeo.intake.codes, gridgeo.intake.coordinates,
                       gridgeo.intake.inspection, gridgeo.intake.mapping, gridgeo.intake.offset):
            result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
            assert result.failed == 0, module.__name__
    finally:
        os.chdir(here)


def test_kinds_of_the_office_labels_are_the_schema_kinds():
    from gridgeo.intake.aliases import STATION_KIND_LABELS, normal

    assert {STATION_KIND_LABELS[normal(v)] for v in KIND_LABELS.values()} == set(KIND_LABELS)


def test_address_and_event_exports_with_chinese_headers_and_labels(url, tmp_path, sample):
    from gridgeo.schema import EVENT_CATEGORIES, EVENT_STATUSES

    addresses = sample.addresses.iloc[:3000]
    table = pd.DataFrame({"地址编码": addresses["addr_id"].to_numpy(), "标准地址": addresses["address"].to_numpy(),
                          "户数": addresses["households"].to_numpy(), "人口": addresses["population"].to_numpy(),
                          "单位数": addresses["units"].to_numpy(), "经度": addresses.geometry.x.round(7).to_numpy(),
                          "纬度": addresses.geometry.y.round(7).to_numpy()})
    path = tmp_path / "一标三实地址.csv"
    table.to_csv(path, index=False, encoding="gbk")
    events = sample.events.iloc[:2000]
    stamp = events["reported_at"].dt.strftime("%Y年%m月%d日 %H:%M:%S")  # as a Chinese system exports times
    sheet = pd.DataFrame({"事件编号": events["event_id"].to_numpy(),
                          "事件类型": events["category"].map(lambda c: EVENT_CATEGORIES[c][0]).to_numpy(),
                          "办理状态": events["status"].map(lambda c: EVENT_STATUSES[c][0]).to_numpy(),
                          "上报时间": stamp.to_numpy(), "办结时间": events["closed_at"].to_numpy(),
                          "经度": events.geometry.x.to_numpy(), "纬度": events.geometry.y.to_numpy()})
    book = tmp_path / "网格事件.xlsx"
    sheet.to_excel(book, index=False)
    code, out = load(path, book, "--store", url, "--crs", "cgcs2000")
    assert code == 0, out
    with gstore.open(url) as store:
        got = store.read("addresses").set_index("addr_id").loc[addresses["addr_id"]]
        ev = store.read("events").set_index("event_id").loc[events["event_id"]]
    assert (got[["households", "population", "units"]].to_numpy() == addresses[["households", "population",
                                                                                 "units"]].to_numpy()).all()
    assert (got["address"].to_numpy() == addresses["address"].to_numpy()).all()
    assert (ev["category"].to_numpy() == events["category"].to_numpy()).all()
    assert (ev["status"].to_numpy() == events["status"].to_numpy()).all()
    assert (ev["reported_at"].to_numpy() == events["reported_at"].dt.floor("s").to_numpy()).all()
    closed = events["closed_at"].notna().to_numpy()
    assert (abs(ev["closed_at"].to_numpy()[closed] - events["closed_at"].to_numpy()[closed])
            < np.timedelta64(1, "s")).all()
