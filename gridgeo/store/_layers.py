"""The tables of a store: layers, their keys, geometry types and column kinds.

Both backends hold the same tables; this module says what they are and turns
GeoDataFrames into column values and back. A *kind* is one of the layers of
docs/design.md (grids, stations, addresses, events, roads) or ``boundaries``, the
areas other offices draw; a *collection* is a kind, a grid level (``grid2`` is
the grids of level ``grid2``) or a named boundary set (``警格`` is the
boundaries whose ``boundary_set`` is ``警格``).

Boundary sets, the rule stated once: several named sets of polygons (police
precincts 警格, school catchments 学区 ...) share the ``boundaries`` table. A row
is one unit of one set: ``boundary_set`` (the set's name), ``boundary_id`` (the
unit's id in its office's file, unique within the set), ``name``, and
``boundary_key`` = ``"<set>/<id>"``, the key unique in the store that history,
the audit trail and rollbacks match rows by. A replace-load of boundaries
replaces the sets the frame names and no other. A set's name is not a kind or a
grid level (it is a collection name beside them), has no ``/`` and is at most
40 characters.
"""

from __future__ import annotations

import datetime as _dt

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import schema
from gridgeo.crs import STORAGE_CRS, to_storage
from gridgeo.store._sql import SCHEMA_VERSION
from gridgeo.store.errors import NotFound, StoreError

KINDS = ("grids", "stations", "addresses", "events", "roads", "boundaries", "roster")
LEVELS = schema.DEFAULT_SCHEME.names

KEYS = {"grids": "code", "stations": "station_id", "addresses": "addr_id", "events": "event_id",
        "roads": "road_id", "boundaries": "boundary_key", "roster": "member_id"}
"""The column that names a row of each layer, and orders reads. Unique among the
published rows except for roads, where several segments make one road."""
UNIQUE_KEYS = {"grids", "stations", "addresses", "events", "boundaries", "roster"}
SET_COLUMN = "boundary_set"
"""The column naming a boundary unit's set (警格, 学区 ...)."""

GEOMETRY = {"grids": "MULTIPOLYGON", "stations": "POINT", "addresses": "POINT", "events": "POINT",
            "roads": "MULTILINESTRING", "boundaries": "MULTIPOLYGON", "roster": "POINT"}
"""The declared geometry type of each layer: one type per table, as QGIS wants. The roster
(:mod:`gridgeo.roster`: who answers for each grid) is a table of people: its rows have no
geometry (the column is there, empty, as in every table of the store)."""
NON_SPATIAL = {"roster"}

# the column a `parent=` / `within=` filter looks at, per kind
PARENT_COLUMN = {"grids": "parent", "stations": "grid_code"}
WITHIN_COLUMN = {"grids": "code", "stations": "grid_code"}

SYSTEM = {"revision": "integer", "author": "text"}
"""Columns every layer row carries: the revision that wrote it and who did."""
HISTORY = {"retired": "integer", "retired_by": "text"}
"""Added in ``<kind>_history``: the revision that replaced or removed the row, and who did."""
PLAN = {"plan_id": "integer", "base_rev": "integer", "edited": "integer"}
"""Added in ``plan_units``: the plan, the published revision the unit was copied
from (none for a new unit) and whether the plan changed it."""

RESERVED = {"fid", "geom", *SYSTEM, *HISTORY, *PLAN}

KIND_NAMES = ("text", "integer", "real", "boolean", "datetime", "date")


def base_columns(kind: str) -> dict[str, str]:
    """The user columns a new table of ``kind`` starts with."""
    columns = {"grids": {"code": "text", "name": "text", "level": "text", "parent": "text"},
               "roster": {"member_id": "text", "grid_code": "text", "role": "text", "name": "text",
                          "phone": "text"},
               "boundaries": {"boundary_set": "text", "boundary_id": "text", "name": "text",
                              "boundary_key": "text"}}.get(kind)
    if columns is None:
        columns = {name: ("datetime" if t == "datetime" else "text")
                   for name, t in schema.LAYERS[kind].items()}
    columns.setdefault(KEYS[kind], "text")
    return dict(columns)


