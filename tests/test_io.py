"""gridgeo.io: real files in tmp_path, read back and compared value by value."""

import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from shapely import Point, box

from gridgeo import io
from gridgeo.crs import CRSError, convert

NAMES = ["晋江市内坑镇", "黎山村第一网格", "紫帽镇"]


@pytest.fixture
def grids():
    """Three polygons (one with a hole) with Chinese text, ints and floats."""
    shapes = [
        box(118.50, 24.80, 118.55, 24.85),
        shapely.Polygon(
            [(118.55, 24.80), (118.60, 24.80), (118.60, 24.85), (118.55, 24.85)],
            holes=[[(118.56, 24.81), (118.57, 24.81), (118.57, 24.82)]],
        ),
        box(118.52, 24.70, 118.58, 24.75),
    ]
    return gpd.GeoDataFrame(
        {
            "code": ["350582102", "350582102201", "350582103"],
            "名称": NAMES,
            "人口": [61234, 3456, 48000],
            "area_km2": [27.5, 1.25, 31.0],
        },
        geometry=shapes,
        crs=4490,
    )


def assert_same(back, expected):
    """Same attributes and (normalised) geometries, within 1e-9 degrees."""
    assert back.crs.to_epsg() == 4490
    assert list(back.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(
        pd.DataFrame(back.drop(columns="geometry")),
        pd.DataFrame(expected.drop(columns="geometry")),
        check_dtype=False,
    )
    assert back.geometry.normalize().geom_equals_exact(
        expected.geometry.normalize(), tolerance=1e-9
    ).all()


def files(folder):
    return sorted(p.name for p in folder.iterdir())


# ----------------------------------------------------------------------------
# Chinese shapefiles
# ----------------------------------------------------------------------------


def anonymous_shapefile(folder, grids, encoding, ldid):
    """A shapefile in `encoding` whose .dbf says nothing (no .cpg, LDID `ldid`)."""
    path = folder / "grids.shp"
    pyogrio.write_dataframe(grids, path, encoding=encoding)
    (folder / "grids.cpg").unlink()
    dbf = bytearray((folder / "grids.dbf").read_bytes())
    dbf[29] = ldid
    (folder / "grids.dbf").write_bytes(dbf)
    return path


@pytest.mark.parametrize("encoding", ["GBK", "UTF-8"])
def test_shapefile_without_cpg_or_ldid_reads_chinese(tmp_path, grids, encoding):
    path = anonymous_shapefile(tmp_path, grids, encoding, ldid=0)
    assert "名称" not in pyogrio.read_dataframe(path).columns  # GDAL alone garbles it
    back = io.read(path)
    assert back["名称"].tolist() == NAMES
    assert_same(back, grids)


@pytest.mark.parametrize("ldid", [0x4D, 0x7A])
def test_gbk_shapefile_named_by_its_language_driver_id(tmp_path, grids, ldid):
    path = anonymous_shapefile(tmp_path, grids, "GBK", ldid=ldid)
    assert io.read(path)["名称"].tolist() == NAMES


def test_gbk_shapefile_in_a_zip(tmp_path, grids):
    anonymous_shapefile(tmp_path, grids, "GBK", ldid=0)
    archive = tmp_path / "grids.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in ("shp", "shx", "dbf", "prj"):
            zf.write(tmp_path / f"grids.{part}", f"交付/grids.{part}")
    assert io.list_layers(archive) == [("grids", "Polygon")]
    assert io.read(archive)["名称"].tolist() == NAMES


def test_utf8_value_cut_mid_character_is_not_taken_for_gbk(tmp_path, grids):
    """Some writers fill a field to its width, cutting the last character:
    still UTF-8, not GBK, and refused plainly rather than read garbled."""
    grids.loc[0, "名称"] = "网格" * 40  # 240 bytes of UTF-8: a field 240 wide
    path = anonymous_shapefile(tmp_path, grids, "UTF-8", ldid=0)
    dbf = bytearray((tmp_path / "grids.dbf").read_bytes())
    start = int.from_bytes(dbf[8:10], "little") + 1 + dbf[32 + 16]  # after 'code'
    assert dbf[start:start + 6] == "网格".encode()
    dbf[start:start + 240] = ("a" + "网格" * 40).encode()[:240]
    (tmp_path / "grids.dbf").write_bytes(dbf)
    with pytest.raises(io.ReadError, match=r"grids\.shp: .* decode as UTF-8 .*cut"):
        io.read(path)


def test_explicit_encoding_wins(tmp_path, grids):
    path = anonymous_shapefile(tmp_path, grids, "GBK", ldid=0x4D)
    latin = io.read(path, encoding="ISO-8859-1")
    garbled = "名称".encode("gbk").decode("latin-1")
    assert latin[garbled].tolist() == [n.encode("gbk").decode("latin-1") for n in NAMES]


# ----------------------------------------------------------------------------
# Round trips
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet", ".fgb"])
def test_round_trip(tmp_path, grids, suffix):
    path = tmp_path / f"grids{suffix}"
    assert io.write(grids, path) == path
    back = io.read(path)
    if suffix == ".fgb":  # FlatGeobuf stores features in the order of its spatial index
        back = back.sort_values("code", key=lambda c: c.map(list(grids["code"]).index))
        back = back.reset_index(drop=True)
    assert_same(back, grids)
    assert all(name.startswith("grids.") for name in files(tmp_path))  # no temporary left


def test_shapefile_written_in_gbk(tmp_path, grids):
    path = io.write(grids, tmp_path / "grids.shp", encoding="GBK")
    assert (tmp_path / "grids.cpg").read_text() == "GBK"
    assert "黎山村第一网格".encode("gbk") in (tmp_path / "grids.dbf").read_bytes()
    assert_same(io.read(path), grids)


def test_gbk_refuses_text_it_cannot_hold(tmp_path, grids):
    grids.loc[2, "名称"] = "𠀀村"  # CJK extension B: not in GBK
    with pytest.raises(ValueError, match=r"'名称' at index 2"):
        io.write(grids, tmp_path / "grids.shp", encoding="GBK")
    assert files(tmp_path) == []


def test_geopackage_two_layers(tmp_path, grids):
    path = tmp_path / "jinjiang.gpkg"
    io.write(grids.iloc[[0, 2]], path, layer="towns")
    io.write(grids.iloc[[1]], path, layer="grids")
    assert io.list_layers(path) == [("towns", "Polygon"), ("grids", "Polygon")]
    assert_same(io.read(path, layer="towns"), grids.iloc[[0, 2]].reset_index(drop=True))
    assert_same(io.read(path, layer="grids"), grids.iloc[[1]].reset_index(drop=True))
    with pytest.raises(io.ReadError, match=r"2 layers \('towns', 'grids'\).*layer="):
        io.read(path)


def test_crs_overrides_a_file_that_lies(tmp_path, grids):
    """Amap data labelled WGS84 (as every RFC 7946 GeoJSON is) but really GCJ-02."""
    path = io.write(grids.set_crs(4326, allow_override=True), tmp_path / "amap.geojson")
    assert_same(io.read(path), grids)  # taken at its word
    fixed = io.read(path, crs="gcj02")
    expected = convert(grids.set_crs(None, allow_override=True), "gcj02", "cgcs2000")
    assert_same(fixed, expected)
    assert not fixed.geometry.geom_equals_exact(grids.geometry, tolerance=1e-3).any()


def test_columns(tmp_path, grids):
    path = io.write(grids, tmp_path / "grids.gpkg")
    assert io.read(path, columns=["名称"]).columns.tolist() == ["名称", "geometry"]
    with pytest.raises(io.ReadError, match=r"no column 'nope'.*'code'"):
        io.read(path, columns=["nope"])


# ----------------------------------------------------------------------------
# Never overwrite, never half-write
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".geojson", ".shp", ".parquet", ".fgb", ".csv"])
def test_refuses_to_overwrite_a_file(tmp_path, grids, suffix):
    frame = grids if suffix != ".csv" else grids.set_geometry(grids.representative_point())
    path = io.write(frame, tmp_path / f"grids{suffix}")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=rf"grids\{suffix}.*overwrite=True"):
        io.write(frame.iloc[:1], path)
    assert path.read_bytes() == before
    io.write(frame.iloc[:1], path, overwrite=True)
    assert len(io.read(path, crs="cgcs2000")) == 1


