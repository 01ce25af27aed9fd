"""Read an office's file, work out what it holds, map it to the schema and say what is wrong.

:func:`inspect` is the one road in: ``gridgeo load``, the service's
``POST /imports`` and the workbench's upload all go through it. It never
raises for what is in the file: everything it finds is a :class:`Finding`
of the returned :class:`Intake` (an error, a warning or a note, naming the
file, the column, the rows and the codes, in Chinese and English), and an
intake with an error is refused by :func:`gridgeo.intake.load`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo import crs as gcrs
from gridgeo import io as gio
from gridgeo.intake import aliases, coordinates
from gridgeo.intake.codes import exact_codes
from gridgeo.intake.mapping import (Mapping, detect_columns, kind_from_columns, kind_from_name, level_from_name,
                                    targets as _targets)
from gridgeo.intake.offset import detect_offset
from gridgeo.schema import DEFAULT_SCHEME, LAYERS, CodeScheme, SchemaError, check

__all__ = ["Finding", "Intake", "inspect"]

_TABLES = {".csv", ".xlsx", ".xlsm", ".xls"}
_RESERVED = {"fid", "geom", "revision", "author", "retired", "retired_by", "plan_id", "base_rev", "edited"}
_FAR_KM = 50.0  # a layer whose box lies farther than this from the store's grids is in the wrong place
_CHINA = (73.0, 3.0, 136.0, 54.0)
_SHOW = 5
_SYSTEM_NAMES = {"gcj02": "GCJ-02 (Amap, Tencent)", "bd09": "BD-09 (Baidu)", "wgs84": "WGS84",
                 "cgcs2000": "CGCS2000"}


@dataclass(frozen=True)
class Finding:
    """One thing an intake found: what, where, and what to do.

    ``severity`` is ``error`` (the file cannot be loaded as it is),
    ``warning`` (it can, but look) or ``note`` (what the intake decided for
    you, such as a parent taken from the code).
    """

    severity: str
    kind: str
    message_en: str
    message_zh: str
    column: str | None = None
    rows: tuple = ()
    codes: tuple = ()

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.kind}: {self.message_en} / {self.message_zh}"


@dataclass
class Intake:
    """What :func:`inspect` made of one file.

    Attributes
    ----------
    source : str
        The file (and layer) read.
    kind : str or None
        The layer it holds.
    mapping : Mapping
        What was detected and given: reusable with ``mapping=`` next time.
    frame : GeoDataFrame or None
        The rows mapped to the schema, in EPSG:4490 (None when the file could
        not be read that far).
    findings : list of Finding
    report : GeoDataFrame or None
        For grids, the :func:`gridgeo.validate` report (of the grids as they
        would be after the load, when a store was given).
    changes : DataFrame or None
        With a store: per collection, what is published now, what the file
        holds, and the codes kept, added and removed.
    """

    source: str
    kind: str | None = None
    mapping: Mapping = field(default_factory=Mapping)
    frame: gpd.GeoDataFrame | None = None
    findings: list[Finding] = field(default_factory=list)
    report: gpd.GeoDataFrame | None = None
    changes: pd.DataFrame | None = None
    scope: str = "parents"
    columns: list = field(default_factory=list)
    boundary_set: str | None = None

    @property
    def errors(self) -> list[Finding]:
        own = [f for f in self.findings if f.severity == "error"]
        return own + [_report_finding(r) for r in self._report_rows("error")]

    @property
    def warnings(self) -> list[Finding]:
        own = [f for f in self.findings if f.severity == "warning"]
        return own + [_report_finding(r) for r in self._report_rows("warning")]

    @property
    def ok(self) -> bool:
        """True when nothing stops the load."""
        return self.frame is not None and not self.errors

    def _report_rows(self, severity):
        if self.report is None or not len(self.report):
            return []
        return [r for _, r in self.report[self.report["severity"] == severity].iterrows()]

    def counts(self) -> dict[str, int]:
        """Rows per grid level (grids) or per layer."""
        if self.frame is None:
            return {}
        if self.kind == "grids" and "level" in self.frame.columns:
            return {str(k): int(v) for k, v in self.frame["level"].value_counts(sort=False).items()}
        return {self.kind or "rows": len(self.frame)}

    def problems(self) -> pd.DataFrame:
        """Every error, warning and note as a table (the validation report's rows included)."""
        findings = self.findings + [_report_finding(r) for r in self._report_rows("error")] + \
            [_report_finding(r) for r in self._report_rows("warning")]
        rows = [{"severity": f.severity, "kind": f.kind, "column": f.column,
                 "rows": ", ".join(map(str, f.rows)), "codes": ", ".join(map(str, f.codes)),
                 "message_zh": f.message_zh, "message_en": f.message_en} for f in findings]
        return pd.DataFrame(rows, columns=["severity", "kind", "column", "rows", "codes", "message_zh",
                                           "message_en"])

    def summary(self) -> dict:
        """A JSON-ready summary: the file, the layer, the mapping, the counts,
        the changes and every problem."""
        return {
            "source": self.source,
            "kind": self.kind,
            "boundary_set": self.boundary_set,
            "ok": self.ok,
            "mapping": self.mapping.to_dict(),
            "columns": [str(c) for c in self.columns],
            "counts": self.counts(),
            "changes": [] if self.changes is None else self.changes.to_dict("records"),
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "problems": self.problems().to_dict("records"),
        }

    def add(self, severity, kind, en, zh, *, column=None, rows=(), codes=()):
        self.findings.append(Finding(severity, kind, en, zh, column, tuple(rows), tuple(codes)))


def _report_finding(row) -> Finding:
    codes = tuple(c.strip() for c in str(row.get("codes") or row.get("code") or "").split(",") if c.strip())
    return Finding(str(row["severity"]), str(row["kind"]), str(row.get("message_en", "")),
                   str(row.get("message_zh", "")), None, (), codes)


# ----------------------------------------------------------------------------
# inspect
# ----------------------------------------------------------------------------


def inspect(source, *, kind=None, level=None, mapping=None, columns=None, values=None, crs=None, lon=None,
            lat=None, location=None, layer=None, encoding=None, scheme: CodeScheme | None = None, store=None,
            scope: str = "parents", name=None, boundary_set=None, validate: bool = True) -> Intake:
    """Read a file and find out how it maps to gridgeo's schema, and what is wrong with it.

    The steps, each of which may add findings:

    1. **read** the file as it is (:func:`gridgeo.io.read_vector`, or the
       cells of a CSV/Excel table with :func:`gridgeo.io.read_rows`), codes in
       wide .dbf number fields as their exact digits;
    2. **the layer**: `kind` if given, else the file's name (``grid2.shp``,
       ``站点.xlsx``), else its columns and geometry;
    3. **columns**: `columns` and `mapping` win, then the names offices use
       (:data:`gridgeo.intake.aliases.COLUMNS`);
    4. **values**: codes and ids as exact text (mangled ones refused, see
       :mod:`gridgeo.intake.codes`); levels, station kinds, event categories
       and statuses by their labels; counts as numbers; times as times;
       a missing level from the code's length, a missing parent from the
       code's prefix;
    5. **coordinates**: a table's coordinate columns (:mod:`.coordinates`),
       the system from `crs`, the mapping, the column names (百度经度 is
       BD-09) or the file; converted to EPSG:4490 with no non-finite or
       out-of-range coordinate; a zone-prefixed Gauss-Krüger easting read in
       the wrong system is named with the system that fits;
    6. **against the store** (if given): a layer far from the store's
       grids is refused with the system that would put it there; a layer
       declared WGS84/CGCS2000 that fits the store's grids far better read as
       GCJ-02 or BD-09 is refused with the fix and the offset in metres
       (:func:`detect_offset`); grids are validated as they would be after
       the load (:meth:`gridgeo.store.Store.check_load`), and the changes
       listed.

    Parameters
    ----------
    source : str, os.PathLike, DataFrame or GeoDataFrame
        A file (GeoJSON, GeoPackage, Shapefile or a zip of one, GeoParquet,
        FlatGeobuf, CSV, Excel), or a frame already read.
    kind : str, optional
        ``grids``, a grid level (``grid2``), ``stations``, ``addresses``,
        ``events`` or ``roads``.
    level : str, optional
        For grids: the level every unit of the file is at.
    mapping : Mapping or path, optional
        A mapping from an earlier run (:meth:`Mapping.write`).
    columns : dict, optional
        ``{schema column: file column}`` overrides.
    values : dict, optional
        ``{schema column: {file value: schema value}}`` overrides.
    crs : str, optional
        The coordinate system when the file does not say or says wrong.
    lon, lat, location : str, optional
        A table's coordinate columns.
    layer : str, optional
        The layer of a GeoPackage or zip, the sheet of a workbook.
    encoding : str, optional
        The text encoding, when detection gets it wrong.
    scheme : CodeScheme, optional
        Default: the store's, else :data:`gridgeo.schema.DEFAULT_SCHEME`.
    store : gridgeo.store.Store, optional
        The store the file is meant for: its grids are the trusted layer.
    scope : {"parents", "level"}
        What a grid file replaces (see :meth:`gridgeo.store.Store.load`).
    name : str, optional
        What to call the source in messages (a frame, or an upload's
        original name).
    boundary_set : str, optional
        For ``kind="boundaries"`` (other offices' areas): the name of the set
        the file's units make (警格, 学区 ...). Default: the one the file's name
        implies (``precincts.shp``, ``警格.shp``: 警格), else an error asking
        for it. Every row gets it as ``boundary_set``; the file's id column
        (编号, 警格编号, ... or ``columns={"boundary_id": ...}``) becomes
        ``boundary_id``.
    validate : bool, default True
        Whether to validate grids read without a store (``report``); False
        for a caller that validates them itself, with its own options
        (``gridgeo validate``, ``gridgeo repair``).

    Returns
    -------
    Intake

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from gridgeo import intake
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "站点.csv"
    >>> _ = path.write_text("站点编号,名称,类型,所属网格,经度,纬度\\n"
    ...                     "S1,黎山村服务站,二级网格服务站,3505821062010101,118.5128,24.8087\\n",
    ...                     encoding="gbk")
    >>> got = intake.inspect(path, crs="wgs84")
    >>> got.kind, got.ok, got.mapping.columns["grid_code"], got.frame["kind"].tolist()
    ('stations', True, '所属网格', ['grid2_station'])
    """
    asked = scheme
    scheme = scheme or (store.scheme if store is not None else DEFAULT_SCHEME)
    given = _given_mapping(mapping, columns, values, kind, level, crs, lon, lat, location, layer, scheme)
    label = name or (str(source) if not isinstance(source, pd.DataFrame) else "the frame")
    out = Intake(source=label, mapping=given, scope=scope)
    raw = _read(source, given, encoding, out)
    if raw is None:
        return out
    frame, lines, is_table = raw
    out.lines = lines  # the file's line of each row, for located messages against the store
    if len(frame) == 0:
        out.add("error", "empty", f"{label} holds no rows: a load never replaces a layer with nothing",
                f"{label} 没有任何数据行：不能用空文件替换已发布的图层")
        return out
    out.mapping.kind = _layer_kind(frame, is_table, label, given, out)
    if out.mapping.kind is None:
        return out
    out.kind = out.mapping.kind
    if out.kind == "boundaries":
        out.boundary_set = _boundary_set(boundary_set, label, scheme, out)
        if out.boundary_set is None:
            return out
    mapped = _map_columns(frame, out)
    if mapped is None:
        return out
    if out.kind == "roster":  # people: a table without coordinates
        stored = _values(gpd.GeoDataFrame(mapped, geometry=[None] * len(mapped), crs=gcrs.STORAGE_CRS),
                         lines, scheme, out)
    else:
        geo = _geometry(mapped, frame, lines, is_table, out)
        if geo is None:
            return out
        geo = _values(geo, lines, scheme, out)
        stored = _to_storage(geo, frame if not is_table else None, lines, out, store)
        if stored is None:
            return out
    out.frame = stored
    _schema(stored, lines, scheme, out)
    if store is not None and store.scheme == scheme and store.count("grids"):
        _against_store(stored, store, out)
    elif store is not None and out.kind != "grids":
        _against_store(stored, store, out)
    elif out.kind == "grids" and "level" in stored.columns and validate:
        from gridgeo.validation import validate as validated

        try:
            out.report = validated(stored, scheme=scheme, name=label)
        except (SchemaError, ValueError) as exc:
            out.add("error", "schema", str(exc), str(exc))
    if out.kind == "grids" and asked is None and store is None and any(f.severity == "error" for f in out.findings):
        _scheme_hint(source, out, scheme, dict(kind=kind, level=level, mapping=mapping, columns=columns,
                                               values=values, crs=crs, lon=lon, lat=lat, location=location,
                                               layer=layer, encoding=encoding, name=name))
    return out


def _scheme_hint(source, out, scheme, options):
    """Grids that do not fit the scheme but read without an error under
    another built-in one (a Beijing office's 15-digit unit grids, a
    prefecture's GB/T 2260 counties): that scheme, named first among the
    errors."""
    from gridgeo.schema import SCHEMES

    for label, other in SCHEMES.items():
        if other == scheme:
            continue
        trial = inspect(source, scheme=other, validate=False, **options)
        if trial.frame is not None and not any(f.severity == "error" for f in trial.findings):
            levels = ", ".join(f"{lv.name} ({lv.label})" for lv in other.levels)
            out.findings.insert(0, Finding(
                "error", "scheme",
                f"the file's codes and levels fit the {label} code scheme ({levels}), not this one: if it is "
                f"the file's, pass --scheme {label}",
                f"该文件的编码和层级符合 {label} 编码方案（{'、'.join(lv.label or lv.name for lv in other.levels)}），"
                f"而非当前方案：如属此方案，请加 --scheme {label}"))
            return


def _boundary_set(given, label, scheme, out):
    """The name of the boundary set a file's units make: given, or implied by the file's name."""
    from gridgeo.store._layers import check_set_name
    from gridgeo.store.errors import StoreError

    name = given
    if name is None:
        stem = aliases.normal(Path(str(label)).stem)
        name = next((set_name for set_name, words in aliases.BOUNDARY_SETS
                     if any(aliases.normal(w) in stem for w in words)), None)
    if name is None:
        out.add("error", "missing_set",
                f"{label} holds boundaries of another office: name their set with --name (e.g. --name 警格 for "
                "police precincts, --name 学区 for school catchments)",
                f"{label} 是其他部门的区域边界：请用 --name 指定边界集名称（如 --name 警格、--name 学区）")
        return None
    try:
        return check_set_name(name, scheme.names)
    except StoreError as exc:
        en, _, zh = str(exc).partition(" / ")
        out.add("error", "bad_set", f"{label}: {en}", f"{label}：{zh}")
        return None


def _given_mapping(mapping, columns, values, kind, level, crs, lon, lat, location, layer, scheme) -> Mapping:
    base = mapping if isinstance(mapping, Mapping) else Mapping.read(mapping) if mapping is not None else Mapping()
    if kind is not None and kind not in LAYERS:
        if kind in scheme.names:
            kind, level = "grids", level or kind
        else:
            raise ValueError(f"kind={kind!r}: expected one of {', '.join(LAYERS)} or a level "
                             f"({', '.join(scheme.names)})")
    if level is not None and level not in scheme.names:
        raise ValueError(f"level={level!r}: expected one of {', '.join(scheme.names)}")
    over = Mapping(kind=kind, level=level, columns=dict(columns or {}), values=dict(values or {}), crs=crs,
                   lon=lon, lat=lat, location=location, layer=layer)
    out = base.merged(over)
    if out.level is not None and out.kind is None:
        out.kind = "grids"
    return out


# --- 1. read ---------------------------------------------------------------------------


def _read(source, given, encoding, out):
    """(frame, row labels, is_table) or None with an error finding."""
    if isinstance(source, gpd.GeoDataFrame):
        return source.copy(), np.arange(1, len(source) + 1), False
    if isinstance(source, pd.DataFrame):
        return source.copy(), np.arange(len(source)) + 2, True
    path = os.fspath(source)
    suffix = Path(path).suffix.lower()
    try:
        if suffix in _TABLES:
            frame, lines = gio.read_rows(path, sheet=given.layer, encoding=encoding)
            return frame, np.asarray(lines), True
        frame = gio.read_vector(path, layer=given.layer, encoding=encoding)
    except FileNotFoundError as exc:
        out.add("error", "unreadable", str(exc), f"文件不存在：{path}")
        return None
    except (gio.ReadError, ValueError, OSError, ImportError) as exc:
        text = str(exc)
        out.add("error", "unreadable",
                f"{path} cannot be read as a layer (GeoJSON, GeoPackage, Shapefile or a zip of one, GeoParquet, "
                f"FlatGeobuf, CSV or Excel): {text}",
                f"{path} 无法作为图层读取（支持 GeoJSON、GeoPackage、Shapefile 及其 zip、GeoParquet、FlatGeobuf、CSV、Excel）：{text}")
        return None
    if frame.geometry.isna().all() and len(frame):
        out.add("error", "no_geometry", f"{path} has no geometries", f"{path} 没有几何图形")
        return None
    return frame, np.arange(1, len(frame) + 1), False


# --- 2. which layer ---------------------------------------------------------------------


def _layer_kind(frame, is_table, label, given, out):
    if given.kind is not None:
        return given.kind
    geometry_type = None
    if not is_table and len(frame):
        kinds = pd.unique(frame.geometry.dropna().geom_type)
        geometry_type = kinds[0] if len(kinds) else None
    by_columns, scores = kind_from_columns([c for c in frame.columns if c != "geometry"], geometry_type)
    by_name = kind_from_name(label)
    if by_name is not None and (by_columns is None or by_columns == by_name):
        return by_name
    if by_name is not None and by_columns is not None and by_name != by_columns:
        if geometry_type and geometry_type.replace("Multi", "") in ("Polygon", "LineString"):
            return by_columns  # polygons are grids, lines roads, whatever the name says
        return by_name
    if by_columns is not None:
        return by_columns
    out.add("error", "unknown_layer",
            f"cannot tell which layer {label} holds (the name says nothing, the columns "
            f"{_listing(frame.columns)} fit none clearly): say which with --layer grids|<level>|stations|"
            "addresses|events|roads",
            f"无法判断 {label} 是哪一类数据（文件名和列名都不能确定）：请用 --layer 指明 grids、网格层级、stations、"
            "addresses、events 或 roads")
    return None


# --- 3. columns ---------------------------------------------------------------------------


def _map_columns(frame, out):
    kind = out.mapping.kind
    names = [c for c in frame.columns if c != getattr(frame, "_geometry_column_name", None) and c != "geometry"]
    unknown = [t for t in out.mapping.columns if t not in _targets(kind)]
    if unknown:
        out.add("error", "bad_mapping",
                f"{', '.join(map(repr, unknown))} is not a column of the {kind} layer: map to one of "
                f"{', '.join(_targets(kind))}",
                f"{'、'.join(unknown)} 不是 {kind} 图层的字段：可用字段为 {'、'.join(_targets(kind))}")
        return None
    out.columns = list(names)
    found, missing = detect_columns(names, kind, out.mapping.columns)
    if missing:
        out.add("error", "bad_mapping",
                f"the mapping names column(s) {', '.join(map(repr, missing))}, which the file does not have; its "
                f"columns are {_listing(names)}",
                f"映射中的列 {'、'.join(missing)} 在文件中不存在；文件的列为 {'、'.join(map(str, names))}")
        return None
    out.mapping.columns = found
    taken = set(found.values())
    mapped = pd.DataFrame(index=frame.index)
    for target, source in found.items():
        mapped[target] = frame[source]
    for column in names:
        if column in taken:
            continue
        new = column if column not in _RESERVED and column not in found else f"{column}_原"
        if new != column:
            out.add("note", "renamed", f"column {column!r} is a name gridgeo keeps for itself: kept as {new!r}",
                    f"列 {column} 与系统字段重名，保存为 {new}", column=column)
        mapped[new] = frame[column]
    required = [c for c in LAYERS[kind] if c not in found]
    if kind == "grids":
        required = [c for c in required if c not in ("level", "parent")]  # from the codes
    if kind == "boundaries" and "boundary_set" not in found:
        required = [c for c in required if c != "boundary_set"]  # the set's name, given
        mapped.insert(0, "boundary_set", out.boundary_set)
    if required:
        hints = {t: aliases.COLUMNS[kind].get(t, ())[:4] for t in required}
        out.add("error", "missing_column",
                f"no column for {', '.join(required)} among {_listing(names)}: name them as offices usually do ("
                + "; ".join(f"{t}: {', '.join(h)}" for t, h in hints.items())
                + ") or say which with --map, e.g. --map " + f"{required[0]}=<column>",
                f"缺少字段 {'、'.join(required)}（文件的列为 {'、'.join(map(str, names))}）：请按常用名称命名，"
                f"或用 --map 指定，例如 --map {required[0]}=列名")
        return None
    return mapped




# --- 5. geometry (raw) -------------------------------------------------------------------


def _geometry(mapped, frame, lines, is_table, out):
    """A GeoDataFrame of the mapped columns with the raw geometry (the file's CRS, or None)."""
    if not is_table:
        return gpd.GeoDataFrame(mapped, geometry=frame.geometry.array, crs=frame.crs)
    where = coordinates.find([c for c in frame.columns], lon=out.mapping.lon, lat=out.mapping.lat,
                             location=out.mapping.location)
    if isinstance(where, str):
        out.add("error", "no_coordinates", where, f"找不到坐标列：{where}")
        return None
    out.mapping.lon, out.mapping.lat, out.mapping.location = where.lon, where.lat, where.location
    x, y, bad = coordinates.xy(frame, where)
    if bad.any():
        rows = lines[bad]
        out.add("error", "bad_coordinates",
                f"{bad.sum()} row(s) without usable coordinates in {' / '.join(map(repr, where.columns))} at "
                f"lines {_rows(rows)}: fill them in or remove those rows",
                f"{bad.sum()} 行坐标缺失或不是数字（{'、'.join(where.columns)}，第 {_rows_zh(rows)} 行）：请补全或删除这些行",
                column=where.columns[0], rows=rows[:_SHOW])
        return None
    geo = gpd.GeoDataFrame(mapped.drop(columns=[c for c in where.columns if c in mapped.columns]),
                           geometry=gpd.points_from_xy(x, y))
    if where.implied:
        declared = out.mapping.crs
        if declared is not None and gcrs._alias(declared) not in (where.implied, None) and \
                not (where.implied == "wgs84" and gcrs._alias(declared) == "cgcs2000"):
            out.add("error", "crs_conflict",
                    f"the columns {' / '.join(where.columns)} say the coordinates are {where.implied.upper()}, but "
                    f"the coordinate system given is {declared!r}: pass --crs {where.implied} (or rename the "
                    "columns if they were converted)",
                    f"列名 {'、'.join(where.columns)} 表明坐标为 {where.implied.upper()}，但指定的坐标系为 {declared}："
                    f"请用 --crs {where.implied}（若已转换过，请改列名）", column=where.columns[0])
            return None
        if declared is None:
            out.mapping.crs = where.implied
            out.add("note", "crs_from_columns",
                    f"coordinates read as {_SYSTEM_NAMES[where.implied]}, as the column names {' / '.join(where.columns)} say",
                    f"按列名 {'、'.join(where.columns)} 将坐标视为 {_SYSTEM_NAMES[where.implied]}")
    return geo


# --- 4. values ---------------------------------------------------------------------------


def _values(geo, lines, scheme, out):
    kind = out.kind
    for column in aliases.CODE_COLUMNS:
        if column in geo.columns:
            geo[column] = _codes(geo[column], column, lines, out)
    if kind == "grids":
        for column in ("code", "parent"):
            if column in geo.columns:
                geo[column] = _unpadded(geo[column], column, scheme, out)
        if "parent" in geo.columns:
            geo["parent"] = _zero_parents(geo["parent"], out)
        geo = _grid_levels(geo, lines, scheme, out)
    for column, table in aliases.VALUE_LABELS.items():
        if column in geo.columns and column in LAYERS[kind]:
            geo[column] = _labels(geo[column], column, table, lines, out)
    for column in aliases.COUNT_COLUMNS:
        if column in geo.columns:
            geo[column] = _counts(geo[column], column, lines, out)
    for column in aliases.TIME_COLUMNS:
        if column in geo.columns:
            geo[column] = _times(geo[column], column, lines, out)
    if "name" in geo.columns:
        geo["name"] = geo["name"].astype(object).where(geo["name"].notna(), "").map(
            lambda v: str(v).strip()).astype("str")
    return geo


def _source_column(out, column):
    return out.mapping.columns.get(column, column)


def _codes(values, column, lines, out):
    codes, mangled = exact_codes(values)
    if mangled.any():
        source = _source_column(out, column)
        rows = lines[mangled]
        examples = ", ".join(f"line {r}: {v!r}" for r, v in zip(rows[:3], codes[mangled][:3]))
        out.add("error", "mangled_code",
                f"column {source!r} ({column}): {mangled.sum()} code(s) lost digits before they reached gridgeo "
                f"({examples}; lines {_rows(rows)}). Excel keeps 15 digits of a number and shows long ones as "
                "3.50582106201E+11: format the column as text (设置单元格格式 → 文本) in the original sheet and "
                "export again, or export the table as CSV from the system it came from",
                f"列 {source}（{column}）有 {mangled.sum()} 个编码在进入 gridgeo 之前已丢失数字（第 {_rows_zh(rows)} 行，"
                f"如 {codes[mangled].iloc[0]}）：Excel 只保留 15 位有效数字并以科学计数法显示长数字。请在原表中把该列设置为"
                "“文本”格式后重新导出，或从原系统直接导出 CSV",
                column=source, rows=rows[:_SHOW], codes=tuple(codes[mangled][:_SHOW]))
    return codes


def _zero_parents(parents, out):
    """A number field cannot be empty: an office's desktop GIS writes 0 where a
    unit has no parent (the top level's). A parent of zeros alone names no
    unit, so it is read as none; below the top level the code's prefix then
    gives the parent, as for an empty one."""
    zero = parents.astype(str).str.fullmatch("0+")
    if not zero.any():
        return parents
    source = _source_column(out, "parent")
    out.add("note", "zero_parent", f"column {source!r}: {int(zero.sum())} parent(s) of 0 read as none (a number "
            "field cannot be empty)", f"列 {source}：{int(zero.sum())} 个为 0 的上级编码按“无上级”读取（数字字段不能为空）",
            column=source)
    return parents.where(~zero, "")


def _unpadded(codes, column, scheme, out):
    """GB/T 2260 pads a province to 6 digits with 0000 (350000) and a prefecture
    with 00 (350500); in a scheme whose levels are 2 or 4 digits wide those units'
    codes are the digits that prefix their children's (35, 3505)."""
    widths = {scheme.width(lv) for lv in scheme.names}
    if 6 not in {len(c) for c in codes} or not widths & {2, 4} or scheme.root_digits >= 6:
        return codes
    short = codes.map(lambda c: c[:2] if len(c) == 6 and c.endswith("0000") and 2 in widths else
                      c[:4] if len(c) == 6 and c.endswith("00") and 4 in widths else c)
    changed = short != codes
    if changed.any():
        pairs = ", ".join(f"{a}→{b}" for a, b in zip(codes[changed][:3], short[changed][:3]))
        out.add("note", "unpadded", f"column {_source_column(out, column)!r}: {changed.sum()} GB/T 2260 code(s) "
                f"padded with zeros read as the digits their children's codes start with ({pairs})",
                f"列 {_source_column(out, column)}：{changed.sum()} 个补零的 GB/T 2260 代码按其下级代码的前缀读取（{pairs}）",
                column=_source_column(out, column))
    return short


def _grid_levels(geo, lines, scheme, out):
    labels = aliases.level_labels(scheme)
    overrides = {aliases.normal(k): v for k, v in out.mapping.values.get("level", {}).items()}
    codes = geo["code"].astype(str)
    by_length = codes.map(lambda c: scheme.level_of(c) if c.isdigit() else None)
    if "level" in geo.columns:
        raw = geo["level"].astype(object).where(geo["level"].notna(), "").astype(str)
        keys = raw.map(aliases.normal)
        mapped = keys.map(lambda k: overrides.get(k) or labels.get(k))
        unknown = mapped.isna() & (keys != "")
        if unknown.any():
            values = pd.unique(raw[unknown])
            rows = lines[unknown.to_numpy()]
            out.add("error", "unknown_level",
                    f"column {_source_column(out, 'level')!r}: level value(s) {', '.join(map(repr, values[:8]))} "
                    f"are not levels of the scheme (lines {_rows(rows)}): expected "
                    f"{', '.join(f'{lv.name} ({lv.label})' for lv in scheme.levels)}; map a value with --value "
                    f"level:{values[0]}=<level>",
                    f"层级列 {_source_column(out, 'level')} 的值 {'、'.join(map(str, values[:8]))} 不是编码方案的层级"
                    f"（第 {_rows_zh(rows)} 行）：应为 {'、'.join(lv.label or lv.name for lv in scheme.levels)}；"
                    f"可用 --value level:{values[0]}=层级 指定", column=_source_column(out, "level"), rows=rows[:_SHOW])
        empty = keys == ""
        mapped = mapped.where(~empty, by_length)
        geo["level"] = mapped.fillna("").astype("str")
        if out.mapping.level:
            other = (geo["level"] != out.mapping.level) & (geo["level"] != "")
            if other.any():
                rows = lines[other.to_numpy()]
                out.add("error", "level_conflict",
                        f"the file is loaded as level {out.mapping.level}, but its level column says otherwise at "
                        f"lines {_rows(rows)} ({', '.join(pd.unique(geo.loc[other, 'level'])[:5])}): drop --layer/--level "
                        "or fix the column",
                        f"文件按 {out.mapping.level} 层级导入，但层级列在第 {_rows_zh(rows)} 行写的是其他层级：请去掉 --layer/--level "
                        "或改正该列", column="level", rows=rows[:_SHOW])
    elif out.mapping.level:
        geo["level"] = out.mapping.level
        differs = by_length.notna() & (by_length != out.mapping.level)
        if differs.any():
            rows = lines[differs.to_numpy()]
            width = scheme.width(out.mapping.level)
            out.add("error", "level_conflict",
                    f"the file is loaded as level {out.mapping.level} (codes of {width} digits), but {differs.sum()} "
                    f"code(s) have the width of another level (lines {_rows(rows)}, e.g. {codes[differs].iloc[0]}): "
                    "check --layer, or the file",
                    f"文件按 {out.mapping.level} 层级导入（编码 {width} 位），但有 {differs.sum()} 个编码是其他层级的位数"
                    f"（第 {_rows_zh(rows)} 行，如 {codes[differs].iloc[0]}）", column="code", rows=rows[:_SHOW])
    else:
        named = level_from_name(out.source, scheme)
        missing = by_length.isna()
        geo["level"] = by_length.fillna(named or "").astype("str")
        if missing.any() and named is None:
            rows = lines[missing.to_numpy()]
            widths = ", ".join(f"{lv.name} {scheme.width(lv.name)}" for lv in scheme.levels)
            out.add("error", "unknown_level",
                    f"no level column, and {missing.sum()} code(s) have a length that is no level's (lines "
                    f"{_rows(rows)}, e.g. {codes[missing].iloc[0]!r}; the scheme's widths: {widths}): add a level "
                    "column, pass --layer <level>, or check the codes",
                    f"没有层级列，且有 {missing.sum()} 个编码的位数不属于任何层级（第 {_rows_zh(rows)} 行）：请增加层级列、"
                    "用 --layer 指定层级，或检查编码", column="code", rows=rows[:_SHOW])
        else:
            out.add("note", "level_from_code", "levels taken from the length of each code",
                    "层级按编码位数确定", column="code")
        if named is not None and not missing.all() and (by_length.dropna() != named).any():
            out.add("warning", "level_name", f"the file's name suggests level {named}, but its codes say "
                    f"{', '.join(sorted(set(by_length.dropna())))}: the codes were followed",
                    f"文件名提示层级为 {named}，但编码位数表明为 {'、'.join(sorted(set(by_length.dropna())))}：已按编码确定")
    if "parent" not in geo.columns:
        geo["parent"] = [_parent_of(c, lv, scheme) for c, lv in zip(codes, geo["level"])]
        out.add("note", "parent_from_code", "parents taken from the prefix of each code",
                "上级编码按编码前缀确定", column="parent")
    else:
        empty = (geo["parent"] == "") & (geo["level"] != scheme.names[0])
        if empty.any():
            geo.loc[empty, "parent"] = [_parent_of(c, lv, scheme) for c, lv in
                                        zip(codes[empty], geo.loc[empty, "level"])]
    return geo


def _parent_of(code, level, scheme):
    if not level or level not in scheme.names or scheme.parent_level(level) is None:
        return ""
    return code[: scheme.width(scheme.parent_level(level))]


def _labels(values, column, table, lines, out):
    overrides = {aliases.normal(k): v for k, v in out.mapping.values.get(column, {}).items()}
    raw = values.astype(object).where(values.notna(), "").astype(str)
    keys = raw.map(aliases.normal)
    mapped = keys.map(lambda k: overrides.get(k) or table.get(k))
    unknown = mapped.isna() & (keys != "")
    if unknown.any():
        found = pd.unique(raw[unknown])
        rows = lines[unknown.to_numpy()]
        known = ", ".join(sorted(set(table.values())))
        out.add("warning", f"unknown_{column}",
                f"column {_source_column(out, column)!r} ({column}): value(s) {', '.join(map(repr, found[:8]))} are "
                f"not known labels (lines {_rows(rows)}); kept as they are. The known {column} values are {known}: map "
                f"one with --value {column}:{found[0]}=<value>",
                f"列 {_source_column(out, column)}（{column}）的值 {'、'.join(map(str, found[:8]))} 不是已知类别"
                f"（第 {_rows_zh(rows)} 行），已原样保留；可用 --value {column}:{found[0]}=类别 指定",
                column=_source_column(out, column), rows=rows[:_SHOW])
    return mapped.where(~unknown, raw).fillna("").astype("str")


def _counts(values, column, lines, out):
    numbers = pd.to_numeric(values.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v),
                            errors="coerce")
    bad = (numbers.isna() & values.notna() & (values.astype(object).astype(str).str.strip() != "")) | (numbers < 0)
    if bad.any():
        rows = lines[bad.to_numpy()]
        out.add("error", "bad_count",
                f"column {_source_column(out, column)!r} ({column}): {bad.sum()} value(s) are not non-negative "
                f"numbers (lines {_rows(rows)}, e.g. {values[bad].iloc[0]!r})",
                f"列 {_source_column(out, column)}（{column}）有 {bad.sum()} 个值不是非负数（第 {_rows_zh(rows)} 行）",
                column=_source_column(out, column), rows=rows[:_SHOW])
    if numbers.notna().all() and (numbers == numbers.round()).all():
        return numbers.astype("int64")
    return numbers