def resolve(collection: str, levels=LEVELS, sets=()) -> tuple[str, list[str] | None]:
    """(kind, levels or sets) of a collection name: ``"grid2"`` -> ``("grids", ["grid2"])``,
    ``"警格"`` -> ``("boundaries", ["警格"])``. ``levels`` are the store's scheme's level
    names, ``sets`` its boundary sets (or a function giving them, asked only when needed)."""
    if collection in KINDS:
        return collection, None
    if collection in levels:
        return "grids", [collection]
    if callable(sets):
        sets = sets()
    if collection in sets:
        return "boundaries", [collection]
    more = f" and the boundary sets {', '.join(sets)}" if sets else ""
    raise NotFound(f"no layer {collection!r}: a store holds {', '.join(KINDS)}, the grid levels "
                   f"{', '.join(levels)}{more}")


def collections(levels=LEVELS, sets=()) -> list[str]:
    """Every collection name, the grid levels (of the store's scheme) after ``grids``,
    the boundary sets after ``boundaries``."""
    return ["grids", *levels, *KINDS[1:], *sets]


def check_set_name(name, levels=LEVELS) -> str:
    """A boundary set's name, stripped, or a :class:`StoreError` saying why it cannot be one.

    Examples
    --------
    >>> check_set_name(" 警格 ")
    '警格'
    >>> check_set_name("grid2")
    Traceback (most recent call last):
    ...
    gridgeo.store.errors.StoreError: a boundary set cannot be called 'grid2': ... / 边界集不能叫 'grid2'：...
    """
    text = "" if name is None or (isinstance(name, float) and np.isnan(name)) else str(name).strip()
    why_en = why_zh = None
    if not text:
        why_en, why_zh = "it needs a name (警格, 学区 ...)", "需要一个名称（如 警格、学区）"
    elif text in KINDS or text in levels:
        why_en, why_zh = "that is a layer or grid level of the store", "这是数据库已有的图层或网格层级名"
    elif "/" in text or len(text) > 40:
        why_en, why_zh = "a name has no '/' and at most 40 characters", "名称不能含 '/'，且不超过 40 个字符"
    if why_en:
        raise StoreError(f"a boundary set cannot be called {text!r}: {why_en}; name it otherwise (--name) / "
                         f"边界集不能叫 {text!r}：{why_zh}；请换一个名称（--name）")
    return text


# --- frames in --------------------------------------------------------------------


def prepare(frame, kind: str, *, name: str, scheme=schema.DEFAULT_SCHEME) -> gpd.GeoDataFrame:
    """Check ``frame`` as a ``kind`` layer (codes by ``scheme``), bring it to
    EPSG:4490 and to the store's geometry type. The result has its geometry
    in column ``geometry``."""
    if kind in NON_SPATIAL and isinstance(frame, pd.DataFrame) and not isinstance(frame, gpd.GeoDataFrame):
        frame = gpd.GeoDataFrame(frame.copy(), geometry=[None] * len(frame), crs=STORAGE_CRS)  # a table of people
    if not isinstance(frame, gpd.GeoDataFrame):
        raise TypeError(f"{name} should be a GeoDataFrame, got {type(frame).__name__}")
    if kind in NON_SPATIAL and frame.crs is None:
        frame = frame.set_crs(STORAGE_CRS)
    frame = to_storage(frame, name=name)
    frame = schema.check(frame, kind, name=name, scheme=scheme)
    if frame.geometry.name != "geometry":
        frame = frame.rename_geometry("geometry")
    clash = sorted(RESERVED.intersection(frame.columns) - {"geometry"})
    if clash:
        raise StoreError(f"{name} has column(s) {clash}, names the store keeps for itself: rename them "
                         "(e.g. frame.rename(columns={...}))")
    frame["geometry"] = to_declared(frame.geometry.array, kind, name=name)
    if kind == "boundaries":
        names = {v: check_set_name(v, scheme.names) for v in pd.unique(frame[SET_COLUMN])}
        frame[SET_COLUMN] = frame[SET_COLUMN].map(names).astype("str")
        frame["boundary_key"] = boundary_keys(frame)
    if kind == "roster":
        frame["member_id"] = member_ids(frame)
    if kind == "roads" and "segment_id" not in frame.columns:
        frame["segment_id"] = segment_ids(frame)
    return frame.set_crs(STORAGE_CRS, allow_override=True)


