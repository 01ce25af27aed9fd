"""Print and export: the printed map (gridgeo.printing), the Excel workbook (gridgeo.workbook), over HTTP.

Checked against what is computed here, not by the code under test: the
legend's classes by mapclassify on the figures; the north arrow by PROJ's
meridian convergence; the scale bar by the map's own axes; the names by a
brute-force overlap test of their boxes; the PDF's text read back with pypdf;
the workbook's cells read back with openpyxl against ``/stats``.
"""

from __future__ import annotations

import io
import itertools
import math
import warnings
from urllib.parse import quote

import mapclassify
import numpy as np
import openpyxl
import pandas as pd
import pyproj
import pypdf
import pytest
from PIL import Image

import gridgeo
from gridgeo import printing
from gridgeo.printing import PrintError, print_map
from gridgeo.workbook import FIGURE_NAMES, figures_workbook


@pytest.fixture(scope="module")
def figures(sample):
    return gridgeo.stats.figures(sample.grids, addresses=sample.addresses, events=sample.events)


def _text(pdf: bytes) -> str:
    return "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def _classes(values, k=5):
    """The legend rows a choropleth of `values` must show: mapclassify's Fisher-Jenks, here."""
    values = np.asarray(values, dtype=float)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Numba not installed")
        c = mapclassify.FisherJenks(values, k=min(k, len(np.unique(values))))
    lows = [values.min(), *c.bins[:-1]]
    return [(f"{lo:,.0f} – {hi:,.0f}", int(n)) for lo, hi, n in zip(lows, c.bins, c.counts)]


# --- the printed map --------------------------------------------------------------------------------


def test_the_legend_states_the_classes_and_counts_of_the_units_shown(sample, figures):
    printed = print_map(sample.grids, level="grid2", figures=figures, field="households", version=7, min_count=10)
    shown = figures[figures["level"] == "grid2"]["households"]
    expected = _classes(shown)
    assert [(text, n) for _, text, n, _ in printed.legend] == expected
    text = _text(printed.pdf())
    for label, n in expected:
        assert f"{label}  ({n:,})" in text
    town = sample.grids.loc[sample.grids["level"] == "town", "name"].iloc[0]
    assert f"{town} · 户数" in text  # the title names the place: one town fills the view
    assert "数据版本 7" in text and "北京时间" in text and "少于 10 户的单元不公布指标" in text
    assert "北" in text and "公里" in text  # north arrow and scale bar


def test_the_png_is_an_a4_sheet_with_the_legend_colours_in_it(sample, figures):
    printed = print_map(sample.grids, level="village", figures=figures, field="households")
    image = Image.open(io.BytesIO(printed.png(dpi=100))).convert("RGB")
    assert image.size == (int(297 / 25.4 * 100), int(210 / 25.4 * 100))  # matplotlib rounds down
    pixels = np.asarray(image)
    legend = pixels[:, int(pixels.shape[1] * 0.75):]  # the legend's column, right of the map
    for colour, _, n, _ in printed.legend:
        rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
        assert (np.abs(legend.astype(int) - rgb).sum(axis=2) == 0).sum() > 100, colour


def test_names_never_overlap_and_stay_inside_the_map(sample, figures):
    printed = print_map(sample.grids, level="grid2", figures=figures, field="households")
    boxes = printed.labels[["x0", "y0", "x1", "y1"]].to_numpy()
    assert len(boxes) >= 20
    for a, b in itertools.combinations(boxes, 2):  # brute force: every pair apart
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    ax = printed.figure.axes[0]
    frame = ax.get_window_extent().transformed(printed.figure.dpi_scale_trans.inverted())
    assert (boxes[:, 0] >= frame.x0 * 72 - 1e-6).all() and (boxes[:, 2] <= frame.x1 * 72 + 1e-6).all()
    # the largest level-1 grid, the most important name, is written
    grid1 = sample.grids[sample.grids["level"] == "grid1"]
    largest = grid1.loc[grid1.to_crs(printed.crs).area.idxmax(), "code"]
    assert largest in set(printed.labels["code"])


def test_the_scale_bar_is_a_round_length_true_to_the_map(sample):
    printed = print_map(sample.grids, level="village")
    ax = printed.figure.axes[0]
    x0, x1 = ax.get_xlim()
    width_points = ax.get_window_extent().width / printed.figure.dpi * 72
    assert printed.scale_points == pytest.approx(printed.scale_m / (x1 - x0) * width_points, rel=1e-9)
    mantissa = printed.scale_m / 10 ** math.floor(math.log10(printed.scale_m))
    assert mantissa in (1, 2, 5) and (x1 - x0) / 10 < printed.scale_m <= (x1 - x0) / 5


