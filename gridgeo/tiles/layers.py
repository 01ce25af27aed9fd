"""The layers of a tile set: a GeoDataFrame, the columns it carries, its zooms.

:class:`TileLayer` wraps any frame; :func:`grid_layers` and
:func:`station_layer` build the layers of the one map from gridgeo's own
frames, with the attributes the map needs and nothing more. Events and
addresses are never published point by point: turn events into counts per
unit or hexagon with :func:`gridgeo.tiles.event_counts` first.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import shapely

from gridgeo.crs import to_storage
from gridgeo.schema import DEFAULT_SCHEME, STATION_KINDS, CodeScheme, check

__all__ = ["DEFAULT_ZOOMS", "TileLayer", "boundary_layer", "grid_layers", "road_layer", "station_layer"]

DEFAULT_ZOOMS = {
    "town": (8, 16),
    "village": (10, 16),
    "grid1": (11, 16),
    "grid2": (11, 16),
    "grid3": (13, 16),
    "stations": (12, 16),
    "events": (11, 16),
    "roads": (12, 16),
    "boundaries": (10, 16),
}
"""Zoom range of each layer of the one map, ``name -> (minzoom, maxzoom)``."""

GRID_FIELDS = ("code", "name", "level", "parent")
STATION_FIELDS = ("station_id", "name", "kind", "grid_code")
ROAD_FIELDS = ("road_id", "name", "class")

_KINDS = {"Polygon": "polygon", "MultiPolygon": "polygon", "LineString": "line",
          "MultiLineString": "line", "Point": "point"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_MAX_ZOOM = 24


class TileLayer:
    """One layer of a tile set.

    The frame is brought into EPSG:4490 with :func:`gridgeo.crs.to_storage`
    and reduced to the ``fields`` it publishes: a tile carries those columns
    and nothing else, so leaving a column out of ``fields`` is how it is kept
    off the public map.

    Parameters
    ----------
    frame : GeoDataFrame
        Polygons (a grid level: simplified per zoom as a coverage, shared edges
        kept matched), lines, or points (a point is published only in the tile
        that holds it).
    name : str
        The layer's id in tiles and TileJSON: a letter or ``_`` then letters,
        digits, ``_.-``.
    minzoom, maxzoom : int, default 0 and 16
        Tiles outside this range hold nothing of the layer.
    fields : sequence of str, optional
        Columns to publish; default every column but the geometry. Numbers
        and booleans stay typed; anything else (dates, categories) is
        published as text. Missing values are left out of a feature.
    description : str
        Shown in TileJSON's ``vector_layers``.
    source : str, int or pyproj.CRS, optional
        What the coordinates are, when the frame does not say (``"gcj02"``
        for Amap data): see :func:`gridgeo.crs.to_storage`.

    Attributes
    ----------
    frame : GeoDataFrame
        The published columns and the geometry, in EPSG:4490.
    kind : {"polygon", "line", "point"}
    fields : dict
        Column -> type (``"String"``, ``"Number"`` or ``"Boolean"``).

    Raises
    ------
    ValueError
        If the name, zooms or fields are wrong, a geometry is missing or
        empty, or the geometry types are mixed; the message names the rows.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> plots = gpd.GeoDataFrame({"code": ["1"], "area": [2.5]}, geometry=[box(118.5, 24.8, 118.51, 24.81)],
    ...                          crs=4490)
    >>> layer = TileLayer(plots, "plots", minzoom=12, maxzoom=16)
    >>> layer.kind, layer.fields
    ('polygon', {'code': 'String', 'area': 'Number'})
    """

    def __init__(self, frame, name: str, *, minzoom: int = 0, maxzoom: int = 16, fields=None,
                 description: str = "", source=None):
        _check_name(name)
        _check_zooms(minzoom, maxzoom, name)
        what = f"layer {name!r}"
        frame = to_storage(frame, source=source, name=what)
        self.name = name
        self.minzoom = int(minzoom)
        self.maxzoom = int(maxzoom)
        self.description = description
        self.kind = _geometry_kind(frame, what)
        columns = _published_columns(frame, fields, what)
        self.frame = frame[[*columns, frame.geometry.name]].reset_index(drop=True)
        self.fields = {col: _field_type(self.frame[col]) for col in columns}

    def __repr__(self) -> str:
        return (f"TileLayer({self.name!r}, {len(self.frame)} {self.kind}s, "
                f"zooms {self.minzoom}-{self.maxzoom}, fields {list(self.fields)})")

    def properties(self) -> list[dict]:
        """The attributes of every feature, as MVT-encodable Python values.

        Missing values are left out; text columns become ``str``, numbers
        ``int`` or ``float``, booleans ``bool``.
        """
        rows = [{} for _ in range(len(self.frame))]
        for col, values in self.columns().items():
            for row, value in zip(rows, values):
                if value is not None:
                    row[col] = value
        return rows

    def columns(self) -> dict[str, list]:
        """The published columns, column by column: what :meth:`properties` holds, row by row.

        Each column is a list of MVT-encodable Python values (``str``,
        ``int``, ``float`` or ``bool``), None where a value is missing.

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely import Point
        >>> frame = gpd.GeoDataFrame({"name": ["a", None]}, geometry=[Point(118.5, 24.8)] * 2, crs=4490)
        >>> TileLayer(frame, "points").columns()
        {'name': ['a', None]}
        """
        return {col: _encodable(self.frame[col], kind) for col, kind in self.fields.items()}


def grid_layers(grids, *, figures=None, zooms=None, scheme: CodeScheme = DEFAULT_SCHEME, source=None):
    """One tile layer per grid level, with codes and the figures to map.

    Each layer carries ``code``, ``name``, ``level`` and ``parent`` and the
    columns of ``figures`` (joined on ``code``; a unit without figures gets
    missing values, which a tile leaves out).

    Parameters
    ----------
    grids : GeoDataFrame
        Grids of any levels (checked with :func:`gridgeo.schema.check`).
    figures : DataFrame, optional
        Figures per unit: a ``code`` column (or index) and the columns to map,
        e.g. households, events or coverage per grid.
    zooms : dict, optional
        ``level -> (minzoom, maxzoom)``; default :data:`DEFAULT_ZOOMS`
        (levels it does not name get 10-16).
    scheme : CodeScheme
    source : optional
        The coordinates' system when the frame does not say it.

    Returns
    -------
    list of TileLayer
        Top level first, named for the level.

    Examples
    --------
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> [(layer.name, layer.minzoom) for layer in grid_layers(s.grids)]
    [('town', 8), ('village', 10), ('grid1', 11), ('grid2', 11), ('grid3', 13)]
    """
    grids = check(to_storage(grids, source=source, name="grids"), "grids", scheme=scheme, name="grids")
    columns = list(GRID_FIELDS)
    if figures is not None:
        grids, extra = _join_figures(grids, figures)
        columns += extra
    zooms = {**DEFAULT_ZOOMS, **(zooms or {})}
    layers = []
    for level in scheme.names:
        units = grids[grids["level"] == level]
        if units.empty:
            continue
        minzoom, maxzoom = zooms.get(level, (10, 16))
        info = scheme.level(level)
        layers.append(TileLayer(units, level, minzoom=minzoom, maxzoom=maxzoom, fields=columns,
                                description=f"{info.label} ({info.label_en})".strip()))
    return layers


def station_layer(stations, *, minzoom: int = 12, maxzoom: int = 16, name: str = "stations", source=None):
    """The tile layer of service stations (网格服务站/点).

    Each station carries ``station_id``, ``name``, ``kind``, ``grid_code``
    and ``label``, the Chinese name of its kind.

    Parameters
    ----------
    stations : GeoDataFrame
        Checked with :func:`gridgeo.schema.check` (kind ``"stations"``).
    minzoom, maxzoom : int, default 12 and 16
    name : str, default "stations"
    source : optional
        The coordinates' system when the frame does not say it.

    Returns
    -------
    TileLayer

    Examples
    --------
    >>> from gridgeo import sample
    >>> station_layer(sample.load().stations).fields["label"]
    'String'
    """
    stations = check(to_storage(stations, source=source, name=name), "stations", name=name)
    labels = {kind: label for kind, (label, _) in STATION_KINDS.items()}
    stations["label"] = stations["kind"].map(labels).fillna("").astype("str")
    return TileLayer(stations, name, minzoom=minzoom, maxzoom=maxzoom, fields=[*STATION_FIELDS, "label"],
                     description="网格服务站/点 (service stations)")


def road_layer(roads, *, minzoom: int | None = None, maxzoom: int | None = None, name: str = "roads",
               source=None):
    """The tile layer of the roads: the ground under the grids, drawn on both pages.

    Each road carries ``road_id``, ``name`` and ``class`` (those of them the
    frame has; a road without a name leaves it out). Lines are simplified per
    zoom as the grids' edges are; a road is in every tile its line crosses.

    Parameters
    ----------
    roads : GeoDataFrame
        (Multi)LineStrings, e.g. the store's ``roads`` layer.
    minzoom, maxzoom : int, optional
        Default ``DEFAULT_ZOOMS["roads"]`` (12-16: street level; below that a
        town's roads are a grey smear).
    name : str, default "roads"
    source : optional
        The coordinates' system when the frame does not say it.

    Returns
    -------
    TileLayer

    Examples
    --------
    >>> from gridgeo import sample
    >>> layer = road_layer(sample.load().roads)
    >>> layer.kind, list(layer.fields), (layer.minzoom, layer.maxzoom)
    ('line', ['road_id', 'name', 'class'], (12, 16))
    """
    lo, hi = DEFAULT_ZOOMS["roads"]
    frame = to_storage(roads, source=source, name=name)
    fields = [c for c in ROAD_FIELDS if c in frame.columns]
    return TileLayer(frame, name, minzoom=lo if minzoom is None else minzoom, maxzoom=hi if maxzoom is None else maxzoom,
                     fields=fields, description="道路 (roads)")


BOUNDARY_FIELDS = ("boundary_set", "boundary_id", "name")


def boundary_layer(boundaries, *, name: str = "boundaries"):
    """The tile layer of other offices' areas (警格, 学区 ...), every set in one layer:
    each unit carries ``boundary_set``, ``boundary_id`` and ``name``; a map shows one
    set by filtering on ``boundary_set``.

    Examples
    --------
    >>> from gridgeo import sample
    >>> layer = boundary_layer(sample.load().boundaries())
    >>> layer.kind, list(layer.fields)
    ('polygon', ['boundary_set', 'boundary_id', 'name'])
    """
    frame = check(to_storage(boundaries, name=name), "boundaries", name=name)
    if "name" not in frame.columns:
        frame["name"] = frame["boundary_id"]
    frame["name"] = frame["name"].astype(object).where(frame["name"].notna(), "").astype("str")
    minzoom, maxzoom = DEFAULT_ZOOMS["boundaries"]
    return TileLayer(frame, name, minzoom=minzoom, maxzoom=maxzoom, fields=list(BOUNDARY_FIELDS),
                     description="其他部门的区域边界 (other offices' boundaries: 警格, 学区 ...)")


# --- steps ----------------------------------------------------------------------


def _check_name(name):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"layer name {name!r} is not usable in a tile URL: use a letter or _ "
                         "followed by letters, digits, _ . or -")


def _check_zooms(minzoom, maxzoom, name):
    if not (0 <= minzoom <= maxzoom <= _MAX_ZOOM):
        raise ValueError(f"layer {name!r}: zooms must satisfy 0 <= minzoom <= maxzoom <= {_MAX_ZOOM}, "
                         f"got minzoom={minzoom}, maxzoom={maxzoom}")


def _geometry_kind(frame, what) -> str:
    geoms = frame.geometry.array
    bad = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if bad.any():
        rows = list(frame.index[bad][:10])
        raise ValueError(f"{what}: rows {rows} ({bad.sum()} in all) have no geometry: "
                         "drop them (frame[~frame.geometry.is_empty]) or fix them")
    types = pd.unique(frame.geometry.geom_type)
    kinds = {_KINDS.get(t) for t in types}
    if None in kinds or len(kinds) > 1:
        raise ValueError(f"{what}: geometry types {sorted(types)} cannot share a layer: one layer holds "
                         "(Multi)Polygons, (Multi)LineStrings or Points; split it, or explode MultiPoints")
    return kinds.pop() if kinds else "polygon"


def _published_columns(frame, fields, what) -> list[str]:
    geometry = frame.geometry.name
    if fields is None:
        return [c for c in frame.columns if c != geometry]
    fields = [fields] if isinstance(fields, str) else list(fields)
    missing = [c for c in fields if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: fields {missing} are not columns of the frame; it has "
                         f"{[c for c in frame.columns if c != geometry]}")
    if geometry in fields:
        raise ValueError(f"{what}: the geometry column {geometry!r} is not a field")
    return fields


def _field_type(series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "Boolean"
    if pd.api.types.is_numeric_dtype(series):
        return "Number"
    return "String"


def _encodable(series, kind) -> list:
    """The column's values as Python scalars the MVT encoder accepts, None where missing."""
    missing = series.isna().to_numpy()
    if kind == "String":
        values = series.astype("str").tolist()
    elif kind == "Boolean":
        values = [bool(v) for v in series.fillna(False).tolist()]
    elif pd.api.types.is_integer_dtype(series):
        values = series.astype("Int64").fillna(0).astype(np.int64).tolist()
    else:
        numbers = series.astype("float64").to_numpy()
        values = numbers.tolist()
        missing = missing | ~np.isfinite(numbers)
    return [None if m else v for v, m in zip(values, missing)]


def _join_figures(grids, figures):
    figures = pd.DataFrame(figures)
    if "code" not in figures.columns:
        if figures.index.name != "code":
            raise ValueError("figures need a 'code' column (or an index named 'code') to join on the grids; "
                             f"got columns {list(figures.columns)}")
        figures = figures.reset_index()
    figures = figures.assign(code=figures["code"].astype("str"))
    duplicated = figures["code"][figures["code"].duplicated()]
    if not duplicated.empty:
        raise ValueError(f"figures list code(s) {list(pd.unique(duplicated))[:10]} more than once: "
                         "aggregate them to one row per unit first")
    extra = [c for c in figures.columns if c != "code"]
    clash = [c for c in extra if c in grids.columns]
    if clash:
        raise ValueError(f"figures columns {clash} are already columns of the grids: rename them")
    return grids.merge(figures, on="code", how="left"), extra