def test_refuses_to_overwrite_a_geopackage_layer(tmp_path, grids):
    path = io.write(grids, tmp_path / "jinjiang.gpkg", layer="towns")
    io.write(grids.iloc[:1], path, layer="grids")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match=r"jinjiang\.gpkg.*layer 'towns'.*overwrite=True"):
        io.write(grids.iloc[:2], path, layer="towns")
    assert path.read_bytes() == before
    io.write(grids.iloc[:2], path, layer="towns", overwrite=True)
    assert len(io.read(path, layer="towns")) == 2
    assert len(io.read(path, layer="grids")) == 1  # the other layer survives


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_overwriting_a_shapefile_drops_its_stale_prj(tmp_path, grids):
    path = io.write(grids, tmp_path / "grids.shp")
    io.write(grids.set_crs(None, allow_override=True), path, overwrite=True)
    assert not (tmp_path / "grids.prj").exists()
    with pytest.raises(CRSError, match="grids.shp"):
        io.read(path)


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp"])
def test_a_failing_write_leaves_the_original_untouched(tmp_path, grids, suffix, monkeypatch):
    path = io.write(grids, tmp_path / f"grids{suffix}")
    before = {name: (tmp_path / name).read_bytes() for name in files(tmp_path)}

    def crash_midway(df, path, **kwargs):
        with open(path, "wb") as half:
            half.write(b"half a file")
        raise RuntimeError("disk full")

    monkeypatch.setattr(pyogrio, "write_dataframe", crash_midway)
    with pytest.raises(RuntimeError, match="disk full") as failure:
        io.write(grids.iloc[:1], path, layer="more" if suffix == ".gpkg" else None,
                 overwrite=True)
    assert str(path) in "".join(failure.value.__notes__)
    assert {name: (tmp_path / name).read_bytes() for name in files(tmp_path)} == before