def member_ids(roster) -> pd.Series:
    """The store key of roster rows: ``"<grid_code>/<n>"``, the row's place among its grid's
    rows (a person may serve two grids, and two people may share a name).

    Examples
    --------
    >>> import pandas as pd
    >>> member_ids(pd.DataFrame({"grid_code": ["1", "2", "1"]})).tolist()
    ['1/1', '2/1', '1/2']
    """
    codes = roster["grid_code"].astype(str)
    return (codes + "/" + (codes.groupby(codes).cumcount() + 1).astype(str)).astype("str")


def boundary_keys(boundaries) -> pd.Series:
    """The store key of boundary units: ``"<set>/<id>"``.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> b = gpd.GeoDataFrame({"boundary_set": ["警格", "学区"], "boundary_id": ["J1", "1"]},
    ...                      geometry=[shapely.box(0, 0, 1, 1)] * 2, crs=4490)
    >>> boundary_keys(b).tolist()
    ['警格/J1', '学区/1']
    """
    return (boundaries["boundary_set"].astype(str) + "/" + boundaries["boundary_id"].astype(str)).astype("str")


def segment_ids(roads) -> pd.Series:
    """An id for every road segment, unique in the layer: the road's id and the
    segment's place among that road's segments (``R000862-2``), or ``S<n>`` for
    segments without a road id. Several segments make one road, so ``road_id``
    alone names no feature.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> roads = gpd.GeoDataFrame({"road_id": ["R1", "R2", "R1", None]},
    ...                          geometry=[shapely.LineString([(0, 0), (1, 1)])] * 4, crs=4490)
    >>> segment_ids(roads).tolist()
    ['R1-1', 'R2-1', 'R1-2', 'S4']
    """
    if "road_id" not in roads.columns:
        return pd.Series([f"S{i + 1}" for i in range(len(roads))], index=roads.index, dtype="str")
    ids = roads["road_id"].astype(object)
    known = ids.notna() & (ids.astype(str).str.strip() != "")
    nth = ids[known].groupby(ids[known]).cumcount() + 1
    out = pd.Series([f"S{i + 1}" for i in range(len(roads))], index=roads.index, dtype=object)
    out[known] = ids[known].astype(str) + "-" + nth.astype(str)
    return out.astype("str")


def to_declared(geoms, kind: str, *, name: str) -> np.ndarray:
    """Promote Polygons to MultiPolygons (LineStrings to MultiLineStrings) and
    refuse geometries that do not fit the layer, naming the first."""
    geoms = np.asarray(geoms, dtype=object)
    declared = GEOMETRY[kind]
    types = shapely.get_type_id(geoms)
    single, multi = {"MULTIPOLYGON": (3, 6), "MULTILINESTRING": (1, 5), "POINT": (0, 0)}[declared]
    bad = (types >= 0) & (types != single) & (types != multi)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise StoreError(f"{name}: row {first} is a {_TYPE_NAMES[types[first]]}, "
                         f"but the {kind} layer holds {declared.title()} geometries")
    promote = types == single if single != multi else np.zeros(len(geoms), bool)
    if promote.any():
        parts = geoms[promote]
        wrap = shapely.multipolygons if multi == 6 else shapely.multilinestrings
        geoms = geoms.copy()
        geoms[promote] = wrap(parts, indices=np.arange(len(parts)))
    return geoms


_TYPE_NAMES = ["Point", "LineString", "LinearRing", "Polygon", "MultiPoint", "MultiLineString",
               "MultiPolygon", "GeometryCollection"]


def column_kind(series: pd.Series, column: str, name: str) -> str:
    """The store column kind for a pandas column."""
    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "real"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    values = series.dropna()
    if len(values) and all(isinstance(v, _dt.date) and not isinstance(v, _dt.datetime) for v in values[:100]):
        return "date"
    if len(values) and isinstance(values.iloc[0], (dict, list, bytes)):
        raise StoreError(f"{name}: column {column!r} holds {type(values.iloc[0]).__name__} values; a store "
                         "column holds text, numbers, booleans, dates or times: convert it first")
    return "text"