_CN_TIME = [("年", "-"), ("月", "-"), ("日", " "), ("时", ":"), ("分", ":"), ("秒", ""), ("/", "-")]


def _times(values, column, lines, out):
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values
    text = values.astype(object).where(values.notna(), None)

    def clean(v):
        if v is None or isinstance(v, (pd.Timestamp,)) or not isinstance(v, str):
            return v
        for a, b in _CN_TIME:
            v = v.replace(a, b)
        return v.strip().rstrip(":")

    parsed = pd.to_datetime(text.map(clean), errors="coerce", format="mixed")
    bad = parsed.isna() & text.notna() & (text.astype(str).str.strip() != "")
    if bad.any():
        rows = lines[bad.to_numpy()]
        out.add("error", "bad_time",
                f"column {_source_column(out, column)!r} ({column}): {bad.sum()} value(s) are not dates and times "
                f"(lines {_rows(rows)}, e.g. {values[bad].iloc[0]!r}): write them as 2025-03-01 08:30",
                f"列 {_source_column(out, column)}（{column}）有 {bad.sum()} 个值不是日期时间（第 {_rows_zh(rows)} 行）："
                "请写成 2025-03-01 08:30", column=_source_column(out, column), rows=rows[:_SHOW])
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("Asia/Shanghai").dt.tz_localize(None)
    return parsed


