"""A map to print (作战图): the view on the one map, on paper, with what a printed map needs.

Leaders take maps to meetings; offices pin them to walls. :func:`print_map`
draws the units of a level coloured by a figure, as the one map does (the same
style file, classes and colours: :mod:`gridgeo._mapstyle`), on an A4 landscape
sheet with:

- a **title** (the place and the figure) and the level shown;
- a **legend**: each class's range and how many units fall in it, units without
  a published value, the station kinds drawn;
- a **scale bar** in metres, on the map's projected CGCS2000 system;
- a **north arrow** pointing to true north (grid north turned by the meridian
  convergence at the centre of the view);
- the **date** (Beijing time) and the **data version**, and the minimum count
  when figures of small units are withheld.

The rules, stated once:

- *What is drawn*: the units of `level` that intersect the view. The view is
  `bbox` (longitude/latitude) when given; otherwise the extent of `unit` and
  the units under it; otherwise all units of the level. Their colours are the
  page's: classes made from every unit of the level (as ``/stats/{level}/breaks``);
  the legend counts the units drawn.
- *Labels*: each unit's name at the centre of its largest inscribed circle
  (:func:`gridgeo.labels.label_points`), largest units first; a name is written
  only if its box overlaps no name already written and lies inside the map, so
  the most important names are kept and no two names collide. The units one
  level up are labelled first, in larger type.
- *Scale bar*: the longest of 1, 2 or 5 × 10ⁿ metres that is at most a fifth of
  the map's width, drawn in the projected system (Gauss-Krüger scale error is
  below 0.04 % in China: see :func:`gridgeo.crs.metric_crs`).
- *North*: the direction, at the centre of the view, of a short step due north
  projected into the map's system.

Examples
--------
>>> import gridgeo
>>> s = gridgeo.sample.load()
>>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
>>> printed = print_map(s.grids, level="village", figures=f, field="households")
>>> printed.png()[:8] == b"\\x89PNG\\r\\n\\x1a\\n", printed.pdf()[:5]
(True, b'%PDF-')
>>> sum(n for _, _, n, _ in printed.legend) == int((s.grids["level"] == "village").sum())
True
"""

from __future__ import annotations

import datetime as _dt
import io
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo import _mapstyle
from gridgeo import crs as gcrs
from gridgeo.events import MAP_FIELD
from gridgeo.labels import label_points
from gridgeo.schema import DEFAULT_SCHEME, STATION_KINDS, CodeScheme

__all__ = ["PrintedMap", "print_map", "PrintError"]

PAPER_MM = (297.0, 210.0)
"""The sheet: A4 landscape, in millimetres."""

FONT = ["Noto Sans CJK SC", "Noto Sans CJK JP", "WenQuanYi Zen Hei", "Microsoft YaHei", "SimHei", "DejaVu Sans"]
"""Fonts tried in turn for Chinese text (Debian's fonts-noto-cjk first)."""

_BEIJING = _dt.timezone(_dt.timedelta(hours=8))
_INK = "#1f2d3d"
_WORDS = {
    "zh": {"units": "个", "version": "数据版本", "printed": "打印于", "beijing": "北京时间",
           "min_count": "少于 {k} 户的单元不公布指标", "min_events": "少于 {k} 件事件的数不公布", "north": "北", "stations": "服务站点",
           "selected": "所选单元", "scale": "公里", "m": "米", "all": "全部", "level": "层级"},
    "en": {"units": "", "version": "data version", "printed": "printed", "beijing": "Beijing time",
           "min_count": "figures of units under {k} households are withheld",
           "min_events": "counts of fewer than {k} events are withheld", "north": "N",
           "stations": "stations", "selected": "selected unit", "scale": "km", "m": "m", "all": "all",
           "level": "level"},
}