def test_north_points_to_true_north_by_the_meridian_convergence():
    """East of a Gauss-Krüger zone's central meridian, true north lies west of grid north by
    the convergence, which PROJ computes."""
    zone = pyproj.CRS.from_epsg(4527)  # CGCS2000 3-degree GK CM 117E
    lon, lat = 118.6, 24.8
    x, y = pyproj.Transformer.from_crs(4490, zone, always_xy=True).transform(lon, lat)
    gamma = pyproj.Proj(zone).get_factors(lon, lat).meridian_convergence
    assert gamma > 0.5
    assert printing._north(zone, (x - 100, y - 100, x + 100, y + 100)) == pytest.approx(-gamma, abs=0.01)


def test_a_unit_is_printed_with_the_units_under_it_in_english(sample, figures):
    village = sample.grids[sample.grids["level"] == "village"].iloc[0]
    printed = print_map(sample.grids, level="grid2", figures=figures, field="band", unit=village["code"],
                        language="en")
    children = figures[(figures["level"] == "grid2") & (figures["parent"].str.startswith(village["code"]))]
    counts = children["band"].value_counts()
    assert {text: n for _, text, n, _ in printed.legend} == {
        "under": counts.get("under", 0), "within": counts.get("within", 0), "over": counts.get("over", 0)}
    text = _text(printed.pdf())
    assert village["name"] in text and "households band" in text and "Beijing time" in text


def test_a_print_the_data_cannot_make_says_so_in_both_languages(sample):
    with pytest.raises(PrintError, match="没有编码为 9 的单元 — no unit with code '9'"):
        print_map(sample.grids, level="grid2", unit="9")
    with pytest.raises(PrintError, match="视图中没有.*the view holds no unit"):
        print_map(sample.grids, level="grid2", bbox=(100.0, 30.0, 100.1, 30.1))


# --- the workbook ------------------------------------------------------------------------------------


def test_the_workbook_holds_every_figure_unrounded_with_codes_as_text(figures):
    chosen = figures[figures["level"] == "grid2"]
    book = openpyxl.load_workbook(io.BytesIO(figures_workbook(chosen, title="内坑镇", version=3, min_count=10)))
    sheet = book["指标 Figures"]
    heads = [c.value for c in sheet[1]]
    rows = pd.DataFrame([[c.value for c in row] for row in sheet.iter_rows(min_row=2)], columns=heads)
    assert rows["编码 code"].tolist() == chosen.index.tolist()
    assert all(c.data_type == "s" for (c,) in sheet.iter_rows(min_row=2, max_col=1))
    for column in ("households", "addresses", "events", "households_per_worker", "events_per_1000"):
        head = " ".join(FIGURE_NAMES[column])
        expected = chosen[column].to_numpy(dtype=float)
        got = rows[head].to_numpy(dtype=float)
        assert np.allclose(got, expected, equal_nan=True, rtol=1e-14, atol=0), column  # the XML keeps ~15 digits
    about = dict(book["说明 About"].iter_rows(values_only=True))
    assert about["数据版本 data version"] == "3" and about["最小公开数 minimum count"] == 10


# --- over HTTP ---------------------------------------------------------------------------------------


def _sheet(body: bytes) -> pd.DataFrame:
    sheet = openpyxl.load_workbook(io.BytesIO(body))["指标 Figures"]
    heads = [c.value for c in sheet[1]]
    return pd.DataFrame([[c.value for c in row] for row in sheet.iter_rows(min_row=2)], columns=heads)


@pytest.mark.parametrize("role", ["viewer", None])
def test_the_excel_download_equals_stats(client, api_keys, sample, role):
    headers = {"X-API-Key": api_keys[role]} if role else {}
    town = sample.grids.loc[sample.grids["level"] == "town", "code"].iloc[0]
    stats = client.get(f"/stats/unit/{town}", headers=headers).json()
    r = client.get(f"/export/figures.xlsx?unit={town}", headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''" in r.headers["content-disposition"]
    rows = _sheet(r.content).set_index("编码 code")
    expected = [stats["figures"], *stats["children"]]
    assert rows.index.tolist() == [u["code"] for u in expected]
    for column in ("households", "population", "events", "households_per_worker", "share_15min"):
        head = " ".join(FIGURE_NAMES[column])
        for unit in expected:
            got, want = rows.at[unit["code"], head], unit[column]
            if want is None:  # withheld for the public: an empty cell
                assert pd.isna(got), (unit["code"], column)
            else:
                assert got == pytest.approx(want, abs=1e-4), (unit["code"], column)
    if role is None:
        assert any(u["suppressed"] for u in expected) or stats["min_count"] is not None


def test_the_printed_pdf_over_http_has_the_legend_of_stats(client, sample):
    town = sample.grids.loc[sample.grids["level"] == "town", "code"].iloc[0]
    r = client.get(f"/export/map.pdf?level=village&unit={town}&field=households")
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    values = [u["households"] for u in client.get("/stats/village").json()["units"]]
    text = _text(r.content)
    for label, n in _classes([v for v in values if v is not None]):
        assert f"{label}  ({n:,})" in text
    png = client.get("/export/map.png?level=grid2&field=share_15min&lang=en")
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("query", "status"), [
    ("unit=9", 404), ("bbox=1,2,3", 400), ("bbox=3,2,1,4", 422), ("bbox=0,0,0,0", 422), ("bbox=1,2,3,x", 400),
    ("bbox=100,30,100.1,30.1", 404), ("field=nothing", 422), ("level=nowhere", 404)])
