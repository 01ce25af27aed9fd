"""Plans: named drafts of grid units, saved without losing anyone's edit and
published atomically.

A plan redraws the units of some levels inside one parent (the level-2 grids
of a village, say). It starts as a copy of the published units there, each
remembering the published revision it came from (``base_rev``). Planners
:meth:`Plan.save` edits that state the revision they were based on; a stale
edit is refused, naming the unit and who changed it. :meth:`Plan.publish`
replaces the published units inside the parent in one transaction, after
:func:`gridgeo.validate` passes on the result, and only if nobody published
a change there since the plan's base; otherwise :meth:`Plan.rebase` first.

A plan's status: ``draft`` (saved, rebased), ``submitted`` (for review),
``approved``, ``published`` or ``abandoned``. :meth:`Plan.submit`,
:meth:`Plan.withdraw`, :meth:`Plan.send_back` (a reviewer's return, with a
comment), :meth:`Plan.approve` and :meth:`Plan.publish` move it along, each a
revision of its own recorded in the plan's log with who, when and the
comment. Only a draft is saved or rebased. The store keeps these steps
consistent; who may take which step, and after which report, is
:mod:`gridgeo.review`'s rule, which the service enforces (the store publishes
any plan not yet published or abandoned, for a store's owner working in
Python).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import pandas as pd

from gridgeo.store import _layers
from gridgeo.store._sql import now, q
from gridgeo.store.errors import (
    ConflictError, NotFound, PlanStateError, PublishError, StaleEditError, StoreError,
)

__all__ = ["Plan", "STATUSES"]

STATUSES = ("draft", "submitted", "approved", "published", "abandoned")
"""A plan's statuses, in the order of the review (:mod:`gridgeo.review`)."""

_PLAN_COLUMNS = ["plan_id", "name", "parent", "levels", "status", "author", "description", "base_revision",
                 "revision", "created_at", "updated_at", "published_revision"]


def plan_table(store, *, status=None) -> pd.DataFrame:
    sql = f"SELECT {', '.join(_PLAN_COLUMNS)} FROM gridgeo_plans"
    params = []
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"status must be one of {list(STATUSES)}, got {status!r}")
        sql += " WHERE status = ?"
        params.append(status)
    rows = store._db.query(sql + " ORDER BY plan_id", params)
    out = pd.DataFrame(rows, columns=_PLAN_COLUMNS)
    for col in ("plan_id", "base_revision", "revision"):
        out[col] = out[col].astype("int64")
    out["published_revision"] = out["published_revision"].astype("Int64")
    for col in ("created_at", "updated_at"):
        out[col] = pd.to_datetime(out[col], format="ISO8601", utc=True)
    for col in ("name", "parent", "levels", "status", "author", "description"):
        out[col] = out[col].astype("str")
    return out


def create(store, name, *, parent, levels, author, description=""):
    levels = [levels] if isinstance(levels, str) else list(levels)
    parent = "" if parent is None else str(parent)
    _check_scope(store, parent, levels)
    with store.transaction(author=author, action="create-plan") as (tx, revision, record):
        stamp = now()
        plan_id = int(tx.query(
            "INSERT INTO gridgeo_plans (name, parent, levels, status, author, description, base_revision, "
            "revision, created_at, updated_at) VALUES (?, ?, ?, 'draft', ?, ?, ?, ?, ?, ?) RETURNING plan_id",
            (str(name), parent, ",".join(levels), author, description, revision, revision, stamp, stamp))[0][0])
        record["plan_id"] = plan_id
        conds, params = _scope(parent, levels)
        columns = list(store.layer_columns("grids", tx=tx))
        store._db.copy(tx, "grids", "plan_units", columns, " AND ".join(conds), params,
                       extra={"plan_id": plan_id, "revision": revision, "author": author, "edited": 0},
                       renamed={"base_rev": "revision"})
        n = int(tx.query("SELECT COUNT(*) FROM plan_units WHERE plan_id = ?", (plan_id,))[0][0])
        _log(tx, plan_id, revision, author, "create", f"{n} units copied from revision {revision - 1}", [])
    return Plan(store, plan_id)


def _check_scope(store, parent, levels):
    names = store.scheme.names
    unknown = [lv for lv in levels if lv not in names]
    if unknown or not levels:
        raise ValueError(f"levels must be some of {list(names)}, got {levels}")
    top = -1
    if parent:
        found = store.read("grids", where={"code": parent}, columns=["level"])
        if found.empty:
            raise NotFound(f"no published unit has code {parent!r}: a plan's parent must exist "
                           "(or be '' for the whole city)")
        top = names.index(found["level"].iloc[0])
    above = [lv for lv in levels if names.index(lv) <= top]
    if above:
        raise ValueError(f"a plan inside {parent} ({names[top]}) can redraw only levels below it, "
                         f"not {above}")