def user_columns(frame) -> dict[str, str]:
    """Column name -> kind for every attribute column of a prepared frame."""
    name = "frame"
    return {c: column_kind(frame[c], c, name) for c in frame.columns if c != "geometry"}


def values(series: pd.Series, kind: str, *, iso_times: bool = False) -> np.ndarray:
    """An object array of plain Python values (None for missing) for a DB driver.

    Times are naive (a time zone is converted to UTC first); with ``iso_times``
    they come as ISO 8601 text to the millisecond, as a GeoPackage keeps them.
    """
    if kind == "datetime":
        s = pd.to_datetime(series)
        if getattr(s.dt, "tz", None) is not None:
            s = s.dt.tz_convert("UTC").dt.tz_localize(None)
        missing = s.isna().to_numpy()
        if iso_times:
            out = np.datetime_as_string(s.to_numpy().astype("datetime64[ms]"), unit="ms").astype(object)
        else:
            out = np.array(s.dt.to_pydatetime(), dtype=object)
        out[missing] = None
        return out
    if kind == "text":
        missing = pd.isna(series).to_numpy()
        if not pd.api.types.is_string_dtype(series.dtype) or series.dtype == object:
            series = series.astype(object).where(~missing, None).map(lambda v: v if v is None else str(v))
        out = series.to_numpy(dtype=object, copy=True)
        out[missing] = None
        return out
    if kind in ("integer", "real", "boolean"):
        missing = pd.isna(series).to_numpy()
        cast = {"integer": "int64", "real": "float64", "boolean": "bool"}[kind]
        filled = series.to_numpy(dtype=object, copy=True)
        filled[missing] = 0
        out = filled.astype(cast).astype(object)
        out[missing] = None
        return out
    out = series.astype(object).to_numpy(dtype=object, copy=True)
    out[pd.isna(series).to_numpy()] = None
    return out


# --- frames out -------------------------------------------------------------------


def column(raw: list, kind: str) -> pd.api.extensions.ExtensionArray | np.ndarray:
    """A pandas-ready column from the values a driver returned."""
    if kind == "text":
        return pd.array(raw, dtype="str")
    if kind == "integer":
        if any(v is None for v in raw):
            return pd.array(raw, dtype="Int64")
        return np.array(raw, dtype="int64")
    if kind == "real":
        return np.array([np.nan if v is None else v for v in raw], dtype="float64")
    if kind == "boolean":
        if any(v is None for v in raw):
            return pd.array([None if v is None else bool(v) for v in raw], dtype="boolean")
        return np.array(raw, dtype=bool)
    if kind == "datetime":
        return pd.to_datetime(pd.Series(raw, dtype=object), format="ISO8601").astype("datetime64[us]").array
    if kind == "date":
        return np.array([v if v is None or isinstance(v, _dt.date) else _dt.date.fromisoformat(v)
                         for v in raw], dtype=object)
    return np.array(raw, dtype=object)


def frame(columns: dict[str, np.ndarray], geoms, index=None) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries(geoms, crs=STORAGE_CRS, index=index),
                            crs=STORAGE_CRS, index=index)


def empty_frame(columns: dict[str, str]) -> gpd.GeoDataFrame:
    data = {name: column([], kind) for name, kind in columns.items()}
    return frame(data, np.array([], dtype=object))


