"""What the endpoints share: the store, the keys and the derived data being served.

The service serves one data version at a time: the newest whose derived data
(:mod:`gridgeo.derived`: figures, coverage, served ground, tile geometry) is
complete in the store. When the store's data version moves past it (a
publish, here or by another process), the derived data of the new version
is prepared in the background by a ``gridgeo prepare`` process, and the
service keeps answering from the version it serves until the new one is
complete; then every worker on the store switches to it at its next look
(at most ``GRIDGEO_VERSION_TTL`` seconds later). A worker reads the items
it needs from the store and keeps them in memory for the version it serves.

``GRIDGEO_PREPARE=inline`` prepares in the request that first needs a new
version instead (small stores, tests); ``off`` never prepares (run
``gridgeo prepare`` yourself).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import gridgeo.store
from api.keys import KeyStore
from api.said import log
from api.settings import Settings
from gridgeo import derived as gderived
from gridgeo.lru import LRUCache
from gridgeo.tiles import TileCache



TRIM_AFTER_S = 0.25
"""A value that took this long to make gave back the memory it used meanwhile (see :func:`give_back`)."""


def _libc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # glibc; elsewhere there is nothing to do
    except (OSError, AttributeError):
        return None


_TRIM = _libc_trim()


def give_back() -> None:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim``).

    Reading a large kept item (the city's service areas: 200 MB while decoded)
    and letting it go leaves the pages with the process: resident memory keeps
    the high-water mark of every build. Trimming after the builds that take
    long (:data:`TRIM_AFTER_S`) keeps a worker's resident memory to what it
    holds, as ``dask.distributed`` trims its workers.
    """
    if _TRIM is not None:
        _TRIM(0)


QUIET_S = 0.25
"""Reading ahead (:meth:`Services.start`'s ``warm``) waits until no request has been in flight this long."""

QUIET_WAIT_S = 30.0
"""... but never longer than this: under a constant load the values are read anyway."""


class Traffic:
    """The requests in flight and when the last one ended, so that work done ahead of requests
    (reading the served version's values) is done in the service's idle moments.

    Examples
    --------
    >>> traffic = Traffic()
    >>> traffic.enter(); traffic.wait_quiet(quiet=0.01, longest=0.05)
    False
    >>> traffic.leave(); traffic.wait_quiet(quiet=0.01, longest=1.0)
    True
    """

    def __init__(self):
        self._lock = threading.Lock()
        self.in_flight = 0
        self._ended = time.monotonic()

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self._ended = time.monotonic()

    def wait_quiet(self, *, quiet: float = QUIET_S, longest: float = QUIET_WAIT_S,
                   stop: Callable[[], bool] = lambda: False) -> bool:
        """Wait until no request has been in flight for ``quiet`` seconds (True), or ``longest``
        seconds have passed or ``stop()`` says so (False). It looks again at most every ``quiet``
        seconds: the requests never wake it."""
        deadline = time.monotonic() + longest
        while not stop():
            now = time.monotonic()
            with self._lock:
                busy, idle = self.in_flight, now - self._ended
            if not busy and idle >= quiet:
                return True
            if now >= deadline:
                return False
            time.sleep(max(0.001, min(deadline - now, quiet if busy else quiet - idle)))
        return False


class Preparing(Exception):
    """No version's derived data is complete yet: the service is preparing it (an API answers 503)."""

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after