class PrintError(ValueError):
    """A print the data cannot make (an unknown level or unit, a view holding no unit), in both languages."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} — {en}")
        self.zh, self.en = zh, en


@dataclass
class PrintedMap:
    """A printed map: the matplotlib figure, and what was put on it.

    Attributes
    ----------
    figure : matplotlib.figure.Figure
    legend : list of (colour, text, count, shape)
        The legend's rows, as drawn.
    labels : DataFrame
        The names written: ``code``, ``name``, ``level`` and their boxes in
        points on the sheet (``x0``, ``y0``, ``x1``, ``y1``).
    north_deg : float
        The north arrow's direction, degrees clockwise from the top of the sheet.
    scale_m : float
        The scale bar's length in metres; ``scale_points`` its length on the sheet.
    crs : pyproj.CRS
        The map's projected system.
    """

    figure: object
    legend: list
    labels: pd.DataFrame
    north_deg: float
    scale_m: float
    scale_points: float
    crs: pyproj.CRS
    extent: tuple = field(default=())

    def png(self, dpi: int = 200) -> bytes:
        """The sheet as a PNG (A4 at `dpi`: 2,339 × 1,654 pixels at 200)."""
        return self._save("png", dpi=dpi)

    def pdf(self) -> bytes:
        """The sheet as a PDF, vector, its text searchable (fonts embedded as TrueType)."""
        return self._save("pdf")

    def _save(self, fmt, **options) -> bytes:
        import matplotlib

        buffer = io.BytesIO()
        with matplotlib.rc_context({"pdf.fonttype": 42}):
            self.figure.savefig(buffer, format=fmt, facecolor="white", **options)
        return buffer.getvalue()


def print_map(grids: gpd.GeoDataFrame, *, level: str, figures: pd.DataFrame | None = None,
              field: str | None = None, unit: str | None = None, bbox=None,
              stations: gpd.GeoDataFrame | None = None, scheme: str = "fisher_jenks", k: int = 5,
              title: str | None = None, detail: str | None = None, version=None,
              when: _dt.datetime | None = None,
              language: str = "zh", min_count: int | None = None,
              code_scheme: CodeScheme = DEFAULT_SCHEME) -> PrintedMap:
    """The units of `level` in the view, coloured by `field`, on an A4 sheet (see the module's rules).

    Parameters
    ----------
    grids : GeoDataFrame
        The grid units (``code``, ``name``, ``level``, ``parent``), any CRS.
    level : str
        The level drawn and coloured.
    figures : DataFrame, optional
        Figures per unit indexed by ``code``, with ``level`` (as ``/stats``): where `field` is read.
        Missing or NaN values (withheld for the public) are drawn as "no data".
    field : str, optional
        The figure to colour by (a number, or ``band``); default the units plain.
    unit : str, optional
        A unit's code: the view is it and the units under it, and it is outlined.
    bbox : tuple of 4 floats, optional
        The view, ``(west, south, east, north)`` in degrees (CGCS2000/WGS84).
    stations : GeoDataFrame, optional
        Stations to draw, coloured by ``kind``.
    scheme, k
        The class scheme and number of classes, as on the page.
    title : str, optional
        Default: the unit's name (or the city's) and the figure.
    detail : str, optional
        Written after the default title: what else the figure is of (an event indicator's period and
        categories, ``2025-06 · 矛盾纠纷``).
    version : optional
        The data version, written in the footer.
    when : datetime, optional
        When the map was made (default now), written in Beijing time.
    language : {"zh", "en"}
    min_count : int, optional
        When given, the footer says figures of smaller units are withheld.

    Returns
    -------
    PrintedMap

    Raises
    ------
    PrintError
        An unknown level or unit, or a view that holds no unit of the level.
    """
    import matplotlib
    import matplotlib.font_manager as fm
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    words = _WORDS["en" if language == "en" else "zh"]
    units_all = grids[grids["level"] == level]
    if units_all.empty:
        raise PrintError(f"没有 {level} 层级的单元", f"no units of level {level!r}")
    metric = gcrs.metric_crs(grids)
    grid_m = grids.to_crs(metric) if grids.crs is not None else gcrs.to_metric(grids)
    shown = grid_m[grid_m["level"] == level]
    chosen = None
    if unit is not None:
        match = grid_m[grid_m["code"] == unit]
        if match.empty:
            raise PrintError(f"没有编码为 {unit} 的单元", f"no unit with code {unit!r}")
        chosen = match.iloc[0]
        if bbox is None:
            under = np.array([unit in code_scheme.chain(c) for c in shown["code"]], dtype=bool)
            shown = shown[under] if under.any() else shown[shown.intersects(chosen.geometry)]
    if bbox is not None:
        view = gpd.GeoSeries([shapely.box(*bbox)], crs=gcrs.STORAGE_CRS).to_crs(metric).iloc[0]
        shown = shown[shown.intersects(view)]
        extent = view.bounds
    else:
        extent = tuple(shown.total_bounds) if not shown.empty else ()
    if shown.empty:
        raise PrintError(f"视图中没有 {_mapstyle.level_label(level, scheme=code_scheme)}",
                         f"the view holds no unit of level {level!r}")

    family = [f for f in FONT if any(e.name == f for e in fm.fontManager.ttflist)] or ["DejaVu Sans"]
    with matplotlib.rc_context({"font.family": family, "axes.unicode_minus": False}):
        fig = Figure(figsize=(PAPER_MM[0] / 25.4, PAPER_MM[1] / 25.4))
        FigureCanvasAgg(fig)
        ax = fig.add_axes([0.03, 0.08, 0.70, 0.80])
        side = fig.add_axes([0.75, 0.08, 0.22, 0.80])
        side.set_axis_off()
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(_INK)
            spine.set_linewidth(0.8)

        # the units, coloured by the figure
        legend = []
        if field is not None and figures is not None:
            whole = figures.loc[figures["level"] == level, field] if field in figures.columns else pd.Series([])
            values = whole.reindex(shown["code"]) if field in figures.columns else \
                pd.Series(np.nan, index=shown["code"])
            colours, legend = _mapstyle.fills(values.reset_index(drop=True), column=field, scheme=scheme, k=k,
                                              language=language, reference=None if field == "band" else whole)
            face = colours.to_numpy()
        else:
            face = np.full(len(shown), "#e8eef5", dtype=object)
        shown.plot(ax=ax, color=list(face), edgecolor="#ffffff", linewidth=0.35)
        upper = code_scheme.parent_level(level)
        if upper is not None:
            parents = grid_m[grid_m["level"] == upper]
            parents = parents[parents.intersects(shapely.box(*extent))]
            parents.boundary.plot(ax=ax, color=_INK, linewidth=1.1)
        if chosen is not None:
            gpd.GeoSeries([chosen.geometry], crs=metric).boundary.plot(ax=ax, color="#d62728", linewidth=2.2)
        kinds = []
        if stations is not None and not stations.empty:
            kinds = _draw_stations(ax, stations.to_crs(metric), extent, language)
        _frame(ax, extent)

        # names
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        labels = _labels(ax, renderer, grids, grid_m, shown, upper, extent, code_scheme)

        # the sheet's furniture
        north = _north(metric, extent)
        scale_m, scale_points = _scale_bar(ax, fig, extent, words)
        _north_arrow(ax, north, words)
        place = chosen["name"] if chosen is not None else _place(grid_m, extent, code_scheme)
        heading = title or " · ".join(
            x for x in (place, _mapstyle.field_label(field, language) if field else None, detail) if x) or \
            _mapstyle.level_label(level, language, code_scheme)
        fig.text(0.03, 0.95, heading, fontsize=20, fontweight="bold", color=_INK, va="center")
        fig.text(0.03, 0.905, f"{words['level']}: {_mapstyle.level_label(level, language, code_scheme)} · "
                              f"{len(shown):,} {words['units']}".rstrip(), fontsize=10, color="#4a5a6a", va="center")
        _legend(side, legend, field, kinds, chosen is not None, words, language)
        stamp = (when or _dt.datetime.now(_dt.UTC)).astimezone(_BEIJING)
        footer = [f"{words['printed']} {stamp:%Y-%m-%d %H:%M} ({words['beijing']})"]
        if version is not None:
            footer.insert(0, f"{words['version']} {version}")
        if min_count:  # an event indicator's rule counts events, the other figures' households
            footer.append(words["min_events" if field and field.startswith(MAP_FIELD) else "min_count"]
                          .format(k=min_count))
        footer.append("gridgeo")
        fig.text(0.03, 0.035, " · ".join(footer), fontsize=8, color="#4a5a6a", va="center")
    return PrintedMap(figure=fig, legend=legend, labels=labels, north_deg=north, scale_m=scale_m,
                      scale_points=scale_points, crs=metric, extent=tuple(extent))


def _frame(ax, extent):
    """Show `extent` with a small margin, widened to the map's box so a metre is as long in x as in y."""
    minx, miny, maxx, maxy = extent
    pad = 0.03 * max(maxx - minx, maxy - miny, 1.0)
    minx, miny, maxx, maxy = minx - pad, miny - pad, maxx + pad, maxy + pad
    box = ax.get_position(original=True)
    width_in, height_in = ax.figure.get_size_inches()
    aspect = (box.height * height_in) / (box.width * width_in)
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half_w, half_h = (maxx - minx) / 2, (maxy - miny) / 2
    if half_h / half_w > aspect:
        half_w = half_h / aspect
    else:
        half_h = half_w * aspect
    ax.set_xlim(cx - half_w, cx + half_w)
    ax.set_ylim(cy - half_h, cy + half_h)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("")
    ax.set_ylabel("")