def next_prefix(prefix: str) -> str:
    """The smallest string greater than every string starting with ``prefix``
    (in code-point order): ``code >= p AND code < next_prefix(p)`` is a prefix test
    an ordinary index answers."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


# --- the tables both backends create ------------------------------------------------


def derived_ddl(*, text: str = "TEXT", integer: str = "INTEGER", blob: str = "BLOB") -> list[str]:
    """The table of derived data kept per data version (schema version 2)."""
    return [f"CREATE TABLE gridgeo_derived (version {integer} NOT NULL, name {text} NOT NULL, data {blob}, "
            f"at {text} NOT NULL, PRIMARY KEY (version, name))"]


def derived_source_ddl(*, integer: str = "INTEGER") -> list[str]:
    """Derived data kept by reference (schema version 5): ``source`` names the version whose row of the
    same name holds the bytes (NULL: this row holds them)."""
    return [f"ALTER TABLE gridgeo_derived ADD COLUMN source {integer}"]


def audit_ddl(*, auto_id: str, text: str = "TEXT", integer: str = "INTEGER") -> list[str]:
    """The audit trail (schema version 3): one entry per write of the store, and per step put on
    record without one (:mod:`gridgeo.store._audit`); ``what`` is JSON."""
    return [f"CREATE TABLE gridgeo_audit (entry {auto_id}, at {text} NOT NULL, author {text} NOT NULL, "
            f"action {text} NOT NULL, revision {integer}, plan_id {integer}, message {text}, what {text})",
            "CREATE INDEX gridgeo_audit_at ON gridgeo_audit (at)",
            "CREATE INDEX gridgeo_audit_revision ON gridgeo_audit (revision)"]


def system_ddl(*, auto_id: str, text: str = "TEXT", integer: str = "INTEGER", blob: str = "BLOB") -> list[str]:
    """The store's own tables: meta, revisions, changes, plans, derived data and the audit trail."""
    t, i = text, integer
    return [
        f"CREATE TABLE gridgeo_meta (key {t} PRIMARY KEY, value {t} NOT NULL)",
        f"INSERT INTO gridgeo_meta VALUES ('schema_version', '{SCHEMA_VERSION}'), ('revision', '0')",
        f"CREATE TABLE gridgeo_revisions (revision {i} PRIMARY KEY, at {t} NOT NULL, author {t} NOT NULL, "
        f"action {t} NOT NULL, plan_id {i}, message {t})",
        "CREATE INDEX gridgeo_revisions_at ON gridgeo_revisions (at)",
        f"CREATE TABLE gridgeo_changes (revision {i} NOT NULL, layer {t} NOT NULL, rows {i}, "
        "PRIMARY KEY (layer, revision))",
        f"CREATE TABLE gridgeo_plans (plan_id {auto_id}, name {t} NOT NULL, parent {t} NOT NULL, "
        f"levels {t} NOT NULL, status {t} NOT NULL, author {t} NOT NULL, description {t}, "
        f"base_revision {i} NOT NULL, revision {i} NOT NULL, created_at {t} NOT NULL, "
        f"updated_at {t} NOT NULL, published_revision {i})",
        f"CREATE TABLE gridgeo_plan_removed (plan_id {i} NOT NULL, code {t} NOT NULL, base_rev {i}, "
        f"revision {i} NOT NULL, author {t} NOT NULL, at {t} NOT NULL, PRIMARY KEY (plan_id, code))",
        f"CREATE TABLE gridgeo_plan_log (plan_id {i} NOT NULL, revision {i} NOT NULL, at {t} NOT NULL, "
        f"author {t} NOT NULL, action {t} NOT NULL, message {t}, codes {t})",
        "CREATE INDEX gridgeo_plan_log_plan ON gridgeo_plan_log (plan_id, revision)",
        *derived_ddl(text=text, integer=integer, blob=blob),
        *derived_source_ddl(integer=integer),
        *audit_ddl(auto_id=auto_id, text=text, integer=integer),
    ]


def index_ddl() -> list[str]:
    """The attribute indexes of the layer tables (the spatial ones come with the tables)."""
    def q(name):
        return '"' + name + '"'

    out = ["CREATE UNIQUE INDEX plan_units_code ON plan_units (plan_id, code)"]
    for kind in KEYS:
        out += kind_index_ddl(kind)
    out += [
        "CREATE INDEX grids_parent ON grids (parent)",
        "CREATE INDEX grids_level ON grids (level, code)",
        "CREATE INDEX stations_grid_code ON stations (grid_code)",
        *boundary_index_ddl(),
    ]
    return out


