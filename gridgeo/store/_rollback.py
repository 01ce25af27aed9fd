"""Rollback: the published data as they were at an earlier revision, written as one new revision.

The rule (:meth:`Store.rollback` states it for users): a rollback to revision
``r`` makes the published rows of each layer it covers equal to the rows
published at ``r``, as ``store.read(layer, at=r)`` gives them. Rows are
matched by their key (a grid's code, a station's, address's or event's id, a
road segment's id): a row published at ``r`` that is gone or differs now (any
value, or the geometry in any coordinate) is written again as it was; a row
published now that was not at ``r`` is retired. Rows that already equal ``r``'s
are left alone, with their revision, so draft plans over other units go on
unaffected, and the audit trail's account of the rollback is exactly what it
put back.

Only rows written or retired after ``r`` can differ: a row published at ``r``
and not replaced since is the same row now. So each layer changed since ``r``
is compared in its database: its rows written since (the published rows with
a revision after ``r``) against its rows replaced since (the history rows
published at ``r`` and retired after it), matched by key and compared value
by value and geometry by geometry (:func:`gridgeo.store._audit.identical`).
Only the rows to write again are read; the rows to retire move to the history
in the database.

The steps, in one transaction: check the revision, compare, validate the
grids as they would be, retire and write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridgeo.store import _audit, _layers
from gridgeo.store._sql import q
from gridgeo.store.errors import ConflictError, RollbackError

_CHUNK = 500  # row ids per IN (...) list
_ONE_PASS = 20_000  # from this many rows to retire, one pass of the condition instead of lists of ids


@dataclass
class Change:
    """What a rollback does to one layer (or to some grid levels)."""

    kind: str
    key: str
    levels: list[str] | None
    to: int
    columns: list[str] = field(default_factory=list)  # the layer's columns
    added: int = 0  # rows of `to` written again whose key is not published now
    changed: int = 0  # rows of `to` written again in place of another row of their key
    removed: int = 0  # rows published now whose key was not published at `to`
    restored: object = None  # grids: the units written again (a GeoDataFrame)
    units: dict = field(default_factory=dict)  # grids: {"added", "changed", "removed"} codes
    level_of: dict = field(default_factory=dict)  # grids: code -> level, of the units touched
    parents_of: dict = field(default_factory=dict)  # grids: code -> its parents now and at `to`
    name_of: dict = field(default_factory=dict)  # grids: code -> its name at `to` (now, for one removed)
    now_count: int = 0  # rows published now (in the levels covered)
    then_count: int = 0  # rows published at `to`

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def counts(self) -> dict:
        return {"added": self.added, "changed": self.changed, "removed": self.removed}


# --- the public steps ---------------------------------------------------------------------------


def preview(store, to, *, layers=None) -> dict:
    """What :func:`rollback` would do now, written nowhere (see :meth:`Store.rollback_preview`)."""
    to = check_revision(store, store._db.query, to)
    selection = select(store, layers)
    version, revision = store.version, store.revision  # before the reads: a change after them moves the version
    changes = compare(store, None, to, selection)
    report = grid_report(store, None, changes)
    errors = report[report["severity"] == "error"] if report is not None and len(report) else None
    out = {"to": to, "version": version, "revision": revision, **account(store, changes),
           "names": {code: name for c in changes for code, name in c.name_of.items()},
           "plans": overtaken(store, None, changes), "errors": _error_records(errors)}
    if not any(changes):
        out["refusal"] = _nothing(to).to_dict()
    elif _emptied(changes):
        out["refusal"] = _no_grids(to).to_dict()
    elif errors is not None and len(errors):
        out["refusal"] = _invalid(to, errors, report).to_dict()
    return out


def rollback(store, to, *, author: str, message: str = "", layers=None, base_version: int | None = None) -> int:
    """One new revision whose published data equal revision ``to``'s (see :meth:`Store.rollback`)."""
    to = check_revision(store, store._db.query, to)
    selection = select(store, layers)
    if base_version is not None and (isinstance(base_version, bool) or not isinstance(base_version, (int, np.integer))):
        raise ValueError(f"base_version must be a data version (a whole number), got {base_version!r}")
    with store.transaction(author=author, action="rollback", message=message) as (tx, revision, record):
        check_revision(store, tx.query, to)
        if base_version is not None:
            _refuse_if_moved(tx, int(base_version))
        changes = compare(store, tx, to, selection)
        if not any(changes):
            raise _nothing(to)
        if _emptied(changes):
            raise _no_grids(to)
        report = grid_report(store, tx, changes)
        if report is not None and len(report):
            errors = report[report["severity"] == "error"]
            if len(errors):
                raise _invalid(to, errors, report)
        plans = overtaken(store, tx, changes)
        for change in changes:
            if change:
                _apply(store, tx, change, revision, author)
        asked = None if layers is None else [layers] if isinstance(layers, str) else [str(n) for n in layers]
        record["what"] = {"to": to, **({"plans": plans} if plans else {}),
                          **({"layers_asked": asked} if asked is not None else {})}
    return revision


