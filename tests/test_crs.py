"""Tests of gridgeo.crs against independent references.

References: the `prcoords` package (an independent implementation of GCJ-02
and BD-09), test vectors published by other implementations, pyproj (EPSG
definitions, geodesic distances).
"""

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, Point, Polygon

prcoords = pytest.importorskip("prcoords")

from gridgeo import crs as gcrs  # noqa: E402
from gridgeo.crs import (  # noqa: E402
    SYSTEMS,
    STORAGE_CRS,
    CRSError,
    bd09_to_gcj02,
    bd09_to_wgs84,
    check_plausible,
    convert,
    gcj02_to_bd09,
    gcj02_to_wgs84,
    metric_crs,
    out_of_china,
    to_metric,
    to_storage,
    wgs84_to_bd09,
    wgs84_to_gcj02,
)

GEOD = pyproj.Geod(ellps="GRS80")
TOL = 1e-7  # degrees, about 1 cm


def _geodesic_m(lon1, lat1, lon2, lat2):
    return GEOD.inv(lon1, lat1, lon2, lat2)[2]


@pytest.fixture(scope="module")
def china_points():
    """Several thousand seeded random WGS84 points that prcoords treats as in China."""
    rng = np.random.default_rng(20240601)
    lon = rng.uniform(73.0, 135.0, 4000)
    lat = rng.uniform(18.0, 53.0, 4000)
    keep = np.array([prcoords.sanity_in_china_p(prcoords.Coords(la, lo)) for lo, la in zip(lon, lat)])
    assert keep.sum() > 3900
    return lon[keep], lat[keep]


def _pr(fn, lon, lat):
    """Apply a prcoords (lat, lon) function point by point; return (lon, lat) arrays."""
    out = np.array([fn(prcoords.Coords(la, lo)) for lo, la in zip(lon, lat)])
    return out[:, 1], out[:, 0]


# ---------------------------------------------------------------------------
# point transforms against prcoords
# ---------------------------------------------------------------------------


def test_wgs84_to_gcj02_matches_prcoords(china_points):
    lon, lat = china_points
    ref = _pr(prcoords.wgs_gcj, lon, lat)
    got = wgs84_to_gcj02(lon, lat)
    np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)


def test_gcj02_to_bd09_matches_prcoords(china_points):
    gcj = wgs84_to_gcj02(*china_points)
    ref = _pr(prcoords.gcj_bd, *gcj)
    np.testing.assert_allclose(gcj02_to_bd09(*gcj), ref, rtol=0, atol=TOL)


def test_wgs84_to_bd09_matches_prcoords(china_points):
    ref = _pr(prcoords.wgs_bd, *china_points)
    np.testing.assert_allclose(wgs84_to_bd09(*china_points), ref, rtol=0, atol=TOL)


def test_gcj02_to_wgs84_inverts_prcoords_forward(china_points):
    lon, lat = china_points
    gcj = _pr(prcoords.wgs_gcj, lon, lat)
    back = gcj02_to_wgs84(*gcj)
    np.testing.assert_allclose(back, (lon, lat), rtol=0, atol=TOL)
    # and it agrees with prcoords' own iterative ("bored") inverse
    np.testing.assert_allclose(back, _pr(prcoords.gcj_wgs_bored, *gcj), rtol=0, atol=TOL)


def test_bd09_to_gcj02_inverts_prcoords_forward(china_points):
    gcj = wgs84_to_gcj02(*china_points)
    bd = _pr(prcoords.gcj_bd, *gcj)
    back = bd09_to_gcj02(*bd)
    np.testing.assert_allclose(back, gcj, rtol=0, atol=TOL)
    np.testing.assert_allclose(back, _pr(prcoords.bd_gcj_bored, *bd), rtol=0, atol=TOL)
    # the usual closed-form inverse is not good enough: it is off by ~1e-6
    closed = _pr(prcoords.bd_gcj, *bd)
    assert np.abs(np.subtract(closed, gcj)).max() > 10 * TOL


