"""Which data version a service on a store serves, read with the standard library alone.

A service serves the newest data version whose derived data is complete and
no newer than the store's own version (:func:`gridgeo.derived.latest`). A
service that is still starting (:mod:`api.boot`) needs that number before it
has imported the libraries the store is read with, so this module asks the
store's two tables directly: ``sqlite3`` for a GeoPackage, ``psycopg`` (light
beside pandas) for PostGIS. It never writes and never creates anything.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

_COMPLETE = ("SELECT d.version, d.at, r.at FROM gridgeo_derived d LEFT JOIN gridgeo_revisions r "
             "ON r.revision = d.version, gridgeo_meta m WHERE d.name = '.complete' AND m.key = 'revision' "
             "AND d.version <= CAST(m.value AS INTEGER)")
LATEST = _COMPLETE + " ORDER BY d.version DESC LIMIT 1"
"""The rule of :func:`gridgeo.derived.latest` in SQL: the newest complete version no newer than the store's."""
OF_VERSION = _COMPLETE + " AND d.version = ?"


def latest(url: str | os.PathLike, version: int | None = None) -> tuple[int, str] | None:
    """The data version a service on the store at ``url`` serves, with its stamp; None when none
    is prepared. With ``version``: that version's stamp, if it is complete (else None).

    The stamp says when the version was published and when its derived data was completed:
    a store made again at the same place, or a version prepared again, has another.

    Raises
    ------
    LookupError
        There is no store at ``url`` (or it cannot be read).

    Examples
    --------
    >>> import tempfile, gridgeo.store
    >>> path = tempfile.mkdtemp() + "/new.gpkg"
    >>> _ = gridgeo.store.open(path, create=True)
    >>> latest(path) is None
    True
    """
    sql, params = (LATEST, ()) if version is None else (OF_VERSION, (int(version),))
    text = os.fspath(url)
    if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
        return _postgis(text.replace("postgresql+psycopg://", "postgresql://", 1), sql, params)
    path = Path(text)
    if not path.is_file():
        raise LookupError(f"{path}: 没有这个数据库文件 — no such store file")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return _first(conn.execute(sql, params).fetchone())
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise LookupError(f"{path}: 不是 gridgeo 数据库 — not a gridgeo store ({exc})") from exc


def _postgis(url: str, sql: str, params: tuple) -> tuple[int, str] | None:
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            return _first(conn.execute(sql.replace("?", "%s"), params).fetchone())
    except psycopg.Error as exc:
        raise LookupError(f"不能读取数据库 — cannot read the store: {str(exc).strip()}") from exc


def _first(row) -> tuple[int, str] | None:
    if row is None or row[0] is None:
        return None
    return int(row[0]), f"{row[2] or ''}|{row[1] or ''}"
