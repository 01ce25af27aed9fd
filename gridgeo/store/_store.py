"""The store: one interface over the GeoPackage and PostGIS backends.

The logic lives here once; a backend only knows its connection, its geometry
encoding, its spatial index and its fast bulk path. Both hold the same tables:

``<kind>`` (grids, stations, addresses, events, roads)
    the published rows, each with the ``revision`` that wrote it and its
    ``author``; a spatial index on ``geom``, a unique index on the key.
``<kind>_history``
    every replaced or removed row, with ``retired`` (the revision that
    replaced it) and ``retired_by``: history is kept, never overwritten.
``plan_units``, ``gridgeo_plans``, ``gridgeo_plan_removed``, ``gridgeo_plan_log``
    plans: drafts of the units of some levels inside one parent.
``gridgeo_revisions``, ``gridgeo_changes``, ``gridgeo_meta``
    one row per revision (when, who, what), the layers each changed, the
    revision counter and the schema version.
``gridgeo_audit``
    the audit trail: one entry per revision, written in its transaction, with
    what it changed (rows added, changed and removed per layer, grid units by
    code), and the steps put on record without a revision (:mod:`._audit`).

Every write takes the next revision from the counter inside its transaction,
so writers are serialised (SQLite's write lock; a row lock in PostgreSQL) and
a revision is only ever seen complete.
"""

from __future__ import annotations

import datetime as _dt
import functools
from contextlib import contextmanager
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from gridgeo.store import _audit, _cql2, _grid_load, _layers
from gridgeo.store._sql import SCHEMA_VERSION, now, q, utc_text
from gridgeo.store.errors import FilterError, NotFound, SchemaVersionError, StoreError

def _add_derived(store, tx) -> None:
    types = store._db.types
    for statement in _layers.derived_ddl(text=types["text"], integer=types["integer"], blob=types["blob"]):
        tx.execute(statement)


def _add_audit(store, tx) -> None:
    types = store._db.types
    for statement in _layers.audit_ddl(auto_id=types["auto_id"], text=types["text"], integer=types["integer"]):
        tx.execute(statement)
    _audit.backfill(store, tx)


def _add_boundaries_and_roster(store, tx) -> None:
    for kind in ("boundaries", "roster"):
        store._db.add_kind(tx, kind)  # with its indexes; nothing if the tables are there


def _add_derived_source(store, tx) -> None:
    if "source" in store._db.table_columns("gridgeo_derived", tx):
        return  # the table was made by this gridgeo (an older step made it again)
    for statement in _layers.derived_source_ddl(integer=store._db.types["integer"]):
        tx.execute(statement)


MIGRATIONS: dict[int, object] = {2: _add_derived, 3: _add_audit, 4: _add_boundaries_and_roster,
                                 5: _add_derived_source}
"""``{n: fn(store, tx)}``: the step that brings a store from schema version n-1 to n,
run in one transaction by :meth:`Store.migrate`."""

class _NothingChanged(Exception):
    """Raised inside a write transaction to roll it back when it would change nothing."""


_RESERVED = (".complete", ".claim", ".failed")
"""Bookkeeping rows of ``gridgeo_derived``: a version's completion, who builds it, why it failed."""


