"""The one map at city scale in headless Chromium: the /map page on vector tiles
against the usual notebook way, geopandas' ``explore()`` (folium, every grid in
one GeoJSON inside the HTML).

Both show the city-scale sample's grids (19 towns, ~400 villages, 441 / 1,736 /
2,528 grids) on a 1920 x 1080 screen:

- gridgeo: ``gridgeo serve`` on a GeoPackage store of the city sample (built
  once into the cache), the page at ``/map`` with its default layers (every
  grid level, stations) and a choropleth of households per village;
- peer: ``grids.explore(column="level", tiles=None)`` of the same grids, saved
  as HTML with Leaflet from api/static/node_modules (``gridgeo.maps``'
  offline mode, since this machine has no internet) and served by the
  benchmark itself.

Measured in fresh browser contexts (no HTTP cache), the servers' derived data
built beforehand (the first start of the service computes figures and
coverage for 800,000 addresses, reported apart):

- open: navigation to the map drawn (gridgeo: ``onemap.idle()``, no request
  or tile pending; peer: the load event and two animation frames, folium
  drawing synchronously);
- bytes: what the browser received (resource timing's encoded body sizes);
- zoom: one step in at the centre to drawn again;
- pan: half a screen east to drawn again.

The page's first open after the service starts renders tiles cold and is
reported apart from the warm medians.

Run ``python benchmarks/map.py [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CACHE, city_sample, report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("GRIDGEO_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREEN = {"width": 1920, "height": 1080}

BYTES_JS = "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))" \
           ".reduce((n, e) => n + (e.encodedBodySize || 0), 0)"
FRAMES_JS = "new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    store = city_store()
    server, started = serve(store)
    try:
        peer_html = peer_page(store)
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            cold = open_gridgeo(browser, server)
            ours, theirs = [], []
            for _ in range(args.repeat):  # taking turns, on a shared and noisy machine
                ours.append(open_gridgeo(browser, server))
                theirs.append(open_peer(browser, server, peer_html))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)

    def med(runs, key):
        return statistics.median(r[key] for r in runs)

    rows = [("service start to first answer of /map/config.json (figures, coverage)", f"{started:.1f} s"),
            ("gridgeo first open, tiles rendered cold", f"{cold['open']:.2f} s, {cold['bytes'] / 1e6:.2f} MB, "
                                                         f"{cold['requests']} requests")]
    for key, unit in (("open", "s"), ("zoom", "s"), ("pan", "s")):
        ours_v, theirs_v = med(ours, key), med(theirs, key)
        rows.append((f"{key}: gridgeo /map vs geopandas explore()",
                     f"{ours_v:.2f} {unit} vs {theirs_v:.2f} {unit}  (ratio {theirs_v / ours_v:.1f}x)"))
    ours_b, theirs_b = med(ours, "bytes"), med(theirs, "bytes")
    rows.append(("bytes received: gridgeo /map vs explore()",
                 f"{ours_b / 1e6:.2f} MB vs {theirs_b / 1e6:.2f} MB  (ratio {theirs_b / ours_b:.1f}x)"))
    rows.append(("requests: gridgeo /map vs explore()", f"{med(ours, 'requests'):.0f} vs {med(theirs, 'requests'):.0f}"))
    report(f"The one map at city scale, medians of {args.repeat} fresh browser contexts", rows)


def city_store() -> Path:
    """A GeoPackage store of the city sample, built once into the cache."""
    store = CACHE / "city-seed7-store.gpkg"
    if not store.exists():
        sample_dir = CACHE / "city-seed7"
        city_sample()
        print(f"loading the city sample into {store} ...", flush=True)
        subprocess.run([sys.executable, "-m", "gridgeo", "load", str(sample_dir), "--store", str(store)], check=True,
                       stdout=subprocess.DEVNULL)
    return store


def serve(store, port=None):
    port = port or free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gridgeo", "serve", "--store", str(store), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc.url = f"http://127.0.0.1:{port}"
    start = time.perf_counter()
    while True:
        try:
            if httpx.get(proc.url + "/map/config.json", timeout=600).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
        if proc.poll() is not None:
            raise RuntimeError("gridgeo serve exited")
    started = time.perf_counter() - start
    httpx.get(proc.url + "/tiles/town/8/213/109.mvt", timeout=600)  # builds the tile set
    return proc, started


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peer_page(store) -> str:
    """geopandas' explore() of the city's grids, with local Leaflet instead of the CDN."""
    import gridgeo.store
    from gridgeo import maps

    with gridgeo.store.open(store) as s:
        grids = s.read("grids")
    m = grids[["code", "name", "level", "parent", "geometry"]].explore(column="level", tiles=None)
    maps.offline(m)  # this machine has no internet: Leaflet from node_modules
    return m.get_root().render()


def timed(page, action, wait) -> float:
    start = time.perf_counter()
    action()
    wait()
    return time.perf_counter() - start


def measure(page, *, open_url, settle) -> dict:
    out = {"open": timed(page, lambda: page.goto(open_url), settle)}
    out["bytes"], out["requests"] = page.evaluate(BYTES_JS), page.evaluate(
        "performance.getEntriesByType('resource').length + 1")
    out["zoom"] = timed(page, lambda: page.evaluate(
        "new Promise((done) => { const m = window.__map; m.once('moveend', done); m.zoomIn(1); })"), settle)
    out["pan"] = timed(page, lambda: page.evaluate(
        "new Promise((done) => { const m = window.__map; m.once('moveend', done); "
        "m.panBy([960, 0], {animate: false}); })"), settle)
    return out


def open_gridgeo(browser, server) -> dict:
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()

    def settle():
        page.wait_for_function("window.onemap && onemap.idle()", timeout=600_000)
        page.evaluate("window.__map = onemap.map")

    try:
        return measure(page, open_url=server.url + "/map#field=households&flevel=village", settle=settle)
    finally:
        context.close()


def open_peer(browser, server, html) -> dict:
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    url = server.url + "/benchmark-explore.html"
    page.route(url, lambda route: route.fulfill(body=html, content_type="text/html"))

    def settle():
        page.wait_for_load_state("load")
        page.evaluate(FRAMES_JS)
        page.evaluate("window.__map = Object.values(window).find((v) => v instanceof L.Map)")
        page.evaluate(FRAMES_JS)

    try:
        return measure(page, open_url=url, settle=settle)
    finally:
        context.close()


if __name__ == "__main__":
    main()
