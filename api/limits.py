"""Limits that hold: the size of a request body, and how often one client may ask for the heavy things.

Both are pure ASGI middleware, mounted in :func:`api.main.create_app`, and both
answer with a problem body (:mod:`api.problems`) before the endpoint works on the
request.

:class:`BodyLimit`
    A body is counted as it arrives, whatever its framing: a ``Content-Length``
    over the limit is refused at once (413), and a chunked body is refused at the
    chunk that passes the limit, so no more than the limit and one chunk is ever
    read. The 413 closes the connection: the server does not read the rest.
    Paths that take files (``/imports``) have their own, larger limit.

:class:`RateLimit`
    Per-client limits on the requests that cost the service the most, for
    callers without an API key:

    ======  =====================================================  ======================
    name    requests                                               default (setting)
    ======  =====================================================  ======================
    assign  ``POST /assign``                                       5 in 10 s
                                                                   (``GRIDGEO_RATE_ASSIGN``)
    areas   ``GET /coverage/areas``                                10 in 10 s
                                                                   (``GRIDGEO_RATE_AREAS``)
    items   ``GET /collections/{id}/items`` with a bbox wider      10 in 10 s
            than ``GRIDGEO_RATE_WIDE_BBOX`` square degrees         (``GRIDGEO_RATE_ITEMS``)
            (0.01, about 100 km²), or without a bbox and with a
            ``limit`` over ``GRIDGEO_RATE_WIDE_LIMIT`` (1000)
    print   ``GET /export/map.png`` and ``GET /export/map.pdf``     5 in 10 s
                                                                   (``GRIDGEO_RATE_PRINT``)
    ======  =====================================================  ======================

    Counting requests does not bound a client whose every request is long (one
    ``POST /assign`` of 100,000 points keeps a worker busy for seconds: looped, it
    never passes 5 in 10 s and still cut the tile throughput 4-8 times). So the
    heavy requests of a client also share a **budget of the service's time**
    (:class:`BusyWindow`, ``GRIDGEO_RATE_BUSY``, default 3 s in 10 s: bursts of
    3 s, 30 % of the service on average, however long each request is); a heavy
    request that finds the budget spent gets 429.

    A client over its limit gets 429 with ``Retry-After`` (whole seconds) and a
    problem body saying when to come back; every other request (tiles, pages,
    small items pages) is never limited. A limit is a sliding window: at most
    that many requests in any such span of time, counted per client and per
    name. A caller with a valid API key (any role) is not limited: keys are
    given to known people and can be revoked (``gridgeo keys remove``). An
    unknown key counts as no key.

Notes
-----
The client is the peer address the ASGI server reports; an IPv6 address counts
with its whole /64 network (one host usually holds all of it). With
``GRIDGEO_TRUSTED_PROXIES=n`` (the service behind n proxies that each append to
``X-Forwarded-For``), the client is the address the outermost proxy saw, the
n-th from the right: entries to its left were written by the caller and can
be anything. ``gridgeo serve`` runs uvicorn, which by itself already takes the
client from ``X-Forwarded-For`` when the peer is a proxy it trusts
(``FORWARDED_ALLOW_IPS``, 127.0.0.1 unless set).

The windows live in the memory of each worker process: with N workers a client
may get up to N times the limit, as its connections land on different workers.
A window forgets a client as soon as the client's latest request is older than
the window, and holds at most ``max_clients`` clients (the quietest are
forgotten first), so its memory stays bounded under a flood of addresses.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from collections import OrderedDict
from typing import NamedTuple
from urllib.parse import parse_qs

from starlette.exceptions import HTTPException

from api import problems

__all__ = ["BodyLimit", "RateLimit", "Rate", "SlidingWindow", "BusyWindow", "limited", "client_of", "document"]


# --- the body limit ---------------------------------------------------------------


class _BodyTooLarge(HTTPException):
    """Raised from ``receive`` at the chunk that passes the limit. An HTTPException, so that
    FastAPI passes it on from its body parsing and the service's handler writes the problem."""

    def __init__(self, limit: int):
        super().__init__(413, f"request bodies are limited to {limit:,} bytes", headers={"Connection": "close"})


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 (``uploads``: paths that take
    files, with their own limit), counting the bytes as they arrive.

    A ``Content-Length`` over the limit is refused before anything is read; a body
    without one (chunked) is refused at the chunk that passes the limit. Either way
    the answer closes the connection, so the server reads no more of the body. If
    the endpoint had already started its response, the connection is closed
    without one (the server does that when the error reaches it).

    Notes
    -----
    FastAPI's own ``max_body_size`` (Starlette's ``RequestBodyLimitMiddleware``)
    counts the same way but keeps the connection open: uvicorn then reads the
    rest of the body and throws it away, so a client sending 200 MB sends all of
    it before it reads the 413 (measured: 200 MB sent against a 1 MB limit). It
    also answers in plain text where no endpoint reads the body.
    """

    def __init__(self, app, max_bytes: int, uploads: dict[str, int] | None = None):
        self.app, self.max_bytes, self.uploads = app, max_bytes, uploads or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.uploads.get(scope["path"], self.max_bytes)
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            return await _too_large(scope, receive, send, limit)
        received = 0
        started = False

        async def counted():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _BodyTooLarge(limit)
            return message

        async def tracked(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _BodyTooLarge:
            if started:
                raise  # the server closes a connection whose response broke off
            await _too_large(scope, receive, send, limit)


async def _too_large(scope, receive, send, limit: int) -> None:
    response = problems.problem_response(413, "Payload Too Large", f"request bodies are limited to {limit:,} bytes",
                                         instance=scope["path"], headers={"Connection": "close"})
    await response(scope, receive, send)


def _header(scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


# --- rate limits ------------------------------------------------------------------


class Rate(NamedTuple):
    """``requests`` in any ``seconds``."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate | None:
        """A rate from its setting, ``"requests/seconds"``; None for ``"0"`` (no limit).

        Examples
        --------
        >>> Rate.parse("5/10"), Rate.parse("0")
        (Rate(requests=5, seconds=10.0), None)
        >>> Rate.parse("5 per minute")
        Traceback (most recent call last):
        ...
        ValueError: '5 per minute' is not a rate: write requests/seconds, such as 5/10 (5 requests in any ...
        """
        found = re.fullmatch(r"\s*(\d+)\s*(?:/\s*(\d+(?:\.\d*)?)\s*s?)?\s*", str(text))
        if found is None or (found[2] is None and int(found[1]) != 0):
            raise ValueError(f"{text!r} is not a rate: write requests/seconds, such as 5/10 (5 requests in any "
                             "10 s), or 0 for no limit")
        requests = int(found[1])
        if requests == 0:
            return None
        seconds = float(found[2])
        if seconds <= 0:
            raise ValueError(f"{text!r}: the window must be longer than 0 seconds")
        return cls(requests, seconds)

    def __str__(self) -> str:
        return f"{self.requests} in {self.seconds:g} s"


