"""The planner's workbench (/plan) in headless Chromium against a real `gridgeo serve`
on 127.0.0.1, on its own copy of the sample store (these tests save and publish).

Every page is watched as the one map's are (tests/browser_fixture.py): a request to
any other host fails the test, and so does any console error, except the one
Chromium logs for a refusal the test itself provokes and expects (a stale save's
409). What the page shows is checked against gridgeo.plan called here on the
sample: the same blocks, the same households, the same split. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import json
import shutil
from urllib.parse import urlsplit

import geopandas as gpd
import httpx
import mapbox_vector_tile
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo.crs
import gridgeo.plan
import gridgeo.store
from adjacency import edge_graph
from api_fixture import Server
from browser_fixture import FITS_JS, WALL, Watch, screenshot

pytestmark = pytest.mark.browser

VILLAGE = "350582106201"            # 前垵村: four level-2 grids
PUBLISHED_VILLAGE = "350582106203"  # the village the publish test changes
KEY = "gridgeo.key"
LAPTOP = {"width": 1366, "height": 768}


# --- the service and the pages ---------------------------------------------------------------


@pytest.fixture(scope="module")
def bench(sample_store, tmp_path_factory):
    """`gridgeo serve` on a copy of the sample store, with two planners' keys and a reviewer's."""
    from api.keys import KeyStore

    folder = tmp_path_factory.mktemp("workbench")
    store = folder / "gridgeo.gpkg"
    shutil.copy(sample_store, store)
    keys = KeyStore(folder / "keys.json")
    server = Server(str(store), env={"GRIDGEO_KEYS_FILE": str(folder / "keys.json")})
    server.store = store
    server.keys = {"zhang": keys.add("网格办张三", "planner"), "li": keys.add("网格办李四", "planner"),
                   "wang": keys.add("审核员王五", "reviewer", scopes=["350582106"]),
                   "zhao": keys.add("管理员赵六", "admin")}
    yield server
    server.stop()


class BenchWatch(Watch):
    """The one map's watch, which also knows the refusals a test expects.

    Chromium logs every 4xx answer to a fetch as a console error; a refusal
    the test provokes (``expect(409, path)``) is allowed that one line, and
    any other answer of 400 or more fails the test.
    """

    def __init__(self):
        super().__init__()
        self.refused: list[tuple[int, str]] = []
        self.expected: list[tuple[int, str]] = []

    def attach(self, page) -> None:
        super().attach(page)
        page.on("response", lambda r: r.status >= 400 and self.refused.append((r.status, urlsplit(r.url).path)))

    def expect(self, status: int, path: str) -> None:
        self.expected.append((status, path))

    def check(self) -> None:
        assert sorted(self.refused) == sorted(self.expected), f"refused requests: {self.refused}"
        for status, _ in self.expected:
            line = next(e for e in self.errors if f"status of {status}" in e and "Failed to load resource" in e)
            self.errors.remove(line)
        super().check()


@pytest.fixture
def open_bench(chromium, bench):
    """``open_bench(key, plan=None, lang="zh") -> (page, watch)``: the workbench with a planner's key."""
    opened = []

    def _open(key: str, *, plan: int | None = None, lang: str = "zh", viewport: dict = WALL):
        context = chromium.new_context(viewport=viewport, locale="zh-CN", service_workers="block", accept_downloads=True)
        page = context.new_page()
        watch = BenchWatch()
        watch.attach(page)
        opened.append((context, watch))
        page.add_init_script(f"sessionStorage.setItem({json.dumps(KEY)}, {json.dumps(key)})")
        fragment = "&".join(p for p in (f"plan={plan}" if plan else "", "lang=en" if lang == "en" else "") if p)
        page.goto(f"{bench.url}/plan" + (f"#{fragment}" if fragment else ""))
        page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
        settle(page)
        return page, watch

    yield _open
    for context, watch in opened:
        context.close()
        watch.check()


@pytest.fixture(scope="module")
def reference(sample):
    """gridgeo.plan's own state of the village, opened from the sample here, not by the service."""
    return gridgeo.plan.start(sample.grids, VILLAGE, roads=sample.roads, addresses=sample.addresses,
                              stations=sample.stations)


@pytest.fixture(scope="module")
def adjacency(reference) -> nx.Graph:
    return block_adjacency(reference)


def block_adjacency(state) -> nx.Graph:
    """A plan's blocks joined where they share an edge (not just a corner), measured with shapely."""
    return edge_graph(state.blocks)


# --- helpers ----------------------------------------------------------------------------------------


def settle(page, timeout=60_000):
    page.wait_for_function("!window.workbench || workbench.idle()", timeout=timeout)
    page.wait_for_timeout(150)


def create_plan(bench, key: str, parent: str = VILLAGE) -> int:
    r = httpx.post(f"{bench.url}/plans", json={"name": "浏览器测试", "parent": parent}, headers={"X-API-Key": key},
                   timeout=120)
    assert r.status_code == 201, r.text
    return r.json()["plan"]["id"]


def shown_households(page) -> dict[str, int]:
    """The households each grid row shows, read from the page's text."""
    rows = page.locator("#grid-list [data-grid]")
    return {rows.nth(k).get_attribute("data-grid"):
            int(rows.nth(k).locator("[data-value='households']").inner_text().replace(",", ""))
            for k in range(rows.count())}


def pixel(page, lat: float, lon: float) -> tuple[float, float]:
    return tuple(page.evaluate("""([lat, lon]) => {
        const p = workbench.map.latLngToContainerPoint([lat, lon]);
        const r = workbench.map.getContainer().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top];
    }""", [lat, lon]))


def block_pixel(page, reference, block_id: str) -> tuple[float, float]:
    """A point well inside a block, on the screen."""
    geom = reference.blocks.set_index("block_id").geometry[block_id]
    inside = shapely.maximum_inscribed_circle(geom).coords[0]
    return pixel(page, inside[1], inside[0])


def movable(reference, adjacency, assignment: dict):
    """A block that can go to a neighbouring grid leaving its own grid in one piece: (block, from, to)."""
    for block in sorted(assignment):
        found = movable_block(adjacency, assignment, block)
        if found:
            return found
    raise AssertionError("no block can move")


def movable_block(adjacency, assignment: dict, block):
    """(block, from, to) if ``block`` can go to a neighbouring grid leaving its own in one piece, else None."""
    source = assignment[block]
    targets = sorted({assignment[n] for n in adjacency.neighbors(block)} - {source})
    rest = adjacency.subgraph([b for b, g in assignment.items() if g == source and b != block])
    if targets and rest.number_of_nodes() and nx.is_connected(rest):
        return block, source, targets[0]
    return None


def paint(page, reference, blocks: list[str], grid: str) -> None:
    """Select ``grid`` in the list, then brush over ``blocks`` with the mouse held down."""
    page.click(f"#grid-list [data-grid='{grid}'] .grid-name")
    page.click("#modes [data-mode='paint']")
    x, y = block_pixel(page, reference, blocks[0])
    page.mouse.move(x, y)
    page.mouse.down()
    for block in blocks[1:]:
        page.mouse.move(*block_pixel(page, reference, block), steps=12)
    page.mouse.up()
    settle(page)


