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

Two helpers serve the page as well: :func:`label_points` (where a unit's
name goes) and :func:`served_area` (the union of the service areas of a life
circle, simplified for display).

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
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, EVENT_CATEGORIES, STATION_KINDS, check

__all__ = [
    "STYLE_FILE",
    "ASSETS",
    "style",
    "label_points",
    "served_area",
]

_STATIC = Path(__file__).resolve().parent.parent / "api" / "static"
STYLE_FILE = _STATIC / "app" / "style.json"
"""The style the page and these maps share."""

ASSETS = _STATIC / "node_modules"
"""The npm packages the service serves (``make assets``): the offline maps' Leaflet."""


@functools.cache
def style() -> dict:
    """The one map's style: colours and lines per level, station kind, figure and class.

    Examples
    --------
    >>> style()["levels"]["grid2"]["color"]
    '#9fb6d6'
    """
    return json.loads(STYLE_FILE.read_text("utf-8"))


# ----------------------------------------------------------------------------
# helpers the page shares
# ----------------------------------------------------------------------------


def label_points(grids, *, levels=None, tolerance_m: float = 1.0, source=None) -> gpd.GeoDataFrame:
    """Where each unit's name is written: the centre of its largest inscribed circle.

    A centroid can fall outside a concave unit (a U-shaped village); the
    centre of the maximum inscribed circle (the pole of inaccessibility) is
    always inside, as far from the boundary as possible.

    Parameters
    ----------
    grids : GeoDataFrame
        Grid units (``code``, ``name``, ``level``, ``parent``, polygons).
    levels : list of str, optional
        Only these levels (default every level present).
    tolerance_m : float, default 1.0
        How close to the true centre the search stops, in metres.
    source : optional
        The coordinate system of `grids` if it does not say, as in
        :func:`gridgeo.crs.to_storage`.

    Returns
    -------
    GeoDataFrame
        ``code``, ``name``, ``level``, ``radius_m`` (the inscribed circle's
        radius: how much room the label has) and the point, in EPSG:4490, in
        the order of `grids`.

    Examples
    --------
    >>> from gridgeo import sample
    >>> grids = sample.load().grids
    >>> points = label_points(grids, levels=["village"])
    >>> villages = grids.set_index("code").geometry.loc[points["code"]]
    >>> len(points), bool(points.within(villages, align=False).all())
    (28, True)
    """
    frame = _units(grids, levels, source=source, name="grids")
    metric = gcrs.metric_crs(frame)
    geoms = frame.geometry.to_crs(metric).array
    spokes = shapely.maximum_inscribed_circle(np.asarray(geoms), tolerance_m)
    centres = gpd.GeoSeries(shapely.get_point(spokes, 0), crs=metric).to_crs(gcrs.STORAGE_CRS)
    out = pd.DataFrame({"code": frame["code"].to_numpy(), "name": frame["name"].to_numpy(),
                        "level": frame["level"].to_numpy(), "radius_m": shapely.length(spokes)})
    return gpd.GeoDataFrame(out, geometry=centres.to_numpy(), crs=gcrs.STORAGE_CRS)


def served_area(areas, *, minutes=None, tolerance_m: float = 2.0) -> gpd.GeoDataFrame:
    """The ground a life circle serves: the union of every station's service area.

    Overlapping areas drawn one by one pile up into blotches and weigh
    megabytes at city scale; their union, simplified, is what a map shows.

    Parameters
    ----------
    areas : GeoDataFrame
        :func:`gridgeo.coverage.service_areas` (``circle``, ``station_id``,
        polygons).
    minutes : int or list of int, optional
        The circles to keep (default all).
    tolerance_m : float, default 2.0
        Simplification in metres (0 keeps every vertex).

    Returns
    -------
    GeoDataFrame
        One row per circle: ``circle`` (minutes), ``stations`` (how many
        reach anything) and the (Multi)Polygon, in EPSG:4490.

    Examples
    --------
    >>> from gridgeo import sample, network, coverage
    >>> s = sample.load()
    >>> areas = coverage.service_areas(s.stations.head(3), network.build(s.roads))
    >>> served_area(areas, minutes=15)[["circle", "stations"]].values.tolist()
    [[15, 3]]
    """
    if "circle" not in areas.columns:
        raise ValueError("areas should be gridgeo.coverage.service_areas(...), with a 'circle' column; "
                         f"got columns {list(areas.columns)}")
    areas = gcrs.to_storage(areas, name="areas")
    if minutes is not None:
        wanted = np.atleast_1d(minutes)
        unknown = sorted(set(wanted.tolist()) - set(areas["circle"].unique().tolist()))
        if unknown:
            raise ValueError(f"no service areas for circle(s) {unknown}: the areas have "
                             f"{sorted(areas['circle'].unique().tolist())}")
        areas = areas[areas["circle"].isin(wanted)]
    areas = areas[~areas.geometry.is_empty]
    metric = gcrs.metric_crs(areas) if len(areas) else gcrs.STORAGE_CRS
    dissolved = areas.to_crs(metric).dissolve(by="circle", aggfunc={"station_id": "nunique"})
    geoms = dissolved.geometry.simplify(tolerance_m) if tolerance_m > 0 else dissolved.geometry
    out = gpd.GeoDataFrame({"circle": dissolved.index.to_numpy(), "stations": dissolved["station_id"].to_numpy()},
                           geometry=geoms.to_numpy(), crs=metric)
    return out.to_crs(gcrs.STORAGE_CRS)


def _units(grids, levels, *, source, name):
    frame = check(gcrs.to_storage(grids, source=source, name=name), "grids", name=name)
    if levels is not None:
        unknown = sorted(set(levels) - set(DEFAULT_SCHEME.names))
        if unknown:
            raise ValueError(f"unknown level(s) {unknown}: use some of {list(DEFAULT_SCHEME.names)}")
        frame = frame[frame["level"].isin(levels)]
    return frame.reset_index(drop=True)
