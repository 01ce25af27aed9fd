"""The audit trail of a store: who changed what, and when.

Every write of the store (a load, a plan's creation, save, rebase, submission,
withdrawal, return, approval, publish or abandonment, a rollback, a region or
scheme recorded) leaves one entry in ``gridgeo_audit``, written in the write's
own transaction: an entry exists exactly when its change does. A step that
writes nothing in the store but must be on record (a pre-publish report
viewed, an export) is an entry of its own (:meth:`Store.audit_record`),
without a revision.

An entry holds who (``author``), when (``at``, UTC), the ``action``, the
``revision`` written (none for a step put on record), the ``plan_id``, the
``message`` and ``what``, a JSON object:

``layers``
    for each published layer the revision changed, its rows ``added``,
    ``changed`` and ``removed``. Rows are matched by their key (a grid's code,
    a station's, address's or event's id, a road segment's id): *added* is a
    key the revision wrote that was not published before it, *removed* a key it
    retired and did not write again, *changed* a key it wrote again with other
    values or another geometry. A row written again exactly as it was (a load
    of a file whose other rows changed) counts in none.
``levels``, ``units``
    for grids, the same per level, and the codes of the units added, changed
    and removed.
``plan``
    for a plan's step, the plan's units it touched (``units``) and the plan
    log's note (``log``).
and whatever the step adds: a rollback's ``to`` and the draft ``plans`` it
overtook, the fields of a step put on record.

The counts come from the store's own tables (the rows a revision wrote, and
the rows it retired into the history), so they hold for any writer, and an
older store gets the same entries for its past revisions when it is migrated.
"""

from __future__ import annotations

import json

import pandas as pd

from gridgeo.store import _layers
from gridgeo.store._sql import q, utc_text

__all__ = ["STORE_ACTIONS", "COLUMNS", "changes", "entry_what", "write", "backfill", "read", "describe",
           "layer_key"]

STORE_ACTIONS = ("load", "publish", "rollback", "create-plan", "save-plan", "rebase-plan", "abandon-plan",
                 "submit-plan", "withdraw-plan", "return-plan", "approve-plan", "set-region", "set-scheme")
"""What the store records by itself when it happens: never put on record by hand."""

COLUMNS = ["entry", "at", "author", "action", "revision", "plan_id", "message", "what", "summary"]
"""The columns of :meth:`Store.audit`."""

_CHUNK = 500


def layer_key(store, kind: str, tx=None) -> str:
    """The column that matches a layer's rows across revisions: its key, and a road
    segment's own id (several segments make one road)."""
    if kind == "roads" and "segment_id" in store.layer_columns("roads", tx=tx):
        return "segment_id"
    return _layers.KEYS[kind]


# --- what a revision changed ---------------------------------------------------------------


def changes(store, tx, revision: int) -> dict:
    """``{"layers": ..., "levels": ..., "units": ...}`` of what ``revision`` changed
    in the published layers (empty when it changed none), from the store's tables."""
    run = tx.query if tx is not None else store._db.query
    kinds = [r[0] for r in run("SELECT layer FROM gridgeo_changes WHERE revision = ? ORDER BY layer", (revision,))]
    out: dict = {}
    for kind in kinds:
        if kind == "grids":
            counts, levels, units = _grid_changes(store, tx, run, revision)
            out["levels"], out["units"] = levels, units
        else:
            counts = _row_changes(store, tx, run, kind, revision)
        out.setdefault("layers", {})[kind] = counts
    return out


def _written(kind: str) -> str:
    """SQL of ``{cols}`` of the rows a revision wrote, current or retired since (two parameters:
    the revision twice)."""
    return (f"SELECT {{cols}} FROM {q(kind)} WHERE revision = ? UNION ALL "
            f"SELECT {{cols}} FROM {q(kind + '_history')} WHERE revision = ?")


def _grid_changes(store, tx, run, revision):
    sql = _written("grids")
    new = dict(run(sql.format(cols="code, level"), (revision, revision)))
    old = dict(run("SELECT code, level FROM grids_history WHERE retired = ?", (revision,)))
    differ = set(_differing(store, tx, run, "grids", "code", revision))
    added = sorted(new.keys() - old.keys())
    removed = sorted(old.keys() - new.keys())
    changed = sorted(c for c in new.keys() & old.keys() if c in differ)
    levels: dict = {}
    for what, codes, level_of in (("added", added, new), ("changed", changed, new), ("removed", removed, old)):
        for code in codes:
            entry = levels.setdefault(level_of[code], {"added": 0, "changed": 0, "removed": 0})
            entry[what] += 1
    order = store.scheme.names
    levels = {lv: levels[lv] for lv in sorted(levels, key=lambda lv: (order.index(lv) if lv in order else 99, lv))}
    counts = {"added": len(added), "changed": len(changed), "removed": len(removed)}
    return counts, levels, {"added": added, "changed": changed, "removed": removed}