# --- checks -------------------------------------------------------------------------------------


def check_revision(store, run, to) -> int:
    """``to`` as a revision of the store, or :class:`RollbackError` ``not_a_revision``."""
    if isinstance(to, bool) or not isinstance(to, (int, np.integer)):
        raise TypeError(f"to= must be a revision number (see store.revisions()), got {to!r}")
    to = int(to)
    latest = int(run("SELECT value FROM gridgeo_meta WHERE key = 'revision'")[0][0])
    exists = to == 0 or bool(run("SELECT 1 FROM gridgeo_revisions WHERE revision = ?", (to,)))
    if to < 0 or to > latest or not exists:
        raise RollbackError(
            "not_a_revision",
            f"{store.url} has no revision {to}: its revisions are 0 (empty) to {latest}; see store.revisions() "
            "or `gridgeo revisions` for when each was made and by whom. Nothing was changed",
            f"{store.url} 没有版本 {to}：现有版本为 0（空）至 {latest}，"
            "请用 `gridgeo revisions` 查看各版本的时间和作者。未作任何修改", to=to)
    return to


def select(store, layers) -> dict[str, list[str] | None]:
    """``{kind: levels or None}`` of the layers a rollback covers (every kind by default)."""
    if layers is None:
        return {kind: None for kind in _layers.KINDS}
    if isinstance(layers, str):
        layers = [layers]
    out: dict[str, list[str] | None] = {}
    for name in layers:
        kind, levels = _layers.resolve(str(name), store.scheme.names)
        if kind in out and (out[kind] is None or levels is None):
            out[kind] = None
        elif levels is not None:
            out[kind] = sorted({*(out.get(kind) or []), *levels}, key=store.scheme.names.index)
        else:
            out[kind] = None
    if not out:
        raise ValueError("layers= names no layer: give some of grids, stations, addresses, events, roads "
                         "or grid levels, or None for all")
    return out


def _refuse_if_moved(tx, base_version: int) -> None:
    rows = tx.query("SELECT r.revision, r.author, r.action, r.at FROM gridgeo_revisions r WHERE r.revision > ? "
                    "AND r.revision IN (SELECT revision FROM gridgeo_changes) ORDER BY r.revision", (base_version,))
    if not rows:
        return
    conflicts = [dict(revision=int(r), author=a, action=act, at=at) for r, a, act, at in rows]
    first = conflicts[0]
    raise ConflictError(
        f"the rollback was not made: the published data changed since version {base_version} you looked at "
        f"({len(conflicts)} revision(s), first {first['revision']}, a {first['action']} by {first['author']}). "
        "Look at what a rollback would change now (store.rollback_preview) and confirm again / 回退未执行："
        f"您查看的版本 {base_version} 之后已发布了新的修改（{len(conflicts)} 个版本，首个为 {first['author']} 的"
        f"{first['action']}，版本 {first['revision']}），请重新查看回退的影响后再确认", conflicts)