def test_bd09_to_wgs84_inverts_prcoords_forward(china_points):
    lon, lat = china_points
    bd = _pr(prcoords.wgs_bd, lon, lat)
    np.testing.assert_allclose(bd09_to_wgs84(*bd), (lon, lat), rtol=0, atol=TOL)
    # prcoords' iterative bd_wgs stops at 1e-5 steps: good to a few 1e-7 only
    np.testing.assert_allclose(bd09_to_wgs84(*bd), _pr(prcoords.bd_wgs_bored, *bd), rtol=0, atol=5e-7)


def test_round_trips_are_much_better_than_required(china_points):
    lon, lat = china_points
    np.testing.assert_allclose(gcj02_to_wgs84(*wgs84_to_gcj02(lon, lat)), (lon, lat), rtol=0, atol=1e-9)
    np.testing.assert_allclose(bd09_to_wgs84(*wgs84_to_bd09(lon, lat)), (lon, lat), rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------
# published test vectors
# ---------------------------------------------------------------------------

# googollee/eviltransform, python/test.py: (wgsLat, wgsLng, gcjLat, gcjLng)
EVILTRANSFORM = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]


@pytest.mark.parametrize(("wlat", "wlon", "glat", "glon"), EVILTRANSFORM)
def test_eviltransform_vectors(wlat, wlon, glat, glon):
    assert wgs84_to_gcj02(wlon, wlat) == pytest.approx((glon, glat), abs=1e-9)
    assert gcj02_to_wgs84(glon, glat) == pytest.approx((wlon, wlat), abs=1e-9)


def test_wandergis_coordtransform_readme_vectors():
    # wandergis/coordtransform README, forward transforms of (116.404, 39.915)
    assert wgs84_to_gcj02(116.404, 39.915) == pytest.approx((116.41024449916938, 39.91640428150164), abs=1e-9)
    assert gcj02_to_bd09(116.404, 39.915) == pytest.approx((116.41036949371029, 39.92133699351021), abs=1e-9)


def test_geotool_gcj02_bd09_vector():
    # Glatzel/pyxis (geotool) tests: GCJ-02 <-> BD-09 pair, exact both ways
    gcj = (121.09626935575027, 30.608604331756705)
    bd = (121.10271732371203, 30.61484572185035)
    assert gcj02_to_bd09(*gcj) == pytest.approx(bd, abs=1e-9)
    assert bd09_to_gcj02(*bd) == pytest.approx(gcj, abs=1e-9)


def test_gcoord_gcj02_to_bd09_vector():
    # hujiulong/gcoord test/unit/crs/GCJ02.spec.js (given to 8 decimals)
    assert gcj02_to_bd09(123, 45) == pytest.approx((123.00636499, 45.00636899), abs=1e-8)


# ---------------------------------------------------------------------------
# edges: outside China, NaN, scalars, shapes
# ---------------------------------------------------------------------------

TRANSFORMS = [wgs84_to_gcj02, gcj02_to_wgs84, gcj02_to_bd09, bd09_to_gcj02, wgs84_to_bd09, bd09_to_wgs84]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("fn", TRANSFORMS, ids=lambda f: f.__name__)
def test_outside_china_and_nan_pass_through(fn):
    lon = np.array([2.35, -74.0, 151.2, 139.69, np.nan, 118.5, np.nan])
    lat = np.array([48.85, 40.7, -33.9, 35.69, 24.7, np.nan, np.nan])
    assert out_of_china(lon, lat).tolist() == [True] * 7
    out_lon, out_lat = fn(lon, lat)
    np.testing.assert_array_equal(out_lon, lon)
    np.testing.assert_array_equal(out_lat, lat)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("fn", TRANSFORMS, ids=lambda f: f.__name__)
