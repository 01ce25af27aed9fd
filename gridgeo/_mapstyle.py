"""The one map's look, shared by the page, the folium maps and the printed map.

One style file, ``api/static/app/style.json``, says the colour of each level's
line, each station kind, each figure's ramp and each class; this module reads it
and turns a figure's values into the page's classes (mapclassify breaks, the
ramp's colours) and the legend's rows, in Chinese or English.
"""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from gridgeo.events import INDICATOR_NAMES, MAP_FIELD
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme

STATIC = Path(__file__).resolve().parent.parent / "api" / "static"
STYLE_FILE = STATIC / "app" / "style.json"
"""The style the page and these maps share."""

SCHEMES = {"quantiles": "Quantiles", "natural_breaks": "NaturalBreaks", "fisher_jenks": "FisherJenks",
           "equal_interval": "EqualInterval"}
"""The class schemes of a choropleth, as the page and ``/stats/{level}/breaks`` name them: mapclassify's."""

_NO_DATA = {"zh": "无数据", "en": "no data"}


@functools.cache
def style() -> dict:
    """The one map's style: colours and lines per level, station kind, figure and class.

    Examples
    --------
    >>> style()["levels"]["grid2"]["color"]
    '#9fb6d6'
    """
    return json.loads(STYLE_FILE.read_text("utf-8"))


def fills(values: pd.Series, *, column: str, scheme: str, k: int, language: str = "zh", reference=None):
    """Fill colours for `values`, and the legend's rows: (colour, text, count, shape).

    Numbers fall in the classes of :func:`breaks` (closed above, as mapclassify's)
    made from `reference` (default `values` themselves: pass every unit of the
    level to class a part of it as the whole level is classed on the page),
    coloured along the figure's ramp; ``band`` by its three categories; a missing
    value (a suppressed or unknown figure) in the style's no-data colour. The
    counts are those of `values`.

    Examples
    --------
    >>> colours, rows = fills(pd.Series([1.0, 2.0, 3.0, None]), column="households", scheme="quantiles", k=3)
    >>> [r[1:3] for r in rows]
    [('1 – 1.7', 1), ('1.7 – 2.3', 1), ('2.3 – 3', 1), ('无数据', 1)]
    """
    s = style()
    if column == "band":
        bands = s["band"]
        key = "label_en" if language == "en" else "label"
        colours = values.astype(object).map({b: v["color"] for b, v in bands.items()}).fillna(s["no_data"])
        rows = [(v["color"], v[key], int((values.astype(object) == b).sum()), "box") for b, v in bands.items()]
    else:
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        known = np.isfinite(numbers)
        classed = numbers[known] if reference is None else \
            pd.to_numeric(pd.Series(reference), errors="coerce").to_numpy(dtype=float)
        classed = classed[np.isfinite(classed)]
        bins, _ = breaks(classed, scheme=scheme, k=k)
        ramp = s["ramps"][field_style(column).get("ramp", _ramp_for(column))]
        # k colours spread along the ramp, its ends included; one class (every value alike) takes the
        # ramp's last colour, as the one map's legend does (layers.js ramp)
        palette = np.array([ramp[-1]] if len(bins) == 1 else
                           [ramp[round(i * (len(ramp) - 1) / (len(bins) - 1))] for i in range(len(bins))])
        cls = np.minimum(np.searchsorted(bins, numbers, side="left"), len(bins) - 1)
        colours = pd.Series(np.where(known, palette[cls] if len(bins) else s["no_data"], s["no_data"]),
                            index=values.index)
        counts = np.bincount(cls[known], minlength=len(bins)) if len(bins) else []
        low = float(np.min(classed)) if len(classed) else 0.0
        rows = []
        for colour, upper, n in zip(palette, bins, counts):
            rows.append((colour, f"{number(low, column)} – {number(upper, column)}", int(n), "box"))
            low = upper
    missing = int(pd.isna(values.astype(object)).sum()) if column == "band" else int((~known).sum())
    if missing:
        rows.append((s["no_data"], _NO_DATA.get(language, _NO_DATA["zh"]), missing, "box"))
    return colours, rows