def test_a_column_the_driver_rejects_leaves_the_geopackage_untouched(tmp_path, grids):
    path = io.write(grids, tmp_path / "jinjiang.gpkg", layer="towns")
    before = path.read_bytes()
    bad = grids.assign(impedance=np.array([1 + 2j] * 3))
    with pytest.raises(NotImplementedError, match="complex"):
        io.write(bad, path, layer="grids")
    assert path.read_bytes() == before
    assert files(tmp_path) == ["jinjiang.gpkg"]


# ----------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------


@pytest.fixture
def gcj_csv(tmp_path):
    """Three Amap (GCJ-02) stations in a GBK CSV with 经度/纬度 columns."""
    path = tmp_path / "stations.csv"
    text = (
        "station_id,名称,经度,纬度\n"
        "0001,内坑镇党群服务站,118.5815,24.7813\n"
        "0002,黎山村网格服务点,118.5602,24.8021\n"
        "0003,紫帽镇党群服务站,118.5011,24.7605\n"
    )
    path.write_bytes(text.encode("gbk"))
    return path


def test_gbk_csv_in_gcj02(gcj_csv):
    stations = io.read(gcj_csv, crs="gcj02")
    assert stations.crs.to_epsg() == 4490
    assert stations.columns.tolist() == ["station_id", "名称", "geometry"]
    assert stations["station_id"].tolist() == ["0001", "0002", "0003"]  # codes stay text
    assert stations["名称"].iloc[1] == "黎山村网格服务点"
    raw = gpd.GeoSeries(gpd.points_from_xy([118.5815, 118.5602, 118.5011],
                                           [24.7813, 24.8021, 24.7605]))
    expected = convert(raw, "gcj02", "cgcs2000")
    assert stations.geometry.geom_equals_exact(expected, tolerance=1e-9).all()
    shift = np.hypot(stations.geometry.x - raw.x, stations.geometry.y - raw.y)
    assert (shift > 0.004).all()  # GCJ-02 sits about 500 m off


