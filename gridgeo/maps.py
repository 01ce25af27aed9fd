"""Maps of grids, stations, problems, coverage and plans: the one map's look, in Jupyter.

The service's page (``/map``) and these folium maps share one style file,
``api/static/app/style.json``: the same line per level, colour per station
kind, class colours and legends. Every function returns a
:class:`folium.Map` (a :class:`folium.plugins.DualMap` for a plan's diff)
that displays in a notebook and saves with ``.save("map.html")``.

- :func:`explore_grids`: grids by level, optionally a choropleth of a figure
  with class breaks from mapclassify (the page's five classes);
- :func:`explore_stations`: stations by kind;
- :func:`explore_problems`: a :func:`gridgeo.validate` report, errors and
  warnings located on the grids;
- :func:`explore_coverage`: the share of households within a life circle per
  grid, the stations' service areas and the areas left out;
- :func:`explore_plan`: a plan's diff, before and after side by side;
- :func:`add_service_tiles`: the service's own vector tiles on any of these
  maps, when the analyst has ``gridgeo serve`` running.

The pages' own helpers live with the library: :func:`gridgeo.labels.label_points`
(where a unit's name goes) and :func:`gridgeo.coverage.served_area` (the union
of the service areas of a life circle, simplified for display).

Offline
-------
Government intranets have no internet. With ``offline=True`` the saved HTML
carries Leaflet (and VectorGrid, leaflet.heat when used) inline, taken from
the npm packages the service serves (``api/static/node_modules``, installed
by ``make assets``), and none of folium's CDN links: no request leaves the
file. The jQuery, Bootstrap and Font Awesome files folium links by default
are dropped, which is why these maps draw stations as circle markers instead
of ``folium.Icon`` markers that need them.

Notes
-----
Geometries are simplified for display per level as a coverage
(:func:`shapely.coverage_simplify`, so neighbours keep their shared edges) in
the metric CRS :func:`gridgeo.crs.metric_crs` chooses, then written with
coordinates rounded to 1e-6° (about 0.1 m).
"""

from __future__ import annotations

import base64
import functools
import html
import json
import re

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import _mapstyle
from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, STATION_KINDS, check

__all__ = [
    "level_label",
    "STYLE_FILE",
    "ASSETS",
    "style",
    "breaks",
    "explore_grids",
    "explore_stations",
    "explore_problems",
    "explore_coverage",
    "explore_plan",
    "add_service_tiles",
    "offline",
]

STYLE_FILE = _mapstyle.STYLE_FILE
"""The style the page and these maps share."""

ASSETS = _mapstyle.STATIC / "node_modules"
"""The npm packages the service serves (``make assets``): the offline maps' Leaflet."""

style = _mapstyle.style
breaks = _mapstyle.breaks
_fills = _mapstyle.fills
_number = _mapstyle.number
_field_label = _mapstyle.field_label
level_label = _mapstyle.level_label
_level_label = level_label


# ----------------------------------------------------------------------------
# maps
# ----------------------------------------------------------------------------


