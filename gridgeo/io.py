"""Reading and writing the files Chinese grid offices exchange.

:func:`read` opens GeoJSON, GeoPackage, Shapefile (``.shp`` or ``.zip``),
GeoParquet, FlatGeobuf and tables (CSV, Excel) and returns a GeoDataFrame in
the storage CRS, CGCS2000 (EPSG:4490), through :func:`gridgeo.crs.to_storage`.
:func:`write` writes any of them back, atomically and never over an existing
file unless asked. The work is done by pyogrio (GDAL) and geopandas; this
module adds what Chinese data needs on top of them:

- shapefiles with GBK text and nothing saying so (no ``.cpg``, no language
  driver id in the ``.dbf``) come back with correct Chinese names;
- tables of longitude/latitude (CSV in UTF-8 or GBK, Excel) become points, and
  must say which coordinate system they are in, because a table never does;
- files that lie about their system (Amap GCJ-02 labelled WGS84) are read with
  ``crs="gcj02"``.
"""

import codecs
import contextlib
import io as _io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from gridgeo.crs import CRSError, to_storage

__all__ = ["ReadError", "read", "read_vector", "read_table", "read_rows", "write", "list_layers",
           "staged_directory"]


class ReadError(ValueError):
    """A file that cannot be read as asked; the message names the file, the
    layer or rows at fault and the underlying reason."""


# ----------------------------------------------------------------------------
# Formats
# ----------------------------------------------------------------------------

_TABLE_SUFFIXES = {".csv", ".xlsx", ".xlsm", ".xls"}
_EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xls"}

# suffix -> GDAL driver ("Parquet" and "CSV" are written by geopandas / pandas)
_WRITE_DRIVERS = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".parquet": "Parquet",
    ".fgb": "FlatGeobuf",
    ".csv": "CSV",
}
_UTF8_ONLY = {"GeoJSON", "GPKG", "Parquet", "FlatGeobuf"}

# the parts of a shapefile that a new write makes stale when it replaces one
_SHP_STALE = (
    ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".fbn", ".fbx",
    ".ain", ".aih", ".atx", ".ixs", ".mxs", ".shp.xml",
)

# column names recognised as coordinates, in order of preference (any case)
_LON_NAMES = ("lon", "lng", "long", "longitude", "x", "经度")
_LAT_NAMES = ("lat", "latitude", "y", "纬度")

# dBase language driver id (byte 29 of a .dbf) -> Windows code page, as GDAL
# reads it (ogr/ogrsf_frmts/shape). 0x00 (none) and 0x57 ("ANSI": whatever
# the writing machine used, GBK on a Chinese Windows) say nothing and are
# detected from the bytes instead.
_LDID_CODEPAGES = {
    0x01: 437, 0x02: 850, 0x03: 1252, 0x08: 865, 0x0A: 850,
    0x0B: 437, 0x0D: 437, 0x0E: 850, 0x0F: 437, 0x10: 850, 0x11: 437,
    0x12: 850, 0x13: 932, 0x14: 850, 0x15: 437, 0x16: 850, 0x17: 865,
    0x18: 437, 0x19: 437, 0x1A: 850, 0x1B: 437, 0x1C: 863, 0x1D: 850,
    0x1F: 852, 0x22: 852, 0x23: 852, 0x24: 860, 0x25: 850, 0x26: 866,
    0x37: 850, 0x40: 852, 0x4D: 936, 0x4E: 949, 0x4F: 950, 0x50: 874,
    0x58: 1252, 0x59: 1252, 0x64: 852, 0x65: 866, 0x66: 865, 0x67: 861,
    0x6A: 737, 0x6B: 857, 0x6C: 863, 0x78: 950, 0x79: 949, 0x7A: 936,
    0x7B: 932, 0x7C: 874, 0x86: 737, 0x87: 852, 0x88: 857, 0xC8: 1250,
    0xC9: 1251, 0xCA: 1254, 0xCB: 1253, 0xCC: 1257,
}  # the Mac code pages (0x04, 0x96, 0x97) are left to detection


# ----------------------------------------------------------------------------
# read
# ----------------------------------------------------------------------------


