"""Events over time on the one map (/map) in headless Chromium against a real `gridgeo serve`.

The issue's "done when": a leader picks June and 矛盾纠纷 (dispute) and sees the
region's cards, the trend, the ranking and the hot spots change, drills into the
worst village and steps to the next month. Every figure the page shows is
checked against the service's answer and against pandas counting the sample's
events here (tests/test_events.py's reference: a covers-join and a groupby),
never against gridgeo.events; the hot spots against the service's classes by the
colour of the pixels. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal

import httpx
import numpy as np
import pandas as pd
import pytest

from browser_fixture import export_downloads, screenshot
from gridgeo import events as gev
from test_events import reference
from test_map_browser import container_point, hex_rgb, map_pixels, over, settle, units  # noqa: F401 (units: a fixture)

pytestmark = pytest.mark.browser

KEY = "gridgeo.key"
JUNE = ("2025-06-01", "2025-07-01")
CARDS = ("received", "closure_rate", "on_time_rate", "overdue")


def region(events, start, end):
    """The whole region's figures of one period, counted here from the events themselves."""
    limit = events["category"].map(lambda c: gev.DEFAULT_TIME_LIMITS.get(c, gev.OTHER_TIME_LIMIT)) * pd.Timedelta(hours=1)
    rep, clo = events["reported_at"], events["closed_at"]
    s, e = pd.Timestamp(start), pd.Timestamp(end)
    closed = (clo >= s) & (clo < e)
    is_open = (rep < e) & (clo.isna() | (clo >= e))
    n_closed, backlog = int(closed.sum()), int(is_open.sum())
    return {"received": int(((rep >= s) & (rep < e)).sum()), "closed": n_closed, "backlog": backlog,
            "closure_rate": n_closed / (n_closed + backlog), "on_time_rate": int((closed & (clo - rep <= limit)).sum()) / n_closed,
            "overdue": int((is_open & (rep + limit < e)).sum())}


def cards(page) -> dict:
    out = {}
    for key in CARDS:
        card = page.locator(f"[data-event-card='{key}']")
        value = card.get_attribute("data-value")
        out[key] = (float(value) if value else None, card.locator("dd").inner_text(), card.locator(".since").inner_text())
    return out


def shown(value, key) -> str:
    if value is None:
        return "—"
    if key.endswith("rate"):  # as Number.toFixed rounds: the float's exact value, a tie upwards
        return f"{Decimal(value * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"
    return f"{int(value):,}"


def _known(value):
    return None if value is None or (isinstance(value, float) and np.isnan(value)) else value


def assert_cards(page, now: dict, before: dict):
    """The four cards show ``now`` and the change from ``before`` (a missing rate: '—' and no change)."""
    seen = cards(page)
    for key in CARDS:
        value, text, since = seen[key]
        want, prev = _known(now[key]), _known(before[key])
        assert value == (None if want is None else pytest.approx(want, abs=1e-4)), key
        assert text == shown(want, key), key
        if want is None or prev is None:
            assert since.endswith("—"), (key, since)
            continue
        delta = round(want, 4) - round(prev, 4)
        arrow = "↑" if delta > 0 else "↓" if delta < 0 else "→"
        size = shown(abs(delta), key).rstrip("%")
        assert f"{arrow} {size}" in since, (key, since)


def move_slider(page, month: str):
    index = page.evaluate("(m) => onemap.events.range().indexOf(m)", month)
    assert index >= 0
    page.evaluate("(i) => { const s = document.getElementById('event-month'); s.value = String(i); "
                  "s.dispatchEvent(new Event('input')); }", index)


def viewer(api_keys):
    return lambda page: page.add_init_script(f"sessionStorage.setItem({json.dumps(KEY)}, {json.dumps(api_keys['viewer'])})")


@pytest.fixture(scope="module")
def disputes(sample):
    return sample.events[sample.events["category"] == "dispute"]