def explore_grids(grids, *, levels=None, column=None, level=None, scheme: str = "fisher_jenks", k: int = 5,
                  m=None, offline: bool = False, basemap: str | None = None, tolerance_m: float = 1.0,
                  source=None):
    """Grids by level with the one map's lines, optionally a choropleth of one figure.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid units of any levels (``code``, ``name``, ``level``, ``parent``,
        polygons), or :func:`gridgeo.stats.figures` (indexed by code) to
        colour by its figures.
    levels : list of str, optional
        The levels drawn (default every level present), each a layer of its
        own in the layer control.
    column : str, optional
        A figure to fill the units of `level` by: a numeric column (classes
        by `scheme`) or ``"band"`` (under / within / over the target band).
    level : str, optional
        The level `column` colours; default the finest full level drawn.
    scheme : {"fisher_jenks", "quantiles", "natural_breaks", "equal_interval"}
        The mapclassify scheme of the classes, as on the page.
    k : int, default 5
        The number of classes.
    m : folium.Map, optional
        A map to draw on (from another ``explore_*``); default a new one.
    offline : bool, default False
        Make the saved HTML self-contained: no CDN (see the module notes).
    basemap : str, optional
        An XYZ tile template; default none, like the page.
    tolerance_m : float, default 1.0
        Display simplification in metres; shared edges stay shared.
    source : optional
        The coordinate system of `grids` if it does not say, as in
        :func:`gridgeo.crs.to_storage`.

    Returns
    -------
    folium.Map

    Notes
    -----
    Units without a value of `column` are drawn in the style's no-data
    colour. A value on a class's upper bound belongs to that class
    (mapclassify's rule: classes are closed above).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
    >>> m = explore_grids(f, levels=["village", "grid2"], column="households", offline=True)
    >>> "cdn.jsdelivr" in m.get_root().render()
    False
    """
    frame = _units(_with_code_column(grids), levels, source=source, name="grids")
    drawn = [lv for lv in DEFAULT_SCHEME.names if lv in set(frame["level"])]
    if column is not None:
        level = level or ([lv for lv in drawn if DEFAULT_SCHEME.level(lv).full] or drawn)[-1]
        _check_column(frame, column, level)
    m = _map(m, frame, offline=offline, basemap=basemap)
    shown = _display(frame, tolerance_m=tolerance_m, coverage=True)
    legend = []
    if column is not None:
        units = shown[shown["level"] == level].copy()
        units["_fill"], rows = _fills(units[column], column=column, scheme=scheme, k=k)
        _add_geojson(m, units, name=f"{_field_label(column)} · {_level_label(level)}",
                     style=_choropleth_style(), tooltip=["name", "code", column])
        legend.append(_legend_block(f"{_field_label(column)} · {_level_label(level)}", rows))
    for lv in _drawing_order(drawn):
        units = shown[shown["level"] == lv]
        _add_geojson(m, units, name=_level_label(lv), style=_line_style(lv),
                     tooltip=["name", "code"] if column is None or lv != level else None)
    legend.append(_legend_block("网格层级", [(style()["levels"][lv]["color"], _level_label(lv), None, "line")
                                          for lv in drawn]))
    return _finish(m, legend)


def explore_stations(stations, *, kinds=None, m=None, offline: bool = False, basemap: str | None = None,
                     source=None):
    """Stations as circles coloured by kind, as on the page.

    Parameters
    ----------
    stations : GeoDataFrame
        ``station_id``, ``name``, ``kind``, ``grid_code``, points.
    kinds : list of str, optional
        Only these kinds (default all).
    m, offline, basemap, source
        As in :func:`explore_grids`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> m = explore_stations(s.stations, m=explore_grids(s.grids, levels=["village"]))
    >>> [layer.layer_name for layer in m._children.values() if hasattr(layer, "layer_name")][-1]
    '服务站点'
    """
    frame = check(gcrs.to_storage(stations, source=source, name="stations"), "stations", name="stations")
    if kinds is not None:
        frame = frame[frame["kind"].isin(list(kinds))]
    m = _map(m, frame, offline=offline, basemap=basemap)
    colours = style()["stations"]["kinds"]
    frame = frame.assign(_fill=frame["kind"].map(colours).fillna("#ffffff"),
                         kind_label=frame["kind"].map({k: v[0] for k, v in STATION_KINDS.items()}))
    _add_points(m, frame, name="服务站点", tooltip=["name", "kind_label", "grid_code"])
    present = [k for k in colours if (frame["kind"] == k).any()]
    rows = [(colours[k], STATION_KINDS[k][0], int((frame["kind"] == k).sum()), "dot") for k in present]
    return _finish(m, [_legend_block("服务站点", rows)])


