"""Limits under load at city scale: an oversized chunked body, and tiles while someone assigns 100,000 points.

``gridgeo serve`` (one worker) runs on a copy of a prepared city-scale store
(the original is never touched), and:

(a) **body limit**: a client sends ``POST /assign`` as a chunked body of 60 MB
    (no Content-Length: the service must count it as it arrives) over a raw
    socket, and stops sending as soon as an answer comes. Measured: the status
    (413 expected, the limit being ``GRIDGEO_MAX_BODY``, 16 MiB by default),
    seconds from the first byte sent to the answer, the bytes sent by then, and
    the worker's resident memory (VmRSS, and its peak VmHWM) before and after.
(b) **tiles while assigning**: wrk (one thread, ``--connections`` connections,
    ``tiles_wrk.lua`` as ``benchmarks/tiles.py`` drives it) asks a mix of grid
    tiles for ``--seconds`` seconds, four times: alone, then while one
    anonymous client loops ``POST /assign`` of 100,000 points with the limits
    at their defaults (``GRIDGEO_RATE_ASSIGN`` 5 in 10 s and the budget of the
    service's time ``GRIDGEO_RATE_BUSY``, 3 s in 10 s), with the count only,
    and with none. Measured: tiles per second and p50/p99 latency, and the assign
    client's answers by status (429 once the limit is reached) and the median
    time of an answered one. The server is warmed first (tiles, and one small
    ``/assign``, which builds the index it keeps).

Run ``python benchmarks/limits.py --store prepared-city.gpkg``. Each run starts
its own server (a fresh process, so memory and rate windows start clean).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

import gridgeo.store as gstore  # noqa: E402
from common import report, stop_process  # noqa: E402
from tiles import _wrk, tile_mix  # noqa: E402

BODY = 60 * 2**20
POINTS = 100_000


def memory(pid) -> dict:
    """VmRSS and VmHWM of a process, in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


class Serve:
    """``gridgeo serve`` on a free loopback port with some environment, until stopped."""

    def __init__(self, store, work, env):
        from api_fixture import free_port

        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = open(work / f"serve-{self.port}.log", "w")
        environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
        environ.pop("GRIDGEO_TILE_CACHE", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "gridgeo", "serve", "--store", str(store),
                                      "--port", str(self.port), "--workers", "1"], env=environ, cwd=work,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gridgeo serve exited with {self.proc.returncode}: see {self.log.name}")
            try:
                if httpx.get(self.base + "/health", timeout=5).json().get("status") == "ok":
                    return
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gridgeo serve was not ready within 600 s: see {self.log.name}")

    def stop(self):
        stop_process(self.proc, self.log)

    def worker(self) -> int:
        """The pid of the process that answers (with one worker, uvicorn serves in the process itself)."""
        return self.proc.pid


def chunked_body(server) -> dict:
    """Send 60 MB chunked to POST /assign until an answer comes; what it took."""
    pid = server.worker()
    before = memory(pid)
    chunk = (b"[118.512345, 24.812345], " * 2_600)[:65_536]
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /assign HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    start, sent, answer = time.perf_counter(), 0, b""
    sock.setblocking(False)
    payload = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    first = b'{"points": ['
    pending = b"%x\r\n%s\r\n" % (len(first), first)
    while sent < BODY:
        readable, writable, _ = select.select([sock], [sock], [], 5)
        if readable:
            answer = sock.recv(65_536)
            break
        if writable:
            try:
                n = sock.send(pending)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += n
            pending = pending[n:] or payload
    took = time.perf_counter() - start
    sock.setblocking(True)
    sock.settimeout(30)
    try:
        while b"\r\n\r\n" not in answer:
            more = sock.recv(65_536)
            if not more:
                break
            answer += more
    except OSError:
        pass
    sock.close()
    time.sleep(1)
    after = memory(pid)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else None
    return {"status": status, "seconds": took, "sent_mb": sent / 2**20, "before": before, "after": after}


def assign_loop(base, stop, seen, points):
    body = json.dumps({"points": points}).encode()
    with httpx.Client(base_url=base, timeout=600) as client:
        while not stop.is_set():
            start = time.perf_counter()
            r = client.post("/assign", content=body, headers={"Content-Type": "application/json"})
            seen.append((r.status_code, time.perf_counter() - start))