class SlidingWindow:
    """At most ``requests`` per client in any ``seconds``: the times of each client's
    latest requests, in memory.

    :meth:`hit` counts a request and says 0, or refuses it and says how many
    seconds until the client may ask again (a refused request is not counted).

    Parameters
    ----------
    requests : int
    seconds : float
    max_clients : int
        The most clients held; past it the client quiet the longest is forgotten.
    clock : callable
        Seconds, monotonic (for tests).

    Notes
    -----
    A client is forgotten once its latest request is older than the window, so
    the table holds only the clients of the last ``seconds``: at most
    ``max_clients`` lists of at most ``requests`` floats. Not thread-safe: the
    middleware calls it from the event loop only.

    Examples
    --------
    >>> now = [0.0]
    >>> window = SlidingWindow(2, 10, clock=lambda: now[0])
    >>> window.hit("a"), window.hit("a"), window.hit("a"), window.hit("b")
    (0.0, 0.0, 10.0, 0.0)
    >>> now[0] = 4.0
    >>> window.hit("a")
    6.0
    >>> now[0] = 10.0
    >>> window.hit("a"), window.hit("a")
    (0.0, 0.0)
    >>> now[0] = 30.0
    >>> window.hit("c"), len(window)  # a and b are forgotten
    (0.0, 1)
    """

    def __init__(self, requests: int, seconds: float, *, max_clients: int = 50_000, clock=time.monotonic):
        if requests < 1 or seconds <= 0 or max_clients < 1:
            raise ValueError(f"a window needs requests >= 1, seconds > 0 and max_clients >= 1, got {requests}, "
                             f"{seconds} and {max_clients}")
        self.requests, self.seconds, self.max_clients, self.clock = requests, seconds, max_clients, clock
        self._clients: OrderedDict[str, list[float]] = OrderedDict()  # by latest counted request, oldest first

    def __len__(self) -> int:
        return len(self._clients)

    def hit(self, client: str) -> float:
        """Count a request of ``client``: 0.0, or the seconds to wait if it is over the limit."""
        now = self.clock()
        self._forget(now)
        times = self._clients.get(client)
        if times is None:
            times = self._clients[client] = []
            if len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        elif len(times) >= self.requests:
            wait = times[0] + self.seconds - now
            if wait > 0:
                return wait
            del times[0]
        times.append(now)
        self._clients.move_to_end(client)
        return 0.0

    def _forget(self, now: float) -> None:
        clients = self._clients
        while clients:
            times = clients[next(iter(clients))]
            if times[-1] + self.seconds > now:
                return
            clients.popitem(last=False)