# --- 5. coordinate system ------------------------------------------------------------------


def _to_storage(geo, vector, lines, out, store):
    declared = out.mapping.crs
    if declared is None and geo.crs is None:
        raw = geo.total_bounds
        hints = gcrs.suggest_crs(raw, near=_store_bounds(store))
        hint = f" The coordinates look like {hints[0]['name']} ({hints[0]['why']}): pass --crs {hints[0]['crs']}." \
            if hints else ""
        fit = _guess_system(geo, store) if gcrs._within_degrees(raw) else None
        if fit:
            hint += (f" Against the store's grids, {fit[1]:.0%} of the rows fit read as {fit[0]}: pass "
                     f"--crs {fit[0]}.")
        out.add("error", "no_crs",
                f"the file does not say its coordinate system: pass --crs wgs84 (GPS), cgcs2000, gcj02 (Amap, "
                f"Tencent), bd09 (Baidu) or an EPSG code.{hint}",
                "文件没有说明坐标系：请用 --crs 指定 wgs84（GPS）、cgcs2000、gcj02（高德、腾讯）、bd09（百度）或 EPSG 代码。"
                + (f"坐标看起来是 {hints[0]['name']}：--crs {hints[0]['crs']}。" if hints else "")
                + (f"与库中网格比对，按 {fit[0]} 读取有 {fit[1]:.0%} 的数据吻合：请用 --crs {fit[0]}。" if fit else ""))
        return None
    try:
        stored = gcrs.to_storage(geo, source=declared, name=out.source)
    except gcrs.CRSError as exc:
        text = str(exc).replace("pass crs='", "pass --crs '")
        hints = gcrs.suggest_crs(geo.total_bounds, near=_store_bounds(store))
        zh = f"{out.source} 的坐标与其坐标系（{_crs_name(declared, geo)}）不符"
        zh += f"：东坐标以带号开头，应为 {hints[0]['name']}，请用 --crs {hints[0]['crs']}" if hints else \
            "：请检查文件声明的坐标系或 --crs"
        out.add("error", "crs", text, zh)
        return None
    if out.mapping.crs is None and geo.crs is not None:
        out.mapping.crs = geo.crs.to_string()
    bounds = stored.total_bounds
    near = _store_bounds(store)
    raw_bounds = geo.total_bounds
    if near is not None and _km_apart(bounds, near) > _FAR_KM:
        hints = gcrs.suggest_crs(raw_bounds, near=near)
        km = _km_apart(bounds, near)
        hint = f" {hints[0]['why']}: pass --crs {hints[0]['crs']} ({hints[0]['name']})." if hints else \
            " Check the coordinate system the file declares, or --crs."
        out.add("error", "far_from_store",
                f"read as {_crs_name(declared, geo)}, the layer lies {km:,.0f} km from the store's grids "
                f"(lon {bounds[0]:.4f}..{bounds[2]:.4f}, lat {bounds[1]:.4f}..{bounds[3]:.4f}).{hint}",
                f"按 {_crs_name(declared, geo)} 读取，该图层距库中网格 {km:,.0f} 公里。"
                + (f"应为 {hints[0]['name']}：--crs {hints[0]['crs']}。" if hints else "请检查坐标系。"))
        return None
    if bounds[0] < _CHINA[0] or bounds[2] > _CHINA[2] or bounds[1] < _CHINA[1] or bounds[3] > _CHINA[3]:
        hints = gcrs.suggest_crs(raw_bounds, near=near)
        severity = "error" if hints else "warning"
        hint = f" {hints[0]['why']}: pass --crs {hints[0]['crs']}." if hints else ""
        out.add(severity, "outside_china",
                f"read as {_crs_name(declared, geo)}, the layer lies outside China (lon {bounds[0]:.4f}..{bounds[2]:.4f}, "
                f"lat {bounds[1]:.4f}..{bounds[3]:.4f}).{hint}",
                f"按 {_crs_name(declared, geo)} 读取，该图层位于中国境外。" + (f"应为 --crs {hints[0]['crs']}。" if hints else ""))
        if hints:
            return None
    return stored


