"""The PostGIS backend: a PostgreSQL database shared by API workers and planners.

psycopg 3 does the talking: one connection per thread, binary results (WKB
comes back as bytes, not hex), transactions for writes and ``COPY``
for bulk loads. Geometry columns are typed (``geometry(MultiPolygon, 4490)``)
with a GiST index each; text columns use the "C" collation, so the code
prefix ranges that find a unit's descendants are answered by an ordinary
B-tree index whatever the database's locale.

Writers are serialised on the row of the revision counter (``SELECT ... FOR
UPDATE`` semantics through an ``UPDATE``), which is what makes the check of
an edit's revision and the write one indivisible step.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import numpy as np
import pandas as pd
import shapely

from gridgeo.store import _layers
from gridgeo.store._connections import PerThread
from gridgeo.store._sql import q
from gridgeo.store.errors import NotAStoreError, StoreError

_SRID = 4490
_CHUNK = 50_000
_REINDEX_FROM = 50_000  # from this many rows a load rebuilds the table's indexes instead of updating them

_TYPES_IN = {
    "text": 'text COLLATE "C"', "integer": "bigint", "real": "double precision", "boolean": "boolean",
    "datetime": "timestamp", "date": "date",
}
_KINDS_OUT = {
    "text": "text", "character varying": "text", "bigint": "integer", "integer": "integer",
    "smallint": "integer", "double precision": "real", "real": "real", "numeric": "real",
    "boolean": "boolean", "timestamp without time zone": "datetime", "date": "date",
}
_LIKE_SPECIAL = re.compile(r"([\\%_])")
_POSTGIS_TYPES = {"MULTIPOLYGON": "MultiPolygon", "POINT": "Point", "MULTILINESTRING": "MultiLineString"}


def display(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:…@", url)


class PostGIS:
    """Connections to one PostGIS store (one per thread)."""

    types = {"text": 'text COLLATE "C"', "integer": "bigint", "blob": "bytea"}  # of the store's own tables

    def __init__(self, url: str):
        self.url = url
        self.display = display(url)
        self._connections = PerThread(lambda: connect(self.url))
        found = self.query("SELECT to_regclass('gridgeo_meta') IS NOT NULL")[0][0]
        if not found:
            raise NotAStoreError(f"{self.display} holds no gridgeo store (no gridgeo_meta table): create one "
                                 "with gridgeo.store.open(url, create=True) or `gridgeo load`")

    # --- connections ----------------------------------------------------------------

    def _conn(self):
        return self._connections.get()

    def close(self) -> None:
        self._connections.close()

    def query(self, sql, params=()):
        with self._conn().cursor(binary=True) as cur:
            cur.execute(_sql(sql), tuple(params))
            return cur.fetchall()

    @contextmanager
    def write(self):
        conn = self._conn()
        with conn.transaction():
            with conn.cursor(binary=True) as cur:
                yield _Tx(cur)

    # --- tables -----------------------------------------------------------------------

    def table_columns(self, table, tx=None) -> dict[str, str]:
        sql = ("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
               "WHERE attrelid = CAST(? AS regclass) AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
        rows = (tx.query if tx is not None else self.query)(sql, (q(table),))
        out = {}
        for name, declared in rows:
            if name in ("fid", "geom"):
                continue
            kind = _KINDS_OUT.get(declared.split("(")[0])
            if kind is not None:
                out[name] = kind
        return out

    def add_column(self, tx, table, name, kind) -> None:
        tx.execute(f"ALTER TABLE {q(table)} ADD COLUMN {q(name)} {_TYPES_IN[kind]}")

    def level_views(self, tx, old, new) -> None:
        """PostGIS clients filter ``grids`` on ``level``: no per-level views to change."""

    def extent(self, table):
        row = self.query(f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
                         f"(SELECT ST_Extent(geom) AS e FROM {q(table)}) s")[0]
        return None if row[0] is None else tuple(float(v) for v in row)

    def limit_clause(self, limit) -> str:
        return "LIMIT ALL" if limit is None else f"LIMIT {int(limit)}"

    # --- geometries -------------------------------------------------------------------

    @staticmethod
    def geom_expr(column) -> str:
        return f"ST_AsBinary({q(column)})"

    @staticmethod
    def decode(values) -> np.ndarray:
        return shapely.from_wkb([None if v is None else bytes(v) for v in values])

    def bbox_condition(self, table, bbox):
        """Rows whose geometry intersects the box, its boundary included: ``&&`` on the GiST
        index, then ST_Intersects with the box as ST_Envelope makes it (a polygon, or a
        line or point for a box of no width or height: a degenerate polygon from
        ST_MakeEnvelope misses lines that cross it between their vertices)."""
        box = [float(v) for v in bbox]
        envelope = f"ST_MakeEnvelope(?, ?, ?, ?, {_SRID})"
        shape = f"ST_Envelope(ST_SetSRID(ST_MakeLine(ST_MakePoint(?, ?), ST_MakePoint(?, ?)), {_SRID}))"
        return f"(geom && {envelope} AND ST_Intersects(geom, {shape}))", box + box

    @staticmethod
    def bbox_count(table, bbox) -> None:
        """No faster count by a box than the query with :meth:`bbox_condition` (the GiST index)."""
        return None

    @staticmethod
    def intersects_condition(table, geometry):
        """Rows whose geometry intersects a shapely ``geometry`` (a filter's S_INTERSECTS);
        ST_Intersects uses the GiST index itself."""
        return f"ST_Intersects(geom, ST_GeomFromWKB(?, {_SRID}))", [shapely.to_wkb(geometry, output_dimension=2)]

    @staticmethod
    def like_condition(expr, parts):
        """A case-sensitive LIKE: ``parts`` are ``("text", s)``, ``("any", "")`` and
        ``("one", "")``; ``%``, ``_`` and ``\\`` in the text are escaped."""
        pattern = "".join("%" if kind == "any" else "_" if kind == "one" else _LIKE_SPECIAL.sub(r"\\\1", text)
                          for kind, text in parts)
        return f"({expr} LIKE ? ESCAPE '\\')", [pattern]

    @staticmethod
    def values(series, kind):
        return _layers.values(series, kind)

    # --- writing ----------------------------------------------------------------------

    def insert(self, tx, table, frame, kinds, *, progress=None, label=None) -> None:
        """COPY a frame's rows in (the indexes rebuilt after a big load).

        Each chunk becomes CSV in Arrow's C++ writer, geometries as hex EWKB,
        every non-null value quoted: an unquoted empty field is NULL, a quoted
        one the empty string, exactly as the frame had them.
        """
        import pyarrow as pa
        import pyarrow.csv as pacsv

        from gridgeo.store.geopackage import _progress

        n = len(frame)
        if n == 0:
            return
        names = list(kinds)
        geoms = shapely.set_srid(np.asarray(frame.geometry.array, dtype=object), _SRID)
        # a big load builds the indexes afterwards, by sorting, instead of updating them row by row
        indexes = tx.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
                           "AND tablename = ? AND indexname <> ?", (table, f"{table}_pkey")) \
            if n >= _REINDEX_FROM else []
        for name, _ in indexes:
            tx.execute(f"DROP INDEX {q(name)}")
        options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
        sql = f"COPY {q(table)} (geom, {', '.join(q(c) for c in names)}) FROM STDIN (FORMAT csv)"
        with _progress(n, label, progress) as bar, tx.cur.copy(sql) as copy:
            for start in range(0, n, _CHUNK):
                stop = min(start + _CHUNK, n)
                part = frame.iloc[start:stop]
                arrays = [pa.array(shapely.to_wkb(geoms[start:stop], hex=True, include_srid=True),
                                   type=pa.string())]
                arrays += [_arrow(part[c] if c in part.columns else None, kinds[c], stop - start)
                           for c in names]
                sink = pa.BufferOutputStream()
                pacsv.write_csv(pa.table(arrays, names=["geom", *names]), sink, options)
                copy.write(sink.getvalue().to_pybytes())
                bar.update(stop - start)
        for _, definition in indexes:
            tx.execute(definition)

    def copy(self, tx, src, dst, columns, where, params, *, extra=None, renamed=None) -> None:
        extra, renamed = extra or {}, renamed or {}
        targets = ["geom", *columns, *renamed, *extra]
        sources = ["geom", *(q(c) for c in columns), *(q(s) for s in renamed.values()), *("?" * len(extra))]
        tx.execute(f"INSERT INTO {q(dst)} ({', '.join(q(t) for t in targets)}) "
                   f"SELECT {', '.join(sources)} FROM {q(src)} WHERE {where} ORDER BY fid",
                   [*extra.values(), *params])


    @staticmethod
    def delete(tx, table, where, params) -> None:
        tx.execute(f"DELETE FROM {q(table)} WHERE {where}", params)


_ARROW_TYPES = {"text": "string", "integer": "int64", "real": "float64", "boolean": "bool_",
                "datetime": "timestamp", "date": "date32"}


def _arrow(series, kind, n):
    """One column as an Arrow array of the store's kind (all nulls if the frame lacks it)."""
    import pyarrow as pa

    arrow_type = pa.timestamp("us") if kind == "datetime" else getattr(pa, _ARROW_TYPES[kind])()
    if series is None:
        return pa.nulls(n, type=arrow_type)
    if kind == "text":
        return pa.array(_layers.values(series, kind), type=arrow_type)
    if kind == "datetime":
        values = pd.to_datetime(series)
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        return pa.array(values.astype("datetime64[us]"), type=arrow_type, from_pandas=True)
    if kind == "date":
        return pa.array(_layers.values(series, kind), type=arrow_type)
    return pa.array(series, type=arrow_type, from_pandas=True)


class _Tx:
    def __init__(self, cur):
        self.cur = cur

    def query(self, sql, params=()):
        self.cur.execute(_sql(sql), tuple(params))
        return self.cur.fetchall()

    def execute(self, sql, params=()):
        self.cur.execute(_sql(sql), tuple(params))

    def executemany(self, sql, rows):
        self.cur.executemany(_sql(sql), list(rows))


def _sql(sql: str) -> str:
    """The store's SQL (``?`` placeholders) in psycopg's ``%s`` style."""
    return sql.replace("%", "%%").replace("?", "%s")


def connect(url: str):
    import psycopg

    try:
        return psycopg.connect(url, autocommit=True)
    except psycopg.OperationalError as exc:
        raise StoreError(f"cannot connect to {display(url)}: {str(exc).strip()}. Check that the server runs "
                         "and the URL (host, port, database, user) is right") from exc


# --- creating a store -------------------------------------------------------------------


def create(url: str) -> None:
    """Create the store's tables in the database at ``url`` unless they are
    there, in one transaction (two processes creating at once are serialised)."""
    import psycopg

    with connect(url) as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(4490350582)")
        cur.execute("SELECT to_regclass('gridgeo_meta') IS NOT NULL")
        if cur.fetchone()[0]:
            return
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        except psycopg.Error as exc:
            raise StoreError(f"{display(url)}: PostGIS is not available ({str(exc).strip()}); install it "
                             "(postgresql-15-postgis-3) and let a superuser run CREATE EXTENSION postgis "
                             "in this database") from exc
        for statement in _ddl():
            cur.execute(statement)


def _ddl() -> list[str]:
    out = []
    for table, (kind, kinds) in _layers.table_columns().items():
        columns = ", ".join(f"{q(name)} {_TYPES_IN[k]}" for name, k in kinds.items())
        geometry = f"geometry({_POSTGIS_TYPES[_layers.GEOMETRY[kind]]}, {_SRID})"
        out += [
            f"CREATE TABLE {q(table)} (fid bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            f"geom {geometry}, {columns})",
            f"CREATE INDEX {q(table + '_geom_gist')} ON {q(table)} USING GIST (geom)",
        ]
    out += _layers.system_ddl(auto_id="bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                              text='text COLLATE "C"', integer="bigint", blob="bytea")
    out += _layers.index_ddl()
    return out
