"""The GeoPackage backend: one file, readable by QGIS and GDAL.

GDAL (through pyogrio) creates the geometry tables, so they are what every
GeoPackage reader expects: ``gpkg_contents``, ``gpkg_geometry_columns``, an
R-tree per geometry column (the ``gpkg_rtree_index`` extension) and its
triggers. The grid levels are views (``town`` ... ``grid3``) registered in
``gpkg_contents``, so QGIS lists them as layers. Everything else is SQLite
through the standard library: transactions that span tables are what make a
publish atomic, and WAL journaling lets readers (the API, QGIS) go on while
one writer writes.

The R-tree triggers call ``ST_IsEmpty``, ``ST_MinX`` ... which a GeoPackage
reader must provide; this module registers them on every connection. Bulk
inserts skip the per-row trigger and fill the R-tree from the envelopes in
one pass.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import os
import re
import shutil
import sqlite3
import struct
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from gridgeo.crs import STORAGE_CRS
from gridgeo.store import _layers, _rtree
from gridgeo.store._connections import PerThread
from gridgeo.store._sql import q
from gridgeo.store.errors import NotAStoreError

_SRS_ID = 4490
_CHUNK = 50_000
_BULK_ROWS = 5_000  # from this many rows an insert fills the R-tree in one pass
_BUSY_MS = 60_000

# GeoPackage binary header: envelope indicator -> envelope bytes
_ENVELOPE_BYTES = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}
_HEADER = np.dtype([("magic", "S2"), ("version", "u1"), ("flags", "u1"), ("srs", "<i4"), ("env", "<f8", (4,))])

_GLOB_SPECIAL = re.compile(r"([*?\[])")

_TYPES_IN = {
    "text": "TEXT", "integer": "INTEGER", "real": "REAL", "boolean": "BOOLEAN", "datetime": "DATETIME",
    "date": "DATE",
}


def _kind_of(declared: str) -> str | None:
    t = (declared or "").upper()
    if t in ("INTEGER", "INT", "BIGINT", "MEDIUMINT", "SMALLINT", "TINYINT"):
        return "integer"
    if t in ("REAL", "DOUBLE", "FLOAT", "NUMERIC"):
        return "real"
    if t == "BOOLEAN":
        return "boolean"
    if t == "DATETIME":
        return "datetime"
    if t == "DATE":
        return "date"
    if t.startswith("TEXT") or t.startswith("VARCHAR") or t == "":
        return "text"
    return None  # a geometry column


class GeoPackage:
    """Connections to one GeoPackage store (one per thread)."""

    types = {"text": "TEXT", "integer": "INTEGER", "blob": "BLOB",  # of the store's own tables
             "auto_id": "INTEGER PRIMARY KEY"}

    def __init__(self, path: Path):
        self.path = Path(path)
        self.display = str(path)
        self._connections = PerThread(lambda: _connect(self.path))
        if not self.path.exists():
            raise NotAStoreError(f"{self.path} does not exist: create a store with "
                                 f"gridgeo.store.open({str(self.path)!r}, create=True) or `gridgeo load`")
        tables = {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "gridgeo_meta" not in tables:
            raise NotAStoreError(f"{self.path} is a SQLite/GeoPackage file but not a gridgeo store (it has no "
                                 "gridgeo_meta table): load its layers into a new store with `gridgeo load`")

    # --- connections ----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    def query(self, sql, params=()):
        return self._conn().execute(sql, tuple(params)).fetchall()

    @contextmanager
    def write(self):
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield _Tx(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- tables -----------------------------------------------------------------------

    def table_columns(self, table, tx=None) -> dict[str, str]:
        run = tx.query if tx is not None else self.query
        out = {}
        for _cid, name, declared, _nn, _default, pk in run(f"PRAGMA table_info({q(table)})"):
            if pk or name == "geom":
                continue
            kind = _kind_of(declared)
            if kind is not None:
                out[name] = kind
        return out

    def add_column(self, tx, table, name, kind) -> None:
        tx.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(name)} {_TYPES_IN[kind]}")

    def level_views(self, tx, old, new) -> None:
        """Replace the per-level views of grids (layers QGIS lists) for a new scheme."""
        for level in old:
            tx.execute(f"DROP VIEW IF EXISTS {q(level)}")
            tx.execute("DELETE FROM gpkg_geometry_columns WHERE table_name = ?", (level,))
            tx.execute("DELETE FROM gpkg_contents WHERE table_name = ?", (level,))
        for statement in _level_view_ddl(new):
            tx.execute(statement)

    def add_kind(self, tx, kind) -> None:
        """Add the tables of ``kind`` (a layer kind a newer gridgeo knows) as a new store has them:
        their definitions, R-trees, triggers and GeoPackage registrations are copied from the
        empty store GDAL made, so that QGIS and GDAL see them as they see the others."""
        tables = [kind, kind + "_history"]
        if tx.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (kind,)):
            return
        template = sqlite3.connect(_empty_store())
        try:
            rtrees = [_rtree_name(t) for t in tables]
            shadow = tuple(f"{r}_{part}" for r in rtrees for part in ("node", "rowid", "parent"))
            objects = template.execute(
                "SELECT type, name, sql FROM sqlite_master WHERE (tbl_name IN (?, ?, ?, ?)) AND sql IS NOT NULL "
                "ORDER BY CASE type WHEN 'table' THEN 0 WHEN 'index' THEN 1 ELSE 2 END, rowid",
                (*tables, *rtrees)).fetchall()
            registry = {name: template.execute(f"SELECT * FROM {name} WHERE lower(table_name) IN (?, ?)",
                                               tables).fetchall()
                        for name in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_ogr_contents",
                                     "gpkg_extensions")}
        finally:
            template.close()
        for _type, name, sql in objects:
            if name not in shadow:
                tx.execute(sql)
        for name, rows in registry.items():
            for row in rows:
                tx.execute(f"INSERT INTO {name} VALUES ({', '.join('?' * len(row))})", row)

    def extent(self, table):
        box = _rtree.root_box(self.query, _rtree_name(table))  # the root node alone, not a scan of the tree
        return None if box is None else (box[0], box[2], box[1], box[3])

    def limit_clause(self, limit) -> str:
        return f"LIMIT {-1 if limit is None else int(limit)}"

    # --- geometries -------------------------------------------------------------------

    @staticmethod
    def geom_expr(column) -> str:
        return q(column)

    @staticmethod
    def decode(blobs) -> np.ndarray:
        return shapely.from_wkb([None if b is None else b[8 + _ENVELOPE_BYTES[(b[3] >> 1) & 7]:] for b in blobs])

    @staticmethod
    def encode(geoms) -> list:
        return _blobs(np.asarray(geoms, dtype=object))

    def bbox_condition(self, table, bbox):
        """Rows of ``table`` whose geometry intersects ``bbox`` (its boundary included), exactly.

        The R-tree decides most rows alone: its box of a geometry holds the geometry
        (float32, rounded outwards), so a row whose R-tree box lies inside the query
        box intersects it, and one whose box misses the query box does not. Only the
        rows whose R-tree box crosses an edge of the query box are tested by shapely
        (``gridgeo_intersects``). A box around the whole layer is no condition at all
        (beyond having a geometry)."""
        rtree = q(_rtree_name(table))
        if self._covers_layer(table, bbox):
            return ("1 = 1", []) if self._all_indexed(table) else (f"fid IN (SELECT id FROM {rtree})", [])
        inside, _, params, test = _box_terms(bbox)
        # the candidates first, as a plain rowid IN: SQLite then starts from the R-tree
        return (f"(fid IN (SELECT id FROM {rtree} WHERE {_MEETS}) AND (fid IN (SELECT id FROM {rtree} "
                f"WHERE {inside}) OR gridgeo_intersects(geom, ?, ?)))", [*params["meets"], *params["inside"], *test])

    @staticmethod
    def selective_box(table, bbox) -> bool:
        """A page in a box is read as SQLite plans it (the R-tree first): never rewritten."""
        return False

    def bbox_count(self, table, bbox) -> int:
        """How many rows of ``table`` intersect ``bbox``, counted in its R-tree: the
        entries inside the box, and of the entries on its edge those shapely finds
        intersecting (as :meth:`bbox_condition`). A box around the whole layer counts
        every entry: no row is read."""
        rtree = q(_rtree_name(table))
        if self._covers_layer(table, bbox):
            return int(self.query(f"SELECT COUNT(*) FROM {q(_rtree_name(table) + '_rowid')}")[0][0])
        inside, edge, params, test = _box_terms(bbox)
        certain = int(self.query(f"SELECT COUNT(*) FROM {rtree} WHERE {inside}", params["inside"])[0][0])
        decided = int(self.query(f"SELECT COUNT(*) FROM {q(table)} WHERE fid IN (SELECT id FROM {rtree} "
                                 f"WHERE {edge}) AND gridgeo_intersects(geom, ?, ?)", [*params["edge"], *test])[0][0])
        return certain + decided

    def _covers_layer(self, table, bbox) -> bool:
        """Whether ``bbox`` holds the box of the R-tree's root, and so every row's geometry."""
        root = _rtree.root_box(self.query, _rtree_name(table))
        minx, miny, maxx, maxy = (float(v) for v in bbox)
        return root is None or (minx <= root[0] and root[1] <= maxx and miny <= root[2] and root[3] <= maxy)

    def _all_indexed(self, table) -> bool:
        """Whether every row of ``table`` is in its R-tree (none has a missing or empty geometry)."""
        rows = int(self.query(f"SELECT COUNT(*) FROM {q(table)}")[0][0])
        return rows == int(self.query(f"SELECT COUNT(*) FROM {q(_rtree_name(table) + '_rowid')}")[0][0])

    def intersects_condition(self, table, geometry):
        """Rows of ``table`` whose geometry intersects a shapely ``geometry`` (a filter's
        S_INTERSECTS): the R-tree gives the candidates, shapely decides (``gridgeo_intersects``,
        registered on every connection), so paging and counts stay in SQL."""
        minx, miny, maxx, maxy = (float(v) for v in geometry.bounds)
        wkb = shapely.to_wkb(geometry, byte_order=1, output_dimension=2)
        key = hashlib.sha1(wkb).hexdigest()
        return (f"(fid IN (SELECT id FROM {q(_rtree_name(table))} WHERE maxx >= ? AND minx <= ? "
                "AND maxy >= ? AND miny <= ?) AND gridgeo_intersects(geom, ?, ?))",
                [minx, maxx, miny, maxy, key, wkb])

    @staticmethod
    def like_condition(expr, parts):
        """A case-sensitive LIKE: SQLite's LIKE ignores ASCII case, its GLOB does not. ``parts``
        are ``("text", s)``, ``("any", "")`` and ``("one", "")``; GLOB's own wildcards in the text
        are bracketed (``[*]``), so they match themselves."""
        glob = "".join("*" if kind == "any" else "?" if kind == "one" else _GLOB_SPECIAL.sub(r"[\1]", text)
                       for kind, text in parts)
        return f"({expr} GLOB ?)", [glob]

    @staticmethod
    def values(series, kind):
        out = _layers.values(series, kind, iso_times=True)
        if kind == "boolean":
            out = np.array([None if v is None else int(v) for v in out], dtype=object)
        return out

    # --- writing ----------------------------------------------------------------------

    def insert(self, tx, table, frame, kinds, *, progress=None, label=None) -> None:
        """Insert a frame's rows in one prepared statement, chunk by chunk."""
        n = len(frame)
        if n == 0:
            return
        names = list(kinds)
        columns = [self.values(frame[c], kinds[c]) if c in frame.columns else np.full(n, None, dtype=object)
                   for c in names]
        geoms = np.asarray(frame.geometry.array, dtype=object)
        first = int(tx.query(f"SELECT COALESCE(MAX(fid), 0) FROM {q(table)}")[0][0]) + 1
        fids = np.arange(first, first + n)
        sql = (f"INSERT INTO {q(table)} (fid, geom, {', '.join(q(c) for c in names)}) "
               f"VALUES ({', '.join('?' * (len(names) + 2))})")
        bulk = n >= _BULK_ROWS
        with _deferred(tx, table, "insert", enabled=bulk) as index:
            with _progress(n, label, progress) as bar:
                for start in range(0, n, _CHUNK):
                    stop = min(start + _CHUNK, n)
                    rows = zip(fids[start:stop].tolist(), _blobs(geoms[start:stop]),
                               *(c[start:stop] for c in columns))
                    tx.executemany(sql, rows)
                    bar.update(stop - start)
            if bulk:
                index.add(fids, geoms)

    def copy(self, tx, src, dst, columns, where, params, *, extra=None, renamed=None) -> None:
        """INSERT INTO dst SELECT ... FROM src WHERE ..., with constants and renamed columns."""
        extra, renamed = extra or {}, renamed or {}
        targets = ["geom", *columns, *renamed, *extra]
        sources = ["geom", *(q(c) for c in columns), *(q(s) for s in renamed.values()), *("?" * len(extra))]
        n = int(tx.query(f"SELECT COUNT(*) FROM {q(src)} WHERE {where}", params)[0][0])
        bulk = n >= _BULK_ROWS
        first = int(tx.query(f"SELECT COALESCE(MAX(fid), 0) FROM {q(dst)}")[0][0]) + 1
        numbered = f"{first - 1} + ROW_NUMBER() OVER (ORDER BY fid)"
        with _deferred(tx, dst, "insert", enabled=bulk) as index:
            tx.execute(f"INSERT INTO {q(dst)} (fid, {', '.join(q(t) for t in targets)}) "
                       f"SELECT {numbered}, {', '.join(sources)} FROM {q(src)} WHERE {where} ORDER BY fid",
                       [*extra.values(), *params])
            if bulk:
                index.copy_from(_rtree_name(src), f"SELECT fid AS old, {numbered} AS new FROM {q(src)} "
                                f"WHERE {where}", params)


    def delete(self, tx, table, where, params) -> None:
        """DELETE FROM table WHERE ...; a big one rebuilds the R-tree from what is left."""
        n = int(tx.query(f"SELECT COUNT(*) FROM {q(table)} WHERE {where}", params)[0][0])
        with _deferred(tx, table, "delete", enabled=n >= _BULK_ROWS):
            tx.execute(f"DELETE FROM {q(table)} WHERE {where}", params)