def _crs_name(declared, geo):
    if declared is not None:
        return str(declared)
    return geo.crs.name if geo.crs is not None else "its coordinates"


def _store_bounds(store):
    if store is None:
        return None
    try:
        bounds = store.extent("grids")
    except Exception:  # noqa: BLE001 - a store without grids has no extent
        return None
    return bounds


def _km_apart(a, b) -> float:
    """Distance in km between two lon/lat boxes (0 when they overlap)."""
    dx = max(0.0, a[0] - b[2], b[0] - a[2])
    dy = max(0.0, a[1] - b[3], b[1] - a[3])
    lat = np.radians((a[1] + a[3] + b[1] + b[3]) / 4)
    return float(np.hypot(dx * 111.32 * np.cos(lat), dy * 110.57))


def _guess_system(geo, store):
    """For a layer with no CRS in degrees: which system fits the store's grids, as a sentence."""
    trusted = _trusted(store)
    if trusted is None:
        return None
    fit = detect_offset(geo.set_crs(gcrs.STORAGE_CRS, allow_override=True), trusted, declared="wgs84")
    if not len(fit):
        return None
    best = fit.loc[fit["misfit"].idxmin()]
    return best['system'], 1 - best['misfit']


def _trusted(store):
    if store is None:
        return None
    try:
        grids = store.read("grids", columns=["code", "level", "parent"])
    except Exception:  # noqa: BLE001
        return None
    return grids if len(grids) else None