def _row_changes(store, tx, run, kind, revision) -> dict:
    key = layer_key(store, kind, tx)
    sql = _written(kind)
    written = sum(int(r[0]) for r in run(sql.format(cols="COUNT(*)"), (revision, revision)))
    retired = int(run(f"SELECT COUNT(*) FROM {q(kind + '_history')} WHERE retired = ?", (revision,))[0][0])
    both = differ = 0
    if written and retired:  # one pass per table: the keys written again, and which of them differ
        same = identical("n", "o", store.layer_columns(kind, tx=tx), key)
        for table in (kind, kind + "_history"):
            n, d = run(f"SELECT COUNT(*), SUM(CASE WHEN {same} THEN 0 ELSE 1 END) FROM {q(table)} n "
                       f"JOIN {q(kind + '_history')} o ON o.{q(key)} = n.{q(key)} AND o.retired = ? "
                       "WHERE n.revision = ?", (revision, revision))[0]
            both, differ = both + int(n), differ + int(d or 0)
    return {"added": max(written - both, 0), "changed": differ, "removed": max(retired - both, 0)}


def _differing(store, tx, run, kind, key, revision) -> list[str]:
    """Keys the revision wrote again with other values or another geometry than the row it retired."""
    same = identical("n", "o", store.layer_columns(kind, tx=tx), key)
    out = []
    for table in (kind, kind + "_history"):
        out += [r[0] for r in run(
            f"SELECT n.{q(key)} FROM {q(table)} n JOIN {q(kind + '_history')} o ON o.{q(key)} = n.{q(key)} "
            f"AND o.retired = ? WHERE n.revision = ? AND NOT ({same})", (revision, revision))]
    return out


def identical(a: str, b: str, columns, key: str) -> str:
    """SQL that is true when rows ``a`` and ``b`` (table names or aliases) have the same key, the
    same value in every one of ``columns`` and the same geometry, false otherwise (never NULL, in
    either database). Values and geometries compare as stored: the bytes of a GeoPackage blob,
    PostGIS's exact ``=`` (every coordinate, in order)."""
    parts = [f"{a}.{q(key)} = {b}.{q(key)}"]
    parts += [same(f"{a}.{q(c)}", f"{b}.{q(c)}") for c in ["geom", *columns] if c != key]
    return " AND ".join(parts)


def same(a: str, b: str) -> str:
    """True when both are missing or both equal, false otherwise, never NULL."""
    return f"(({a} IS NULL AND {b} IS NULL) OR ({a} IS NOT NULL AND {b} IS NOT NULL AND {a} = {b}))"


def plan_step(run, plan_id, revision) -> dict | None:
    """The plan's units a plan step touched, and its log's note (None if the revision made no step)."""
    rows = run("SELECT action, message, codes FROM gridgeo_plan_log WHERE plan_id = ? AND revision = ?",
                           (plan_id, revision))
    if not rows:
        return None
    _action, message, codes = rows[0]
    return {"units": [c for c in (codes or "").split(",") if c], "log": message or ""}


def entry_what(store, tx, revision: int, plan_id, extra: dict | None = None) -> dict:
    """``what`` of the entry of a revision: its changes, its plan step, and ``extra``."""
    run = tx.query if tx is not None else store._db.query
    what = changes(store, tx, revision)
    if plan_id is not None:
        step = plan_step(run, plan_id, revision)
        if step is not None:
            what["plan"] = step
    what.update(extra or {})
    return what


# --- writing and reading ----------------------------------------------------------------------


def dumps(what: dict) -> str:
    if not isinstance(what, dict):
        raise TypeError(f"what= should be a dict of what the step did (e.g. {{'units': [...]}}), got "
                        f"{type(what).__name__}")
    try:
        return json.dumps(what, ensure_ascii=False, allow_nan=False)  # in order: levels top down
    except (TypeError, ValueError) as exc:
        raise TypeError(f"what= must hold only JSON values (text, numbers, lists, dicts): {exc}") from None


def write(tx, *, at: str, author: str, action: str, revision, plan_id, message: str, what: dict) -> int:
    """Append an entry; its id."""
    rows = tx.query("INSERT INTO gridgeo_audit (at, author, action, revision, plan_id, message, what) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING entry",
                    (at, author, action, revision, plan_id, message or "", dumps(what)))
    return int(rows[0][0])


def backfill(store, tx) -> None:
    """Entries for the revisions a store held before it had an audit trail (the migration to 3)."""
    done = {int(r[0]) for r in tx.query("SELECT revision FROM gridgeo_audit WHERE revision IS NOT NULL")}
    for revision, at, author, action, plan_id, message in tx.query(
            "SELECT revision, at, author, action, plan_id, message FROM gridgeo_revisions ORDER BY revision"):
        if int(revision) in done:
            continue
        plan_id = None if plan_id is None else int(plan_id)
        write(tx, at=at, author=author, action=action, revision=int(revision), plan_id=plan_id,
              message=message or "", what=entry_what(store, tx, int(revision), plan_id))