def _place(grid_m, extent, code_scheme):
    """The name of the highest unit the view lies in, if one holds most of it."""
    view = shapely.box(*extent)
    for lv in code_scheme.names:
        units = grid_m[grid_m["level"] == lv]
        share = units.intersection(view).area / max(view.area, 1.0)
        if len(share) and share.max() > 0.5 and (share > 0.05).sum() == 1:
            return units.loc[share.idxmax(), "name"]
        if (share > 0.05).sum() > 1:
            return None
    return None


def _draw_stations(ax, stations, extent, language):
    colours = _mapstyle.style()["stations"]["kinds"]
    inside = stations[stations.intersects(shapely.box(*extent))]
    kinds = []
    for kind, part in inside.groupby(inside["kind"].astype(str) if "kind" in inside else pd.Series("", index=inside.index)):
        part.plot(ax=ax, color=colours.get(kind, "#555555"), markersize=9, edgecolor=_INK, linewidth=0.3, zorder=4)
        names = STATION_KINDS.get(kind)
        shown = (names[1] if language == "en" else names[0]) if names else kind
        kinds.append((colours.get(kind, "#555555"), shown, len(part)))
    return kinds


def _labels(ax, renderer, grids, grid_m, shown, upper, extent, code_scheme):
    """Write names largest first, skipping any whose box would overlap one already written."""
    from matplotlib import patheffects

    candidates = []
    levels = [lv for lv in (upper, shown["level"].iloc[0]) if lv is not None]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    box = shapely.box(x0, y0, x1, y1)
    for rank, lv in enumerate(levels):
        units = grid_m[(grid_m["level"] == lv) & grid_m.intersects(box)]
        if units.empty:
            continue
        points = label_points(grids[grids["code"].isin(units["code"])], levels=[lv], scheme=code_scheme)
        points = points.to_crs(grid_m.crs)
        area = units.set_index("code").area.reindex(points["code"]).to_numpy()
        size = {0: 11.0, 1: 7.5}[rank] if len(levels) == 2 else 9.0
        for (code, name, geom), a in zip(points[["code", "name", "geometry"]].itertuples(index=False), area):
            candidates.append((rank, -a, code, name, lv, geom.x, geom.y, size))
    candidates.sort()
    frame = ax.get_window_extent(renderer)
    halo = [patheffects.withStroke(linewidth=2.4, foreground="white")]
    placed, rows = [], []
    for _, _, code, name, lv, x, y, size in candidates[:2000]:
        if not isinstance(name, str) or not name:
            continue
        text = ax.text(x, y, name, fontsize=size, ha="center", va="center", color=_INK, zorder=6,
                       fontweight="bold" if size >= 11 else "normal", clip_on=True, path_effects=halo)
        extent_px = text.get_window_extent(renderer).expanded(1.08, 1.15)
        inside = (extent_px.x0 >= frame.x0 and extent_px.x1 <= frame.x1 and
                  extent_px.y0 >= frame.y0 and extent_px.y1 <= frame.y1)
        if not inside or (placed and extent_px.count_overlaps(placed)):
            text.remove()
            continue
        placed.append(extent_px)
        pts = extent_px.transformed(ax.figure.dpi_scale_trans.inverted())
        rows.append((code, name, lv, pts.x0 * 72, pts.y0 * 72, pts.x1 * 72, pts.y1 * 72))
    return pd.DataFrame(rows, columns=["code", "name", "level", "x0", "y0", "x1", "y1"])