# --- schema checks ------------------------------------------------------------------------------


def _schema(stored, lines, scheme, out):
    if out.kind == "grids":
        return  # the validation report checks every code and geometry, located
    try:
        check(stored, out.kind, scheme=scheme, name=out.source)
    except SchemaError as exc:
        for problem in exc.problems:
            row = problem.row
            where = [int(lines[stored.index.get_loc(row)])] if row is not None and row in stored.index else []
            text = str(problem).replace(f"row {row}", f"line {where[0]}" if where else f"row {row}")
            out.add("error", "schema", f"{out.source}: {text}", f"{out.source}：{text}",
                    column=problem.column, rows=where)
    if len(stored) == 0:
        out.add("error", "empty", f"{out.source} holds no rows: a load never replaces a layer with nothing",
                f"{out.source} 没有任何数据行：不能用空文件替换已发布的图层")


# --- against the store ------------------------------------------------------------------------


def _against_store(stored, store, out):
    trusted = _trusted(store)
    if out.kind == "roster":
        _roster_grids(stored, trusted, out)
        published = store.count("roster")
        out.changes = pd.DataFrame([{"collection": "roster", "published": published, "in_file": len(stored),
                                     "replaced": published, "added": len(stored), "removed": published}])
        return
    declared = gcrs._alias(out.mapping.crs) if out.mapping.crs else None
    if declared is None and stored.attrs.get("coordinate_system") is None:
        declared = "wgs84"  # a file's own geographic CRS, or a projected one read as CGCS2000
    if trusted is not None and declared in ("wgs84", "cgcs2000", "gcj02", "bd09"):
        _offset(stored, trusted, declared, out)
    if out.kind == "grids":
        _grid_changes(stored, store, out)
    else:
        collection = out.kind
        if out.kind == "boundaries":
            collection = out.boundary_set
            published = store.counts().get(collection, 0)
        else:
            published = store.count(out.kind)
        out.changes = pd.DataFrame([{"collection": collection, "published": published, "in_file": len(stored),
                                     "replaced": published, "added": len(stored), "removed": published}])