class BusyWindow:
    """A budget of the service's time per client: ``busy`` seconds in any ``seconds`` on
    average, in bursts of at most ``busy`` seconds (a token bucket of the service's time).

    The rule: a client's budget fills at ``busy / seconds`` of a second per second, up to
    ``busy``; each of its requests takes from it the time it took, however long (the budget
    may go below zero); a request that finds it below zero is refused until it has filled
    back to zero. A request still running counts with the time it has taken so far. So a
    client looping requests longer than the budget gets at most that share of the service
    (3 s in 10 s: 30 %), however long each request is.

    :meth:`wait` says 0, or how many seconds until the budget is back to zero (counting a
    running request as ending now); :meth:`start` and :meth:`end` bracket a request that
    went ahead.

    Parameters
    ----------
    busy, seconds : float
    max_clients : int
        The most clients held; past it the client quiet the longest is forgotten.
    clock : callable
        Seconds, monotonic (for tests).

    Examples
    --------
    >>> now = [0.0]
    >>> window = BusyWindow(3, 10, clock=lambda: now[0])
    >>> window.wait("a")
    0.0
    >>> ticket = window.start("a"); now[0] = 8.0; window.end("a", ticket)   # one request of 8 s
    >>> window.wait("a"), window.wait("b")    # 5 s below zero, filling at 0.3 s a second
    (16.666667, 0.0)
    >>> now[0] = 24.7; window.wait("a")
    0.0
    """

    def __init__(self, busy: float, seconds: float, *, max_clients: int = 50_000, clock=time.monotonic):
        if busy <= 0 or seconds <= 0 or max_clients < 1:
            raise ValueError(f"a busy window needs busy > 0, seconds > 0 and max_clients >= 1, got {busy}, "
                             f"{seconds} and {max_clients}")
        self.busy, self.seconds, self.max_clients, self.clock = busy, seconds, max_clients, clock
        self.rate = busy / seconds
        # client -> [budget, when it was last brought up to date, starts of its running requests]
        self._clients: OrderedDict[str, list] = OrderedDict()

    def __len__(self) -> int:
        return len(self._clients)

    def _now(self, client: str, now: float) -> list | None:
        state = self._clients.get(client)
        if state is not None:
            state[0] = min(self.busy, state[0] + self.rate * (now - state[1]))
            state[1] = now
        return state

    def wait(self, client: str) -> float:
        """0.0, or the seconds until the client's budget is back to zero."""
        now = self.clock()
        self._forget(now)
        state = self._now(client, now)
        if state is None:
            return 0.0
        left = state[0] - sum(now - start for start in state[2])
        return 0.0 if left >= 0 else round(-left / self.rate, 6)

    def start(self, client: str) -> float:
        now = self.clock()
        state = self._now(client, now)
        if state is None:
            state = self._clients[client] = [float(self.busy), now, []]
            if len(self._clients) > self.max_clients:
                self._clients.popitem(last=False)
        state[2].append(now)
        self._clients.move_to_end(client)
        return now

    def end(self, client: str, started: float) -> None:
        now = self.clock()
        state = self._now(client, now)
        if state is None:
            return
        state[2].remove(started)
        state[0] -= now - started

    def _forget(self, now: float) -> None:
        """Forget the clients with a full budget and nothing running."""
        for client in list(self._clients):
            budget, when, running = self._clients[client]
            if not running and budget + self.rate * (now - when) >= self.busy:
                del self._clients[client]


_ITEMS = re.compile(r"/collections/[^/]+/items")

WHAT = {"assign": "POST /assign", "areas": "GET /coverage/areas", "print": "GET /export/map.png|pdf",
        "items": "an items request over a wide area (a wide bbox, or a large limit without one)"}
"""The limited requests, by the name of their limit."""