def test_table_without_crs_is_refused(gcj_csv):
    with pytest.raises(CRSError, match=r"stations\.csv.*crs="):
        io.read(gcj_csv)


def test_blank_coordinate(tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text(
        "name,lng,lat\n站一,118.58,24.78\n站二,118.56,24.80\n"
        "站三,,24.76\n站四,118.50,东\n",
        encoding="utf-8-sig",
    )
    with pytest.raises(io.ReadError,
                       match=r"stations\.csv: 2 row.*lines 4 \(lng is empty\), 5 \(lat '东'"):
        io.read_table(path, crs="wgs84")
    kept = io.read_table(path, crs="wgs84", errors="keep")
    assert kept["name"].tolist() == ["站一", "站二", "站三", "站四"]
    assert kept.geometry.isna().tolist() == [False, False, True, True]
    assert kept.geometry.iloc[0].equals(Point(118.58, 24.78))


def test_excel(tmp_path):
    path = tmp_path / "stations.xlsx"
    pd.DataFrame(
        {"名称": ["站一", "站二", "站三"], "Longitude": [118.58, 118.56, None],
         "LAT": [24.78, 24.80, 24.76]}
    ).to_excel(path, index=False)
    with pytest.raises(io.ReadError, match=r"lines 4 \(Longitude is empty\)"):
        io.read(path, crs="wgs84")
    stations = io.read_table(path, crs="wgs84", errors="keep")
    assert stations.crs.to_epsg() == 4490
    assert stations.geometry.iloc[1].equals(Point(118.56, 24.80))
    assert stations.geometry.iloc[2] is None


def test_table_columns_not_found(tmp_path):
    table = pd.DataFrame({"名称": ["站一"], "东经": [118.58], "北纬": [24.78]})
    with pytest.raises(io.ReadError, match=r"no lon column.*'东经'.*lon="):
        io.read_table(table, crs="wgs84")
    points = io.read_table(table, lon="东经", lat="北纬", crs="wgs84")
    assert points.geometry.iloc[0].equals(Point(118.58, 24.78))


def test_csv_round_trip(tmp_path):
    stations = gpd.GeoDataFrame({"名称": ["站一", "站二"]},
                                geometry=[Point(118.58, 24.78), Point(118.56, 24.80)], crs=4490)
    path = io.write(stations, tmp_path / "stations.csv")
    assert path.read_bytes().startswith("\ufeff名称,lon,lat\n站一,118.58,24.78".encode())
    assert_same(io.read(path, crs="cgcs2000"), stations)


# ----------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:'crs' was not provided")
def test_file_without_crs(tmp_path, grids):
    path = io.write(grids.set_crs(None, allow_override=True), tmp_path / "nocrs.shp")
    with pytest.raises(CRSError, match=r"nocrs\.shp.*crs="):
        io.read(path)
    assert_same(io.read(path, crs="cgcs2000"), grids)


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.geojson"):
        io.read(tmp_path / "nowhere.geojson")
    broken = tmp_path / "broken.geojson"
    broken.write_text('{"type": "FeatureCollection", "features": [')
    with pytest.raises(io.ReadError, match=r"broken\.geojson: Failed to read GeoJSON"):
        io.read(broken)


def test_staged_directory_keeps_the_old_one_when_writing_fails(tmp_path):
    from gridgeo.io import staged_directory

    target = tmp_path / "tiles"
    with staged_directory(target) as tmp:
        (tmp / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="overwrite"):
        with staged_directory(target):
            pass
    with pytest.raises(RuntimeError):
        with staged_directory(target, overwrite=True) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("disk full")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiles"]
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