def kind_index_ddl(kind: str) -> list[str]:
    """The attribute indexes of one kind's tables."""
    def q(name):
        return '"' + name + '"'

    key = KEYS[kind]
    return [
        f"CREATE {'UNIQUE ' if kind in UNIQUE_KEYS else ''}INDEX {kind}_{key} ON {q(kind)} ({q(key)})",
        f"CREATE INDEX {kind}_revision ON {q(kind)} (revision)",
        f"CREATE INDEX {kind}_history_{key} ON {q(kind + '_history')} ({q(key)}, revision)",
        f"CREATE INDEX {kind}_history_revision ON {q(kind + '_history')} (revision)",
        f"CREATE INDEX {kind}_history_retired ON {q(kind + '_history')} (retired)",
    ]


def boundary_index_ddl() -> list[str]:
    return ["CREATE INDEX boundaries_set ON boundaries (boundary_set, boundary_id)"]


def table_columns() -> dict[str, tuple[str, dict[str, str]]]:
    """table -> (kind, {column: kind}) for every geometry table a new store has."""
    out = {}
    for kind in KINDS:
        columns = base_columns(kind)
        out[kind] = (kind, {**columns, **SYSTEM})
        out[kind + "_history"] = (kind, {**columns, **SYSTEM, **HISTORY})
        if kind == "grids":
            out["plan_units"] = (kind, {**columns, **SYSTEM, **PLAN})
    return out


# --- whether a write changes anything --------------------------------------------------


def unchanged(current, new, kinds: dict[str, str], key: str) -> bool:
    """Whether publishing the prepared frame ``new`` in place of the published
    rows ``current`` changes nothing: the same rows (matched by ``key``), each
    the same by :func:`changed_rows`.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> a = gpd.GeoDataFrame({"station_id": ["1", "2"], "name": ["甲", "乙"]},
    ...                      geometry=[shapely.Point(0, 0), shapely.Point(1, 1)], crs=4490)
    >>> kinds = {"station_id": "text", "name": "text"}
    >>> unchanged(a, a.iloc[::-1], kinds, "station_id"), unchanged(a, a.assign(name="丙"), kinds, "station_id")
    (True, False)
    """
    if len(current) != len(new) or key not in current.columns or key not in new.columns:
        return False
    if not len(new):
        return True
    if set(current[key]) != set(new[key]):
        return False
    return not changed_rows(current, new, kinds, key).any()


def changed_rows(current, new, kinds: dict[str, str], key: str) -> np.ndarray:
    """Which rows of ``new`` differ from the row of ``current`` with the same ``key``
    (True for a key ``current`` does not have): a value differs in a column either
    has (times to the millisecond, as the store keeps them; a column only one has
    counts as empty in the other), or the geometry differs in any coordinate.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> a = gpd.GeoDataFrame({"code": ["1", "2"], "name": ["甲", "乙"]},
    ...                      geometry=[shapely.Point(0, 0), shapely.Point(1, 1)], crs=4490)
    >>> b = a.assign(name=["甲", "丙"])
    >>> changed_rows(a, b, {"code": "text", "name": "text"}, "code").tolist()
    [False, True]
    """
    new = new.reset_index(drop=True)
    current = current.drop_duplicates(key).set_index(key, drop=False)
    found = new[key].isin(current.index).to_numpy()
    out = ~found
    if not found.any():
        return out
    rows = np.flatnonzero(found)
    old = current.loc[new[key].to_numpy()[rows]].reset_index(drop=True)
    fresh = new.iloc[rows].reset_index(drop=True)
    differs = np.zeros(len(rows), dtype=bool)
    ignored = {"geometry", old.geometry.name, fresh.geometry.name, *SYSTEM, *HISTORY, *PLAN}
    for col in sorted((set(old.columns) | set(fresh.columns)) - ignored):
        kind = kinds.get(col, "text")
        a = values(old[col], kind, iso_times=True) if col in old.columns else np.full(len(rows), None)
        b = values(fresh[col], kind, iso_times=True) if col in fresh.columns else np.full(len(rows), None)
        differs |= ~np.asarray(a == b, dtype=bool)  # object arrays: element by element, None == None
    a, b = np.asarray(old.geometry.array, dtype=object), np.asarray(fresh.geometry.array, dtype=object)
    missing = shapely.is_missing(a) & shapely.is_missing(b)  # rows without geometry (the roster's people)
    differs |= ~(shapely.equals_exact(a, b, tolerance=0.0) | missing)
    out[rows] = differs
    return out