def breaks(values, *, scheme: str, k: int):
    """Class upper bounds and counts by a mapclassify scheme (as ``/stats/{level}/breaks``).

    The classes are mapclassify's, computed as mapclassify computes them (its
    float operations in its order: the answers are equal, as tests/test_maps.py
    checks on random, tied and real values), with mapclassify itself imported
    only for ``natural_breaks`` (k-means):

    - ``quantiles``: scipy's ``scoreatpercentile`` of the sorted values at
      ``100/k, 200/k ...`` per cent, equal ones merged (:func:`_quantiles`);
    - ``equal_interval``: ``k`` equal widths from the least to the largest value;
    - ``fisher_jenks``: mapclassify's algorithm (the same float32 sums, the same
      choice among equal costs: :func:`_fisher_jenks`) with its inner loops as
      numpy operations: without numba, mapclassify's pure-Python loops take
      seconds for the 1,736 level-2 grids of a city, which a filter change on the
      one map cannot wait for;
    - counts as mapclassify's ``bin1d``: classes closed above.

    Importing mapclassify (with scipy.stats, scikit-learn and matplotlib) costs a
    serving worker about 1.8 s and 117 MB of resident memory; the one map's
    default scheme (quantiles) no longer pays them.

    Examples
    --------
    >>> bins, counts = breaks(np.array([1.0, 2, 2, 3, 10, 11, 30]), scheme="fisher_jenks", k=3)
    >>> bins.tolist(), counts.tolist()
    ([3.0, 11.0, 30.0], [4, 2, 1])
    >>> bins, counts = breaks(np.arange(1000.0), scheme="quantiles", k=4)
    >>> bins.tolist(), counts.tolist()
    ([249.75, 499.5, 749.25, 999.0], [250, 250, 250, 250])
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme should be one of {list(SCHEMES)}, got {scheme!r}")
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.zeros(0), np.zeros(0, dtype=int)
    k = min(k, len(np.unique(values)))
    if k < 2:
        return np.array([values.max()]), np.array([len(values)])
    if scheme == "natural_breaks":
        import mapclassify

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Numba not installed")
            classes = mapclassify.NaturalBreaks(values, k=k)
        return np.asarray(classes.bins, dtype=float), np.asarray(classes.counts)
    bins = {"fisher_jenks": _fisher_jenks, "quantiles": _quantiles, "equal_interval": _equal_interval}[scheme](values, k)
    return bins, _counts(values, bins)


def _quantiles(values: np.ndarray, k: int) -> np.ndarray:
    """mapclassify's ``quantile``: scipy's ``scoreatpercentile`` (fractional interpolation) at each
    of ``arange(100/k, 100 + 100/k, 100/k)`` per cent (the last at most 100), equal bounds merged."""
    w = 100.0 / k
    per = np.arange(w, 100 + w, w)
    if per[-1] > 100.0:
        per[-1] = 100.0
    ordered = np.sort(values)
    out = np.empty(len(per))
    for n, p in enumerate(per):
        idx = p / 100.0 * (len(ordered) - 1)
        i = int(idx)
        if i == idx:
            out[n] = ordered[i]
        else:
            low, high = (i + 1) - idx, idx - i
            out[n] = (ordered[i] * low + ordered[i + 1] * high) / (low + high)
    return np.unique(out)


def _equal_interval(values: np.ndarray, k: int) -> np.ndarray:
    """mapclassify's ``EqualInterval``: ``k`` classes of equal width, the last closed at the largest value."""
    largest, least = values.max(), values.min()
    width = (largest - least) / k
    cuts = np.arange(least + width, largest + width, width)
    if len(cuts) > k:  # arange can overshoot by one
        cuts = cuts[0:k]
    cuts[-1] = largest
    return cuts