def test_scalars_and_shapes(fn):
    lon, lat = fn(118.58, 24.78)
    assert isinstance(lon, float) and isinstance(lat, float)
    assert abs(lon - 118.58) > 1e-4  # moved: Jinjiang is in China
    grid_lon, grid_lat = fn(np.full((2, 3), 118.58), 24.78)  # broadcasting keeps the shape
    assert grid_lon.shape == grid_lat.shape == (2, 3)
    assert grid_lon[1, 2] == pytest.approx(lon, abs=1e-12)


def test_inputs_not_modified():
    lon = np.array([118.58, 119.3])
    lat = np.array([24.78, 26.08])
    gcj02_to_wgs84(lon, lat)
    assert lon.tolist() == [118.58, 119.3] and lat.tolist() == [24.78, 26.08]


# ---------------------------------------------------------------------------
# convert
# ---------------------------------------------------------------------------


@pytest.fixture
def mixed_frame():
    return gpd.GeoDataFrame(
        {"code": pd.array(["350582001", "350582002", "350582003"], dtype="str"), "n": [1, 2, 3]},
        geometry=[
            Point(118.58, 24.78),
            LineString([(118.50, 24.70), (118.60, 24.75), (118.65, 24.85)]),
            Polygon([(118.40, 24.60), (118.45, 24.60), (118.45, 24.65), (118.40, 24.65)]),
        ],
        crs="EPSG:4326",
    )


def test_convert_frame_all_geometry_types(mixed_frame):
    before = mixed_frame.copy()
    out = convert(mixed_frame, "gcj02", "cgcs2000")

    assert isinstance(out, gpd.GeoDataFrame)
    assert out.crs == STORAGE_CRS
    pd.testing.assert_frame_equal(mixed_frame, before)  # input untouched
    assert mixed_frame.crs.to_epsg() == 4326
    pd.testing.assert_frame_equal(pd.DataFrame(out.drop(columns="geometry")),
                                  pd.DataFrame(mixed_frame.drop(columns="geometry")))
    assert out.geom_type.tolist() == ["Point", "LineString", "Polygon"]
    # every vertex moved exactly as the point transform says
    xy = shapely.get_coordinates(mixed_frame.geometry)
    expected = np.column_stack(gcj02_to_wgs84(xy[:, 0], xy[:, 1]))
    np.testing.assert_allclose(shapely.get_coordinates(out.geometry), expected, rtol=0, atol=1e-12)


def test_convert_to_gcj02_records_system_and_round_trips(mixed_frame):
    gcj = convert(mixed_frame, "wgs84", "gcj02")
    assert gcj.crs is None
    assert gcj.attrs["coordinate_system"] == "gcj02"
    assert "coordinate_system" not in mixed_frame.attrs
    bd = convert(gcj, "GCJ-02", "Baidu")
    assert bd.crs is None and bd.attrs["coordinate_system"] == "bd09"
    back = convert(bd, "bd09", "wgs84")
    assert back.crs == pyproj.CRS.from_epsg(4326)
    assert "coordinate_system" not in back.attrs
    np.testing.assert_allclose(shapely.get_coordinates(back.geometry),
                               shapely.get_coordinates(mixed_frame.geometry), rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("alias", "system"),
    [("WGS84", "wgs84"), ("epsg:4326", "wgs84"), ("CGCS2000", "cgcs2000"), ("EPSG:4490", "cgcs2000"),
     ("gcj02", "gcj02"), ("GCJ-02", "gcj02"), ("Amap", "gcj02"), ("tencent", "gcj02"),
     ("bd09", "bd09"), ("BD-09", "bd09"), ("baidu", "bd09")],
)
def test_convert_aliases(alias, system):
    pt = Point(118.58, 24.78)
    assert convert(pt, alias, system).equals(pt)
    assert system in SYSTEMS