def explore_problems(report, *, grids=None, m=None, offline: bool = False, basemap: str | None = None):
    """A validation report on the map: every problem located, errors red, warnings amber.

    Parameters
    ----------
    report : GeoDataFrame
        :func:`gridgeo.validate` (``kind``, ``severity``, ``code``,
        ``message_zh``, ``message_en``, geometry), possibly filtered.
    grids : GeoDataFrame, optional
        The grids checked, drawn underneath for orientation.
    m, offline, basemap
        As in :func:`explore_grids`.

    Returns
    -------
    folium.Map
        Errors and warnings as two layers; a problem's tooltip says what is
        wrong and what to do, in Chinese.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> broken = s.grids.copy()
    >>> first, second = broken.index[broken["level"] == "grid2"][:2]
    >>> broken.loc[first, "geometry"] = broken.loc[second, "geometry"]
    >>> report = gridgeo.validate(broken, levels=["grid2"])
    >>> m = explore_problems(report, grids=broken[broken["level"] == "village"])
    >>> [layer.layer_name for layer in m._children.values() if hasattr(layer, "layer_name")]
    ['村社', '错误 (2)']
    """
    from gridgeo.validation import KINDS, REPORT_COLUMNS

    missing = [c for c in REPORT_COLUMNS if c not in report.columns]
    if missing:
        raise ValueError(f"report should be gridgeo.validate(...); it lacks the columns {missing}")
    located = gcrs.to_storage(report, name="report")
    located = located[~located.geometry.is_empty & located.geometry.notna()]
    if grids is not None:
        m = explore_grids(grids, m=m, offline=offline, basemap=basemap)
    m = _map(m, located if len(located) else grids, offline=offline, basemap=basemap)
    located = located.assign(kind_label=located["kind"].map({k: v.label_zh for k, v in KINDS.items()}))
    rows = []
    for severity, label in (("warning", "警告"), ("error", "错误")):
        chosen = _display(located[located["severity"] == severity], tolerance_m=0.0)
        s = style()["problems"][severity]
        _add_geojson(m, chosen, name=f"{label} ({len(chosen)})",
                     style={**s, "radius": 6}, tooltip=["kind_label", "code", "message_zh"])
        rows.append((s["color"], label, len(chosen), "box"))
    return _finish(m, [_legend_block("校验问题", rows[::-1])])


def explore_coverage(coverage, *, minutes: int = 15, level: str = "grid2", areas=None, uncovered=None,
                     scheme: str = "fisher_jenks", k: int = 5, m=None, offline: bool = False,
                     basemap: str | None = None, tolerance_m: float = 1.0):
    """The share of households within a life circle per grid, the ground served and the areas left out.

    Parameters
    ----------
    coverage : GeoDataFrame
        :func:`gridgeo.coverage.per_grid` (``share_<minutes>min`` per unit
        and level).
    minutes : int, default 15
        The life circle.
    level : str, default "grid2"
        The level coloured by its share.
    areas : GeoDataFrame, optional
        :func:`gridgeo.coverage.service_areas`: their union for `minutes`
        (:func:`served_area`) is drawn in green.
    uncovered : GeoDataFrame, optional
        :func:`gridgeo.coverage.uncovered_areas` for the same circle, in red.
    scheme, k, m, offline, basemap, tolerance_m
        As in :func:`explore_grids`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import coverage
    >>> s = gridgeo.sample.load()
    >>> near = coverage.nearest_station(s.addresses, s.stations, method="straight")
    >>> per = coverage.per_grid(near, s.grids, levels=["village"])
    >>> m = explore_coverage(per, level="village", uncovered=coverage.uncovered_areas(near))
    >>> "share_15min" in m.get_root().render()
    True
    """
    share = f"share_{minutes}min"
    frame = _units(_with_code_column(coverage), [level], source=None, name="coverage")
    _check_column(frame, share, level)
    m = _map(m, frame, offline=offline, basemap=basemap)
    shown = _display(frame, tolerance_m=tolerance_m, coverage=True)
    shown["_fill"], rows = _fills(shown[share], column=share, scheme=scheme, k=k)
    _add_geojson(m, shown, name=f"{minutes}分钟生活圈覆盖率 · {_level_label(level)}", style=_choropleth_style(),
                 tooltip=["name", "code", "households", share])
    legend = [_legend_block(f"{minutes}分钟生活圈覆盖率 · {_level_label(level)}", rows)]
    s = style()["coverage"]
    extra = []
    if areas is not None:
        from gridgeo.coverage import served_area

        served = served_area(areas, minutes=minutes)
        _add_geojson(m, _display(served, tolerance_m=0.0), name="服务范围", style=s["served"],
                     tooltip=["circle", "stations"])
        extra.append((s["served"]["fillColor"], "服务范围", None, "box"))
    if uncovered is not None:
        left = gcrs.to_storage(uncovered, name="uncovered")
        _add_geojson(m, _display(left, tolerance_m=0.0), name="未覆盖区域", style=s["uncovered"],
                     tooltip=[c for c in ("households", "addresses", "nearest_m") if c in left.columns])
        extra.append((s["uncovered"]["fillColor"], "未覆盖区域", len(left), "box"))
    if extra:
        legend.append(_legend_block(f"{minutes}分钟生活圈", extra))
    return _finish(m, legend)