def _north(metric, extent) -> float:
    """Degrees clockwise from the sheet's top to true north at the centre of the view."""
    cx, cy = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    to_geo = pyproj.Transformer.from_crs(metric, gcrs.STORAGE_CRS, always_xy=True)
    to_map = pyproj.Transformer.from_crs(gcrs.STORAGE_CRS, metric, always_xy=True)
    lon, lat = to_geo.transform(cx, cy)
    x, y = to_map.transform(lon, lat + 0.001)
    return math.degrees(math.atan2(x - cx, y - cy))


def _nice_length(width_m: float) -> float:
    """The longest 1, 2 or 5 × 10ⁿ metres at most a fifth of `width_m`."""
    target = width_m / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def _scale_bar(ax, fig, extent, words):
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    left, bottom = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    height = 0.012 * (y1 - y0)
    from matplotlib.patches import Rectangle

    for i, colour in enumerate((_INK, "white")):
        ax.add_patch(Rectangle((left + i * length / 2, bottom), length / 2, height, facecolor=colour,
                               edgecolor=_INK, linewidth=0.8, zorder=7))
    unit, div = (words["scale"], 1000.0) if length >= 1000 else (words["m"], 1.0)
    for pos, value in ((0, 0), (0.5, length / 2), (1, length)):
        ax.text(left + pos * length, bottom + height * 1.6, f"{value / div:g}", fontsize=8, ha="center",
                va="bottom", color=_INK, zorder=7)
    ax.text(left + length + 0.01 * (x1 - x0), bottom + height / 2, unit, fontsize=8, ha="left", va="center",
            color=_INK, zorder=7)
    # its length on the sheet, in points
    a = ax.transData.transform((left, bottom))
    b = ax.transData.transform((left + length, bottom))
    points = float(np.hypot(*(b - a))) / fig.dpi * 72
    return float(length), points