def households(state) -> dict[str, int]:
    table = gridgeo.plan.impact(state)
    return dict(zip(table["code"], table["households"].astype(int)))


households_of = households


# --- the workbench --------------------------------------------------------------------------------


def test_a_key_the_service_does_not_know_is_refused_and_another_is_asked_for(open_bench, bench):
    """The page reads the public data without the key, so a mistyped key does not stop it; the
    service refuses that key (401 on every path, never served as anonymous), and the page says
    so and asks for another."""
    page, watch = open_bench("gg_mistyped")
    watch.expect(401, "/plans")
    watch.expect(401, "/me")  # who the key is, for the top bar: refused alike
    assert page.locator("#key-box").is_visible()
    assert "服务不认识" in page.locator("#message-text").inner_text()
    assert page.locator("#villages, .leaflet-interactive").count() > 0  # the map of villages is there
    page.fill("#key", bench.keys["zhang"])
    page.locator("#key-form").evaluate("form => form.requestSubmit()")
    page.wait_for_function("document.getElementById('key-box').hidden", timeout=30_000)
    settle(page)
    assert page.locator("#message").is_hidden()


def test_a_link_to_a_plan_opened_before_the_key_is_given_opens_the_plan_once_it_is(open_bench, bench):
    plan = create_plan(bench, bench.keys["li"])
    page, _ = open_bench("", plan=plan)  # no key in this tab yet
    assert page.locator("#key-box").is_visible() and page.locator("#plan-panel").is_hidden()
    page.fill("#key", bench.keys["li"])
    page.locator("#key-form").evaluate("form => form.requestSubmit()")
    page.wait_for_function(f"workbench.state && workbench.state.plan.id === {plan}", timeout=60_000)
    settle(page)
    assert page.locator("#plan-panel").is_visible() and page.locator("#plan-name").inner_text() == "浏览器测试 · 前垵村"
    assert page.locator("#published-box").is_hidden()  # a planner's key


def test_unsaved_edits_survive_a_reload_and_are_asked_about_before_another_plan_opens(
        open_bench, bench, reference, adjacency):
    first, other = create_plan(bench, bench.keys["li"]), create_plan(bench, bench.keys["li"])
    page, _ = open_bench(bench.keys["li"], plan=first)
    page.on("dialog", lambda d: d.accept())  # the browser's own question when a page with edits reloads
    block, source, target = movable(reference, adjacency, reference.assignment.to_dict())
    paint(page, reference, [block], target)
    painted = page.evaluate("workbench.state.assignment")
    assert painted[block] == target and page.evaluate("document.body.dataset.dirty") == "1"

    # another plan from the list: a question; staying keeps everything, the open plan is not reloaded
    page.click(f"#drafts li[data-plan='{other}']")
    page.wait_for_selector("#unsaved-dialog[open]")
    assert "1 处修改尚未保存" in page.inner_text("#unsaved-text")
    screenshot(page, "workbench-unsaved-question.png")
    page.click("#unsaved-stay")
    page.click(f"#drafts li[data-plan='{first}']")
    settle(page)
    assert page.evaluate("workbench.state.plan.id") == first and page.evaluate("workbench.state.assignment") == painted

    # a reload (or a crash) loses nothing: the edits come back from this browser, and say so
    page.reload()
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    settle(page)
    assert page.evaluate("workbench.state.assignment") == painted and page.evaluate("document.body.dataset.dirty") == "1"
    assert page.locator("#message").get_attribute("data-kind") == "info" and "已恢复" in page.inner_text("#message-text")
    assert shown_households(page) == households(gridgeo.plan.reassign(reference, [block], target))

    # discarding opens the other plan, and the first opens again as it was saved
    page.click(f"#drafts li[data-plan='{other}']")
    page.wait_for_selector("#unsaved-dialog[open]")
    page.click("#unsaved-discard")
    page.wait_for_function(f"workbench.state.plan.id === {other}", timeout=60_000)
    page.click(f"#drafts li[data-plan='{first}']")
    page.wait_for_function(f"workbench.state.plan.id === {first}", timeout=60_000)
    settle(page)
    assert page.evaluate("workbench.state.assignment")[block] == source and page.evaluate("document.body.dataset.dirty") == "0"

    # saving from the question saves, then opens the other plan
    paint(page, reference, [block], target)
    page.click(f"#drafts li[data-plan='{other}']")
    page.wait_for_selector("#unsaved-dialog[open]")
    page.click("#unsaved-save")
    page.wait_for_function(f"workbench.state.plan.id === {other}", timeout=60_000)
    saved = httpx.get(f"{bench.url}/plans/{first}", headers={"X-API-Key": bench.keys["li"]}, timeout=60).json()
    assert saved["assignment"][block] == target and saved["revision"] > 0