def _nothing(to) -> RollbackError:
    return RollbackError(
        "nothing_to_change",
        f"nothing would change: the published data already equal revision {to}'s. No revision was written",
        f"无需回退：已发布的数据与版本 {to} 完全相同，未写入新版本", to=to)


def _no_grids(to) -> RollbackError:
    return RollbackError(
        "no_grids",
        f"revision {to} has no grids, so a rollback to it would remove every published grid, which every map, "
        "figure and plan stands on. Roll back to a revision that has grids, or roll back the other layers only "
        "(layers=[...]). Nothing was changed",
        f"版本 {to} 没有网格，回退将删除全部已发布网格（地图、统计和方案都依赖网格）。请回退到有网格的版本，"
        "或只回退其他图层（layers=[...]）。未作任何修改", to=to)


def _invalid(to, errors, report) -> RollbackError:
    from gridgeo.store._grid_load import describe

    return RollbackError(
        "invalid_result",
        f"the grids after a rollback to revision {to} would fail validation with {len(errors)} error(s): "
        f"{describe(errors)}. Nothing was changed; fix the grids with a plan, or roll back to another revision "
        "(the whole report is in .report)",
        f"回退到版本 {to} 后网格将有 {len(errors)} 处校验错误，未作任何修改；请用方案修正网格，或回退到其他版本",
        to=to, report=report)


def _emptied(changes) -> bool:
    """Whether the rollback would leave no grid at all."""
    grids = next((c for c in changes if c.kind == "grids" and c.levels is None), None)
    return grids is not None and grids.now_count > 0 and grids.then_count == 0


def _error_records(errors) -> list[dict]:
    if errors is None or not len(errors):
        return []
    keep = [c for c in ("code", "level", "kind", "severity", "message_zh", "message_en") if c in errors.columns]
    return [{k: (None if pd.isna(v) else str(v)) for k, v in row.items()}
            for row in pd.DataFrame(errors[keep]).to_dict("records")]


# --- comparing ----------------------------------------------------------------------------------


def _scope(alias: str, levels) -> tuple[str, list]:
    """`` AND level IN (...)`` for the grid levels covered (nothing for a whole layer)."""
    if not levels:
        return "", []
    return f" AND {alias}.level IN ({', '.join('?' * len(levels))})", list(levels)


def to_restore(change: Change, outer: str, to: int) -> tuple[str, list]:
    """(SQL condition, params) on the history table, referred to as ``outer``: its rows published
    at ``to`` and replaced since, that no published row equals. They are written again."""
    kind = q(change.kind)
    scope, params = _scope(outer, change.levels)
    same = _audit.identical("n", outer, change.columns, change.key)
    return (f"{outer}.revision <= ? AND {outer}.retired > ?{scope} AND NOT EXISTS "
            f"(SELECT 1 FROM {kind} n WHERE {same})", [to, to, *params])


def to_retire(change: Change, outer: str, to: int) -> tuple[str, list]:
    """(SQL condition, params) on the layer's table, referred to as ``outer``: its rows written
    since ``to`` that no row published at ``to`` equals. They go to the history."""
    history = q(change.kind + "_history")
    scope, params = _scope(outer, change.levels)
    same = _audit.identical(outer, "o", change.columns, change.key)
    return (f"{outer}.revision > ?{scope} AND NOT EXISTS (SELECT 1 FROM {history} o WHERE o.revision <= ? "
            f"AND o.retired > ? AND {same})", [to, *params, to, to])