def limited(method: str, path: str, query_string: bytes, *, wide_bbox: float, wide_limit: int) -> str | None:
    """The name of the limit a request falls under (``assign``, ``areas``, ``items``, ``print``), or None.

    Examples
    --------
    >>> limited("POST", "/assign", b"", wide_bbox=0.01, wide_limit=1000)
    'assign'
    >>> limited("GET", "/collections/roads/items", b"bbox=118.4,24.5,118.7,24.9", wide_bbox=0.01, wide_limit=1000)
    'items'
    >>> limited("GET", "/collections/roads/items", b"bbox=118.5,24.8,118.51,24.81&limit=5000", wide_bbox=0.01,
    ...         wide_limit=1000) is None
    True
    >>> limited("GET", "/tiles/grid2/14/13480/7103.mvt", b"", wide_bbox=0.01, wide_limit=1000) is None
    True
    """
    if method == "POST":
        return "assign" if path == "/assign" else None
    if method not in ("GET", "HEAD"):
        return None
    if path == "/coverage/areas":
        return "areas"
    if path in PRINTS:
        return "print"
    if _ITEMS.fullmatch(path) and _wide(query_string, wide_bbox, wide_limit):
        return "items"
    return None


def _wide(query_string: bytes, wide_bbox: float, wide_limit: int) -> bool:
    params = parse_qs(query_string.decode("latin-1"))
    bbox = params.get("bbox")
    if bbox:
        try:
            minx, miny, maxx, maxy = (float(v) for v in bbox[-1].split(","))
        except ValueError:
            return False  # the endpoint refuses it (400) without reading anything
        area = abs(maxx - minx) * abs(maxy - miny)
        return not math.isfinite(area) or area > wide_bbox
    limit = params.get("limit")
    return bool(limit) and limit[-1].strip().isdigit() and int(limit[-1]) > wide_limit


PRINTS = ("/export/map.png", "/export/map.pdf")
"""The printed maps: each a few seconds of drawing."""

_WIDEST = b"bbox=-inf,-inf,inf,inf"
"""A query no bbox or limit setting calls narrow: what :func:`document` asks :func:`limited` about."""


def document(schema: dict, settings) -> dict:
    """Say, in the OpenAPI document (in place), which operations may answer 429: those
    that a limit switched on in ``settings`` applies to, for some query (:func:`limited`).

    Examples
    --------
    >>> from api.settings import Settings
    >>> doc = {"paths": {"/assign": {"post": {"responses": {}}}, "/coverage/areas": {"get": {"responses": {}}},
    ...                  "/collections/{collection_id}/items": {"get": {"responses": {}}},
    ...                  "/tiles": {"get": {"responses": {}}}}}
    >>> settings = Settings(store="x.gpkg", rate_assign="5/10", rate_areas="0", rate_items="10/10", rate_busy="0")
    >>> [(path, method) for path, ops in document(doc, settings)["paths"].items()
    ...  for method, op in ops.items() if "429" in op["responses"]]
    [('/assign', 'post'), ('/collections/{collection_id}/items', 'get')]

    The budget of the service's time (``rate_busy``) covers every heavy request:

    >>> settings = Settings(store="x.gpkg", rate_assign="0", rate_areas="0", rate_items="0", rate_busy="3/10")
    >>> [(path, method) for path, ops in document(doc, settings)["paths"].items()
    ...  for method, op in ops.items() if "429" in op["responses"]]
    [('/assign', 'post'), ('/coverage/areas', 'get'), ('/collections/{collection_id}/items', 'get')]
    """
    rates = {"assign": settings.rate_assign, "areas": settings.rate_areas, "items": settings.rate_items,
             "print": settings.rate_print}
    on = {name for name, text in rates.items() if Rate.parse(text) is not None}
    if Rate.parse(getattr(settings, "rate_busy", "0")) is not None:
        on = set(WHAT)  # the budget of the service's time covers every heavy request
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            name = limited(method.upper(), path, _WIDEST, wide_bbox=settings.rate_wide_bbox,
                           wide_limit=settings.rate_wide_limit)
            if name in on:
                operation.setdefault("responses", {}).setdefault("429", problems.responses(429)[429])
    return schema