def test_save_and_submit_stay_in_sight_on_a_laptop(open_bench, bench):
    plan = create_plan(bench, bench.keys["li"], parent="350582106001")  # 塘内社区: more grids than the window holds
    page, _ = open_bench(bench.keys["li"], plan=plan, viewport=LAPTOP)
    for button in ("#save", "#submit"):
        box = page.locator(button).bounding_box()
        assert page.locator(button).is_visible() and box["y"] >= 0 and box["y"] + box["height"] <= LAPTOP["height"], box
        assert box["x"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"], box
    # and nothing in the top bar spills over its edge
    assert page.evaluate("(() => { const top = document.getElementById('top'); return top.scrollWidth <= top.clientWidth; })()")
    screenshot(page, "workbench-laptop.png")


BENCH_FITS = """(() => {""" + FITS_JS + """
    const cut = [];
    for (const el of document.querySelectorAll('#side input[placeholder]'))
        if (el.offsetParent && !fits(el, el.placeholder)) cut.push(`placeholder ${el.placeholder}`);
    for (const el of document.querySelectorAll('#side select'))
        if (el.offsetParent) for (const o of el.options) if (!fits(el, o.textContent + '  ')) cut.push(`menu ${o.textContent}`);
    for (const el of document.querySelectorAll('#side .segmented button, #side .field > span, #top button'))
        if (el.offsetParent && !fits(el, el.textContent.trim())) cut.push(`text ${el.textContent.trim()}`);
    // a row of buttons clipped by its box (each button wide enough, the row not)
    for (const el of document.querySelectorAll('#side .segmented'))
        if (el.offsetParent && el.scrollWidth > el.clientWidth + 1) cut.push(`row ${el.textContent.trim()}`);
    return cut;
})()"""


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_on_a_laptop_the_side_bar_holds_its_words_in_either_language(open_bench, bench, lang):
    """English words are longer than Chinese ones: at 1366 no placeholder, menu, button or label is cut."""
    page, _ = open_bench(bench.keys["li"], lang=lang, viewport=LAPTOP)
    assert page.evaluate("document.getElementById('side') !== null")
    assert page.evaluate(BENCH_FITS) == []
    letter = page.evaluate("parseFloat(getComputedStyle(document.querySelector('.brand .motto')).letterSpacing)")
    assert letter < (3 if lang == "en" else 99)  # Latin words are not spread like Chinese characters
    screenshot(page, f"workbench-start-{lang}-1366.png")


def test_open_a_village_and_paint_a_block_into_its_neighbour(open_bench, bench, reference, adjacency):
    page, watch = open_bench(bench.keys["zhang"])
    screenshot(page, "workbench-start.png")
    page.fill("#search", "前垵")
    page.click(f"#search-results li[data-code='{VILLAGE}']")
    page.click("#create")
    page.wait_for_function("window.workbench.state !== null", timeout=60_000)
    settle(page)
    assert shown_households(page) == households(reference)
    assert page.locator("#plan-status").inner_text() == "草稿"
    blocks_drawn = page.evaluate("workbench.blocks.byId.size")
    assert blocks_drawn == len(reference.blocks)

    block, source, target = movable(reference, adjacency, reference.assignment.to_dict())
    moved = int(reference.blocks.set_index("block_id").at[block, "households"])
    before = shown_households(page)
    paint(page, reference, [block], target)
    after = shown_households(page)
    expected = households(gridgeo.plan.reassign(reference, [block], target))
    assert after == expected
    assert after[source] == before[source] - moved and after[target] == before[target] + moved
    assert page.locator("#plan-dirty").is_visible()
    name = reference.units.set_index("code")["name"][target]
    assert page.locator("#log li").last.inner_text() == f"调整图块 1 个图块划入 {name}"  # a name where a person reads
    screenshot(page, "workbench-painted.png")

    # the planner takes the unsaved plan away as the block-to-grid CSV, straight from the page
    with page.expect_download() as download:
        page.click("[data-export='csv']")
    table = pd.read_csv(download.value.path(), dtype=str, encoding="utf-8-sig")
    assert dict(zip(table["block_id"], table["grid"])) == \
        gridgeo.plan.reassign(reference, [block], target).assignment.to_dict()

    # undo and redo are the page's own: the figures come back without asking the service
    edits = len(watch.paths("/plans/"))
    page.click("#undo")
    assert shown_households(page) == before
    page.click("#redo")
    assert shown_households(page) == after and len(watch.paths("/plans/")) == edits
    # a brush stroke over two blocks is one edit
    state = gridgeo.plan.reassign(reference, [block], target)
    stroke_block, stroke_from, stroke_to = movable(reference, adjacency, state.assignment.to_dict())
    neighbours = [n for n in adjacency.neighbors(stroke_block) if state.assignment[n] == stroke_from]
    chain = [stroke_block] + [n for n in neighbours
                              if nx.is_connected(adjacency.subgraph(
                                  [b for b, g in state.assignment.items() if g == stroke_from
                                   and b not in (stroke_block, n)]))][:1]
    posted = len(watch.paths("/plans/"))
    paint(page, reference, chain, stroke_to)
    assert len(watch.paths("/plans/")) == posted + 1
    assert shown_households(page) == households(gridgeo.plan.reassign(state, chain, stroke_to))


def test_split_a_grid_along_a_drawn_line_and_merge_it_back(open_bench, bench, reference):
    plan = create_plan(bench, bench.keys["zhang"])
    page, watch = open_bench(bench.keys["zhang"], plan=plan)
    original = shown_households(page)
    code = max(original, key=original.get)
    grid = reference.units.set_index("code").geometry[code]
    x = grid.centroid.x
    (x0, y0), (x1, y1) = pixel(page, grid.bounds[1] - 0.0005, x), pixel(page, grid.bounds[3] + 0.0005, x)
    page.click(f"#grid-list [data-grid='{code}'] .grid-name")
    page.click("#modes [data-mode='split']")
    with page.expect_request(lambda r: r.url.endswith(f"/plans/{plan}/edit")) as sent:
        page.mouse.click(x0, y0)
        page.mouse.click(x1, y1)
        page.mouse.click(x1, y1)  # a click on the last point finishes the line
    settle(page)
    line = shapely.geometry.shape(sent.value.post_data_json["line"])
    assert sent.value.post_data_json["op"] == "split" and sent.value.post_data_json["to"] == code
    split = shown_households(page)
    expected = households(gridgeo.plan.split(reference, code, line))
    assert split == expected and len(split) == len(original) + 1
    new = (set(split) - set(original)).pop()
    assert split[code] + split[new] == original[code]
    screenshot(page, "workbench-split.png")

    page.check(f"[data-tick='{code}']")
    page.check(f"[data-tick='{new}']")
    page.click("#merge")
    settle(page)
    assert shown_households(page) == original
    assert page.evaluate("workbench.state.assignment") == reference.assignment.to_dict()


def test_an_edit_that_cuts_a_grid_in_two_is_flagged(open_bench, bench, reference, adjacency):
    assignment = reference.assignment.to_dict()
    for block, source in sorted(assignment.items()):
        mine = [b for b, g in assignment.items() if g == source and b != block]
        pieces = nx.number_connected_components(adjacency.subgraph(mine))
        targets = sorted({assignment[n] for n in adjacency.neighbors(block)} - {source})
        if pieces > 1 and targets:
            break
    else:
        raise AssertionError("no block cuts its grid in two")
    plan = create_plan(bench, bench.keys["zhang"])
    page, _ = open_bench(bench.keys["zhang"], plan=plan)
    assert page.locator("[data-summary='non_contiguous'] dd").inner_text() == "0"
    paint(page, reference, [block], targets[0])
    row = page.locator(f"#grid-list [data-grid='{source}']")
    assert row.get_attribute("data-contiguous") == "false"
    assert int(row.get_attribute("data-pieces")) == pieces
    assert row.locator("[data-flag='pieces']").inner_text() == f"不连通（{pieces}块）"
    assert page.locator("[data-summary='non_contiguous'] dd").inner_text() == "1"
    screenshot(page, "workbench-not-contiguous.png")


def test_a_stale_save_is_refused_and_the_first_save_is_kept(open_bench, bench, reference, adjacency):
    plan = create_plan(bench, bench.keys["zhang"])
    first, _ = open_bench(bench.keys["zhang"], plan=plan)
    second, second_watch = open_bench(bench.keys["li"], plan=plan)  # both open revision r0
    opened = int(first.evaluate("workbench.state.revision"))

    block, source, target = movable(reference, adjacency, reference.assignment.to_dict())
    paint(first, reference, [block], target)
    first.click("#save")
    settle(first)
    saved = int(first.evaluate("workbench.state.revision"))
    assert saved > opened and first.locator("#plan-dirty").is_hidden()
    with gridgeo.store.open(bench.store) as store:
        kept = store.plan(plan).read()

    # the second planner paints a block of the same grid elsewhere and saves on r0
    assignment = reference.assignment.to_dict()
    other, _, other_target = next(
        found for b in sorted(assignment) if assignment[b] == source and b != block
        for found in [movable_block(adjacency, assignment, b)] if found)
    paint(second, reference, [other], other_target)
    mine = shown_households(second)
    second_watch.expect(409, f"/plans/{plan}/save")
    second.click("#save")
    settle(second)
    text = second.locator("#message-text").inner_text()
    names = reference.units.set_index("code")["name"]
    assert "保存被拒绝" in text and "网格办张三" in text and names[source] in text and names[target] in text
    assert source not in text and "UTC" not in text  # names and Beijing time, not codes and UTC
    assert text.count("网格办张三") == 1  # one sentence for the one save, naming both grids it changed
    assert "未丢失" in text
    # nothing is lost in the page, and the store holds the first planner's save
    assert shown_households(second) == mine and second.locator("#plan-dirty").is_visible()
    assert int(second.evaluate("workbench.state.revision")) == opened
    screenshot(second, "workbench-stale-save.png")
    with gridgeo.store.open(bench.store) as store:
        now = store.plan(plan).read()
        assert store.plan(plan).revision == saved
    assert now.drop(columns="geometry").equals(kept.drop(columns="geometry"))
    assert bool(np.all(shapely.equals(now.geometry.array, kept.geometry.array)))


def test_compare_shows_who_moves(open_bench, bench, reference, adjacency):
    plan = create_plan(bench, bench.keys["zhang"])
    page, _ = open_bench(bench.keys["zhang"], plan=plan, lang="en")
    block, source, target = movable(reference, adjacency, reference.assignment.to_dict())
    paint(page, reference, [block], target)
    page.check("#compare")
    settle(page)
    moves = page.locator("#diff table.moves tr[data-from]")
    assert moves.count() == 1
    assert (moves.get_attribute("data-from"), moves.get_attribute("data-to")) == (source, target)
    expected = gridgeo.plan.diff(reference, gridgeo.plan.reassign(reference, [block], target)).moves
    assert int(moves.get_attribute("data-households")) == int(expected["households"].iloc[0])
    assert page.locator("[data-change='reshaped']").count() == 2
    assert page.locator("#save").inner_text() == "Save"
    screenshot(page, "workbench-compare-en.png")


def one_map_unit_at(open_page, bench, lat: float, lon: float) -> tuple[str, str]:
    """The grid the one map (/map) selects for a click at a place, and the households it shows."""
    page, _ = open_page(f"{bench.url}/map#map=16/{lat:.6f}/{lon:.6f}")
    page.wait_for_function("window.onemap && onemap.idle()", timeout=60_000)
    page.wait_for_timeout(150)
    x, y = page.evaluate("""([lat, lon]) => {
        const p = onemap.map.latLngToContainerPoint([lat, lon]);
        const r = onemap.map.getContainer().getBoundingClientRect();
        return [p.x + r.left, p.y + r.top];
    }""", [lat, lon])
    before = page.evaluate("document.body.dataset.unit")
    page.mouse.click(x, y)
    page.wait_for_function(f"document.body.dataset.unit && document.body.dataset.unit !== '{before}'", timeout=30_000)
    page.wait_for_function("window.onemap && onemap.idle()", timeout=60_000)
    code = page.evaluate("document.body.dataset.unit")
    households = page.inner_text("[data-figure='households'] dd")
    page.context.close()
    return code, households


def reviewer_opens(page, plan: int):
    """The reviewer picks the plan from the list of plans waiting for review."""
    item = page.locator(f"#review-queue li[data-plan='{plan}']")
    item.wait_for(timeout=30_000)
    item.click()
    page.wait_for_function(f"workbench.state && workbench.state.plan.id === {plan}", timeout=60_000)
    settle(page)


def open_report(page, button: str):
    page.click(button)
    page.wait_for_selector("#report-dialog[open]", timeout=60_000)
    settle(page)


def test_a_planner_submits_a_reviewer_reads_the_report_and_publishes_and_the_one_map_follows(
        open_bench, open_page, bench, sample):
    import morecantile

    state = gridgeo.plan.start(sample.grids, PUBLISHED_VILLAGE, roads=sample.roads, addresses=sample.addresses,
                               stations=sample.stations)
    graph = block_adjacency(state)
    assignment = state.assignment.to_dict()
    # a block whose move cuts its grid in two: the report must say the grid would be published in pieces
    for block, source in sorted(assignment.items()):
        rest = [b for b, g in assignment.items() if g == source and b != block]
        pieces = nx.number_connected_components(graph.subgraph(rest))
        targets = sorted({assignment[n] for n in graph.neighbors(block)} - {source})
        if pieces > 1 and targets:
            target = targets[0]
            break
    else:
        raise AssertionError("no block cuts its grid in two")
    expected = gridgeo.plan.reassign(state, [block], target)
    moves = gridgeo.plan.diff(state, expected).moves
    spot = shapely.maximum_inscribed_circle(state.blocks.set_index("block_id").geometry[block]).coords[0]
    lat, lon = spot[1], spot[0]
    version = httpx.get(f"{bench.url}/health").json()["data_version"]
    assert one_map_unit_at(open_page, bench, lat, lon)[0] == source

    # the planner paints and submits: the plan is now read only for them, and waits
    plan = create_plan(bench, bench.keys["zhang"], parent=PUBLISHED_VILLAGE)
    planner, _ = open_bench(bench.keys["zhang"], plan=plan)
    assert planner.locator("#who").inner_text().startswith("网格办张三 · 规划员 · 全市")
    paint(planner, state, [block], target)
    assert planner.locator("#submit").is_visible() and planner.locator("#publish").is_hidden()
    planner.click("#submit")
    planner.wait_for_function("workbench.state.plan.status === 'submitted'", timeout=60_000)
    settle(planner)
    assert planner.locator("#plan-status").inner_text() == "待审核"
    assert planner.locator("#tools-box").is_hidden() and planner.locator("#withdraw").is_visible()
    assert "网格办张三" in planner.locator("#review-note").inner_text()
    screenshot(planner, "workbench-submitted.png")

    # the reviewer (in English) sees it waiting, reads the report, and returns it with a comment
    reviewer, _ = open_bench(bench.keys["wang"], lang="en")
    assert reviewer.locator("#review-box").is_visible()
    reviewer_opens(reviewer, plan)
    assert reviewer.locator("#plan-status").inner_text() == "submitted"
    assert reviewer.locator("#tools-box").is_hidden() and reviewer.locator("#review").is_visible()
    open_report(reviewer, "#review")
    assert reviewer.locator("#report-title").inner_text() == "Review: the pre-publish report"
    cut = reviewer.locator(f"#report-warnings li[data-kind='non_contiguous'][data-code='{source}']")
    assert cut.count() == 1 and int(float(cut.get_attribute("data-value"))) == pieces
    assert f"in {pieces} pieces" in cut.inner_text() and cut.locator(".tag.new").count() == 1
    rows = reviewer.locator("#report-moves tr[data-from]")
    shown = {(rows.nth(k).get_attribute("data-from"), rows.nth(k).get_attribute("data-to")):
             int(rows.nth(k).get_attribute("data-households")) for k in range(rows.count())}
    assert shown == {(f, t_): int(h) for f, t_, h in zip(moves["from_code"], moves["to_code"], moves["households"])}
    assert reviewer.locator("#report-approve").is_disabled()  # the warnings are not acknowledged yet
    screenshot(reviewer, "workbench-review-report-en.png")
    comment = f"{source} would be cut in {pieces} pieces: check it with the village"
    reviewer.fill("#report-comment", comment)
    reviewer.click("#report-return")
    reviewer.wait_for_function("workbench.state.plan.status === 'draft'", timeout=60_000)
    settle(reviewer)
    assert reviewer.locator("#report-dialog").get_attribute("open") is None

    # the planner sees the comment, and submits again as it is
    planner.reload()
    planner.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    settle(planner)
    note = planner.locator("#review-note")
    assert note.get_attribute("data-kind") == "returned" and comment in note.inner_text()
    assert "审核员王五" in note.inner_text() and planner.locator("#tools-box").is_visible()
    screenshot(planner, "workbench-returned.png")
    planner.click("#submit")
    planner.wait_for_function("workbench.state.plan.status === 'submitted'", timeout=60_000)
    settle(planner)

    # the reviewer (in Chinese now) acknowledges the warnings and approves: nothing is published yet
    reviewer.goto(f"{bench.url}/plan")
    reviewer.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    settle(reviewer)
    reviewer_opens(reviewer, plan)
    open_report(reviewer, "#review")
    assert reviewer.locator("#report-title").inner_text() == "审核方案：发布前报告"
    assert reviewer.locator("#report-publish").is_hidden() and reviewer.locator("#report-comment").is_visible()
    screenshot(reviewer, "workbench-review-report.png")
    version_shown = reviewer.locator("#report-dialog").get_attribute("data-version")
    reviewer.check("#report-ack")
    assert version_shown in reviewer.locator("#report-ack-text").inner_text()
    assert reviewer.locator("#report-approve").is_enabled()
    reviewer.fill("#report-comment", "已与村里核实：两部分由同一网格员服务")
    reviewer.click("#report-approve")
    reviewer.wait_for_function("workbench.state.plan.status === 'approved'", timeout=60_000)
    settle(reviewer)
    assert httpx.get(f"{bench.url}/health").json()["data_version"] == version
    assert one_map_unit_at(open_page, bench, lat, lon)[0] == source

    # publishing shows the report's summary, asks again, and the one map follows
    open_report(reviewer, "#publish")
    assert reviewer.locator("#report-title").inner_text() == "发布确认：发布前报告"
    assert reviewer.locator("#report-comment").is_hidden() and reviewer.locator("#report-approve").is_hidden()
    warnings = reviewer.locator("#report-warnings li").count()
    assert reviewer.locator("#report-summary [data-summary='warnings'] dd").inner_text() == str(warnings) and warnings >= 1
    assert reviewer.locator("#report-summary [data-summary='non_contiguous'] dd").inner_text() == "1"
    assert reviewer.locator("#report-summary [data-summary='households_moved'] dd").inner_text() == \
        f"{int(moves['households'].sum()):,}"
    assert reviewer.locator("#report-publish").is_disabled()
    reviewer.check("#report-ack")
    screenshot(reviewer, "workbench-publish-confirm.png")
    reviewer.click("#report-publish")
    reviewer.wait_for_function("workbench.state.plan.status === 'published'", timeout=60_000)
    settle(reviewer)
    assert reviewer.locator("#plan-status").inner_text() == "已发布"
    screenshot(reviewer, "workbench-published.png")
    assert httpx.get(f"{bench.url}/health").json()["data_version"] > version
    code, households = one_map_unit_at(open_page, bench, lat, lon)
    assert code == target and households == f"{households_of(expected)[target]:,}"

    items = httpx.get(f"{bench.url}/collections/grid2/items", params={"parent": source[:-2], "limit": 100}).json()
    published = {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in items["features"]}
    inside = shapely.Point(lon, lat)
    assert published[target].covers(inside) and not published[source].covers(inside)
    new = expected.units.set_index("code").geometry[target]
    assert published[target].symmetric_difference(new).area < 1e-6 * new.length
    tile = morecantile.tms.get("WebMercatorQuad").tile(lon, lat, 16)
    r = httpx.get(f"{bench.url}/tiles/grid2/{tile.z}/{tile.x}/{tile.y}.mvt")
    decoded = mapbox_vector_tile.decode(r.content)["grid2"]["features"]
    assert {f["properties"]["code"]: f["properties"]["households"] for f in decoded}[target] == \
        households_of(expected)[target]
    with gridgeo.store.open(bench.store) as store:
        log = store.plan(plan).history()
    assert log[["action", "author"]].values.tolist()[-5:] == [
        ["submit", "网格办张三"], ["return", "审核员王五"], ["submit", "网格办张三"], ["approve", "审核员王五"],
        ["publish", "审核员王五"]]
    assert log["message"].iloc[-4] == comment and version_shown in log["message"].iloc[-1]


def test_a_grid_renamed_on_the_page_is_saved(open_bench, bench):
    plan = create_plan(bench, bench.keys["li"])
    page, _ = open_bench(bench.keys["li"], plan=plan)
    code = page.locator("#grid-list [data-grid]").first.get_attribute("data-grid")
    page.dblclick(f"#grid-list [data-grid='{code}'] .grid-name")
    page.fill(f"input[data-rename='{code}']", "东区网格")
    page.press(f"input[data-rename='{code}']", "Enter")
    settle(page)
    assert page.locator(f"#grid-list [data-grid='{code}'] .grid-name").inner_text() == "东区网格"
    assert page.locator("#plan-dirty").is_visible()
    page.click("#save")
    settle(page)
    assert page.locator("#plan-dirty").is_hidden()
    with gridgeo.store.open(bench.store) as store:
        units = store.plan(plan).read().set_index("code")
        log = store.plan(plan).history()
    assert units.at[code, "name"] == "东区网格" and log["action"].tolist() == ["create", "save"]
    assert log["codes"].iloc[-1] == code  # the name, and nothing else, was written
    page.click("#save")  # nothing changed since: nothing is written
    settle(page)
    with gridgeo.store.open(bench.store) as store:
        assert len(store.plan(plan).history()) == 2


def test_upload_an_office_file_and_open_it_as_a_draft(open_bench, bench, sample, tmp_path):
    """A village office's redrawn level-2 grids, a GBK shapefile in GK zone 39 zipped as it
    is mailed, one grid drawn 60 m over its neighbours: the page shows what the intake
    found (columns, counts, the overlap on the map) and opens it as a draft; nothing is
    published."""
    import zipfile

    import geopandas as gpd

    from office_files import grid_shapefile

    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    village = next(v for v in sorted(set(grid2["code"].str[:12])) if v not in (VILLAGE, PUBLISHED_VILLAGE)
                   and (grid2["code"].str[:12] == v).sum() >= 3)
    mine = grid2[grid2["code"].str.startswith(village)].copy()
    metric = gridgeo.crs.metric_crs(mine)
    first = mine.index[0]
    mine.loc[first, "geometry"] = gpd.GeoSeries([mine.loc[first, "geometry"]], crs=4490).to_crs(metric) \
        .buffer(60).to_crs(4490).iloc[0]
    shp = grid_shapefile(tmp_path, mine, name="村网格.shp")
    archive = tmp_path / "村网格.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for part in tmp_path.glob("村网格.*"):
            if part.suffix != ".zip":
                z.write(part, arcname=part.name)
    version = httpx.get(f"{bench.url}/health").json()["data_version"]

    page, _ = open_bench(bench.keys["zhang"])
    page.set_input_files("#import-file", str(archive))
    page.click("#import-upload")
    page.wait_for_selector("#import-panel:not([hidden])", timeout=60_000)
    settle(page)
    assert page.locator("#import-panel").get_attribute("data-ok") == "false"
    assert page.locator("#import-mapping select[data-target='code']").input_value() == "网格编码"
    assert page.locator("#import-mapping select[data-target='level']").input_value() == "网格等级"
    assert page.locator("#import-counts [data-count='grid2'] dd").inner_text() == str(len(mine))
    assert page.locator("#import-problems li[data-kind='overlap']").count() >= 1
    assert page.evaluate("workbench.importer.problems.getLayers().length") >= 1
    screenshot(page, "workbench-import-report.png")

    page.click("#import-open")
    page.wait_for_function("document.getElementById('import-panel').hidden && workbench.state "
                           f"&& workbench.state.plan.parent === '{village}'", timeout=60_000)
    settle(page)
    rows = page.locator("#grid-list [data-grid]")
    assert sorted(rows.nth(k).get_attribute("data-grid") for k in range(rows.count())) == sorted(mine["code"])
    assert page.locator("#plan-status").inner_text() == "草稿"
    screenshot(page, "workbench-import-opened.png")
    assert httpx.get(f"{bench.url}/health").json()["data_version"] == version  # nothing published


def test_an_admin_restores_the_version_before_a_publish_and_the_one_map_follows(open_bench, open_page, bench, sample):
    from test_rollback import NEW_CODE, move_grid

    with gridgeo.store.open(bench.store) as store:
        moved, published = move_grid(store)  # a level-2 grid of one level-1 grid moved to the other, by 张三
    wait_served(bench, published)
    spot = sample.grids.set_index("code").geometry[moved].representative_point()
    lat, lon = spot.y, spot.x
    assert one_map_unit_at(open_page, bench, lat, lon)[0] == NEW_CODE

    # a planner is not shown the versions; the admin is, newest (the one map's) first
    planner, _ = open_bench(bench.keys["zhang"])
    assert planner.locator("#published-box").is_hidden()
    admin, _ = open_bench(bench.keys["zhao"])
    assert admin.locator("#published-box").is_visible()
    rows = admin.locator("#published-list li")
    newest = rows.nth(0)
    assert int(newest.get_attribute("data-revision")) == published and newest.get_attribute("data-action") == "publish"
    assert "张三" in newest.inner_text() and "发布方案" in newest.inner_text()
    assert newest.locator("[data-restore]").count() == 0  # the current version is not restored
    earlier = int(rows.nth(1).get_attribute("data-revision"))
    assert earlier < published

    # the preview shows what the library's own preview says, with the grids' names
    admin.click(f"[data-restore='{earlier}']")
    admin.wait_for_selector("#rollback-dialog[open]", timeout=60_000)
    settle(admin)
    with gridgeo.store.open(bench.store) as store:
        expected = store.rollback_preview(earlier)
        names_then = store.read("grids", at=earlier).set_index("code")["name"]
    assert expected["units"] == {"added": [moved], "changed": sorted(expected["units"]["changed"]),
                                 "removed": [NEW_CODE]}
    row = admin.locator("#rollback-layers tr[data-layer='grids']")
    assert {w: int(row.get_attribute(f"data-{w}")) for w in ("added", "changed", "removed")} == \
        expected["layers"]["grids"]
    shown = admin.locator("#rollback-units li[data-unit]")
    units = {shown.nth(k).get_attribute("data-unit"): shown.nth(k).get_attribute("data-change")
             for k in range(shown.count())}
    assert units == {code: what for what, codes in expected["units"].items() for code in codes}
    assert names_then[moved] in admin.locator(f"#rollback-units li[data-unit='{moved}']").inner_text()
    assert admin.locator("#rollback-title").inner_text() == f"恢复到第 {earlier} 版"
    assert admin.locator("#rollback-confirm").is_enabled()
    screenshot(admin, "workbench-rollback-preview.png")

    # a reason is asked for; then the rollback is one new revision by the admin
    admin.click("#rollback-confirm")
    assert admin.locator("#rollback-refused").inner_text() == "请写明恢复的原因。"
    assert httpx.get(f"{bench.url}/health").json()["data_version"] == published
    admin.fill("#rollback-message", "调整未经村里同意，先恢复")
    admin.click("#rollback-confirm")
    admin.wait_for_function("!document.getElementById('rollback-dialog').open", timeout=120_000)
    admin.wait_for_function("document.querySelector('#published-list li')?.dataset.action === 'rollback'",
                            timeout=60_000)
    settle(admin)
    assert int(rows.nth(0).get_attribute("data-revision")) == published + 1
    assert "调整未经村里同意" in rows.nth(0).inner_text() and rows.nth(1).locator("[data-restore]").count() == 1
    screenshot(admin, "workbench-rolled-back.png")
    with gridgeo.store.open(bench.store) as store:
        entry = store.audit(revision=published + 1).iloc[0]
        assert (entry["action"], entry["author"], entry["message"]) == ("rollback", "管理员赵六", "调整未经村里同意，先恢复")
        assert entry["what"]["to"] == earlier and entry["what"]["units"] == expected["units"]
        assert set(store.read("grids")["code"]) == set(names_then.index)

    # the one map follows: the place is in its old grid again
    wait_served(bench, published + 1)
    assert one_map_unit_at(open_page, bench, lat, lon)[0] == moved


def wait_served(bench, version: int) -> None:
    """Until the service serves data version ``version`` (it looks once a second, then prepares it)."""
    import time

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        health = httpx.get(f"{bench.url}/health", timeout=300).json()
        if health["data_version"] == version and health.get("served_version") == version:
            return
        time.sleep(0.3)
    raise AssertionError(f"the service did not serve data version {version}")


# --- context, tools and compare (issue 20) -------------------------------------------------------

FENCED = "350582106002"  # 蔡厝社区: two level-1 grids, so a plan of level 2 has a fence inside it


@pytest.fixture(scope="module")
def fenced(sample):
    """gridgeo.plan's own state of the village with two level-1 grids, as a plan of level 2 opens it."""
    return gridgeo.plan.start(sample.grids, FENCED, roads=sample.roads, addresses=sample.addresses,
                              stations=sample.stations, editable=["grid2", "grid3"])


def store_frame(bench, collection):
    with gridgeo.store.open(bench.store) as store:
        return store.read(collection)


def block_colours(page) -> dict[str, str]:
    return page.evaluate("Object.fromEntries([...workbench.blocks.byId].map(([id, l]) => [id, l.options.fillColor]))")


def edits_sent(watch) -> int:
    return len([p for p in watch.paths("/plans/") if p.endswith("/edit")])


@pytest.mark.parametrize("viewport", [WALL, LAPTOP], ids=["1920", "1366"])
def test_the_villages_around_and_the_level1_grids_inside_are_drawn(open_bench, bench, viewport):
    plan = create_plan(bench, bench.keys["zhang"], parent=FENCED)
    page, _ = open_bench(bench.keys["zhang"], plan=plan, viewport=viewport)
    drawn = page.evaluate("workbench.context.drawn()")
    # the reference: the store's villages that a spatial join finds touching this one, and its level-1 grids
    villages = store_frame(bench, "village")
    own = villages[villages["code"] == FENCED]
    around = gpd.sjoin(villages, own[["geometry"]], predicate="intersects")
    assert drawn["neighbours"] == sorted(set(around["code"]) - {FENCED}) and len(drawn["neighbours"]) >= 2
    grid1 = store_frame(bench, "grid1")
    assert drawn["fences"] == sorted(grid1.loc[grid1["parent"] == FENCED, "code"]) and len(drawn["fences"]) == 2
    # the neighbours are named, dimmed, and take no click
    names = page.locator(".grid-label.around").all_inner_texts()
    assert sorted(names) == sorted(villages.set_index("code").loc[drawn["neighbours"], "name"])
    assert page.evaluate("getComputedStyle(workbench.map.getPane('around')).pointerEvents") == "none"
    page.evaluate("new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(true))))")
    screenshot(page, f"workbench-context-{viewport['width']}.png")


def test_a_stroke_across_a_level1_boundary_is_explained_before_anything_is_sent(open_bench, bench, fenced, sample):
    plan = create_plan(bench, bench.keys["zhang"], parent=FENCED)
    page, watch = open_bench(bench.keys["zhang"], plan=plan)
    graph = block_adjacency(fenced)
    of, _ = gridgeo.plan.fences(fenced)
    assignment = fenced.assignment.to_dict()
    # two neighbouring blocks in different level-1 grids (shapely's edges, the fences from the grids)
    start, across = next((a, b) for a, b in sorted(graph.edges) if of[a] != of[b])
    grid = assignment[start]
    names = sample.grids.set_index("code")["name"]
    page.click(f"#grid-list [data-grid='{grid}'] .grid-name")
    page.click("#modes [data-mode='paint']")
    sent = edits_sent(watch)
    page.mouse.move(*block_pixel(page, fenced, start))
    page.mouse.down()
    page.mouse.move(*block_pixel(page, fenced, across), steps=15)
    # the mouse is still down: the stroke says what it cannot do, naming the level-1 grids by name
    text = page.locator("#message-text").inner_text()
    assert page.locator("#message").is_visible() and page.locator("#message").get_attribute("data-kind") == "warning"
    assert names[of[across]] in text and names[of[start]] in text and names[grid] in text and "一级网格" in text
    assert edits_sent(watch) == sent
    refused = page.evaluate(f"workbench.blocks.byId.get({json.dumps(across)}).options.color")
    assert refused == "#ff4d6d"
    page.mouse.up()
    settle(page)
    assert edits_sent(watch) == sent  # nothing the plan allows was in the stroke: nothing sent
    assert page.evaluate("workbench.state.assignment") == assignment
    assert page.locator("#message").is_visible()  # the explanation stays until dismissed
    screenshot(page, "workbench-fence-refused.png")
    # in English too
    page.click("#language")
    page.mouse.move(*block_pixel(page, fenced, start))
    page.mouse.down()
    page.mouse.move(*block_pixel(page, fenced, across), steps=15)
    text = page.locator("#message-text").inner_text()
    assert "level-1" in text.lower() or "grid1" in text.lower() or "level 1" in text.lower(), text
    assert names[of[across]] in text
    page.mouse.up()
    settle(page)


def test_the_area_brush_paints_the_blocks_within_its_radius(open_bench, bench, reference):
    plan = create_plan(bench, bench.keys["li"])
    page, watch = open_bench(bench.keys["li"], plan=plan)
    graph = block_adjacency(reference)
    assignment = reference.assignment.to_dict()
    sizes = page.locator("#brush-size option").all_inner_texts()
    assert sizes[0] == "单个图块" and sizes[1:] == ["半径 1 块", "半径 2 块", "半径 3 块"]
    # a block on the edge of a grid whose ring of radius 1 the neighbour can take (gridgeo.plan agrees)
    for block in sorted(assignment):
        ring = sorted(nx.ego_graph(graph, block, radius=1).nodes)
        targets = sorted({assignment[n] for n in graph.neighbors(block)} - {assignment[block]})
        if not targets:
            continue
        try:
            expected = gridgeo.plan.reassign(reference, ring, targets[0])
        except gridgeo.plan.PlanError:
            continue
        if len({assignment[b] for b in ring}) > 1:
            break
    target = targets[0]
    page.select_option("#brush-size", "1")
    page.click(f"#grid-list [data-grid='{target}'] .grid-name")
    page.click("#modes [data-mode='paint']")
    sent = edits_sent(watch)
    page.mouse.click(*block_pixel(page, reference, block))
    settle(page)
    assert edits_sent(watch) == sent + 1
    after = page.evaluate("workbench.state.assignment")
    assert {b for b in after if after[b] != assignment[b]} == {b for b in ring if assignment[b] != target}
    assert after == expected.assignment.to_dict()
    assert shown_households(page) == households(expected)


def test_a_locked_grid_is_neither_painted_into_nor_out_of(open_bench, bench, reference, adjacency):
    plan = create_plan(bench, bench.keys["li"])
    page, watch = open_bench(bench.keys["li"], plan=plan)
    assignment = reference.assignment.to_dict()
    block, source, target = movable(reference, adjacency, assignment)
    names = reference.units.set_index("code")["name"]
    page.click(f"#grid-list [data-grid='{source}'] button[data-lock]")
    assert page.locator(f"#grid-list [data-grid='{source}']").get_attribute("class").split().count("locked") == 1
    sent = edits_sent(watch)
    paint(page, reference, [block], target)  # out of the locked grid
    assert edits_sent(watch) == sent and page.evaluate("workbench.state.assignment") == assignment
    assert names[source] in page.locator("#message-text").inner_text() and "锁定" in page.locator("#message-text").inner_text()
    # into it: a block of the target next to the locked grid
    back = next(n for n in adjacency.neighbors(block) if assignment[n] == target)
    paint(page, reference, [back], source)
    assert edits_sent(watch) == sent and page.evaluate("workbench.state.assignment") == assignment
    # the lock lasts through a reload, and unlocking lets the brush work again
    page.reload()
    page.wait_for_function("document.body.dataset.ready === '1'", timeout=60_000)
    settle(page)
    assert "locked" in page.locator(f"#grid-list [data-grid='{source}']").get_attribute("class").split()
    page.click(f"#grid-list [data-grid='{source}'] button[data-lock]")
    paint(page, reference, [block], target)
    assert edits_sent(watch) == sent + 1 and page.evaluate("workbench.state.assignment")[block] == target


def test_a_name_another_grid_has_is_refused(open_bench, bench, reference):
    plan = create_plan(bench, bench.keys["li"])
    page, watch = open_bench(bench.keys["li"], plan=plan)
    first, second = reference.units["code"].iloc[:2]
    taken = reference.units.set_index("code")["name"][second]
    watch.expect(422, f"/plans/{plan}/edit")
    page.dblclick(f"#grid-list [data-grid='{first}'] .grid-name")
    page.fill(f"input[data-rename='{first}']", taken)
    page.press(f"input[data-rename='{first}']", "Enter")
    settle(page)
    text = page.locator("#message-text").inner_text()
    assert "不能改名" in text and taken in text and "名称不能重复" in text
    assert page.locator(f"#grid-list [data-grid='{first}'] .grid-name").inner_text() == \
        reference.units.set_index("code")["name"][first]
    assert page.locator("#plan-dirty").is_hidden()


def test_renumbering_keeps_every_grid_its_colour(open_bench, bench, reference):
    plan = create_plan(bench, bench.keys["li"])
    page, _ = open_bench(bench.keys["li"], plan=plan)
    # a new grid of one block that gridgeo.plan accepts and whose renumbering (reading order)
    # recodes grids: the new grid gets the next code, 05, and the order puts it elsewhere
    def recodes(block):
        try:
            return bool(gridgeo.plan.renumber(gridgeo.plan.add(reference, [block])).log[-1].get("renamed"))
        except gridgeo.plan.PlanError:
            return False

    northwest = next(b for b in sorted(reference.blocks["block_id"]) if recodes(b))
    page.click("#modes [data-mode='add']")
    page.mouse.click(*block_pixel(page, reference, northwest))
    settle(page)
    before_codes = page.evaluate("workbench.state.assignment")
    before = block_colours(page)
    page.click("#renumber")
    settle(page)
    after_codes = page.evaluate("workbench.state.assignment")
    renamed = page.evaluate("workbench.state.log.at(-1).renamed")
    assert renamed and any(before_codes[b] != after_codes[b] for b in before_codes)
    # a grid is its blocks: every block keeps the colour its grid had
    assert block_colours(page) == before
    rows = page.locator("#grid-list [data-grid]")
    swatch = {rows.nth(k).get_attribute("data-grid"): rows.nth(k).locator(".swatch-box").evaluate(
        "e => getComputedStyle(e).backgroundColor") for k in range(rows.count())}
    assert len(set(swatch.values())) == len(swatch)
    page.click("#undo")
    assert block_colours(page) == before


def test_splitting_gives_one_instruction(open_bench, bench, reference):
    plan = create_plan(bench, bench.keys["li"])
    page, _ = open_bench(bench.keys["li"], plan=plan)
    page.click("#modes [data-mode='split']")
    hint = page.locator("#mode-hint").inner_text()
    assert hint.count("结束") == 1 and "点击最后一点结束" in hint
    page.mouse.click(*block_pixel(page, reference, reference.blocks["block_id"].iloc[0]))
    page.mouse.move(*block_pixel(page, reference, reference.blocks["block_id"].iloc[5]), steps=5)
    text = page.locator("body").inner_text()
    for other in ("双击结束", "单击任何存在的标记", "单击以完成", "点击继续绘制"):
        assert other not in text, other
    assert page.locator(".leaflet-pm-toolbar, .pm-tooltip, .leaflet-tooltip.pm-hint").count() == 0
    assert "点击最后一点结束" in page.locator("#modes [data-mode='split']").get_attribute("title")
    page.keyboard.press("Escape")


def test_compare_draws_the_selection_the_published_outlines_and_the_moves_apart(open_bench, bench, reference,
                                                                                 adjacency):
    from PIL import Image
    import io

    plan = create_plan(bench, bench.keys["li"])
    page, _ = open_bench(bench.keys["li"], plan=plan)
    block, source, target = movable(reference, adjacency, reference.assignment.to_dict())
    paint(page, reference, [block], target)
    page.check("#compare")
    settle(page)
    styles = page.evaluate("""(() => {
        const o = workbench.outlines;
        const first = (g) => g.getLayers()[0].options;
        return {selected: first(o.selected).color, published: first(o.published).color,
                moves: first(o.moves).color, movesFill: first(o.moves).fillColor,
                pattern: Boolean(document.querySelector('#moved-hatch'))};
    })()""")
    assert len({styles["selected"], styles["published"], styles["moves"]}) == 3, styles
    assert styles["movesFill"] == "url(#moved-hatch)" and styles["pattern"]
    # the moved block still shows its new grid's colour under the hatching
    x, y = block_pixel(page, reference, block)
    png = screenshot(page, "workbench-compare.png")
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    colour = page.evaluate(f"workbench.colours.of({json.dumps(target)})")
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    around = image[int(y) - 6:int(y) + 7, int(x) - 6:int(x) + 7].reshape(-1, 3)
    # some pixels near the block's inside are its fill (painted over the dark map), not the hatch's magenta
    closest = np.abs(around - rgb).sum(axis=1).min()
    assert closest < 120, (closest, colour)


def test_roads_are_drawn_under_the_blocks(open_bench, bench):
    from collections import Counter

    from road_tiles import check_drawn, store_roads

    plan = create_plan(bench, bench.keys["li"])
    page, _ = open_bench(bench.keys["li"], plan=plan)

    def served(address):
        r = httpx.get(f"{bench.url}/tiles/roads/{address}.mvt")
        assert r.status_code in (200, 204)
        features = mapbox_vector_tile.decode(r.content).get("roads", {}).get("features", []) if r.content else []
        return Counter(f["properties"]["road_id"] for f in features)

    drawn = page.evaluate("workbench.roads.drawn()")
    assert check_drawn(drawn, store_roads(bench.store), served) > 20
    assert page.evaluate("+workbench.map.getPane('roads').style.zIndex < +workbench.map.getPane('blocks').style.zIndex")


def test_the_eraser_puts_blocks_in_the_holding_pen_and_a_plan_with_any_is_not_saved(open_bench, bench, reference,
                                                                                     adjacency):
    plan = create_plan(bench, bench.keys["li"])
    page, watch = open_bench(bench.keys["li"], plan=plan)
    assignment = reference.assignment.to_dict()
    block, source, _ = movable(reference, adjacency, assignment)
    page.click("#modes [data-mode='erase']")
    assert "待分配区" in page.locator("#mode-hint").inner_text()
    page.mouse.click(*block_pixel(page, reference, block))
    settle(page)
    after = page.evaluate("workbench.state.assignment")
    assert after[block] == "" and {b: g for b, g in after.items() if b != block} == \
        {b: g for b, g in assignment.items() if b != block}
    assert page.locator("#pen").is_visible() and page.locator("#pen").get_attribute("data-blocks") == "1"
    assert shown_households(page) == households(gridgeo.plan.unassign(reference, [block]))
    screenshot(page, "workbench-pen.png")
    saves = len(watch.paths(f"/plans/{plan}/save"))
    page.click("#save")
    settle(page)
    assert len(watch.paths(f"/plans/{plan}/save")) == saves  # refused on the page: nothing sent
    text = page.locator("#message-text").inner_text()
    assert page.locator("#message").is_visible() and "不能保存" in text and "待分配区" in text and "1" in text
    with gridgeo.store.open(bench.store) as store:
        assert store.plan(plan).history()["action"].tolist() == ["create"]
    # painted back with the brush: the pen is empty and the plan is as it was
    paint(page, reference, [block], source)
    assert page.locator("#pen").is_hidden() and page.evaluate("workbench.state.assignment") == assignment