def tiles_while(server, paths, *, seconds, connections, assigning, points) -> dict:
    stop, seen = threading.Event(), []
    thread = None
    if assigning:
        thread = threading.Thread(target=assign_loop, args=(server.base, stop, seen, points), daemon=True)
        thread.start()
        time.sleep(1)
    result = _wrk(server.base, paths, "loop", connections=connections, seconds=seconds)
    stop.set()
    if thread is not None:
        thread.join(600)
    statuses = {}
    for status, _ in seen:
        statuses[status] = statuses.get(status, 0) + 1
    ok = [t for s, t in seen if s == 200]
    return {"wrk": result, "assign": statuses, "assign_s": float(np.median(ok)) if ok else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="a prepared city-scale GeoPackage store (copied)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of wrk per run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--body-only", action="store_true", help="measure (a) only")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    work = Path(tempfile.mkdtemp(prefix="gridgeo-limits-"))
    try:
        store = work / "city.gpkg"
        shutil.copy(args.store, store)
        with gstore.open(store) as s:
            grids = s.read("grids")
        mix = tile_mix(grids, per_zoom=20, seed=args.seed)
        paths = work / "tiles.paths"
        paths.write_text("".join(f"/tiles/{level}/{z}/{x}/{y}.mvt\n" for level, z, x, y in mix))
        rng = np.random.default_rng(args.seed)
        west, south, east, north = grids.total_bounds
        points = np.column_stack([rng.uniform(west, east, POINTS), rng.uniform(south, north, POINTS)]).round(6)
        points = points.tolist()
        rows = []

        server = Serve(store, work, {"GRIDGEO_RATE_ASSIGN": None})
        try:
            # the route's first answer (a small body it refuses) loads what any answer loads: the growth
            # after it is the oversized body's
            first = memory(server.worker())
            small = httpx.post(server.base + "/assign", content=b'{"points": [[1, 2, 3]]}',
                               headers={"Content-Type": "application/json"}, timeout=60).status_code
            body = chunked_body(server)
        finally:
            server.stop()
        rows += [("(a) worker VmRSS at start, after a small refused /assign",
                  f"{first.get('VmRSS', 0):.0f} MB, {body['before'].get('VmRSS', 0):.0f} MB (answered {small})"),
                 ("(a) chunked 60 MB POST /assign", f"{body['status']} after {body['seconds']:.2f} s, "
                                                    f"{body['sent_mb']:.1f} MB sent"),
                 ("    worker VmRSS before / after", f"{body['before'].get('VmRSS', 0):.0f} / "
                                                   f"{body['after'].get('VmRSS', 0):.0f} MB"),
                 ("    worker VmHWM before / after", f"{body['before'].get('VmHWM', 0):.0f} / "
                                                   f"{body['after'].get('VmHWM', 0):.0f} MB")]
        defaults = {"GRIDGEO_RATE_ASSIGN": None, "GRIDGEO_RATE_BUSY": None}
        runs = (("tiles alone", defaults, False),
                ("tiles + /assign loop, limits at their defaults (5/10 requests, 3 s busy in 10 s)", defaults, True),
                ("tiles + /assign loop, count only (5/10), no busy budget", {**defaults, "GRIDGEO_RATE_BUSY": "0"}, True),
                ("tiles + /assign loop, no limits", {"GRIDGEO_RATE_ASSIGN": "0", "GRIDGEO_RATE_BUSY": "0"}, True))
        for label, env, assigning in () if args.body_only else runs:
            print(f"{label} ...", flush=True)
            server = Serve(store, work, env)
            try:
                # warm the caches, and the index /assign builds on its first call
                httpx.post(server.base + "/assign", json={"points": points[:2]}, timeout=600).raise_for_status()
                _wrk(server.base, paths, "loop", connections=args.connections, seconds=5)
                got = tiles_while(server, paths, seconds=args.seconds, connections=args.connections,
                                  assigning=assigning, points=points)
            finally:
                server.stop()
            w = got["wrk"]
            assign = "" if not assigning else (f"; /assign answers {got['assign']}, median 200 in "
                                               f"{got['assign_s']:.2f} s" if got["assign_s"] else
                                               f"; /assign answers {got['assign']}")
            rows.append((f"(b) {label}", f"{w['per_second']:.0f} tiles/s, p50 {w['p50_ms']:.1f} ms, "
                                         f"p99 {w['p99_ms']:.1f} ms{assign}"))
        report(f"limits at city scale ({len(grids):,} units; wrk 1 thread x {args.connections} connections, "
               f"{args.seconds:.0f} s per run)", rows)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