@contextmanager
def _deferred(tx, table: str, action: str, *, enabled: bool):
    """Inside, inserts into (or deletes from) ``table`` skip the per-row triggers
    that keep its R-tree and GDAL's feature count; both are brought up to date
    in one pass on the way out. An insert hands its new entries to the yielded
    :class:`_rtree.Pending`."""
    if not enabled:
        yield None
        return
    rtree = _rtree_name(table)
    names = (f"{rtree}_{action}", f"trigger_{action}_feature_count_{table}")
    triggers = tx.query("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ? "
                        "AND name IN (?, ?)", (table, *names))
    for name, _ in triggers:
        tx.execute(f"DROP TRIGGER {q(name)}")
    pending = _rtree.Pending(tx, rtree)
    yield pending
    if action == "insert":
        pending.flush()
    else:
        _rtree.rebuild(tx, rtree, table)
    tx.execute("UPDATE gpkg_ogr_contents SET feature_count = (SELECT COUNT(*) FROM " + q(table) + ") "
               "WHERE lower(table_name) = lower(?)", (table,))
    for _, sql in triggers:
        tx.execute(sql)


class _Tx:
    """The cursor-like view of a write transaction that the store logic uses."""

    def __init__(self, conn):
        self.conn = conn

    def query(self, sql, params=()):
        return self.conn.execute(sql, tuple(params)).fetchall()

    def execute(self, sql, params=()):
        self.conn.execute(sql, tuple(params))

    def executemany(self, sql, rows):
        self.conn.executemany(sql, rows)


