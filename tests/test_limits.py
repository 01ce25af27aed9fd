"""Limits that hold (api.limits): the body limit counts a chunked body as it arrives, and
anonymous callers of the heavy endpoints are rate-limited per client.

Over real HTTP: ``gridgeo serve`` in a child process (tests/api_fixture.py ``Server``),
httpx as the client. The rest of the suite runs its services without rate limits
(api_fixture sets them to 0); here they are on, at their defaults in one server.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import doctest
import json
import time
from pathlib import Path

import httpx
import pytest

import api.limits
from api.limits import BodyLimit, Rate, SlidingWindow, client_of, limited
from api_fixture import RATE_SETTINGS, Server

MAX_BODY = 1_000_000
MAX_UPLOAD = 3_000_000
CHUNK = b"[118.512345, 24.812345], " * 2_000  # 50 kB of points
WIDE = "118.40,24.70,118.55,24.85"  # 0.0225 square degrees: a wide box
NARROW = "118.45,24.76,118.48,24.79"  # 0.0009: a narrow one
TILE = "/tiles/grid2/14/13588/7106.mvt"
POINTS = {"points": [[118.47, 24.80], [118.45, 24.78]]}


@pytest.fixture(scope="module")
def limited_server(sample_store, api_keys):
    """Small limits, and clients told apart by X-Forwarded-For (one trusted proxy): each
    test asks as clients of its own."""
    s = Server(str(sample_store), env={
        "GRIDGEO_KEYS_FILE": api_keys["file"], "GRIDGEO_MAX_BODY": str(MAX_BODY),
        "GRIDGEO_MAX_UPLOAD": str(MAX_UPLOAD), "GRIDGEO_RATE_ASSIGN": "2/2", "GRIDGEO_RATE_AREAS": "2/60",
        "GRIDGEO_RATE_ITEMS": "2/60", "GRIDGEO_TRUSTED_PROXIES": "1"}, warm=())
    viewer = {"X-API-Key": api_keys["viewer"]}
    # build the derived data as a key holder (never limited), so that limited requests are quick
    assert httpx.post(s.url + "/assign", json=POINTS, headers=viewer, timeout=300).status_code == 200
    assert httpx.get(s.url + "/coverage/areas", headers=viewer, timeout=300).status_code == 200
    yield s
    s.stop()


@pytest.fixture(scope="module")
def default_server(sample_store, api_keys):
    """The service as it starts with no rate settings: the defaults."""
    s = Server(str(sample_store), env={"GRIDGEO_KEYS_FILE": api_keys["file"],
                                       **{name: None for name in RATE_SETTINGS}}, warm=())
    assert httpx.post(s.url + "/assign", json=POINTS, headers={"X-API-Key": api_keys["viewer"]},
                      timeout=300).status_code == 200
    yield s
    s.stop()


def _as(client: str) -> dict:
    return {"X-Forwarded-For": client}


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


# --- the body limit ---------------------------------------------------------------------


def _in_flight_at_most() -> int:
    """The most a loopback connection can hold between the sender and a receiver that
    has stopped reading: the largest receive and send buffers the kernel allows."""
    def largest(name):
        return int(Path(f"/proc/sys/net/ipv4/{name}").read_text().split()[2])

    return largest("tcp_rmem") + largest("tcp_wmem")


def _peak_memory(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _points_body(total: int, sent: dict):
    """A JSON body of points, ``total`` bytes and more, made as it is sent; ``sent`` counts."""
    yield b'{"points": ['
    while sent["bytes"] < total:
        sent["bytes"] += len(CHUNK)
        yield CHUNK
    yield b"[118.5, 24.8]]}"


@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_body_over_the_limit_is_refused_as_it_arrives(limited_server, api_keys, framing):
    # The server reads no more than the limit and one chunk; what the client sent beyond that is
    # at most what the kernel holds in flight. A server that read the whole body would take it all.
    bound = MAX_BODY + _in_flight_at_most() + 2**20
    total = 4 * bound
    sent = {"bytes": 0}
    headers = {"Content-Type": "application/json", "X-API-Key": api_keys["viewer"]}
    if framing == "content-length":
        headers["Content-Length"] = str(total + len(b'{"points": [') + len(b"[118.5, 24.8]]}"))
    before = _peak_memory(limited_server.proc.pid)
    r = httpx.post(limited_server.url + "/assign", content=_points_body(total, sent), headers=headers,
                   timeout=120)
    body = _problem(r, 413)
    assert f"{MAX_BODY:,} bytes" in body["detail"] and r.headers["connection"] == "close"
    assert sent["bytes"] <= bound < total
    assert _peak_memory(limited_server.proc.pid) - before < 32 * 2**20  # nothing like the body in memory
    assert httpx.get(limited_server.url + "/health").status_code == 200


def test_a_chunked_body_under_the_limit_is_served(limited_server, api_keys):
    def body():
        text = json.dumps({"points": [[118.47, 24.80]] * 20_000}).encode()  # about 300 kB
        for start in range(0, len(text), 4096):
            yield text[start:start + 4096]

    r = httpx.post(limited_server.url + "/assign", content=body(), timeout=60,
                   headers={"Content-Type": "application/json", "X-API-Key": api_keys["viewer"]})
    assert r.status_code == 200 and r.json()["count"] == 20_000


def _upload(size: int, sent: dict):
    yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="grids.geojson"\r\n' \
          b"Content-Type: application/geo+json\r\n\r\n"
    while sent["bytes"] < size:
        sent["bytes"] += 65536
        yield b" " * 65536
    yield b"\r\n--b--\r\n"


def test_uploads_have_their_own_larger_limit(limited_server):
    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    # over the body limit, under the upload limit: read whole, then refused for want of a key
    r = httpx.post(limited_server.url + "/imports", content=_upload(2 * MAX_BODY, {"bytes": 0}), headers=headers,
                   timeout=60)
    _problem(r, 401)
    bound = MAX_UPLOAD + _in_flight_at_most() + 2**20
    sent = {"bytes": 0}
    r = httpx.post(limited_server.url + "/imports", content=_upload(2 * bound, sent), headers=headers, timeout=60)
    assert f"{MAX_UPLOAD:,} bytes" in _problem(r, 413)["detail"]
    assert sent["bytes"] <= bound


def test_a_body_past_the_limit_after_the_response_started_breaks_the_connection():
    # an endpoint that answers first and reads later cannot be given a 413: the error goes on to
    # the server, which closes the connection
    sent = []

    async def streaming_app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            pass

    async def receive():
        return {"type": "http.request", "body": b"x" * 600, "more_body": True}

    async def send(message):
        sent.append(message)

    app = BodyLimit(streaming_app, max_bytes=1000)
    scope = {"type": "http", "method": "POST", "path": "/stream", "headers": []}
    # in a thread of its own: the session's browser fixtures may hold a running loop in this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        with pytest.raises(Exception) as refused:
            pool.submit(asyncio.run, app(scope, receive, send)).result()
    assert getattr(refused.value, "status_code", None) == 413
    assert [m["type"] for m in sent] == ["http.response.start"]


# --- rate limits --------------------------------------------------------------------------


def test_the_defaults_hold_the_sixth_assign_in_ten_seconds(default_server, api_keys):
    url = default_server.url
    answers = [httpx.post(url + "/assign", json=POINTS) for _ in range(6)]
    assert [r.status_code for r in answers[:5]] == [200] * 5
    body = _problem(answers[5], 429)
    seconds = int(answers[5].headers["retry-after"])
    assert 1 <= seconds <= 10 and body["retry_after"] == seconds and f"retry in {seconds} s" in body["detail"]
    assert "5 requests in 10 s" in body["detail"]
    # an unknown key is no key; a key holder is not limited; tiles never are
    assert httpx.post(url + "/assign", json=POINTS, headers={"X-API-Key": "gg_guess"}).status_code == 429
    viewer = {"X-API-Key": api_keys["viewer"]}
    assert {httpx.post(url + "/assign", json=POINTS, headers=viewer).status_code for _ in range(8)} == {200}
    assert 429 not in {httpx.get(url + TILE, timeout=300).status_code for _ in range(30)}


def test_an_anonymous_client_over_its_assign_limit_waits_retry_after(limited_server):
    url, me = limited_server.url, _as("203.0.113.10")
    assert [httpx.post(url + "/assign", json=POINTS, headers=me).status_code for _ in range(2)] == [200, 200]
    refused = httpx.post(url + "/assign", json=POINTS, headers=me)
    body = _problem(refused, 429)
    seconds = int(refused.headers["retry-after"])
    assert seconds == body["retry_after"] and 1 <= seconds <= 2 and body["limit"] == "assign"
    assert "请" in body["detail"] and body["instance"] == "/assign"
    # another client is not held by it
    assert httpx.post(url + "/assign", json=POINTS, headers=_as("203.0.113.11")).status_code == 200
    time.sleep(seconds)
    assert httpx.post(url + "/assign", json=POINTS, headers=me).status_code == 200


def test_wide_items_and_service_areas_are_limited_and_tiles_never(limited_server):
    url = limited_server.url

    def statuses(path, client, n=3):
        return [httpx.get(url + path, headers=_as(client), timeout=300).status_code for _ in range(n)]

    assert statuses(f"/collections/roads/items?bbox={WIDE}&limit=1", "198.51.100.1") == [200, 200, 429]
    assert statuses("/collections/roads/items?limit=5000", "198.51.100.2") == [200, 200, 429]
    assert statuses("/coverage/areas?minutes=5", "198.51.100.3") == [200, 200, 429]
    # narrow boxes, small pages, tiles and pages for people: never limited
    assert statuses(f"/collections/roads/items?bbox={NARROW}&limit=5000", "198.51.100.4", 6) == [200] * 6
    assert statuses("/collections/roads/items?limit=10", "198.51.100.4", 6) == [200] * 6
    assert 429 not in statuses(TILE, "198.51.100.4", 20)
    assert statuses("/collections", "198.51.100.4", 6) == [200] * 6


def test_a_forwarded_for_header_is_believed_only_behind_a_trusted_proxy(sample_store, api_keys):
    from fastapi.testclient import TestClient

    from api import Settings, create_app

    def answers(trusted):
        settings = Settings(store=str(sample_store), keys_file=api_keys["file"], rate_assign="1/60",
                            trusted_proxies=trusted)
        with TestClient(create_app(settings)) as client:  # no proxy middleware: the peer is "testclient"
            return [client.post("/assign", json=POINTS, headers=_as(f"192.0.2.{i}, 10.0.0.1")).status_code
                    for i in (1, 2)]

    assert answers(0) == [200, 429]  # one peer, whatever the header says
    assert answers(2) == [200, 200]  # two proxies: the address the outer one saw


# --- the parts ------------------------------------------------------------------------


def test_a_sliding_window_allows_so_many_in_any_span_and_forgets_quiet_clients():
    now = [0.0]
    window = SlidingWindow(3, 10, clock=lambda: now[0], max_clients=100)
    for t in (0, 1, 2):
        now[0] = t
        assert window.hit("a") == 0
    for t, wait in ((3, 7), (9.5, 0.5)):
        now[0] = t
        assert window.hit("a") == pytest.approx(wait)
    now[0] = 10.0  # the hit at 0 has left the window: one more, and no more until 11
    assert window.hit("a") == 0 and window.hit("a") == pytest.approx(1)
    for i in range(1000):  # a flood of addresses: the table keeps at most max_clients
        window.hit(f"10.0.{i // 256}.{i % 256}")
    assert len(window) == 100
    now[0] = 100.0
    assert window.hit("b") == 0 and len(window) == 1  # everyone quiet for a window is forgotten


def test_a_client_whose_heavy_requests_are_long_is_held_by_the_budget_of_the_services_time(sample_store):
    """One anonymous client looping long requests never passes 5 in 10 s (measured: 100,000-point
    /assign, 13 s each, cut the tile throughput 4-8 times): its heavy requests share 3 s of the
    service's time in any 10 s. The clock is the test's; each request 'takes' what it asks."""
    from fastapi.testclient import TestClient

    from api import Settings
    from api.limits import RateLimit

    now = [0.0]

    async def service(scope, receive, send):  # a heavy endpoint that takes ?s= seconds of the clock
        now[0] += float(scope["query_string"].decode().partition("=")[2] or 0)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    class NoKeys:
        def lookup(self, token):
            return None

    settings = Settings(store=str(sample_store), rate_assign="5/10", rate_areas="0", rate_items="0", rate_print="0",
                        rate_busy="3/10", trusted_proxies=1)
    client = TestClient(RateLimit(service, settings, NoKeys(), clock=lambda: now[0]))
    me, other = _as("203.0.113.50"), _as("203.0.113.51")
    assert client.post("/assign?s=8", headers=me).status_code == 200  # 8 s: the budget is spent
    refused = client.post("/assign?s=0.1", headers=me)
    body = _problem(refused, 429)
    # the budget (3 s, filling at 0.3 s a second) is 5 s below zero: back to zero in 16.7 s
    assert body["limit"] == "busy" and refused.headers["retry-after"] == "17" and "3 s in 10 s" in body["detail"]
    assert client.get("/coverage/areas?s=0.1", headers=me).status_code == 429  # every heavy request shares it
    assert client.post("/assign?s=0.1", headers=other).status_code == 200  # another client is not held
    assert client.get("/tiles/grid2/14/1/1.mvt?s=0.1", headers=me).status_code == 200  # tiles never are
    now[0] = 24.6
    assert client.post("/assign?s=1", headers=me).status_code == 429
    now[0] = 24.7
    assert client.post("/assign?s=1", headers=me).status_code == 200
    # looped for an hour of the clock, requests of 13 s get at most 30 % of the service, not all of it
    start, served = now[0], 0.0
    while now[0] < start + 3600:
        if client.post("/assign?s=13", headers=me).status_code == 200:
            served += 13
        else:
            now[0] += 1.0  # the client retries a second later
    assert 0.25 < served / (now[0] - start) <= 0.3  # 13 / (13 + 10 / 0.3) = 0.28 with this rule
    # short requests never meet it before the count does: five of 0.1 s, the sixth refused by the count
    now[0] = 100.0
    answers = [client.post("/assign?s=0.1", headers=_as("203.0.113.52")) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 5 + [429] and answers[5].json()["limit"] == "assign"


def test_a_busy_window_counts_the_time_of_running_requests_too():
    from api.limits import BusyWindow

    now = [0.0]
    window = BusyWindow(3, 10, clock=lambda: now[0])
    running = window.start("a")
    now[0] = 2.0
    assert window.wait("a") == 0  # 2 s so far
    now[0] = 4.0
    assert window.wait("a") > 0  # a second request while the first has run 4 s: over the budget
    window.end("a", running)  # 3 + 1.2 filled - 4 = ... the budget is min(3, 3 + 1.2) - 4 = -1
    assert window.wait("a") == pytest.approx(1 / 0.3)
    now[0] = 4.0 + 1 / 0.3
    assert window.wait("a") == 0
    now[0] = 30.0
    window.wait("b")
    assert len(window) == 0  # quiet clients (their budget full again) are forgotten


def test_which_requests_are_limited():
    wide = {"wide_bbox": 0.01, "wide_limit": 1000}
    assert limited("POST", "/assign", b"", **wide) == "assign"
    assert limited("GET", "/coverage/areas", b"minutes=15", **wide) == "areas"
    assert limited("HEAD", "/collections/grid2/items", f"bbox={WIDE}".encode(), **wide) == "items"
    assert limited("GET", "/collections/grid2/items", b"limit=1001", **wide) == "items"
    for method, path, query in (("GET", "/collections/grid2/items", f"bbox={NARROW}&limit=9999".encode()),
                                ("GET", "/collections/grid2/items", b"limit=1000"),
                                ("GET", "/collections/grid2/items", b"bbox=oops"),
                                ("GET", "/collections/grid2", b"limit=5000"),
                                ("GET", "/coverage", b""), ("GET", TILE, b""), ("POST", "/plans", b"")):
        assert limited(method, path, query, **wide) is None, (method, path, query)


def test_a_client_is_its_address_and_an_ipv6_host_its_network():
    scope = {"client": ("::ffff:192.0.2.7", 1), "headers": []}
    assert client_of(scope) == "192.0.2.7"
    assert client_of({"client": ("2001:db8:1:2::5", 1), "headers": []}) == \
        client_of({"client": ("2001:db8:1:2:ffff::9", 1), "headers": []}) == "2001:db8:1:2::/64"
    assert client_of({"client": None, "headers": []}) == "unknown"


def test_rate_settings_are_checked_when_the_service_starts():
    from pydantic import ValidationError

    from api import Settings

    with pytest.raises(ValidationError, match="(?s)rate_assign.*'fast' is not a rate: write requests/seconds"):
        Settings(rate_assign="fast")
    assert Rate.parse("0") is None and Rate.parse(" 5 / 10s ") == Rate(5, 10.0)
    assert Settings(rate_items="0").rate_items == "0"


def test_the_doctests_of_the_limits_run():
    result = doctest.testmod(api.limits, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0