def test_june_and_disputes_cards_trend_ranking_drill_and_slider(server, open_page, api_keys, sample, disputes):
    headers = {"X-API-Key": api_keys["viewer"]}
    page, watch = open_page(server.url + "/map", before=viewer(api_keys))
    settle(page)
    page.select_option("#event-category", "dispute")
    move_slider(page, "2025-06")
    page.wait_for_function("document.body.dataset.events === '|2025-06|dispute|closure_rate'", timeout=30_000)
    settle(page)
    screenshot(page, "events-june-disputes.png")

    # the region's cards: the service's figures, and pandas' count of the events themselves
    api = httpx.get(server.url + "/events/indicators", headers=headers, params={
        "level": "town", "period": "month", "from": "2025-05-01", "to": JUNE[1], "category": "dispute"}).json()
    assert len(sample.grids[sample.grids["level"] == "town"]) == 1  # the town sample: the region is its one town
    by_month = {r["period"]: r for r in api["rows"]}
    june, may = region(disputes, *JUNE), region(disputes, "2025-05-01", JUNE[0])
    for key in CARDS:
        assert by_month["2025-06"][key] == pytest.approx(june[key], abs=1e-4), key
    assert_cards(page, june, may)
    # every event request carries the category: a viewer's key gives it
    last = [u for u in watch.requests if "/events/map" in u][-1]
    assert "category=dispute" in last

    # the trend: the months of the data, received and closed per month as pandas counts them
    months = [f"2025-{m:02d}" for m in range(1, 13)]
    assert page.evaluate("onemap.events.chart.months()") == months
    option = page.evaluate("onemap.events.chart.chart.getOption().series.map((s) => s.data)")
    counted = [region(disputes, f"{m}-01", (pd.Period(m) + 1).start_time) for m in months]
    assert option[0] == [c["received"] for c in counted] and option[1] == [c["closed"] for c in counted]

    # the ranking of the villages by closure rate: the service's order (in the one answer, as /events/ranking
    # gives it), the reference's values
    assert "ranking=village" in last and "ranking_indicator=closure_rate" in last
    ranking = httpx.get(server.url + "/events/ranking", headers=headers, params={
        "level": "village", "period": "month", "indicator": "closure_rate", "at": "2025-06", "category": "dispute",
        "from": "2024-12-01", "to": "2026-01-01"}).json()["rows"]
    rows = page.locator("#ranking tr[data-code]")
    codes = [rows.nth(i).get_attribute("data-code") for i in range(rows.count())]
    ranked = [r for r in ranking if r["rank"] is not None]
    assert codes == [r["code"] for r in ranking[:5]] + [r["code"] for r in ranked[-5:]]
    values = [float(rows.nth(i).get_attribute("data-value")) for i in range(rows.count())]
    assert values == sorted(values, reverse=True)
    theirs = reference(disputes, sample.grids, "village", "M", gev.DEFAULT_TIME_LIMITS)
    june_villages = theirs.xs(pd.Timestamp(JUNE[0]), level="period_start")
    for code, value in zip(codes, values):
        assert value == pytest.approx(june_villages.at[code, "closure_rate"], abs=1e-4), code
    worst = codes[-1]
    assert june_villages.loc[codes, "closure_rate"].min() == pytest.approx(june_villages.at[worst, "closure_rate"])

    # drilling into the worst village: selected, and the cards are its figures
    page.click(f"#ranking tr[data-code='{worst}']")
    page.wait_for_function(f"document.body.dataset.unit === '{worst}' && "
                           f"document.body.dataset.events === '{worst}|2025-06|dispute|closure_rate'", timeout=30_000)
    settle(page)
    screenshot(page, "events-worst-village.png")
    assert page.inner_text("#unit-name") == sample.grids.set_index("code").at[worst, "name"]
    may_villages = theirs.xs(pd.Timestamp("2025-05-01"), level="period_start")
    assert_cards(page, june_villages.loc[worst].to_dict(), may_villages.loc[worst].to_dict())

    # the slider's next month: the cards follow
    move_slider(page, "2025-07")
    page.wait_for_function(f"document.body.dataset.events === '{worst}|2025-07|dispute|closure_rate'", timeout=30_000)
    settle(page)
    july = theirs.xs(pd.Timestamp("2025-07-01"), level="period_start")
    assert_cards(page, july.loc[worst].to_dict(), june_villages.loc[worst].to_dict())
    assert "at=2025-07" in page.url and "cat=dispute" in page.url