def test_convert_other_containers_and_z():
    arr = np.array([Point(118.58, 24.78, 12.0), None, Point()], dtype=object)
    out = convert(arr, "wgs84", "gcj02")
    assert isinstance(out, np.ndarray) and out[1] is None and out[2].is_empty
    assert out[0].has_z and out[0].z == 12.0
    assert (out[0].x, out[0].y) == pytest.approx(wgs84_to_gcj02(118.58, 24.78), abs=1e-12)
    series = gpd.GeoSeries([Point(118.58, 24.78)], index=[7], name="where")
    out = convert(series, "bd09")
    assert isinstance(out, gpd.GeoSeries) and out.index.tolist() == [7] and out.crs == STORAGE_CRS
    assert isinstance(convert(Point(118.58, 24.78), "gcj02"), Point)


def test_convert_refuses_bad_input():
    with pytest.raises(CRSError, match="not a coordinate system gridgeo converts"):
        convert(Point(118.58, 24.78), "mars")
    projected = gpd.GeoSeries([Point(500000, 2700000)], crs=4549)
    with pytest.raises(CRSError, match="projected CRS"):
        convert(projected, "gcj02")
    with pytest.raises(TypeError, match="got list"):
        convert([Point(1, 2)], "gcj02")


# ---------------------------------------------------------------------------
# metric_crs / to_metric
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("cm", range(75, 136, 3))
def test_gauss_kruger_epsg_codes_are_the_cm_we_think(cm):
    code = 4534 + (cm - 75) // 3
    crs = pyproj.CRS.from_epsg(code)
    assert crs.name == f"CGCS2000 / 3-degree Gauss-Kruger CM {cm}E"
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == cm
    assert params["False easting"] == 500000
    assert crs.geodetic_crs == STORAGE_CRS
    # and metric_crs picks it for data around the CM
    assert metric_crs((cm - 1.2, 30.0, cm + 1.2, 31.0)).to_epsg() == code


def test_metric_crs_fuzhou_is_cm_120e():
    fuzhou = gpd.GeoSeries([Point(119.20, 25.95), Point(119.45, 26.15)], crs=4490)
    crs = metric_crs(fuzhou)
    # EPSG:4549 is CM 120E (EPSG:4539 would be CM 90E)
    assert crs.to_epsg() == 4549
    assert crs.name == "CGCS2000 / 3-degree Gauss-Kruger CM 120E"


def test_metric_crs_straddling_a_zone_boundary():
    # Jinjiang spans ~118.40-118.72E, across the CM117/CM120 boundary at 118.5E
    jinjiang = gpd.GeoSeries([Polygon([(118.40, 24.51), (118.72, 24.51), (118.72, 24.90), (118.40, 24.90)])], crs=4490)
    crs = metric_crs(jinjiang)
    expected = pyproj.CRS("+proj=tmerc +lat_0=0 +lon_0=118.56 +k=1 +x_0=500000 +y_0=0 "
                          "+ellps=GRS80 +units=m +no_defs")
    assert crs == expected
    params = {p.name: p.value for p in crs.coordinate_operation.params}
    assert params["Longitude of natural origin"] == pytest.approx(118.56)
    assert crs.ellipsoid.name == "GRS 1980"
    # stable: the same data give the same CRS, also via bounds and a geometry
    assert metric_crs(jinjiang.total_bounds) == crs
    assert metric_crs(jinjiang.iloc[0]) == crs


def test_metric_crs_from_projected_data_and_proj_override():
    fuzhou = gpd.GeoSeries([Point(119.20, 25.95), Point(119.45, 26.15)], crs=4490)
    assert metric_crs(fuzhou.to_crs(3857)).to_epsg() == 4549
    assert metric_crs(fuzhou, proj=4547).to_epsg() == 4547
    local = "+proj=tmerc +lat_0=0 +lon_0=119.3 +k=1 +x_0=0 +y_0=0 +ellps=GRS80 +units=m"
    assert metric_crs(fuzhou, proj=local) == pyproj.CRS(local)
    assert metric_crs(fuzhou, proj=pyproj.CRS.from_epsg(4549)).to_epsg() == 4549
    with pytest.raises(CRSError, match="not a projected CRS"):
        metric_crs(fuzhou, proj="EPSG:4490")
    with pytest.raises(CRSError, match="empty data"):
        metric_crs(gpd.GeoSeries([], crs=4490))
    with pytest.raises(CRSError, match="not longitude/latitude degrees"):
        metric_crs(gpd.GeoSeries([Point(558000, 2740000)]))  # metres without a CRS


