"""Coordinate systems used in Chinese GIS data.

gridgeo stores everything in CGCS2000 geographic coordinates (EPSG:4490,
:data:`STORAGE_CRS`) and does metric work in the CGCS2000 3-degree
Gauss-Krüger zone that holds the data (:func:`metric_crs`). Input arrives in
one of four systems (:data:`SYSTEMS`):

``wgs84``
    GPS, OpenStreetMap, most foreign data (EPSG:4326).
``cgcs2000``
    China's national geodetic system (EPSG:4490), used by 天地图 and by
    official surveying and administrative data.
``gcj02``
    The obfuscated "Mars" coordinates (国测局坐标) every licensed Chinese web
    map must publish: Amap/高德, Tencent/腾讯, Google Maps in China. Not a CRS:
    a non-linear offset of a few hundred metres added to WGS84.
``bd09``
    Baidu's (百度) coordinates: a further offset added to GCJ-02.

CGCS2000 and WGS84 differ by a few centimetres, well below what these data
sets resolve, so gridgeo treats WGS84 coordinates as CGCS2000 without any datum
shift: converting between the two only relabels the CRS.

:func:`to_storage` is the one function every gridgeo entry point calls to bring
its input into the storage CRS; it checks the input with
:func:`check_plausible` first.

Notes
-----
The GCJ-02 and BD-09 formulas are the widely published ones (the Krasovsky
ellipsoid offset for GCJ-02, the ``x_pi = pi * 3000 / 180`` formula for
BD-09). Their inverses have no closed form; gridgeo inverts them by fixed-point
iteration on the forward formula until the step is below 1e-10 degrees, which
is accurate to far better than 1e-7 degrees (1 cm) everywhere in China. The
official GCJ-02 implementation also adds a little random noise, so real data
cannot be recovered more precisely than about a metre anyway.
"""

import numpy as np
import pyproj
import shapely
from geopandas import GeoDataFrame, GeoSeries

__all__ = [
    "STORAGE_CRS",
    "SYSTEMS",
    "CRSError",
    "out_of_china",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "gcj02_to_bd09",
    "bd09_to_gcj02",
    "wgs84_to_bd09",
    "bd09_to_wgs84",
    "convert",
    "metric_crs",
    "to_metric",
    "check_plausible",
    "check_finite",
    "suggest_crs",
    "to_storage",
]

#: The CRS gridgeo stores everything in: CGCS2000 geographic (EPSG:4490).
STORAGE_CRS = pyproj.CRS.from_epsg(4490)

#: The coordinate systems a caller may name as ``source`` or ``target``.
SYSTEMS = ("wgs84", "cgcs2000", "gcj02", "bd09")

_WGS84_CRS = pyproj.CRS.from_epsg(4326)

_ALIASES = {
    "wgs84": "wgs84",
    "wgs-84": "wgs84",
    "epsg:4326": "wgs84",
    "cgcs2000": "cgcs2000",
    "epsg:4490": "cgcs2000",
    "gcj02": "gcj02",
    "gcj-02": "gcj02",
    "amap": "gcj02",
    "tencent": "gcj02",
    "bd09": "bd09",
    "bd-09": "bd09",
    "baidu": "bd09",
}

# GCJ-02: offsets computed on the Krasovsky 1940 ellipsoid.
_KRASOVSKY_A = 6378245.0
_KRASOVSKY_EE = 0.00669342162296594323
# BD-09 on top of GCJ-02.
_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.006
# The bounding box of "China" every implementation uses (lon/lat, degrees).
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)
# Fixed-point iteration of the inverse transforms.
_INVERSE_TOL = 1e-10
_INVERSE_MAX_ITER = 30

# CGCS2000 3-degree Gauss-Krüger zones "CM 75E" ... "CM 135E" (no zone prefix).
_GK_FIRST_EPSG = 4534
_GK_FIRST_CM = 75
_GK_LAST_CM = 135
_TMERC_TEMPLATE = (
    "+proj=tmerc +lat_0=0 +lon_0={lon_0:.2f} +k=1 +x_0=500000 +y_0=0 "
    "+ellps=GRS80 +units=m +no_defs"
)


class CRSError(ValueError):
    """Data in the wrong, or an unknown, coordinate system."""


# ----------------------------------------------------------------------------
# Point transforms
# ----------------------------------------------------------------------------