def test_the_play_button_steps_through_the_year(server, open_page, api_keys):
    page, watch = open_page(server.url + "/map#at=2025-10", before=viewer(api_keys))
    settle(page)
    seen = []
    page.expose_function("seen", lambda value: seen.append(value))
    page.evaluate("new MutationObserver(() => window.seen(document.body.dataset.events))"
                  ".observe(document.body, {attributes: true, attributeFilter: ['data-events']})")
    page.evaluate("window.labelled = {}; new MutationObserver(() => { const m = document.getElementById("
                  "'event-month-label').textContent; window.labelled[m] ??= performance.now(); })"
                  ".observe(document.getElementById('event-month-label'), {childList: true, characterData: true, "
                  "subtree: true})")
    page.click("#event-play")
    page.wait_for_function("!document.getElementById('event-play').dataset.playing", timeout=60_000)
    settle(page)
    assert [s.split("|")[1] for s in seen] == ["2025-11", "2025-12"]
    assert page.evaluate("document.getElementById('event-month-label').textContent") == "2025-12"
    # the next month's answer is asked for while the month before is shown, and once only
    asked = [u for u in watch.requests if "/events/map" in u and "at=2025-12" in u]
    assert len(asked) == 1, asked
    started = page.evaluate("performance.getEntriesByType('resource').find((e) => e.name.includes('/events/map') && "
                            "e.name.includes('at=2025-12')).startTime")
    # asked while November was shown: the slider waits a second on a month, so at least that before it moved
    # (asked when the slider moves, it would start after the label changed)
    assert started < page.evaluate("window.labelled['2025-12']") - 500


def test_hot_spots_are_drawn_in_the_hot_colour(server, open_page, api_keys, units):
    headers = {"X-API-Key": api_keys["viewer"]}
    body = httpx.get(server.url + "/events/hotspots", headers=headers, params={
        "level": "grid2", "from": JUNE[0], "to": JUNE[1], "category": "dispute"}, timeout=300).json()
    classes = {r["code"]: r["class"] for r in body["rows"]}
    hot = units.loc[[c for c, k in classes.items() if k == "hot"]].sort_values("room_m", ascending=False)
    assert len(hot), "the sample has hot spots of disputes in June"
    _, grid = next(hot.iterrows())
    # nothing but the land and the hot spots: no boundaries, labels or stations over the pixels
    page, watch = open_page(server.url + f"/map#map=15/{grid.lat:.6f}/{grid.lon:.6f}&layers=&cat=dispute&at=2025-06&hot=1",
                            before=viewer(api_keys))
    settle(page)
    page.wait_for_timeout(500)  # the tiles' fade-in
    assert watch.paths("/events/hotspots")
    from gridgeo.maps import style

    s = style()
    land = over(s["land"]["fillColor"], s["land"]["fillOpacity"], hex_rgb(s["background"]))
    colours = page.evaluate("import('/static/app/events-layer.js').then((m) => [m.HOTSPOT_COLOURS, m.HOTSPOT_OPACITY])")
    pixels = map_pixels(page, "events-hotspots.png")
    box = page.locator("#map").bounding_box()
    covers = [page.locator(sel).bounding_box() for sel in ("#legend", ".leaflet-control-zoom", ".leaflet-control-scale")]
    checked = {"hot": 0, "none": 0}
    for other, g in units[units["level"] == "grid2"].sort_values("room_m", ascending=False).iterrows():
        x, y = container_point(page, g.lat, g.lon)
        px, py = int(y - box["y"]), int(x - box["x"])
        if not (20 < px < pixels.shape[0] - 20 and 20 < py < pixels.shape[1] - 20) or g.room_m < 60:
            continue
        if any(c["x"] - 4 <= x <= c["x"] + c["width"] + 4 and c["y"] - 4 <= y <= c["y"] + c["height"] + 4 for c in covers):
            continue  # under the legend or a control
        kind = classes.get(other)
        want = over(colours[0][kind], colours[1], land) if kind in ("hot", "cold") else land
        assert np.abs(pixels[px, py] - want).max() <= 6, (other, kind, pixels[px, py], want)
        checked[kind if kind in checked else "none"] += 1
    assert checked["hot"] >= 1 and checked["none"] >= 1, checked
    rows = page.locator("[data-legend='hotspots'] .row[data-class='hot'] .count").inner_text()
    assert int(rows) == sum(k == "hot" for k in classes.values())


