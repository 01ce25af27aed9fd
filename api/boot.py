"""The service from its first moment: the map's public answers kept per data version.

Building the app takes one to two seconds after every start: importing
FastAPI, pandas, geopandas and gridgeo, assembling the routes, reading what
the version served keeps. ``gridgeo serve`` runs :func:`create_app` of this
module instead, which listens at once, builds the app in a thread, and
meanwhile

- answers ``/health`` with ``"status": "starting"``, the version it serves
  and ``"ready": true`` when the store has a prepared version (every request
  is then answered, at once or when the app is built: the one map starts);
- answers a request the app has answered before, from the **answers kept**
  on disk, when the request is an anonymous ``GET`` of the map's public data
  (:data:`KEPT_PATHS`: tiles, the pages and their files, the map's
  configuration and labels, public figures, the coverage view) and the store
  still serves the data version the answer was made from
  (:func:`gridgeo._served.latest`);
- holds every other request until the app is built, then hands it on.

Once the app is built every request goes to it, and the answers it gives to
those requests (``200`` or ``204``, not ``no-store``, no cookie, at most
:data:`MAX_ENTRY` bytes) are kept when the version served did not change while
they were made.

An answer is found again by the request's path and query string and the
values of the request headers its ``Vary`` names (RFC 9111 §4.1; ``Vary: *``
is never kept; one variant per address, the first kept), within a folder for
the store, the gridgeo code (its version and its files' times) and the
service's ``GRIDGEO_*`` settings, and the data version with its stamp:
another store (or one made again at the same place), another build of
gridgeo, other settings or another version never find it. A kept answer
carries an ``Age`` header (as a shared cache's does, RFC 9111 §5.1), and
``If-None-Match`` with its ETag gets ``304``. Answers of the version served replace those of older versions.
Rate limits do not apply to kept answers, which cost no computation.

``GRIDGEO_ANSWER_CACHE`` is the folder (default
``$XDG_CACHE_HOME/gridgeo/answers``, else ``~/.cache/gridgeo/answers``;
``off`` keeps nothing); ``GRIDGEO_ANSWER_CACHE_MB`` bounds one version's
answers (default 512). Nothing of FastAPI, pandas or gridgeo's store is
imported before the app is built.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Callable

from api.said import log as said

log = logging.getLogger("gridgeo.api")

KEPT_PATHS = re.compile(r"^/(?:map|plan|vocabulary|tiles|coverage|stats)(?:/|\.json$|$)|^/static/")
"""The addresses whose anonymous answers depend on the data version alone (and the code and settings)."""
MAX_ENTRY = 64 * 2**20
"""The largest answer kept, in bytes (the city's service areas are about 24 MB)."""
MAX_QUEUED = 64 * 2**20
"""Bytes of answers waiting to be written at most (:meth:`KeptAnswers.later`)."""
STALE_DAYS = 30
"""The answers kept for a store no service has opened for this many days are removed."""
SKIP_ENV = ("GRIDGEO_KEYS_FILE", "GRIDGEO_ANSWER_CACHE", "GRIDGEO_ANSWER_CACHE_MB")
"""Settings that do not change an anonymous answer (who holds which key; this cache's own)."""

HERE = Path(__file__).resolve().parent


def create_app() -> Boot:
    """The app ``gridgeo serve`` runs: :class:`Boot` around :func:`api.main.create_app`,
    for the store in ``GRIDGEO_STORE``, in a process whose heap is kept small (:func:`small_heap`)."""
    small_heap()
    return Boot(store=os.environ.get("GRIDGEO_STORE", "data/gridgeo.gpkg"))


M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the most malloc arenas."""
M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter for the size from which a block is mapped on its own."""
MMAP_THRESHOLD = 2**20
"""Allocations of at least this many bytes get pages of their own, returned when freed (:func:`small_heap`)."""


def small_heap(arenas: int = 2, mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Keep a serving process's heap to what it holds, before any thread or Arrow allocates.

    The service answers from a pool of threads, and glibc gives each thread that
    meets a busy arena one of its own (up to 8 per core), whose freed pages stay with
    the process; Arrow (which reads every kept item) allocates from its own
    mimalloc pool, which keeps what it freed too. Together they held about 130 MB
    of a city worker's resident memory and 150 MB of its peak (the scripted one map,
    two runs one after the other: 1,001 -> 871 MB, peak 1,102 -> 947 MB). And glibc
    raises its mmap threshold to the size of each large block freed (up to 32 MB), so
    that after the first kept item read, the buffers of the next ones (a 23 MB item
    from PostgreSQL, its Parquet pages, a body being written) come from the heap and
    stay with it: the PostGIS worker's peak after a publish and the scripted map was
    912-1,143 MB in four runs (median 1,053), and 832-1,063 MB (median 900) in six
    with the threshold fixed.

    The usual remedies, as the variables ``MALLOC_ARENA_MAX``,
    ``MALLOC_MMAP_THRESHOLD_`` and ``ARROW_DEFAULT_MEMORY_POOL`` would set them: at
    most ``arenas`` glibc arenas, blocks of ``mmap_threshold`` bytes and more mapped
    on their own (returned to the system when freed), and Arrow's allocations through
    the system allocator (which :func:`api.services.give_back` then trims). Each is
    left alone when the environment sets it; elsewhere than glibc nothing is done.
    Returns whether the arenas were limited here.
    """
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # read when pyarrow makes its pool
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        mallopt(M_MMAP_THRESHOLD, mmap_threshold)  # a fixed threshold: glibc no longer raises it
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    return mallopt(M_ARENA_MAX, arenas) == 1


class Boot:
    """An ASGI app that answers from kept answers while ``build()`` makes the real app.

    Parameters
    ----------
    store : str
        The store served (a GeoPackage path or a ``postgresql://`` URL).
    build : callable, optional
        Makes the app (default: :func:`api.main.create_app` for the environment's settings).
    cache : str, optional
        The folder of kept answers (default: ``GRIDGEO_ANSWER_CACHE`` as the module says).
    """

    def __init__(self, store: str, build: Callable | None = None, cache: str | None = None):
        self.store = store
        self.app = None
        self._build = build or _build_app
        self._error: BaseException | None = None
        self._built = threading.Event()
        self._ready: asyncio.Event | None = None
        self._life: dict | None = None
        self._starting: asyncio.Task | None = None
        self.answers = KeptAnswers.for_store(store, cache)
        from gridgeo._served import latest

        try:
            served = latest(store)  # what the store serves now: the answers boot may give
        except LookupError:
            served = None  # no store there: the app, once built, says so
        self.version = None if served is None else served[0]
        if served is not None and self.answers is not None:
            self.answers.stamps[served[0]] = served[1]
            said.info("answers kept for data version %d are given while the app is built", served[0])
        self._thread = threading.Thread(target=self._make, name="gridgeo-boot", daemon=True)
        self._thread.start()

    def _make(self) -> None:
        started = time.perf_counter()
        try:
            self.app = self._build()
        except BaseException as exc:  # noqa: BLE001 - said once the loop runs (see _lifespan)
            self._error = exc
        else:
            said.info("app built in %.2f s", time.perf_counter() - started)
            traffic = getattr(getattr(getattr(self.app, "state", None), "services", None), "traffic", None)
            if self.answers is not None and traffic is not None:
                self.answers.quiet = traffic.wait_quiet  # the answers are written in the app's quiet moments
        self._built.set()

    # --- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if self._ready is not None and self._ready.is_set():
            return await self._serve(scope, receive, send)
        if scope["type"] == "http":
            if scope["path"] == "/health":
                # ready: a version is prepared, so every request is answered (kept, or once the app is built)
                return await _json(send, 200, {"status": "starting", "ready": self.version is not None,
                                               "version": _version(), "store": _kind(self.store),
                                               "served_version": self.version, "data_version": None})
            key = self.answers.key(scope) if self.answers and self.version is not None else None
            if key is not None:
                kept = await asyncio.to_thread(self.answers.get, self.version, key, scope)
                if kept is not None:
                    log.info("%s %s %d kept answer of version %d", scope["method"], scope["path"], kept[0],
                             self.version)
                    return await _kept(send, scope, *kept)
        if self._ready is None:
            self._ready = asyncio.Event()
        await self._ready.wait()
        return await self._serve(scope, receive, send)

    async def _serve(self, scope, receive, send):
        if self._error is not None:
            return await _json(send, 503, {"title": "Service Unavailable", "status": 503,
                                           "detail": f"服务未能启动 — the service could not start: {self._error}"})
        key = self.answers.key(scope) if self.answers and scope["type"] == "http" else None
        services = getattr(getattr(self.app, "state", None), "services", None)
        before = getattr(services, "served_version", None)
        if key is None or services is None or (before is not None and self.answers.has(before, key)):
            return await self.app(scope, receive, send)
        answer = {"status": 0, "headers": [], "body": [], "size": 0, "version": None}

        async def keep(message):
            if message["type"] == "http.response.start":
                answer["status"], answer["headers"] = message["status"], list(message.get("headers", []))
                answer["version"] = services.served_version  # the version the answer was made from ...
            elif message["type"] == "http.response.body" and answer["size"] <= MAX_ENTRY:
                answer["body"].append(message.get("body", b""))
                answer["size"] += len(answer["body"][-1])
                version = answer["version"]
                if not message.get("more_body", False) and version is not None \
                        and version == services.served_version and before in (None, version):  # ... throughout
                    self.answers.later(version, key, scope, answer["status"], answer["headers"],
                                       b"".join(answer["body"]))
            await send(message)
        return await self.app(scope, receive, keep)

    async def _lifespan(self, receive, send):
        """Started at once (the server listens); the app's own start-up runs once it is built,
        and its shut-down when the server stops."""
        self._ready = self._ready or asyncio.Event()
        loop = asyncio.get_running_loop()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                self._starting = loop.create_task(self._start_app())
            elif message["type"] == "lifespan.shutdown":
                if self._starting is not None and not self._starting.done():
                    self._starting.cancel()
                if self.answers is not None:  # the answers still waiting are written before the process ends
                    await asyncio.to_thread(self.answers.flush)
                if self._life is not None:
                    await self._life["queue"].put({"type": "lifespan.shutdown"})
                    await self._life["stopped"].wait()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _start_app(self) -> None:
        await asyncio.to_thread(self._built.wait)
        if self._error is not None:
            said.error("the service could not start: %s: %s", type(self._error).__name__, self._error,
                       exc_info=self._error)
            self._ready.set()  # every request waiting says why (503)
            _stop_server()
            return
        life = {"queue": asyncio.Queue(), "started": asyncio.Event(), "stopped": asyncio.Event(), "failed": None}

        async def send(message):
            kind = message["type"]
            if kind in ("lifespan.startup.complete", "lifespan.startup.failed"):
                life["failed"] = message.get("message") if kind.endswith("failed") else None
                life["started"].set()
            elif kind in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                life["stopped"].set()

        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
        task = asyncio.get_running_loop().create_task(self.app(scope, life["queue"].get, send))
        task.add_done_callback(lambda _: (life["started"].set(), life["stopped"].set()))
        await life["queue"].put({"type": "lifespan.startup"})
        await life["started"].wait()
        self._life = life
        if task.done() and not task.cancelled() and task.exception() is not None:
            life["failed"] = f"{type(task.exception()).__name__}: {task.exception()}"
        if life["failed"] is not None:
            self._error = RuntimeError(life["failed"])
            said.error("the service could not start: %s", life["failed"])
            self._ready.set()
            _stop_server()
            return
        self._ready.set()


class KeptAnswers:
    """Answers kept on disk per store, code, settings and data version (see the module).

    A folder per version (named by the version and its stamp, :func:`gridgeo._served.latest`)
    holds a file per answer: a line of JSON (status, headers, the request headers it
    varies on, when it was kept), then the body. Files are written whole, then moved
    into place, so that workers sharing the folder never read half an answer.
    """

    def __init__(self, store: str, root: Path, max_bytes: int):
        self.store = store
        self.root = root
        self.max_bytes = max_bytes
        self.stamps: dict[int, str | None] = {}
        """Each data version's stamp, asked of the store once."""
        self._known: set[tuple[int, str]] = set()
        self._bytes: dict[int, int] = {}
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue | None = None
        self._queued = 0  # bytes waiting for the writer
        self._waiting: set[tuple[int, str]] = set()  # and their addresses
        self.quiet: Callable[[], object] | None = None
        """Waits for a quiet moment of the service before the writer writes (set by :class:`Boot`)."""

    def folder(self, version: int) -> Path | None:
        """The folder of a version's answers (None: the version is not complete in the store)."""
        if version not in self.stamps:
            from gridgeo._served import latest

            try:
                found = latest(self.store, version)
            except LookupError:
                return None
            self.stamps[version] = None if found is None else found[1]
        stamp = self.stamps[version]
        return None if stamp is None else self.root / f"{version}-{_digest(stamp)[:12]}"

    @classmethod
    def for_store(cls, store: str, cache: str | None = None) -> KeptAnswers | None:
        base = cache if cache is not None else os.environ.get("GRIDGEO_ANSWER_CACHE", "")
        if base.strip().lower() == "off":
            return None
        if not base:
            base = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                                "gridgeo", "answers")
        where = store if store.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")) \
            else os.path.abspath(store)
        root = Path(base) / _digest(where)[:16] / _digest(_code_stamp() + _settings_stamp())[:16]
        try:
            root.mkdir(parents=True, exist_ok=True)
            os.utime(root.parent)  # in use: the answers of stores nobody served for a month go
            for other in root.parent.parent.iterdir():
                if other.is_dir() and time.time() - other.stat().st_mtime > STALE_DAYS * 86400:
                    shutil.rmtree(other, ignore_errors=True)
        except OSError as exc:
            log.warning("answers are not kept: cannot make %s (%s)", root, exc)
            return None
        megabytes = float(os.environ.get("GRIDGEO_ANSWER_CACHE_MB", "512") or 512)
        return cls(store, root, int(megabytes * 2**20))

    def key(self, scope) -> str | None:
        """The key of an anonymous GET of :data:`KEPT_PATHS` (None for any other request)."""
        if scope.get("method") != "GET" or not KEPT_PATHS.match(scope["path"]):
            return None
        for name, value in scope.get("headers", []):
            if name.lower() in (b"x-api-key", b"authorization", b"range", b"cookie") and value.strip():
                return None  # a caller's own answer, or a part of one
        return _digest(scope["path"] + "?" + scope.get("query_string", b"").decode("latin-1"))

    def has(self, version: int, key: str) -> bool:
        """Whether an answer is kept at this address (any variant), or waits to be written; False also
        when the version's folder is not known yet (the first answer finds it, in :meth:`put`)."""
        if (version, key) in self._known or (version, key) in self._waiting:
            return True
        if version in self.stamps and (folder := self.folder(version)) is not None and (folder / key).is_file():
            self._known.add((version, key))
            return True
        return False

    def get(self, version: int, key: str, scope):
        """(status, headers, body, age in seconds) of the answer kept for the request in ``scope``, or None."""
        folder = self.folder(version)
        if folder is None:
            return None
        try:
            with open(folder / key, "rb") as f:
                head = json.loads(f.readline())
                if head["vary"] != _varied(scope, head["vary"]):
                    return None  # kept for another Host, Accept ...
                body = f.read()
        except (OSError, ValueError, KeyError):
            return None
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["headers"]]
        return head["status"], headers, body, max(0, int(time.time() - head["kept"]))

    def later(self, version: int, key: str, scope, status: int, headers: list, body: bytes) -> None:
        """:meth:`put` in the writer thread, in the service's quiet moments (:attr:`quiet`): a
        served request costs the event loop a queue entry, not a thread of its own, and the
        writing does not contend with the answering (a cold tile's keeping took 0.7 ms of CPU
        through the default executor, a fifth of its drawing; 0.3 ms written at once by one
        writer). An answer that finds :data:`MAX_QUEUED` bytes waiting is not kept."""
        if _keepable(status, headers, body) is None:
            return  # not even waiting: a 503 while the version is being prepared leaves its address free
        with self._lock:
            if self._queued + len(body) > MAX_QUEUED or (version, key) in self._waiting:
                return
            self._queued += len(body)
            self._waiting.add((version, key))
            if self._queue is None:
                self._queue = queue.SimpleQueue()
                threading.Thread(target=self._write, name="gridgeo-answers", daemon=True).start()
        self._queue.put((version, key, scope, status, headers, body))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait (at most ``timeout`` seconds) until every answer waiting is written: a stopping
        service's last answers are what its restart gives first. True when none is left."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._waiting:
                    return True
            time.sleep(0.02)
        return False

    def _write(self) -> None:
        while True:
            waiting = [self._queue.get()]
            if self.quiet is not None:
                self.quiet()  # a burst of requests (a map's first tiles) is answered first
            while not self._queue.empty():
                waiting.append(self._queue.get())
            for version, key, scope, status, headers, body in waiting:
                try:
                    self.put(version, key, scope, status, headers, body)
                except Exception as exc:  # never the writer's end: the next answers are still kept
                    log.warning("an answer was not kept: %s: %s", type(exc).__name__, exc)
                finally:
                    with self._lock:
                        self._queued -= len(body)
                        self._waiting.discard((version, key))

    def put(self, version: int, key: str, scope, status: int, headers: list, body: bytes) -> None:
        """Keep the answer to the request in ``scope`` (one the module's rule keeps; anything else
        is left alone)."""
        vary = _keepable(status, headers, body)
        if vary is None:
            return
        with self._lock:
            folder = self.folder(version)
            if folder is None:
                return
            if version not in self._bytes:
                self._start_version(folder)
            if self._bytes[version] + len(body) > self.max_bytes:
                return
            self._bytes[version] += len(body)
        head = json.dumps({"status": status, "kept": time.time(), "vary": _varied(scope, vary),
                           "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in headers]})
        try:
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f".{key}.{os.getpid()}.{threading.get_ident()}"
            with open(part, "wb") as f:
                f.write(head.encode("latin-1") + b"\n" + body)
            os.replace(part, folder / key)
            self._known.add((version, key))
        except OSError as exc:
            log.warning("an answer was not kept in %s: %s", folder, exc)

    def _start_version(self, folder: Path) -> None:
        """The first answer of a version: the answers of older versions (and of a version
        with another stamp: a store made again) go, and what is there is counted; so do the
        answers of this store under other code or settings."""
        version = int(folder.name.split("-")[0])
        for other in self.root.iterdir():
            number = other.name.split("-")[0]
            if other.is_dir() and other != folder and number.isdigit() and int(number) <= version:
                shutil.rmtree(other, ignore_errors=True)
        for other in self.root.parent.iterdir():
            if other.is_dir() and other != self.root:
                shutil.rmtree(other, ignore_errors=True)
        self._bytes[version] = sum(p.stat().st_size for p in folder.iterdir()) if folder.is_dir() else 0


# --- helpers -----------------------------------------------------------------------------------


def _build_app():
    from api.main import create_app as make

    return make()


def _keepable(status: int, headers: list, body: bytes) -> list | None:
    """The request headers an answer varies on, or None for an answer that is not kept (not a 200 or
    204, a cookie, ``no-store``, a part, too large, or varying on anything)."""
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}
    vary = [v.strip().lower() for v in names.get("vary", "").split(",") if v.strip()]
    if status not in (200, 204) or "set-cookie" in names or "no-store" in names.get("cache-control", "") \
            or len(body) > MAX_ENTRY or "content-range" in names or "*" in vary:
        return None
    return vary


def _varied(scope, names) -> dict:
    """The request's values of the headers ``names`` (lower case; "" for a header it lacks)."""
    values = {}
    for name, value in scope.get("headers", []):
        name = name.decode("latin-1").lower()
        if name in names:
            values[name] = values[name] + ", " + value.decode("latin-1") if name in values else value.decode("latin-1")
    return {name: values.get(name, "") for name in sorted(names)}


def _version() -> str:
    import gridgeo

    return gridgeo.__version__


def _kind(store: str) -> str:
    return "postgis" if store.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")) else "geopackage"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _code_stamp() -> str:
    """gridgeo's version and the times and sizes of its files and the service's (the pages' vendor
    packages by their lock file): another build never reads this one's answers."""
    import gridgeo

    parts = [gridgeo.__version__]
    for top in (HERE, HERE.parent / "gridgeo"):
        for folder, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in ("node_modules", "__pycache__"))
            for name in sorted(files):
                stat = os.stat(os.path.join(folder, name))
                parts.append(f"{folder}/{name}:{stat.st_mtime_ns}:{stat.st_size}")
    lock = HERE / "static" / "node_modules" / ".package-lock.json"
    if lock.is_file():
        parts.append(f"vendor:{lock.stat().st_mtime_ns}")
    return "\n".join(parts)


def _settings_stamp() -> str:
    """The service's settings as the environment gives them (``GRIDGEO_*``, but :data:`SKIP_ENV`)."""
    return json.dumps(sorted((k, v) for k, v in os.environ.items()
                             if k.startswith("GRIDGEO_") and k not in SKIP_ENV))


async def _kept(send, scope, status, headers, body, age) -> None:
    wanted = dict((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope.get("headers", []))
    etag = next((v.decode("latin-1") for k, v in headers if k.lower() == b"etag"), None)
    headers = [*headers, (b"age", str(age).encode())]
    if etag and etag in [t.strip() for t in wanted.get("if-none-match", "").split(",")]:
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-type")]
        await send({"type": "http.response.start", "status": 304, "headers": kept})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _json(send, status: int, body: dict) -> None:
    data = json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            (b"cache-control", b"no-store"), (b"date", formatdate(usegmt=True).encode())]})
    await send({"type": "http.response.body", "body": data})


def _stop_server() -> None:
    """The app could not be built or started: the process ends with status 3, as uvicorn's does
    when an app's start-up fails (the reason is in the log)."""
    logging.shutdown()
    os._exit(3)