def _roster_grids(stored, trusted, out):
    """Every person of a roster serves a published grid: a code the store does not have is an error."""
    if trusted is None:
        return
    unknown = ~stored["grid_code"].astype(str).isin(set(trusted["code"]))
    if unknown.any():
        lines = out.lines[unknown.to_numpy()] if getattr(out, "lines", None) is not None else np.array([])
        codes = list(pd.unique(stored.loc[unknown, "grid_code"]))[:_SHOW]
        out.add("error", "unknown_grid",
                f"{unknown.sum()} person(s) of the roster serve grid codes the store does not have "
                f"({', '.join(codes)}; lines {_rows(lines)}): correct the codes (网格编码) or load the grids first",
                f"花名册中 {unknown.sum()} 人的网格编码在库中不存在（{'、'.join(codes)}；第 {_rows_zh(lines)} 行）："
                "请更正网格编码，或先载入网格", column="grid_code", rows=lines[:_SHOW], codes=codes)


def _offset(stored, trusted, declared, out):
    if out.kind == "grids":
        trusted = trusted[~trusted["level"].isin(set(stored["level"]))]
        comparable = stored
    elif out.kind == "boundaries":  # they name no unit: measured against the grids' outline (the top level)
        trusted = trusted[trusted["level"] == trusted["level"].iloc[trusted["code"].str.len().argmin()]]
        comparable = stored.drop(columns=[c for c in ("code", "parent") if c in stored.columns])
    else:
        comparable = stored
    fit = detect_offset(comparable, trusted, declared=declared)
    better = fit.attrs.get("better") if len(fit) else None
    if not better:
        return
    rows = fit.set_index("system")
    mine, best = rows.loc[fit.attrs["declared"]], rows.loc[better]
    what = fit.attrs["what"]
    names = _SYSTEM_NAMES
    n = int(mine["checked"])
    out.add("error", "offset",
            f"read as {names[fit.attrs['declared']]}, the layer sits {best['shift_m']:,.0f} m off the store's grids: "
            f"{mine['misfit']:.0%} of the {what} ({round(mine['misfit'] * n)} of {n}); read as {names[better]}, "
            f"{best['misfit']:.0%} ({round(best['misfit'] * n)} of {n}). The coordinates are {names[better]}: "
            f"pass --crs {better}",
            f"按 {names[fit.attrs['declared']]} 读取，该图层与库中网格偏离约 {best['shift_m']:,.0f} 米："
            f"{round(mine['misfit'] * n)}/{n} 不在所属单元内；按 {names[better]} 读取则为 {round(best['misfit'] * n)}/{n}。"
            f"坐标应为 {names[better]}：请用 --crs {better}")