class Services:
    """The store, the keys, the derived data served and a per-version cache of what is read from it
    (bounded by bytes: ``GRIDGEO_CACHE_MB``, and ``tile_cache_bytes`` for rendered tiles)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = gridgeo.store.open(settings.store)
        self.keys = KeyStore(settings.keys_file)
        self.kept_values = LRUCache(settings.cache_mb * 2**20)
        """What is read and made from the version served (:meth:`derived`), least recently used dropped first."""
        self.tile_cache = TileCache(max_bytes=settings.tile_cache_bytes, directory=settings.tile_cache)
        """The rendered tiles, kept apart from :attr:`kept_values` (bounded by ``tile_cache_bytes``), so that
        a tile set dropped from it and made again finds its tiles."""
        self._purged = [None, None]
        self._warming: threading.Thread | None = None
        self.traffic = Traffic()
        """The requests in flight (counted by ``api.main.RequestLog``): reading ahead waits for a quiet moment."""
        self._closing = False
        self._served: gderived.Derived | None = None
        self._checked = -1e9
        self._look = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._inline = threading.Lock()
        self._data_version = (-1e9, 0)

    def start(self, warm: Callable[[Services], None] | None = None) -> None:
        """Look at the store once at start-up, so that a missing version starts preparing
        before the first request (background mode only: inline mode prepares in requests);
        then, in a thread of its own, ``warm(self)``: read what the first requests will ask
        for while the service already answers (they wait for a value being read, never read
        it twice). ``warm`` calls :meth:`when_quiet` between its steps, so that reading ahead
        takes the service's idle moments and not the time of the requests being answered."""
        if self.settings.prepare == "background":
            self._look_again()
        if warm is not None and self.settings.prepare != "inline":
            self._warming = threading.Thread(target=self._warm, args=(warm,), name="gridgeo-warm", daemon=True)
            self._warming.start()

    def _warm(self, warm) -> None:
        start = time.perf_counter()
        try:
            if self._look_again() is None:
                return  # nothing prepared yet: the first version is read when asked for
            warm(self)
            log.info("data version %d read in %.1f s", self._served.version, time.perf_counter() - start)
        except Exception as exc:  # a request asking for the same value meets the same error, and says it
            if not self._closing:
                log.warning("reading data version ahead of requests failed: %s: %s", type(exc).__name__, exc)

    def when_quiet(self) -> bool:
        """Wait for a quiet moment (:class:`Traffic`); False when the service is closing."""
        self.traffic.wait_quiet(stop=lambda: self._closing)
        return not self._closing

    def close(self) -> None:
        self._closing = True
        warming = self._warming
        if warming is not None:
            warming.join(timeout=30)  # it reads from the store being closed
        child = self._child
        if child is not None and child.poll() is None:
            child.terminate()  # its claim goes stale, and another process takes it over
        self.store.close()

    # --- the version served ------------------------------------------------------------

    @property
    def kept(self) -> gderived.Derived:
        """The derived data being served (raises :class:`Preparing` before any version is complete)."""
        served = self._look_again()
        if served is None:
            raise Preparing("the service is preparing the data (figures, coverage, tiles) for the first time; "
                            "the map appears when it is ready / 正在准备数据，请稍候")
        return served

    @property
    def version(self) -> int:
        """The data version served (the store's, once its derived data is complete)."""
        return self.kept.version

    @property
    def served_version(self) -> int | None:
        """The data version served as last looked up (None before any), without looking again:
        what :mod:`api.boot` keeps an answer under."""
        served = self._served
        return None if served is None else served.version

    @property
    def data_version(self) -> int:
        """The store's data version (what the features routes read), asked at most once per
        ``version_ttl`` seconds."""
        checked, value = self._data_version
        now = time.monotonic()
        if now - checked > self.settings.version_ttl:
            value = self.store.version
            self._data_version = (now, value)
        return value

    def state(self) -> dict:
        """Readiness for ``/health``: ``ready``, the version ``served``, the store's
        ``data_version``, a version being ``preparing`` (or why it ``failed``), and
        ``reading_ahead`` while the values the first requests ask for are still being read
        (:meth:`start`'s ``warm``: a request meanwhile may have to read them itself)."""
        served = self._look_again()
        current = self.store.version
        out = {"ready": served is not None, "served_version": None if served is None else served.version,
               "data_version": current}
        if served is None or served.version != current:
            status = self.store.derived_state(current)
            if status["failed"]:
                out["failed"] = status["failed"].split(": ", 1)[-1]
            else:
                out["preparing"] = current
        elif served.pending():
            out["preparing_items"] = served.pending()
        warming = self._warming
        if warming is not None and warming.is_alive():
            out["reading_ahead"] = True
        return out

    def _look_again(self, *, prepare: bool = True) -> gderived.Derived | None:
        """The version to serve, looked up at most once per ``version_ttl`` seconds;
        starts preparing the store's version when it is not complete (unless ``prepare``
        is false)."""
        now = time.monotonic()
        if now - self._checked <= self.settings.version_ttl:
            return self._served
        with self._look:
            if time.monotonic() - self._checked <= self.settings.version_ttl:
                return self._served
            current = self.store.version
            newest = gderived.latest(self.store)
            if prepare and (newest is None or newest.version != current or newest.pending()):
                newest = self._prepare(current) or newest
            if newest is not None and (self._served is None or newest.version != self._served.version):
                self._served = newest
                log.info("serving data version %d", newest.version)
            self._checked = time.monotonic()
            return self._served

    def _prepare(self, current: int) -> gderived.Derived | None:
        mode = self.settings.prepare
        if mode == "off":
            return None
        if mode == "inline":
            with self._inline:
                version = gderived.build(self.store, progress=False, min_count=self.settings.min_count,
                                         heat_period=self.settings.heat_period)
            return gderived.Derived(self.store, version) if version is not None else None
        status = self.store.derived_state(current)
        if status["failed"] and status["claim"] is None:
            return None  # said by /health; a new publish gets a new attempt
        if self._child is not None and self._child.poll() is None:
            return None
        if status["claim"] is not None and not _stale(status["claim"]["at"]):
            return None
        log.info("preparing data version %d in the background", current)
        env = {**os.environ, "GRIDGEO_STORE": self.settings.store, "GRIDGEO_MIN_COUNT": str(self.settings.min_count),
               "GRIDGEO_HEAT_PERIOD": self.settings.heat_period}
        self._child = subprocess.Popen([sys.executable, "-m", "gridgeo", "prepare", "--quiet"], env=env,
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        return None

    # --- what is read from it, kept per version ----------------------------------------

    def peek(self, name: str) -> Any | None:
        """A value read for the version served, else None (never reads an item, never raises,
        never waits for a build)."""
        if self.settings.prepare == "inline":  # a build would block: leave a moved version to the slow path
            served = self._served
            if served is not None and self.data_version != served.version:
                return None
        else:
            served = self._look_again()
        return None if served is None else self.kept_values.get((served.version, name))

    def derived(self, name: str, build: Callable[[gderived.Derived], Any]) -> Any:
        """``build(kept)`` for the version served, made once and kept (in :attr:`kept_values`, bounded
        by ``GRIDGEO_CACHE_MB``) until the version changes or less recently used values need the room.

        Parameters
        ----------
        name : str
            What is kept (``"figures"``, ``"tiles"`` ...).
        build : callable
            Makes the value from the served :class:`gridgeo.derived.Derived`; None (not there, or not
            yet: see ``Derived.pending``) is asked again.
        """
        kept = self.kept
        self._purge(kept.version)

        def make():
            started = time.perf_counter()
            value = build(kept)
            if time.perf_counter() - started >= TRIM_AFTER_S:
                give_back()
            return value
        return self.kept_values.get_or_make((kept.version, name), make)

    def current(self, name: str, build: Callable[[], Any]) -> Any:
        """``build()`` for the store's current data version (not the version served):
        for what reads the published layers themselves, as the workbench does."""
        version = self.data_version
        self._purge(current=version)
        return self.kept_values.get_or_make(("current", version, name), build)

    def settle(self) -> None:
        """Measure again what grows as it is used (a tile set reading its zooms) and keep the bound."""
        self.kept_values.settle()

    def _purge(self, served: int | None = None, *, current: int | None = None) -> None:
        """Drop what was kept for other versions (the version served, or the store's current one)."""
        if served is not None and served != self._purged[0]:
            self.kept_values.discard(lambda key: key[0] == "current" or key[0] == served)
            self.tile_cache.retain(self._tile_version(served))
            self._purged[0] = served
        if current is not None and current != self._purged[1]:
            self.kept_values.discard(lambda key: key[0] != "current" or key[1] == current)
            self._purged[1] = current

    @property
    def tile_tag(self) -> str:
        """What the tile sets' versions carry besides the data version: the minimum count of their
        figures (:func:`api.derived.tiles`)."""
        return f"k{self.settings.min_count}"

    def _tile_version(self, version: int) -> str:
        return f"{version}.{self.tile_tag}"

    def forget(self) -> None:
        """Look at the store again at the next request (after a publish through this service)."""
        self._checked = -1e9
        self._data_version = (-1e9, 0)


def _stale(at: str) -> bool:
    import pandas as pd

    age = (pd.Timestamp.now(tz="UTC") - pd.Timestamp(at)).total_seconds()
    return age > gderived.STALE_AFTER