@pytest.mark.parametrize(("lon", "lat"), [(119.30, 26.08), (118.49, 24.70), (87.6, 43.8)])
def test_metric_distance_matches_geodesic(lon, lat):
    # two points 1 km apart (geodesic); measured in the metric CRS within 0.5 m
    lon2, lat2, _ = GEOD.fwd(lon, lat, 57.0, 1000.0)
    pts = gpd.GeoSeries([Point(lon, lat), Point(lon2, lat2)], crs=4490)
    metric = to_metric(pts)
    assert metric.crs.is_projected
    planar = metric.iloc[0].distance(metric.iloc[1])
    assert planar == pytest.approx(_geodesic_m(lon, lat, lon2, lat2), abs=0.5)


def test_to_metric_needs_a_crs():
    with pytest.raises(CRSError, match="has no coordinate system"):
        to_metric(gpd.GeoSeries([Point(119.3, 26.08)]))


# ---------------------------------------------------------------------------
# check_plausible
# ---------------------------------------------------------------------------


def test_check_plausible_metres_declared_as_degrees():
    gdf = gpd.GeoDataFrame(geometry=[Point(558000, 2740000)], crs=4490)
    with pytest.raises(CRSError, match="looks like projected metres declared as degrees") as err:
        check_plausible(gdf, name="grids")
    assert "grids" in str(err.value) and "set_crs" in str(err.value)


def test_check_plausible_swapped_lon_lat():
    gdf = gpd.GeoDataFrame(geometry=[Point(24.78, 118.58), Point(24.9, 118.7)], crs=4326)
    with pytest.raises(CRSError, match="longitude and latitude look swapped") as err:
        check_plausible(gdf, name="stations")
    assert "stations" in str(err.value)


def test_check_plausible_degrees_declared_as_metres():
    gdf = gpd.GeoDataFrame(geometry=[Point(118.58, 24.78)], crs=4549)
    with pytest.raises(CRSError, match="looks like degrees declared as metres") as err:
        check_plausible(gdf, name="addresses")
    assert "addresses" in str(err.value)


def test_check_plausible_good_and_empty_data_pass():
    good = gpd.GeoDataFrame(geometry=[Point(118.58, 24.78)], crs=4490)
    assert check_plausible(good) is good
    assert check_plausible(good.to_crs(4549)) is not None
    assert check_plausible(gpd.GeoDataFrame(geometry=[], crs=4490)) is not None
    assert check_plausible(gpd.GeoSeries([Point(), None], crs=4549)) is not None
    assert check_plausible(gpd.GeoSeries([Point(2.35, 48.85)], crs=4326)) is not None  # Paris


# ---------------------------------------------------------------------------
# to_storage
# ---------------------------------------------------------------------------


def test_to_storage_gcj02_moves_points_a_few_hundred_metres():
    amap = gpd.GeoDataFrame({"name": ["晋江市政府"]}, geometry=[Point(118.5815, 24.7813)], crs=4326)
    out = to_storage(amap, source="gcj02", name="stations")
    assert out.crs == STORAGE_CRS
    shift = _geodesic_m(118.5815, 24.7813, out.geometry.x.iloc[0], out.geometry.y.iloc[0])
    assert 300 < shift < 800
    assert amap.crs.to_epsg() == 4326 and amap.geometry.x.iloc[0] == 118.5815
    assert out["name"].tolist() == ["晋江市政府"]