def out_of_china(lon, lat):
    """Tell which points lie outside the conventional bounding box of China.

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    numpy.ndarray of bool (numpy.bool_ for scalars)
        True where the point is outside China: longitude outside
        72.004–137.8347 or latitude outside 0.8293–55.8271 (the box used by
        eviltransform, coordtransform, prcoords and most others). NaN
        coordinates count as outside.

    Notes
    -----
    The box is crude: it includes parts of neighbouring countries, where the
    GCJ-02 offset is applied even though those countries' maps do not use it.

    Examples
    --------
    >>> from gridgeo.crs import out_of_china
    >>> out_of_china([118.5, 2.35], [24.7, 48.85]).tolist()
    [False, True]
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    inside = (
        (lon >= _CHINA_LON[0])
        & (lon <= _CHINA_LON[1])
        & (lat >= _CHINA_LAT[0])
        & (lat <= _CHINA_LAT[1])
    )
    return _unwrap(~inside)


def wgs84_to_gcj02(lon, lat):
    """Convert WGS84 (or CGCS2000) coordinates to GCJ-02 (Amap, Tencent).

    Parameters
    ----------
    lon, lat : float or array_like
        Longitude and latitude in degrees; broadcast against each other.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray (numpy.float64 for scalars)
        GCJ-02 coordinates. Points outside China (:func:`out_of_china`) and
        NaN are returned unchanged.

    Examples
    --------
    >>> from gridgeo.crs import wgs84_to_gcj02
    >>> lon, lat = wgs84_to_gcj02(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410244, 39.916404)
    """
    return _inside_china(_wgs_to_gcj, lon, lat)


def gcj02_to_wgs84(lon, lat):
    """Convert GCJ-02 coordinates (Amap, Tencent) to WGS84 (= CGCS2000).

    The inverse of :func:`wgs84_to_gcj02`, found by fixed-point iteration
    until the step is below 1e-10 degrees (at most 30 steps; 3 to 5 in
    practice).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray (numpy.float64 for scalars)
        WGS84 coordinates. Points outside China (judged on the input) and NaN
        are returned unchanged.

    Examples
    --------
    >>> from gridgeo.crs import gcj02_to_wgs84
    >>> lon, lat = gcj02_to_wgs84(116.41024449916938, 39.91640428150164)
    >>> round(float(lon), 9), round(float(lat), 9)
    (116.404, 39.915)
    """
    return _inside_china(_gcj_to_wgs, lon, lat)


def gcj02_to_bd09(lon, lat):
    """Convert GCJ-02 coordinates to BD-09 (Baidu).

    Parameters
    ----------
    lon, lat : float or array_like
        GCJ-02 longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray (numpy.float64 for scalars)
        BD-09 coordinates. Points outside China and NaN are returned unchanged.

    Examples
    --------
    >>> from gridgeo.crs import gcj02_to_bd09
    >>> lon, lat = gcj02_to_bd09(116.404, 39.915)
    >>> round(float(lon), 6), round(float(lat), 6)
    (116.410369, 39.921337)
    """
    return _inside_china(_gcj_to_bd, lon, lat)


def bd09_to_gcj02(lon, lat):
    """Convert BD-09 coordinates (Baidu) to GCJ-02.

    The inverse of :func:`gcj02_to_bd09`, found by fixed-point iteration (the
    usual closed-form "inverse" is off by up to about 1e-5 degrees, a metre).

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray (numpy.float64 for scalars)
        GCJ-02 coordinates. Points outside China (judged on the input) and NaN
        are returned unchanged.

    Examples
    --------
    >>> from gridgeo.crs import bd09_to_gcj02
    >>> lon, lat = bd09_to_gcj02(116.41036949371029, 39.92133699351021)
    >>> round(float(lon), 9), round(float(lat), 9)
    (116.404, 39.915)
    """
    return _inside_china(_bd_to_gcj, lon, lat)


def wgs84_to_bd09(lon, lat):
    """Convert WGS84 (or CGCS2000) coordinates to BD-09 (Baidu), via GCJ-02.

    Parameters
    ----------
    lon, lat : float or array_like
        WGS84 longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray (numpy.float64 for scalars)
        BD-09 coordinates. Points outside China and NaN are returned unchanged.

    Examples
    --------
    >>> from gridgeo.crs import wgs84_to_bd09
    >>> lon, lat = wgs84_to_bd09(121.0917077, 30.6107779)
    >>> round(float(lon), 6), round(float(lat), 6)
    (121.102717, 30.614846)
    """
    return _inside_china(_wgs_to_bd, lon, lat)


def bd09_to_wgs84(lon, lat):
    """Convert BD-09 coordinates (Baidu) to WGS84 (= CGCS2000), via GCJ-02.

    Both steps are inverted by fixed-point iteration (see
    :func:`bd09_to_gcj02` and :func:`gcj02_to_wgs84`).

    Parameters
    ----------
    lon, lat : float or array_like
        BD-09 longitude and latitude in degrees.

    Returns
    -------
    (lon, lat) : tuple of numpy.ndarray (numpy.float64 for scalars)
        WGS84 coordinates. Points outside China (judged on the input) and NaN
        are returned unchanged.

    Examples
    --------
    >>> from gridgeo.crs import bd09_to_wgs84
    >>> lon, lat = bd09_to_wgs84(121.10271732371203, 30.61484572185035)
    >>> round(float(lon), 6), round(float(lat), 6)
    (121.091708, 30.610778)
    """
    return _inside_china(_bd_to_wgs, lon, lat)


def _inside_china(transform, lon, lat):
    """Apply a raw transform to the points inside China, keep the others."""
    lon, lat = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    out_lon = np.array(lon, dtype=float)  # writable copies
    out_lat = np.array(lat, dtype=float)
    inside = ~np.asarray(out_of_china(lon, lat))
    if inside.any():
        out_lon[inside], out_lat[inside] = transform(lon[inside], lat[inside])
    return _unwrap(out_lon), _unwrap(out_lat)


def _unwrap(array):
    """A 0-d array becomes a numpy scalar; anything else stays an array."""
    return array[()] if array.ndim == 0 else array


def _gcj_offset(lon, lat):
    """The GCJ-02 offset (dlon, dlat) in degrees at WGS84 (lon, lat)."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    periodic = 20.0 * np.sin(6.0 * np.pi * x) + 20.0 * np.sin(2.0 * np.pi * x)
    dlat_m = (
        -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x
        + (
            periodic
            + 20.0 * np.sin(np.pi * y) + 40.0 * np.sin(np.pi * y / 3.0)
            + 160.0 * np.sin(np.pi * y / 12.0) + 320.0 * np.sin(np.pi * y / 30.0)
        ) * 2.0 / 3.0
    )
    dlon_m = (
        300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x
        + (
            periodic
            + 20.0 * np.sin(np.pi * x) + 40.0 * np.sin(np.pi * x / 3.0)
            + 150.0 * np.sin(np.pi * x / 12.0) + 300.0 * np.sin(np.pi * x / 30.0)
        ) * 2.0 / 3.0
    )
    # metres -> degrees with the Krasovsky radii of curvature
    rad_lat = np.radians(lat)
    magic = 1.0 - _KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat_m * 180.0 / ((_KRASOVSKY_A * (1.0 - _KRASOVSKY_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon_m * 180.0 / (_KRASOVSKY_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _wgs_to_gcj(lon, lat):
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd(lon, lat):
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _invert(forward, lon, lat):
    """Solve ``forward(x, y) == (lon, lat)`` by fixed-point iteration.

    Each forward transform here is the identity plus an offset that varies
    slowly in space (its derivative is a few hundredths at most), so the step
    ``p <- p - (forward(p) - target)`` contracts by that factor every time.
    """
    x = np.array(lon, dtype=float)
    y = np.array(lat, dtype=float)
    for _ in range(_INVERSE_MAX_ITER):
        fx, fy = forward(x, y)
        dx = fx - lon
        dy = fy - lat
        x -= dx
        y -= dy
        # NaN compares False, so NaN points never hold the loop up
        if not (np.any(np.abs(dx) > _INVERSE_TOL) or np.any(np.abs(dy) > _INVERSE_TOL)):
            break
    return x, y


def _gcj_to_wgs(lon, lat):
    return _invert(_wgs_to_gcj, lon, lat)


def _bd_to_gcj(lon, lat):
    return _invert(_gcj_to_bd, lon, lat)


def _wgs_to_bd(lon, lat):
    return _gcj_to_bd(*_wgs_to_gcj(lon, lat))


def _bd_to_wgs(lon, lat):
    return _gcj_to_wgs(*_bd_to_gcj(lon, lat))


# (source, target) -> public point transform; wgs84 and cgcs2000 are "earth".
_POINT_TRANSFORMS = {
    ("earth", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "earth"): gcj02_to_wgs84,
    ("earth", "bd09"): wgs84_to_bd09,
    ("bd09", "earth"): bd09_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
}


# ----------------------------------------------------------------------------
# Geometries and frames
# ----------------------------------------------------------------------------


def convert(data, source, target="cgcs2000"):
    """Convert geometries between WGS84, CGCS2000, GCJ-02 and BD-09.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries, numpy.ndarray of geometries or shapely.Geometry
        Geometries of any type (points, lines, polygons, collections); Z
        values are kept as they are. The input is never modified.
    source, target : str
        What the coordinates are in and what they should become, one of
        :data:`SYSTEMS`, case-insensitive. Aliases: ``"epsg:4326"`` (wgs84),
        ``"epsg:4490"`` (cgcs2000), ``"gcj-02"``, ``"amap"``, ``"tencent"``
        (gcj02), ``"bd-09"``, ``"baidu"`` (bd09).

    Returns
    -------
    same type as `data`
        The converted geometries. For a GeoSeries or GeoDataFrame the CRS is
        set to EPSG:4490 for ``cgcs2000``, EPSG:4326 for ``wgs84`` and None
        for ``gcj02``/``bd09`` (they are not CRSs), in which case
        ``attrs["coordinate_system"]`` records the system. Only the active
        geometry column of a GeoDataFrame changes.

    Raises
    ------
    CRSError
        If `source` or `target` is not a known system, or if `data` declares a
        projected CRS (these conversions work on degrees).

    See Also
    --------
    to_storage : bring any input into EPSG:4490, checking it first.

    Notes
    -----
    WGS84 and CGCS2000 are treated as the same coordinates (see the module
    notes): converting between them only changes the CRS label. Points outside
    China (:func:`out_of_china`) are left where they are.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo.crs import convert
    >>> amap = gpd.GeoSeries([Point(118.5815, 24.7813)])  # read off Amap
    >>> cgcs = convert(amap, "amap")
    >>> cgcs.crs.to_epsg()
    4490
    >>> round(float(cgcs.x.iloc[0]), 4), round(float(cgcs.y.iloc[0]), 4)
    (118.5771, 24.7843)
    """
    source = _system_name(source, "source")
    target = _system_name(target, "target")
    crs = getattr(data, "crs", None)
    if crs is not None and not crs.is_geographic:
        raise CRSError(
            f"convert works on degrees, but data declares the projected CRS {crs.name!r}: "
            "reproject it first with data.to_crs('EPSG:4490'), or use to_storage(...)"
        )
    return _convert(data, source, target)


def _convert(data, source, target):
    """convert() without the argument checks; `source`/`target` are canonical."""
    fn = _POINT_TRANSFORMS.get((_earth(source), _earth(target)))
    if isinstance(data, (GeoSeries, GeoDataFrame)):
        geoms = np.asarray(data.geometry.array)
        if fn is not None:
            geoms = _transform_geometries(geoms, fn)
        return _rebuild(data, geoms, target)
    if isinstance(data, shapely.Geometry) or (
        isinstance(data, np.ndarray) and data.dtype == object
    ):
        return data if fn is None else _transform_geometries(data, fn)
    raise TypeError(
        "data should be a GeoDataFrame, GeoSeries, numpy array of shapely geometries "
        f"or a shapely geometry, got {type(data).__name__}"
    )


def _earth(system):
    return "earth" if system in ("wgs84", "cgcs2000") else system


def _transform_geometries(geoms, fn):
    """Apply a point transform to every coordinate of `geoms`, keeping Z."""

    def _xy(x, y, z=None):
        lon, lat = fn(x, y)
        return (lon, lat) if z is None else (lon, lat, z)

    return shapely.transform(geoms, _xy, include_z=None, interleaved=False)


def _rebuild(data, geoms, system):
    """A copy of `data` with new geometries, labelled as being in `system`."""
    crs = {"cgcs2000": STORAGE_CRS, "wgs84": _WGS84_CRS}.get(system)
    series = GeoSeries(geoms, index=data.index, crs=crs, name=data.geometry.name)
    if isinstance(data, GeoSeries):
        out = series
    else:
        out = data.copy(deep=False)  # copy-on-write: data stays untouched
        out[data.geometry.name] = series
        out.set_crs(crs, allow_override=True, inplace=True)
    out.attrs = _mark_system(data.attrs, system)
    return out


def _mark_system(attrs, system):
    """Attrs recording `system` when it is not a real CRS (gcj02/bd09)."""
    attrs = {k: v for k, v in attrs.items() if k != "coordinate_system"}
    if system in ("gcj02", "bd09"):
        attrs["coordinate_system"] = system
    return attrs


def _system_name(value, what="source"):
    """The canonical SYSTEMS name for `value`, or a CRSError."""
    name = _alias(value)
    if name is None:
        raise CRSError(
            f"{what}={value!r} is not a coordinate system gridgeo converts: use one of "
            f"{', '.join(SYSTEMS)} (aliases: {', '.join(sorted(_ALIASES))})"
        )
    return name


def _alias(value):
    if isinstance(value, str):
        return _ALIASES.get(value.strip().lower())
    return None


# ----------------------------------------------------------------------------
# Metric CRS
# ----------------------------------------------------------------------------


def metric_crs(data, *, proj=None):
    """The projected CRS, in metres, to do metric work on `data` in.

    The rule: if `proj` is given, that CRS (e.g. a city's own local system).
    Otherwise the CGCS2000 3-degree Gauss-Krüger zone holding all of the data:
    EPSG:4534 ("CGCS2000 / 3-degree Gauss-Kruger CM 75E") to EPSG:4554
    ("... CM 135E"), ``EPSG = 4534 + (CM - 75) / 3``, where the zone with
    central meridian CM covers CM - 1.5° to CM + 1.5° of longitude. If the
    data cross a zone boundary (Jinjiang, 118.40–118.72°E, crosses the one at
    118.5°E) or lie outside 73.5–136.5°E, a transverse Mercator on the
    CGCS2000 ellipsoid centred on the data::

        +proj=tmerc +lat_0=0 +lon_0=<centre rounded to 0.01°> +k=1
        +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs

    so a given data set always gets the same CRS.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries, shapely geometry or array, or tuple
        The data, or their bounds ``(minx, miny, maxx, maxy)``. Bounds,
        geometries and frames without a CRS are taken as degrees; a frame with
        a CRS has its bounds transformed to EPSG:4490 first.
    proj : str, int or pyproj.CRS, optional
        A PROJ string, EPSG code or CRS to use instead of the rule above. It
        must be a projected CRS in metres.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        If the data are empty or not in degrees and carry no CRS, or if `proj`
        is not a projected CRS in metres.

    Notes
    -----
    Within a zone the scale error of Gauss-Krüger is below 0.04 % in China.
    The centred transverse Mercator is as good for a city; for data spanning
    many degrees of longitude (a province) its scale error grows with the
    square of the distance from the centre (about 0.1 % at 3° off it at 25°N): pass
    `proj` (e.g. an Albers equal-area) for such data.

    Examples
    --------
    >>> from gridgeo.crs import metric_crs
    >>> metric_crs((119.2, 26.0, 119.4, 26.1)).name  # Fuzhou
    'CGCS2000 / 3-degree Gauss-Kruger CM 120E'
    >>> print(metric_crs((118.40, 24.51, 118.72, 24.90)).srs)  # Jinjiang
    +proj=tmerc +lat_0=0 +lon_0=118.56 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs +type=crs
    """
    if proj is not None:
        return _projected_crs(proj)
    minx, miny, maxx, maxy = _bounds_in_storage(data)
    return _gauss_kruger_zone(minx, maxx)


def _projected_crs(proj):
    try:
        crs = pyproj.CRS.from_user_input(proj)
    except pyproj.exceptions.CRSError as exc:
        raise CRSError(f"proj={proj!r} is not a CRS pyproj understands ({exc})") from None
    if not crs.is_projected:
        raise CRSError(
            f"proj={proj!r} ({crs.name}) is not a projected CRS: metric work needs metres, "
            "e.g. proj='EPSG:4549' (CGCS2000 Gauss-Kruger CM 120E) or a city's local system"
        )
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    if unit != "metre":
        raise CRSError(f"proj={proj!r} ({crs.name}) measures in {unit}, not metres")
    return crs


def _bounds_in_storage(data):
    """(minx, miny, maxx, maxy) of `data` in EPSG:4490 degrees."""
    crs = getattr(data, "crs", None)
    if isinstance(data, (GeoSeries, GeoDataFrame)):
        bounds = data.total_bounds
    elif isinstance(data, shapely.Geometry) or (
        isinstance(data, np.ndarray) and data.dtype == object
    ):
        bounds = shapely.total_bounds(data)
    else:
        try:
            bounds = np.asarray(data, dtype=float).reshape(4)
        except (TypeError, ValueError):
            raise TypeError(
                "data should be a GeoDataFrame, GeoSeries, shapely geometries or bounds "
                f"(minx, miny, maxx, maxy), got {type(data).__name__}"
            ) from None
    if not np.all(np.isfinite(bounds)):
        raise CRSError("cannot choose a metric CRS for empty data: pass proj=... to name one")
    if crs is not None and not _is_earth_crs(crs):
        transformer = pyproj.Transformer.from_crs(crs, STORAGE_CRS, always_xy=True)
        bounds = transformer.transform_bounds(*bounds, densify_pts=21)
    elif not _within_degrees(bounds):
        raise CRSError(
            f"bounds {tuple(float(b) for b in bounds)} are not longitude/latitude degrees: "
            "give the data their CRS (set_crs(...)) or pass proj=..."
        )
    return tuple(float(b) for b in bounds)


def _gauss_kruger_zone(minx, maxx):
    centre = (minx + maxx) / 2.0
    cm = 3.0 * np.floor((centre + 1.5) / 3.0)
    if _GK_FIRST_CM <= cm <= _GK_LAST_CM and cm - 1.5 <= minx and maxx <= cm + 1.5:
        return pyproj.CRS.from_epsg(_GK_FIRST_EPSG + int(cm - _GK_FIRST_CM) // 3)
    return pyproj.CRS.from_proj4(_TMERC_TEMPLATE.format(lon_0=round(centre, 2)))


def to_metric(gdf, *, proj=None):
    """Reproject `gdf` to :func:`metric_crs` of itself.

    Parameters
    ----------
    gdf : GeoDataFrame or GeoSeries
        Data with a CRS.
    proj : str, int or pyproj.CRS, optional
        Passed to :func:`metric_crs`.

    Returns
    -------
    GeoDataFrame or GeoSeries
        A reprojected copy.

    Raises
    ------
    CRSError
        If `gdf` has no CRS.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo.crs import to_metric
    >>> pts = gpd.GeoSeries([Point(119.30, 26.08)], crs=4490)
    >>> to_metric(pts).crs.to_epsg()
    4549
    """
    if not isinstance(gdf, (GeoSeries, GeoDataFrame)):
        raise TypeError(f"gdf should be a GeoDataFrame or GeoSeries, got {type(gdf).__name__}")
    if gdf.crs is None:
        raise CRSError(
            "gdf has no coordinate system: set it with gdf.set_crs(...), or bring it into "
            "storage first with to_storage(gdf, source='wgs84' (or 'gcj02', 'bd09', an EPSG code))"
        )
    return gdf.to_crs(metric_crs(gdf, proj=proj))


# ----------------------------------------------------------------------------
# Plausibility and storage
# ----------------------------------------------------------------------------


def check_plausible(data, *, name="data"):
    """Refuse data whose coordinates obviously do not match their CRS.

    Three mistakes are caught, judged on the bounds of all coordinates:

    - a geographic CRS but x or y beyond ±180/±90: projected metres declared
      as degrees;
    - a geographic CRS, x within China's latitudes (0.8293–55.8271) and y
      within China's longitudes (72.004–137.8347): longitude and latitude
      swapped (data genuinely north of 72°N in Europe would be refused too);
    - a projected CRS but every coordinate within ±180/±90: degrees declared
      as metres.

    Data without a CRS, empty geometries and empty frames pass.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or geometries
    name : str, default "data"
        How to call `data` in the error message.

    Returns
    -------
    data
        Unchanged, so the call can be chained.

    Raises
    ------
    CRSError
        Saying what looks wrong and how to fix it.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo.crs import check_plausible, CRSError
    >>> good = gpd.GeoSeries([Point(118.58, 24.78)], crs=4490)
    >>> check_plausible(good) is good
    True
    >>> try:
    ...     check_plausible(gpd.GeoSeries([Point(24.78, 118.58)], crs=4490), name="stations")
    ... except CRSError as e:
    ...     print(str(e)[:48])
    stations: longitude and latitude look swapped (x
    """
    crs = getattr(data, "crs", None)
    if crs is not None:
        _check_bounds(_raw_bounds(data), crs.is_geographic, crs.is_projected, crs.name, name)
    return data


def _raw_bounds(data):
    if isinstance(data, (GeoSeries, GeoDataFrame)):
        return data.total_bounds
    return shapely.total_bounds(data)


def _check_bounds(bounds, geographic, projected, label, name):
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    if not np.all(np.isfinite(bounds)):
        return  # empty
    span = f"x spans {minx:.6g}..{maxx:.6g}, y spans {miny:.6g}..{maxy:.6g}"
    if geographic:
        if (
            _CHINA_LAT[0] <= minx and maxx <= _CHINA_LAT[1]
            and _CHINA_LON[0] <= miny and maxy <= _CHINA_LON[1]
        ):
            raise CRSError(
                f"{name}: longitude and latitude look swapped ({span} in {label}: x holds "
                "China's latitudes and y its longitudes). Put longitude first, e.g. "
                "shapely.transform(geoms, lambda c: c[:, ::-1]), or re-read the file with "
                "x = longitude"
            )
        if not _within_degrees(bounds):
            raise CRSError(
                f"{name} declares the geographic CRS {label!r} but {span}, beyond ±180/±90: "
                "this looks like projected metres declared as degrees: set the right CRS "
                "with set_crs(..., allow_override=True) or pass crs=..."
            )
    elif projected and _within_degrees(bounds):
        raise CRSError(
            f"{name} declares the projected CRS {label!r} but {span}, all within ±180/±90: "
            "this looks like degrees declared as metres: set the right CRS with "
            "set_crs('EPSG:4490', allow_override=True) or pass crs='wgs84' (or 'cgcs2000', "
            "'gcj02', 'bd09')"
        )


def _within_degrees(bounds):
    minx, miny, maxx, maxy = bounds
    return -180.0 <= minx and maxx <= 180.0 and -90.0 <= miny and maxy <= 90.0


def to_storage(data, *, source=None, name="data"):
    """Bring `data` into the storage CRS, CGCS2000 geographic (EPSG:4490).

    The one function every gridgeo entry point calls on its input. The rule:

    1. What the coordinates are: `source` if given (it overrides the frame's
       CRS), else the frame's CRS, else the system recorded by
       :func:`convert` in ``attrs["coordinate_system"]``; with none of these,
       refuse.
    2. :func:`check_plausible` against that.
    3. Convert: GCJ-02 and BD-09 with :func:`convert`; WGS84 is relabelled
       EPSG:4490 (no datum shift, see the module notes); any other CRS is
       reprojected with ``to_crs``.

    Parameters
    ----------
    data : GeoDataFrame, GeoSeries or shapely geometries
    source : str, int or pyproj.CRS, optional
        A :data:`SYSTEMS` name or alias, or anything pyproj accepts
        (``"EPSG:4549"``, ``4326``, a PROJ string).
    name : str, default "data"
        How to call `data` in error messages.

    Returns
    -------
    same type as `data`
        A copy in EPSG:4490; a frame already in EPSG:4490 is returned as is,
        not copied.

    Raises
    ------
    CRSError
        If the coordinate system is unknown or the coordinates do not fit it.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo.crs import to_storage
    >>> baidu = gpd.GeoDataFrame({"name": ["站"]}, geometry=[Point(118.588, 24.790)])
    >>> stored = to_storage(baidu, source="baidu", name="stations")
    >>> stored.crs.to_epsg(), round(float(stored.geometry.x.iloc[0]), 4)
    (4490, 118.5771)
    """
    if isinstance(data, (GeoSeries, GeoDataFrame)):
        return _frame_to_storage(data, source, name)
    if isinstance(data, shapely.Geometry) or (isinstance(data, np.ndarray) and data.dtype == object):
        if source is None:
            raise CRSError(_no_crs_message(name))
        series = GeoSeries(np.atleast_1d(np.asarray(data, dtype=object)))
        geoms = np.asarray(_frame_to_storage(series, source, name).array)
        return geoms[0] if isinstance(data, shapely.Geometry) else geoms.reshape(data.shape)
    raise TypeError(
        f"{name} should be a GeoDataFrame, GeoSeries or shapely geometries, "
        f"got {type(data).__name__}"
    )


def _frame_to_storage(frame, source, name):
    system, crs = _what_coordinates(frame, source, name)
    raw = _raw_bounds(frame)
    if system in ("gcj02", "bd09"):
        _check_bounds(raw, True, False, system, name)
        return check_finite(_convert(frame, system, "cgcs2000"), name=name, read_as=system, raw_bounds=raw)
    _check_bounds(raw, crs.is_geographic, crs.is_projected, crs.name, name)
    if crs == STORAGE_CRS and frame.crs == STORAGE_CRS:
        return check_finite(frame, name=name)  # already stored: no copy
    if _is_earth_crs(crs):  # WGS84 or CGCS2000: relabel, no datum shift
        out = frame.set_crs(STORAGE_CRS, allow_override=True)
    else:
        try:
            out = frame.set_crs(crs, allow_override=True).to_crs(STORAGE_CRS)
        except pyproj.exceptions.ProjError as exc:  # a CRS PROJ knows but cannot bring here (Mars 2000)
            raise CRSError(f"{name}: {crs.name} cannot be transformed to CGCS2000 (EPSG:4490): {exc}") from None
    out.attrs = _mark_system(frame.attrs, "cgcs2000")
    return check_finite(out, name=name, read_as=crs, raw_bounds=raw)


def check_finite(data, *, name="data", read_as=None, raw_bounds=None):
    """Refuse geometries with a coordinate that is not a finite longitude/latitude.

    After a transform, a coordinate that does not fit the source CRS comes
    out as infinity (pyproj) rather than as an error: an easting with a
    Gauss-Krüger zone prefix read in a system without one, for example.
    Nothing gridgeo stores may hold such a coordinate. The rule: every x is
    finite and within ±180, every y finite and within ±90.

    Parameters
    ----------
    data : GeoDataFrame or GeoSeries
        In degrees (EPSG:4490 or another geographic CRS).
    name : str
        How to call `data` in the message.
    read_as : pyproj.CRS or str, optional
        The system `data` was converted from, named in the message.
    raw_bounds : tuple, optional
        The bounds before the transform, for :func:`suggest_crs`.

    Returns
    -------
    data
        Unchanged.

    Raises
    ------
    CRSError
        Naming the first rows at fault and, when the raw coordinates say
        which system they are in, that system.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> bad = gpd.GeoSeries([Point(118.5, 24.7), Point(float("inf"), 24.7)], crs=4490)
    >>> try:
    ...     check_finite(bad, name="stations.csv")
    ... except CRSError as e:
    ...     print(str(e)[:59])
    stations.csv: 1 row(s) have coordinates that are not finite
    """
    geoms = np.asarray(data.geometry.array if isinstance(data, GeoDataFrame) else data.array)
    xy, owner = shapely.get_coordinates(geoms, return_index=True)
    if not len(xy):
        return data
    # the extremes first (a NaN makes them NaN, and NaN fails every comparison), column by column
    # (numpy reduces a strided column many times faster than along axis 0 of both)
    x, y = xy[:, 0], xy[:, 1]
    if x.min() >= -180 and x.max() <= 180 and y.min() >= -90 and y.max() <= 90:
        return data
    bad = ~np.isfinite(xy).all(axis=1) | (np.abs(xy[:, 0]) > 180) | (np.abs(xy[:, 1]) > 90)
    if not bad.any():
        return data
    rows = np.unique(owner[bad])
    labels = [str(v) for v in data.index[rows[:5]]]
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    system = "" if read_as is None else f" when read as {getattr(read_as, 'name', read_as)}"
    message = (f"{name}: {len(rows)} row(s) have coordinates that are not finite longitudes/latitudes"
               f"{system} (rows {', '.join(labels)}{more}): the coordinates do not fit that coordinate system.")
    hints = suggest_crs(raw_bounds) if raw_bounds is not None else []
    if hints:
        message += f" {hints[0]['why']}: pass crs='{hints[0]['crs']}' ({hints[0]['name']})."
    else:
        message += " Check the coordinate system the file declares or the one passed with crs=."
    raise CRSError(message)


# 3-degree Gauss-Krüger zones 25-45 and 6-degree zones 13-23, zone-prefixed eastings
_GK3_PREFIXED = {"CGCS2000": 4513, "Xian 1980": 2349, "Beijing 1954": 2401}
_GK6_PREFIXED = {"CGCS2000": 4491, "Xian 1980": 2327, "Beijing 1954": 21413}
_CHINA_NORTHINGS = (1.0e5, 6.3e6)


def suggest_crs(bounds, *, near=None, max_distance_km=100.0):
    """Which projected system raw coordinates are most likely in, and why.

    The rule, on the raw bounds (metres, as in the file):

    - an easting of eight digits whose first two are 25–45 carries the
      zone of a 3-degree Gauss-Krüger system (39 518 000 is zone 39, central
      meridian 117°E): CGCS2000 zone *z* is EPSG:(4488 + *z*); 13–23 a
      6-degree zone, EPSG:(4478 + *z*). The Xi'an 1980 and Beijing 1954
      systems of the same zone are listed after CGCS2000 (older surveys).
    - an easting of six digits has no zone in it: the central meridian
      cannot be read off the coordinates. Given `near` (the lon/lat bounds
      of data known to be right, such as a store's grids), each CGCS2000
      3-degree zone "CM" system is tried, and the one putting the data
      within `max_distance_km` of `near` is suggested.

    Northings must lie within China's (100 km – 6 300 km).

    Parameters
    ----------
    bounds : (minx, miny, maxx, maxy)
        Raw coordinates.
    near : (minx, miny, maxx, maxy), optional
        Longitude/latitude bounds the data should lie near.
    max_distance_km : float, default 100

    Returns
    -------
    list of dict
        ``crs`` ("EPSG:4527"), ``name``, ``why``; best first, empty when
        nothing fits.

    Examples
    --------
    >>> [s["crs"] for s in suggest_crs((39_518_000, 2_735_000, 39_546_000, 2_760_000))]
    ['EPSG:4527', 'EPSG:2363', 'EPSG:2415']
    >>> suggest_crs((640_000, 2_715_000, 670_000, 2_760_000), near=(118.4, 24.5, 118.7, 24.9))[0]["crs"]
    'EPSG:4548'
    """
    if bounds is None:
        return []
    minx, miny, maxx, maxy = (float(b) for b in bounds)
    if not np.all(np.isfinite([minx, miny, maxx, maxy])):
        return []
    if not (_CHINA_NORTHINGS[0] <= miny and maxy <= _CHINA_NORTHINGS[1]):
        return []
    zone_min, zone_max = int(minx // 1_000_000), int(maxx // 1_000_000)
    out = []
    if minx >= 1e7 and maxx < 1e8 and zone_min == zone_max:
        zone = zone_min
        table = _GK3_PREFIXED if 25 <= zone <= 45 else _GK6_PREFIXED if 13 <= zone <= 23 else None
        first = 25 if 25 <= zone <= 45 else 13
        if table is not None:
            width = "3-degree" if first == 25 else "6-degree"
            why = (f"the eastings start with {zone}: the zone number of a {width} Gauss-Krüger system "
                   f"(x {minx:,.0f}..{maxx:,.0f})")
            for base in table.values():
                crs = pyproj.CRS.from_epsg(base + zone - first)
                out.append({"crs": f"EPSG:{crs.to_epsg()}", "name": crs.name, "why": why})
        return out
    if 0 <= minx and maxx < 1_000_000 and near is not None:
        cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
        nx, ny = (near[0] + near[2]) / 2, (near[1] + near[3]) / 2
        best = None
        for cm in range(_GK_FIRST_CM, _GK_LAST_CM + 1, 3):
            epsg = _GK_FIRST_EPSG + (cm - _GK_FIRST_CM) // 3
            lon, lat = pyproj.Transformer.from_crs(epsg, 4490, always_xy=True).transform(cx, cy)
            if not (np.isfinite(lon) and np.isfinite(lat)):
                continue
            km = _km_between(lon, lat, nx, ny)
            if best is None or km < best[0]:
                best = (km, epsg)
        if best is not None and best[0] <= max_distance_km:
            crs = pyproj.CRS.from_epsg(best[1])
            out.append({"crs": f"EPSG:{best[1]}", "name": crs.name,
                        "why": f"read as {crs.name} the data lie {best[0]:.0f} km from the store's layers"})
    return out


def _km_between(lon1, lat1, lon2, lat2):
    """Great-circle distance in km (a sphere of 6,371 km)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dl = np.radians(lon2 - lon1)
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return float(2 * 6371.0 * np.arcsin(np.sqrt(a)))


def _what_coordinates(frame, source, name):
    """(system, crs): system is 'gcj02'/'bd09' (crs None) or None (crs set)."""
    if source is None:
        if frame.crs is not None:
            return None, frame.crs
        recorded = frame.attrs.get("coordinate_system")
        if recorded in ("gcj02", "bd09"):
            return recorded, None
        raise CRSError(_no_crs_message(name))
    system = _alias(source)
    if system in ("gcj02", "bd09"):
        return system, None
    if system is not None:
        return None, {"wgs84": _WGS84_CRS, "cgcs2000": STORAGE_CRS}[system]
    try:
        return None, pyproj.CRS.from_user_input(source)
    except pyproj.exceptions.CRSError:
        raise CRSError(
            f"{name}: source={source!r} is neither one of {', '.join(SYSTEMS)} nor a CRS "
            "pyproj understands: pass crs='wgs84' (or 'cgcs2000', 'gcj02', 'bd09', an EPSG code)"
        ) from None


def _no_crs_message(name):
    return (
        f"{name} has no coordinate system: pass crs='wgs84' (or 'cgcs2000', 'gcj02', "
        "'bd09', an EPSG code) to say what it is"
    )


def _is_earth_crs(crs):
    """True for EPSG:4490 and EPSG:4326 (coordinates taken as identical)."""
    return crs.is_geographic and any(
        crs.equals(other, ignore_axis_order=True) for other in (STORAGE_CRS, _WGS84_CRS)
    )