def explore_plan(before, after, *, offline: bool = False, basemap: str | None = None,
                 layout: str = "horizontal"):
    """A plan's diff: before and after side by side, every grid coloured by its change.

    Parameters
    ----------
    before, after : gridgeo.plan.PlanState or GeoDataFrame
        The two plans of one parent and level, as :func:`gridgeo.plan.diff`
        takes them (at least one a PlanState).
    offline, basemap
        As in :func:`explore_grids`.
    layout : {"horizontal", "vertical"}
        Where the second map goes.

    Returns
    -------
    folium.plugins.DualMap
        Two maps that move together: the grids before (left) and after
        (right), coloured by :data:`gridgeo.plan.CHANGES`, and on the right
        the areas whose households move, with how many.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses)
    >>> pair = gridgeo.plan.neighbours(state).iloc[0]
    >>> m = explore_plan(state, gridgeo.plan.merge(state, [pair["a"], pair["b"]]), offline=True)
    >>> "cdn.jsdelivr" in m.get_root().render()
    False
    """
    import folium.plugins

    from gridgeo import plan

    d = plan.diff(before, after)
    sides = {"m1": (_plan_grids(before), "规划前"), "m2": (_plan_grids(after), "规划后")}
    both = pd.concat([g.geometry for g, _ in sides.values()])
    dual = folium.plugins.DualMap(layout=layout, tiles=None, control_scale=True, prefer_canvas=True)
    change = d.units.set_index("code")["change"]
    colours = style()["diff"]
    for attr, (grids, title) in sides.items():
        m = getattr(dual, attr)
        _prepare(m, both, basemap=basemap)
        shown = _display(grids[grids["code"].isin(change.index)], tolerance_m=0.5, coverage=True)
        shown["change"] = shown["code"].map(change)
        shown["change_label"] = shown["change"].map({k: v["label"] for k, v in colours.items()})
        shown["_fill"] = shown["change"].map({k: v["color"] for k, v in colours.items()})
        _add_geojson(m, shown, name=title, style=_choropleth_style(line="#dfe9f5"),
                     tooltip=["name", "code", "change_label"])
        present = [c for c in plan.CHANGES if (shown["change"] == c).any()]
        rows = [(colours[c]["color"], colours[c]["label"], int((shown["change"] == c).sum()), "box")
                for c in present]
        if attr == "m2" and len(d.moves):
            moves = _display(gcrs.to_storage(d.moves, name="moves"), tolerance_m=0.0)
            _add_geojson(m, moves, name=colours["moves"]["label"], style=colours["moves"],
                         tooltip=["from_code", "to_code", "households"])
            rows.append((colours["moves"]["fillColor"],
                         f"{colours['moves']['label']}（{d.summary.get('households_moved', 0)}户）", None, "box"))
        _finish(m, [_legend_block(title, rows)])
    if offline:
        _make_offline(dual.get_root())
    return dual


def add_service_tiles(m, url: str, *, layers=("town", "village", "grid1", "grid2", "grid3", "stations")):
    """The service's vector tiles on a map, styled like the page, clickable.

    Parameters
    ----------
    m : folium.Map
    url : str
        Where ``gridgeo serve`` runs, e.g. ``"http://127.0.0.1:8000"``.
    layers : sequence of str
        Tile layers (see the service's ``/tiles``): grid levels and
        ``"stations"``.

    Returns
    -------
    folium.Map
        `m`, with one VectorGrid layer per tile layer; a click on a feature
        opens a popup with its properties.

    Notes
    -----
    The tiles come from the service, so the map shows what it publishes,
    even when it no longer fits in one HTML file. Leaflet.VectorGrid 1.3.0
    needs the fixes of ``api/static/app/vectorgrid-fix.js`` with Leaflet
    1.9, which are added to the map. The page's browser must reach the
    service (same origin, or the service's ``GRIDGEO_CORS_ORIGINS``).

    Examples
    --------
    >>> import gridgeo
    >>> m = explore_grids(gridgeo.sample.load().grids, levels=["town"])
    >>> m = add_service_tiles(m, "http://127.0.0.1:8000", layers=["village", "stations"])
    >>> "127.0.0.1:8000/tiles/village/{z}/{x}/{y}.mvt" in m.get_root().render()
    True
    """
    import folium
    import folium.plugins

    base = url.rstrip("/")
    unknown = [lv for lv in layers if lv not in DEFAULT_SCHEME.names and lv != "stations"]
    if unknown:
        raise ValueError(f"unknown tile layer(s) {unknown}: use grid levels {list(DEFAULT_SCHEME.names)} "
                         "or 'stations'")
    if "gridgeo_tiles" not in m._children:  # above the maps' own layers, so the tiles take the clicks
        m.add_child(folium.map.CustomPane("gridgeo_tiles", z_index=450), name="gridgeo_tiles")
    for name in layers:
        layer_style = _line_style(name) if name != "stations" else None
        js_style = json.dumps(layer_style) if layer_style else _STATION_STYLE_JS % json.dumps(
            style()["stations"]["kinds"])
        options = ("{\"interactive\": true, \"maxNativeZoom\": 16, \"rendererFactory\": L.canvas.tile, "
                   "\"pane\": \"gridgeo_tiles\", "
                   f"\"vectorTileLayerStyles\": {{{json.dumps(name)}: {js_style}}}}}")
        layer = folium.plugins.VectorGridProtobuf(f"{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt",
                                                  name=f"{_level_label(name)}（服务）", options=options)
        layer.add_to(m)
        _elements().TilePopups(layer).add_to(m)
    m.add_child(_elements().Script(_vectorgrid_fix()), name="gridgeo_vectorgrid_fix")
    return _finish(m, [])


