"""API keys and roles, without any web framework (the CLI imports this alone).

Roles, from least to most: ``anonymous`` (public layers and aggregate
figures), ``viewer`` (leadership: also events and address-level layers),
``planner`` (plans), ``reviewer`` (approves, returns and publishes plans),
``admin``. A role includes every role below it; what each may do to a plan,
and the scopes, are :mod:`gridgeo.review`'s rules.

A planner's or reviewer's key may carry scopes: the codes of the units it
covers (a town, several villages); without them it covers the whole city.
A keys file written before scopes existed reads as keys without scopes.

Keys are random 256-bit tokens shown once when made; only their SHA-256
digests are kept (a JSON file, ``GRIDGEO_KEYS_FILE``). A digest is enough at
rest because the tokens are random, not chosen by people. Clients send a key
in the ``X-API-Key`` header, as ``Authorization: Bearer <key>``, or as the
password of HTTP Basic (any user name: what QGIS's authentication manager and
GDAL's ``GDAL_HTTP_AUTH=BASIC`` send).

A keys file that cannot be read (not JSON, not the keys of gridgeo, a file the
service may not open) is never taken for an empty one and never written over:
:attr:`KeyStore.problem` says what is wrong (logged once per change of the
file), :meth:`KeyStore.lookup` raises :class:`KeysUnavailable` (the service
answers keyed requests 503 while anonymous ones go on), and ``add``/``remove``
refuse until it is mended.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from gridgeo.review import ROLES, has_role

SCOPED_ROLES = ("planner", "reviewer")
"""The roles a key may limit to some units (a viewer reads, an admin does everything, everywhere)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: a name (for plan authorship), a role and the unit codes the
    key covers (empty: the whole city)."""

    name: str
    role: str
    scopes: tuple[str, ...] = ()

    def has(self, role: str) -> bool:
        return has_role(self.role, role)


ANONYMOUS = Principal("anonymous", "anonymous")

log = logging.getLogger("gridgeo.api.keys")


class KeysUnavailable(RuntimeError):
    """The keys file cannot be read: no key can be checked until it is mended."""


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyStore:
    """The API keys of a service, kept as digests in a JSON file.

    Examples
    --------
    >>> import tempfile, os
    >>> keys = KeyStore(os.path.join(tempfile.mkdtemp(), "keys.json"))
    >>> key = keys.add("王网格长", "planner")
    >>> keys.lookup(key)
    Principal(name='王网格长', role='planner', scopes=())
    >>> keys.lookup(keys.add("王规划", "planner", scopes=["350582106", "350582107201"])).scopes
    ('350582106', '350582107201')
    >>> keys.lookup("guess") is None
    True
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self.problem: str | None = None
        self._seen = self._stamp()
        self._entries = self._load()

    def _stamp(self):
        try:
            st = self.path.stat()
        except (AttributeError, OSError):
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _read(self) -> list[dict]:
        if self.path is None or not self.path.exists():
            return []
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeysUnavailable(self._unreadable(exc)) from None
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("sha256"), str) and e.get("role") in ROLES
                and isinstance(e.get("name"), str) for e in entries):
            raise KeysUnavailable(self._unreadable("not a list of keys with name, role and sha256"))
        return list(entries)

    def _unreadable(self, why) -> str:
        return (f"密钥文件 {self.path} 无法读取（{why}）：带密钥的请求暂时无法受理，公开数据照常；请修复或从备份恢复该文件 — "
                f"the keys file {self.path} cannot be read ({why}): requests with a key are refused (503) until "
                "it is mended or restored from a backup; anonymous requests go on")

    def _load(self) -> list[dict]:
        """The entries, or none with :attr:`problem` set (and logged) when the file is unreadable."""
        try:
            entries, problem = self._read(), None
        except KeysUnavailable as exc:
            entries, problem = [], str(exc)
        if problem and problem != self.problem:
            log.error("%s", problem)
        elif self.problem and not problem:
            log.warning("the keys file %s is readable again", self.path)
        self.problem = problem
        return entries

    def _check(self) -> None:
        if self.problem:
            raise KeysUnavailable(self.problem)

    def add(self, name: str, role: str, scopes=()) -> str:
        """Make a key for ``name`` with ``role`` (and, for a planner or reviewer, the
        unit codes it covers); return it (it is not kept)."""
        if role not in ROLES[1:]:
            raise ValueError(f"role must be one of {list(ROLES[1:])}, got {role!r}")
        scopes = [str(s).strip() for s in scopes or ()]
        if scopes and role not in SCOPED_ROLES:
            raise ValueError(f"only {' and '.join(SCOPED_ROLES)} keys have scopes: a {role} key covers the whole "
                             "city (drop --scope)")
        bad = [s for s in scopes if not s.isdigit()]
        if bad:
            raise ValueError(f"a scope is the code of a unit (digits, e.g. a town's 350582106), got {bad}")
        if self.path is None:
            raise ValueError("no keys file configured: set GRIDGEO_KEYS_FILE")
        self._refresh()
        self._check()  # never write over keys that could not be read
        key = "gg_" + secrets.token_urlsafe(32)
        entry = {"name": name, "role": role, "sha256": digest(key),
                 "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        if scopes:
            entry["scopes"] = sorted(set(scopes))
        with self._lock:
            self._entries.append(entry)
            self._write()
        return key

    def remove(self, name: str) -> int:
        """Revoke every key of ``name``; return how many."""
        self._refresh()
        self._check()
        with self._lock:
            before = len(self._entries)
            self._entries = [e for e in self._entries if e["name"] != name]
            self._write()
            return before - len(self._entries)

    def entries(self) -> list[dict]:
        """Who has keys: ``name``, ``role``, ``scopes`` (a list, empty for the whole city), ``created``
        (:class:`KeysUnavailable` when the file cannot be read)."""
        self._refresh()
        self._check()
        return [{"scopes": [], **{k: v for k, v in e.items() if k != "sha256"}} for e in self._entries]

    def lookup(self, key: str | None) -> Principal | None:
        if not key:
            return None
        self._refresh()
        self._check()
        d = digest(key)
        for entry in self._entries:
            if hmac.compare_digest(entry["sha256"], d):
                return Principal(entry["name"], entry["role"], tuple(entry.get("scopes") or ()))
        return None

    def _refresh(self) -> None:
        # `gridgeo keys add/remove` on a running service takes effect without a restart
        stamp = self._stamp()
        if stamp != self._seen:
            with self._lock:
                self._entries, self._seen = self._load(), stamp

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".keys-", dir=self.path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"keys": self._entries}, f, ensure_ascii=False, indent=2)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
        self._seen = self._stamp()
