"""What the endpoints share: the store and the things built from its data.

Everything derived from the published data (figures per unit, the
assignment index, tile sets, coverage) is built once per data version
(:attr:`gridgeo.store.Store.version`) and kept until a publish changes the
version. Builds are serialised per item, so a burst of first requests builds
once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import gridgeo.store
from api.keys import KeyStore
from api.settings import Settings


class Services:
    """The store, the keys and a per-version cache of derived data."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = gridgeo.store.open(settings.store)
        self.keys = KeyStore(settings.keys_file)
        self._cache: dict[str, tuple[int, Any]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        self._version = (0.0, 0)

    def close(self) -> None:
        self.store.close()

    @property
    def version(self) -> int:
        """The store's data version, asked of the store at most once per
        ``settings.version_ttl`` seconds (a publish by another worker shows
        within that time; one through this service at once)."""
        checked, value = self._version
        now = time.monotonic()
        if now - checked > self.settings.version_ttl:
            value = self.store.version
            self._version = (now, value)
        return value

    def peek(self, name: str) -> Any | None:
        """A derived value if it is built for the current version, else None (never builds)."""
        hit = self._cache.get(name)
        return hit[1] if hit is not None and hit[0] == self.version else None

    def derived(self, name: str, build: Callable[[], Any], *, version: int | None = None) -> Any:
        """``build()`` for the current data version, built once and cached.

        Parameters
        ----------
        name : str
            What is cached (``"figures"``, ``"tiles"`` ...).
        build : callable
            Makes the value from the store; called again after a publish.
        """
        version = self.version if version is None else version
        hit = self._cache.get(name)
        if hit is not None and hit[0] == version:
            return hit[1]
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        with lock:
            hit = self._cache.get(name)
            if hit is not None and hit[0] == version:
                return hit[1]
            value = build()
            self._cache[name] = (version, value)
            return value

    def forget(self) -> None:
        """Drop every derived value and re-read the version (after a publish through this service)."""
        self._cache.clear()
        self._version = (0.0, 0)