def _units(grids, levels, *, source, name, scheme=DEFAULT_SCHEME):
    frame = check(gcrs.to_storage(grids, source=source, name=name), "grids", name=name, scheme=scheme)
    if levels is not None:
        unknown = sorted(set(levels) - set(scheme.names))
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}: use some of {list(scheme.names)}")
        frame = frame[frame["level"].isin(levels)]
    return frame.reset_index(drop=True)


# ----------------------------------------------------------------------------
# map making
# ----------------------------------------------------------------------------

_STATION_STYLE_JS = ("function (p, z) { var kinds = %s; return {radius: 5 + Math.max(0, z - 14) * 1.5, "
                     "weight: 1.5, color: '#061426', fill: true, fillColor: kinds[p.kind] || '#ffffff', "
                     "fillOpacity: 1}; }")

_CSS = """<style>
html body .leaflet-container { background: %(background)s; font-family: "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }
.gridgeo-legend { background: rgba(9, 26, 46, 0.94); color: #e4efff; border: 1px solid #1d3a5c;
                  border-radius: 6px; padding: 6px 10px; font-size: 13px; line-height: 1.5; max-width: 260px; }
.gridgeo-legend h4 { margin: 4px 0; color: #38d6ff; font-size: 13px; }
.gridgeo-legend .row { display: flex; align-items: center; gap: 6px; }
.gridgeo-legend .box { width: 18px; height: 11px; border-radius: 2px; flex: none; }
.gridgeo-legend .line { width: 18px; height: 0; border-top: 3px solid; flex: none; }
.gridgeo-legend .dot { width: 10px; height: 10px; border-radius: 50%%; flex: none; }
.gridgeo-legend .n { margin-left: auto; color: #8ba3c2; padding-left: 8px; }
</style>"""

_SYNC_JS = """L.Map.include({sync: function (other) {
  // DualMap's two maps move together (what Leaflet.Sync does, without the CDN)
  var self = this;
  this.on('move', function () {
    if (self._gridgeoFollowing) return;
    other._gridgeoFollowing = true;
    other.setView(self.getCenter(), self.getZoom(), {animate: false});
    other._gridgeoFollowing = false;
  });
  return this;
}});"""

_LOCAL_ASSETS = {
    "leaflet": "leaflet/dist/leaflet.js",
    "leaflet_css": "leaflet/dist/leaflet.css",
    "vectorGrid": "leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js",
    "leaflet-heat.js": "leaflet.heat/dist/leaflet-heat.js",
    "d3": "d3/d3.min.js",  # branca's colour-bar legends, as in GeoDataFrame.explore(column=...)
}
"""folium's name of a CDN link -> the file of the npm packages the service serves."""

_UNNEEDED = {"jquery", "bootstrap", "awesome_markers", "bootstrap_css", "glyphicons_css",
             "awesome_markers_font_css", "awesome_markers_css", "awesome_rotate_css"}
"""folium's default links these maps do not use (no folium.Icon, no Bootstrap widgets)."""


def _with_code_column(frame):
    if "code" not in frame.columns and frame.index.name == "code":
        return frame.reset_index()
    return frame