def _scope(parent: str, levels: list[str]) -> tuple[list[str], list]:
    conds = [f"level IN ({', '.join('?' * len(levels))})"]
    params: list = list(levels)
    if parent:
        conds.append("code >= ? AND code < ?")
        params += [parent, _layers.next_prefix(parent)]
    return conds, params


def _log(tx, plan_id, revision, author, action, message, codes):
    tx.execute("INSERT INTO gridgeo_plan_log (plan_id, revision, at, author, action, message, codes) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (plan_id, revision, now(), author, action, message,
                                                 ",".join(sorted(codes))))


class Plan:
    """A named draft of the units of some levels inside one parent unit.

    Get one from :meth:`Store.create_plan` or :meth:`Store.plan`. Its
    attributes (``name``, ``parent``, ``levels``, ``status``, ``author``,
    ``base_revision``, ``revision``) are read from the store on each access.
    """

    def __init__(self, store, plan_id: int):
        self._store = store
        self.id = int(plan_id)
        self.info  # fail now for an unknown id

    @property
    def info(self) -> dict:
        """The plan's row of :meth:`Store.plans`, as a dict."""
        rows = self._store._db.query(f"SELECT {', '.join(_PLAN_COLUMNS)} FROM gridgeo_plans WHERE plan_id = ?",
                                     (self.id,))
        if not rows:
            raise NotFound(f"{self._store.url} has no plan {self.id}: see store.plans()")
        info = dict(zip(_PLAN_COLUMNS, rows[0]))
        info["levels"] = info["levels"].split(",")
        return info

    name = property(lambda self: self.info["name"])
    parent = property(lambda self: self.info["parent"])
    levels = property(lambda self: self.info["levels"])
    status = property(lambda self: self.info["status"])
    author = property(lambda self: self.info["author"])
    base_revision = property(lambda self: int(self.info["base_revision"]),
                             doc="The published revision the plan is based on (its creation, or its last rebase).")
    revision = property(lambda self: int(self.info["revision"]),
                        doc="The revision of the plan's latest change (a review's step included).")
    edited_revision = property(lambda self: _edited_revision(self._store._db, self.id),
                               doc="The revision of the latest change to the plan's units (its creation, "
                                   "a save or a rebase): what a pre-publish report is of.")

    def __repr__(self) -> str:
        info = self.info
        return (f"<plan {self.id} {info['name']!r} ({info['status']}) of {','.join(info['levels'])} "
                f"in {info['parent'] or 'everything'}, revision {info['revision']}>")

    # --- reading ----------------------------------------------------------------

    def read(self):
        """The plan's units now.

        Returns
        -------
        GeoDataFrame
            The grids' columns plus ``revision`` (of the unit's latest change:
            state it when saving an edit of that unit) and ``author``.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> plan = s.create_plan("调整", parent=s.read("village", limit=1)["code"][0], levels="grid2",
        ...                      author="张三")
        >>> sorted(plan.read()["author"].unique())
        ['张三']
        """
        return _units(self._store, self.id)

    def published(self, *, at=None):
        """The published units the plan redraws (its parent's units of its levels),
        now or at a revision or time: what :meth:`read` is compared with.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo", progress=False)
        >>> plan = s.create_plan("三级", parent="", levels="grid3", author="张三")
        >>> len(plan.published()) == len(plan.read()) == 90
        True
        """
        info = self.info
        return self._store.read("grids", within=info["parent"] or None, level=info["levels"], at=at)

    def changes(self) -> pd.DataFrame:
        """What the plan changes against its base: one row per unit added,
        changed or removed (``code``, ``level``, ``change``, ``revision``, ``author``).

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> plan = s.create_plan("调整", parent=s.read("village", limit=1)["code"][0], levels="grid2",
        ...                      author="张三")
        >>> units = plan.read()
        >>> _ = plan.save(units.iloc[:1].assign(name="新网格"), author="李四")
        >>> plan.changes()[["change", "author"]].to_dict("records")
        [{'change': 'changed', 'author': '李四'}]
        """
        db = self._store._db
        rows = db.query("SELECT code, level, CASE WHEN base_rev IS NULL THEN 'added' ELSE 'changed' END, "
                        "revision, author FROM plan_units WHERE plan_id = ? AND edited = 1 "
                        "UNION ALL SELECT r.code, NULL, 'removed', r.revision, r.author "
                        "FROM gridgeo_plan_removed r WHERE r.plan_id = ? AND r.base_rev IS NOT NULL "
                        "ORDER BY 1", (self.id, self.id))
        out = pd.DataFrame(rows, columns=["code", "level", "change", "revision", "author"])
        for col in ("code", "level", "change", "author"):
            out[col] = out[col].astype("str")
        out["revision"] = out["revision"].astype("int64")
        return out

    def history(self) -> pd.DataFrame:
        """The plan's log: ``revision``, ``at``, ``author``, ``action`` (create,
        save, rebase, submit, withdraw, return, approve, publish, abandon),
        ``message`` (a return's comment) and the ``codes`` touched.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo", progress=False)
        >>> plan = s.create_plan("三级", parent="", levels="grid3", author="张三")
        >>> _ = plan.abandon(author="李四")
        >>> plan.history()[["author", "action"]].values.tolist()
        [['张三', 'create'], ['李四', 'abandon']]
        """
        rows = self._store._db.query("SELECT revision, at, author, action, message, codes FROM gridgeo_plan_log "
                                     "WHERE plan_id = ? ORDER BY revision", (self.id,))
        out = pd.DataFrame(rows, columns=["revision", "at", "author", "action", "message", "codes"])
        out["revision"] = out["revision"].astype("int64")
        out["at"] = pd.to_datetime(out["at"], format="ISO8601", utc=True)
        for col in ("author", "action", "message", "codes"):
            out[col] = out[col].astype("str")
        return out

    def validate(self):
        """:func:`gridgeo.validate` of the grids under the plan's parent as they would be
        after publishing it now: what :meth:`publish` checks (any error refuses it), the
        plan's levels and those below them.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo", progress=False)
        >>> plan = s.create_plan("调整", parent="350582106201", levels="grid2", author="张三")
        >>> report = plan.validate()
        >>> int((report["severity"] == "error").sum())
        0
        """
        return _after_report(self._store, self.info, _units(self._store, self.id))

    # --- editing ----------------------------------------------------------------

    def save(self, units=None, *, author: str, base_revision: int | None = None,
             remove: Iterable[str] | Mapping[str, int] = (), message: str = "") -> int:
        """Save edited, new or removed units, refusing stale edits.

        Every edit states the revision it was based on: a ``revision`` column
        in ``units`` (as :meth:`read` returns it) per unit, or
        ``base_revision`` for all of them. If a unit has been changed (or
        removed, or added with the same code) by anyone after that revision,
        nothing is saved and :class:`StaleEditError` names the unit, who
        changed it and when. Units the edit does not mention are left alone,
        so two planners editing different units of one plan both keep their
        work.

        Parameters
        ----------
        units : GeoDataFrame, optional
            Units to write (new codes are added): the grids' columns, in the
            plan's parent and levels.
        author : str
        base_revision : int, optional
            The plan revision the edit was based on, for units without a
            ``revision`` value and for removals.
        remove : list of codes, or mapping code -> revision it was based on
        message : str

        Returns
        -------
        int
            The new revision: the ``revision`` of every unit written. A save
            that changes nothing (no removal, every unit as the plan holds
            it: same name, parent, columns and coordinates) writes nothing,
            not even a revision, and returns the plan's :attr:`revision`
            unchanged; only the units that differ are written.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> plan = s.create_plan("调整", parent=s.read("village", limit=1)["code"][0], levels="grid2",
        ...                      author="张三")
        >>> mine = plan.read().iloc[:1]
        >>> _ = plan.save(mine.assign(name="东区网格"), author="李四")
        >>> plan.save(mine.assign(name="西区网格"), author="张三")   # based on the old revision
        Traceback (most recent call last):
        ...
        gridgeo.store.errors.StaleEditError: ...
        >>> now = plan.revision
        >>> plan.save(plan.read().iloc[:1], author="张三") == now == plan.revision   # nothing changes
        True
        """
        store = self._store
        frame, based_on = _edit_frame(units, self._store.scheme)
        removals = dict(remove) if isinstance(remove, Mapping) else {str(c): None for c in remove}
        info = self.info
        if frame is not None:
            _check_in_scope(frame, info, self.id)
        try:
            return self._save(store, frame, based_on, removals, author=author, base_revision=base_revision,
                              message=message)
        except _Unchanged:
            return self.revision

    def _save(self, store, frame, based_on, removals, *, author, base_revision, message) -> int:
        with store.transaction(author=author, action="save-plan", plan_id=self.id, message=message) as (tx, revision, _):
            info = _status(tx, self.id, "save")
            if frame is not None and len(frame):
                frame, based_on = _differing(store, tx, self.id, frame, based_on)
            if (frame is None or not len(frame)) and not removals:
                raise _Unchanged  # rolls the transaction back: no revision for a save of nothing
            stored = {r[0]: r[1:] for r in tx.query(
                "SELECT code, revision, author, base_rev FROM plan_units WHERE plan_id = ?", (self.id,))}
            removed = {r[0]: r[1:] for r in tx.query(
                "SELECT code, revision, author, at, base_rev FROM gridgeo_plan_removed WHERE plan_id = ?",
                (self.id,))}
            times = _revision_times(tx, [r[0] for r in stored.values()] + [r[0] for r in removed.values()])
            conflicts = []
            codes = [] if frame is None else list(frame["code"])
            for code, stated in zip(codes, based_on if frame is not None else []):
                stated = base_revision if stated is None else stated
                conflicts += _stale(code, stated, stored, removed, times, exists_required=False)
            for code, stated in removals.items():
                stated = base_revision if stated is None else stated
                if code not in stored and code not in removed:
                    raise NotFound(f"plan {self.id} has no unit {code} to remove")
                conflicts += _stale(code, stated, stored, removed, times, exists_required=True)
            if conflicts:
                raise StaleEditError(_stale_message(self.id, info["name"], conflicts), conflicts)
            touched = set(codes) | set(removals)
            origin = {c: stored[c][2] if c in stored else removed[c][3] if c in removed else None
                      for c in touched}
            _delete_codes(tx, "plan_units", self.id, touched)
            _delete_codes(tx, "gridgeo_plan_removed", self.id, touched)
            if frame is not None and len(frame):
                kinds = store._ensure_columns(tx, "grids", frame)
                data = frame.assign(plan_id=self.id, revision=revision, author=author, edited=1,
                                    base_rev=pd.array([origin[c] for c in frame["code"]], dtype="Int64"))
                store._db.insert(tx, "plan_units", data, {**kinds, **_layers.SYSTEM, **_layers.PLAN},
                                 progress=False)
            stamp = now()
            for code in removals:
                if code in stored:
                    tx.execute("INSERT INTO gridgeo_plan_removed (plan_id, code, base_rev, revision, author, at) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (self.id, code, origin[code], revision, author, stamp))
            _touch(tx, self.id, revision)
            _log(tx, self.id, revision, author, "save", message or f"{len(codes)} saved, {len(removals)} removed",
                 touched)
        return revision

    def rebase(self, *, author: str, prefer: str | None = None, message: str = "") -> int:
        """Bring the plan onto the published grids as they are now.

        Units the plan did not edit are refreshed from the published ones
        (added, changed or removed as they were there). A unit both the plan
        and a publish changed since the plan's base is a conflict:
        :class:`ConflictError` lists them, unless ``prefer`` says which side
        wins (``"plan"`` or ``"published"``).

        Returns
        -------
        int
            The new revision; the plan's ``base_revision`` becomes it.

        Examples
        --------
        See :meth:`publish`.
        """
        if prefer not in (None, "plan", "published"):
            raise ValueError(f"prefer must be None, 'plan' or 'published', got {prefer!r}")
        store = self._store
        with store.transaction(author=author, action="rebase-plan", plan_id=self.id, message=message) as (tx, revision, _):
            info = _status(tx, self.id, "rebase")
            conds, params = _scope(info["parent"], info["levels"].split(","))
            where = " AND ".join(conds)
            published = {r[0]: r[1:] for r in tx.query(
                f"SELECT code, revision, author FROM grids WHERE {where}", params)}
            units = {r[0]: r[1:] for r in tx.query(
                "SELECT code, base_rev, edited, author FROM plan_units WHERE plan_id = ?", (self.id,))}
            removed = {r[0]: r[1] for r in tx.query(
                "SELECT code, base_rev FROM gridgeo_plan_removed WHERE plan_id = ?", (self.id,))}
            refresh, drop, conflicts, keep = [], [], [], []
            for code, (base_rev, edited, _author) in units.items():
                now_rev = published.get(code, (None,))[0]
                if not edited:
                    if now_rev is None:
                        drop.append(code)
                    elif now_rev != base_rev:
                        refresh.append(code)
                elif now_rev != base_rev and not (base_rev is None and now_rev is None):
                    conflicts.append(_conflict(code, "changed in the plan and by a publish", published))
                    keep.append(code)
            for code, (now_rev, _a) in published.items():
                if code in units:
                    continue
                if code in removed:
                    if removed[code] != now_rev:
                        conflicts.append(_conflict(code, "removed in the plan, changed by a publish", published))
                        keep.append(code)
                else:
                    refresh.append(code)
            if conflicts and prefer is None:
                raise ConflictError(
                    f"plan {self.id} ({info['name']!r}) cannot be rebased: "
                    + "; ".join(c["message"] for c in conflicts[:10])
                    + ". Rebase with prefer='plan' to keep the plan's units, or prefer='published' to take "
                    "the published ones", conflicts)
            if prefer == "published":
                refresh += keep
                _delete_codes(tx, "gridgeo_plan_removed", self.id, [c for c in keep if c in removed])
            elif prefer == "plan":
                for code in keep:
                    rev = published.get(code, (None,))[0]
                    table = "plan_units" if code in units else "gridgeo_plan_removed"
                    tx.execute(f"UPDATE {table} SET base_rev = ? WHERE plan_id = ? AND code = ?",
                               (rev, self.id, code))
            _delete_codes(tx, "plan_units", self.id, set(refresh) | set(drop))
            if refresh:
                columns = list(store.layer_columns("grids", tx=tx))
                cond = f"code IN ({', '.join('?' * len(refresh))})"
                store._db.copy(tx, "grids", "plan_units", columns, cond, list(refresh),
                               extra={"plan_id": self.id, "revision": revision, "author": author, "edited": 0},
                               renamed={"base_rev": "revision"})
            tx.execute("UPDATE gridgeo_plans SET base_revision = ? WHERE plan_id = ?", (revision, self.id))
            _touch(tx, self.id, revision)
            _log(tx, self.id, revision, author, "rebase",
                 message or f"{len(refresh)} refreshed, {len(drop)} dropped, {len(keep)} conflicts "
                 f"({prefer or 'none'} preferred)", set(refresh) | set(drop) | set(keep))
        return revision

    def publish(self, *, author: str, message: str = "", report: str | None = None,
                revision: int | None = None) -> int:
        """Replace the published units inside the plan's parent with the plan's,
        in one transaction.

        A draft, submitted or approved plan can be published here; the
        service publishes only what :mod:`gridgeo.review` allows (an approved
        plan, by a reviewer). ``report`` is the version of the pre-publish
        report (:func:`gridgeo.plan.report`) the publisher acknowledged,
        recorded in the plan's log; with ``revision`` (an :attr:`edited_revision`)
        the publish is refused (:class:`PlanStateError`) if the plan's units
        changed since.

        First the grids under the parent, as they would be after the
        publish, go through :func:`gridgeo.validate`; any error refuses the
        publish with :class:`PublishError` (its ``report`` says why). A
        publish since the plan's base that touched its units refuses it with
        :class:`ConflictError`: :meth:`rebase` first. Either way, and on any
        failure or crash, the published grids stay exactly as they were.

        Returns
        -------
        int
            The new revision: the store's :attr:`~Store.version`. A plan that
            changes nothing (its units as published) is marked published
            without a new data version: the version stays what it was.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> village = s.read("village", limit=1)["code"][0]
        >>> a = s.create_plan("甲", parent=village, levels="grid2", author="张三")
        >>> b = s.create_plan("乙", parent=village, levels="grid2", author="李四")
        >>> units = a.read().iloc[:1]
        >>> _ = a.save(units.assign(name="甲方案"), author="张三")
        >>> a.publish(author="张三") == s.version
        True
        >>> _ = b.save(units.assign(name="乙方案", revision=b.read()["revision"].iloc[0]), author="李四")
        >>> b.publish(author="李四")
        Traceback (most recent call last):
        ...
        gridgeo.store.errors.ConflictError: ...
        """
        store = self._store
        expected = revision
        with store.transaction(author=author, action="publish", plan_id=self.id, message=message) as (tx, revision, _):
            info = _status(tx, self.id, "publish", ("draft", "submitted", "approved"), expected)
            parent, levels = info["parent"], info["levels"].split(",")
            conds, params = _scope(parent, levels)
            where = " AND ".join(conds)
            _refuse_if_published_since(tx, info, where, params)
            units = _units(store, self.id, tx=tx)
            removed = [r[0] for r in tx.query(
                "SELECT code FROM gridgeo_plan_removed WHERE plan_id = ? AND base_rev IS NOT NULL", (self.id,))]
            _validate(store, tx, info, units)
            edited = units[units["edited"] == 1] if "edited" in units else units
            if len(edited):  # a unit saved as it is published (renamed and named back) changes nothing
                now = store.read("grids", within=parent or None, level=levels)
                edited = edited[_layers.changed_rows(now, edited, store.layer_columns("grids", tx=tx), "code")]
            changed = list(edited["code"]) + removed
            n = 0
            if changed:
                cond = f"code IN ({', '.join('?' * len(changed))})"
                n += store.retire(tx, "grids", [where, cond], params + changed, revision, author)
            if len(edited):
                kinds = store.layer_columns("grids", tx=tx)
                data = edited.drop(columns=["edited", "base_rev"]).assign(revision=revision, author=author)
                store._db.insert(tx, "grids", data, {**kinds, **_layers.SYSTEM}, progress=False)
            if changed:  # a publish that changes nothing makes no new data version
                store.record_change(tx, revision, "grids", len(edited) + len(removed))
            tx.execute("UPDATE gridgeo_plans SET status = 'published', published_revision = ? WHERE plan_id = ?",
                       (revision, self.id))
            _touch(tx, self.id, revision)
            _log(tx, self.id, revision, author, "publish",
                 _acknowledged(message or f"{len(edited)} units published, {len(removed)} removed", report), changed)
        return revision

    # --- review -----------------------------------------------------------------

    def submit(self, *, author: str, message: str = "") -> int:
        """Hand a draft in for review: it can no longer be saved until it is
        withdrawn or returned. Returns the new revision.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> plan = s.create_plan("调整", parent=s.read("village", limit=1)["code"][0], levels="grid2",
        ...                      author="张三")
        >>> _ = plan.submit(author="张三", message="请审核")
        >>> _ = plan.send_back(author="李审核", comment="第二网格户数偏少，请调整")
        >>> _ = plan.submit(author="张三")
        >>> _ = plan.approve(author="李审核")
        >>> _ = plan.publish(author="李审核")
        >>> plan.history()[["author", "action", "message"]].values.tolist()[1:3]
        [['张三', 'submit', '请审核'], ['李审核', 'return', '第二网格户数偏少，请调整']]
        >>> plan.history()["action"].tolist()[3:]
        ['submit', 'approve', 'publish']
        """
        return self._step("submit", "submit-plan", ("draft",), "submitted", author, message)

    def withdraw(self, *, author: str, message: str = "") -> int:
        """Take a submitted or approved plan back to draft, to change it (it must be
        submitted again). Returns the new revision."""
        return self._step("withdraw", "withdraw-plan", ("submitted", "approved"), "draft", author, message)

    def send_back(self, *, author: str, comment: str) -> int:
        """A reviewer's return: the submitted (or approved) plan goes back to draft with
        ``comment`` (required: what to change), kept in the plan's log. Returns the new revision."""
        if not str(comment or "").strip():
            raise ValueError("a returned plan needs a comment saying what to change (comment=...)")
        return self._step("return", "return-plan", ("submitted", "approved"), "draft", author, str(comment).strip())

    def approve(self, *, author: str, message: str = "", report: str | None = None,
                revision: int | None = None) -> int:
        """A reviewer's approval of a submitted plan: it may then be published.

        ``report`` is the version of the pre-publish report the reviewer
        acknowledged (recorded in the log); with ``revision`` (an
        :attr:`edited_revision`) the approval is refused if the plan's units
        changed since. Returns the new revision.
        """
        return self._step("approve", "approve-plan", ("submitted",), "approved", author,
                          _acknowledged(message, report), expected=revision)

    def _step(self, action, logged, allowed, to, author, message, expected=None) -> int:
        with self._store.transaction(author=author, action=logged, plan_id=self.id,
                                     message=message) as (tx, revision, _):
            _status(tx, self.id, action, allowed, expected)
            tx.execute("UPDATE gridgeo_plans SET status = ? WHERE plan_id = ?", (to, self.id))
            _touch(tx, self.id, revision)
            _log(tx, self.id, revision, author, action, message, [])
        return revision

    def abandon(self, *, author: str, message: str = "") -> int:
        """Give the plan up: it stays readable, with its history, but can no
        longer be saved or published. Returns the new revision.

        Examples
        --------
        >>> import tempfile, gridgeo.store, gridgeo.sample
        >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
        >>> _ = s.load({"grids": gridgeo.sample.load().grids}, author="demo")
        >>> plan = s.create_plan("试验", parent="", levels="grid3", author="张三")
        >>> _ = plan.abandon(author="张三", message="不再需要")
        >>> plan.status
        'abandoned'
        """
        with self._store.transaction(author=author, action="abandon-plan", plan_id=self.id,
                                message=message) as (tx, revision, _):
            _status(tx, self.id, "abandon", ("draft", "submitted", "approved"))
            tx.execute("UPDATE gridgeo_plans SET status = 'abandoned' WHERE plan_id = ?", (self.id,))
            _touch(tx, self.id, revision)
            _log(tx, self.id, revision, author, "abandon", message, [])
        return revision


# --- steps ------------------------------------------------------------------------


def _units(store, plan_id, tx=None):
    """The plan's units, with revision and author (and, inside a transaction, base_rev and edited)."""
    available = store.layer_columns("grids", tx=tx)
    names = list(available)
    extra = ["revision", "author"] + (["base_rev", "edited"] if tx is not None else [])
    cols = ", ".join(q(n) for n in [*names, *extra])
    sql = (f"SELECT {store._db.geom_expr('geom')}, {cols} FROM plan_units WHERE plan_id = ? ORDER BY code")
    rows = (tx.query if tx is not None else store._db.query)(sql, (plan_id,))
    return store.frame_of(rows, [*names, *extra], {**available, **_layers.SYSTEM, **_layers.PLAN})


class _Unchanged(Exception):
    """Raised inside a save's transaction to roll it back when it would change nothing."""


def _differing(store, tx, plan_id, frame, based_on):
    """The rows of ``frame`` (and their stated revisions) that differ from the plan's units."""
    current = _units(store, plan_id, tx=tx)
    kinds = {**store.layer_columns("grids", tx=tx), **_layers.SYSTEM}
    differs = _layers.changed_rows(current, frame, kinds, "code")
    return frame[differs].reset_index(drop=True), [b for b, d in zip(based_on, differs) if d]


def _edit_frame(units, scheme):
    """(prepared frame or None, the revision each row states or None)."""
    if units is None:
        return None, []
    units = units.copy()
    stated = [None] * len(units)
    if "revision" in units.columns:
        stated = [None if pd.isna(v) else int(v) for v in units["revision"]]
    units = units.drop(columns=[c for c in _layers.RESERVED if c in units.columns and c != "geometry"])
    return _layers.prepare(units, "grids", name="the plan's units", scheme=scheme), stated


def _check_in_scope(frame, info, plan_id):
    levels = info["levels"]
    parent = info["parent"]
    outside = frame[~frame["level"].isin(levels) | ~frame["code"].str.startswith(parent)]
    if len(outside):
        shown = ", ".join(f"{c} ({lv})" for c, lv in zip(outside["code"][:5], outside["level"][:5]))
        raise StoreError(f"plan {plan_id} redraws {','.join(levels)} inside {parent or 'everything'}, but "
                         f"{len(outside)} unit(s) are outside it: {shown}. Save them in a plan whose parent "
                         "and levels include them")


def _status(tx, plan_id, doing, allowed=("draft",), revision=None) -> dict:
    """The plan's row, if its status is one of ``allowed`` (and, given ``revision``, it is at that
    revision); else :class:`PlanStateError` saying what to do."""
    rows = tx.query(f"SELECT {', '.join(_PLAN_COLUMNS)} FROM gridgeo_plans WHERE plan_id = ?", (plan_id,))
    if not rows:
        raise NotFound(f"there is no plan {plan_id}: see store.plans()")
    info = dict(zip(_PLAN_COLUMNS, rows[0]))
    status = info["status"]
    if status not in allowed:
        if status in ("published", "abandoned"):
            advice = "start a new plan from the published grids"
        elif status in ("submitted", "approved") and allowed == ("draft",):
            advice = "it is under review: withdraw it to draft (plan.withdraw) to change it"
        else:
            advice = f"only a plan that is {' or '.join(allowed)} can be"
        raise PlanStateError(f"cannot {doing} plan {plan_id} ({info['name']!r}): it is {status} "
                             f"(revision {info['revision']}); {advice}")
    if revision is not None:
        edited = _edited_revision(tx, plan_id)
        if edited != int(revision):
            raise PlanStateError(f"cannot {doing} plan {plan_id} ({info['name']!r}) as of revision {revision}: its "
                                 f"units have changed since (revision {edited}). Read it, and its report, again")
    return info


_EDITS = ("create", "save", "rebase")
"""The log's actions that change a plan's units (the review's steps do not)."""


def _edited_revision(query, plan_id) -> int:
    rows = query.query(f"SELECT MAX(revision) FROM gridgeo_plan_log WHERE plan_id = ? AND action IN "
                       f"({', '.join('?' * len(_EDITS))})", (plan_id, *_EDITS))
    return int(rows[0][0] or 0)


def _acknowledged(message: str, report: str | None) -> str:
    """A log message, with the version of the report acknowledged."""
    if not report:
        return message
    return f"{message} [report {report} acknowledged]".strip()


def _revision_times(tx, revisions) -> dict:
    wanted = sorted({int(r) for r in revisions if r is not None})
    out = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        out.update(tx.query(f"SELECT revision, at FROM gridgeo_revisions WHERE revision IN "
                            f"({', '.join('?' * len(chunk))})", chunk))
    return out


def _stale(code, stated, stored, removed, times, *, exists_required) -> list[dict]:
    """The conflict (a list of one) if an edit of ``code`` based on ``stated`` is stale."""
    if code in stored:
        revision, author, _ = stored[code]
        if stated is None:
            return [dict(code=code, based_on=None, revision=revision, author=author, at=times.get(revision),
                         change="unstated")]
        if revision > stated:
            return [dict(code=code, based_on=stated, revision=revision, author=author, at=times.get(revision),
                         change="changed" if stated else "added")]
        return []
    if code in removed:
        revision, author, at, _ = removed[code]
        if exists_required or (stated is not None and revision > stated):
            return [dict(code=code, based_on=stated, revision=revision, author=author, at=at, change="removed")]
    return []


def _stale_message(plan_id, name, conflicts) -> str:
    parts = []
    for c in conflicts[:10]:
        when = f" at {c['at'][:19].replace('T', ' ')} UTC" if c.get("at") else ""
        if c["change"] == "unstated":
            parts.append(f"unit {c['code']} exists in the plan (revision {c['revision']}, by {c['author']}{when}): "
                         "say which revision your edit is based on (a revision column, or base_revision=)")
        else:
            verb = {"changed": "changed", "added": "added", "removed": "removed"}[c["change"]]
            parts.append(f"unit {c['code']} was {verb} by {c['author']}{when} in revision {c['revision']}, "
                         f"after revision {c['based_on']} your edit is based on")
    more = f" (and {len(conflicts) - 10} more)" if len(conflicts) > 10 else ""
    return (f"nothing saved in plan {plan_id} ({name!r}): " + "; ".join(parts) + more
            + ". Read the plan again, redo your change on the current units and save it")


def _conflict(code, what, published) -> dict:
    revision, author = published.get(code, (None, None))
    by = f" (published revision {revision} by {author})" if revision is not None else ""
    return dict(code=code, revision=revision, author=author, change=what, message=f"unit {code} {what}{by}")


def _delete_codes(tx, table, plan_id, codes):
    codes = list(codes)
    for start in range(0, len(codes), 500):
        chunk = codes[start:start + 500]
        tx.execute(f"DELETE FROM {table} WHERE plan_id = ? AND code IN ({', '.join('?' * len(chunk))})",
                   [plan_id, *chunk])


def _touch(tx, plan_id, revision):
    tx.execute("UPDATE gridgeo_plans SET revision = ?, updated_at = ? WHERE plan_id = ?",
               (revision, now(), plan_id))


def _refuse_if_published_since(tx, info, where, params):
    base = int(info["base_revision"])
    rows = tx.query(
        f"SELECT code, revision, author FROM grids WHERE {where} AND revision > ? "
        f"UNION SELECT code, retired, retired_by FROM grids_history WHERE {where} AND retired > ? "
        "ORDER BY 2, 1", [*params, base, *params, base])
    if not rows:
        return
    plans = dict(tx.query("SELECT r.revision, p.name FROM gridgeo_revisions r JOIN gridgeo_plans p "
                          "ON p.plan_id = r.plan_id WHERE r.revision > ?", (base,)))
    conflicts = [dict(code=c, revision=r, author=a, plan=plans.get(r)) for c, r, a in rows]
    first = conflicts[0]
    how = f" (plan {first['plan']!r})" if first["plan"] else ""
    raise ConflictError(
        f"plan {info['plan_id']} ({info['name']!r}) was not published: {len(conflicts)} of the units it "
        f"replaces changed since its base revision {base}, first {first['code']} by {first['author']} in "
        f"revision {first['revision']}{how}. Rebase it (plan.rebase(author=...)), check it, and publish "
        "again", conflicts)


def _validate(store, tx, info, units):
    """Refuse the publish if the grids under the parent, after it, fail validation."""
    report = _after_report(store, info, units, tx=tx)
    parent = info["parent"]
    errors = report[report["severity"] == "error"] if len(report) else report
    if len(errors):
        raise PublishError(
            f"plan {info['plan_id']} ({info['name']!r}) was not published: the grids under "
            f"{parent or 'the whole city'} would fail validation with {len(errors)} error(s): "
            f"{_describe(errors)}. Fix the plan's units and publish again (the report is in .report)",
            report)


def _after_report(store, info, units, tx=None):
    """:func:`gridgeo.validate` of the grids under the plan's parent as they would be after its publish."""
    from gridgeo.validation import validate

    parent, levels = info["parent"], info["levels"].split(",") if isinstance(info["levels"], str) else info["levels"]
    available = store.layer_columns("grids", tx=tx)
    names = list(available)
    conds, params = ["1 = 1"], []
    if parent:
        conds, params = ["code >= ? AND code < ?"], [parent, _layers.next_prefix(parent)]
    sql = (f"SELECT {store._db.geom_expr('geom')}, {', '.join(q(n) for n in names)} FROM grids "
           f"WHERE {conds[0]} ORDER BY code")
    current = store.frame_of((tx or store._db).query(sql, params), names, available)
    outside = ~(current["level"].isin(levels) & current["code"].str.startswith(parent))
    after = pd.concat([current[outside], units[names + ["geometry"]]], ignore_index=True)
    after = after.set_geometry("geometry").set_crs(current.crs, allow_override=True)
    # the plan's levels and those below them, whose units must still nest in the new ones
    order = store.scheme.names
    first = min(order.index(lv) for lv in levels)
    present = set(after["level"])
    return validate(after, levels=[lv for lv in order[first:] if lv in present] or None, scheme=store.scheme)


def _describe(errors, limit=5) -> str:
    parts = []
    for _, row in errors.head(limit).iterrows():
        parts.append(f"{row.get('code', '')}: {row.get('kind', '')} ({row.get('message_zh', '')} / "
                     f"{row.get('message_en', '')})")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more