def read(path, *, layer=None, crs=None, encoding=None, columns=None):
    """Read a vector file or a coordinate table into EPSG:4490 (CGCS2000).

    The format follows the file name: ``.geojson``/``.json``, ``.gpkg``,
    ``.shp`` or a ``.zip`` holding shapefiles, ``.parquet`` (GeoParquet),
    ``.fgb``, and tables ``.csv``, ``.xlsx``, ``.xls`` (see
    :func:`read_table`). Any other file GDAL opens is read by GDAL.

    Parameters
    ----------
    path : str or os.PathLike
    layer : str or int, optional
        The layer of a file with several (a GeoPackage, a zip of shapefiles),
        or the sheet of a workbook. Required when there is more than one
        layer (not sheet); the error lists them.
    crs : str, int or pyproj.CRS, optional
        What the coordinates are: ``"wgs84"``, ``"cgcs2000"``, ``"gcj02"``
        (Amap, Tencent), ``"bd09"`` (Baidu) or anything pyproj accepts. It
        declares the system of a file that does not say, and overrides the
        file's own when that is known to be wrong. Required for tables.
    encoding : str, optional
        The text encoding. By default a shapefile's ``.cpg`` decides; without
        one, the ``.dbf``'s language driver id, and without that the text
        itself: UTF-8 if it decodes as UTF-8, else GB18030 (which reads GBK).
        Given, it always wins.
    columns : list of str, optional
        The attribute columns to read (the geometry always comes).

    Returns
    -------
    GeoDataFrame
        In EPSG:4490.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ReadError
        If the file, its layer or its columns cannot be read; the message
        names them and carries GDAL's reason.
    gridgeo.crs.CRSError
        If the file says no coordinate system and `crs` is not given, or its
        coordinates do not fit the system.

    See Also
    --------
    read_table : points from longitude/latitude columns.
    gridgeo.crs.to_storage : the conversion applied to what was read.

    Notes
    -----
    GeoJSON without a ``crs`` member is WGS84 by definition (RFC 7946), so
    GDAL reads it as such: Amap or Baidu data in GeoJSON need ``crs=``.

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo import io
    >>> folder = tempfile.mkdtemp()
    >>> amap = gpd.GeoDataFrame({"name": ["内坑镇服务站"]},
    ...                         geometry=[Point(118.5815, 24.7813)], crs=4326)
    >>> path = io.write(amap, f"{folder}/stations.geojson")
    >>> stations = io.read(path, crs="gcj02")  # labelled WGS84, really Amap
    >>> stations.crs.to_epsg(), round(float(stations.geometry.x.iloc[0]), 4)
    (4490, 118.5771)
    """
    path = os.fspath(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _TABLE_SUFFIXES:
        frame = read_table(path, crs=crs, sheet=layer, encoding=encoding)
        return _select_columns(frame, columns, path)
    frame = read_vector(path, layer=layer, encoding=encoding, columns=columns)
    return to_storage(frame, source=crs, name=frame.attrs["source_name"])


def read_vector(path, *, layer=None, encoding=None, columns=None):
    """A vector file as it is: its own CRS (None if it says none), nothing converted.

    :func:`read` is this followed by :func:`gridgeo.crs.to_storage`; the
    intake (:mod:`gridgeo.intake`) reads with it so that it can look at the
    raw coordinates before deciding what they are. Text decoding, layer
    choice and exact whole numbers of wide .dbf fields are as in :func:`read`.

    Returns
    -------
    GeoDataFrame
        ``attrs["source_name"]`` names the file (and layer) for messages.

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo import io
    >>> folder = tempfile.mkdtemp()
    >>> gk = gpd.GeoDataFrame({"名称": ["站"]}, geometry=[Point(39_518_000, 2_735_000)], crs=4527)
    >>> raw = io.read_vector(io.write(gk, f"{folder}/gk.gpkg"))
    >>> raw.crs.to_epsg(), float(raw.geometry.x.iloc[0])
    (4527, 39518000.0)
    """
    path = os.fspath(path)
    _check_exists(path)
    suffix = os.path.splitext(path)[1].lower()
    if suffix in _TABLE_SUFFIXES:
        raise ReadError(f"{path} is a table: read it with read_table (or read_rows for its raw cells)")
    if suffix == ".parquet":
        if layer is not None:
            raise ValueError(f"{path}: a GeoParquet file holds one layer; drop layer={layer!r}")
        frame, name = _read_parquet(path, columns), path
    else:
        source, layer, name = _open_layer(path, layer)
        if encoding is None:
            encoding = _shapefile_encoding(path, source)
        frame = _read_ogr(source, layer, encoding, columns, name)
        frame = _exact_wide_numbers(frame, path, source, encoding)
    frame.attrs["source_name"] = name
    return frame


def _check_exists(path):
    if path.startswith("/vsi") or "://" in path or os.path.exists(path):
        return
    where = "" if os.path.isabs(path) else f" (relative to {os.getcwd()})"
    raise FileNotFoundError(f"{path} does not exist{where}: check the path")


def _open_layer(path, layer):
    """(GDAL source, layer to read, name for messages) for `path`."""
    if path.lower().endswith(".zip"):
        members = _zipped_shapefiles(path)
        if members:
            stem = _choose_layer(path, [_stem(m) for m in members], layer)
            member = members[[_stem(m) for m in members].index(stem)]
            return f"/vsizip/{os.path.abspath(path)}/{member}", None, f"{path}:{stem}"
    names = [name for name, _ in list_layers(path)]
    chosen = _choose_layer(path, names, layer)
    if layer is None and len(names) == 1:
        return path, None, path
    return path, chosen, f"{path}:{chosen}"


def _choose_layer(path, names, layer):
    """The layer name to read, or a ReadError saying which exist."""
    listing = ", ".join(repr(n) for n in names) or "none"
    if layer is None:
        if len(names) > 1:
            raise ReadError(
                f"{path} has {len(names)} layers ({listing}): say which one to read (layer=... in "
                "Python, --sheet on the command line)"
            )
        if not names:
            raise ReadError(f"{path} has no layers to read")
        return names[0]
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if 0 <= layer < len(names):
            return names[layer]
    elif layer in names:
        return layer
    raise ReadError(f"{path} has no layer {layer!r}; its layers are {listing}")


def _zipped_shapefiles(path):
    try:
        with zipfile.ZipFile(path) as archive:
            return [m for m in archive.namelist() if m.lower().endswith(".shp")
                    and not os.path.basename(m).startswith("._")]
    except zipfile.BadZipFile as exc:
        raise ReadError(f"cannot read {path}: not a zip file ({exc})") from None


def _stem(member):
    return os.path.splitext(os.path.basename(member))[0]


def _read_ogr(source, layer, encoding, columns, name):
    try:
        if columns is not None:
            fields = pyogrio.read_info(source, layer=layer, encoding=encoding)["fields"]
            _check_columns(columns, list(fields), name)
            columns = list(columns)
        return pyogrio.read_dataframe(source, layer=layer, encoding=encoding, columns=columns)
    except (DataSourceError, DataLayerError) as exc:
        raise ReadError(f"cannot read {name}: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ReadError(
            f"cannot read {name}: its text does not decode as "
            f"{encoding or 'the encoding it declares'} ({exc}). Pass the right encoding=..., "
            "e.g. 'GB18030' or 'UTF-8'; if that is right, a value was cut in the middle of a "
            "character by the program that wrote the file: export it again"
        ) from exc


def _read_parquet(path, columns):
    import pyarrow.parquet as pq
    from pyarrow import ArrowException

    try:
        if columns is not None:
            schema = pq.read_schema(path)
            _check_columns(columns, schema.names, path)
            geo = json.loads((schema.metadata or {}).get(b"geo", b"{}"))
            primary = geo.get("primary_column", "geometry")
            columns = list(columns) + ([primary] if primary not in columns else [])
        return gpd.read_parquet(path, columns=columns)
    except ReadError:
        raise
    except (ArrowException, ValueError) as exc:
        raise ReadError(f"cannot read {path} as GeoParquet: {exc}") from exc


def _check_columns(columns, available, name):
    if isinstance(columns, str):
        raise TypeError(f"columns should be a list of column names, got the string {columns!r}")
    missing = [c for c in columns if c not in available]
    if missing:
        raise ReadError(
            f"{name} has no column {', '.join(map(repr, missing))}; its columns are "
            f"{', '.join(map(repr, available))}"
        )


def _select_columns(frame, columns, name):
    if columns is None:
        return frame
    _check_columns(columns, [c for c in frame.columns if c != frame.geometry.name], name)
    return frame[[*columns, frame.geometry.name]]


# ----------------------------------------------------------------------------
# Shapefile encodings
# ----------------------------------------------------------------------------


def _shapefile_encoding(path, source):
    """The encoding to read the shapefile `source` with, or None to let GDAL
    decide (a .cpg says it, or `source` is not a shapefile).

    `path` is what the user gave: the .shp, or the .zip `source` is in.
    """
    if not source.lower().endswith(".shp"):
        return None
    sidecar = _sidecar_reader(path, source)
    if sidecar(".cpg") is not None:
        return None  # GDAL reads the .cpg
    data = sidecar(".dbf")
    if data is None or len(data) < 32:
        return None
    codepage = _LDID_CODEPAGES.get(int(data[29]))
    if codepage == 936:
        return "GB18030"  # a superset of GBK
    if codepage is not None:
        return f"CP{codepage}"  # GDAL recodes with iconv, which knows these names
    return _detect_dbf_encoding(data)


def _sidecar_reader(path, source):
    """A function: suffix (".dbf") -> that file of the shapefile as a uint8
    array, or None if there is none. Either case of the suffix is found."""
    if source.startswith("/vsizip/"):
        member = source[len(f"/vsizip/{os.path.abspath(path)}/"):]

        def zipped(suffix):
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
                for part in (member[:-4] + suffix, member[:-4] + suffix.upper()):
                    if part in names:
                        return np.frombuffer(archive.read(part), np.uint8)
            return None

        return zipped

    def local(suffix):
        for part in (source[:-4] + suffix, source[:-4] + suffix.upper()):
            if os.path.exists(part):
                if os.path.getsize(part) == 0:
                    return np.zeros(0, np.uint8)
                return np.memmap(part, dtype=np.uint8, mode="r")
        return None

    return local


def _detect_dbf_encoding(data):
    """'UTF-8' if every text value of the .dbf bytes `data` decodes as UTF-8,
    else 'GB18030'.

    Only the character (C) fields and field names are looked at. A value cut
    short in the middle of a character (a full fixed-width field) counts as
    UTF-8.
    """
    header_len = int.from_bytes(bytes(data[8:10]), "little")
    record_len = int.from_bytes(bytes(data[10:12]), "little")
    n_records = int.from_bytes(bytes(data[4:8]), "little")
    names, text_fields, offset = [], [], 1
    for start in range(32, header_len - 31, 32):
        descriptor = bytes(data[start:start + 32])
        if descriptor[0] == 0x0D:
            break
        names.append(descriptor[:11].split(b"\x00", 1)[0])
        if descriptor[11:12] == b"C":
            text_fields.append((offset, descriptor[16]))
        offset += descriptor[16]
    if not all(_utf8_value(n) for n in names):
        return "GB18030"
    if record_len == 0 or offset > record_len:
        return "UTF-8"
    n_records = min(n_records, (len(data) - header_len) // record_len)
    records = np.asarray(data[header_len:header_len + n_records * record_len])
    records = records.reshape(n_records, record_len)
    for start in range(0, n_records, 65536):
        chunk = records[start:start + 65536]
        for field_offset, width in text_fields:
            block = chunk[:, field_offset:field_offset + width]
            block = block[(block >= 0x80).any(axis=1)]
            if not len(block):
                continue
            try:
                block.tobytes().decode("utf-8")  # fast path: every value whole
            except UnicodeDecodeError:
                if not all(_utf8_value(row.tobytes()) for row in block):
                    return "GB18030"
    return "UTF-8"


def _exact_wide_numbers(frame, path, source, encoding=None):
    """Replace the float columns GDAL made of wide whole-number .dbf fields
    with the exact digits the .dbf holds, as text.

    A .dbf stores a number as ASCII digits. GDAL reads a numeric field of 19
    digits or more (``N(19,0)``: what GDAL itself writes for a 64-bit integer,
    and what offices' 19-digit level-3 grid codes come in) as a float, which
    keeps only about 16 digits: 3505821062010101001 and ...002 both become
    3.505821062010101e18. The digits are read from the file instead, so a
    code survives exactly; an empty field is missing.
    """
    if not source.lower().endswith(".shp"):
        return frame
    data = _sidecar_reader(path, source)(".dbf")
    if data is None or len(data) < 32:
        return frame
    fields = _dbf_fields(data, encoding)
    wide = [f for f in fields if f[1] in b"NF" and f[3] == 0 and f[2] >= 19 and f[0] in frame.columns
            and pd.api.types.is_float_dtype(frame[f[0]].dtype)]
    if not wide:
        return frame
    header_len = int.from_bytes(bytes(data[8:10]), "little")
    record_len = int.from_bytes(bytes(data[10:12]), "little")
    n_records = int.from_bytes(bytes(data[4:8]), "little")
    n_records = min(n_records, (len(data) - header_len) // max(record_len, 1))
    records = np.asarray(data[header_len:header_len + n_records * record_len]).reshape(n_records, record_len)
    records = records[records[:, 0] != 0x2A]  # GDAL skips records marked deleted
    if len(records) != len(frame):
        return frame  # not row for row (a filter was applied): leave GDAL's reading
    frame = frame.copy()
    for name, _, width, _, offset in wide:
        raw = records[:, offset:offset + width].tobytes()
        texts = [raw[i:i + width].decode("ascii", "replace").strip() for i in range(0, len(raw), width)]
        values = pd.array([t if t and t not in ("*" * len(t),) else None for t in texts], dtype="str")
        frame[name] = values
    return frame


def _dbf_fields(data, encoding=None):
    """[(name, type byte, width, decimals, offset in the record)] of a .dbf."""
    header_len = int.from_bytes(bytes(data[8:10]), "little")
    out, offset = [], 1
    for start in range(32, header_len - 31, 32):
        descriptor = bytes(data[start:start + 32])
        if descriptor[0] == 0x0D:
            break
        raw_name = descriptor[:11].split(b"\x00", 1)[0]
        for candidate in (encoding, "utf-8", "gb18030"):
            try:
                name = raw_name.decode(candidate or "utf-8")
                break
            except (UnicodeDecodeError, LookupError):
                continue
        else:
            name = raw_name.decode("latin-1")
        out.append((name, descriptor[11:12], descriptor[16], descriptor[17], offset))
        offset += descriptor[16]
    return out


def _utf8_value(raw):
    """True if `raw` is UTF-8, perhaps cut in the middle of its last character."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(raw.rstrip(b" \x00"), final=False)
    except UnicodeDecodeError:
        return False
    return True


# ----------------------------------------------------------------------------
# Tables
# ----------------------------------------------------------------------------


def read_table(path_or_frame, *, lon=None, lat=None, crs=None, sheet=None, errors="raise",
               encoding=None):
    """Points from a table of longitudes and latitudes, in EPSG:4490.

    Parameters
    ----------
    path_or_frame : str, os.PathLike or pandas.DataFrame
        A ``.csv`` (UTF-8 with or without BOM, or GBK/GB18030), an Excel
        workbook (``.xlsx``; ``.xls`` needs ``xlrd``) or a DataFrame.
    lon, lat : str, optional
        The coordinate columns. By default found by name, in any case:
        ``lon``, ``lng``, ``long``, ``longitude``, ``x``, ``经度`` and ``lat``,
        ``latitude``, ``y``, ``纬度``.
    crs : str, int or pyproj.CRS
        Required: what the coordinates are (``"wgs84"``, ``"cgcs2000"``,
        ``"gcj02"``, ``"bd09"`` or anything pyproj accepts). A table never
        says.
    sheet : str or int, optional
        The Excel sheet; by default the first.
    errors : {"raise", "keep"}, default "raise"
        What to do with rows whose coordinates are missing, not numbers or
        infinite: refuse the table naming them, or keep them with a None
        geometry (:func:`gridgeo.validate` reports them later).
    encoding : str, optional
        The CSV's encoding; by default UTF-8 (BOM or not) if the file decodes
        as UTF-8, else GB18030 (which reads GBK).

    Returns
    -------
    GeoDataFrame
        The other columns and a point geometry, in EPSG:4490. The coordinate
        columns are dropped: after conversion the geometry holds the
        coordinates, and the raw ones (e.g. GCJ-02) would only mislead.

    Raises
    ------
    gridgeo.crs.CRSError
        If `crs` is not given, or the coordinates do not fit it.
    ReadError
        If the coordinate columns are not found, or (with ``errors="raise"``)
        some rows have no usable coordinates: the message gives the first
        line numbers as a spreadsheet shows them (the header is line 1).

    Notes
    -----
    Blank lines of a file are skipped (but counted in line numbers). Columns
    gridgeo keeps codes and names in (``code``, ``parent``, ``grid_code``,
    ``station_id``, ``name``…) are read as text, so leading zeros survive.
    Line numbers assume one header line and no line breaks inside quoted
    fields.

    Examples
    --------
    >>> import pandas as pd
    >>> from gridgeo.io import read_table
    >>> table = pd.DataFrame({"名称": ["内坑镇服务站"],
    ...                       "经度": [118.5815], "纬度": [24.7813]})
    >>> points = read_table(table, crs="gcj02")
    >>> points.columns.tolist(), round(float(points.geometry.x.iloc[0]), 4)
    (['名称', 'geometry'], 118.5771)
    """
    if errors not in ("raise", "keep"):
        raise ValueError(f"errors should be 'raise' or 'keep', got {errors!r}")
    name = _table_name(path_or_frame, sheet)
    if crs is None:
        raise CRSError(
            f"{name}: a table of coordinates never says its coordinate system: pass "
            "crs='wgs84' (GPS), 'cgcs2000', 'gcj02' (Amap, Tencent), 'bd09' (Baidu) or an "
            "EPSG code"
        )
    frame, lines = _load_table(path_or_frame, sheet, encoding, name)
    lon = _coordinate_column(frame, lon, _LON_NAMES, "lon", name)
    lat = _coordinate_column(frame, lat, _LAT_NAMES, "lat", name)
    x, y, bad = _coordinates(frame, lon, lat)
    if bad.any() and errors == "raise":
        raise ReadError(_bad_rows_message(frame, lon, lat, bad, lines, name))
    table = gpd.GeoDataFrame(frame.drop(columns=[lon, lat]),
                             geometry=_points(x, y, bad, frame.index))
    return to_storage(table, source=crs, name=name)


def read_rows(path, *, sheet=None, encoding=None):
    """The cells of a CSV or Excel table as they are, and the line of each row.

    Every CSV cell comes as text (so ``"007"`` and ``"350582106201"`` keep
    every digit); Excel cells come as Excel holds them (text, whole numbers
    as int, other numbers as float, dates as datetimes), so that a caller can
    tell a number from text. Blank lines are skipped.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv`` (UTF-8 with or without BOM, UTF-16 with BOM, or GBK/GB18030),
        ``.xlsx``/``.xlsm`` (``.xls`` needs ``xlrd``).
    sheet : str or int, optional
        The Excel sheet; by default the first.
    encoding : str, optional
        The CSV's encoding; by default detected as in :func:`read_table`.

    Returns
    -------
    frame : pandas.DataFrame
    lines : ndarray of int
        The line (spreadsheet row) number of each row; the header is line 1.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridgeo import io
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "站点.csv"
    >>> _ = path.write_bytes("站点编号,经度\\n007,118.5\\n\\n008,118.6\\n".encode("gbk"))
    >>> frame, lines = io.read_rows(path)
    >>> frame["站点编号"].tolist(), lines.tolist()
    (['007', '008'], [2, 4])
    """
    name = _table_name(path, sheet)
    return _load_table(path, sheet, encoding, name, raw=True)


def _table_name(path_or_frame, sheet):
    if isinstance(path_or_frame, pd.DataFrame):
        return "the DataFrame"
    path = os.fspath(path_or_frame)
    return path if sheet is None else f"{path}:{sheet}"


def _load_table(path_or_frame, sheet, encoding, name, raw=False):
    """(frame, how the user names its rows: file line numbers or index labels).

    ``raw``: every CSV cell as text, Excel cells as Excel holds them."""
    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame, None
    path = os.fspath(path_or_frame)
    _check_exists(path)
    suffix = os.path.splitext(path)[1].lower()
    if sheet is not None and suffix not in _EXCEL_SUFFIXES:
        raise ValueError(f"{path}: a CSV file has no sheets; drop sheet={sheet!r}")
    text = _text_columns()
    try:
        if suffix in _EXCEL_SUFFIXES:
            frame = pd.read_excel(path, sheet_name=0 if sheet is None else sheet, dtype=object if raw else text)
        else:
            data = Path(path).read_bytes()
            frame = pd.read_csv(_io.BytesIO(data), encoding=encoding or _text_encoding(data),
                                dtype=str if raw else text, skip_blank_lines=False, keep_default_na=not raw)
            if raw:
                frame = frame.replace("", None) if len(frame) else frame
    except ImportError as exc:
        exc.add_note(f"while reading {name}: save it as .xlsx, or install the package named above")
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ReadError(f"cannot read {name} as a table: {exc}") from exc
    lines = np.arange(len(frame)) + 2  # line 1 is the header
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.any():
        frame, lines = frame[~blank].reset_index(drop=True), lines[~blank]
    return frame, lines


def _text_columns():
    """{column: "str"} for the text columns of every gridgeo layer."""
    from gridgeo.schema import LAYERS

    return {col: "str" for spec in LAYERS.values() for col, kind in spec.items() if kind == "str"}


def _text_encoding(raw):
    """The encoding of the text bytes `raw`: UTF-8 (with or without BOM),
    UTF-16 with BOM, else GB18030."""
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


def _coordinate_column(frame, given, candidates, keyword, name):
    columns = list(frame.columns)
    if given is not None:
        if given not in columns:
            raise ReadError(
                f"{name} has no column {given!r} (given as {keyword}=); its columns are "
                f"{', '.join(map(repr, columns))}"
            )
        return given
    for candidate in candidates:
        found = [c for c in columns if str(c).strip().lower() == candidate]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ReadError(
                f"{name} has several {keyword} columns {found}: say which with {keyword}=..."
            )
    raise ReadError(
        f"{name}: no {keyword} column found among {', '.join(map(repr, columns))}; expected "
        f"one named {', '.join(candidates)} (any case), or say which with {keyword}=..."
    )


def _coordinates(frame, lon, lat):
    """(x, y, bad): float arrays and where either is missing, text or infinite."""
    x = pd.to_numeric(frame[lon], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    y = pd.to_numeric(frame[lat], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return x, y, ~(np.isfinite(x) & np.isfinite(y))


def _bad_rows_message(frame, lon, lat, bad, lines, name, show=5):
    """`lines`: the file line number of each row, or None to use index labels."""
    rows = np.flatnonzero(bad)
    where, labels = ("rows (index)", frame.index) if lines is None else ("lines", lines)
    details = []
    for row in rows[:show]:
        problems = [_value_problem(col, frame[col].iloc[row]) for col in (lon, lat)]
        details.append(f"{labels[row]} ({'; '.join(p for p in problems if p)})")
    more = f" and {len(rows) - show} more" if len(rows) > show else ""
    return (
        f"{name}: {len(rows)} row(s) without usable coordinates in columns {lon!r}/{lat!r}, "
        f"at {where} {', '.join(details)}{more}. Correct them, or pass errors='keep' to keep "
        "those rows with no geometry"
    )


def _value_problem(column, value):
    """What is wrong with one coordinate value, or "" if nothing."""
    if pd.isna(value) or (isinstance(value, str) and not value.strip()):
        return f"{column} is empty"
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number):
        return f"{column} {value!r} is not a number"
    if not np.isfinite(number):
        return f"{column} {value!r} is not finite"
    return ""


def _points(x, y, bad, index):
    """Points from x/y, None where `bad`."""
    geoms = np.full(len(x), None, dtype=object)
    geoms[~bad] = np.asarray(gpd.points_from_xy(x[~bad], y[~bad]))
    return gpd.GeoSeries(geoms, index=index)


# ----------------------------------------------------------------------------
# write
# ----------------------------------------------------------------------------


def write(gdf, path, *, layer=None, driver=None, overwrite=False, encoding="UTF-8"):
    """Write `gdf` to a file, atomically, never over existing data unless asked.

    The format follows the file name: ``.geojson``/``.json``, ``.gpkg``,
    ``.shp``, ``.parquet`` (GeoParquet), ``.fgb`` (FlatGeobuf), ``.csv``
    (points as ``lon``/``lat`` columns, ``x``/``y`` in a projected CRS), or
    any GDAL `driver`. The frame is written in its own CRS, as it is.

    The data go to a temporary file in the same directory, then
    ``os.replace`` puts it in place: a failure never leaves half a file and
    never touches the existing one. A new layer of an existing GeoPackage is
    added to a copy of the file, which then replaces it, so the other layers
    survive whatever happens.

    Parameters
    ----------
    gdf : GeoDataFrame
    path : str or os.PathLike
    layer : str, optional
        The layer name in a GeoPackage (by default the file name without its
        extension); the ``name`` of a GeoJSON.
    driver : str, optional
        A GDAL driver name, for other formats or other file names.
    overwrite : bool, default False
        Replace an existing file (for a GeoPackage, an existing layer; the
        other layers are kept). Without it an existing one is an error.
    encoding : str, default "UTF-8"
        The text encoding of a shapefile's ``.dbf`` or of a CSV. A shapefile
        always gets a ``.cpg`` saying it; ``"GBK"`` suits old desktop GIS. A
        UTF-8 CSV gets a BOM, so that Excel reads its Chinese. Other formats
        are UTF-8 by definition.

    Returns
    -------
    pathlib.Path
        The path written (for a shapefile, the ``.shp``).

    Raises
    ------
    FileExistsError
        If the file (or GeoPackage layer) exists and `overwrite` is False.
    ValueError
        If `encoding` cannot represent some text (the message names the
        column and row), or the format cannot hold what `gdf` holds.

    Notes
    -----
    Shapefile field names are at most 10 bytes: three Chinese characters in
    UTF-8, five in GBK; GDAL shortens longer ones with a warning. FlatGeobuf
    stores features in the order of its spatial index, not the frame's. A
    shapefile is several files, each replaced atomically, the ``.shp`` last. Two
    processes adding layers to the same GeoPackage at once can lose one of
    them: use :mod:`gridgeo.store` for shared editing.

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from shapely import box
    >>> from gridgeo import io
    >>> folder = tempfile.mkdtemp()
    >>> towns = gpd.GeoDataFrame({"name": ["内坑镇"]}, geometry=[box(118.5, 24.8, 118.6, 24.9)],
    ...                          crs=4490)
    >>> io.write(towns, f"{folder}/jinjiang.gpkg", layer="towns").name
    'jinjiang.gpkg'
    >>> io.write(towns, f"{folder}/jinjiang.gpkg", layer="grids").name
    'jinjiang.gpkg'
    >>> io.list_layers(f"{folder}/jinjiang.gpkg")
    [('towns', 'Polygon'), ('grids', 'Polygon')]
    """
    if not isinstance(gdf, gpd.GeoDataFrame):
        raise TypeError(f"gdf should be a GeoDataFrame, got {type(gdf).__name__}")
    target = Path(path)
    driver = _write_driver(target, driver)
    _check_write_args(gdf, target, driver, layer, encoding)
    adding_to = _existing_to_keep(target, driver, layer, overwrite)
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {target}: the folder {target.parent} does not exist"
        )
    stage = Path(tempfile.mkdtemp(prefix=".gridgeo-", dir=target.parent))
    step = "writing"
    try:
        staged = stage / target.name
        if adding_to:
            shutil.copy2(target, staged)
        _write_staged(gdf, staged, driver, layer, encoding)
        step = "moving"
        _move_into_place(stage, target, driver)
    except Exception as exc:
        exc.add_note(
            f"while writing {target}: any existing file there was left unchanged"
            if step == "writing" else
            f"while moving the new files of {target} into place: check them"
        )
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return target


def _write_driver(target, driver):
    if driver is not None:
        return driver
    suffix = target.suffix.lower()
    if suffix not in _WRITE_DRIVERS:
        raise ValueError(
            f"cannot tell the format of {target} from its extension: use one of "
            f"{', '.join(_WRITE_DRIVERS)}, or pass driver= (a GDAL driver name)"
        )
    return _WRITE_DRIVERS[suffix]


def _check_write_args(gdf, target, driver, layer, encoding):
    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        raise ValueError(
            f"{target}: unknown encoding={encoding!r}: use 'UTF-8' or 'GBK'"
        ) from None
    if driver in _UTF8_ONLY and not utf8:
        raise ValueError(f"{target}: {driver} is always UTF-8; drop encoding={encoding!r}")
    if driver in ("Parquet", "CSV") and layer is not None:
        raise ValueError(f"{target}: a {driver} file holds one table; drop layer={layer!r}")
    if driver == "CSV":
        _check_points(gdf, target)
    if not utf8:
        _check_encodable(gdf, encoding, target)


def _check_points(gdf, target):
    kinds = gdf.geometry.geom_type
    other = np.flatnonzero(kinds.notna().to_numpy() & (kinds != "Point").to_numpy())
    if len(other):
        first = gdf.index[other[0]]
        raise ValueError(
            f"{target}: a CSV holds points as lon/lat columns, but {len(other)} row(s) are not "
            f"points (index {first!r} is a {kinds.iloc[other[0]]}): write "
            "gdf.representative_point() instead, or choose .gpkg / .geojson"
        )


def _check_encodable(gdf, encoding, target):
    """Refuse text `encoding` cannot hold, rather than letting GDAL write '?'."""
    fix = "write with encoding='UTF-8' (or 'GB18030')"
    for column in gdf.columns:
        try:
            str(column).encode(encoding)
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{target}: {encoding} cannot hold {str(column)[exc.start:exc.end]!r} in the "
                f"column name {column!r}: rename the column or {fix}"
            ) from None
        values = gdf[column]
        if column == gdf.geometry.name or not (
            pd.api.types.is_object_dtype(values.dtype) or isinstance(values.dtype, pd.StringDtype)
        ):
            continue
        texts = [v for v in values.dropna().unique() if isinstance(v, str)]
        try:
            "\n".join(texts).encode(encoding)  # fast path: all of it fits
        except UnicodeEncodeError:
            for text in texts:
                try:
                    text.encode(encoding)
                except UnicodeEncodeError as exc:
                    row = gdf.index[(values == text).to_numpy()][0]
                    raise ValueError(
                        f"{target}: {encoding} cannot hold {text[exc.start:exc.end]!r} in "
                        f"column {column!r} at index {row!r} ({text!r}): {fix}"
                    ) from None


def _existing_to_keep(target, driver, layer, overwrite):
    """True if `target` is a GeoPackage whose other layers must be kept.

    Raises FileExistsError when writing would replace data without `overwrite`.
    """
    if driver == "GPKG" and target.exists():
        name = layer if layer is not None else target.stem
        try:
            layers = [n for n, _ in list_layers(target)]
        except ReadError as exc:
            raise ReadError(f"cannot add layer {name!r} to {target}: {exc}") from exc
        if name in layers and not overwrite:
            raise FileExistsError(
                f"{target} already has a layer {name!r}: pass overwrite=True (--overwrite on the command line) to replace that "
                "layer (the other layers are kept), or choose another layer="
            )
        return True
    parts = [target]
    if driver == "ESRI Shapefile":
        parts += [target.with_suffix(s) for s in (".shx", ".dbf")]
    if not overwrite and any(p.exists() for p in parts):
        raise FileExistsError(f"{target} already exists: pass overwrite=True (--overwrite on the command line) "
                              "to replace it")
    return False


def _write_staged(gdf, staged, driver, layer, encoding):
    if driver == "Parquet":
        gdf.to_parquet(staged)
    elif driver == "CSV":
        _csv_frame(gdf).to_csv(
            staged, index=False,
            encoding="utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding,
        )
    else:
        options = {} if driver in _UTF8_ONLY else {"encoding": encoding}
        pyogrio.write_dataframe(gdf, staged, layer=layer, driver=driver, **options)
        if driver == "ESRI Shapefile" and not staged.with_suffix(".cpg").exists():
            staged.with_suffix(".cpg").write_text(encoding, encoding="ascii")


def _csv_frame(gdf):
    """`gdf` as a table: its attributes and lon/lat (x/y when projected)."""
    projected = gdf.crs is not None and gdf.crs.is_projected
    x_name, y_name = ("x", "y") if projected else ("lon", "lat")
    geometry = gdf.geometry
    present = geometry.notna().to_numpy() & ~geometry.is_empty.to_numpy()
    x = np.full(len(gdf), np.nan)
    y = np.full(len(gdf), np.nan)
    x[present] = geometry[present].x.to_numpy()
    y[present] = geometry[present].y.to_numpy()
    table = pd.DataFrame(gdf.drop(columns=[geometry.name, x_name, y_name], errors="ignore"))
    table[x_name], table[y_name] = x, y
    return table


def _move_into_place(stage, target, driver):
    """Move every file of `stage` next to `target`, the main file last."""
    parts = sorted(stage.iterdir(), key=lambda p: p.name == target.name)
    if target.exists() and (stage / target.name).exists():
        shutil.copymode(target, stage / target.name)  # keep the file's permissions
    for part in parts:
        os.replace(part, target.parent / part.name)
    if driver == "ESRI Shapefile":  # drop sidecars of the replaced shapefile
        written = {p.name.lower() for p in parts}
        for suffix in _SHP_STALE:
            stale = target.parent / (target.stem + suffix)
            if stale.name.lower() not in written and stale.exists():
                stale.unlink()


# ----------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------


@contextlib.contextmanager
def staged_directory(directory, *, overwrite: bool = False):
    """Write a whole directory beside its place, then move it there in one step.

    Yields a temporary sibling directory to fill. When the block ends, the
    sibling replaces ``directory``; if it raises, the sibling is removed and
    ``directory`` is left exactly as it was. So a crash never leaves a
    half-written sample or tile set, and never damages the previous one.

    Parameters
    ----------
    directory : str or os.PathLike
    overwrite : bool, default False
        Replace a directory that is not empty; otherwise that is refused.

    Raises
    ------
    FileExistsError
        If ``directory`` is not empty and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "out"
    >>> with staged_directory(target) as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> (target / "a.txt").read_text()
    'done'
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not overwrite:
        raise FileExistsError(f"{directory} is not empty: pass overwrite=True (--overwrite) to replace it")
    directory.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        yield staged
        staged.chmod(0o755)
        if directory.exists():
            old = directory.with_name(f".{directory.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            directory.rename(old)
            staged.rename(directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staged.rename(directory)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def list_layers(path):
    """The layers of a file, as (name, geometry type) pairs.

    Parameters
    ----------
    path : str or os.PathLike
        Any file GDAL reads, a zip of shapefiles (layers named for the
        ``.shp`` files, wherever they are in the archive) or a GeoParquet file.

    Returns
    -------
    list of (str, str or None)
        In the file's order; the geometry type is None for a table without
        geometry.

    Raises
    ------
    FileNotFoundError, ReadError

    Examples
    --------
    >>> import tempfile, geopandas as gpd
    >>> from shapely import Point
    >>> from gridgeo import io
    >>> folder = tempfile.mkdtemp()
    >>> sites = gpd.GeoDataFrame(geometry=[Point(118.58, 24.78)], crs=4490)
    >>> io.list_layers(io.write(sites, f"{folder}/sites.fgb"))
    [('sites', 'Point')]
    """
    path = os.fspath(path)
    _check_exists(path)
    if path.lower().endswith(".parquet"):
        return [(_stem(path), _parquet_geometry_type(path))]
    try:
        if path.lower().endswith(".zip"):
            members = _zipped_shapefiles(path)
            if members:
                return [
                    (_stem(m), pyogrio.read_info(f"/vsizip/{os.path.abspath(path)}/{m}")
                     ["geometry_type"])
                    for m in members
                ]
        return [(str(name), kind) for name, kind in pyogrio.list_layers(path)]
    except (DataSourceError, DataLayerError) as exc:
        raise ReadError(f"cannot read {path}: {exc}") from exc


def _parquet_geometry_type(path):
    import pyarrow.parquet as pq
    from pyarrow import ArrowException

    try:
        geo = json.loads((pq.read_schema(path).metadata or {}).get(b"geo", b"{}"))
    except (ArrowException, ValueError) as exc:
        raise ReadError(f"cannot read {path} as GeoParquet: {exc}") from exc
    column = geo.get("columns", {}).get(geo.get("primary_column"), {})
    kinds = {k.removesuffix(" Z") for k in column.get("geometry_types", [])}
    return kinds.pop() if len(kinds) == 1 else "Unknown"