def test_the_public_sees_dashes_and_why_never_nan(server, open_page, sample):
    village = sample.grids[sample.grids["level"] == "village"].iloc[0]["code"]
    page, watch = open_page(server.url + f"/map#cat=dispute&at=2025-06&unit={village}")
    page.wait_for_function(f"document.body.dataset.events === '{village}|2025-06|dispute|closure_rate'", timeout=30_000)
    settle(page)
    screenshot(page, "events-public.png")
    body = httpx.get(server.url + "/events/indicators", params={
        "level": "village", "unit": village, "period": "month", "from": "2025-05-01", "to": JUNE[1]}).json()
    june = {r["period"]: r for r in body["rows"]}["2025-06"]
    seen = cards(page)
    for key in CARDS:
        assert seen[key][1] == shown(june.get(key), key), key
    text = page.inner_text("#events-panel")
    assert "NaN" not in text and "undefined" not in text and "null" not in text
    note = page.inner_text("#events-note")
    assert "公开数据不分类别" in note  # the public figures are every category's: the page says so
    if any(june.get(key) is None for key in CARDS):
        assert "少于 10 件" in note
    # the public is never sent a category it may not ask for
    assert all("category=" not in u for u in watch.requests if "/events/" in u)


@pytest.mark.parametrize("size", [(1920, 1080), (1366, 768)])
def test_the_events_panel_fits_the_screen(server, open_page, api_keys, size):
    width, height = size
    page, _ = open_page(server.url + "/map#cat=dispute&at=2025-06&hot=1", viewport={"width": width, "height": height},
                        before=viewer(api_keys))
    page.wait_for_function("(document.body.dataset.events || '').endsWith('|2025-06|dispute|closure_rate')")
    settle(page)
    screenshot(page, f"events-{width}x{height}.png")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    panel = page.locator("#panel").bounding_box()
    for selector in ("#event-cards", "#events-chart", "#event-month", "#event-play"):
        b = page.locator(selector).bounding_box()
        assert b["x"] >= panel["x"] and b["x"] + b["width"] <= panel["x"] + panel["width"] + 0.5, selector
    # the cards and the slider are on the screen without scrolling; no card's text overflows its box
    for selector in ("#event-cards", "#event-month"):
        b = page.locator(selector).bounding_box()
        assert b["y"] + b["height"] <= height, selector
    assert page.evaluate("""[...document.querySelectorAll('#event-cards > div, #event-cards dd')]
        .every((el) => el.scrollWidth <= el.clientWidth + 1)""")


# --- the choropleth follows the events' filter; the period choice ---------------------------------


def test_june_disputes_closure_rate_recolours_the_units_to_the_services_classes(server, open_page, api_keys, sample,
                                                                                  disputes, units):
    import mapclassify

    from gridgeo.maps import style
    from test_map_browser import roomy

    page, watch = open_page(server.url + "/map#map=13.75/24.8037/118.4632&layers=town&at=2025-03",
                            before=viewer(api_keys))
    settle(page)
    page.select_option("#choropleth-field", "ev_closure_rate")
    page.wait_for_function("document.body.dataset.choropleth === 'grid2|closure_rate|2025-03|'", timeout=30_000)
    settle(page)
    tiles = len(watch.paths("/tiles/grid2/"))
    assert tiles, "the level-2 grids' tiles are drawn"
    # the filter changes: one request answers the cards and the choropleth, and no tile is asked for again
    page.evaluate("""() => { window.changed = {}; const t0 = performance.now();
        new MutationObserver(() => { const d = document.body.dataset;
          if (d.choropleth === 'grid2|closure_rate|2025-06|dispute' && !window.changed.map) window.changed.map = performance.now() - t0;
          if (d.cards === '|2025-06|dispute' && !window.changed.cards) window.changed.cards = performance.now() - t0;
          if (d.events === '|2025-06|dispute|closure_rate' && !window.changed.ranking) window.changed.ranking = performance.now() - t0;
        }).observe(document.body, {attributes: true}); }""")
    asked = len(watch.paths("/events/map"))
    ranked = len(watch.paths("/events/ranking"))
    page.evaluate("() => { onemap.state.at = '2025-06'; }")  # the month, then the category: one change
    page.select_option("#event-category", "dispute")
    page.wait_for_function("document.body.dataset.choropleth === 'grid2|closure_rate|2025-06|dispute' && "
                           "document.body.dataset.events === '|2025-06|dispute|closure_rate'", timeout=30_000)
    settle(page)
    print("\nfilter change in Chromium (ms):", page.evaluate("window.changed"))
    assert len(watch.paths("/events/map")) == asked + 1
    assert len(watch.paths("/events/ranking")) == ranked  # the ranking came in the same answer
    assert len(watch.paths("/tiles/grid2/")) == tiles  # restyled, not reloaded
    pixels = map_pixels(page, "events-choropleth-june-disputes.png")
    screenshot(page, "events-choropleth-june-disputes-page.png")

    # the service's values and classes, against pandas and mapclassify here
    body = httpx.get(server.url + "/events/map", headers={"X-API-Key": api_keys["viewer"]}, params={
        "level": "grid2", "period": "month", "category": "dispute", "indicator": "closure_rate", "at": "2025-06",
        "scheme": "fisher_jenks", "k": 5}).json()["choropleth"]
    theirs = reference(disputes, sample.grids, "grid2", "M", gev.DEFAULT_TIME_LIMITS).xs(
        pd.Timestamp(JUNE[0]), level="period_start")["closure_rate"]
    for code, value in theirs.items():
        assert body["values"][code] == (None if np.isnan(value) else pytest.approx(value, abs=1e-4)), code
    known = theirs.dropna().to_numpy()
    classes = mapclassify.FisherJenks(known, k=5)
    np.testing.assert_allclose(body["bins"], classes.bins, atol=1e-9)
    # the legend: the indicator, the month and category, the classes' counts
    legend = page.inner_text("[data-legend='fills']")
    assert "办结率" in legend and "2025-06" in legend
    counts = [int(c) for c in page.locator("[data-legend='fills'] .row .count").all_inner_texts()]
    assert counts == [int(c) for c in classes.counts]
    # each roomy grid's centre has its class's colour (a rate unknown: the no-data colour)
    s = style()
    ramp = s["ramps"][s["event_fields"]["closure_rate"]["ramp"]]
    colours = [ramp[round(i * (len(ramp) - 1) / (classes.k - 1))] for i in range(classes.k)]
    land = over(s["land"]["fillColor"], s["land"]["fillOpacity"], hex_rgb(s["background"]))
    box = page.locator("#map").bounding_box()
    checked = set()
    for code, grid in roomy(units, "grid2", n=10).iterrows():
        x, y = container_point(page, grid.lat, grid.lon)
        value = theirs[code]
        colour = s["no_data"] if np.isnan(value) else colours[int(np.searchsorted(classes.bins, value, side="left"))]
        seen = pixels[int(y - box["y"]), int(x - box["x"])]
        assert np.abs(seen - over(colour, s["choropleth"]["fillOpacity"], land)).max() <= 6, (code, value, seen)
        checked.add(colour)
    assert len(checked) >= 2, "the grids checked fall in more than one class"