def _connect(path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=_BUSY_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_MS}")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA cache_size = -65536")
    _register_functions(conn)
    return conn


def _rtree_name(table: str) -> str:
    return f"rtree_{table}_geom"


def _box_terms(bbox):
    """The R-tree conditions of a query box: ``inside`` (an entry's box lies in it),
    ``edge`` (an entry's box meets it without lying in it), their parameters, and the
    parameters of ``gridgeo_intersects`` with the box as a polygon."""
    minx, miny, maxx, maxy = (float(v) for v in bbox)
    inside = "minx >= ? AND maxx <= ? AND miny >= ? AND maxy <= ?"
    edge = f"{_MEETS} AND NOT ({inside})"
    wkb = shapely.to_wkb(shapely.box(minx, miny, maxx, maxy), byte_order=1, output_dimension=2)
    box = [minx, maxx, miny, maxy]
    return inside, edge, {"inside": box, "meets": box, "edge": box + box}, [hashlib.sha1(wkb).hexdigest(), wkb]


_MEETS = "maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?"
"""An R-tree entry's box meets the query box (minx, maxx, miny, maxy)."""


# --- GeoPackage geometry blobs ---------------------------------------------------------


def _blobs(geoms: np.ndarray) -> list:
    """GeoPackage binary geometries: a header with the XY envelope, then WKB."""
    n = len(geoms)
    out = [None] * n
    present = np.flatnonzero(~shapely.is_missing(geoms))
    if not len(present):
        return out
    g = geoms[present]
    wkb = shapely.to_wkb(g, byte_order=1, output_dimension=2)
    empty = shapely.is_empty(g)
    header = np.zeros(len(g), dtype=_HEADER)
    header["magic"] = b"GP"
    header["flags"] = np.where(empty, 0x11, 0x03)  # little-endian; XY envelope, or the empty bit
    header["srs"] = _SRS_ID
    bounds = shapely.bounds(g)
    header["env"] = bounds[:, [0, 2, 1, 3]]  # minx, maxx, miny, maxy
    raw = header.tobytes()
    size = _HEADER.itemsize
    for i, (pos, w) in enumerate(zip(present.tolist(), wkb)):
        out[pos] = raw[i * size:(i + 1) * size if not empty[i] else i * size + 8] + w
    return out