def _check_column(frame, column, level):
    if column not in frame.columns:
        raise ValueError(f"no column {column!r} to colour by: the frame has {list(frame.columns)}; "
                         "figures come from gridgeo.stats.figures or gridgeo.coverage.per_grid")
    if not (frame["level"] == level).any():
        raise ValueError(f"no units of level {level!r} to colour by {column!r}: "
                         f"the frame has {sorted(set(frame['level']))}")
    if column != "band" and not pd.api.types.is_numeric_dtype(frame[column]):
        raise ValueError(f"{column!r} is not numeric: colour by a numeric figure or 'band'")


def _map(m, frame, *, offline, basemap):
    """A new map fitted to `frame` (or `m`, made offline if asked)."""
    import folium

    if m is None:
        m = folium.Map(tiles=None, control_scale=True, prefer_canvas=True, zoom_snap=0.25)
        _prepare(m, frame.geometry, basemap=basemap)
    if offline:
        _make_offline(m.get_root())
    return m


def _prepare(m, geometry, *, basemap):
    import folium
    from branca.element import Element

    west, south, east, north = gcrs.to_storage(gpd.GeoSeries(geometry), name="data").total_bounds
    m.fit_bounds([[south, west], [north, east]])
    m.get_root().header.add_child(Element(_CSS % {"background": style()["background"]}), name="gridgeo_css")
    if basemap:
        folium.TileLayer(basemap, attr=" ", name="basemap", max_zoom=18).add_to(m)


def _finish(m, legend_blocks):
    import folium

    blocks = [b for b in legend_blocks if b]
    if blocks:  # one legend per map: what earlier explore_* calls put on it, then these
        previous = m._children.get("gridgeo_legend")
        m.add_child(_elements().Legend((previous.html if previous else "") + "".join(blocks)), name="gridgeo_legend")
    if "gridgeo_layers" not in m._children:
        m.add_child(folium.LayerControl(collapsed=True), name="gridgeo_layers")
    else:
        m._children["gridgeo_layers"] = m._children.pop("gridgeo_layers")  # keep it last: it lists every layer
    return m


def _display(frame, *, tolerance_m, coverage=False):
    """Geometries for display: simplified in the metric CRS (per level as a
    coverage, keeping shared edges), rounded to 1e-6°, JSON-ready columns."""
    out = frame.copy()
    if len(out) and tolerance_m > 0:
        metric = gcrs.metric_crs(out)
        geoms = out.geometry.to_crs(metric).to_numpy()
        groups = out["level"].to_numpy() if coverage and "level" in out.columns else np.zeros(len(out))
        simplified = np.empty(len(out), dtype=object)
        for group in pd.unique(groups):
            at = np.flatnonzero(groups == group)
            simplified[at] = (shapely.coverage_simplify(geoms[at], tolerance_m) if coverage
                              else shapely.simplify(geoms[at], tolerance_m))
        out = out.set_geometry(gpd.GeoSeries(simplified, index=out.index, crs=metric).to_crs(gcrs.STORAGE_CRS))
    out = out.set_geometry(shapely.transform(out.geometry.to_numpy(), lambda c: np.round(c, 6)), crs=out.crs)
    for col in out.columns:
        if col != out.geometry.name and not (pd.api.types.is_numeric_dtype(out[col])
                                             or pd.api.types.is_bool_dtype(out[col])):
            out[col] = out[col].astype(object).where(out[col].notna(), None).astype(str).replace("None", "")
    return out


def _drawing_order(levels):
    """Fine to coarse, as on the page: a coarse line lies over the finer ones it shares."""
    return sorted(levels, key=DEFAULT_SCHEME.index, reverse=True)


def _line_style(level):
    s = style()["levels"][level]
    return {"color": s["color"], "weight": s["weight"], "opacity": s["opacity"],
            "dashArray": s.get("dashArray"), "fill": bool(s.get("fillColor")),
            "fillColor": s.get("fillColor"), "fillOpacity": s.get("fillOpacity", 0)}


def _choropleth_style(line="#0b1a2e"):
    return {"color": line, "weight": 0.6, "opacity": 0.9, "fillOpacity": style()["choropleth"]["fillOpacity"]}