def test_a_change_of_category_keeps_the_names_clear_of_the_legend(server, open_page, api_keys):
    """The names are placed again when the legend's box moves, not at every change of the filter: after each
    change of category they are apart and clear of the legend and the controls, and where the legend kept its
    box they are the very names placed before (the same boxes)."""
    from test_map_browser import assert_apart, label_boxes

    page, _ = open_page(server.url + "/map#map=13.75/24.8037/118.4632&at=2025-03", before=viewer(api_keys),
                        viewport={"width": 1366, "height": 768})
    settle(page)
    page.select_option("#choropleth-field", "ev_closure_rate")
    page.wait_for_function("document.body.dataset.choropleth === 'grid2|closure_rate|2025-03|'", timeout=30_000)
    settle(page)
    page.wait_for_timeout(300)
    kept = 0
    for category in ("dispute", "road", "sanitation", ""):
        before, legend_before = label_boxes(page), page.locator("#legend").bounding_box()
        page.evaluate("document.querySelectorAll('.unit-label span').forEach((s) => { s.dataset.before = '1'; })")
        page.select_option("#event-category", category)
        page.wait_for_function(f"document.body.dataset.choropleth === 'grid2|closure_rate|2025-03|{category}' && "
                               f"document.body.dataset.events === '|2025-03|{category}|closure_rate'", timeout=30_000)
        settle(page)
        page.wait_for_timeout(300)
        labels, legend = label_boxes(page), page.locator("#legend").bounding_box()
        assert labels and legend["height"] > 50
        assert_apart(labels)
        covers = page.evaluate("""(() => {
            const o = onemap.map.getContainer().getBoundingClientRect();
            return [...document.querySelectorAll('#legend, #map .leaflet-control')].map((el) => el.getBoundingClientRect())
                .filter((r) => r.width > 0).map((r) => [r.left - o.left, r.top - o.top, r.right - o.left, r.bottom - o.top]);
        })()""")
        hit = [(label["name"], c) for label in labels for c in covers
               if label["box"][0] < c[2] and c[0] < label["box"][2] and label["box"][1] < c[3] and c[1] < label["box"][3]]
        assert hit == [], category
        if legend == legend_before:  # the names already written stay: measuring each again costs a layout
            assert labels == before, category
            assert page.evaluate("[...document.querySelectorAll('.unit-label span')].every((s) => s.dataset.before)")
            kept += 1
    assert kept, "the legend kept its box at some change (the case the names are not placed again)"


