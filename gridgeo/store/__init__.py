"""Stores: the published grids, stations, addresses, events and roads, their
history, and plans, in a GeoPackage file or a PostGIS database.

:func:`open` takes a path or a URL and returns a :class:`Store`; the two
backends behave the same, and one test suite runs against both.

- ``"data/gridgeo.gpkg"``: a GeoPackage, the embedded default. One file that
  QGIS and GDAL open as they are (the grid levels appear as the layers
  ``town`` ... ``grid3``).
- ``"postgresql://user@host/db"``: PostGIS, for servers with several API
  workers and many planners.

What a store promises:

- **reads** give GeoDataFrames in EPSG:4490: the published rows, filtered by
  bbox (spatial index), parent or ancestor code (B-tree index on the codes)
  and attribute values, with paging; or the rows as they were at any past
  revision or time (:meth:`Store.read` with ``at=``), since replaced rows are
  kept, never overwritten (:meth:`Store.history`).
- **one revision counter**: every write is one transaction and one new
  revision; :attr:`Store.version` changes only when published data change
  (an ETag, and what a tile cache is invalidated by).
- **rollback** (:meth:`Store.rollback`): the published data of any earlier
  revision again, as one new, validated revision; and an **audit trail**
  (:meth:`Store.audit`) of every change: who, when, and what (rows added,
  changed and removed per layer, the grid units by code).
- **plans** (:meth:`Store.create_plan`): drafts of the units of some levels
  inside a parent; edits state the revision they were based on and a stale
  one is refused naming the unit and who changed it
  (:class:`~gridgeo.store.errors.StaleEditError`); publishing validates the
  result with :func:`gridgeo.validate` and replaces the units in one
  transaction, or changes nothing.
- **bulk loads** (:meth:`Store.load`) on the backend's fast path: COPY
  into PostGIS, one transaction of prepared inserts and a packed R-tree for
  GeoPackage, with a progress bar.
- a **schema version** in the store, with :meth:`Store.migrate` for later
  layouts.

Examples
--------
>>> import tempfile, gridgeo.store, gridgeo.sample
>>> store = gridgeo.store.open(tempfile.mkdtemp() + "/jinjiang.gpkg", create=True)
>>> sample = gridgeo.sample.load()
>>> store.load({"grids": sample.grids, "stations": sample.stations}, author="网格办", progress=False)
1
>>> store.count("grid2"), store.version
(128, 1)
"""

from __future__ import annotations

import os
from pathlib import Path

from gridgeo.store._cql2 import CONFORMANCE as FILTER_CONFORMANCE
from gridgeo.store._store import SCHEMA_VERSION, Store
from gridgeo.store.errors import (
    ConflictError, FilterError, NotAStoreError, NotFound, PlanStateError, PublishError, RollbackError,
    SchemaVersionError, StaleEditError, StoreError,
)
from gridgeo.store.plans import Plan

__all__ = [
    "open", "Store", "Plan", "SCHEMA_VERSION", "is_postgis",
    "StoreError", "NotAStoreError", "SchemaVersionError", "NotFound", "PlanStateError", "StaleEditError",
    "ConflictError", "PublishError", "RollbackError", "FilterError", "FILTER_CONFORMANCE",
]

_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_postgis(url) -> bool:
    """True for a ``postgresql://`` URL, False for a GeoPackage path."""
    return isinstance(url, str) and url.startswith(_SCHEMES)


def open(url, *, create: bool = False, scheme=None) -> Store:  # noqa: A001 - the verb every store library uses
    """Open the store at a GeoPackage path or a ``postgresql://`` URL.

    Parameters
    ----------
    url : str or os.PathLike
        A ``.gpkg`` path, or ``postgresql://user[:password]@host[:port]/database``.
    create : bool, default False
        Create the store when there is none: a new GeoPackage file (written
        whole, then moved into place) or the store's tables in an existing,
        empty PostgreSQL database (which needs the PostGIS extension
        available). An existing store is opened as it is.
    scheme : CodeScheme or str, optional
        The code scheme of the store's grids (a :class:`gridgeo.schema.CodeScheme`,
        or a name or file :func:`gridgeo.schema.scheme_from` takes). Recorded in a
        store without grids; for a store that has grids under another scheme,
        :class:`StoreError`. Default: whatever the store records
        (:data:`gridgeo.schema.DEFAULT_SCHEME` for a new one).

    Returns
    -------
    Store

    Raises
    ------
    NotAStoreError
        There is no store there (and ``create`` is False), or the file or
        database holds something else.
    SchemaVersionError
        The store was written by a newer gridgeo.

    Examples
    --------
    >>> import tempfile, gridgeo.store
    >>> path = tempfile.mkdtemp() + "/new.gpkg"
    >>> gridgeo.store.open(path, create=True).version
    0
    >>> gridgeo.store.open(path).counts()["grids"]
    0
    """
    if is_postgis(url):
        from gridgeo.store import postgis

        url = url.replace("postgresql+psycopg://", "postgresql://", 1)
        if create:
            postgis.create(url)
        return _with_scheme(Store(postgis.PostGIS(url)), scheme)
    from gridgeo.store import geopackage

    path = Path(os.fspath(url))
    if path.suffix.lower() != ".gpkg":
        raise NotAStoreError(f"{path}: a store is a .gpkg file or a postgresql:// URL")
    if create and not path.exists():
        geopackage.create(path)
    return _with_scheme(Store(geopackage.GeoPackage(path)), scheme)


def _with_scheme(store: Store, scheme) -> Store:
    if scheme is None:
        return store
    from gridgeo.schema import scheme_from

    wanted = scheme_from(scheme)
    if wanted != store.scheme:
        try:
            store.set_scheme(wanted, author="gridgeo")
        except BaseException:
            store.close()
            raise
    return store