def client_of(scope, trusted_proxies: int = 0) -> str:
    """Who is asking: the peer address, or with ``trusted_proxies`` the address the
    outermost of them saw (``X-Forwarded-For``, that many entries from the right);
    an IPv6 address stands for its /64.

    Examples
    --------
    >>> scope = {"client": ("10.0.0.2", 5000), "headers": [(b"x-forwarded-for", b"6.6.6.6, 203.0.113.9")]}
    >>> client_of(scope), client_of(scope, 1), client_of(scope, 2)
    ('10.0.0.2', '203.0.113.9', '6.6.6.6')
    >>> client_of({"client": ("2001:db8::1", 5000), "headers": []})
    '2001:db8::/64'
    """
    peer = (scope.get("client") or ("",))[0] or "unknown"
    if trusted_proxies:
        forwarded = [part.strip() for key, value in scope["headers"] if key == b"x-forwarded-for"
                     for part in value.decode("latin-1").split(",") if part.strip()]
        if forwarded:
            peer = forwarded[-trusted_proxies] if len(forwarded) >= trusted_proxies else forwarded[0]
    try:
        address = ipaddress.ip_address(peer.strip("[]"))
    except ValueError:
        return peer[:100]
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class RateLimit:
    """Per-client limits on the heavy requests of callers without an API key (see the module).

    Parameters
    ----------
    app : ASGI app
    settings : api.settings.Settings
        ``rate_assign``, ``rate_areas``, ``rate_items``, ``rate_print``, ``rate_busy``, ``rate_wide_bbox``,
        ``rate_wide_limit`` and ``trusted_proxies``.
    keys : api.keys.KeyStore
        A caller whose key is in it is not limited.
    clock : callable
        Seconds, monotonic (for tests).
    """

    def __init__(self, app, settings, keys, clock=time.monotonic):
        self.app, self.keys = app, keys
        rates = {"assign": settings.rate_assign, "areas": settings.rate_areas, "items": settings.rate_items,
             "print": settings.rate_print}
        self.rates = {name: rate for name, text in rates.items() if (rate := Rate.parse(text)) is not None}
        self.windows = {name: SlidingWindow(*rate, clock=clock) for name, rate in self.rates.items()}
        busy = Rate.parse(settings.rate_busy)
        self.busy = None if busy is None else BusyWindow(busy.requests, busy.seconds, clock=clock)
        self.wide_bbox, self.wide_limit = settings.rate_wide_bbox, settings.rate_wide_limit
        self.trusted_proxies = settings.trusted_proxies

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not (self.windows or self.busy):
            return await self.app(scope, receive, send)
        name = limited(scope["method"], scope["path"], scope["query_string"], wide_bbox=self.wide_bbox,
                       wide_limit=self.wide_limit)
        if name is None or (name not in self.windows and self.busy is None) or self._has_key(scope):
            return await self.app(scope, receive, send)
        client = client_of(scope, self.trusted_proxies)
        if self.busy is not None and (wait := self.busy.wait(client)):
            seconds = max(1, math.ceil(wait))
            rate = Rate(self.busy.busy, self.busy.seconds)
            detail = (f"the heavy requests of a client without an API key may keep the service busy {rate.requests:g} s "
                      f"in {rate.seconds:g} s, and this client's have used that: retry in {seconds} s. "
                      f"请求过于频繁：无密钥客户端的重型请求平均每 {rate.seconds:g} 秒最多占用服务 {rate.requests:g} 秒，"
                      f"请 {seconds} 秒后重试")
            return await self._refuse(scope, receive, send, name, seconds, detail, "busy")
        if name in self.windows and (wait := self.windows[name].hit(client)):
            seconds = max(1, math.ceil(wait))
            rate = self.rates[name]
            detail = (f"{WHAT[name]} is limited to {rate.requests} requests in {rate.seconds:g} s for each client "
                      f"without an API key: retry in {seconds} s. 请求过于频繁：无密钥的客户端每 {rate.seconds:g} 秒"
                      f"最多 {rate.requests} 次，请 {seconds} 秒后重试")
            return await self._refuse(scope, receive, send, name, seconds, detail, name)
        if self.busy is None:
            return await self.app(scope, receive, send)
        span = self.busy.start(client)
        try:
            await self.app(scope, receive, send)
        finally:
            self.busy.end(client, span)

    async def _refuse(self, scope, receive, send, name, seconds, detail, limit):
        headers = {"Retry-After": str(seconds)}
        if scope["method"] == "POST":
            headers["Connection"] = "close"  # the body is not wanted: do not read it
        response = problems.problem_response(429, "Too Many Requests", detail, instance=scope["path"],
                                             headers=headers, retry_after=seconds, limit=limit)
        await response(scope, receive, send)

    def _has_key(self, scope) -> bool:
        token = _header(scope, b"x-api-key")
        if not token:
            authorization = _header(scope, b"authorization") or ""
            scheme, _, credentials = authorization.partition(" ")
            token = credentials.strip() if scheme.lower() == "bearer" else None
        return bool(token) and self.keys.lookup(token) is not None