def _add_geojson(m, frame, *, name, style, tooltip=None):
    import folium

    if frame.empty:
        return
    keep = [c for c in (tooltip or []) if c in frame.columns] + (["_fill"] if "_fill" in frame.columns else [])
    data = frame[keep + [frame.geometry.name]]
    fixed = {k: v for k, v in style.items() if v is not None}

    def style_function(feature):
        fill = feature["properties"].get("_fill")
        return {**fixed, "fillColor": fill, "fill": True} if fill else fixed

    tip = None
    if tooltip:
        fields = [c for c in tooltip if c in frame.columns]
        tip = folium.GeoJsonTooltip(fields=fields, aliases=[_alias(c) for c in fields], localize=True)
    folium.GeoJson(data, name=name, style_function=style_function, tooltip=tip,
                   marker=folium.CircleMarker(radius=style.get("radius", 6)) if "radius" in style else None,
                   ).add_to(m)


def _add_points(m, frame, *, name, tooltip):
    import folium

    s = style()["stations"]
    data = frame[[c for c in tooltip if c in frame.columns] + ["_fill", frame.geometry.name]]
    folium.GeoJson(
        _display(data, tolerance_m=0.0), name=name,
        marker=folium.CircleMarker(radius=s["radius"], weight=1.5, color="#061426", fill=True, fill_opacity=1),
        style_function=lambda f: {"fillColor": f["properties"]["_fill"], "color": "#061426", "weight": 1.5,
                                  "fillOpacity": 1},
        tooltip=folium.GeoJsonTooltip(fields=[c for c in tooltip if c in frame.columns],
                                      aliases=[_alias(c) for c in tooltip if c in frame.columns]),
    ).add_to(m)


_ALIASES = {"name": "名称", "code": "编码", "kind_label": "类型", "grid_code": "所属网格", "message_zh": "说明",
            "change_label": "变化", "households": "户数", "addresses": "标准地址", "nearest_m": "最近站点（米）",
            "circle": "生活圈（分钟）", "stations": "服务站点", "from_code": "迁出网格", "to_code": "迁入网格"}


def _alias(column):
    return _ALIASES.get(column) or _field_label(column)


def _legend_block(title, rows):
    if not rows:
        return ""
    lines = []
    for colour, text, count, shape in rows:
        mark = (f'<span class="line" style="border-color:{colour}"></span>' if shape == "line"
                else f'<span class="{shape}" style="background:{colour}"></span>')
        n = f'<span class="n">{count:,}</span>' if count is not None else ""
        lines.append(f'<div class="row">{mark}<span>{html.escape(str(text))}</span>{n}</div>')
    return f"<h4>{html.escape(title)}</h4>" + "".join(lines)


def _plan_grids(plan_or_grids):
    from gridgeo.plan import PlanState

    grids = plan_or_grids.to_grids() if isinstance(plan_or_grids, PlanState) else plan_or_grids
    return check(gcrs.to_storage(grids, name="plan"), "grids", name="plan")


def _vectorgrid_fix() -> str:
    return (STYLE_FILE.parent / "vectorgrid-fix.js").read_text("utf-8")


@functools.cache
def _elements():
    """The folium elements these maps add (made on first use: folium is imported lazily)."""
    from types import SimpleNamespace

    from branca.element import Element, MacroElement
    from folium.template import Template

    class Legend(MacroElement):
        _template = Template("""
            {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = L.control({position: "bottomleft"});
            {{ this.get_name() }}.onAdd = function () {
                var div = L.DomUtil.create("div", "gridgeo-legend");
                div.innerHTML = {{ this.html|tojson }};
                return div;
            };
            {{ this.get_name() }}.addTo({{ this._parent.get_name() }});
            {% endmacro %}
        """)

        def __init__(self, html_text):
            super().__init__()
            self._name = "GridgeoLegend"
            self.html = html_text

    class Script(MacroElement):
        _template = Template("{% macro script(this, kwargs) %}{{ this.code }}{% endmacro %}")

        def __init__(self, code):
            super().__init__()
            self.code = code

    class TilePopups(MacroElement):
        _template = Template("""
            {% macro script(this, kwargs) %}
            {{ this.layer.get_name() }}.on("click", function (e) {
                var p = e.layer.properties || {};
                var rows = Object.keys(p).map(function (k) { return "<b>" + k + "</b> " + p[k]; });
                L.popup().setLatLng(e.latlng).setContent(rows.join("<br>"))
                    .openOn({{ this.layer._parent.get_name() }});
            });
            {% endmacro %}
        """)

        def __init__(self, layer):
            super().__init__()
            self.layer = layer

    class Inline(Element):
        """A <script> or <style> with the file's text, rendered as is (no template)."""

        def __init__(self, text):
            super().__init__()
            self.text = text

        def render(self, **kwargs):
            return self.text

    class Offline(Element):
        """Rendered after the maps of its figure: swaps the CDN links they put in
        the header for the files of ASSETS, inline."""

        def render(self, **kwargs):
            header = self.get_root().header
            for name, child in list(header._children.items()):
                url = getattr(child, "url", None)
                if url is None:
                    # geopandas' categorical legend: jQuery UI from a CDN to make the legend draggable
                    text = child.render() if hasattr(child, "render") else ""
                    if isinstance(text, str) and _EXTERNAL_SCRIPT.search(text):
                        header._children[name] = Inline(_without_external_scripts(text))
                    continue
                if not url.startswith(("http://", "https://", "//")):
                    continue
                if name in _UNNEEDED:
                    del header._children[name]
                    continue
                header._children[name] = Inline(_inline_asset(name, url))
            return ""

    return SimpleNamespace(Legend=Legend, Script=Script, TilePopups=TilePopups, Inline=Inline, Offline=Offline)