def _envelope(blob):
    """(minx, maxx, miny, maxy) of a GeoPackage blob, or None if it is empty."""
    flags = blob[3]
    if flags & 0x10:
        return None
    indicator = (flags >> 1) & 7
    if indicator:
        return struct.unpack_from("<dddd" if flags & 1 else ">dddd", blob, 8)
    geom = shapely.from_wkb(bytes(blob[8:]))
    if geom.is_empty:
        return None
    minx, miny, maxx, maxy = geom.bounds
    return minx, maxx, miny, maxy


def _register_functions(conn) -> None:
    """The SQL functions the GeoPackage R-tree triggers call, and the one filters call."""

    def is_empty(blob):
        return None if blob is None else int(_envelope(blob) is None)

    def part(i):
        def fn(blob):
            if blob is None:
                return None
            env = _envelope(blob)
            return None if env is None else env[i]
        return fn

    conn.create_function("ST_IsEmpty", 1, is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY")):
        conn.create_function(name, 1, part(i), deterministic=True)
    conn.create_function("gridgeo_intersects", 3, _intersects, deterministic=True)


_LITERALS = threading.local()  # per thread: GEOS builds a prepared geometry's index on first use


def _intersects(blob, key, wkb):
    """``gridgeo_intersects(geom, key, wkb)``: 1 if a GeoPackage geometry intersects the
    geometry of a filter (WKB, prepared once per ``key``, its digest), 0 if not, NULL for
    a missing geometry (as ST_Intersects in PostGIS)."""
    if blob is None or wkb is None:
        return None
    cache = getattr(_LITERALS, "cache", None)
    if cache is None or len(cache) >= 64:
        cache = _LITERALS.cache = {}
    literal = cache.get(key)
    if literal is None:
        geometry = shapely.from_wkb(bytes(wkb))
        shapely.prepare(geometry)
        literal = cache[key] = (geometry, geometry.bounds)
    geometry, (minx, miny, maxx, maxy) = literal
    envelope = _envelope(blob)
    if envelope is None:
        return 0  # an empty geometry intersects nothing
    if envelope[1] < minx or envelope[0] > maxx or envelope[3] < miny or envelope[2] > maxy:
        return 0
    size = 8 + _ENVELOPE_BYTES[(blob[3] >> 1) & 7]
    return int(shapely.intersects(geometry, shapely.from_wkb(bytes(blob[size:]))))


# --- progress -------------------------------------------------------------------------


@contextmanager
def _progress(total, label, progress):
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=label or "writing", unit=" rows", unit_scale=True,
               disable=(None if progress is None else not progress), leave=False)
    try:
        yield bar
    finally:
        bar.close()