def test_to_storage_missing_crs_raises():
    with pytest.raises(CRSError, match="addresses has no coordinate system: pass crs='wgs84'"):
        to_storage(gpd.GeoDataFrame(geometry=[Point(118.58, 24.78)]), name="addresses")
    with pytest.raises(CRSError, match="no coordinate system"):
        to_storage(Point(118.58, 24.78))


def test_to_storage_already_stored_is_not_copied():
    gdf = gpd.GeoDataFrame(geometry=[Point(118.58, 24.78)], crs=4490)
    assert to_storage(gdf) is gdf
    assert to_storage(gdf, source="cgcs2000") is gdf


def test_to_storage_wgs84_is_relabelled_without_shift():
    gdf = gpd.GeoDataFrame(geometry=[Point(118.58, 24.78)], crs=4326)
    out = to_storage(gdf)
    assert out is not gdf and out.crs == STORAGE_CRS and gdf.crs.to_epsg() == 4326
    assert out.geometry.iloc[0].equals(gdf.geometry.iloc[0])


def test_to_storage_reprojects_and_overrides():
    pt = Point(118.58, 24.78)
    projected = gpd.GeoDataFrame(geometry=[pt], crs=4490).to_crs(4549)
    out = to_storage(projected)
    assert out.crs == STORAGE_CRS
    assert (out.geometry.x.iloc[0], out.geometry.y.iloc[0]) == pytest.approx((pt.x, pt.y), abs=1e-9)
    # source overrides a wrong label (projected metres labelled as degrees)
    mislabelled = projected.set_crs(4490, allow_override=True)
    out = to_storage(mislabelled, source="EPSG:4549")
    assert out.geometry.x.iloc[0] == pytest.approx(pt.x, abs=1e-9)
    with pytest.raises(CRSError, match="neither one of"):
        to_storage(mislabelled, source="not a crs")
    # a CRS PROJ knows but has no way here from (another planet's): a CRSError, not PROJ's own
    with pytest.raises(CRSError, match="cannot be transformed to CGCS2000"):
        to_storage(gpd.GeoDataFrame(geometry=[Point(1, 2)]), source="mars2000")


def test_to_storage_checks_plausibility_first():
    swapped = gpd.GeoDataFrame(geometry=[Point(24.78, 118.58)])
    with pytest.raises(CRSError, match="swapped"):
        to_storage(swapped, source="wgs84")
    with pytest.raises(CRSError, match="swapped"):
        to_storage(swapped, source="baidu")


def test_to_storage_uses_recorded_system_and_plain_geometries():
    wgs = gpd.GeoSeries([Point(118.58, 24.78)], crs=4326)
    gcj = convert(wgs, "wgs84", "gcj02")
    back = to_storage(gcj)
    assert back.crs == STORAGE_CRS and "coordinate_system" not in back.attrs
    assert back.iloc[0].distance(wgs.iloc[0]) < 1e-9
    geom = to_storage(Point(118.58, 24.78), source=4326)
    assert isinstance(geom, Point) and geom.equals(Point(118.58, 24.78))


def test_storage_crs_and_systems():
    assert STORAGE_CRS.to_epsg() == 4490 and STORAGE_CRS.is_geographic
    assert SYSTEMS == ("wgs84", "cgcs2000", "gcj02", "bd09")
    assert issubclass(CRSError, ValueError)
    assert "without any datum shift" in " ".join(gcrs.__doc__.split())


def test_inverse_converges_in_a_few_iterations():
    # fixed-point iteration contracts fast: the iteration cap is never what stops it
    calls = []

    def counting(lon, lat):
        calls.append(1)
        return gcrs._wgs_to_gcj(lon, lat)

    target = wgs84_to_gcj02(np.linspace(74, 134, 500), np.linspace(19, 52, 500))
    gcrs._invert(counting, *target)
    assert len(calls) <= 8 < gcrs._INVERSE_MAX_ITER