def compare(store, tx, to: int, selection: dict) -> list[Change]:
    """Each covered layer now and at ``to``, compared in the database."""
    out = []
    run = tx.query if tx is not None else store._db.query
    for kind, levels in selection.items():
        change = Change(kind=kind, key=_audit.layer_key(store, kind, tx), levels=levels, to=to,
                        columns=list(store.layer_columns(kind, tx=tx)))
        out.append(change)
        last = run("SELECT MAX(revision) FROM gridgeo_changes WHERE layer = ?", (kind,))[0][0]
        if int(last or 0) <= to:  # not changed since: the same rows
            continue
        table, history, key = q(kind), q(kind + "_history"), q(change.key)
        restore, restore_params = to_restore(change, "h", to)
        retire, retire_params = to_retire(change, "k", to)
        published_now = f"EXISTS (SELECT 1 FROM {table} n WHERE n.{key} = h.{key})"
        published_then = f"EXISTS (SELECT 1 FROM {history} o WHERE o.{key} = k.{key} AND o.revision <= ? " \
                         "AND o.retired > ?)"
        if kind == "grids":
            back = run(f"SELECT h.code, h.level, h.parent, CASE WHEN {published_now} THEN 1 ELSE 0 END, h.name "
                       f"FROM {history} h WHERE {restore}", restore_params)
            gone = run(f"SELECT k.code, k.level, k.parent, CASE WHEN {published_then} THEN 1 ELSE 0 END, k.name "
                       f"FROM {table} k WHERE {retire}", [to, to, *retire_params])
            change.units = {"added": sorted(c for c, _, _, now, _ in back if not now),
                            "changed": sorted(c for c, _, _, now, _ in back if now),
                            "removed": sorted(c for c, _, _, then, _ in gone if not then)}
            change.added, change.changed, change.removed = (len(change.units[w]) for w in
                                                            ("added", "changed", "removed"))
            for code, level, parent, _, name in (*back, *gone):
                change.level_of[code] = level
                change.parents_of.setdefault(code, set()).add(parent)
                change.name_of.setdefault(code, name)  # `back` first: the name the rollback restores
            if change:
                change.restored = _read(store, tx, change)
        else:
            n, present = run(f"SELECT COUNT(*), SUM(CASE WHEN {published_now} THEN 1 ELSE 0 END) "
                             f"FROM {history} h WHERE {restore}", restore_params)[0]
            change.changed = int(present or 0)
            change.added = int(n) - change.changed
            change.removed = int(run(f"SELECT COUNT(*) FROM {table} k WHERE {retire} AND NOT {published_then}",
                                     [*retire_params, to, to])[0][0])
        scope, params = _scope(table, levels)
        change.now_count = int(run(f"SELECT COUNT(*) FROM {table} WHERE 1 = 1{scope}", params)[0][0])
        change.then_count = store.count(kind, level=levels, at=to)
    return out


def _read(store, tx, change: Change):
    """The rows to write again (:func:`to_restore`), as a frame."""
    kinds = store.layer_columns(change.kind, tx=tx)
    names = list(kinds)
    history = q(change.kind + "_history")
    condition, params = to_restore(change, history, change.to)
    run = tx.query if tx is not None else store._db.query
    rows = run(f"SELECT {store._db.geom_expr('geom')}, {', '.join(q(c) for c in names)} FROM {history} "
               f"WHERE {condition} ORDER BY {q(change.key)}", params)
    return store.frame_of(rows, names, kinds)


# --- validating -----------------------------------------------------------------------------------


