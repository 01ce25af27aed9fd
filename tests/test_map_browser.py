"""The one map (/map) in headless Chromium against a real `gridgeo serve` on 127.0.0.1.

Every page is watched (tests/browser_fixture.py): a request to any other host
or a console error fails the test. What the page shows is checked against the
sample computed here independently: spatial joins for the figures, shapely
areas and lengths for the pixels, pandas for the event counts, the grid frame
for the breadcrumbs. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from urllib.parse import parse_qs

import geopandas as gpd
import httpx
import mapclassify
import numpy as np
import pytest
import shapely
from PIL import Image

from browser_fixture import FITS_JS, export_downloads, screenshot
from gridgeo.labels import label_points
from gridgeo.maps import style

pytestmark = pytest.mark.browser

MERCATOR_PX = 2 * np.pi * 6378137 / 256  # Web Mercator metres per pixel at zoom 0


# --- helpers --------------------------------------------------------------------


def settle(page, timeout=30_000):
    """Wait until the page has no request of its own and no tile on its way."""
    page.wait_for_function("window.onemap && onemap.idle()", timeout=timeout)
    page.wait_for_timeout(150)


def zoom_in(page):
    page.evaluate("new Promise((done) => { onemap.map.once('moveend', done); onemap.map.zoomIn(1); })")
    settle(page)


def container_point(page, lat, lon):
    """Where a place is on the screen (page pixels)."""
    return page.evaluate("""([lat, lon]) => {
        const p = onemap.map.latLngToContainerPoint([lat, lon]);
        const r = onemap.map.getContainer().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top];
    }""", [lat, lon])


def map_pixels(page, name) -> np.ndarray:
    """The map area's pixels (RGB), saved as a test artefact too."""
    png = screenshot(page, name, selector="#map")
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])


def over(colour, alpha, under) -> np.ndarray:
    """A colour painted with ``alpha`` over another."""
    return alpha * hex_rgb(colour) + (1 - alpha) * np.asarray(under)


def near(pixels, rgb, tol=4) -> np.ndarray:
    return (np.abs(pixels - np.round(rgb)) <= tol).all(axis=-1)


def view_box(page):
    """The map's view in Web Mercator metres, and its zoom."""
    west, south, east, north, zoom = page.evaluate(
        "(() => { const b = onemap.map.getBounds(); "
        "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth(), onemap.map.getZoom()]; })()")
    box = gpd.GeoSeries([shapely.box(west, south, east, north)], crs=4326).to_crs(3857).iloc[0]
    return box, zoom


def legend_rows(page, which):
    return page.locator(f"[data-legend='{which}'] .row").all_inner_texts()


@pytest.fixture(scope="module")
def units(sample):
    """Grid units with their label points and households from an exact spatial join."""
    grids = sample.grids
    points = label_points(grids).set_index("code")
    joined = gpd.sjoin(sample.addresses[["households", "geometry"]], grids[["code", "geometry"]],
                       predicate="within")
    households = joined.groupby("code")["households"].sum()
    out = grids.set_index("code")[["name", "level", "parent", "geometry"]].copy()
    out["households"] = households.reindex(out.index).fillna(0).astype(int)
    out["lat"], out["lon"], out["room_m"] = points.geometry.y, points.geometry.x, points["radius_m"]
    return out


def roomy(units, level, n=1):
    """The ``n`` units of a level with the most room around their label point."""
    return units[units["level"] == level].sort_values("room_m", ascending=False).head(n)


def chain_names(units, code):
    names = []
    while code:
        names.append(units.at[code, "name"])
        code = units.at[code, "parent"]
    return names[::-1]


# --- the page -----------------------------------------------------------------------


def test_page_loads_from_the_service_alone_and_draws_the_town(server, open_page, sample):
    page, watch = open_page(server.url + "/map")
    settle(page)
    screenshot(page, "map-overview.png")
    # every asset from this service: Leaflet and its plugins from npm, tiles of every level
    assert "/static/vendor/leaflet/leaflet.js" in watch.paths()
    assert "/static/vendor/leaflet.vectorgrid/Leaflet.VectorGrid.bundled.min.js" in watch.paths()
    for layer in ("town", "village", "grid1", "grid2", "stations"):
        assert watch.paths(f"/tiles/{layer}/"), f"no {layer} tiles were requested"
    assert not watch.paths("/collections/addresses")
    # KPIs: the whole city's figures
    kpis = dict(zip(page.locator("#kpis dt").all_inner_texts(), page.locator("#kpis dd").all_inner_texts()))
    assert kpis["户数"] == f"{int(sample.addresses['households'].sum()):,}"
    assert kpis["服务站点"] == f"{len(sample.stations):,}"
    counts = sample.grids["level"].value_counts()
    parts = page.locator("#kpis [data-kpi='grids'] .part")
    assert {parts.nth(k).get_attribute("data-level"): parts.nth(k).inner_text().replace("\n", "")
            for k in range(parts.count())} == {lv: f"{label}{counts[lv]:,}" for lv, label in
                                               (("grid1", "一级"), ("grid2", "二级"), ("grid3", "三级"))}
    # the town's boundary is drawn along all of its visible length
    pixels = map_pixels(page, "map-overview-canvas.png")
    box, zoom = view_box(page)
    town = sample.grids[sample.grids["level"] == "town"].to_crs(3857).geometry.iloc[0]
    visible_px = shapely.length(shapely.intersection(town.boundary, box)) / (MERCATOR_PX / 2**zoom)
    line = style()["levels"]["town"]
    drawn = near(pixels, over(line["color"], line["opacity"], hex_rgb(style()["background"])), tol=24).sum()
    assert drawn > visible_px, (drawn, visible_px)  # a 3.2 px line: over a pixel of colour per pixel of length


def test_tiles_fill_exactly_the_town(server, open_page, sample):
    # no boundaries, no labels, no stations: the land fill alone, against the town's area
    page, _ = open_page(server.url + "/map#map=13.5/24.8037/118.4632&layers=")
    settle(page)
    pixels = map_pixels(page, "map-land.png")
    box, zoom = view_box(page)
    town = sample.grids[sample.grids["level"] == "town"].to_crs(3857).geometry.iloc[0]
    expected = shapely.area(shapely.intersection(town, box)) / (MERCATOR_PX / 2**zoom) ** 2
    land = style()["land"]
    painted = near(pixels, over(land["fillColor"], land["fillOpacity"], hex_rgb(style()["background"])), tol=3).sum()
    assert painted == pytest.approx(expected, rel=0.02)


