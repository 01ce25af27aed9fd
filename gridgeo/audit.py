"""The audit trail: who changed what, and when, in a store and in the service's API keys.

A store keeps its own trail, written in the transaction of every change
(:meth:`gridgeo.store.Store.audit`). The service's API keys are not in a store:
each key made or revoked (``gridgeo keys add`` / ``remove``) is appended to a log
beside the keys file, ``keys.json`` -> ``keys.log.jsonl``, one JSON object a
line (``at``, ``author``, ``action``, ``message``, ``what``), only ever
appended to, never a key or its digest. :func:`trail` reads both as one table.

Examples
--------
>>> import tempfile, os, gridgeo.audit
>>> keys = os.path.join(tempfile.mkdtemp(), "keys.json")
>>> _ = gridgeo.audit.record_key_change(keys, "key-add", "管理员", {"name": "王规划", "role": "planner"})
>>> gridgeo.audit.keys_log_path(keys).name
'keys.log.jsonl'
>>> gridgeo.audit.trail(keys_file=keys)[["source", "author", "action", "summary"]].values.tolist()
[['keys', '管理员', 'key-add', 'key 王规划 (planner)']]
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from gridgeo.store._audit import COLUMNS, dumps, frame
from gridgeo.store._sql import now, utc_text

__all__ = ["KEY_ACTIONS", "KeysLogError", "keys_log_path", "record_key_change", "key_changes", "trail", "COLUMNS"]

KEY_ACTIONS = ("key-add", "key-remove")
"""The actions of the keys log (a role or scope changed is a key removed and made again)."""


class KeysLogError(ValueError):
    """A line of the keys' audit log is not an entry (edited by hand, or cut short); the message
    names the file and the line."""


def keys_log_path(keys_file) -> Path:
    """The audit log beside a keys file: ``data/keys.json`` -> ``data/keys.log.jsonl``."""
    path = Path(os.fspath(keys_file))
    return path.with_name(path.stem + ".log.jsonl")


def record_key_change(keys_file, action: str, author: str, what: dict, message: str = "") -> dict:
    """Append a change of the service's keys to the log beside ``keys_file``; the entry.

    The line is written whole with one ``write`` on a file opened for appending
    (and synced), so concurrent writers never interleave lines and a line once
    written stays as it is.

    Parameters
    ----------
    keys_file : str or os.PathLike
        The keys file (``GRIDGEO_KEYS_FILE``).
    action : {"key-add", "key-remove"}
    author : str
        Who made the change (an administrator; the login name from the CLI).
    what : dict
        The key changed: ``name`` (whose key), ``role``, ``scope``, ``count`` of keys
        (never the key itself); kept as the entry's ``what["key"]``.
    message : str
    """
    if action not in KEY_ACTIONS:
        raise ValueError(f"action must be one of {list(KEY_ACTIONS)}, got {action!r}")
    if not isinstance(author, str) or not author.strip():
        raise ValueError("author= must name who changed the keys (a non-empty string)")
    entry = {"at": now(), "author": author.strip(), "action": action, "message": str(message or ""),
             "what": {"key": json.loads(dumps(what))}}
    line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")
    path = keys_log_path(keys_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def key_changes(keys_file, *, since=None, until=None, author=None, action=None) -> pd.DataFrame:
    """The key changes logged beside ``keys_file`` (none if there is no log), with the
    columns of :meth:`Store.audit <gridgeo.store.Store.audit>` and filtered the same way;
    ``entry`` is the line number, ``revision`` and ``plan_id`` are missing.

    Raises
    ------
    KeysLogError
        A line of the log is not an entry (the file was edited by hand, or cut short):
        the message names the file and the line.
    """
    path = keys_log_path(keys_file)
    rows = []
    if path.exists():
        for number, text in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if not text.strip():
                continue
            try:
                entry = json.loads(text)
                rows.append((number, utc_text(entry["at"]), entry["author"], entry["action"], None, None,
                             entry.get("message", ""), json.dumps(entry.get("what") or {}, ensure_ascii=False)))
            except (ValueError, KeyError, TypeError) as exc:
                raise KeysLogError(f"{path}, line {number}: not an entry of the keys' audit log ({exc}); the log is "
                                 f"only ever appended to by `gridgeo keys`: restore it from a backup / "
                                 f"{path} 第 {number} 行不是有效的审计记录，请从备份恢复") from None
    out = frame(rows)
    keep = pd.Series(True, index=out.index)
    if since is not None:
        keep &= out["at"] >= pd.Timestamp(utc_text(since))
    if until is not None:
        keep &= out["at"] < pd.Timestamp(utc_text(until))
    for column, value in (("author", author), ("action", action)):
        if value is not None:
            keep &= out[column].isin([value] if isinstance(value, str) else [str(v) for v in value])
    return out[keep.to_numpy()].reset_index(drop=True)


def trail(store=None, keys_file=None, *, since=None, until=None, author=None, action=None,
          plan_id: int | None = None) -> pd.DataFrame:
    """The audit trail of a store and of a service's keys, as one table, oldest first.

    Parameters
    ----------
    store : gridgeo.store.Store, optional
    keys_file : str or os.PathLike, optional
        The service's keys file: its log (:func:`keys_log_path`) is read.
    since, until, author, action, plan_id
        As :meth:`Store.audit <gridgeo.store.Store.audit>` (key changes have no plan:
        ``plan_id`` leaves them out).

    Returns
    -------
    DataFrame
        ``source`` (``store`` or ``keys``) and the columns of
        :meth:`Store.audit <gridgeo.store.Store.audit>`, ordered by time.
    """
    parts = []
    if store is not None:
        parts.append(store.audit(since=since, until=until, author=author, action=action, plan_id=plan_id)
                     .assign(source="store"))
    if keys_file is not None and plan_id is None:
        parts.append(key_changes(keys_file, since=since, until=until, author=author, action=action)
                     .assign(source="keys"))
    if not parts:
        return frame([]).assign(source=pd.array([], dtype="str"))[["source", *COLUMNS]]
    out = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    out["source"] = out["source"].astype("str")
    out = out.sort_values("at", kind="stable").reset_index(drop=True)
    return out[["source", *COLUMNS]]