# --- creating a store -------------------------------------------------------------------


def create(path: Path) -> None:
    """Create an empty store at ``path``, atomically: the file appears complete or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot create {path}: the folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".gpkg", dir=path.parent)
    os.close(fd)
    try:
        shutil.copyfile(_empty_store(), tmp)
        try:
            os.link(tmp, path)  # never replaces a store someone else just created
        except FileExistsError:
            pass
    finally:
        for leftover in (tmp, tmp + "-wal", tmp + "-shm", tmp + "-journal"):
            if os.path.exists(leftover):
                os.unlink(leftover)


@functools.lru_cache(maxsize=1)
def _empty_store() -> Path:
    """An empty store, made by GDAL once per process and copied for every new one."""
    folder = Path(tempfile.mkdtemp(prefix="gridgeo-empty-store-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = folder / "empty.gpkg"
    _create_tables(path)
    return path


def _create_tables(path: Path) -> None:
    import pyogrio

    for table, (kind, kinds) in _layers.table_columns().items():
        empty = _layers.empty_frame(kinds)
        pyogrio.write_dataframe(
            gpd.GeoDataFrame(empty, geometry="geometry", crs=STORAGE_CRS), path, layer=table,
            driver="GPKG", geometry_type=_OGR_TYPES[_layers.GEOMETRY[kind]],
            layer_options={"FID": "fid", "GEOMETRY_NAME": "geom", "SPATIAL_INDEX": "YES",
                           "DESCRIPTION": _DESCRIPTIONS.get(table, "")},
        )
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("BEGIN")
        for statement in _ddl():
            conn.execute(statement)
        conn.execute("COMMIT")
    finally:
        conn.close()


_OGR_TYPES = {"MULTIPOLYGON": "MultiPolygon", "POINT": "Point", "MULTILINESTRING": "MultiLineString"}

_DESCRIPTIONS = {
    "grids": "published grid units of every level (网格), one row per unit",
    "grids_history": "replaced versions of grid units, with the revision that retired them",
    "plan_units": "units of draft plans (filter on plan_id)",
    "stations": "service stations (网格服务站/点)",
    "addresses": "standard addresses (标准地址) with counts",
    "events": "grid events (网格事件)",
    "roads": "road segments",
    "boundaries": "other offices' areas (警格, 学区 ...), one row per unit of a named set (boundary_set)",
    "boundaries_history": "replaced versions of boundary units, with the revision that retired them",
    "roster": "who answers for each grid (网格长, 网格员, 警格民警): people, no geometry",
    "roster_history": "replaced rosters, with the revision that retired them",
}


def _ddl() -> list[str]:
    return _layers.system_ddl(auto_id="INTEGER PRIMARY KEY") + _layers.index_ddl() + \
        _level_view_ddl(_layers.LEVELS)


def _level_view_ddl(levels) -> list[str]:
    out = []
    for level in levels:
        text = str(level).replace("'", "''")
        out += [
            f"CREATE VIEW {q(level)} AS SELECT * FROM grids WHERE level = '{text}'",
            f"INSERT INTO gpkg_contents (table_name, data_type, identifier, description, srs_id) VALUES "
            f"('{text}', 'features', '{text}', 'published {text} units (a view of grids)', {_SRS_ID})",
            f"INSERT INTO gpkg_geometry_columns VALUES ('{text}', 'geom', 'MULTIPOLYGON', {_SRS_ID}, 0, 0)",
        ]
    return out