def test_a_bad_print_request_is_a_problem_not_a_500(client, query, status):
    r = client.get(f"/export/map.png?{query}")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"


# --- an event indicator's choropleth (ev_*): the one map's values in the print and the workbook ------------


def _viewer(api_keys):
    return {"X-API-Key": api_keys["viewer"]}


@pytest.mark.parametrize("role", ["viewer", None])
def test_the_excel_of_an_event_choropleth_is_the_maps_values(client, api_keys, sample, role):
    """The workbook of ev_closure_rate holds, for every level-2 grid, the value /events/map colours it by for the
    same filter (a viewer: disputes in June; the public: every category, withheld values empty), and a pandas
    recount of the raw events agrees."""
    from test_events import reference

    from gridgeo import events as gev

    headers = _viewer(api_keys) if role else {}
    category = {"category": "dispute"} if role else {}
    shown = client.get("/events/map", headers=headers, params={
        "level": "grid2", "period": "month", "indicator": "closure_rate", "at": "2025-06", **category}).json()
    r = client.get("/export/figures.xlsx", headers=headers, params={
        "level": "grid2", "field": "ev_closure_rate", "period": "month", "at": "2025-06", **category})
    assert r.status_code == 200, r.text
    rows = _sheet(r.content).set_index("编码 code")
    values = rows["办结率 closure rate"]
    expected = shown["choropleth"]["values"]
    assert sorted(values.index) == sorted(expected) and len(values) == 128
    for code, want in expected.items():
        if want is None:
            assert pd.isna(values[code]), code
        else:
            assert values[code] == pytest.approx(want, abs=1e-4), code
    about = dict(openpyxl.load_workbook(io.BytesIO(r.content))["说明 About"].iter_rows(values_only=True))
    if role:
        assert about["标题 title"] == "二级网格 · 办结率 · 2025-06 · 矛盾纠纷"
        disputes = sample.events[sample.events["category"] == "dispute"]
        theirs = reference(disputes, sample.grids, "grid2", "M", gev.DEFAULT_TIME_LIMITS).xs(
            pd.Timestamp("2025-06-01"), level="period_start")["closure_rate"]
        np.testing.assert_allclose(values.loc[theirs.index].astype(float), theirs, atol=1e-9, equal_nan=True)
        assert "已隐去 suppressed" not in rows.columns
    else:
        assert about["标题 title"] == "二级网格 · 办结率 · 2025-06 · 全部类别" and about["最小公开数 minimum count"] == 10
        assert values.isna().any() and values.notna().any()
        assert rows.loc[values.isna() & rows["已隐去 suppressed"].astype(bool)].shape[0] > 0
    number_format = openpyxl.load_workbook(io.BytesIO(r.content))["指标 Figures"]["E2"].number_format
    assert number_format == "0.0%"


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_excel_of_an_event_choropleth_inside_a_unit_and_the_level_named(client, api_keys, sample, lang):
    """Inside a village: the level-2 grids in it, with /events/map's values, the village named in the title and
    the file's name (it was a 500: the route named the grids it had not read). Without a unit, the level is
    named as the code scheme calls it, not by its key."""
    village = sample.grids.loc[sample.grids["level"] == "village"].iloc[3]
    params = {"level": "grid2", "field": "ev_closure_rate", "period": "month", "at": "2025-06", "lang": lang}
    shown = client.get("/events/map", headers=_viewer(api_keys), params={
        "level": "grid2", "period": "month", "indicator": "closure_rate", "at": "2025-06"}).json()["choropleth"]
    r = client.get("/export/figures.xlsx", headers=_viewer(api_keys), params={**params, "unit": village["code"]})
    assert r.status_code == 200, r.text
    rows = _sheet(r.content).set_index("编码 code")
    inside = sorted(c for c in shown["values"] if c.startswith(village["code"]))
    assert sorted(rows.index) == inside and len(inside) > 1
    for code in inside:
        want, got = shown["values"][code], rows.loc[code].iloc[-1]
        assert (pd.isna(got) if want is None else got == pytest.approx(want, abs=1e-4)), code
    about = dict(openpyxl.load_workbook(io.BytesIO(r.content))["说明 About"].iter_rows(values_only=True))
    label = "closure rate" if lang == "en" else "办结率"
    assert about["标题 title"].startswith(f"{village['name']} · {label} · 2025-06")
    assert quote(village["name"]) in r.headers["content-disposition"]
    whole = client.get("/export/figures.xlsx", headers=_viewer(api_keys), params=params)
    title = dict(openpyxl.load_workbook(io.BytesIO(whole.content))["说明 About"].iter_rows(values_only=True))["标题 title"]
    assert title.startswith("level-2 grid · " if lang == "en" else "二级网格 · "), title
    plain = client.get("/export/figures.xlsx", params={"level": "village", "lang": lang})
    title = dict(openpyxl.load_workbook(io.BytesIO(plain.content))["说明 About"].iter_rows(values_only=True))["标题 title"]
    assert title == ("village / community" if lang == "en" else "村社"), title