def test_the_period_choice_steps_the_slider_by_quarter(server, open_page, api_keys, sample):
    page, watch = open_page(server.url + "/map", before=viewer(api_keys))
    settle(page)
    page.select_option("#event-period", "quarter")
    page.wait_for_function("document.body.dataset.events === '|2025-Q4||closure_rate'", timeout=30_000)
    settle(page)
    assert page.evaluate("onemap.events.range()") == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert "per=quarter" in page.url
    move_slider(page, "2025-Q2")
    page.wait_for_function("document.body.dataset.events === '|2025-Q2||closure_rate'", timeout=30_000)
    settle(page)
    screenshot(page, "events-by-quarter.png")
    assert_cards(page, region(sample.events, "2025-04-01", "2025-07-01"), region(sample.events, "2025-01-01", "2025-04-01"))
    assert page.evaluate("onemap.events.chart.months()") == ["2025-Q1", "2025-Q2", "2025-Q3", "2025-Q4"]
    assert "较上季度" in page.inner_text("[data-event-card='received'] .since")
    assert any("period=quarter" in u and "at=2025-Q2" in u for u in watch.requests if "/events/map" in u)


def test_the_print_and_excel_of_an_event_choropleth_carry_its_values(server, open_page, api_keys, sample, disputes):
    """A viewer's page showing June's closure rate of disputes per level-2 grid: the menu's print and workbook
    are of that indicator, period and category (the key sent with them), the workbook's values equal to
    /events/map's for the same filter and to a pandas recount; the print's title and legend say it."""
    import io

    import openpyxl
    import pypdf
    from PIL import Image

    from browser_fixture import ARTIFACTS

    page, _ = open_page(server.url + "/map#at=2025-06", before=viewer(api_keys))
    settle(page)
    page.select_option("#event-category", "dispute")
    page.select_option("#choropleth-field", "ev_closure_rate")
    page.select_option("#choropleth-level", "grid2")
    page.wait_for_function("document.body.dataset.choropleth === 'grid2|closure_rate|2025-06|dispute'",
                           timeout=30_000)
    settle(page)
    page.click("#export summary")
    page.wait_for_function("document.getElementById('export-xlsx').getAttribute('href')", timeout=15_000)  # on toggle
    for which in ("png", "pdf", "xlsx"):
        href = page.get_attribute(f"#export-{which}", "href")
        assert "field=ev_closure_rate" in href and "period=month" in href and "at=2025-06" in href, href
        assert "category=dispute" in href, href
    screenshot(page, "events-export-menu.png")
    downloads = export_downloads(page)
    (ARTIFACTS / "events-export-print.png").write_bytes(downloads["png"][1])
    assert Image.open(io.BytesIO(downloads["png"][1])).size == (2338, 1653)
    shown = httpx.get(server.url + "/events/map", headers={"X-API-Key": api_keys["viewer"]}, params={
        "level": "grid2", "period": "month", "category": "dispute", "indicator": "closure_rate",
        "at": "2025-06"}).json()["choropleth"]
    sheet = openpyxl.load_workbook(io.BytesIO(downloads["xlsx"][1]))["指标 Figures"]
    heads = [c.value for c in sheet[1]]
    col = heads.index("办结率 closure rate")
    got = {row[0]: row[col] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert got == {code: (None if v is None else pytest.approx(v, abs=1e-4)) for code, v in shown["values"].items()}
    theirs = reference(disputes, sample.grids, "grid2", "M", gev.DEFAULT_TIME_LIMITS).xs(
        pd.Timestamp("2025-06-01"), level="period_start")["closure_rate"]
    for code, value in theirs.items():
        assert got[code] == (None if np.isnan(value) else pytest.approx(value, abs=1e-9)), code
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(downloads["pdf"][1])).pages)
    assert "办结率 · 2025-06 · 矛盾纠纷" in text
    lows = [shown["min"], *shown["bins"][:-1]]
    for lo, hi, n in zip(lows, shown["bins"], shown["counts"]):  # the page's classes, the units drawn counted
        assert f"{lo * 100:.1f}% – {hi * 100:.1f}%" in text, (lo, hi)
