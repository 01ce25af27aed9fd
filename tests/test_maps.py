"""gridgeo.maps: folium maps with the one map's style, checked feature by feature
against independent computations, and offline HTML that loads nothing from outside
(parsed, then opened in headless Chromium with every other host refused)."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import folium
import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
import pytest
import shapely

import gridgeo
from browser_fixture import screenshot
from gridgeo import coverage, maps, network, stats


# --- helpers -----------------------------------------------------------------------


class References(HTMLParser):
    """Every URL a page would load by itself: src/href of loading elements, CSS url() and @import."""

    LOADING = {"script": "src", "link": "href", "img": "src", "iframe": "src", "source": "src",
               "audio": "src", "video": "src", "embed": "src", "object": "data"}

    def __init__(self, text):
        super().__init__()
        self.urls, self._in_style = [], False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in self.LOADING and attrs.get(self.LOADING[tag]):
            self.urls.append(attrs[self.LOADING[tag]])
        if attrs.get("style"):
            self.urls += _css_urls(attrs["style"])
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.urls += _css_urls(data)


def _css_urls(css):
    return [u.strip("'\" ") for u in re.findall(r"url\(([^)]*)\)", css)] + re.findall(r"@import\s+['\"]([^'\"]+)", css)


def external(urls):
    """The URLs that would leave the machine (data:, relative and 127.0.0.1 ones stay)."""
    out = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme == "data" or (not parts.scheme and not url.startswith("//")):
            continue
        if parts.hostname != "127.0.0.1":
            out.append(url)
    return out


def layers(m):
    """The GeoJson layers of a map by name."""
    return {c.layer_name: c for c in m._children.values() if isinstance(c, folium.GeoJson)}


def properties(layer):
    return [f["properties"] for f in layer.data["features"]]


@pytest.fixture(scope="module")
def households(sample):
    """Households per unit from an exact spatial join, independent of gridgeo.stats."""
    joined = gpd.sjoin(sample.addresses[["households", "geometry"]], sample.grids[["code", "geometry"]],
                       predicate="within")
    return joined.groupby("code")["households"].sum()


@pytest.fixture(scope="module")
def figures(sample):
    return stats.figures(sample.grids, addresses=sample.addresses, events=sample.events, stations=sample.stations)


def show(open_page, html, name, *, origin="http://127.0.0.1:9"):
    """Open map HTML in Chromium at ``origin`` (served by the test itself), with every
    request watched; returns the page and what it asked for."""
    url = f"{origin}/gridgeo-{name}.html"
    page, watch = open_page(url, ready=None, viewport={"width": 1400, "height": 900},
                            before=lambda p: p.route(url, lambda r: r.fulfill(body=html, content_type="text/html")))
    page.wait_for_load_state("load")
    page.wait_for_timeout(500)
    screenshot(page, f"folium-{name}.png")
    return page, watch


def test_docstring_examples_run():
    assert doctest.testmod(maps, optionflags=doctest.ELLIPSIS).failed == 0


# --- grids, stations -------------------------------------------------------------------


def test_grids_are_drawn_by_level_with_the_pages_lines(sample):
    m = maps.explore_grids(sample.grids)
    found = layers(m)
    s = maps.style()
    for level in ("town", "village", "grid1", "grid2", "grid3"):
        layer = found[gridgeo.schema.DEFAULT_SCHEME.level(level).label]
        codes = {p["code"] for p in properties(layer)}
        assert codes == set(sample.grids.loc[sample.grids["level"] == level, "code"])
        feature = layer.data["features"][0]
        assert layer.style_function(feature)["color"] == s["levels"][level]["color"]
    # drawn fine to coarse, so the town's line lies on top of the villages' it shares
    order = [name for name in found]
    assert order.index("二级网格") < order.index("村社") < order.index("镇街")


def test_display_simplification_keeps_the_level_a_coverage(sample):
    m = maps.explore_grids(sample.grids, levels=["grid2"], tolerance_m=5.0)
    shown = gpd.GeoDataFrame.from_features(layers(m)["二级网格"].data["features"], crs=4490)
    assert shapely.coverage_is_valid(shown.geometry.to_crs(gridgeo.crs.metric_crs(shown)).to_numpy(), gap_width=0.5)
    original = sample.grids[sample.grids["level"] == "grid2"].set_index("code").geometry
    moved = shapely.hausdorff_distance(
        gpd.GeoSeries(shown.geometry.to_numpy(), crs=4490).to_crs(32650).to_numpy(),
        original.loc[shown["code"]].to_crs(32650).to_numpy())
    assert moved.max() <= 5.5  # metres: the tolerance asked for


@pytest.mark.filterwarnings("ignore:Numba not installed")
def test_choropleth_classes_follow_mapclassify(figures, households):
    m = maps.explore_grids(figures, levels=["village", "grid2"], column="households")
    chosen = properties(layers(m)["户数 · 二级网格"])
    values = households.reindex([p["code"] for p in chosen]).fillna(0).to_numpy(dtype=float)
    classes = mapclassify.FisherJenks(values, k=5)
    ramp = maps.style()["ramps"]["YlOrRd"]
    colours = [ramp[round(i * 8 / 4)] for i in range(5)]
    assert [p["_fill"] for p in chosen] == [colours[c] for c in classes.yb]
    legend = m._children["gridgeo_legend"].html
    counts = [int(n.replace(",", "")) for n in re.findall(r'class="n">([\d,]+)<', legend)[:5]]
    assert counts == list(classes.counts)


def test_band_colours_follow_the_households_band(figures, households):
    m = maps.explore_grids(figures, levels=["grid2"], column="band")
    band = maps.style()["band"]
    for p in properties(layers(m)["户数达标（300–500户） · 二级网格"]):
        n = households.get(p["code"], 0)
        expected = "under" if n < 300 else "over" if n > 500 else "within"
        assert p["_fill"] == band[expected]["color"], (p["code"], n)


def test_stations_are_circles_coloured_by_kind(sample):
    m = maps.explore_stations(sample.stations, kinds=["grid2_station", "park_station"])
    layer = layers(m)["服务站点"]
    kinds = maps.style()["stations"]["kinds"]
    fills = [p["_fill"] for p in properties(layer)]
    chosen = sample.stations[sample.stations["kind"].isin(["grid2_station", "park_station"])]
    assert sorted(fills) == sorted(chosen["kind"].map(kinds))
    assert isinstance(layer.marker, folium.CircleMarker)  # no folium.Icon: no Font Awesome to fetch


def test_a_column_that_is_not_there_is_named(figures):
    with pytest.raises(ValueError, match="no column 'housholds'"):
        maps.explore_grids(figures, column="housholds")
    with pytest.raises(ValueError, match="not numeric"):
        maps.explore_grids(figures, column="name")


# --- problems, coverage, plans ---------------------------------------------------------------


def test_problems_are_located_by_severity(sample):
    broken = sample.grids.copy()
    first, second = broken.index[broken["level"] == "grid2"][:2]
    broken.loc[first, "geometry"] = broken.loc[second, "geometry"]
    siblings = broken.index[broken["parent"] == broken.loc[first, "parent"]]
    broken.loc[siblings[-1], "name"] = broken.loc[siblings[-2], "name"]  # a name repeated under a parent: a warning
    report = gridgeo.validate(broken)
    m = maps.explore_problems(report, grids=broken[broken["level"] == "village"])
    found = layers(m)
    errors = report[(report["severity"] == "error") & ~report.geometry.is_empty]
    warnings = report[(report["severity"] == "warning") & ~report.geometry.is_empty]
    assert {p["code"] for p in properties(found[f"错误 ({len(errors)})"])} == set(errors["code"])
    assert {p["code"] for p in properties(found[f"警告 ({len(warnings)})"])} == set(warnings["code"])
    messages = {p["message_zh"] for p in properties(found[f"错误 ({len(errors)})"])}
    assert messages == set(errors["message_zh"])


def test_coverage_map_shows_shares_served_ground_and_areas_left_out(sample):
    net = network.build(sample.roads)
    near = coverage.nearest_station(sample.addresses, sample.stations, net)
    per = coverage.per_grid(near, sample.grids, stations=sample.stations, levels=["grid2"])
    areas = coverage.service_areas(sample.stations, net, circles={15: 1000})
    left = coverage.uncovered_areas(near, minutes=15)
    m = maps.explore_coverage(per, areas=areas, uncovered=left)
    found = layers(m)
    shares = {p["code"]: p["share_15min"] for p in properties(found["15分钟生活圈覆盖率 · 二级网格"])}
    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    within = near.assign(ok=near["distance_m"] <= 1000).sjoin(grid2[["code", "geometry"]], predicate="within")
    expected = (within["households"] * within["ok"]).groupby(within["code"]).sum() / \
        within.groupby("code")["households"].sum()
    assert shares == pytest.approx(expected.to_dict(), abs=1e-9)
    served = gpd.GeoDataFrame.from_features(found["服务范围"].data["features"], crs=4490)
    union = shapely.union_all(areas.geometry.to_numpy())
    metric = gridgeo.crs.metric_crs(served)
    assert served.to_crs(metric).area.sum() == pytest.approx(
        gpd.GeoSeries([union], crs=4490).to_crs(metric).area.iloc[0], rel=0.01)
    assert len(found["未覆盖区域"].data["features"]) == len(left)


def test_plan_diff_side_by_side_marks_what_changes(sample):
    state = gridgeo.plan.start(sample.grids, "350582106201", roads=sample.roads, addresses=sample.addresses)
    pair = gridgeo.plan.neighbours(state).iloc[0]
    merged = gridgeo.plan.merge(state, [pair["a"], pair["b"]])
    dual = maps.explore_plan(state, merged)
    before = {p["code"]: p["change_label"] for p in properties(layers(dual.m1)["规划前"])}
    after = {p["code"]: p["change_label"] for p in properties(layers(dual.m2)["规划后"])}
    # independently: the units whose polygon differs after the merge
    old = state.to_grids().set_index("code").geometry
    new = merged.to_grids().set_index("code").geometry
    grid2 = [c for c in old.index if len(c) == 16]
    changed = {c for c in grid2 if c not in new.index or not shapely.equals(old[c], new[c])}
    assert changed == {pair["a"], pair["b"]}
    assert {c for c, label in before.items() if label != "未变"} == changed
    assert {c for c, label in after.items() if label != "未变"} == changed & set(new.index)
    assert set(after.values()) == {"未变", "合并"}


# --- offline -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_maps(sample, figures):
    state = gridgeo.plan.start(sample.grids, "350582106201", roads=sample.roads, addresses=sample.addresses)
    pair = gridgeo.plan.neighbours(state).iloc[0]
    grids = maps.explore_grids(figures, levels=["town", "village", "grid2"], column="households", offline=True)
    return {
        "grids": maps.explore_stations(sample.stations, m=grids),
        "plan": maps.explore_plan(state, gridgeo.plan.merge(state, [pair["a"], pair["b"]]), offline=True),
        "explore": maps.offline(figures[figures["level"] == "grid2"].explore(column="households", tiles=None)),
        # a categorical column: geopandas' legend loads jQuery UI from code.jquery.com to be draggable
        "categories": maps.offline(sample.grids[sample.grids["level"] == "grid2"].explore(column="parent",
                                                                                           tiles=None)),
    }


def test_offline_html_references_nothing_outside(offline_maps, sample, tmp_path):
    online = maps.explore_grids(sample.grids, levels=["village"]).get_root().render()
    assert external(References(online).urls)  # folium's default: CDN links (what offline removes)
    for name, m in offline_maps.items():
        path = tmp_path / f"{name}.html"
        m.save(str(path))
        text = path.read_text("utf-8")
        refs = References(text).urls
        assert not external(refs), (name, external(refs))
        assert "L.map(" in text and text.count("<script>") >= 2  # Leaflet inline, then the map


def test_offline_maps_draw_in_chromium_with_no_request(offline_maps, open_page, sample):
    grids_html = offline_maps["grids"].get_root().render()
    page, watch = show(open_page, grids_html, "offline-grids")
    assert len(watch.requests) == 1  # the page itself, nothing else
    name = offline_maps["grids"].get_name()
    drawn = page.evaluate(f"Object.values({name}._layers).filter((l) => l.feature).length")
    # every unit's line, level-2 grids filled once more, every station
    expected = sample.grids["level"].isin(["town", "village", "grid2"]).sum() + \
        (sample.grids["level"] == "grid2").sum() + len(sample.stations)
    assert drawn == expected
    legend = page.inner_text(".gridgeo-legend")
    assert "户数 · 二级网格" in legend and "二级网格服务站" in legend

    dual = offline_maps["plan"]
    page, watch = show(open_page, dual.get_root().render(), "offline-plan")
    assert len(watch.requests) == 1
    left, right = dual.m1.get_name(), dual.m2.get_name()
    page.evaluate(f"{left}.setView([24.80, 118.45], 15, {{animate: false}})")  # the two move together
    assert page.evaluate(f"[{right}.getCenter().lat, {right}.getCenter().lng, {right}.getZoom()]") == \
        pytest.approx([24.80, 118.45, 15], abs=1e-6)

    explored = offline_maps["explore"]  # geopandas' own explore(), made offline afterwards
    page, watch = show(open_page, explored.get_root().render(), "offline-explore")
    assert len(watch.requests) == 1
    drawn = page.evaluate(f"Object.values({explored.get_name()}._layers).filter((l) => l.feature).length")
    assert drawn == (sample.grids["level"] == "grid2").sum()

    categories = offline_maps["categories"]
    page, watch = show(open_page, categories.get_root().render(), "offline-explore-categories")
    assert len(watch.requests) == 1
    grid1 = sample.grids.loc[sample.grids["level"] == "grid2", "parent"].nunique()
    assert page.locator(".maplegend li").count() == grid1  # the legend is there, one entry per category


def test_offline_refuses_a_plugin_it_cannot_serve(sample):
    import folium.plugins

    m = maps.explore_grids(sample.grids, levels=["town"], offline=True)
    folium.plugins.MarkerCluster().add_to(m)
    with pytest.raises(ValueError, match="no local copy of .*markercluster"):
        m.get_root().render()


# --- the service's tiles in a notebook map ------------------------------------------------------


def test_service_tiles_in_a_folium_map_are_clickable(server, open_page, sample):
    grid2 = sample.grids[sample.grids["level"] == "grid2"]
    from gridgeo.labels import label_points

    point = label_points(grid2).sort_values("radius_m").iloc[-1]
    m = maps.explore_grids(sample.grids, levels=["town"], offline=True)
    maps.add_service_tiles(m, server.url, layers=["grid2"])
    html = m.get_root().render()
    assert not external(References(html).urls)
    page, watch = show(open_page, html, "service-tiles", origin=server.url)  # same origin as the tiles
    name = m.get_name()
    page.evaluate(f"{name}.setView([{point.geometry.y}, {point.geometry.x}], 15, {{animate: false}})")
    page.wait_for_function("() => performance.getEntriesByType('resource')"
                           ".filter((e) => e.name.includes('/tiles/grid2/')).length > 0")
    page.wait_for_timeout(800)
    x, y = page.evaluate(f"(() => {{ const p = {name}.latLngToContainerPoint([{point.geometry.y}, "
                         f"{point.geometry.x}]); return [p.x, p.y]; }})()")
    page.mouse.click(x, y)  # throws "fakeStop is not a function" without the inlined fix
    page.wait_for_selector(".leaflet-popup-content")
    screenshot(page, "folium-service-tiles-clicked.png")
    assert point["code"] in page.inner_text(".leaflet-popup-content")
    assert all(urlsplit(u).hostname == "127.0.0.1" for u in watch.requests)


# --- class breaks: the vectorised Fisher-Jenks against mapclassify's own --------------------------


@pytest.mark.filterwarnings("ignore:Numba not installed")
@pytest.mark.parametrize("whole_matrix", [True, False])
def test_fisher_jenks_breaks_are_mapclassifys(whole_matrix, monkeypatch):
    import mapclassify

    from gridgeo import _mapstyle

    monkeypatch.setattr(_mapstyle, "_WHOLE_MATRIX", 10**9 if whole_matrix else 0)
    rng = np.random.default_rng(20)
    for trial in range(24):
        n = int(rng.integers(3, 260))
        x = [rng.random(n), rng.integers(0, 25, n).astype(float),  # counts: many ties
             np.where(rng.random(n) < 0.5, 1.0, np.round(rng.random(n), 2)),  # rates: many at 100 %
             rng.lognormal(3, 1, n)][trial % 4]
        k = min(int(rng.integers(2, 8)), len(np.unique(x)))
        if k < 2:
            continue
        theirs = mapclassify.FisherJenks(x, k=k)
        bins, counts = _mapstyle.breaks(x, scheme="fisher_jenks", k=k)
        np.testing.assert_array_equal(bins, theirs.bins, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(counts, theirs.counts, err_msg=f"trial {trial}")


def _trial_values(rng, trial):
    n = int(rng.integers(2, 3000))
    return [rng.random(n), rng.integers(0, 25, n).astype(float),  # counts: many ties
            np.where(rng.random(n) < 0.5, 1.0, np.round(rng.random(n), 2)),  # rates: many at 100 %
            rng.lognormal(3, 1, n), rng.normal(-50, 30, n), np.round(rng.random(n) * 1e6) / 7][trial % 6]


@pytest.mark.filterwarnings("ignore:Not enough unique values")
@pytest.mark.parametrize("scheme, theirs", [("quantiles", "Quantiles"), ("equal_interval", "EqualInterval")])
def test_quantile_and_equal_interval_breaks_are_mapclassifys(scheme, theirs):
    """gridgeo computes these two schemes itself (mapclassify's import costs a worker 117 MB): the bins
    and counts are mapclassify's, bit for bit, on random, tied and negative values and on libpysal's
    Columbus and Baltimore data (nobody here made them)."""
    import geopandas as gpd
    import libpysal
    import mapclassify

    from gridgeo import _mapstyle

    rng = np.random.default_rng(21)
    cases = [_trial_values(rng, trial) for trial in range(60)]
    for name, columns in (("columbus", ["HOVAL", "INC", "CRIME", "OPEN", "PLUMB", "DISCBD"]),
                          ("baltim", ["PRICE", "NROOM", "AGE", "LOTSZ", "SQFT"])):
        frame = gpd.read_file(libpysal.examples.get_path(f"{name}.shp"))
        cases += [frame[c].to_numpy(dtype=float) for c in columns]
    compared = 0
    for trial, x in enumerate(cases):
        for k in (2, 3, 5, 7, 9):
            k = min(k, len(np.unique(x)))
            if k < 2:
                continue
            reference = getattr(mapclassify, theirs)(x, k=k)
            bins, counts = _mapstyle.breaks(x, scheme=scheme, k=k)
            np.testing.assert_array_equal(bins, reference.bins, err_msg=f"case {trial}, k={k}")
            np.testing.assert_array_equal(counts, reference.counts, err_msg=f"case {trial}, k={k}")
            compared += 1
    assert compared > 300


def test_the_default_classes_import_no_mapclassify():
    """The one map's classes (quantiles, equal interval, Fisher-Jenks) leave mapclassify, scipy.stats and
    scikit-learn unimported in a worker; natural breaks import it."""
    code = ("import sys, numpy as np; from gridgeo import _mapstyle; x = np.random.default_rng(1).random(500)\n"
            "for s in ('quantiles', 'equal_interval', 'fisher_jenks'): _mapstyle.breaks(x, scheme=s, k=5)\n"
            "print(sorted(m for m in ('mapclassify', 'scipy.stats', 'sklearn') if m in sys.modules))\n"
            "_mapstyle.breaks(x, scheme='natural_breaks', k=5); print('mapclassify' in sys.modules)")
    said = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert said.stdout.split("\n")[:2] == ["[]", "True"]


@pytest.mark.parametrize("column", ["households", "ev_closure_rate", "ev_backlog"])
def test_one_class_takes_the_ramps_last_colour_as_the_page_does(column):
    """Every value alike makes one class; the print and the one map (layers.js ``ramp``: k <= 1 gives
    the last colour) colour it alike: a 100 % closure rate everywhere was red on the print, green
    on the page."""
    from gridgeo import _mapstyle

    ramp = _mapstyle.style()["ramps"][_mapstyle.field_style(column).get("ramp", _mapstyle._ramp_for(column))]
    colours, rows = _mapstyle.fills(pd.Series([1.0, 1.0, 1.0]), column=column, scheme="fisher_jenks", k=5)
    assert set(colours) == {ramp[-1]} and [r[0] for r in rows] == [ramp[-1]] and rows[0][2] == 3
    js = (Path(__file__).resolve().parent.parent / "api/static/app/layers.js").read_text("utf-8")
    assert "if (k <= 1) return [colours[colours.length - 1]];" in js  # the page's rule, stated there


def test_the_event_indicators_are_named_as_the_one_map_names_them():
    """The print, the Excel export and the page call each event indicator alike: gridgeo.events.INDICATOR_NAMES
    (Chinese, English) against the words of events-words.js, read in both languages."""
    from gridgeo import events as gevents

    js = (Path(__file__).resolve().parent.parent / "api/static/app/events-words.js").read_text("utf-8")
    blocks = dict(re.findall(r"Object\.assign\(STRINGS\.(zh|en), \{(.*?)\n\}\);", js, flags=re.S))
    assert set(blocks) == {"zh", "en"}
    words = {lang: dict(re.findall(r"\bev_(\w+): '([^']*)'", blocks[lang])) for lang in blocks}
    assert set(words["zh"]) == set(words["en"]) == set(gevents.INDICATORS)
    assert {k: (words["zh"][k], words["en"][k]) for k in gevents.INDICATORS} == gevents.INDICATOR_NAMES