def test_the_print_of_an_event_choropleth_has_its_legend_and_period(client, api_keys, sample):
    """The PDF of a viewer's ev_received of quarter 2 for roads: the title says the indicator, the quarter and
    the category, the legend the Fisher-Jenks classes (mapclassify, here) of /events/map's values, counts
    included."""
    params = {"level": "village", "field": "ev_received", "period": "quarter", "at": "2025-Q2", "category": "road",
              "lang": "zh"}
    r = client.get("/export/map.pdf", headers=_viewer(api_keys), params=params)
    assert r.status_code == 200, r.text
    text = _text(r.content)
    assert "受理事件 · 2025-Q2 · 道路设施" in text and "受理事件" in text
    shown = client.get("/events/map", headers=_viewer(api_keys), params={
        "level": "village", "period": "quarter", "indicator": "received", "at": "2025-Q2",
        "category": "road"}).json()["choropleth"]["values"]
    roads = sample.events[sample.events["category"] == "road"]
    villages = gpd_within(roads, sample.grids, "village")
    q2 = villages[(roads.loc[villages.index, "reported_at"] >= "2025-04-01") &
                  (roads.loc[villages.index, "reported_at"] < "2025-07-01")].value_counts()
    codes = sample.grids.loc[sample.grids["level"] == "village", "code"]
    assert {c: int(q2.get(c, 0)) for c in codes} == {c: int(v) for c, v in shown.items()}
    for label, n in _classes(list(shown.values())):
        assert f"{label}  ({n:,})" in text, label
    png = client.get("/export/map.png", headers=_viewer(api_keys), params={**params, "lang": "en"})
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_public_print_of_an_event_choropleth_withholds_and_says_so(client):
    r = client.get("/export/map.pdf", params={"level": "grid2", "field": "ev_closure_rate"})
    assert r.status_code == 200, r.text
    text = _text(r.content)
    assert "办结率 · 2025-12 · 全部类别" in text and "少于 10 件事件的数不公布" in text and "无数据" in text


def gpd_within(events, grids, level):
    """Each event's unit of `level`, by a covers-join (the independent reference)."""
    import geopandas as gpd

    units = grids.loc[grids["level"] == level, ["code", "geometry"]]
    return gpd.sjoin(events, units, predicate="within")["code"]


@pytest.mark.parametrize(("path", "query", "status"), [
    ("/export/map.png", "field=ev_happiness", 422),
    ("/export/map.png", "field=households&at=2025-06", 422),   # event parameters for another figure: refused
    ("/export/map.png", "category=fire", 422),
    ("/export/map.png", "field=ev_closure_rate&category=fire", 422),  # public: every category together
    ("/export/map.png", "field=ev_on_time", 422),  # not among the public indicators
    ("/export/map.png", "field=ev_closure_rate&period=quarter", 422),  # public: the heat map's months
    ("/export/map.png", "field=ev_closure_rate&at=2031-01", 422),
    ("/export/map.png", "field=ev_closure_rate&period=fortnight", 400),
    ("/export/figures.xlsx", "field=households", 422),
    ("/export/figures.xlsx", "field=ev_closure_rate&at=1999-01", 422),
    ("/export/figures.xlsx", "at=2025-06", 422),
])
def test_bad_event_exports_are_problems(client, path, query, status):
    r = client.get(f"{path}?{query}")
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