def offline(m):
    """Make any folium map load nothing from the internet when saved.

    Leaflet, VectorGrid and leaflet.heat are inlined from the copies the set-up
    installed (``api/static/node_modules``) instead of folium's CDN links, so
    the saved HTML opens on an intranet machine. The ``explore_*`` functions
    do this with ``offline=True``; this is for any other folium map, such as
    one from ``GeoDataFrame.explore()``.

    Parameters
    ----------
    m : folium.Map
        Changed in place.

    Returns
    -------
    folium.Map
        ``m``.

    Raises
    ------
    ValueError
        When saving, if the map uses a folium plugin whose files the set-up did
        not install (the message names it).

    Examples
    --------
    >>> import gridgeo
    >>> m = offline(gridgeo.sample.load().level("village").explore(tiles=None))
    >>> "cdn.jsdelivr" in m.get_root().render()
    False
    """
    _make_offline(m.get_root())
    return m


def _make_offline(figure) -> None:
    if "gridgeo_offline" in figure._children:
        figure._children["gridgeo_offline"] = figure._children.pop("gridgeo_offline")  # stay last
    else:
        figure.add_child(_elements().Offline(), name="gridgeo_offline")


_EXTERNAL_SCRIPT = re.compile(r"<script[^>]*\bsrc=[\"'](?:https?:)?//[^\"']+[\"'][^>]*>\s*</script>", re.I)
_JQUERY_READY = re.compile(r"<script>\s*\$\(\s*function\s*\(\)\s*\{.*?\}\s*\);?\s*</script>", re.S)


def _without_external_scripts(text: str) -> str:
    """A header element's HTML without its CDN scripts, and without the jQuery code
    that needed them (geopandas' draggable legend stays where it is drawn)."""
    if "jquery" in text.lower():
        text = _JQUERY_READY.sub("", text)
    return _EXTERNAL_SCRIPT.sub("", text)


def _inline_asset(name, url) -> str:
    """The <script> or <style> holding the local copy of a CDN asset."""
    if name == "Leaflet.Sync":
        return f"<script>{_SYNC_JS}</script>"
    if name not in _LOCAL_ASSETS:
        raise ValueError(
            f"offline=True: no local copy of {url} (folium's {name!r}). These maps use Leaflet, VectorGrid, "
            "leaflet.heat and d3 (legends) from api/static/node_modules; plugins needing other files cannot be saved offline "
            "unless their npm package is added to api/static/package.json")
    path = ASSETS / _LOCAL_ASSETS[name]
    if not path.exists():
        raise FileNotFoundError(f"offline=True needs {path}: install the front-end packages with `make assets` "
                                "(npm ci --prefix api/static)")
    text = path.read_text("utf-8")
    if path.suffix == ".css":
        return f"<style>{_embed_images(text, path.parent)}</style>"
    return "<script>" + text.replace("</script", "<\\/script") + "</script>"


def _embed_images(css, folder) -> str:
    """url(images/x.png) -> a data: URL, so the CSS needs no file beside the page."""
    import re

    def data_url(match):
        ref = match.group(1).strip("'\"")
        target = folder / ref
        if ref.startswith("data:") or not target.exists():
            return match.group(0)
        mime = "image/svg+xml" if target.suffix == ".svg" else f"image/{target.suffix[1:]}"
        return f"url(data:{mime};base64,{base64.b64encode(target.read_bytes()).decode()})"

    return re.sub(r"url\(([^)]+)\)", data_url, css)