def _counts(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """mapclassify's ``bin1d`` counts: a value goes to the first class whose upper bound it does not
    exceed (classes closed above); one above every bound counts in the first, as there."""
    ids = np.searchsorted(bins, values, side="left")
    ids[ids == len(bins)] = 0
    return np.bincount(ids, minlength=len(bins))


_WHOLE_MATRIX = 4096
"""Up to this many values, :func:`_fisher_jenks` works on whole n x n float32 matrices (64 MB at most)."""


def _fisher_jenks(values: np.ndarray, k: int) -> np.ndarray:
    """mapclassify's ``_fisher_jenks_means`` (2.x) with its loops as numpy operations.

    ``cost[l, j]`` is the least within-class sum of squares of the first ``l``
    sorted values in ``j`` classes; mapclassify builds it row by row, the cost
    of the values ``l-m+1 .. l`` kept as float32 running sums taken from ``l``
    down, and keeps the last of equal minima (it replaces its best on ``>=``).
    Here those running sums are one cumulative sum per row of an n x n matrix
    (the same float32 additions in the same order), and each class count is
    one column of ``cost`` computed from the previous one at once; beyond
    :data:`_WHOLE_MATRIX` values, one row at a time, to bound the memory.
    """
    x = np.sort(values).astype("f8")
    n = len(x)
    x32 = x.astype(np.float32)
    cost = np.zeros((n + 1, k + 1), dtype=np.float32)
    split = np.zeros((n + 1, k + 1), dtype=np.int64)
    split[1, 1:] = 1
    cost[2:, 1:] = np.inf
    if n <= _WHOLE_MATRIX:
        _costs_by_column(x32, cost, split, k)
    else:
        _costs_by_row(x32, cost, split, k)
    out = np.zeros(k + 1, dtype=x.dtype)
    out[k] = x[n - 1]
    out[0] = x[0]
    row = n
    for j in range(k, 1, -1):
        pivot = split[row, j]
        out[j - 1] = x[int(pivot - 2)]
        row = int(pivot - 1)
    return np.delete(out, 0)


def _costs_by_column(x32, cost, split, k):
    from numpy.lib.stride_tricks import sliding_window_view

    n = len(x32)
    # row r holds l = r + 1 values; column c, m = c + 1 values in the last class, the value added at m
    # being x[r - c] (none once c > r): the matrix x[r - c] is a sliding window over the values, reversed
    padded = np.concatenate([np.zeros(n - 1, dtype=np.float32), x32])
    run = sliding_window_view(padded, n)[:, ::-1]
    s1 = np.cumsum(run, axis=1, dtype=np.float32)  # sequential along each row, as mapclassify's loop
    v = np.multiply(run, run)
    np.cumsum(v, axis=1, dtype=np.float32, out=v)    # s2, in place: the same additions, no more memory
    np.multiply(s1, s1, out=s1)
    np.divide(s1, np.arange(1, n + 1, dtype=np.float32)[None, :], out=s1)
    np.subtract(v, s1, out=v)                        # v = s2 - s1 * s1 / m
    del s1
    v = np.ascontiguousarray(v[:, ::-1])             # columns reversed: c' = n - 1 - c
    rows = np.arange(1, n)                           # l = 2 .. n
    cost[2:, 1] = v[rows, n - 1 - rows]              # one class: m = l
    split[2:, 1] = 1
    before = np.full(2 * n - 1, np.inf, dtype=np.float32)
    candidates = np.empty_like(v)
    for j in range(2, k + 1):
        # the best of j-1 classes over the first l - m values (i4 = r - c, from 1 to l - 1; never for c >= r)
        before[n:] = cost[1:n, j - 1]
        if j == k:  # the last class count: only all n values are asked for (the breaks read row n alone)
            last = v[n - 1] + before[n - 1:]
            first = int(np.argmin(last))
            split[n, j] = n - (n - 1 - first)
            cost[n, j] = last[first]
            break
        np.add(v, sliding_window_view(before, n), out=candidates)
        first = np.argmin(candidates[1:], axis=1)     # the first minimum reversed: the last in m
        m = n - 1 - first                             # m counted from 0
        split[2:, j] = rows + 1 - m                   # i3 = l - m
        cost[2:, j] = candidates[1:][rows - 1, first]


def _costs_by_row(x32, cost, split, k):
    n = len(x32)
    weights = np.arange(1, n + 1, dtype=np.float32)
    columns = np.arange(k - 1)
    for last in range(2, n + 1):
        run = x32[last - 1::-1]                       # values last, last-1, ..., 1 (1-based)
        s1 = np.cumsum(run, dtype=np.float32)
        s2 = np.cumsum(run * run, dtype=np.float32)
        v = s2 - (s1 * s1) / weights[:last]
        # m = 1 .. last-1 (rows) for j = 2 .. k (columns): the cost of values m..last plus the best of j-1
        # classes over the values before them (i4 = last-m: rows last-1 down to 1)
        candidates = v[:-1, None] + cost[last - 1:0:-1, 1:k]
        m = last - 2 - np.argmin(candidates[::-1], axis=0)  # the last of the minima (m counted from 0)
        split[last, 2:] = last - m                           # i3 of that m
        cost[last, 2:] = candidates[m, columns]
        split[last, 1] = 1
        cost[last, 1] = v[-1]


def _ramp_for(column):
    return "RdYlGn" if column.startswith("share_") else "YlOrRd"


def field_style(column: str) -> dict:
    """A figure's entry in the style (ramp, format): ``fields``, or ``event_fields`` for an event
    indicator (``ev_closure_rate``: :data:`gridgeo.events.MAP_FIELD`); empty for one it does not name.

    >>> field_style("ev_closure_rate")["format"], field_style("households")["ramp"]
    ('pct', 'YlOrRd')
    """
    s = style()
    if column.startswith(MAP_FIELD):
        return s["event_fields"].get(column[len(MAP_FIELD):], {})
    return s["fields"].get(column, {})


def number(value, column: str) -> str:
    """A figure as the legend writes it: shares and event rates in per cent, counts with thousands separators.

    >>> number(0.8512, "share_15min"), number(12345.0, "households"), number(2.25, "events_per_1000")
    ('85.1%', '12,345', '2.2')
    >>> number(0.5, "ev_closure_rate")
    '50.0%'
    """
    if column.startswith("share_") or (column.startswith(MAP_FIELD) and field_style(column).get("format") == "pct"):
        return f"{value * 100:.1f}%"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def field_label(column: str, language: str = "zh") -> str:
    """What a figure is called on the page (``households`` → 户数 / households).

    >>> field_label("share_10min"), field_label("share_10min", "en")
    ('10分钟生活圈覆盖率', 'households within 10 minutes')
    """
    fields = style()["fields"]
    if column in fields:
        return fields[column]["label_en" if language == "en" else "label"]
    if column.startswith(MAP_FIELD) and column[len(MAP_FIELD):] in INDICATOR_NAMES:
        return INDICATOR_NAMES[column[len(MAP_FIELD):]][1 if language == "en" else 0]
    if column.startswith("share_"):
        minutes = column[6:-3]
        return f"households within {minutes} minutes" if language == "en" else f"{minutes}分钟生活圈覆盖率"
    return column


def level_label(level: str, language: str = "zh", scheme: CodeScheme = DEFAULT_SCHEME) -> str:
    """What a level is called in `scheme` (``grid2`` → 二级网格 / level-2 grid); a name the
    scheme does not know is written as it is.

    >>> level_label("grid2"), level_label("grid2", "en")
    ('二级网格', 'level-2 grid')
    """
    if level == "stations":
        return "stations" if language == "en" else "服务站点"
    try:
        lv = scheme.level(level)
    except KeyError:
        return level
    return (lv.label_en if language == "en" else lv.label) or level