def test_clicking_a_grid_opens_its_panel_with_its_figures(server, open_page, units):
    code, grid = next(roomy(units, "grid2").iterrows())
    page, _ = open_page(server.url + f"/map#map=16/{grid.lat:.6f}/{grid.lon:.6f}")
    settle(page)
    # VectorGrid 1.3.0 throws on this click with Leaflet 1.9 unless vectorgrid-fix.js is loaded
    page.mouse.click(*container_point(page, grid.lat, grid.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{code}'", timeout=15_000)
    settle(page)
    screenshot(page, "map-grid-clicked.png")
    assert page.inner_text("#unit-name") == grid["name"]
    households = page.inner_text("[data-figure='households'] dd")
    assert households == f"{grid.households:,}"
    crumbs = page.locator("#breadcrumbs a").all_inner_texts()
    assert crumbs == ["晋江市", *chain_names(units, grid.parent)]
    outlined = page.evaluate("onemap.outline.getLayers().flatMap((g) => g.getLayers()).map((l) => l.feature.id)")
    assert outlined == [code]


def test_hovering_a_grid_names_it_with_its_households(server, open_page, units):
    code, grid = next(roomy(units, "grid2").iterrows())
    page, _ = open_page(server.url + f"/map#map=16/{grid.lat:.6f}/{grid.lon:.6f}")
    settle(page)
    x, y = container_point(page, grid.lat, grid.lon)
    page.mouse.move(x - 3, y - 3)
    page.mouse.move(x, y, steps=4)
    page.wait_for_selector("#hover", state="visible", timeout=10_000)
    assert page.get_attribute("#hover", "data-code") == code
    text = page.inner_text("#hover")
    assert grid["name"] in text and "二级网格" in text and f"户数 {grid.households:,}" in text, text
    screenshot(page, "map-hover.png")
    page.mouse.move(2, 300)  # off the map, onto the controls
    page.wait_for_selector("#hover", state="hidden", timeout=5_000)


def test_without_the_vectorgrid_fix_a_click_throws(server, open_page, units):
    grid = roomy(units, "grid2").iloc[0]
    page, watch = open_page(
        server.url + f"/map#map=16/{grid.lat:.6f}/{grid.lon:.6f}",
        before=lambda p: p.route("**/vectorgrid-fix.js",
                                 lambda r: r.fulfill(body="", content_type="text/javascript")))
    settle(page)
    page.mouse.click(*container_point(page, grid.lat, grid.lon))
    page.wait_for_timeout(500)
    assert any("fakeStop is not a function" in e for e in watch.errors), watch.errors
    assert page.evaluate("document.body.dataset.unit") == "350582"  # nothing selected: the trap is real
    watch.errors.clear()


def test_a_click_drills_down_and_the_breadcrumbs_lead_back_up(server, open_page, units):
    code, village = next(roomy(units, "village").iterrows())
    page, _ = open_page(server.url + "/map")
    settle(page)
    page.mouse.click(*container_point(page, village.lat, village.lon))  # the overview shows villages
    page.wait_for_function(f"document.body.dataset.unit === '{code}'", timeout=15_000)
    settle(page)
    grid1 = units[units["parent"] == code]
    assert page.locator(".children tr.child td:first-child").all_inner_texts() == sorted(
        grid1["name"], key=lambda n: grid1.index[grid1["name"] == n][0])
    # down: a child from the list, then one of its grids
    first = grid1.index[0]
    page.click(f".children tr.child[data-code='{first}']")
    page.wait_for_function(f"document.body.dataset.unit === '{first}'")
    grid2 = units[units["parent"] == first].index
    page.click(f".children tr.child[data-code='{grid2[0]}']")
    page.wait_for_function(f"document.body.dataset.unit === '{grid2[0]}'")
    settle(page)
    screenshot(page, "map-drilled.png")
    assert page.locator("#breadcrumbs a").all_inner_texts() == ["晋江市", *chain_names(units, first)]
    # up: the village's crumb, then "返回上级" to the town, then the city
    page.click(f"#breadcrumbs a[data-code='{code}']")
    page.wait_for_function(f"document.body.dataset.unit === '{code}'")
    page.click("#unit-up")
    page.wait_for_function(f"document.body.dataset.unit === '{village.parent}'")
    page.click("#breadcrumbs a[data-code='350582']")
    page.wait_for_function("document.body.dataset.unit === '350582'")
    assert page.inner_text("#unit-name") == "晋江市"
    assert "unit=" not in page.url


def test_clicks_inside_a_village_go_down_one_level_at_a_time(server, open_page, units):
    code, village = next(roomy(units, "village").iterrows())
    page, _ = open_page(server.url + "/map")
    settle(page)
    page.mouse.click(*container_point(page, village.lat, village.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{code}'", timeout=15_000)
    settle(page)  # the map fits the village: its level-2 grids' names show at this zoom
    grid1 = units[(units["parent"] == code)]
    target = grid1.iloc[0]
    page.mouse.click(*container_point(page, target.lat, target.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{grid1.index[0]}'", timeout=15_000)
    settle(page)
    grid2 = units[units["parent"] == grid1.index[0]]
    inner = grid2.iloc[0]
    page.mouse.click(*container_point(page, inner.lat, inner.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{grid2.index[0]}'", timeout=15_000)


def test_search_finds_a_grid_by_its_chinese_name(server, open_page, units):
    unique = units[~units["name"].duplicated(keep=False)]  # names repeat across level-1 grids
    code, grid = list(unique[unique["level"] == "grid2"].iterrows())[7]
    page, _ = open_page(server.url + "/map")
    page.fill("#search", grid["name"])
    page.wait_for_selector(f"#search-results li[data-code='{code}']")
    assert grid["name"] in page.locator("#search-results li").first.inner_text()
    page.press("#search", "Enter")
    page.wait_for_function(f"document.body.dataset.unit === '{code}'")
    settle(page)
    assert page.inner_text("#unit-name") == grid["name"]
    lat, lon = page.evaluate("[onemap.map.getCenter().lat, onemap.map.getCenter().lng]")
    assert grid.geometry.buffer(0.002).contains(shapely.Point(lon, lat))  # the map went there


def test_search_by_pinyin_and_by_several_words(server, open_page):
    page, _ = open_page(server.url + "/map")
    page.fill("#search", "xuyuan")
    page.wait_for_selector("#search-results li[data-code='350582106211']")
    assert page.locator("#search-results li").first.get_attribute("data-code") == "350582106211"  # 许园村 first
    page.fill("#search", "许园 第3")
    page.wait_for_function("document.querySelector('#search-results li')?.dataset.code === '3505821062110103'")
    assert "许园村第3网格" in page.locator("#search-results li").first.inner_text()
    page.press("#search", "Enter")
    page.wait_for_function("document.body.dataset.unit === '3505821062110103'")
    settle(page)
    assert page.inner_text("#unit-name") == "许园村第3网格"


def test_a_slow_answer_shows_progress_and_a_failed_one_a_message_that_stays(server, open_page):
    slow = """(() => { const f = window.fetch; window.fetch = async (u, o) => {
        if (String(u).includes('/breaks')) await new Promise((r) => setTimeout(r, 2500)); return f(u, o); }; })()"""
    page, watch = open_page(server.url + "/map", before=lambda p: p.add_init_script(slow))
    settle(page)
    assert page.locator("#progress").is_hidden()
    page.select_option("#choropleth-field", "households")
    page.wait_for_selector("#progress", state="visible", timeout=2_000)  # shown after 300 ms of waiting
    assert page.inner_text("#progress") == "加载中…"
    screenshot(page, "map-progress.png")
    settle(page)
    page.wait_for_selector("#progress", state="hidden", timeout=5_000)

    # the service out of reach: a message naming what failed (not a path), until it is closed
    page.context.set_offline(True)
    page.click("#coverage-choice button[data-minutes='15']")
    page.wait_for_selector("#message", state="visible", timeout=30_000)
    text = page.inner_text("#message-text")
    assert "生活圈覆盖" in text and "连不上服务" in text and "/coverage" not in text, text
    page.wait_for_timeout(3_000)  # longer than a toast stays
    assert page.locator("#message").is_visible()
    screenshot(page, "map-service-unreachable.png")
    page.click("#message-close")
    assert page.locator("#message").is_hidden()
    page.context.set_offline(False)
    watch.errors[:] = [e for e in watch.errors if "ERR_INTERNET_DISCONNECTED" not in e]  # the refused requests


def test_a_stale_link_opens_the_nearest_view_and_says_what_it_could_not_open(server, open_page, units):
    grid = units[units["level"] == "grid2"].index[0]
    gone = grid[:-2] + "99"  # a level-2 grid its level-1 grid does not have (redrawn since the link was made)
    page, watch = open_page(server.url + f"/map#unit={gone}&field=no_such_figure&cat=no_such_category")
    settle(page)
    page.wait_for_function(f"document.body.dataset.unit === '{grid[:-2]}'")
    assert page.inner_text("#unit-name") == units.loc[grid[:-2], "name"]
    text = page.inner_text("#message-text")
    assert page.locator("#message").get_attribute("data-kind") == "warning"
    assert gone in text and units.loc[grid[:-2], "name"] in text, text
    assert page.evaluate("onemap.state.field") == "" and page.evaluate("onemap.state.category") == ""
    assert "field=" not in page.url and "cat=" not in page.url
    screenshot(page, "map-stale-link.png")
    watch.errors[:] = [e for e in watch.errors if "status of 404" not in e]  # the unit asked for, and refused


FITS = """(() => {
    const line = (el) => parseFloat(getComputedStyle(el).lineHeight) || 1.35 * parseFloat(getComputedStyle(el).fontSize);
    const single = (el) => {
        const cs = getComputedStyle(el);
        const inner = el.getBoundingClientRect().height - ['paddingTop', 'paddingBottom', 'borderTopWidth',
            'borderBottomWidth'].reduce((sum, k) => sum + parseFloat(cs[k]), 0);
        return inner < 1.7 * line(el);
    };""" + FITS_JS + """
    const cut = [...document.querySelectorAll('#kpis dd, #kpis dt, #share, #language, .export summary, #label-scale button')]
        .filter((el) => !single(el) || el.scrollWidth > el.clientWidth + 1).map((el) => el.outerHTML);
    for (const el of document.querySelectorAll('#controls .segmented'))
        if (el.scrollWidth > el.clientWidth + 1) cut.push(`row ${el.textContent.trim()}`);
    const search = document.getElementById('search');
    if (!fits(search, search.placeholder)) cut.push(`placeholder ${search.placeholder}`);
    // every figure's name in the thematic menu (the closed select shows one at a time)
    const field = document.getElementById('choropleth-field');
    for (const option of field.options) if (!fits(field, option.textContent + '  ')) cut.push(`menu ${option.textContent}`);
    const top = document.getElementById('top');
    const outside = [...top.querySelectorAll('button, input, summary, dl')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5).map((el) => el.id || el.tagName);
    return {cut, outside, top: top.scrollWidth <= top.clientWidth};
})()"""


@pytest.mark.parametrize("viewport", [(1366, 768), (1920, 1080)])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_in_either_language_the_top_bar_the_menus_and_the_buttons_hold_their_words(server, open_page, lang, viewport):
    """English words are longer than Chinese ones: nothing is cut or pushed off the screen in either language."""
    width, height = viewport
    page, _ = open_page(server.url + f"/map#lang={lang}", viewport={"width": width, "height": height})
    settle(page)
    assert page.evaluate("document.documentElement.lang") == ("en" if lang == "en" else "zh-CN")
    assert page.evaluate(FITS) == {"cut": [], "outside": [], "top": True}
    screenshot(page, f"map-{lang}-{width}.png")


# --- layers and the choropleth ----------------------------------------------------------


def test_toggling_a_level_stops_and_resumes_its_tiles(server, open_page):
    page, watch = open_page(server.url + "/map")
    settle(page)
    page.uncheck("input[data-layer='grid2']")
    settle(page)
    before = len(watch.requests)
    zoom_in(page)  # new tiles, but none of level 2

    after = [u for u in watch.requests[before:] if "/tiles/" in u]
    assert any("/tiles/village/" in u for u in after) and not any("/tiles/grid2/" in u for u in after)
    assert "grid2" not in parse_qs(page.url.split("#", 1)[1])["layers"][0].split(",")
    page.check("input[data-layer='grid2']")
    settle(page)
    assert any("/tiles/grid2/" in u for u in watch.requests[before:])


def test_roads_are_drawn_under_the_grids_at_street_level_and_toggle(server, open_page, sample, sample_store):
    from collections import Counter

    import mapbox_vector_tile

    from road_tiles import check_drawn, store_roads

    page, watch = open_page(server.url + "/map")
    settle(page)
    assert page.is_checked("#roads-toggle")
    screenshot(page, "map-roads-town-1920.png")
    village = sample.level("village").set_index("code").geometry["350582106201"].representative_point()
    page.evaluate("([lat, lon]) => new Promise((done) => { onemap.map.once('moveend', () => done(true)); "
                  "onemap.map.setView([lat, lon], 16); })", [village.y, village.x])
    settle(page)

    def served(address):
        r = httpx.get(f"{server.url}/tiles/roads/{address}.mvt")
        assert r.status_code in (200, 204)
        features = mapbox_vector_tile.decode(r.content).get("roads", {}).get("features", []) if r.content else []
        return Counter(f["properties"]["road_id"] for f in features)

    drawn = page.evaluate("onemap.roads.drawn()")
    assert check_drawn(drawn, store_roads(sample_store), served) > 20
    assert {d["tile"].split("/")[0] for d in drawn} == {"15"}  # 512-px tiles: the data tiles of zoom 15
    screenshot(page, "map-roads-1920.png")
    page.uncheck("#roads-toggle")
    assert not page.evaluate("onemap.roads.shown()")
    assert "roads" not in parse_qs(page.url.split("#", 1)[1])["layers"][0].split(",")  # the link says so
    page.check("#roads-toggle")
    settle(page)
    assert page.evaluate("onemap.roads.shown() && onemap.roads.drawn().length") == len(drawn)


@pytest.mark.filterwarnings("ignore:Numba not installed")
def test_choropleth_classes_and_colours_follow_mapclassify(server, open_page, units):
    page, _ = open_page(server.url + "/map#map=13.75/24.8037/118.4632&layers=town")
    settle(page)
    page.select_option("#choropleth-field", "households")
    settle(page)
    pixels = map_pixels(page, "map-choropleth.png")
    screenshot(page, "map-choropleth-page.png")
    grid2 = units[units["level"] == "grid2"]
    classes = mapclassify.FisherJenks(grid2["households"].to_numpy(dtype=float), k=5)
    rows = legend_rows(page, "fills")
    counts = [int(re.findall(r"\d+$", r.replace(",", ""))[0]) for r in rows[:-1]]
    assert counts == [int(c) for c in classes.counts]
    # the colour at a grid's centre is its class's, painted over the land
    s = style()
    ramp = s["ramps"][s["fields"]["households"]["ramp"]]
    colours = [ramp[round(i * (len(ramp) - 1) / (classes.k - 1))] for i in range(classes.k)]
    land = over(s["land"]["fillColor"], s["land"]["fillOpacity"], hex_rgb(s["background"]))
    box = page.locator("#map").bounding_box()
    for code, grid in roomy(units, "grid2", n=6).iterrows():
        x, y = container_point(page, grid.lat, grid.lon)
        cls = int(np.searchsorted(classes.bins, grid.households, side="left"))
        expected = over(colours[cls], s["choropleth"]["fillOpacity"], land)
        seen = pixels[int(y - box["y"]), int(x - box["x"])]
        assert np.abs(seen - expected).max() <= 6, (code, grid.households, seen, expected)


def test_band_compliance_is_a_choropleth_of_three_classes(server, open_page, units):
    page, _ = open_page(server.url + "/map#map=13.75/24.8037/118.4632&layers=town&field=band&flevel=grid2")
    settle(page)
    screenshot(page, "map-band.png")
    assert [r.split("\n")[0] for r in legend_rows(page, "fills")] == ["低于标准", "达标", "超出标准", "无数据或不公开"]
    pixels = map_pixels(page, "map-band-canvas.png")
    s = style()
    land = over(s["land"]["fillColor"], s["land"]["fillOpacity"], hex_rgb(s["background"]))
    box = page.locator("#map").bounding_box()
    for code, grid in roomy(units, "grid2", n=6).iterrows():
        band = "under" if grid.households < 300 else "over" if grid.households > 500 else "within"
        x, y = container_point(page, grid.lat, grid.lon)
        seen = pixels[int(y - box["y"]), int(x - box["x"])]
        assert np.abs(seen - over(s["band"][band]["color"], s["choropleth"]["fillOpacity"], land)).max() <= 6
    # the legend counts the level's units of each band, as an exact join of the addresses does
    grid2 = units[units["level"] == "grid2"]["households"]
    expected = {"低于标准": int((grid2 < 300).sum()), "达标": int(grid2.between(300, 500).sum()),
                "超出标准": int((grid2 > 500).sum())}
    counts = {r.split("\n")[0]: int(r.split("\n")[-1].replace(",", "")) for r in legend_rows(page, "fills")
              if r.split("\n")[0] in expected}
    assert counts == expected


CHART_TEXTS = """(() => {
    // every text the panel's chart draws, with its box in the chart's pixels (zrender, under ECharts)
    const chart = onemap.panel.chart;
    const texts = chart.getZr().storage.getDisplayList().filter((e) => e.style && typeof e.style.text === 'string');
    return {width: chart.getWidth(), height: chart.getHeight(), texts: texts.map((e) => {
        const r = e.getBoundingRect().clone();
        r.applyTransform(e.getComputedTransform());
        return {text: e.style.text, box: [r.x, r.y, r.x + r.width, r.y + r.height]};
    })};
})()"""


def test_the_panel_chart_names_its_bars_and_writes_the_band_inside_it(server, open_page, units):
    """A level-1 grid's level-2 grids: bars named without the village's name, the 300 and 500 lines
    labelled inside the chart (they were cut at its edge), the axis named by the figure."""
    children = units[units["level"] == "grid2"].groupby("parent").size()
    parent = children.idxmax()
    page, _ = open_page(server.url + f"/map#unit={parent}", viewport={"width": 1366, "height": 768})
    settle(page)
    page.wait_for_function("onemap.panel.chart && onemap.panel.chart.getZr().storage.getDisplayList().length > 0")
    drawn = page.evaluate(CHART_TEXTS)
    texts = {t["text"]: t["box"] for t in drawn["texts"]}
    village = units.at[units.at[parent, "parent"], "name"]
    names = units[units["parent"] == parent]["name"]
    assert {n[len(village):] if n.startswith(village) else n for n in names} <= set(texts)
    assert "户数" in texts
    for bound in ("300", "500"):
        x0, y0, x1, y1 = texts[bound]
        assert 0 <= x0 and x1 <= drawn["width"] and 0 <= y0 and y1 <= drawn["height"], (bound, texts[bound], drawn["width"])
    screenshot(page, "map-panel-chart.png", selector="#children-chart")


def test_stations_wear_a_light_ring_on_a_coloured_ground(server, open_page):
    """A green station on a green 'within band' grid is told apart by its ring; on the plain map the ring is dark."""
    s = style()["stations"]
    rings = "[...onemap.stations.layer.getContainer().querySelectorAll('path')].map((p) => getComputedStyle(p).stroke)"
    page, _ = open_page(server.url + "/map#map=14/24.8037/118.4632&field=band&flevel=grid2")
    settle(page)
    strokes = page.evaluate(rings)
    rgb = lambda colour: "rgb({}, {}, {})".format(*hex_rgb(colour))  # noqa: E731
    assert strokes and set(strokes) == {rgb(s["ring_on_fill"])}
    page.select_option("#choropleth-field", "")
    settle(page)
    assert set(page.evaluate(rings)) == {rgb(s["ring"])}


def test_withheld_figures_show_as_a_dash_and_no_data(server, open_page, units, sample):
    """A level-3 plot of fewer than 10 addresses: no figure on the map, '—' in its panel."""
    joined = gpd.sjoin(sample.addresses[["geometry"]], sample.grids[["code", "geometry"]], predicate="within")
    addresses = joined.groupby("code").size().reindex(units.index).fillna(0)
    plots = units[(units["level"] == "grid3") & addresses.between(1, 9)]
    code, plot = next(plots.sort_values("room_m", ascending=False).iterrows())
    page, _ = open_page(server.url + f"/map#map=17/{plot.lat:.6f}/{plot.lon:.6f}&layers=town&field=households"
                                     "&flevel=grid3")
    settle(page)
    rows = legend_rows(page, "fills")
    assert rows[-1] == "无数据或不公开"
    published = [u["households"] for u in httpx.get(server.url + "/stats/grid3").json()["units"]
                 if u["households"] is not None]
    counts = [int(re.findall(r"\d+$", r.replace(",", ""))[0]) for r in rows[:-1]]
    assert sum(counts) == len(published) and all(v == 0 or v >= 10 for v in published)
    s = style()
    land = over(s["land"]["fillColor"], s["land"]["fillOpacity"], hex_rgb(s["background"]))
    pixels = map_pixels(page, "map-withheld.png")
    box = page.locator("#map").bounding_box()
    x, y = container_point(page, plot.lat, plot.lon)
    seen = pixels[int(y - box["y"]), int(x - box["x"])]
    assert np.abs(seen - over(s["no_data"], s["choropleth"]["fillOpacity"], land)).max() <= 6
    page.check("input[data-layer='grid3']")
    settle(page)
    page.mouse.click(*container_point(page, plot.lat, plot.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{code}'", timeout=15_000)
    settle(page)
    screenshot(page, "map-withheld-panel.png")
    assert page.inner_text("[data-figure='households'] dd") == "—"
    assert page.inner_text("[data-figure='addresses'] dd") == "—"
    assert "少于 10" in page.inner_text(".withheld-note")


# --- events, coverage ---------------------------------------------------------------


def shown_events(events, k=10):
    """The events a public heat map shows: those of (month, category) groups of at least k."""
    groups = events.groupby([events["reported_at"].dt.to_period("M"), events["category"]]).size()
    return int(groups[groups >= k].sum()), int(((groups > 0) & (groups < k)).sum())


def test_event_heat_follows_category_and_period(server, open_page, sample):
    page, watch = open_page(server.url + "/map#map=16/24.8037/118.4632")
    page.check("#heat-toggle")
    settle(page)
    assert watch.paths("/events/heat")
    total = page.locator("[data-legend='heat'] .row .count").inner_text()
    assert total == f"{shown_events(sample.events)[0]:,}"
    page.select_option("#event-category", "fire")
    page.fill("#event-from", "2025-03")
    page.fill("#event-to", "2025-05")
    settle(page)
    screenshot(page, "map-heat.png")
    events = sample.events
    chosen = events[(events["category"] == "fire") & (events["reported_at"] >= "2025-03-01")
                    & (events["reported_at"] < "2025-06-01")]
    assert page.locator("[data-legend='heat'] .row .count").inner_text() == f"{shown_events(chosen)[0]:,}"
    last = [u for u in watch.requests if "/events/heat" in u][-1]
    assert "category=fire" in last and "from=2025-03-01" in last and "to=2025-06-01" in last
    # at zoom 16 the page would ask for 100 m cells: an anonymous page asks for the smallest public cell
    assert all("cell=250" in u for u in watch.requests if "/events/heat" in u)


def test_the_heat_legend_says_what_is_withheld(sample_store, open_page, sample):
    """With GRIDGEO_MIN_COUNT=60 some months of building events are too few to show: the legend says so."""
    from api_fixture import Server

    k = 60
    shown, withheld = shown_events(sample.events[sample.events["category"] == "building"], k)
    assert withheld > 0
    strict = Server(str(sample_store), env={"GRIDGEO_MIN_COUNT": str(k)})
    try:
        page, _ = open_page(strict.url + "/map")
        page.check("#heat-toggle")
        page.select_option("#event-category", "building")
        settle(page)
        screenshot(page, "map-heat-withheld.png")
        assert page.locator("[data-legend='heat'] .row .count").inner_text() == f"{shown:,}"
        note = page.locator("[data-legend='heat'] .row.withheld")
        assert note.get_attribute("data-withheld") == str(withheld)
        assert f"{withheld} 组" in note.inner_text() and f"至多 {withheld * (k - 1)} 件" in note.inner_text()
    finally:
        strict.stop()


def test_coverage_view_shows_the_served_ground_and_the_households_left_out(server, open_page, sample):
    from gridgeo import coverage, network

    page, watch = open_page(server.url + "/map")
    page.click("#coverage-choice button[data-minutes='15']")
    settle(page, timeout=120_000)
    screenshot(page, "map-coverage.png")
    assert watch.paths("/map/served/15.json") and watch.paths("/coverage")
    nearest = coverage.nearest_station(sample.addresses, sample.stations, network.build(sample.roads))
    within = nearest.loc[nearest["distance_m"] <= 1000, "households"].sum() / nearest["households"].sum()
    town = sample.grids[sample.grids["level"] == "town"]
    every = coverage.uncovered_areas(nearest, minutes=15, within=town)
    small = every[["addresses", "households", "population"]].apply(lambda c: c.between(1, 9)).any(axis=1)
    areas = every[~small]
    summary = page.inner_text("#coverage-summary")
    assert f"覆盖 {within * 100:.1f}% 的户数" in summary
    assert f"{len(areas)} 处未覆盖区域共 {int(areas['households'].sum()):,} 户" in summary
    if small.any():
        assert f"另有 {int(small.sum())} 处少于 10 户的区域未显示" in summary
    drawn = page.evaluate("onemap.coverage.group.getLayers().map((g) => g.getLayers().length)")
    assert drawn == [1, len(areas)]  # the served ground, dissolved; every area left out
    # the areas left out are hatched rather than filled (at 5 minutes they are most of a town), and the
    # legend counts them and their households
    fills = page.evaluate("onemap.coverage.group.getLayers()[1].getLayers()"
                          ".map((a) => a.options.fillColor instanceof CanvasPattern)")
    assert len(fills) == len(areas) and all(fills)
    # on the screen: inside the largest area, both the hatch's lines and the ground between them
    largest = areas.sort_values("households").iloc[-1].geometry
    inside = largest.representative_point()
    x, y = container_point(page, inside.y, inside.x)
    box = page.locator("#map").bounding_box()
    pixels = map_pixels(page, "map-coverage-hatch.png")
    patch = pixels[int(y - box["y"]) - 6:int(y - box["y"]) + 6, int(x - box["x"]) - 6:int(x - box["x"]) + 6]
    redness = patch[..., 0] - patch[..., 2]
    assert redness.max() - redness.min() > 60  # lines and gaps, not one solid colour
    row = legend_rows(page, "coverage")[-1]
    assert f"{len(areas)} 处" in row and row.split("\n")[-1] == f"{int(areas['households'].sum()):,}"


# --- links, languages, screens ------------------------------------------------------------


def test_a_link_reproduces_the_view(server, open_page, units):
    code, grid = list(units[units["level"] == "grid1"].iterrows())[3]
    page, _ = open_page(server.url + "/map")
    page.check("#heat-toggle")
    page.select_option("#choropleth-field", "share_15min")
    page.select_option("#choropleth-level", "village")
    page.click("#coverage-choice button[data-minutes='10']")
    page.uncheck("input[data-kind='police_station']")
    page.fill("#search", code)
    page.press("#search", "Enter")
    page.wait_for_function(f"document.body.dataset.unit === '{code}'")
    page.click("#language")
    settle(page, timeout=120_000)
    link, view = page.url, page.evaluate("[onemap.map.getZoom(), onemap.map.getCenter().lat, onemap.map.getCenter().lng]")
    again, _ = open_page(link)
    settle(again, timeout=120_000)
    screenshot(again, "map-link-reopened.png")
    assert again.inner_text("#unit-name") == grid["name"]
    assert again.is_checked("#heat-toggle") and not again.is_checked("input[data-kind='police_station']")
    assert again.input_value("#choropleth-field") == "share_15min"
    assert again.input_value("#choropleth-level") == "village"
    assert again.get_attribute("#coverage-choice button[data-minutes='10']", "aria-pressed") == "true"
    assert again.evaluate("document.documentElement.lang") == "en"
    assert again.inner_text("[data-kpi='households'] dt") == "households"
    # English mode: the 15-minute share once in the children's table, and each name on one line
    heads = again.locator(".children th").all_inner_texts()
    assert sum("15 min" in h for h in heads) == 1 and len(heads) == len(set(heads)), heads
    assert again.evaluate("""[...document.querySelectorAll('.children td:first-child')].every((td) =>
        td.getBoundingClientRect().height < 2 * parseFloat(getComputedStyle(td).fontSize) + 8)""")
    zoom, lat, lon = again.evaluate("[onemap.map.getZoom(), onemap.map.getCenter().lat, onemap.map.getCenter().lng]")
    assert zoom == view[0] and lat == pytest.approx(view[1], abs=1e-4) and lon == pytest.approx(view[2], abs=1e-4)


def test_station_click_opens_its_popup_and_leads_to_its_grid(server, open_page, sample):
    station = sample.stations[sample.stations["kind"] == "grid2_station"].iloc[5]
    page, _ = open_page(server.url + f"/map#map=17/{station.geometry.y:.6f}/{station.geometry.x:.6f}")
    settle(page)
    page.mouse.click(*container_point(page, station.geometry.y, station.geometry.x))
    page.wait_for_selector(".leaflet-popup-content h3")
    assert page.inner_text(".leaflet-popup-content h3") == station["name"]
    page.click(".leaflet-popup-content a[data-code]")
    page.wait_for_function(f"document.body.dataset.unit === '{station.grid_code}'")


def test_the_page_fits_a_laptop_screen(server, open_page):
    page, _ = open_page(server.url + "/map#field=households", viewport={"width": 1366, "height": 768})
    settle(page)
    screenshot(page, "map-laptop.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert page.locator("#map").bounding_box()["width"] > 700
    for selector in ("#search", "#share", "#language", "#legend"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] + box["width"] <= 1366 and box["y"] + box["height"] <= 768, selector


def test_config_names_the_city_and_its_levels(server, sample):
    import httpx

    config = httpx.get(server.url + "/map/config.json").json()
    assert config["basemap"] is None  # nothing to fetch from outside unless a basemap is configured
    assert config["root"]["name"] == "晋江市"
    counts = sample.grids["level"].value_counts()
    assert {lv["name"]: lv["count"] for lv in config["levels"]} == counts.to_dict()
    assert json.dumps(config["root"]["figures"]["households"]) == str(int(sample.addresses["households"].sum()))


# --- print and export ----------------------------------------------------------------------


def test_the_view_prints_to_png_and_pdf_and_the_figures_export_to_excel(server, open_page, units, sample):
    """The menu's downloads are the view on the page: the PDF's legend is the page's classes
    (mapclassify over the level, here) counted over the units drawn, and the workbook's figures
    are those of /stats for the selected unit and its children."""
    import openpyxl
    import pypdf

    village = roomy(units, "village").index[0]
    page, _ = open_page(server.url + "/map", viewport={"width": 1366, "height": 768})
    settle(page)
    page.select_option("#choropleth-field", "households")
    page.select_option("#choropleth-level", "grid2")
    page.evaluate(f"onemap.select('{village}', {{fit: true}})")
    page.wait_for_function(f"document.body.dataset.unit === '{village}'", timeout=15_000)
    settle(page)
    page.click("#export summary")
    screenshot(page, "map-export-menu.png")
    assert page.locator("#export-pdf").is_visible()
    downloads = export_downloads(page)
    name = units.at[village, "name"]
    assert downloads["png"][0] == f"{name}-地图.png" and downloads["png"][1][:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(io.BytesIO(downloads["png"][1])).size == (2338, 1653)
    # the PDF: the legend of the page's classes, the units of the view drawn
    west, south, east, north = page.evaluate(
        "(() => { const b = onemap.map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
    grid2 = units[units["level"] == "grid2"]
    view = shapely.box(west, south, east, north)
    drawn = grid2[grid2.geometry.intersects(view)]
    values = grid2["households"].to_numpy(dtype=float)
    classes = mapclassify.FisherJenks(values, k=5)
    counts = np.bincount(np.searchsorted(classes.bins, drawn["households"].to_numpy(dtype=float), side="left"),
                         minlength=5)
    lows = [values.min(), *classes.bins[:-1]]
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(downloads["pdf"][1])).pages)
    for lo, hi, n in zip(lows, classes.bins, counts):
        assert f"{lo:,.0f} – {hi:,.0f}  ({n:,})" in text, text
    assert name in text and "北" in text and "数据版本" in text
    # the workbook: /stats of the village and its children
    stats = httpx.get(f"{server.url}/stats/unit/{village}").json()
    sheet = openpyxl.load_workbook(io.BytesIO(downloads["xlsx"][1]))["指标 Figures"]
    rows = {r[0]: r for r in sheet.iter_rows(min_row=2, values_only=True)}
    heads = [c.value for c in sheet[1]]
    col = heads.index("户数 households")
    expected = {u["code"]: u["households"] for u in [stats["figures"], *stats["children"]]}
    assert {code: row[col] for code, row in rows.items()} == expected


# --- names on the map ---------------------------------------------------------------------


def label_boxes(page):
    """The names written, with the boxes the page really gives them (map container pixels)."""
    return page.evaluate("""(() => {
        const o = onemap.map.getContainer().getBoundingClientRect();
        return [...document.querySelectorAll('.unit-label span')].map((s) => {
            const r = s.getBoundingClientRect();
            return {code: s.dataset.code, name: s.textContent, size: parseFloat(s.style.fontSize),
                    box: [r.left - o.left, r.top - o.top, r.right - o.left, r.bottom - o.top], w: o.width, h: o.height};
        });
    })()""")


def assert_apart(labels):
    for a, b in itertools.combinations(labels, 2):
        (a0, a1, a2, a3), (b0, b1, b2, b3) = a["box"], b["box"]
        assert a2 <= b0 or b2 <= a0 or a3 <= b1 or b3 <= a1, (a["name"], b["name"])
    for label in labels:
        x0, y0, x1, y1 = label["box"]
        assert x0 >= -0.5 and y0 >= -0.5 and x1 <= label["w"] + 0.5 and y1 <= label["h"] + 0.5, label


@pytest.mark.parametrize("viewport", [{"width": 1920, "height": 1080}, {"width": 1366, "height": 768}])
def test_names_never_overlap_and_the_roomiest_are_kept(server, open_page, units, viewport):
    page, _ = open_page(server.url + "/map", viewport=viewport)
    settle(page)
    for step in range(3):
        page.wait_for_timeout(300)
        labels = label_boxes(page)
        assert labels, f"no names at zoom {page.evaluate('onemap.map.getZoom()')}"
        assert_apart(labels)
        level = units.loc[labels[0]["code"], "level"]
        # the unit of that level with the most room whose label point is well inside the view is named
        west, south, east, north = page.evaluate(
            "(() => { const b = onemap.map.getBounds().pad(-0.2); "
            "return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]; })()")
        inside = units[(units["level"] == level) & units["lon"].between(west, east) & units["lat"].between(south, north)]
        assert inside["room_m"].idxmax() in {label["code"] for label in labels}
        screenshot(page, f"map-names-{viewport['width']}-{step}.png")
        zoom_in(page)


def test_names_keep_clear_of_the_legend_and_the_controls(server, open_page, units):
    """A name under the legend, the zoom buttons or the scale bar would be cut: none is written there."""
    page, _ = open_page(server.url + "/map#map=14.3/24.80/118.46&field=households&flevel=grid2&cov=15",
                        viewport={"width": 1366, "height": 768})
    settle(page, timeout=120_000)
    # bring the roomiest village's label point under the middle of the legend
    village = roomy(units, "village").iloc[0]
    x, y = container_point(page, village.lat, village.lon)
    legend = page.locator("#legend").bounding_box()
    page.evaluate("""([dx, dy]) => new Promise((done) => { onemap.map.once('moveend', done);
        onemap.map.panBy([dx, dy], {animate: false}); })""",
                  [x - (legend["x"] + legend["width"] / 2), y - (legend["y"] + legend["height"] / 2)])
    settle(page)
    page.wait_for_timeout(300)
    labels = label_boxes(page)
    covers = page.evaluate("""(() => {
        const o = onemap.map.getContainer().getBoundingClientRect();
        return [...document.querySelectorAll('#legend, #map .leaflet-control')].map((el) => el.getBoundingClientRect())
            .filter((r) => r.width > 0).map((r) => [r.left - o.left, r.top - o.top, r.right - o.left, r.bottom - o.top]);
    })()""")
    assert labels and len(covers) >= 3  # the legend, the zoom buttons, the scale bar (and the attribution)
    legend = page.locator("#legend").bounding_box()
    assert legend["height"] > 50
    hit = [(label["name"], c) for label in labels for c in covers
           if label["box"][0] < c[2] and c[0] < label["box"][2] and label["box"][1] < c[3] and c[1] < label["box"][3]]
    assert hit == []
    screenshot(page, "map-names-clear-of-legend.png")


def test_a_wall_screen_writes_names_larger(server, open_page):
    sizes = {}
    for names in ("", "&names=1.7"):
        page, _ = open_page(server.url + f"/map#map=14/24.8037/118.4632{names}")
        settle(page)
        page.wait_for_timeout(300)
        labels = label_boxes(page)
        assert_apart(labels)
        sizes[names] = {label["size"] for label in labels}
        assert page.locator("#label-scale button[aria-pressed='true']").get_attribute("data-scale") == \
            ("1.7" if names else "1")
    (normal,), (wall,) = sizes[""], sizes["&names=1.7"]  # below the top level a name is never shrunk
    assert wall == pytest.approx(1.7 * normal, abs=0.11)


def test_a_viewer_exports_every_figure_with_the_key_the_page_keeps(server, open_page, api_keys, sample):
    """The page sends its key with a download (a link cannot): a viewer's workbook has the figures
    the public's withholds, equal to what /stats gives the key."""
    import openpyxl

    town = sample.grids.loc[sample.grids["level"] == "town", "code"].iloc[0]
    key = api_keys["viewer"]
    page, _ = open_page(server.url + f"/map#unit={town}",
                        before=lambda p: p.add_init_script(f"sessionStorage.setItem('gridgeo.key', {json.dumps(key)})"))
    settle(page)
    page.click("#export summary")
    with page.expect_download(timeout=120_000) as info:
        page.click("#export-xlsx")
    sheet = openpyxl.load_workbook(open(info.value.path(), "rb"))["指标 Figures"]
    heads = [c.value for c in sheet[1]]
    col = heads.index("15分钟生活圈覆盖率 households within 15 minutes")
    got = {row[0]: row[col] for row in sheet.iter_rows(min_row=2, values_only=True)}
    viewer = httpx.get(f"{server.url}/stats/unit/{town}", headers={"X-API-Key": key}).json()
    public = httpx.get(f"{server.url}/stats/unit/{town}").json()
    expected = {u["code"]: u["share_15min"] for u in [viewer["figures"], *viewer["children"]]}
    assert got == pytest.approx(expected, abs=1e-4)
    withheld = [u["code"] for u in [public["figures"], *public["children"]] if u["share_15min"] is None]
    assert all(got[code] is not None for code in withheld)


# --- other offices' boundaries and the grid's team (boundaries.js) ----------------------------------


def test_the_precincts_overlay_and_a_grids_precincts_and_team(server, open_page, units, sample, api_keys):
    """Toggle 警格, click a grid: its precincts with the shares the library computes, and for a
    viewer (the key entered on the workbench in this session) its team, police deputy included."""
    table = gridgeo_crosswalk(sample)
    split = table.groupby("code")["other"].count()
    candidates = roomy(units.loc[units.index.isin(split[split > 1].index)], "grid2", 5)
    code, grid = next(candidates.iterrows())
    key = api_keys["viewer"]
    page, _ = open_page(server.url + f"/map#map=16/{grid.lat:.6f}/{grid.lon:.6f}",
                        before=lambda p: p.add_init_script(f"sessionStorage.setItem('gridgeo.key', '{key}')"))
    settle(page)
    toggle = page.locator("[data-boundary-set='警格']")
    assert not toggle.is_checked()
    toggle.check()
    page.wait_for_function("document.body.dataset.boundaries === '警格'", timeout=15_000)
    drawn = page.evaluate("onemap.boundaries.layers.get('警格').feature_count")
    assert drawn == len(sample.precincts)
    assert "bsets=" in page.evaluate("location.hash")
    labels = page.locator(".boundary-label").all_inner_texts()
    assert set(labels) == set(sample.precincts["name"])
    page.mouse.click(*container_point(page, grid.lat, grid.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{code}'", timeout=15_000)
    page.wait_for_selector("#unit-boundaries .boundary-pieces tbody tr", timeout=15_000)
    page.wait_for_selector("#unit-boundaries .unit-team tr[data-role]", timeout=15_000)
    settle(page)
    rows = page.locator(".boundary-pieces tbody tr")
    shown = {rows.nth(i).get_attribute("data-other"): float(rows.nth(i).locator("td[data-share]").get_attribute("data-share"))
             for i in range(rows.count())}
    mine = table[table["code"] == code].set_index("other")["share_of_grid"]
    assert set(shown) == set(mine.index)
    for other, share in shown.items():
        assert share == pytest.approx(mine[other], abs=1e-5)
    names = sample.precincts.set_index("precinct_id")["name"]
    assert set(page.locator(".boundary-pieces tbody td:first-child").all_inner_texts()) >= \
        {names[o] for o in mine.index if not table.set_index(["code", "other"]).loc[(code, o), "main_of_grid"]}
    roster = sample.roster()
    police = roster[(roster["grid_code"] == code) & (roster["role"] == "警格民警")].iloc[0]
    deputy = page.locator(".unit-team tr[data-role='警格民警']")
    assert police["name"] in deputy.inner_text() and police["phone"] in deputy.inner_text()
    # each person's load: the deputy answers for every grid the roster gives them, written out
    served = roster[(roster["name"] == police["name"]) & (roster["phone"] == police["phone"])]["grid_code"].nunique()
    assert deputy.locator(".person-load").inner_text().startswith(f"{served} 个网格 · ")
    head = roster[(roster["grid_code"] == code) & (roster["role"] == "网格长")]["name"].iloc[0]
    assert head in page.locator(".unit-team tr[data-role='网格长']").inner_text()
    screenshot(page, "map-precincts-team.png")
    page.screenshot(path="/tmp/map-precincts-team.png")
    page.locator("#panel").screenshot(path="/tmp/map-precincts-panel.png")
    page.locator("#unit-boundaries").screenshot(path="/tmp/map-precincts-pieces-team.png")


def test_the_public_sees_the_precincts_but_no_team(server, open_page, units, sample):
    code, grid = next(roomy(units, "grid2").iterrows())
    page, _ = open_page(server.url + f"/map#map=16/{grid.lat:.6f}/{grid.lon:.6f}&bsets=警格")
    settle(page)
    page.mouse.click(*container_point(page, grid.lat, grid.lon))
    page.wait_for_function(f"document.body.dataset.unit === '{code}'", timeout=15_000)
    page.wait_for_selector("#unit-boundaries .boundary-pieces tbody tr", timeout=15_000)
    page.wait_for_selector("#unit-boundaries .unit-team", timeout=15_000)
    team = page.locator(".unit-team").inner_text()
    roster = sample.roster()
    assert not any(name in team for name in roster.loc[roster["grid_code"] == code, "name"])
    assert page.locator(".unit-team").get_attribute("data-public") == "1"


def gridgeo_crosswalk(sample):
    import gridgeo

    return gridgeo.crosswalk(sample.grids, sample.precincts, other_id="precinct_id", addresses=sample.addresses)