class Store:
    """A GeoPackage file or PostGIS database of grids, stations, addresses,
    events and roads, with history and plans. Get one with :func:`gridgeo.store.open`.

    Reads return GeoDataFrames in EPSG:4490; every row carries the
    ``revision`` that wrote it. Writes are transactions: they happen entirely
    or not at all, and each is one new revision.
    """

    def __init__(self, backend):
        self._db = backend
        self._check_schema_version()

    # --- the store itself -------------------------------------------------------

    @property
    def url(self) -> str:
        """Where the store is (a path, or a URL without its password)."""
        return self._db.display

    def __repr__(self) -> str:
        return f"<gridgeo store {self.url} at revision {self.revision}>"

    def close(self) -> None:
        """Close every connection the store opened."""
        self._db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version recorded in the store."""
        return int(self._meta("schema_version"))

    def migrate(self) -> int:
        """Bring an older store's tables up to this gridgeo's schema version.

        Each step of :data:`MIGRATIONS` runs in its own transaction and
        records the new version, so an interrupted migration resumes where it
        stopped. Returns the schema version reached. :func:`gridgeo.store.open`
        runs it on an older store.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True).migrate()
        5
        """
        while self.schema_version < SCHEMA_VERSION:
            target = self.schema_version + 1
            with self._db.write() as tx:
                MIGRATIONS[target](self, tx)
                tx.execute("UPDATE gridgeo_meta SET value = ? WHERE key = 'schema_version'", (str(target),))
        return self.schema_version

    def _check_schema_version(self) -> None:
        version = self.schema_version
        if version > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{self.url} has schema version {version}, but this gridgeo knows versions up to "
                f"{SCHEMA_VERSION}: upgrade gridgeo to read it")
        if version < SCHEMA_VERSION:
            self.migrate()

    def _meta(self, key: str) -> str | None:
        rows = self._db.query("SELECT value FROM gridgeo_meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    # --- revisions --------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The latest revision of anything in the store, plan edits included."""
        return int(self._meta("revision"))

    @property
    def version(self) -> int:
        """The revision of the latest change to published data (a load or a
        publish); plan edits leave it alone. A cheap ETag for the published
        data and the key a tile cache is invalidated by.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> s.version
        0
        >>> s.load({"stations": gridgeo.sample.load().stations}, author="demo") == s.version
        True
        """
        rows = self._db.query("SELECT MAX(revision) FROM gridgeo_changes")
        return int(rows[0][0] or 0)

    def layer_version(self, collection: str) -> int:
        """The revision of the latest change to one layer's published rows
        (0 if it never changed); grid levels share the grids' version.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.io, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> stations = gridgeo.io.read(gridgeo.sample.SAMPLE_DIR / "stations.geojson")
        >>> _ = s.load({"stations": stations}, author="demo", progress=False)
        >>> s.layer_version("stations"), s.layer_version("grid2")
        (1, 0)
        """
        kind, _ = self._resolve(collection)
        rows = self._db.query("SELECT MAX(revision) FROM gridgeo_changes WHERE layer = ?", (kind,))
        return int(rows[0][0] or 0)

    def revision_at(self, when) -> int:
        """The revision that was current at a time (0 before the first).

        ``when`` is a datetime, a pandas Timestamp or ISO 8601 text; a time
        without a zone is taken as UTC.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> s.revision_at("2020-01-01T08:00+08:00")
        0
        """
        rows = self._db.query("SELECT MAX(revision) FROM gridgeo_revisions WHERE at <= ?", (utc_text(when),))
        return int(rows[0][0] or 0)

    def revisions(self, *, layer: str | None = None, since: int = 0) -> pd.DataFrame:
        """The log of revisions: ``revision``, ``at`` (UTC), ``author``,
        ``action`` (load, publish, rollback, create-plan, save-plan, rebase-plan,
        submit-plan, withdraw-plan, return-plan, approve-plan, abandon-plan, set-region,
        set-scheme, migrate), ``plan_id``, ``message`` and ``layers`` changed. What each
        changed, row by row, is in :meth:`audit`.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"stations": gridgeo.sample.load().stations}, author="张三")
        >>> s.revisions()[["revision", "author", "action", "layers"]].to_dict("records")
        [{'revision': 1, 'author': '张三', 'action': 'load', 'layers': 'stations'}]
        """
        sql = ("SELECT r.revision, r.at, r.author, r.action, r.plan_id, r.message FROM gridgeo_revisions r "
               "WHERE r.revision > ?")
        params: list = [since]
        if layer is not None:
            kind, _ = self._resolve(layer)
            sql += " AND r.revision IN (SELECT revision FROM gridgeo_changes WHERE layer = ?)"
            params.append(kind)
        rows = self._db.query(sql + " ORDER BY r.revision", params)
        changes = self._db.query("SELECT revision, layer FROM gridgeo_changes WHERE revision > ? "
                                 "ORDER BY revision, layer", (since,))
        layers: dict[int, list[str]] = {}
        for revision, name in changes:
            layers.setdefault(int(revision), []).append(name)
        out = pd.DataFrame(rows, columns=["revision", "at", "author", "action", "plan_id", "message"])
        out["revision"] = out["revision"].astype("int64")
        out["at"] = pd.to_datetime(out["at"], format="ISO8601", utc=True)
        out["plan_id"] = out["plan_id"].astype("Int64")
        out["layers"] = pd.array([",".join(layers.get(int(r), [])) for r in out["revision"]], dtype="str")
        for col in ("author", "action", "message"):
            out[col] = out[col].astype("str")
        return out

    # --- the audit trail --------------------------------------------------------

    def audit(self, *, since=None, until=None, author=None, action=None, plan_id: int | None = None,
              revision: int | None = None) -> pd.DataFrame:
        """The audit trail: who changed what, and when, oldest first.

        Every write of the store is in it, in the write's own transaction (a
        load, a plan's creation, save, rebase, submission, withdrawal, return,
        approval, publish or abandonment, a rollback, a region or code scheme
        recorded), and so is every step put on record with :meth:`audit_record`. Key changes of the service are kept beside its keys file:
        :func:`gridgeo.audit.trail` reads both.

        Parameters
        ----------
        since, until : datetime, Timestamp, date or ISO 8601 text, optional
            Entries at or after ``since`` and before ``until`` (a time without a
            zone is UTC: ``"2025-03-01T00:00+08:00"`` is midnight in Beijing).
        author : str or list of str, optional
        action : str or list of str, optional
            ``load``, ``publish``, ``rollback``, ``create-plan``, ``save-plan``,
            ``rebase-plan``, ``submit-plan``, ``withdraw-plan``, ``return-plan``,
            ``approve-plan``, ``abandon-plan``, ``set-region``, ``set-scheme``,
            or an action put on record.
        plan_id, revision : int, optional

        Returns
        -------
        DataFrame
            ``entry`` (its number), ``at`` (UTC), ``author``, ``action``,
            ``revision`` (the revision written; missing for a step put on
            record), ``plan_id``, ``message``, ``what`` (a dict: for each
            layer changed its rows ``added``, ``changed`` and ``removed`` under
            ``layers``, for grids ``levels`` and the unit codes under
            ``units``, a plan step's ``plan`` units, a rollback's ``to``, and
            what a step put on record said) and ``summary`` (``what`` in one
            line). Rows are matched by key: a row written again exactly as it
            was counts as none of the three.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> stations = gridgeo.sample.load().stations
        >>> _ = s.load({"stations": stations}, author="张三")
        >>> moved = stations.iloc[:10].assign(name="新址")
        >>> _ = s.load({"stations": moved}, author="李四")
        >>> trail = s.audit()
        >>> trail[["author", "action", "revision"]].values.tolist()
        [['张三', 'load', 1], ['李四', 'load', 2]]
        >>> trail["what"].iloc[1]["layers"]
        {'stations': {'added': 0, 'changed': 10, 'removed': 94}}
        >>> s.audit(author="李四")["summary"].tolist()
        ['stations +0 ~10 -94']
        """
        return _audit.read(self, since=since, until=until, author=author, action=action, plan_id=plan_id,
                           revision=revision)

    def audit_record(self, action: str, author: str, what: dict | None = None, plan_id: int | None = None,
                     message: str = "") -> int:
        """Put on record a step that writes nothing in the store (a pre-publish
        report viewed, an export handed out); returns the entry's number.

        It is an entry of :meth:`audit` of its own, with no revision (the
        revision counter and the data version stay as they are). Writes of the
        store are recorded by the store itself, in their transaction: their
        actions (``load``, ``publish``, ``rollback``, ``submit-plan`` ...)
        cannot be put on record by hand.

        Parameters
        ----------
        action : str
            What was done (``view-report``, ``export-plan`` ...).
        author : str
            Who did it.
        what : dict, optional
            What it concerned, as JSON values (``{"units": [...], "report": 3}``).
        plan_id : int, optional
            The plan, which must exist.
        message : str
            A comment (a reviewer's reason to return a plan).

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> plan = s.create_plan("调整", parent="350582106201", levels="grid2", author="张三")
        >>> _ = s.audit_record("view-report", "李审核", {"report": "v3"}, plan_id=plan.id, message="已阅")
        >>> s.audit(plan_id=plan.id)[["action", "author", "revision", "message"]].values.tolist()
        [['create-plan', '张三', 2, ''], ['view-report', '李审核', <NA>, '已阅']]
        >>> s.revision
        2
        """
        _check_author(author)
        if not isinstance(action, str) or not action.strip():
            raise ValueError("action= must say what was done (e.g. 'view-report'), a non-empty string")
        action = action.strip()
        if action in _audit.STORE_ACTIONS:
            raise ValueError(f"{action!r} is recorded by the store itself when it happens: put on record only "
                             "steps that write nothing in the store (view-report, export-plan ...)")
        text = _audit.dumps({} if what is None else what)
        if plan_id is not None:
            self.plan(plan_id)  # NotFound for a plan that does not exist
        with self._db.write() as tx:
            import json

            return _audit.write(tx, at=now(), author=author, action=action, revision=None,
                                plan_id=None if plan_id is None else int(plan_id), message=str(message or ""),
                                what=json.loads(text))

    @contextmanager
    def transaction(self, *, author: str, action: str, plan_id: int | None = None, message: str = ""):
        """A write transaction with its new revision; logged, and put in the audit trail, when it commits.

        Yields ``(tx, revision, record)``: ``record`` holds the ``plan_id`` and
        ``message`` to log (the writer may set them) and ``what``, a dict the
        writer may add to the audit entry's own account of the changes
        (:meth:`audit`).
        """
        _check_author(author)
        with self._db.write() as tx:
            tx.execute("UPDATE gridgeo_meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
                       "WHERE key = 'revision'")
            revision = int(tx.query("SELECT value FROM gridgeo_meta WHERE key = 'revision'")[0][0])
            record = {"plan_id": plan_id, "message": message, "what": {}}
            yield tx, revision, record
            stamp = now()
            tx.execute("INSERT INTO gridgeo_revisions (revision, at, author, action, plan_id, message) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (revision, stamp, author, action, record["plan_id"], record["message"] or ""))
            _audit.write(tx, at=stamp, author=author, action=action, revision=revision, plan_id=record["plan_id"],
                         message=record["message"] or "",
                         what=_audit.entry_what(self, tx, revision, record["plan_id"], record["what"]))

    @staticmethod
    def record_change(tx, revision: int, kind: str, rows: int) -> None:
        tx.execute("INSERT INTO gridgeo_changes (revision, layer, rows) VALUES (?, ?, ?)",
                   (revision, kind, int(rows)))

    # --- derived data kept per version -----------------------------------------

    def put_derived(self, version: int, items: Mapping[str, bytes], *, complete: bool = False) -> None:
        """Keep derived data of a data version: ``items`` maps names to bytes.

        Derived data is what is computed from the published data (figures,
        coverage, tile geometry: see :mod:`gridgeo.derived`); it is kept in
        the store under the :attr:`version` it was computed from, so that any
        process on the store reads it instead of computing it again. An item
        written again replaces the old one (a version that kept it by
        :meth:`copy_derived` keeps the old bytes). ``complete=True`` marks the
        version complete in the same transaction: readers take only complete
        versions (:meth:`derived_versions`), so they never see part of one.
        Writing derived data is not a change of the published data: it makes
        no revision.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> s.put_derived(0, {"figures": b"..."}, complete=True)
        >>> s.derived_versions(), s.get_derived(0, "figures"), s.revision
        ([0], b'...', 0)
        """
        version = self._derived_version(version)
        reserved = sorted(set(items) & set(_RESERVED))
        if reserved:
            raise ValueError(f"{reserved} are the store's own bookkeeping names: name the items otherwise")
        stamp = now()
        with self._db.write() as tx:
            self._detach_derived(tx, version, [str(name) for name in items])
            for name, data in items.items():
                tx.execute("DELETE FROM gridgeo_derived WHERE version = ? AND name = ?", (version, str(name)))
                tx.execute("INSERT INTO gridgeo_derived (version, name, data, at) VALUES (?, ?, ?, ?)",
                           (version, str(name), bytes(data), stamp))
            if complete:
                tx.execute("DELETE FROM gridgeo_derived WHERE version = ? AND name IN ('.complete', '.failed')",
                           (version,))
                tx.execute("INSERT INTO gridgeo_derived (version, name, data, at) VALUES (?, ?, NULL, ?)",
                           (version, ".complete", stamp))

    def get_derived(self, version: int, name: str) -> bytes | None:
        """A derived item kept for a version (:meth:`put_derived`, :meth:`copy_derived`), or None."""
        rows = self._db.query("SELECT COALESCE(d.data, (SELECT o.data FROM gridgeo_derived o WHERE o.version = "
                              "d.source AND o.name = d.name)) FROM gridgeo_derived d WHERE d.version = ? AND "
                              "d.name = ?", (self._derived_version(version), str(name)))
        return None if not rows or rows[0][0] is None else bytes(rows[0][0])

    def derived_names(self, version: int) -> list[str]:
        """The names of the items kept for a version (bookkeeping rows left out)."""
        rows = self._db.query("SELECT name FROM gridgeo_derived WHERE version = ? ORDER BY name",
                              (self._derived_version(version),))
        return [r[0] for r in rows if r[0] not in _RESERVED]

    def derived_versions(self) -> list[int]:
        """The data versions whose derived data is complete, oldest first."""
        rows = self._db.query("SELECT version FROM gridgeo_derived WHERE name = '.complete' ORDER BY version")
        return [int(r[0]) for r in rows]

    def derived_state(self, version: int) -> dict:
        """Where a version's derived data stands: ``complete`` (bool), ``claim``
        (who builds it and since when, or None) and ``failed`` (why the last
        build failed, or None)."""
        rows = self._db.query("SELECT name, data, at FROM gridgeo_derived WHERE version = ? AND name IN "
                              "('.complete', '.claim', '.failed')", (self._derived_version(version),))
        found = {name: (None if data is None else bytes(data).decode(), at) for name, data, at in rows}
        claim = found.get(".claim")
        return {"complete": ".complete" in found,
                "claim": None if claim is None else {"owner": claim[0], "at": claim[1]},
                "failed": None if ".failed" not in found else found[".failed"][0]}

    def claim_derived(self, version: int, owner: str, *, stale_after: float = 300.0) -> bool:
        """Claim the building of a version's derived data; True if ``owner`` holds the claim.

        One process builds a version at a time: the claim is taken when
        nobody holds it, renewed by its holder (call again while building),
        and taken over when its holder has not renewed it for
        ``stale_after`` seconds (it died). :meth:`release_derived` lets it go.
        """
        version = self._derived_version(version)
        stamp = now()
        with self._db.write() as tx:
            rows = tx.query("SELECT name, data, at FROM gridgeo_derived WHERE version = ? AND name = '.claim'",
                            (version,))
            found = {name: (None if data is None else bytes(data).decode(), at) for name, data, at in rows}
            held = found.get(".claim")
            if held is not None and held[0] != owner:
                age = (pd.Timestamp(stamp) - pd.Timestamp(held[1])).total_seconds()
                if age < stale_after:
                    return False
            tx.execute("DELETE FROM gridgeo_derived WHERE version = ? AND name IN ('.claim', '.failed')",
                       (version,))
            tx.execute("INSERT INTO gridgeo_derived (version, name, data, at) VALUES (?, ?, ?, ?)",
                       (version, ".claim", owner.encode(), stamp))
        return True

    def release_derived(self, version: int, owner: str, *, failed: str | None = None) -> None:
        """Let go of a claim (:meth:`claim_derived`); with ``failed``, record
        that the build failed and why (:meth:`derived_state` says it)."""
        version = self._derived_version(version)
        with self._db.write() as tx:
            tx.execute("DELETE FROM gridgeo_derived WHERE version = ? AND name = '.claim' AND data = ?",
                       (version, owner.encode()))
            if failed is not None:
                tx.execute("DELETE FROM gridgeo_derived WHERE version = ? AND name = '.failed'", (version,))
                tx.execute("INSERT INTO gridgeo_derived (version, name, data, at) VALUES (?, ?, ?, ?)",
                           (version, ".failed", f"{owner}: {failed}".encode(), now()))

    def copy_derived(self, source: int, target: int, names: Iterable[str]) -> None:
        """Keep items of version ``source`` for version ``target`` too, without copying their bytes.

        The rows of ``target`` refer to the row that holds the bytes (of
        ``source``, or of the version ``source`` refers to in turn: a
        reference never leads to another). The bytes are written once however
        many versions keep them: a publish that leaves the walking coverage of
        800,000 addresses alone writes none of its 60 MB. A row others refer
        to is never changed under them: :meth:`put_derived` over it gives its
        bytes to one of them first, and :meth:`drop_derived` keeps it while
        a version it keeps refers to it.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> s.put_derived(1, {"figures": b"..."}, complete=True)
        >>> s.copy_derived(1, 2, ["figures"])
        >>> s.put_derived(1, {"figures": b"new"})
        >>> s.get_derived(2, "figures"), s.get_derived(1, "figures")
        (b'...', b'new')
        >>> s.drop_derived(before=2)
        >>> s.get_derived(2, "figures")
        b'...'
        """
        source, target = self._derived_version(source), self._derived_version(target)
        names = [str(n) for n in names if n not in _RESERVED]
        if source == target or not names:
            return
        with self._db.write() as tx:
            self._detach_derived(tx, target, names)
            for start in range(0, len(names), 200):
                chunk = names[start:start + 200]
                marks = ", ".join("?" * len(chunk))
                tx.execute(f"DELETE FROM gridgeo_derived WHERE version = ? AND name IN ({marks})", [target, *chunk])
                tx.execute(f"INSERT INTO gridgeo_derived (version, name, data, at, source) SELECT ?, name, NULL, ?, "
                           f"COALESCE(source, version) FROM gridgeo_derived WHERE version = ? AND name IN ({marks})",
                           [target, now(), source, *chunk])

    def drop_derived(self, *, before: int) -> None:
        """Forget the derived data of every version older than ``before`` (the rows that hold bytes a
        newer version keeps by :meth:`copy_derived` stay, outside any version: they are forgotten with
        the last version referring to them)."""
        with self._db.write() as tx:
            before = self._derived_version(before)
            tx.execute("DELETE FROM gridgeo_derived WHERE version < ? AND NOT EXISTS (SELECT 1 FROM gridgeo_derived "
                       "r WHERE r.source = gridgeo_derived.version AND r.name = gridgeo_derived.name AND "
                       "r.version >= ?)", (before, before))

    @staticmethod
    def _detach_derived(tx, version: int, names) -> None:
        """Before rows of ``version`` are replaced: those other rows refer to give their bytes to the newest
        of them, which the others then refer to."""
        for name in names:
            heirs = tx.query("SELECT version FROM gridgeo_derived WHERE source = ? AND name = ? ORDER BY version DESC",
                             (version, name))
            if not heirs:
                continue
            heir = int(heirs[0][0])
            tx.execute("UPDATE gridgeo_derived SET data = (SELECT o.data FROM gridgeo_derived o WHERE o.version = ? "
                       "AND o.name = ?), source = NULL WHERE version = ? AND name = ?", (version, name, heir, name))
            tx.execute("UPDATE gridgeo_derived SET source = ? WHERE source = ? AND name = ?", (heir, version, name))

    @staticmethod
    def _derived_version(version) -> int:
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 0:
            raise ValueError(f"a data version is a whole number, 0 or more, got {version!r}")
        return int(version)

    # --- what the store holds ---------------------------------------------------

    @property
    def scheme(self):
        """The code scheme of the store's grids: its levels, code widths and
        labels (:class:`gridgeo.schema.CodeScheme`), recorded in the store;
        :data:`gridgeo.schema.DEFAULT_SCHEME` for a store that records none.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> from gridgeo.schema import BEIJING_SCHEME
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/bj.gpkg", create=True, scheme=BEIJING_SCHEME)
        >>> s.scheme.names, s.collections()[:4]
        (('street', 'community', 'grid'), ['grids', 'street', 'community', 'grid'])
        """
        cached = getattr(self, "_scheme", None)
        if cached is not None and cached[0] == self._meta_scheme_text():
            return cached[1]
        import json

        from gridgeo.schema import DEFAULT_SCHEME, CodeScheme

        text = self._meta_scheme_text()
        scheme = DEFAULT_SCHEME if not text else CodeScheme.from_dict(json.loads(text))
        self._scheme = (text, scheme)
        return scheme

    @property
    def region(self) -> dict | None:
        """The area the store covers, above its top level: ``{"code", "name"}``
        (晋江市 350582), or None when none was recorded.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.set_region("350582", "晋江市", author="demo")
        >>> s.region
        {'code': '350582', 'name': '晋江市'}
        """
        import json

        text = self._meta("region")
        return json.loads(text) if text else None

    def set_region(self, code: str, name: str, *, author: str) -> int:
        """Record the code and name of the area the store covers (shown above its top level)."""
        if self.region == {"code": str(code).strip(), "name": str(name).strip()}:
            return self.revision
        with self.transaction(author=author, action="set-region", message=f"{code} {name}") as (tx, _, __):
            self._record_region(tx, code, name)
        return self.revision

    def _record_region(self, tx, code, name) -> None:
        import json

        code, name = str(code).strip(), str(name).strip()
        if not code.isdigit() or not name:
            raise ValueError(f"a region is a division code of digits and a name, got {code!r} and {name!r}")
        text = json.dumps({"code": code, "name": name}, ensure_ascii=False)
        if tx.query("SELECT value FROM gridgeo_meta WHERE key = 'region'"):
            tx.execute("UPDATE gridgeo_meta SET value = ? WHERE key = 'region'", (text,))
        else:
            tx.execute("INSERT INTO gridgeo_meta (key, value) VALUES ('region', ?)", (text,))

    def _meta_scheme_text(self) -> str | None:
        # read once per store object: a scheme changes only on an empty store, by set_scheme
        if not hasattr(self, "_scheme_text"):
            self._scheme_text = self._meta("scheme")
        return self._scheme_text

    def set_scheme(self, scheme, *, author: str) -> int:
        """Record the code scheme of a store that holds no grids yet.

        The grid levels of the store (its collections, the GeoPackage's layer
        views, what loads are checked against) follow it. Changing the scheme
        of a store that holds grids or plans is refused: its codes would no
        longer mean what they say.

        Parameters
        ----------
        scheme : CodeScheme or str
            A scheme, or a name or file :func:`gridgeo.schema.scheme_from` takes.
        author : str

        Returns
        -------
        int
            The new revision (the current one if the scheme is already the store's).
        """
        import json

        from gridgeo.schema import scheme_from

        scheme = scheme_from(scheme)
        if scheme == self.scheme:
            return self.revision
        grids = int(self._db.query("SELECT COUNT(*) FROM grids")[0][0])
        history = int(self._db.query("SELECT COUNT(*) FROM grids_history")[0][0])
        plans = int(self._db.query("SELECT COUNT(*) FROM gridgeo_plans")[0][0])
        if grids or history or plans:
            raise StoreError(
                f"{self.url} holds grids (or their history, or plans) under the scheme with levels "
                f"{', '.join(self.scheme.names)}: its scheme cannot change to {', '.join(scheme.names)}. Use a new "
                "store for the other scheme")
        old = self.scheme.names
        text = json.dumps(scheme.to_dict(), ensure_ascii=False, sort_keys=True)
        with self.transaction(author=author, action="set-scheme", message=f"levels {', '.join(scheme.names)}") as (tx, _, __):
            if self._meta("scheme") is None:
                tx.execute("INSERT INTO gridgeo_meta (key, value) VALUES ('scheme', ?)", (text,))
            else:
                tx.execute("UPDATE gridgeo_meta SET value = ? WHERE key = 'scheme'", (text,))
            self._db.level_views(tx, old, scheme.names)
        self._scheme_text = text
        return self.revision

    def collections(self) -> list[str]:
        """Every layer name a read accepts: the six kinds, the grid levels and the boundary sets.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True).collections()[:3]
        ['grids', 'town', 'village']
        """
        return _layers.collections(self.scheme.names, self.boundary_sets())

    def boundary_sets(self) -> list[str]:
        """The names of the boundary sets published in the store (警格, 学区 ...), in
        code-point order. Each is a collection: ``store.read("警格")`` reads its units.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> precincts = gridgeo.sample.load().precincts
        >>> b = precincts.rename(columns={"precinct_id": "boundary_id"}).assign(boundary_set="警格")
        >>> _ = s.load({"boundaries": b}, author="公安分局")
        >>> s.boundary_sets(), s.count("警格") == len(precincts)
        (['警格'], True)
        """
        col = q(_layers.SET_COLUMN)
        return [r[0] for r in self._db.query(f"SELECT DISTINCT {col} FROM boundaries ORDER BY {col}")]

    def _resolve(self, collection):
        """(kind, levels or boundary sets) of a collection name of this store."""
        return _layers.resolve(collection, self.scheme.names, self.boundary_sets)

    def columns(self, collection: str) -> dict[str, str]:
        """The attribute columns of a layer and their kinds (text, integer,
        real, boolean, datetime, date), for queryables and forms.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True).columns("events")
        {'event_id': 'text', 'category': 'text', 'status': 'text', 'reported_at': 'datetime'}
        """
        kind, _ = self._resolve(collection)
        return self.layer_columns(kind)

    def layer_columns(self, kind: str, tx=None) -> dict[str, str]:
        found = self._db.table_columns(kind, tx=tx)
        return {name: k for name, k in found.items() if name not in _layers.SYSTEM}

    def counts(self, *, at=None) -> dict[str, int]:
        """The number of published rows of every collection (grid levels too).

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> s.counts()["grid2"], s.counts()["stations"]
        (128, 0)
        """
        out = {name: 0 for name in self.collections()}
        revision = None if at is None else self._revision(at)
        for level, n in self._grouped_count("level", revision):
            out[level] = out.get(level, 0) + n
            out["grids"] += n
        for kind in _layers.KINDS[1:]:
            out[kind] = self._count(kind, [], [], None, revision)
        for name, n in self._grouped_count(_layers.SET_COLUMN, revision, kind="boundaries"):
            out[name] = n
        return out

    def _grouped_count(self, column: str, revision, kind: str = "grids") -> list[tuple[str, int]]:
        parts, params = [], []
        for table, (cond, p) in self._tables(kind, revision):
            parts.append(f"SELECT {q(column)} AS g FROM {q(table)} WHERE {cond or '1 = 1'}")
            params += p
        sql = f"SELECT g, COUNT(*) FROM ({' UNION ALL '.join(parts)}) u GROUP BY g"
        return [(g, int(n)) for g, n in self._db.query(sql, params)]

    def extent(self, collection: str) -> tuple[float, float, float, float] | None:
        """(minx, miny, maxx, maxy) of the published rows of a layer, from its
        spatial index (in a GeoPackage, float32 rounded outwards); None when
        it is empty.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.io, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> s.extent("stations") is None
        True
        >>> stations = gridgeo.io.read(gridgeo.sample.SAMPLE_DIR / "stations.geojson")
        >>> _ = s.load({"stations": stations}, author="demo", progress=False)
        >>> [round(v, 2) for v in s.extent("stations")]
        [118.42, 24.76, 118.52, 24.85]
        """
        kind, levels = self._resolve(collection)
        if levels:
            frame = self.read(collection, columns=[])
            return None if frame.empty else tuple(float(v) for v in frame.total_bounds)
        return self._db.extent(kind)

    # --- reading ----------------------------------------------------------------

    def read(self, collection: str, *, bbox=None, where: Mapping | None = None, parent: str | None = None,
             within: str | None = None, level=None, at=None, columns: Iterable[str] | None = None,
             limit: int | None = None, offset: int = 0, filter=None,  # noqa: A002 - OGC's name
             filter_lang: str | None = None, sortby=None):
        """Published rows of a layer, as they are or as they were.

        Parameters
        ----------
        collection : str
            ``grids``, a grid level (``town``, ``village``, ``grid1``, ``grid2``,
            ``grid3``), ``stations``, ``addresses``, ``events`` or ``roads``.
        bbox : (minx, miny, maxx, maxy), optional
            Longitude/latitude in EPSG:4490 (CGCS2000, which gridgeo takes for
            WGS84 too). Rows whose geometry intersects the box, its boundary
            included; answered from the spatial index.
        where : mapping, optional
            ``{column: value}`` filters, all of which must hold: a value means
            equal (text such as ``"5"`` is taken as the column's kind), a list
            or tuple "any of these", a ``slice(start, stop)`` the half-open
            range ``start <= value < stop`` (either end may be None; dates and
            times as ISO text or datetimes), None "missing". Unknown columns
            are an error.
        parent : str, optional
            Rows whose parent is this code: for grids the ``parent`` column
            (the children of a unit), for stations ``grid_code``.
        within : str, optional
            Rows at or inside the unit with this code: for grids the unit and
            all its descendants (codes start with their parent's code), for
            stations those whose ``grid_code`` starts with it.
        level : str or list of str, optional
            Grid levels to keep (for ``grids``).
        at : int, str or datetime, optional
            A revision, or a time (UTC if it has no zone): the rows as
            published then. Default: now.
        columns : list of str, optional
            Attribute columns to return (the geometry and ``revision`` always come).
        limit, offset : int, optional
            Paging, in the order of ``sortby`` (default: the layer's key,
            ``code``, ``station_id``...).
        filter : str or mapping, optional
            A CQL2 filter (OGC API - Features Part 3), run in the database
            together with the other filters: ``"parent = '350582106201'"``, or
            its CQL2 JSON ``{"op": "=", "args": [{"property": "parent"},
            "350582106201"]}``. Properties are the layer's columns
            (:meth:`columns`) and ``geometry``; values are taken as the
            column's kind, as in ``where``. Supported: ``=``, ``<>``, ``<``,
            ``<=``, ``>``, ``>=`` (a property with a value or with another
            property), ``LIKE`` (case-sensitive: ``%`` any characters, ``_``
            one, ``\\`` escapes), ``IN``, ``BETWEEN``, ``IS NULL``, each with
            ``NOT``; ``AND``, ``OR``, ``NOT``; ``S_INTERSECTS(geometry, ...)``
            with a WKT geometry or ``BBOX(minx, miny, maxx, maxy)`` in
            longitude/latitude; ``DATE('2025-03-01')`` and
            ``TIMESTAMP('2025-03-01T08:00:00Z')`` (UTC if no zone) literals.
            Anything else is a :class:`~gridgeo.store.errors.FilterError`
            naming it.
        filter_lang : {"cql2-text", "cql2-json"}, optional
            The language of ``filter``. Default: ``cql2-json`` for a mapping,
            ``cql2-text`` for a string.
        sortby : str or list of str, optional
            The order (OGC API - Features Part 5): columns, each ascending or
            with a leading ``-`` descending (``["-households", "addr_id"]``,
            or the text ``"-households,addr_id"``). Missing values come last
            either way; ties are broken by the key, so paging is stable.

        Returns
        -------
        GeoDataFrame
            In EPSG:4490, with the layer's columns and ``revision``, the
            revision that wrote each row. Grids are MultiPolygons and roads
            MultiLineStrings (one geometry type per table, as in QGIS).

        Notes
        -----
        A comparison with a missing value is neither true nor false, as in
        SQL: ``workers <> 5`` and ``NOT workers = 5`` leave out the units
        without ``workers``; add ``OR workers IS NULL`` to keep them. In a
        GeoPackage, ``S_INTERSECTS`` takes its candidates from the R-tree and
        shapely decides; in PostGIS it is ``ST_Intersects``. In PostGIS a page
        (``limit``/``offset``) in a box over less than half of the layer (a county
        of a province) is taken from the box's rows, not from a walk along the
        key (:meth:`gridgeo.store.postgis.PostGIS.selective_box`). pygeofilter reads
        the filters, and its cql2-text parser takes no quote inside a string
        (``'it''s'``); cql2-json takes any text.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> village = s.read("village", limit=1)["code"].iloc[0]
        >>> bool(s.read("grids", within=village, level="grid2")["parent"].str[:12].eq(village).all())
        True
        >>> s.read("grids", filter="parent = '350582106201'")["name"].tolist()
        ['前垵村一片区']
        >>> s.read("village", filter="name LIKE '%村'", sortby="-code", limit=2)["name"].tolist()
        ['前宅村', '上尾村']
        """
        kind, levels = self._resolve(collection)
        self._paging(limit, offset, bbox)
        levels = self._levels(kind, levels, level)
        available = self.layer_columns(kind)
        names = self._selected(kind, available, columns)
        conds, params = self._conditions(kind, available, where=where, parent=parent, within=within,
                                         levels=levels)
        filters = self._filter(kind, available, filter, filter_lang)
        order = self._sorting(kind, available, sortby)
        revision = None if at is None else self._revision(at)
        sql, params = self._select(kind, [*names, "revision"], conds, params, revision=revision, bbox=bbox,
                                   limit=limit, offset=offset, filters=filters, order=order)
        rows = self._db.query(sql, params)
        kinds = {**available, **_layers.SYSTEM}
        return self.frame_of(rows, [*names, "revision"], kinds)

    def count(self, collection: str, *, bbox=None, where: Mapping | None = None, parent: str | None = None,
              within: str | None = None, level=None, at=None, filter=None,  # noqa: A002 - OGC's name
              filter_lang: str | None = None) -> int:
        """How many rows :meth:`read` would return with these filters (no paging).

        Notes
        -----
        Exact, in the database. With a bbox alone, a GeoPackage counts in its
        R-tree: the entries inside the box, and of those on its edge the ones
        shapely finds intersecting; a box around the whole layer counts every
        entry without reading a row.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> s.count("grids", level="grid2") == s.count("grid2") == 128
        True
        >>> s.count("grid2", filter="workers IS NULL") == s.count("grid2", where={"workers": None})
        True
        """
        kind, levels = self._resolve(collection)
        self._paging(None, None, bbox)
        levels = self._levels(kind, levels, level)
        available = self.layer_columns(kind)
        conds, params = self._conditions(kind, available, where=where, parent=parent,
                                         within=within, levels=levels)
        filters = self._filter(kind, available, filter, filter_lang)
        revision = None if at is None else self._revision(at)
        return self._count(kind, conds, params, bbox, revision, filters)

    def _count(self, kind, conds, params, bbox, revision, filters=None) -> int:
        if bbox is not None and not conds and filters is None and revision is None:
            found = self._db.bbox_count(kind, bbox)
            if found is not None:
                return found
        total = 0
        for table, where, pp in self._per_table(kind, conds, params, revision, bbox, filters):
            total += int(self._db.query(f"SELECT COUNT(*) FROM {q(table)} WHERE {where}", pp)[0][0])
        return total

    def history(self, collection: str = "grids", *, code: str | None = None, within: str | None = None,
                level=None, where: Mapping | None = None):
        """Every version of the matching rows, current and retired.

        Returns
        -------
        GeoDataFrame
            The layer's columns, ``revision`` and ``author`` (who wrote the
            version), ``retired`` and ``retired_by`` (missing while it is
            current), ``valid_from`` and ``valid_to`` (UTC times), ordered by
            key and revision.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> stations = gridgeo.sample.load().stations
        >>> _ = s.load({"stations": stations}, author="张三")
        >>> _ = s.load({"stations": stations.iloc[:10]}, author="李四")
        >>> h = s.history("stations", code=stations["station_id"].iloc[0])
        >>> h["author"].tolist(), h["revision"].tolist(), int(h["retired"].iloc[0]), h["retired_by"].iloc[0]
        (['张三', '李四'], [1, 2], 2, '李四')
        """
        kind, levels = self._resolve(collection)
        levels = self._levels(kind, levels, level)
        available = self.layer_columns(kind)
        where = dict(where or {})
        if code is not None:
            where[_layers.KEYS[kind]] = code
        conds, params = self._conditions(kind, available, where=where, parent=None, within=within,
                                         levels=levels)
        names = list(available)
        cols = ", ".join(q(n) for n in names)
        cond = " AND ".join(conds) or "1 = 1"
        geom = self._db.geom_expr("geom")
        sql = (f"SELECT {geom}, {cols}, revision, author, NULL AS retired, NULL AS retired_by "
               f"FROM {q(kind)} WHERE {cond} UNION ALL "
               f"SELECT {geom}, {cols}, revision, author, retired, retired_by "
               f"FROM {q(kind + '_history')} WHERE {cond} ORDER BY {q(_layers.KEYS[kind])}, revision")
        rows = self._db.query(sql, params + params)
        kinds = {**available, **_layers.SYSTEM, **_layers.HISTORY}
        out = self.frame_of(rows, [*names, "revision", "author", "retired", "retired_by"], kinds)
        out["retired"] = pd.array(out["retired"], dtype="Int64")
        times = dict(self._db.query("SELECT revision, at FROM gridgeo_revisions"))
        out["valid_from"] = pd.to_datetime(out["revision"].map(times), format="ISO8601", utc=True)
        out["valid_to"] = pd.to_datetime(out["retired"].map(times), format="ISO8601", utc=True)
        return out

    # --- query building ---------------------------------------------------------

    def _param(self, kind: str, column: str, value):
        """A filter value in the form the backend stores the column's kind in."""
        try:
            typed = _as_kind(kind, value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"cannot filter column {column!r} ({kind}) on {value!r}: give a value of that "
                             "kind") from None
        return self._db.values(pd.Series([typed], dtype=object if kind != "datetime" else None), kind)[0]

    @staticmethod
    def _paging(limit, offset, bbox):
        """Refuse paging and boxes a database would choke on, saying what is expected."""
        for name, value in (("limit", limit), ("offset", offset)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or value < 0):
                raise ValueError(f"{name} must be a whole number of rows, 0 or more; got {value!r}")
        if bbox is not None:
            try:
                box = [float(v) for v in bbox]
            except (TypeError, ValueError):
                raise ValueError(f"bbox must be four numbers (minx, miny, maxx, maxy), got {bbox!r}") from None
            if len(box) != 4 or not np.isfinite(box).all() or box[0] > box[2] or box[1] > box[3]:
                raise ValueError(f"bbox must be four finite numbers with minx <= maxx and miny <= maxy, "
                                 f"got {bbox!r}")

    def _revision(self, at) -> int:
        if isinstance(at, (int, np.integer)) and not isinstance(at, bool):
            if at < 0:
                raise ValueError(f"at={at}: a revision is 0 or more")
            return int(at)
        return self.revision_at(at)

    def _levels(self, kind, levels, level):
        if level is None:
            return levels
        wanted = [level] if isinstance(level, str) else list(level)
        if kind != "grids":
            raise ValueError(f"level= filters grids, not {kind}")
        names = self.scheme.names
        unknown = [lv for lv in wanted if lv not in names]
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}: expected some of {list(names)}")
        return [lv for lv in wanted if levels is None or lv in levels]

    def _filter(self, kind, available, filter, filter_lang):  # noqa: A002 - OGC's name
        """``table -> (condition, params)`` for a CQL2 filter on the layer, or None; the
        filter is parsed and checked here, so that a bad one is refused before any query."""
        if filter is None:
            if filter_lang is not None and filter_lang not in _cql2.LANGS:
                raise FilterError(f"filter-lang {filter_lang!r} is not supported: use 'cql2-text' or 'cql2-json'")
            return None
        node = _cql2.parse(filter, filter_lang)

        def value(column_kind, column, literal):
            return self._param(column_kind, column, literal)

        def filters(table):
            return _cql2.where(node, layer=kind, columns=available, value=value,
                               intersects=functools.partial(self._db.intersects_condition, table),
                               like=self._db.like_condition)

        filters(kind)  # refuses what it cannot translate, before anything runs
        return filters

    @staticmethod
    def _sorting(kind, available, sortby) -> list[tuple[str, bool]]:
        """[(column, descending)] from ``sortby`` (``"-households,code"`` or a list of such names)."""
        if sortby is None:
            return []
        items = sortby.split(",") if isinstance(sortby, str) else sortby
        try:
            items = list(items)
        except TypeError:
            raise FilterError(f"sortby should be column names such as ['-households', 'addr_id'], got "
                              f"{sortby!r}") from None
        order, seen = [], set()
        for item in items:
            if not isinstance(item, str) or not item.strip().lstrip("+-").strip():
                raise FilterError(f"sortby should be column names, each with an optional leading + or -, "
                                  f"such as ['-households', 'addr_id']; got {item!r} in {sortby!r}")
            text = item.strip()
            descending = text.startswith("-")
            column = text[1:].strip() if text[0] in "+-" else text
            if column not in available:
                raise FilterError(f"cannot sort the {kind} layer by {column!r}: its columns are "
                                  f"{', '.join(map(repr, available))}")
            if column in seen:
                raise FilterError(f"sortby names {column!r} twice: {sortby!r}")
            seen.add(column)
            order.append((column, descending))
        return order

    @staticmethod
    def _selected(kind, available, columns) -> list[str]:
        if columns is None:
            return list(available)
        if isinstance(columns, str):
            raise TypeError(f"columns should be a list of column names, got the string {columns!r}")
        missing = [c for c in columns if c not in available]
        if missing:
            raise NotFound(f"the {kind} layer has no column {', '.join(map(repr, missing))}; its columns are "
                           f"{', '.join(map(repr, available))}")
        return list(columns)

    def _conditions(self, kind, available, *, where, parent, within, levels):
        conds: list[str] = []
        params: list = []
        kinds = {**available, "revision": "integer"}
        for column, value in (where or {}).items():
            if column not in kinds:
                raise NotFound(f"cannot filter the {kind} layer on {column!r}: its columns are "
                               f"{', '.join(map(repr, available))}")
            param = functools.partial(self._param, kinds[column], column)
            if value is None:
                conds.append(f"{q(column)} IS NULL")
            elif isinstance(value, slice):
                if value.start is not None:
                    conds.append(f"{q(column)} >= ?")
                    params.append(param(value.start))
                if value.stop is not None:
                    conds.append(f"{q(column)} < ?")
                    params.append(param(value.stop))
            elif isinstance(value, (list, tuple, set, frozenset, np.ndarray, pd.Series)):
                values = list(value)
                if not values:
                    conds.append("1 = 0")
                else:
                    conds.append(f"{q(column)} IN ({', '.join('?' * len(values))})")
                    params += [param(v) for v in values]
            else:
                conds.append(f"{q(column)} = ?")
                params.append(param(value))
        for option, value, mapping in (("parent", parent, _layers.PARENT_COLUMN),
                                       ("within", within, _layers.WITHIN_COLUMN)):
            if value is None:
                continue
            column = mapping.get(kind) or ("grid_code" if "grid_code" in available else None)
            if column is None:
                raise ValueError(f"{option}= needs a unit code column, and the {kind} layer has none: "
                                 "give its rows a grid_code (gridgeo.assign) and load it again")
            if option == "parent":
                conds.append(f"{q(column)} = ?")
                params.append(str(value))
            elif value:
                conds.append(f"{q(column)} >= ? AND {q(column)} < ?")
                params += [str(value), _layers.next_prefix(str(value))]
        if levels is not None:  # grid levels, or the boundary sets of the boundaries
            column = "level" if kind == "grids" else _layers.SET_COLUMN
            conds.append(f"{q(column)} IN ({', '.join('?' * len(levels))})" if levels else "1 = 0")
            params += list(levels)
        return conds, params

    @staticmethod
    def _tables(kind, revision):
        """(table, (extra condition, params)) to read a layer now or at a revision."""
        if revision is None:
            return [(kind, ("", []))]
        return [(kind, ("revision <= ?", [revision])),
                (kind + "_history", ("revision <= ? AND retired > ?", [revision, revision]))]

    def _per_table(self, kind, conds, params, revision, bbox, filters=None):
        """(table, WHERE clause, its params) for each table a read at ``revision`` looks in;
        ``filters(table)`` gives a filter's (condition, params) in that table."""
        for table, (cond, extra) in self._tables(kind, revision):
            c, p = list(conds) + ([cond] if cond else []), list(params) + extra
            if bbox is not None:
                box_cond, box_params = self._db.bbox_condition(table, bbox)
                c.append(box_cond)
                p += box_params
            if filters is not None:
                filter_cond, filter_params = filters(table)
                c.append(filter_cond)
                p += filter_params
            yield table, " AND ".join(c) or "1 = 1", p

    def _select(self, kind, names, conds, params, *, revision, bbox, limit, offset, filters=None, order=()):
        key = _layers.KEYS[kind]
        if bbox is not None and (limit is not None or offset) and self._db.selective_box(kind, bbox):
            return self._select_box_first(kind, names, conds, params, revision=revision, bbox=bbox, limit=limit,
                                          offset=offset, filters=filters, order=order)
        geom = self._db.geom_expr("geom")
        cols = ", ".join(q(n) for n in names)
        sort_cols = "".join(f", {q(column)} AS _s{i}" for i, (column, _) in enumerate(order))
        parts, all_params = [], []
        for table, where, pp in self._per_table(kind, conds, params, revision, bbox, filters):
            key_col = "" if key in names else f", {q(key)} AS _key"
            parts.append(f"SELECT {geom} AS _geom, {cols}{key_col}, fid AS _fid{sort_cols} FROM {q(table)} "
                         f"WHERE {where}")
            all_params += pp
        by = [f"_s{i}{' DESC' if descending else ''} NULLS LAST" for i, (_, descending) in enumerate(order)]
        by += [q(key) if key in names else "_key", "_fid"]
        sql = " UNION ALL ".join(parts) + f" ORDER BY {', '.join(by)}"
        if limit is not None or offset:
            sql += f" {self._db.limit_clause(limit)} OFFSET ?"
            all_params.append(int(offset))
        return sql, all_params

    def _select_box_first(self, kind, names, conds, params, *, revision, bbox, limit, offset, filters, order):
        """The page of :meth:`_select` computed from the rows in the box: their keys first
        (``_box``, materialised: the spatial index answers it), sorted and cut to the page
        (``_page``), and only then the page's rows read whole. The same rows in the same
        order as :meth:`_select`; for a backend whose ``selective_box`` says so (PostGIS)."""
        key = _layers.KEYS[kind]
        geom = self._db.geom_expr("geom")  # only the table has a geom: no need to say which
        sort_cols = [f"{q(column)} AS _s{i}" for i, (column, _) in enumerate(order)]
        light, full, all_params = [], [], []
        for i, (table, where, pp) in enumerate(self._per_table(kind, conds, params, revision, bbox, filters)):
            light.append(f"SELECT {i} AS _t, fid AS _fid, {', '.join([f'{q(key)} AS _key', *sort_cols])} "
                         f"FROM {q(table)} WHERE {where}")
            all_params += pp
            cols = ", ".join(f"t.{q(n)}" for n in names)
            extra = "".join(f", p._s{j}" for j in range(len(order)))
            full.append(f"SELECT {geom} AS _geom, {cols}{'' if key in names else ', p._key'}, p._fid{extra} "
                        f"FROM _page p JOIN {q(table)} t ON p._t = {i} AND t.fid = p._fid")
        sorting = [f"_s{i}{' DESC' if descending else ''} NULLS LAST" for i, (_, descending) in enumerate(order)]
        by_key = [*sorting, "_key", "_fid"]
        by_out = [*sorting, q(key) if key in names else "_key", "_fid"]
        sql = (f"WITH _box AS MATERIALIZED ({' UNION ALL '.join(light)}), "
               f"_page AS (SELECT * FROM _box ORDER BY {', '.join(by_key)} {self._db.limit_clause(limit)} OFFSET ?) "
               f"{' UNION ALL '.join(full)} ORDER BY {', '.join(by_out)}")
        return sql, [*all_params, int(offset)]

    def frame_of(self, rows, names, kinds):
        """A GeoDataFrame from rows of (geometry, *names), each column of its kind."""
        if not rows:
            return _layers.empty_frame({name: kinds[name] for name in names})
        by_column = list(zip(*rows))
        geoms = self._db.decode(by_column[0])
        data = {name: _layers.column(list(by_column[i + 1]), kinds[name]) for i, name in enumerate(names)}
        return _layers.frame(data, geoms)

    # --- writing ----------------------------------------------------------------

    def load(self, layers: Mapping, *, author: str, mode: str = "replace", message: str = "",
             progress: bool | None = None, scope: str = "parents", region=None) -> int:
        """Load layers in one transaction, on the backend's fast path.

        Parameters
        ----------
        layers : mapping of kind -> GeoDataFrame
            Kinds are ``grids`` (every level in one frame), ``stations``,
            ``addresses``, ``events``, ``roads`` and ``boundaries`` (other
            offices' areas: ``boundary_set`` names the set, 警格 or 学区,
            ``boundary_id`` the unit; a ``replace`` replaces the sets the frame
            names and no other, see :mod:`gridgeo.store._layers`). Each frame
            is checked with :func:`gridgeo.schema.check` and brought to EPSG:4490.
        author : str
            Who loads; kept with every row and in the revision log.
        mode : {"replace", "append"}
            ``replace`` retires the layer's published rows into its history
            and publishes the frame; ``append`` adds rows whose keys are new
            (an existing key is an error naming it).
        scope : {"parents", "level"}
            What a ``replace`` of grids retires: the published units of each
            level in the frame whose parent is one of the parents the frame's
            units of that level name (``"parents"``: a file of one village's
            level-2 grids replaces that village's level-2 grids only), or every
            unit of each level in the frame (``"level"``). Levels the frame
            does not hold are never touched.
        region : (code, name), optional
            Record the area the store covers (:attr:`region`) in the same revision.
        message : str
        progress : bool, optional
            Show a progress bar (default: when stderr is a terminal).

        Returns
        -------
        int
            The new revision. A failure (or a crash) leaves the store as it was.
            A load that publishes exactly the rows it replaces (the same file
            again) changes nothing: no revision is written, and the current
            :attr:`version` comes back.

        Notes
        -----
        The GeoPackage backend inserts in one transaction with a prepared
        statement and packs the R-tree afterwards; PostGIS uses COPY (CSV
        written by Arrow, geometries as hex EWKB) and builds its indexes
        afterwards. New columns are added to the tables.

        A load is refused, and nothing changes, when a layer is empty (a load
        never replaces a layer with nothing) or when the grids as they would
        be after it fail :func:`gridgeo.validate` on the part the load
        touches: the loaded units, their parents, and the units below the
        loaded and the replaced ones (:class:`PublishError`, its ``report``
        says why). Grid edits belong in plans (:meth:`create_plan`).

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> sample = gridgeo.sample.load()
        >>> s.load({"grids": sample.grids, "stations": sample.stations}, author="张三", progress=False)
        1
        """
        if mode not in ("replace", "append"):
            raise ValueError(f"mode must be 'replace' or 'append', got {mode!r}")
        if not isinstance(layers, Mapping):
            raise TypeError(f"layers should be a mapping of kind -> GeoDataFrame, e.g. {{'stations': frame}}, "
                            f"got {type(layers).__name__}")
        _grid_load.check_scope(scope)
        prepared = {}
        for name, frame in layers.items():
            kind, levels = self._resolve(name)
            if levels:
                raise ValueError(f"load grid levels together as 'grids' (one frame with a level column), "
                                 f"not {name!r}")
            if len(frame) == 0:
                raise StoreError(f"the {kind} layer to load is empty: a load never replaces a layer with "
                                 "nothing. Check the file (a header without rows?); nothing was changed")
            prepared[kind] = _layers.prepare(frame, kind, name=f"the {kind} layer", scheme=self.scheme)
        try:
            with self.transaction(author=author, action="load", message=message) as (tx, revision, _):
                changed = False
                if region is not None and self.region != {"code": str(region[0]).strip(),
                                                          "name": str(region[1]).strip()}:
                    self._record_region(tx, *region)
                    changed = True
                for kind, frame in prepared.items():
                    if mode == "replace" and self._unchanged(kind, frame, scope):
                        continue  # the same rows again: no new version, nothing for a service to redo
                    self._load_one(tx, revision, kind, frame, author=author, mode=mode, scope=scope,
                                   progress=progress)
                    changed = True
                if not changed:
                    raise _NothingChanged
        except _NothingChanged:
            return self.version
        return revision

    def _unchanged(self, kind: str, frame, scope: str) -> bool:
        """Whether a replace-load of ``frame`` would publish exactly the rows it retires."""
        if kind == "grids":
            current = self.read("grids")
            current = current[_grid_load.replaced_mask(current, frame, scope)]
        elif kind == "boundaries":
            current = self.read("boundaries", where={_layers.SET_COLUMN: list(pd.unique(frame[_layers.SET_COLUMN]))})
        else:
            if self.count(kind) != len(frame):  # cheap: most changes change the count
                return False
            current = self.read(kind)
        key = "segment_id" if kind == "roads" else _layers.KEYS[kind]
        kinds = {**_layers.user_columns(frame), **self.layer_columns(kind)}
        return _layers.unchanged(current, frame, kinds, key)

    def _load_one(self, tx, revision, kind, frame, *, author, mode, scope, progress) -> None:
        if kind == "grids":
            _grid_load.validate_after(self, tx, frame, scope, mode=mode, scheme=self.scheme)
        kinds = self._ensure_columns(tx, kind, frame)
        if mode == "replace" and kind == "grids":
            for cond, params in _grid_load.conditions(frame, scope):
                self.retire(tx, kind, [cond], params, revision, author)
        elif mode == "replace" and kind == "boundaries":  # the sets the frame names, and no other
            sets = list(pd.unique(frame[_layers.SET_COLUMN]))
            self.retire(tx, kind, [f"{q(_layers.SET_COLUMN)} IN ({', '.join('?' * len(sets))})"], sets,
                        revision, author)
        elif mode == "replace":
            self.retire(tx, kind, [], [], revision, author)
        else:
            self._refuse_existing_keys(tx, kind, frame)
        data = frame.assign(revision=revision, author=author)
        self._db.insert(tx, kind, data, {**kinds, **_layers.SYSTEM},
                        progress=progress, label=f"loading {kind}")
        self.record_change(tx, revision, kind, len(frame))

    def rollback(self, to: int, *, author: str, message: str = "", layers=None,
                 base_version: int | None = None) -> int:
        """Make the published data equal an earlier revision's again, as one new revision.

        A rollback to revision ``to`` makes the published rows of each layer it
        covers equal to the rows published at ``to``, as ``read(layer, at=to)``
        gives them. Rows are matched by their key (a grid's code, a station's,
        address's or event's id, a road segment's id): a row published at
        ``to`` that is gone or differs now (any value, or the geometry in any
        coordinate) is written again as it was; a row published now that was
        not at ``to`` is retired. Rows that already equal ``to``'s keep their
        revision.

        It is one transaction and one revision, like a publish: the rows it
        replaces go to the history (a rollback can be rolled back), the
        derived data, tiles and the one map follow the new data version, and
        the audit trail records it (action ``rollback``, ``to`` and what it
        changed). Draft plans over the units it changes see it as a publish
        since their base: their publish is refused (:class:`ConflictError`)
        until they are rebased. :meth:`rollback_preview` says all this
        beforehand.

        Parameters
        ----------
        to : int
            A revision of the store (:meth:`revisions`; 0 is the empty store).
        author : str
            Who rolls back (an administrator).
        message : str
            Why.
        layers : list of str, optional
            The layers to roll back: kinds (``grids``, ``stations``,
            ``addresses``, ``events``, ``roads``) or grid levels. Default: all.
        base_version : int, optional
            The data version (:attr:`version`) the caller looked at when
            deciding: if the published data changed since, the rollback is
            refused with :class:`ConflictError` naming the revisions.

        Returns
        -------
        int
            The new revision (the new :attr:`version`).

        Raises
        ------
        RollbackError
            Nothing is written and the store stays exactly as it was when
            ``to`` is not a revision of the store (``reason="not_a_revision"``),
            when the published data already equal it (``"nothing_to_change"``:
            no revision is written), when it has no grids and the store has
            (``"no_grids"``), or when the grids after it fail
            :func:`gridgeo.validate` on the part it touches (the units it
            writes or retires, their parents and those parents' units, the
            units inside them: ``"invalid_result"``, the report in ``.report``).
        ConflictError
            ``base_version`` is not the current data version.

        Notes
        -----
        Only rows written or retired since ``to`` can differ from ``to``'s, so
        only they are compared, in the database, and only the rows to write
        again are read: the cost follows what changed since ``to``, not the size
        of the layers. Layers that have not changed since ``to`` are not read at
        all. Rows whose key repeats (road segments appended twice under one
        id) are matched as rows: one equal row of ``to`` keeps one published
        row.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> stations = gridgeo.sample.load().stations
        >>> _ = s.load({"stations": stations}, author="网格办")
        >>> _ = s.load({"stations": stations.iloc[:10].assign(name="新址")}, author="李四")
        >>> s.rollback(1, author="管理员", message="误导入")
        3
        >>> s.count("stations"), s.audit(action="rollback")["summary"].tolist()
        (104, ['to revision 1; stations +94 ~10 -0'])
        >>> s.rollback(3, author="管理员")
        Traceback (most recent call last):
        ...
        gridgeo.store.errors.RollbackError: nothing would change: ... / 无需回退：...
        """
        from gridgeo.store import _rollback

        return _rollback.rollback(self, to, author=author, message=message, layers=layers,
                                  base_version=base_version)

    def rollback_preview(self, to: int, *, layers=None) -> dict:
        """What :meth:`rollback` to ``to`` would change now; nothing is written.

        Returns
        -------
        dict
            ``to``; ``version`` and ``revision`` now (give ``version`` back as
            ``base_version=`` so that the rollback is refused if the data
            change meanwhile); ``layers`` (per layer the rows ``added``,
            ``changed`` and ``removed``, as the audit trail will count them),
            for grids ``levels``, ``units`` (the codes) and ``names`` (each
            unit's name as the rollback leaves it: at ``to``, or now for
            one it removes); ``plans``, the
            draft plans whose units it changes (``plan_id``, ``name``,
            ``status``, ``author``, ``units``); ``errors``, the validation
            errors that would refuse it; and ``refusal`` (``reason``,
            ``message_en``, ``message_zh``) when the rollback would be refused.

        Raises
        ------
        RollbackError
            ``to`` is not a revision of the store.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> grids = gridgeo.sample.load().grids
        >>> _ = s.load({"grids": grids}, author="网格办")
        >>> plan = s.create_plan("改名", parent="350582106201", levels="grid2", author="张三")
        >>> _ = plan.save(plan.read().iloc[:1].assign(name="新名"), author="张三")
        >>> _ = plan.publish(author="张三")
        >>> p = s.rollback_preview(1)
        >>> p["layers"], p["units"]["changed"], p["plans"], "refusal" in p
        ({'grids': {'added': 0, 'changed': 1, 'removed': 0}}, ['3505821062010101'], [], False)
        """
        from gridgeo.store import _rollback

        return _rollback.preview(self, to, layers=layers)

    def check_load(self, grids, *, scope: str = "parents", mode: str = "replace"):
        """The validation report :meth:`load` would judge a load of ``grids`` by.

        The grids as they would be after the load, on the part it touches
        (the loaded units, their parents, and the units below the loaded and
        the replaced ones), through :func:`gridgeo.validate`. Nothing is
        written. :meth:`load` refuses when this has an error.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> grids = gridgeo.sample.load().grids
        >>> _ = s.load({"grids": grids[grids["level"] != "grid2"]}, author="demo")
        >>> grid2 = grids[grids["level"] == "grid2"]
        >>> report = s.check_load(grid2.iloc[1:])  # one level-2 grid missing
        >>> sorted(set(report.loc[report["severity"] == "error", "kind"]))
        ['uncovered']
        """
        _grid_load.check_scope(scope)
        frame = _layers.prepare(grids, "grids", name="the grids layer", scheme=self.scheme)
        current = self.read("grids")
        return _grid_load.report_after(current.drop(columns=["revision"]), frame, scope, mode=mode,
                                       scheme=self.scheme)

    def _ensure_columns(self, tx, kind: str, frame) -> dict[str, str]:
        """Add the frame's new columns to the layer's tables; the kinds to write with."""
        existing = self.layer_columns(kind, tx=tx)
        kinds = {}
        for column, found in _layers.user_columns(frame).items():
            if column in existing:
                kinds[column] = existing[column]
                continue
            tables = [kind, kind + "_history"] + (["plan_units"] if kind == "grids" else [])
            for table in tables:
                self._db.add_column(tx, table, column, found)
            kinds[column] = found
        return kinds

    def retire(self, tx, kind: str, conds: list[str], params: list, revision: int, author: str) -> int:
        """Move the matching published rows into the history; how many."""
        where = " AND ".join(conds) or "1 = 1"
        columns = [*self.layer_columns(kind, tx=tx), *_layers.SYSTEM]
        n = int(tx.query(f"SELECT COUNT(*) FROM {q(kind)} WHERE {where}", params)[0][0])
        if n:
            self._db.copy(tx, kind, kind + "_history", columns, where, params,
                          extra={"retired": revision, "retired_by": author})
            self._db.delete(tx, kind, where, params)
        return n

    def _refuse_existing_keys(self, tx, kind, frame) -> None:
        key = _layers.KEYS[kind]
        if kind not in _layers.UNIQUE_KEYS or key not in frame.columns:
            return
        keys = [k for k in pd.unique(frame[key].dropna())]
        taken = []
        for start in range(0, len(keys), 500):
            chunk = keys[start:start + 500]
            taken += [r[0] for r in tx.query(
                f"SELECT {q(key)} FROM {q(kind)} WHERE {q(key)} IN ({', '.join('?' * len(chunk))})", chunk)]
            if len(taken) >= 10:
                break
        if taken:
            raise StoreError(f"cannot append to {kind}: {key} {', '.join(map(repr, taken[:10]))} "
                             f"{'is' if len(taken) == 1 else 'are'} already published; load with "
                             "mode='replace', or drop those rows")

    # --- plans ------------------------------------------------------------------

    def plans(self, *, status: str | None = None) -> pd.DataFrame:
        """The plans: ``plan_id``, ``name``, ``parent``, ``levels``, ``status``
        (draft, submitted, approved, published, abandoned), ``author``, ``base_revision``,
        ``revision``, ``created_at``, ``updated_at``, ``published_revision``.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> p = s.create_plan("重划", parent=s.read("village", limit=1)["code"][0], levels=["grid2"], author="张三")
        >>> s.plans(status="draft")["name"].tolist()
        ['重划']
        """
        from gridgeo.store.plans import plan_table

        return plan_table(self, status=status)

    def create_plan(self, name: str, *, parent: str, levels, author: str, description: str = ""):
        """Start a plan: a draft of the units of ``levels`` inside ``parent``,
        copied from the published grids.

        Parameters
        ----------
        name : str
        parent : str
            The code of the unit whose inside is redrawn ("" for everything).
        levels : str or list of str
            The levels the plan redraws, all below the parent's level
            (``["grid2"]``, or ``["grid1", "grid2"]`` to redraw both).
        author : str
        description : str

        Returns
        -------
        Plan

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> village = s.read("village", limit=1)["code"][0]
        >>> plan = s.create_plan("二级网格调整", parent=village, levels="grid2", author="张三")
        >>> len(plan.read()) == s.count("grid2", within=village)
        True
        """
        from gridgeo.store.plans import create

        return create(self, name, parent=parent, levels=levels, author=author, description=description)

    def plan(self, plan_id: int):
        """The plan with this id (see :meth:`plans`); :class:`NotFound` if there is none.

        Examples
        --------
        >>> import tempfile, gridgeo.store
        >>> gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True).plan(7)
        Traceback (most recent call last):
        ...
        gridgeo.store.errors.NotFound: ... has no plan 7: see store.plans()
        """
        from gridgeo.store.plans import Plan

        return Plan(self, plan_id)


def _check_author(author) -> None:
    if not isinstance(author, str) or not author.strip():
        raise ValueError("author= must name who makes the change (a non-empty string): the store records "
                         "it so that others know who changed what")


def _as_kind(kind: str, value):
    """A filter value as a value of the column's kind (``"5"`` for an integer column is 5)."""
    if isinstance(value, np.generic):
        value = value.item()
    if kind == "text":
        return str(value)
    if kind == "integer":
        if isinstance(value, int):
            number = value
        else:
            text = str(value).strip()
            try:
                number = int(text)  # exact, even past 2**53
            except ValueError:
                real = float(text)
                if not real.is_integer():
                    raise ValueError from None
                number = int(real)
        if not -2**63 <= number < 2**63:  # no database stores it: nothing can equal it
            raise ValueError
        return number
    if kind == "real":
        return float(value)
    if kind == "boolean":
        text = str(value).strip().lower()
        if text not in ("true", "false", "1", "0"):
            raise ValueError
        return text in ("true", "1")
    if kind == "datetime":
        stamp = pd.Timestamp(value)
        if pd.isna(stamp):
            raise ValueError
        return stamp
    if kind == "date":
        return _dt.date.fromisoformat(str(value)[:10])
    return value