def _north_arrow(ax, degrees, words):
    """An arrow in the map's top right corner, turned `degrees` clockwise."""
    theta = math.radians(degrees)
    cx, cy, r = 0.93, 0.88, 0.06
    dx, dy = r * math.sin(theta), r * math.cos(theta)
    ax.annotate("", xy=(cx + dx, cy + dy), xytext=(cx - dx, cy - dy), xycoords="axes fraction",
                arrowprops={"arrowstyle": "-|>", "color": _INK, "linewidth": 1.6, "mutation_scale": 18}, zorder=8)
    ax.text(cx + 1.45 * dx, cy + 1.45 * dy, words["north"], transform=ax.transAxes, fontsize=11,
            fontweight="bold", ha="center", va="center", color=_INK, zorder=8)


def _legend(side, rows, field, kinds, selected, words, language):
    from matplotlib.patches import Rectangle

    y = 0.97
    if field is not None:
        side.text(0.0, y, _mapstyle.field_label(field, language), fontsize=12, fontweight="bold", color=_INK,
                  va="top", transform=side.transAxes)
        y -= 0.07
        for colour, text, count, _ in rows:
            side.add_patch(Rectangle((0.0, y - 0.035), 0.12, 0.04, facecolor=colour, edgecolor="#8a97a6",
                                     linewidth=0.5, transform=side.transAxes))
            side.text(0.16, y - 0.015, f"{text}  ({count:,})", fontsize=9, color=_INK, va="center",
                      transform=side.transAxes)
            y -= 0.055
        y -= 0.03
    if kinds:
        side.text(0.0, y, words["stations"], fontsize=11, fontweight="bold", color=_INK, va="top",
                  transform=side.transAxes)
        y -= 0.06
        for colour, kind, count in kinds:
            side.scatter([0.06], [y - 0.015], s=30, color=colour, edgecolor=_INK, linewidth=0.3,
                         transform=side.transAxes)
            side.text(0.16, y - 0.015, f"{kind}  ({count:,})", fontsize=9, color=_INK, va="center",
                      transform=side.transAxes)
            y -= 0.05
        y -= 0.03
    if selected:
        side.plot([0.0, 0.12], [y - 0.015, y - 0.015], color="#d62728", linewidth=2.2, transform=side.transAxes)
        side.text(0.16, y - 0.015, words["selected"], fontsize=9, color=_INK, va="center", transform=side.transAxes)
