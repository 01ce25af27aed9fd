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

The steps, in one transaction: check the revision, read each layer now and at
``r``, compare, validate the grids as they would be, retire and write.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gridgeo.store import _audit, _layers
from gridgeo.store._sql import q
from gridgeo.store.errors import ConflictError, RollbackError

_CHUNK = 500


@dataclass
class Change:
    """What a rollback does to one layer (or to some grid levels)."""

    kind: str
    key: str
    levels: list[str] | None
    restored: object  # GeoDataFrame: the rows of `to` written again (added and changed)
    added: list = field(default_factory=list)
    changed: list = field(default_factory=list)
    removed: list = field(default_factory=list)
    whole: bool = False  # the keys do not name rows one to one: every row is retired, every row of `to` written
    now_count: int = 0  # rows published now (in the levels covered)
    then_count: int = 0  # rows published at `to`
    now_levels: dict = field(default_factory=dict)  # grids: code -> level, now
    then_levels: dict = field(default_factory=dict)  # grids: code -> level, at `to`
    parents_of: dict = field(default_factory=dict)  # grids: code -> its parents now and at `to`

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def counts(self) -> dict:
        return {"added": len(self.added), "changed": len(self.changed), "removed": len(self.removed)}


# --- the public steps ---------------------------------------------------------------------------


def preview(store, to, *, layers=None) -> dict:
    """What :func:`rollback` would do now, written nowhere (see :meth:`Store.rollback_preview`)."""
    to = check_revision(store, store._db.query, to)
    selection = select(store, layers)
    changes = compare(store, None, to, selection)
    report = grid_report(store, None, changes)
    errors = report[report["severity"] == "error"] if report is not None and len(report) else None
    out = {"to": to, "version": store.version, "revision": store.revision, **account(store, changes),
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


def compare(store, tx, to: int, selection: dict) -> list[Change]:
    """Each covered layer now and at ``to``, compared row by row."""
    out = []
    for kind, levels in selection.items():
        key = _audit.layer_key(store, kind, tx)
        now = store.read(kind, level=levels)
        then = store.read(kind, level=levels, at=to)
        kinds = store.layer_columns(kind, tx=tx)
        change = Change(kind=kind, key=key, levels=levels, restored=then.iloc[:0], now_count=len(now),
                        then_count=len(then))
        if kind == "grids":
            change.now_levels = dict(zip(now["code"], now["level"]))
            change.then_levels = dict(zip(then["code"], then["level"]))
        if _one_to_one(now, key) and _one_to_one(then, key):
            differs = _layers.changed_rows(now, then, kinds, key)
            now_keys = set(now[key])
            then_keys = then[key].to_numpy()
            change.added = sorted(k for k in then_keys[differs] if k not in now_keys)
            change.changed = sorted(k for k in then_keys[differs] if k in now_keys)
            change.removed = sorted(now_keys - set(then_keys))
            change.restored = then[differs]
        elif not _same_rows(now, then, kinds):
            change.whole = True
            change.added, change.removed = [str(k) for k in then[key]], [str(k) for k in now[key]]
            change.restored = then
        if kind == "grids" and change:
            touched = set(change.added) | set(change.changed) | set(change.removed)
            for frame in (now, then):
                rows = frame[frame["code"].isin(touched).to_numpy()]
                for code, parent in zip(rows["code"], rows["parent"]):
                    change.parents_of.setdefault(code, set()).add(parent)
        out.append(change)
    return out


def _one_to_one(frame, key) -> bool:
    return key in frame.columns and not frame[key].isna().any() and frame[key].is_unique


def _same_rows(now, then, kinds) -> bool:
    """Whether two frames hold the same rows in any order (for layers whose keys repeat)."""
    if len(now) != len(then):
        return False
    return sorted(_row_texts(now, kinds)) == sorted(_row_texts(then, kinds))


def _row_texts(frame, kinds) -> list[str]:
    import shapely

    columns = sorted(c for c in kinds if c in frame.columns)
    values = [_layers.values(frame[c], kinds[c], iso_times=True) for c in columns]
    wkb = shapely.to_wkb(frame.geometry.array, hex=True)
    return [repr((*row, g)) for row, g in zip(zip(*values), wkb)] if columns else list(map(str, wkb))


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
    gone = set(change.now_levels) if change.whole else set(change.changed) | set(change.removed)
    kept = current[~current["code"].isin(gone).to_numpy()]
    restored = change.restored.drop(columns=["revision"])
    parts = [p for p in (kept, restored) if len(p)]
    if not parts:
        return None
    after = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    after = after.set_geometry("geometry").set_crs(current.crs, allow_override=True)
    level_of = {**change.now_levels, **change.then_levels}
    touched = set(change.added) | set(change.changed) | set(change.removed)
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
            for what, codes in (("added", change.added), ("changed", change.changed), ("removed", change.removed)):
                for code in codes:
                    level = (change.then_levels if what != "removed" else change.now_levels)[code]
                    levels.setdefault(level, {"added": 0, "changed": 0, "removed": 0})[what] += 1
            names = store.scheme.names
            out["levels"] = {lv: levels[lv] for lv in sorted(levels, key=lambda lv: names.index(lv)
                                                             if lv in names else 99)}
            out["units"] = {"added": list(change.added), "changed": list(change.changed),
                            "removed": list(change.removed)}
    return out


def overtaken(store, tx, changes) -> list[dict]:
    """Plans not yet published or abandoned whose units the rollback changes: their publish will
    be refused as stale until they are rebased (the rollback is a publish since their base)."""
    change = next((c for c in changes if c.kind == "grids" and c), None)
    if change is None:
        return []
    run = tx.query if tx is not None else store._db.query
    touched = {c: change.now_levels.get(c) or change.then_levels.get(c)
               for c in (*change.added, *change.changed, *change.removed)}
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
    kind, key = change.kind, change.key
    scope, params = ([f"level IN ({', '.join('?' * len(change.levels))})"], list(change.levels)) \
        if change.levels else ([], [])
    gone = [*change.changed, *change.removed]
    if change.whole or len(gone) == change.now_count:  # every row goes: no list of keys needed
        store.retire(tx, kind, scope, params, revision, author)
    else:
        for start in range(0, len(gone), _CHUNK):
            chunk = gone[start:start + _CHUNK]
            store.retire(tx, kind, [*scope, f"{q(key)} IN ({', '.join('?' * len(chunk))})"], [*params, *chunk],
                         revision, author)
    if len(change.restored):
        kinds = store.layer_columns(kind, tx=tx)
        data = change.restored.drop(columns=["revision"]).assign(revision=revision, author=author)
        store._db.insert(tx, kind, data, {**kinds, **_layers.SYSTEM}, progress=False)
    store.record_change(tx, revision, kind, len(change.added) + len(change.changed) + len(change.removed))