def _grid_changes(stored, store, out):
    from gridgeo.store.errors import StoreError

    published = store.read("grids", columns=["code", "level", "parent"])
    rows = []
    for level, units in stored.groupby("level", sort=False):
        at = published[published["level"] == level]
        if out.scope == "parents":
            at = at[at["parent"].isin(set(units["parent"]))]
        old, new = set(at["code"]), set(units["code"])
        rows.append({"collection": level, "published": int((published["level"] == level).sum()),
                     "in_file": len(units), "replaced": len(at), "kept": len(old & new),
                     "added": len(new - old), "removed": len(old - new),
                     "parents": len(set(units["parent"]))})
    out.changes = pd.DataFrame(rows)
    try:
        out.report = store.check_load(stored, scope=out.scope)
    except (SchemaError, StoreError, ValueError, gcrs.CRSError) as exc:
        out.add("error", "schema", str(exc), str(exc))


# --- words -----------------------------------------------------------------------------


def _rows(rows) -> str:
    rows = list(rows)
    shown = ", ".join(str(int(r)) for r in rows[:_SHOW])
    return shown + (f" and {len(rows) - _SHOW} more" if len(rows) > _SHOW else "")


def _rows_zh(rows) -> str:
    rows = list(rows)
    shown = "、".join(str(int(r)) for r in rows[:_SHOW])
    return shown + (f" 等共 {len(rows)} 行" if len(rows) > _SHOW else "")


def _listing(columns) -> str:
    return ", ".join(repr(str(c)) for c in columns if c != "geometry") or "none"
