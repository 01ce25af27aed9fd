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
        ramp = s["ramps"][s["fields"].get(column, {}).get("ramp", _ramp_for(column))]
        palette = np.array([ramp[round(i * (len(ramp) - 1) / max(len(bins) - 1, 1))] for i in range(len(bins))])
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
    """Class upper bounds and counts by a mapclassify scheme (as ``/stats/{level}/breaks``)."""
    import mapclassify

    if scheme not in SCHEMES:
        raise ValueError(f"scheme should be one of {list(SCHEMES)}, got {scheme!r}")
    if len(values) == 0:
        return np.zeros(0), np.zeros(0, dtype=int)
    k = min(k, len(np.unique(values)))
    if k < 2:
        return np.array([values.max()]), np.array([len(values)])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Numba not installed")  # the pure-Python Fisher-Jenks is fine here
        classes = getattr(mapclassify, SCHEMES[scheme])(values, k=k)
    return np.asarray(classes.bins, dtype=float), np.asarray(classes.counts)


def _ramp_for(column):
    return "RdYlGn" if column.startswith("share_") else "YlOrRd"


def number(value, column: str) -> str:
    """A figure as the legend writes it: shares in per cent, counts with thousands separators.

    >>> number(0.8512, "share_15min"), number(12345.0, "households"), number(2.25, "events_per_1000")
    ('85.1%', '12,345', '2.2')
    """
    if column.startswith("share_"):
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