def read(store, *, since=None, until=None, author=None, action=None, plan_id=None, revision=None) -> pd.DataFrame:
    conds, params = [], []
    if since is not None:
        conds.append("at >= ?")
        params.append(utc_text(since))
    if until is not None:
        conds.append("at < ?")
        params.append(utc_text(until))
    for column, value in (("author", author), ("action", action)):
        if value is None:
            continue
        values = [value] if isinstance(value, str) else [str(v) for v in value]
        conds.append(f"{column} IN ({', '.join('?' * len(values))})" if values else "1 = 0")
        params += values
    for column, value in (("plan_id", plan_id), ("revision", revision)):
        if value is not None:
            conds.append(f"{column} = ?")
            params.append(int(value))
    where = " AND ".join(conds) or "1 = 1"
    rows = store._db.query(f"SELECT entry, at, author, action, revision, plan_id, message, what FROM gridgeo_audit "
                           f"WHERE {where} ORDER BY entry", params)
    return frame(rows)


def frame(rows) -> pd.DataFrame:
    """The audit table from rows of (entry, at, author, action, revision, plan_id, message, what-JSON)."""
    columns = dict(zip(COLUMNS[:-1], map(list, zip(*rows)))) if rows else {c: [] for c in COLUMNS[:-1]}
    whats = [json.loads(w) if w else {} for w in columns["what"]]
    out = pd.DataFrame({
        "entry": pd.array([int(v) for v in columns["entry"]], dtype="int64"),
        "at": pd.to_datetime(pd.Series(columns["at"], dtype="str"), format="ISO8601", utc=True),
        **{col: pd.array(["" if v is None else str(v) for v in columns[col]], dtype="str")
           for col in ("author", "action")},
        **{col: pd.array([None if v is None else int(v) for v in columns[col]], dtype="Int64")
           for col in ("revision", "plan_id")},
        "message": pd.array(["" if v is None else str(v) for v in columns["message"]], dtype="str"),
        "what": pd.Series(whats, dtype=object),
        "summary": pd.array([describe(w) for w in whats], dtype="str"),
    })
    return out[COLUMNS]


# --- in words ---------------------------------------------------------------------------------


def describe(what: dict, *, codes: int = 6) -> str:
    """One line of what an entry did, for tables. The store's own fields are written out
    (``to``, ``layers``, ``units``, ``plan``, ``plans``, ``key``), any other as ``name: value``.

    Examples
    --------
    >>> describe({"to": 3, "layers": {"grids": {"added": 1, "changed": 2, "removed": 0}},
    ...           "units": {"added": ["A"], "changed": ["B", "C"], "removed": []}})
    'to revision 3; grids +1 ~2 -0; units A, B, C'
    >>> describe({"key": {"name": "王规划", "role": "planner"}})
    'key 王规划 (planner)'
    >>> describe({"units": 4, "report": "v2"})
    'units: 4; report: v2'
    """
    what = dict(what or {})
    parts = []

    def take(name, kind):
        if isinstance(what.get(name), kind):
            return what.pop(name)
        return None

    if "to" in what:
        parts.append(f"to revision {what.pop('to')}")
    for kind, c in (take("layers", dict) or {}).items():
        c = c if isinstance(c, dict) else {}
        parts.append(f"{kind} +{c.get('added', 0)} ~{c.get('changed', 0)} -{c.get('removed', 0)}")
    take("levels", dict)
    units = take("units", dict) or {}
    shown = [str(c) for name in ("added", "changed", "removed") for c in (units.get(name) or [])]
    if shown:
        more = f" (+{len(shown) - codes} more)" if len(shown) > codes else ""
        parts.append("units " + ", ".join(shown[:codes]) + more)
    plan = take("plan", dict)
    if plan:
        touched = len(plan.get("units") or [])
        text = plan.get("log") or (f"plan units {touched}" if touched else "")
        if text:
            parts.append(text)
    plans = take("plans", list)
    if plans:
        parts.append("draft plans overtaken: " + ", ".join(str(p.get("plan_id") if isinstance(p, dict) else p)
                                                           for p in plans))
    key = take("key", dict)
    if key:
        scope = key.get("scope")
        count = key.get("count", 1)
        parts.append(f"key {key.get('name', '')}" + (f" ({key['role']})" if key.get("role") else "")
                     + (f" scope {', '.join(map(str, scope))}" if scope else "")
                     + (f" x{count}" if count != 1 else ""))
    for name, value in what.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        parts.append(f"{name}: {text if len(text) <= 60 else text[:57] + '...'}")
    return "; ".join(parts)