def grid_report(store, tx, changes):
    """The :func:`gridgeo.validate` report of the grids after the rollback, on the part it
    touches, or None when it leaves the grids alone.

    Level by level, as a load of that level would be judged: the units of the level it
    writes or retires, their parents (now and at ``to``), every unit of those parents (so
    that a parent's coverage is judged on all its units) and the units inside the touched
    ones, checked at the level and the levels below it there.
    """
    from gridgeo.validation import validate

    change = next((c for c in changes if c.kind == "grids" and c), None)
    if change is None:
        return None
    current = store.read("grids").drop(columns=["revision"])
    gone = set(change.units["changed"]) | set(change.units["removed"])
    kept = current[~current["code"].isin(gone).to_numpy()]
    restored = change.restored
    parts = [p for p in (kept, restored) if len(p)]
    if not parts:
        return None
    after = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    after = after.set_geometry("geometry").set_crs(current.crs, allow_override=True)
    level_of = change.level_of
    touched = set(level_of)
    names = store.scheme.names
    reports = []
    for level in sorted({level_of[c] for c in touched}, key=lambda lv: names.index(lv) if lv in names else 99):
        units = {c for c in touched if level_of[c] == level}
        around = units | {p for c in units for p in change.parents_of.get(c, ()) if p}
        part = after[(after["code"].isin(around) | after["parent"].isin(around)).to_numpy()]
        levels = {level} | set(part.loc[part["parent"].isin(units), "level"])
        report = validate(part, levels=[lv for lv in names if lv in levels], scheme=store.scheme,
                          name="the grids after the rollback")
        if len(report):
            reports.append(report)
    if not reports:
        return None
    report = pd.concat(reports, ignore_index=True) if len(reports) > 1 else reports[0]
    keys = report[[c for c in ("kind", "code", "codes", "level", "parent") if c in report.columns]].astype(str)
    return report[~keys.duplicated().to_numpy()].reset_index(drop=True)


# --- what it does, in the audit trail's terms -----------------------------------------------------------


def account(store, changes) -> dict:
    """``layers``, ``levels`` and ``units`` of what the rollback changes, as the audit trail counts them."""
    out: dict = {"layers": {}}
    for change in changes:
        if not change:
            continue
        out["layers"][change.kind] = change.counts()
        if change.kind == "grids":
            levels: dict = {}
            for what, codes in change.units.items():
                for code in codes:
                    levels.setdefault(change.level_of[code], {"added": 0, "changed": 0, "removed": 0})[what] += 1
            names = store.scheme.names
            out["levels"] = {lv: levels[lv] for lv in sorted(levels, key=lambda lv: names.index(lv)
                                                             if lv in names else 99)}
            out["units"] = {what: list(codes) for what, codes in change.units.items()}
    return out


def overtaken(store, tx, changes) -> list[dict]:
    """Plans not yet published or abandoned whose units the rollback changes: their publish will
    be refused as stale until they are rebased (the rollback is a publish since their base)."""
    change = next((c for c in changes if c.kind == "grids" and c), None)
    if change is None:
        return []
    run = tx.query if tx is not None else store._db.query
    touched = change.level_of
    out = []
    for plan_id, name, parent, levels, status, author in run(
            "SELECT plan_id, name, parent, levels, status, author FROM gridgeo_plans "
            "WHERE status NOT IN ('published', 'abandoned') ORDER BY plan_id"):
        levels = levels.split(",")
        units = sorted(c for c, lv in touched.items() if lv in levels and c.startswith(parent))
        if units:
            out.append({"plan_id": int(plan_id), "name": name, "status": status, "author": author,
                        "units": units})
    return out


# --- writing ---------------------------------------------------------------------------------------


def _apply(store, tx, change: Change, revision: int, author: str) -> None:
    """Retire the rows written since ``to`` that differ from ``to``'s, and write ``to``'s again."""
    restored = change.restored if change.restored is not None else _read(store, tx, change)
    retire, params = to_retire(change, q(change.kind), change.to)
    fids = [int(r[0]) for r in tx.query(f"SELECT fid FROM {q(change.kind)} WHERE {retire}", params)]
    if len(fids) >= _ONE_PASS:  # many rows: one pass over the table (and one rebuild of its spatial index)
        store.retire(tx, change.kind, [retire], params, revision, author)
    else:  # a few: by row id, so that the test runs once and the spatial index is updated row by row
        for start in range(0, len(fids), _CHUNK):
            chunk = fids[start:start + _CHUNK]
            store.retire(tx, change.kind, [f"fid IN ({', '.join('?' * len(chunk))})"], chunk, revision, author)
    if len(restored):
        kinds = store.layer_columns(change.kind, tx=tx)
        data = restored.assign(revision=revision, author=author)
        store._db.insert(tx, change.kind, data, {**kinds, **_layers.SYSTEM}, progress=False)
    store.record_change(tx, revision, change.kind, change.added + change.changed + change.removed)
