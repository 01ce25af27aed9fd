"""Walking networks: road lines noded into a graph, points snapped onto it.

:func:`build` turns a road layer (LineStrings from GeoJSON, GeoPackage, any
file :func:`gridgeo.io.read` opens, or an OpenStreetMap ``.osm``/``.pbf``
extract through pyosmium) into a :class:`WalkNetwork`:

1. the lines are brought into storage (:func:`gridgeo.crs.to_storage`) and
   projected to one metric CRS (:func:`gridgeo.crs.metric_crs` of the roads,
   or the one the caller passes so that several layers share it);
2. every line is cut into its straight vertex-to-vertex segments, and
   segments are cut again where another segment crosses them or ends on them
   (``node_crossings=True``, for GIS layers drawn without topology; OSM ways
   meet only at shared nodes, so bridges stay bridges);
3. endpoints closer than ``precision_m`` are one node; the edges carry their
   length in metres on the ellipsoid (the measuring rule below), and the
   graph is a symmetric scipy sparse matrix;
4. connected pieces are labelled (0 = the largest) and reported, never
   dropped: a point snapped onto a piece with no station is reported as
   unreachable by the callers, not lost.

Points (addresses, stations, candidate sites) are snapped to the nearest
point of the nearest edge (:meth:`WalkNetwork.locate`, :func:`snap`); the
straight access distance from the point to the road is added to every
network distance. :func:`nearest` finds, for every origin, the nearest of
many sources in one multi-source Dijkstra pass (scipy.sparse.csgraph);
:func:`distances` lists every origin-destination pair within a walking limit.

Notes
-----
A walking distance here is ``access(origin) + path along the roads +
access(source)``, where the path starts and ends at the snapped positions on
their edges (both directions along the edge are considered, and two points on
the same edge may walk straight along it). Roads are walkable both ways;
crossings of different roads are junctions when ``node_crossings=True``.

The measuring rule: every length that enters a walking distance is measured
on the CGCS2000 ellipsoid (:data:`GEOD`, geodesics by pyproj.Geod on the
geographic coordinates), never in the metric CRS: an edge's length is the
geodesic between its two nodes, a point's access distance the geodesic from
the point to its snapped position, and its place along the edge the geodesic
from the edge's first node ``u`` to that position. The metric CRS serves
the geometry only: noding, merging nodes, and finding the nearest point of
the nearest edge (planar, so the snapped position may move by a hair with
the projection, and the distances, minimal there, by much less). So the
same roads and points give the same distances, to rounding, whatever metric
CRS the network is built in: a county's walks in a province's store are its
city's, where a planar length would be scaled by the projection's scale
factor (up to 7e-4 at 2.5° from a transverse Mercator's central meridian).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo import crs as gcrs

__all__ = [
    "NetworkError",
    "WalkNetwork",
    "Snapped",
    "WALK_EXCLUDED",
    "GEOD",
    "MEASURE",
    "build",
    "read_osm",
    "snap",
    "nearest",
    "distances",
]

log = logging.getLogger(__name__)

WALK_EXCLUDED = frozenset({
    "motorway", "motorway_link", "construction", "proposed", "raceway",
    "bus_guideway", "abandoned", "razed", "escape", "corridor",
})
"""OSM ``highway`` values nobody walks along (expressways, roads not built)."""

# Spacing of the sample points of the snapping index: a candidate edge is
# never more than half of it farther than its nearest sample point.
_INDEX_SPACING = 10.0
_INDEX_NEIGHBOURS = 4
# scipy's csgraph reads a stored 0 as "no edge": keep real zero lengths positive.
_TINY = 1e-9
_BATCH = 128  # sources per Dijkstra batch when full distance rows are needed

GEOD = gcrs.STORAGE_CRS.get_geod()
"""The CGCS2000 ellipsoid (a = 6,378,137 m, 1/f = 298.257222101) that walking lengths are measured on."""

MEASURE = "ellipsoid"
"""How walking lengths are measured (the module's measuring rule). Kept with what is derived from walks
(:mod:`gridgeo.derived`), so that walks measured otherwise (in the metric CRS, before this rule) are made
again rather than reused."""


class NetworkError(ValueError):
    """A road layer that cannot make a walking network, or points that
    cannot be placed on one; the message says what to do."""


# ----------------------------------------------------------------------------
# The network
# ----------------------------------------------------------------------------


@dataclass(eq=False)
class Snapped:
    """Where points meet a network: one entry per point, in input order.

    Attributes
    ----------
    index : pandas.Index
        The labels of the points.
    edge : ndarray of int
        The edge each point is snapped to.
    along_m : ndarray of float
        Distance along that edge from its first node ``u`` to the snapped
        position, in metres on the ellipsoid.
    access_m : ndarray of float
        Straight distance from the point to the snapped position, in metres
        on the ellipsoid (the geodesic).
    xy : ndarray of float, shape (n, 2)
        The points themselves in the network's metric CRS.
    """

    index: pd.Index
    edge: np.ndarray
    along_m: np.ndarray
    access_m: np.ndarray
    xy: np.ndarray

    def __len__(self) -> int:
        return len(self.edge)

    def take(self, positions) -> "Snapped":
        """The entries at ``positions`` (an integer or boolean array)."""
        return Snapped(self.index[positions], self.edge[positions], self.along_m[positions],
                       self.access_m[positions], self.xy[positions])


@dataclass(eq=False)
class WalkNetwork:
    """A walking graph in metres: nodes, straight edges, connected pieces.

    Build one with :func:`build`. Every coordinate is in :attr:`crs`, the
    metric CRS chosen for the roads (or passed to :func:`build`); every
    length is measured on the ellipsoid (the module's measuring rule).

    Attributes
    ----------
    crs : pyproj.CRS
        The metric CRS of every coordinate.
    node_xy : ndarray, shape (n_nodes, 2)
    edge_u, edge_v : ndarray of int
        The two nodes of every edge (``edge_u < edge_v``).
    edge_length : ndarray of float
        Length of every edge in metres: the geodesic between its nodes on
        the CGCS2000 ellipsoid (:data:`GEOD`).
    edge_road : ndarray of int
        Row position, in the road layer given to :func:`build`, of the line
        each edge comes from.
    node_component : ndarray of int
        The connected piece of every node; 0 is the piece with the most road
        length, then in decreasing length.
    roads : GeoDataFrame
        The road layer's attributes (no geometry), one row per input line,
        for :meth:`edges`.
    """

    crs: pyproj.CRS
    node_xy: np.ndarray
    edge_u: np.ndarray
    edge_v: np.ndarray
    edge_length: np.ndarray
    edge_road: np.ndarray
    node_component: np.ndarray
    roads: pd.DataFrame
    graph: sparse.csr_matrix = dataclasses.field(repr=False, default=None)
    _tree: cKDTree = dataclasses.field(repr=False, default=None)
    _sample_edge: np.ndarray = dataclasses.field(repr=False, default=None)
    _strtree: shapely.STRtree = dataclasses.field(repr=False, default=None)
    _node_lonlat: np.ndarray = dataclasses.field(repr=False, default=None)
    _to_lonlat: pyproj.Transformer = dataclasses.field(repr=False, default=None)

    def __post_init__(self):
        n = len(self.node_xy)
        if self._to_lonlat is None:
            self._to_lonlat = pyproj.Transformer.from_crs(self.crs, gcrs.STORAGE_CRS, always_xy=True)
        if self._node_lonlat is None:
            self._node_lonlat = self.lonlat(self.node_xy)
        if self.graph is None:
            self.graph = _symmetric_graph(self.edge_u, self.edge_v, self.edge_length, n)
        if self._tree is None:
            self._tree, self._sample_edge = _sample_index(self)

    def __repr__(self) -> str:
        pieces = int(self.node_component.max()) + 1 if len(self.node_component) else 0
        crs = self.crs.name if self.crs.name != "unknown" else self.crs.to_proj4()
        return (f"WalkNetwork({self.n_nodes:,} nodes, {self.n_edges:,} edges, "
                f"{self.edge_length.sum() / 1000:,.1f} km, {pieces} piece(s), crs={crs!r})")

    @property
    def n_nodes(self) -> int:
        return len(self.node_xy)

    def lonlat(self, xy) -> np.ndarray:
        """Coordinates in :attr:`crs` as longitude and latitude (EPSG:4490), shape (n, 2)."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        return np.column_stack(self._to_lonlat.transform(xy[:, 0], xy[:, 1]))

    @property
    def n_edges(self) -> int:
        return len(self.edge_u)

    @property
    def edge_component(self) -> np.ndarray:
        """The connected piece of every edge."""
        return self.node_component[self.edge_u]

    def degree(self) -> np.ndarray:
        """Number of edges at every node."""
        return np.bincount(np.concatenate([self.edge_u, self.edge_v]), minlength=self.n_nodes)

    def components(self) -> pd.DataFrame:
        """One row per connected piece: its nodes, edges, road length and extent.

        Returns
        -------
        DataFrame
            Indexed by ``component`` (0 = the largest by length), with
            ``nodes``, ``edges``, ``length_m`` and ``share_length`` (of the
            whole network).

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely import LineString
        >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)]),
        ...                                    LineString([(118.60, 24.78), (118.601, 24.78)])], crs=4490)
        >>> build(roads).components()["edges"].tolist()
        [1, 1]
        """
        comp = self.edge_component
        n_comp = int(self.node_component.max()) + 1 if self.n_nodes else 0
        length = np.bincount(comp, weights=self.edge_length, minlength=n_comp)
        out = pd.DataFrame({
            "nodes": np.bincount(self.node_component, minlength=n_comp),
            "edges": np.bincount(comp, minlength=n_comp),
            "length_m": length,
            "share_length": length / max(length.sum(), _TINY),
        })
        out.index.name = "component"
        return out

    def edges(self, *, crs=gcrs.STORAGE_CRS) -> gpd.GeoDataFrame:
        """The edges as a GeoDataFrame (``u``, ``v``, ``length_m``,
        ``component``, the road's attributes, a 2-point LineString).

        Parameters
        ----------
        crs : CRS, default EPSG:4490
            Pass ``network.crs`` for the metric coordinates.

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely import LineString
        >>> roads = gpd.GeoDataFrame({"name": ["和福街"]},
        ...     geometry=[LineString([(118.50, 24.78), (118.51, 24.78), (118.51, 24.79)])], crs=4490)
        >>> net = build(roads)
        >>> net.edges()[["name", "length_m"]].round(0).values.tolist()
        [['和福街', 1011.0], ['和福街', 1108.0]]
        """
        a, b = self.node_xy[self.edge_u], self.node_xy[self.edge_v]
        lines = shapely.linestrings(np.stack([a, b], axis=1))
        frame = pd.DataFrame({"u": self.edge_u, "v": self.edge_v, "length_m": self.edge_length,
                              "component": self.edge_component})
        attrs = self.roads.iloc[self.edge_road].reset_index(drop=True)
        frame = pd.concat([frame, attrs.drop(columns=[c for c in attrs.columns if c in frame.columns])], axis=1)
        out = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(lines, crs=self.crs))
        return out.to_crs(crs)

    def nodes(self, *, crs=gcrs.STORAGE_CRS) -> gpd.GeoDataFrame:
        """The nodes as points with their ``degree`` and ``component``.

        Junctions (``degree >= 3``) are the usual candidate sites for new
        stations (:mod:`gridgeo.siting`).

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely import LineString
        >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)]),
        ...                                    LineString([(118.505, 24.77), (118.505, 24.79)])], crs=4490)
        >>> build(roads).nodes()["degree"].tolist()  # the crossing became a junction
        [1, 1, 4, 1, 1]
        """
        pts = shapely.points(self.node_xy)
        frame = pd.DataFrame({"degree": self.degree(), "component": self.node_component})
        return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(pts, crs=self.crs)).to_crs(crs)

    def to_networkx(self):
        """The graph as a ``networkx.Graph`` (node attributes ``x``, ``y`` in
        the metric CRS, edge attribute ``length``), to leave gridgeo with.

        Examples
        --------
        >>> import geopandas as gpd, networkx as nx
        >>> from shapely import LineString
        >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)])], crs=4490)
        >>> g = build(roads).to_networkx()
        >>> round(nx.shortest_path_length(g, 0, 1, weight="length"))
        1011
        """
        import networkx as nx

        g = nx.Graph(crs=self.crs.srs)
        g.add_nodes_from((i, {"x": x, "y": y}) for i, (x, y) in enumerate(self.node_xy.tolist()))
        g.add_weighted_edges_from(zip(self.edge_u.tolist(), self.edge_v.tolist(), self.edge_length.tolist()),
                                  weight="length")
        return g

    def locate(self, points, *, source=None, name: str = "points") -> Snapped:
        """Snap points to their nearest edge (the arrays behind :func:`snap`).

        Parameters
        ----------
        points : GeoDataFrame or GeoSeries of points
            In any CRS :func:`gridgeo.crs.to_storage` understands.
        source : str, int or CRS, optional
            What the coordinates are, when the frame does not say (or says
            wrong): ``"wgs84"``, ``"gcj02"``, ``"bd09"``, an EPSG code...
        name : str
            What to call the points in messages.

        Returns
        -------
        Snapped

        Examples
        --------
        >>> import geopandas as gpd
        >>> from shapely import LineString, Point
        >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)])], crs=4490)
        >>> net = build(roads)
        >>> s = net.locate(gpd.GeoSeries([Point(118.505, 24.7805)], crs=4490))
        >>> round(float(s.access_m[0])), round(float(s.along_m[0]))
        (55, 506)
        """
        lonlat, xy = _metric_xy(points, self.crs, source, name)
        if self.n_edges == 0:
            raise NetworkError("the network has no edges: nothing to snap to")
        edge, t = _nearest_edges(self, xy)
        along, access = _on_ellipsoid(self, edge, t, xy, lonlat)
        index = points.index if hasattr(points, "index") else pd.RangeIndex(len(xy))
        return Snapped(index, edge, along, access, xy)

    def node_distances(self, sources: Snapped, *, limit_m: float | None = None, min_only: bool = True):
        """Dijkstra from snapped sources: distances to every node.

        With ``min_only=True`` one multi-source pass: ``(dist, nearest)``,
        the distance from the nearest source (its access distance included)
        and that source's position in ``sources`` (-1 where none is reached).
        With ``min_only=False`` a dense ``(len(sources), n_nodes)`` array.
        """
        from scipy.sparse.csgraph import dijkstra
        graph, first = _with_sources(self, sources)
        indices = np.arange(first, first + len(sources))
        limit = np.inf if limit_m is None else float(limit_m)
        if min_only:
            dist, _, origin = dijkstra(graph, directed=True, indices=indices, min_only=True,
                                       return_predecessors=True, limit=limit)
            nearest = np.where(origin >= 0, origin - first, -1)
            return dist[:first], nearest[:first]
        return dijkstra(graph, directed=True, indices=indices, limit=limit)[:, :first]


def _symmetric_graph(u, v, length, n):
    from scipy import sparse
    w = np.maximum(length, _TINY)
    return sparse.csr_matrix((np.concatenate([w, w]), (np.concatenate([u, v]), np.concatenate([v, u]))),
                             shape=(n, n))


def _sample_index(net: WalkNetwork):
    """A KD-tree over points every few metres along every edge (endpoints included)."""
    from scipy.spatial import cKDTree
    if net.n_edges == 0:
        return cKDTree(np.zeros((0, 2))), np.zeros(0, dtype=np.int64)
    # spaced in the metric CRS, where the snapping is done (the ground length may be shorter)
    planar = np.hypot(*(net.node_xy[net.edge_v] - net.node_xy[net.edge_u]).T)
    pieces = np.maximum(np.ceil(planar / _INDEX_SPACING).astype(np.int64), 1)
    edge = np.repeat(np.arange(net.n_edges), pieces + 1)
    start = np.repeat(np.cumsum(pieces + 1) - (pieces + 1), pieces + 1)
    frac = (np.arange(len(edge)) - start) / np.repeat(pieces, pieces + 1)
    a, b = net.node_xy[net.edge_u[edge]], net.node_xy[net.edge_v[edge]]
    pts = a + (b - a) * frac[:, None]
    return cKDTree(pts), edge


# ----------------------------------------------------------------------------
# build
# ----------------------------------------------------------------------------


def build(roads, *, source=None, metric=None, layer=None, node_crossings: bool | None = None,
          precision_m: float = 0.01, name: str | None = None) -> WalkNetwork:
    """Build a walking network from road lines.

    The lines are projected to one metric CRS, cut into straight segments,
    noded where they cross or end on one another (``node_crossings``), and
    joined at endpoints closer than ``precision_m``; each edge's length is
    the geodesic between its nodes (the module's measuring rule). Disconnected pieces are
    kept and labelled (:meth:`WalkNetwork.components`); a warning is logged
    when there is more than one.

    Parameters
    ----------
    roads : GeoDataFrame, GeoSeries or path
        LineStrings or MultiLineStrings (other geometries are refused). A
        path is read with :func:`gridgeo.io.read` (GeoJSON, GeoPackage,
        Shapefile, GeoParquet...), or with :func:`read_osm` when it ends in
        ``.osm``, ``.osm.pbf``, ``.pbf`` or ``.osm.bz2``.
    source : str, int or CRS, optional
        What the coordinates are when the layer does not say (``"wgs84"``,
        ``"gcj02"``, ``"bd09"``, an EPSG code). Roads in degrees are always
        projected to metres.
    metric : CRS, optional
        The metric CRS to work in; default :func:`gridgeo.crs.metric_crs` of
        the roads. Pass the one of the grids to share it with other layers.
    layer : str, optional
        The layer of a multi-layer file.
    node_crossings : bool, optional
        Make a junction wherever two lines cross or one ends on another
        without a shared vertex. Default True for line layers, False for OSM
        (whose ways meet at shared nodes; a bridge crosses without meeting).
    precision_m : float, default 0.01
        Points closer than this (on a grid of this size) are one node.
    name : str, optional
        What to call the layer in messages.

    Returns
    -------
    WalkNetwork

    Raises
    ------
    NetworkError
        If the layer is empty or holds no lines.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString
    >>> roads = gpd.GeoDataFrame(geometry=[
    ...     LineString([(118.50, 24.78), (118.51, 24.78)]),       # two roads crossing
    ...     LineString([(118.505, 24.775), (118.505, 24.785)])],  # with no shared vertex
    ...     crs=4490)
    >>> net = build(roads)
    >>> net.n_nodes, net.n_edges, round(float(net.edge_length.sum()))
    (5, 4, 2119)
    """
    frame, name, osm = _road_frame(roads, source=source, layer=layer, name=name)
    if node_crossings is None:
        node_crossings = not osm
    metric = gcrs.metric_crs(frame) if metric is None else gcrs.metric_crs(None, proj=metric)
    a, b, road = _segments(frame, metric)
    if node_crossings:
        a, b, road = _node_crossings(a, b, road, precision_m)
    nodes, u, v, _, road = _merge_nodes(a, b, road, precision_m)
    to_lonlat = pyproj.Transformer.from_crs(metric, gcrs.STORAGE_CRS, always_xy=True)
    lonlat = np.column_stack(to_lonlat.transform(nodes[:, 0], nodes[:, 1]))
    length = _geodesic(lonlat[u], lonlat[v])
    component = _components(nodes, u, v, length)
    net = WalkNetwork(crs=metric, node_xy=nodes, edge_u=u, edge_v=v, edge_length=length, edge_road=road,
                      node_component=component, roads=pd.DataFrame(frame.drop(columns=frame.geometry.name)),
                      _node_lonlat=lonlat, _to_lonlat=to_lonlat)
    _report_pieces(net, name)
    return net


def _road_frame(roads, *, source, layer, name):
    """(roads in EPSG:4490 with LineString rows only, name, came from OSM)."""
    osm = False
    if isinstance(roads, (str, os.PathLike)):
        path = os.fspath(roads)
        name = name or path
        if path.lower().endswith((".osm", ".pbf", ".osm.bz2", ".osm.gz")):
            roads, osm = read_osm(path), True
        else:
            from gridgeo import io

            roads = io.read(path, layer=layer, crs=source)
    name = name or "roads"
    if isinstance(roads, gpd.GeoSeries):
        roads = gpd.GeoDataFrame(geometry=roads)
    if not isinstance(roads, gpd.GeoDataFrame):
        raise TypeError(f"{name} should be a GeoDataFrame of LineStrings or a file path, got {type(roads).__name__}")
    if len(roads) == 0:
        raise NetworkError(f"{name} is empty: a walking network needs road lines "
                           "(or use straight-line distances: method='straight')")
    roads = gcrs.to_storage(roads, source=source, name=name)
    kinds = shapely.get_type_id(roads.geometry.array)
    bad = ~np.isin(kinds, [1, 5])  # LineString, MultiLineString
    missing = kinds < 0
    if bad.all():
        raise NetworkError(f"{name} holds no LineStrings (found {sorted(set(roads.geom_type.dropna()))}): "
                           "give the road centre lines")
    if bad.any():
        rows = list(roads.index[bad & ~missing][:5])
        log.warning("%s: %d row(s) are not lines and were left out (%d without geometry; e.g. rows %s)",
                    name, int(bad.sum()), int(missing.sum()), rows)
        roads = roads[~bad]
    return roads.reset_index(drop=True), name, osm


def _segments(frame, metric):
    """Straight vertex-to-vertex segments in metres: start, end, road row."""
    to_m = pyproj.Transformer.from_crs(gcrs.STORAGE_CRS, metric, always_xy=True)
    lines, road = shapely.get_parts(frame.geometry.array, return_index=True)
    coords, which = shapely.get_coordinates(lines, return_index=True)
    x, y = to_m.transform(coords[:, 0], coords[:, 1])
    xy = np.column_stack([x, y])
    same = which[1:] == which[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    return a, b, road[which[:-1][same]]


def _node_crossings(a, b, road, precision_m):
    """Cut segments where others cross them or end on them."""
    segs = shapely.linestrings(np.stack([a, b], axis=1))
    # within the precision, not "intersects": projecting a T-junction drawn in
    # degrees can leave the end a hair off the other line
    i, j = shapely.STRtree(segs).query(segs, predicate="dwithin", distance=precision_m)
    keep = i < j
    i, j = i[keep], j[keep]
    cut_seg, cut_xy = _cuts(a, b, i, j, precision_m)
    if len(cut_seg) == 0:
        return a, b, road
    log.info("noding: %d crossing or touching point(s) cut %d segment(s)", len(cut_seg), len(np.unique(cut_seg)))
    return _split_segments(a, b, road, cut_seg, cut_xy)


def _cuts(a, b, i, j, tol):
    """Points where segment pairs (i, j) meet inside one of them: (segment, xy)."""
    segs, pts = [], []
    # an endpoint of one segment on the inside of the other (T-junction, overlap)
    for this, other in ((i, j), (j, i)):
        for end in (a, b):
            p = end[this]
            t, dist = _project(p, a[other], b[other])
            length = np.hypot(*(b[other] - a[other]).T)
            inside = (dist <= tol) & (t * length > tol) & ((1 - t) * length > tol)
            segs.append(other[inside])
            pts.append(p[inside])
    # proper crossings: both segments cut at one computed point
    r, s = b[i] - a[i], b[j] - a[j]
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    qp = a[j] - a[i]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denom
        w = (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / denom
    len_r, len_s = np.hypot(*r.T), np.hypot(*s.T)
    cross = ((denom != 0) & (t * len_r > tol) & ((1 - t) * len_r > tol)
             & (w * len_s > tol) & ((1 - w) * len_s > tol))
    x = a[i][cross] + r[cross] * t[cross][:, None]
    segs += [i[cross], j[cross]]
    pts += [x, x]
    return np.concatenate(segs), np.concatenate(pts)


def _project(p, a, b):
    """Parameter (0..1) of the point of segment a-b nearest to p, and the distance."""
    d = b - a
    dd = (d * d).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dd > 0, ((p - a) * d).sum(axis=1) / dd, 0.0)
    t = np.clip(t, 0.0, 1.0)
    q = a + d * t[:, None]
    return t, np.hypot(*(p - q).T)


def _split_segments(a, b, road, cut_seg, cut_xy):
    n = len(a)
    t, _ = _project(cut_xy, a[cut_seg], b[cut_seg])
    seg = np.concatenate([np.arange(n), cut_seg, np.arange(n)])
    pos = np.concatenate([np.zeros(n), t, np.ones(n)])
    xy = np.concatenate([a, cut_xy, b])
    order = np.lexsort((pos, seg))
    seg, xy = seg[order], xy[order]
    same = seg[1:] == seg[:-1]
    return xy[:-1][same], xy[1:][same], road[seg[:-1][same]]


def _merge_nodes(a, b, road, precision_m):
    """Nodes from endpoints on a grid of `precision_m`; edges without loops or duplicates
    (and their planar lengths)."""
    xy = np.concatenate([a, b])
    key = np.round(xy / precision_m).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    nodes = xy[first]
    m = len(a)
    u, v = inverse[:m], inverse[m:]
    lo, hi = np.minimum(u, v), np.maximum(u, v)
    length = np.hypot(*(nodes[hi] - nodes[lo]).T)
    ok = lo != hi
    lo, hi, length, road = lo[ok], hi[ok], length[ok], road[ok]
    # the same node pair twice (overlapping lines): keep the shortest
    order = np.lexsort((length, hi, lo))
    lo, hi, length, road = lo[order], hi[order], length[order], road[order]
    first_of_pair = np.ones(len(lo), dtype=bool)
    first_of_pair[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, length, road = lo[first_of_pair], hi[first_of_pair], length[first_of_pair], road[first_of_pair]
    # drop nodes no edge uses (both ends of a zero-length segment merged)
    used = np.zeros(len(nodes), dtype=bool)
    used[lo] = used[hi] = True
    renumber = np.cumsum(used) - 1
    return nodes[used], renumber[lo], renumber[hi], length, road


def _components(nodes, u, v, length):
    from scipy.sparse.csgraph import connected_components
    n = len(nodes)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, labels = connected_components(_symmetric_graph(u, v, length, n), directed=False)
    total = np.bincount(labels[u], weights=length, minlength=labels.max() + 1)
    rank = np.empty_like(total, dtype=np.int64)
    rank[np.argsort(-total, kind="stable")] = np.arange(len(total))
    return rank[labels]


def _report_pieces(net, name):
    pieces = net.components()
    if len(pieces) > 1:
        small = pieces.iloc[1:]
        log.warning(
            "%s: the network has %d disconnected pieces; the largest holds %.1f%% of the road length, "
            "the %d others %.1f km together. Points snapped onto them reach only stations on the same piece "
            "(see WalkNetwork.components())", name, len(pieces), 100 * pieces["share_length"].iloc[0],
            len(small), small["length_m"].sum() / 1000)


# ----------------------------------------------------------------------------
# OpenStreetMap
# ----------------------------------------------------------------------------


def read_osm(path, *, exclude=WALK_EXCLUDED) -> gpd.GeoDataFrame:
    """Read the walkable ways of an OpenStreetMap extract as road lines.

    Uses pyosmium (the ``osm`` extra), which reads ``.osm`` XML, ``.osm.pbf``
    and compressed XML alike. A way is kept when it has a ``highway`` tag not
    in `exclude`, is not ``foot=no``, and is not ``access=no``/``private``
    unless ``foot`` says pedestrians may use it.

    Parameters
    ----------
    path : str or path
    exclude : set of str
        ``highway`` values to leave out; default :data:`WALK_EXCLUDED`.

    Returns
    -------
    GeoDataFrame
        ``osm_id``, ``highway``, ``name`` and a LineString per way, in
        EPSG:4490 (OSM coordinates are WGS84, taken as CGCS2000).

    Examples
    --------
    >>> import tempfile
    >>> xml = '''<osm version="0.6">
    ... <node id="1" lat="24.78" lon="118.50"/><node id="2" lat="24.78" lon="118.51"/>
    ... <way id="7"><nd ref="1"/><nd ref="2"/><tag k="highway" v="residential"/></way>
    ... </osm>'''
    >>> path = tempfile.mktemp(suffix=".osm")
    >>> _ = open(path, "w").write(xml)
    >>> read_osm(path)[["osm_id", "highway"]].values.tolist()
    [[7, 'residential']]
    """
    try:
        import osmium
    except ImportError:  # pragma: no cover - the osm extra is part of dev
        raise ImportError("reading OpenStreetMap files needs pyosmium: pip install 'gridgeo[osm]'") from None
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: check the path")
    ids, kinds, names, wkbs = [], [], [], []
    factory = osmium.geom.WKBFactory()
    processor = (osmium.FileProcessor(path, osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations().with_filter(osmium.filter.KeyFilter("highway")))
    try:
        for way in processor:
            if not way.is_way() or not _walkable(way.tags, exclude):
                continue
            try:
                wkbs.append(factory.create_linestring(way))
            except osmium.InvalidLocationError:
                log.warning("%s: way %d refers to nodes not in the file; left out", path, way.id)
                continue
            except RuntimeError:  # fewer than two distinct locations
                continue
            ids.append(way.id)
            kinds.append(way.tags.get("highway"))
            names.append(way.tags.get("name", ""))
    except RuntimeError as exc:
        raise NetworkError(f"{path}: not a readable OpenStreetMap file ({exc})") from None
    geoms = shapely.from_wkb(np.array(wkbs, dtype=object)) if wkbs else np.array([], dtype=object)
    frame = gpd.GeoDataFrame({"osm_id": np.array(ids, dtype=np.int64), "highway": pd.array(kinds, dtype="str"),
                              "name": pd.array(names, dtype="str")},
                             geometry=gpd.GeoSeries(geoms, crs=4326))
    return gcrs.to_storage(frame, source="wgs84", name=path)


def _walkable(tags, exclude) -> bool:
    if tags.get("highway") in exclude:
        return False
    foot = tags.get("foot")
    if foot == "no":
        return False
    if tags.get("access") in ("no", "private") and foot not in ("yes", "designated", "permissive"):
        return False
    return True


# ----------------------------------------------------------------------------
# Snapping
# ----------------------------------------------------------------------------


def snap(points, network: WalkNetwork, *, source=None, name: str = "points") -> gpd.GeoDataFrame:
    """Snap points to the nearest point of the nearest road.

    Parameters
    ----------
    points : GeoDataFrame or GeoSeries of points
    network : WalkNetwork
    source : str, int or CRS, optional
        What the coordinates are, when the frame does not say.
    name : str
        What to call the points in messages.

    Returns
    -------
    GeoDataFrame
        Indexed like `points`: ``edge``, ``u``, ``v``, ``along_m`` (from
        ``u``), ``access_m`` (straight distance to the road), ``component``,
        and the snapped position as geometry, in EPSG:4490.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString, Point
    >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)])], crs=4490)
    >>> s = snap(gpd.GeoSeries([Point(118.505, 24.7805)], crs=4490), build(roads))
    >>> s[["edge", "access_m"]].round(1).values.tolist()
    [[0.0, 55.4]]
    """
    s = network.locate(points, source=source, name=name)
    a, b = network.node_xy[network.edge_u[s.edge]], network.node_xy[network.edge_v[s.edge]]
    length = network.edge_length[s.edge]
    frac = np.divide(s.along_m, length, out=np.zeros_like(s.along_m), where=length > 0)
    on_road = a + (b - a) * frac[:, None]
    frame = pd.DataFrame({
        "edge": s.edge, "u": network.edge_u[s.edge], "v": network.edge_v[s.edge], "along_m": s.along_m,
        "access_m": s.access_m, "component": network.node_component[network.edge_u[s.edge]],
    }, index=s.index)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(shapely.points(on_road), index=s.index,
                                                          crs=network.crs)).to_crs(gcrs.STORAGE_CRS)


def _metric_xy(points, metric, source, name):
    if isinstance(points, gpd.GeoDataFrame):
        geoms = points.geometry
    elif isinstance(points, gpd.GeoSeries):
        geoms = points
    else:
        raise TypeError(f"{name} should be a GeoDataFrame or GeoSeries of points, got {type(points).__name__}")
    geoms = gcrs.to_storage(geoms, source=source, name=name)
    kinds = shapely.get_type_id(geoms.array)
    bad = kinds != 0
    if bad.any():
        rows = list(geoms.index[bad][:5])
        raise NetworkError(f"{name}: {int(bad.sum())} row(s) are not points (e.g. rows {rows}); "
                           "give one point per feature (use .representative_point() for polygons)")
    empty = shapely.is_empty(geoms.array)
    if empty.any():
        raise NetworkError(f"{name}: {int(empty.sum())} point(s) are empty (e.g. rows {list(geoms.index[empty][:5])}): "
                           "geocode them or drop them first")
    lonlat = shapely.get_coordinates(geoms.array)
    to_m = pyproj.Transformer.from_crs(gcrs.STORAGE_CRS, metric, always_xy=True)
    return lonlat, np.column_stack(to_m.transform(lonlat[:, 0], lonlat[:, 1]))


def _nearest_edges(net: WalkNetwork, xy):
    """(edge, t) of the nearest edge to every point, exactly, in the metric CRS: ``t``
    (0..1) is where on the edge its nearest point lies.

    Candidates are the edges of the k nearest index samples. Samples lie at
    most ``h = _INDEX_SPACING`` apart along every edge, ends included, so an
    edge at distance ``d`` has a sample within ``sqrt(d**2 + (h/2)**2)``: an
    edge with no sample among the k nearest (all at least ``r_k`` away) is
    at least ``sqrt(r_k**2 - (h/2)**2)`` away. Points whose best candidate
    is not provably nearer than that are settled by an exact STRtree query.
    """
    if len(xy) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    k = min(_INDEX_NEIGHBOURS, len(net._sample_edge))
    radius, sample = net._tree.query(xy, k=k, workers=-1)
    radius, sample = radius.reshape(len(xy), k), sample.reshape(len(xy), k)
    cand = net._sample_edge[sample]
    t, d2 = _project_many(net, xy, cand)
    best = np.argmin(d2, axis=1)
    rows = np.arange(len(xy))
    edge, frac, best_d2 = cand[rows, best], t[rows, best], d2[rows, best]
    unsure = (best_d2 > radius[:, -1] ** 2 - (_INDEX_SPACING / 2) ** 2) & (k < len(net._sample_edge))
    if unsure.any():
        edge[unsure], frac[unsure] = _exact_nearest(net, xy[unsure])
    return edge, frac


def _project_many(net, xy, cand):
    """Parameter along and squared distance from every point to each of its candidate edges."""
    ax, ay = net.node_xy[net.edge_u, 0], net.node_xy[net.edge_u, 1]
    dx, dy = net.node_xy[net.edge_v, 0] - ax, net.node_xy[net.edge_v, 1] - ay
    inv = 1.0 / np.maximum(dx * dx + dy * dy, _TINY)
    cdx, cdy = dx[cand], dy[cand]
    qx = xy[:, :1] - ax[cand]
    qy = xy[:, 1:] - ay[cand]
    t = (qx * cdx + qy * cdy) * inv[cand]
    np.clip(t, 0.0, 1.0, out=t)
    qx -= t * cdx
    qy -= t * cdy
    return t, qx * qx + qy * qy


def _exact_nearest(net, xy):
    if net._strtree is None:
        a, b = net.node_xy[net.edge_u], net.node_xy[net.edge_v]
        net._strtree = shapely.STRtree(shapely.linestrings(np.stack([a, b], axis=1)))
    _, edge = net._strtree.query_nearest(shapely.points(xy), all_matches=False)
    t, _ = _project(xy, net.node_xy[net.edge_u[edge]], net.node_xy[net.edge_v[edge]])
    return edge, t


def _on_ellipsoid(net: WalkNetwork, edge, t, xy, lonlat=None):
    """(along, access) in metres on the ellipsoid of points snapped at ``t`` (0..1, in the metric CRS)
    of their edges: the geodesics from the edge's node ``u`` and from the point (``xy`` in the metric
    CRS; ``lonlat``, when known, the same points in EPSG:4490) to the snapped position."""
    if len(edge) == 0:
        return np.zeros(0), np.zeros(0)
    a, b = net.node_xy[net.edge_u[edge]], net.node_xy[net.edge_v[edge]]
    on_road = net.lonlat(a + (b - a) * t[:, None])
    if lonlat is None:
        lonlat = net.lonlat(xy)
    start = net._node_lonlat[net.edge_u[edge]]
    along = np.where(t > 0, _geodesic(start, on_road), 0.0)
    along = np.where(t < 1, np.minimum(along, net.edge_length[edge]), net.edge_length[edge])
    return along, _geodesic(lonlat, on_road)


# Below this length the geodesic is taken from the ellipsoid's radii of curvature at the mean latitude
# (within 5 micrometres of pyproj's up to 1 km, checked in the tests); longer ones from pyproj.Geod.
_SHORT_M = 1000.0


def _geodesic(p, q) -> np.ndarray:
    """Length in metres of the geodesics on the CGCS2000 ellipsoid from points ``p`` to ``q`` (lon, lat rows).

    Short ones (an address's step to its road, a place along a road; under ``_SHORT_M``) as
    ``hypot(M dphi, N cos(phi) dlambda)`` with the meridian and prime-vertical radii ``M``, ``N`` at the
    mean latitude ``phi``: a few times faster than pyproj.Geod, which nearest-station coverage computed
    1.6 million times for the city (0.8 s of its 3 s), and as exact for walking (micrometres). Longer
    ones by pyproj.Geod.
    """
    if len(p) == 0:
        return np.zeros(0)
    lat1, lat2 = np.radians(p[:, 1]), np.radians(q[:, 1])
    mean = 0.5 * (lat1 + lat2)
    sin = np.sin(mean)
    w2 = 1.0 - GEOD.es * sin * sin
    across = GEOD.a / np.sqrt(w2)  # N, the prime vertical's radius
    along = across * (1.0 - GEOD.es) / w2  # M, the meridian's
    dist = np.hypot(along * (lat2 - lat1), across * np.cos(mean) * np.radians(q[:, 0] - p[:, 0]))
    far = np.flatnonzero(~(dist < _SHORT_M))  # (NaN too)
    if far.size:
        _, _, dist[far] = GEOD.inv(p[far, 0], p[far, 1], q[far, 0], q[far, 1], return_back_azimuth=False)
    return dist


# ----------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------


def _with_sources(net: WalkNetwork, sources: Snapped):
    """The graph with one extra node per source, linked to its edge's two ends.

    Returns (graph, first): source ``i`` is node ``first + i``. The links are
    directed (source -> road), so no path runs through a source.
    """
    from scipy import sparse
    n, k = net.n_nodes, len(sources)
    u, v = net.edge_u[sources.edge], net.edge_v[sources.edge]
    length = net.edge_length[sources.edge]
    to_u = sources.access_m + sources.along_m
    to_v = sources.access_m + (length - sources.along_m)
    g = net.graph.tocoo()
    rows = np.concatenate([g.row, np.arange(n, n + k), np.arange(n, n + k)])
    cols = np.concatenate([g.col, u, v])
    vals = np.concatenate([g.data, np.maximum(to_u, _TINY), np.maximum(to_v, _TINY)])
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n + k, n + k)), n


def _via_ends(net, origins: Snapped, dist_u, dist_v):
    """Distance from origins to whatever `dist_*` measures at their edge's ends."""
    length = net.edge_length[origins.edge]
    return origins.access_m + np.minimum(dist_u + origins.along_m, dist_v + (length - origins.along_m))


def _same_edge(origins: Snapped, sources: Snapped):
    """Pairs (origin, source) on the same edge and their straight-along-the-edge distance."""
    left = pd.DataFrame({"edge": origins.edge, "o": np.arange(len(origins))})
    right = pd.DataFrame({"edge": sources.edge, "s": np.arange(len(sources))})
    pairs = left.merge(right, on="edge")
    o, s = pairs["o"].to_numpy(), pairs["s"].to_numpy()
    d = (origins.access_m[o] + np.abs(origins.along_m[o] - sources.along_m[s]) + sources.access_m[s])
    return o, s, d


def nearest(network: WalkNetwork, origins, sources, *, limit_m: float | None = None,
            name: str = "origins", sources_name: str = "sources") -> pd.DataFrame:
    """The nearest source of every origin by walking distance, in one pass.

    One multi-source Dijkstra (scipy.sparse.csgraph) from all sources at
    once gives every node its nearest source; each origin then takes the
    better of its edge's two ends (or a source on its own edge).

    Parameters
    ----------
    network : WalkNetwork
    origins, sources : GeoDataFrame, GeoSeries of points, or Snapped
    limit_m : float, optional
        Stop searching beyond this walking distance (faster); origins
        farther than that from every source get no source.
    name, sources_name : str
        What to call the two layers in messages.

    Returns
    -------
    DataFrame
        Indexed like `origins`: ``source`` (the label of the nearest source,
        missing when none is reached), ``distance_m`` (access + road + the
        source's access; NaN when none is reached), ``access_m`` and
        ``component``.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString, Point
    >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.52, 24.78)])], crs=4490)
    >>> net = build(roads)
    >>> homes = gpd.GeoSeries([Point(118.501, 24.78), Point(118.519, 24.78)], crs=4490)
    >>> stations = gpd.GeoSeries([Point(118.50, 24.78), Point(118.52, 24.78)], index=["A", "B"], crs=4490)
    >>> nearest(net, homes, stations)[["source", "distance_m"]].round(0).values.tolist()
    [['A', 101.0], ['B', 101.0]]
    """
    o = _as_snapped(network, origins, name)
    s = _as_snapped(network, sources, sources_name)
    best_src, best = nearest_arrays(network, o, s, limit_m)
    reached = best_src >= 0
    source = pd.Series(pd.NA, index=o.index, dtype=object)
    source[reached] = np.asarray(s.index, dtype=object)[best_src[reached]]
    return pd.DataFrame({
        "source": source,
        "distance_m": np.where(reached, best, np.nan),
        "access_m": o.access_m,
        "component": network.node_component[network.edge_u[o.edge]],
    }, index=o.index)


def _as_snapped(network, points, name) -> Snapped:
    return points if isinstance(points, Snapped) else network.locate(points, name=name)


def nearest_arrays(net, o: Snapped, s: Snapped, limit_m):
    """(position of the nearest source or -1, its distance or inf) per origin."""
    if len(s) == 0:
        return np.full(len(o), -1), np.full(len(o), np.inf)
    dist, src = net.node_distances(s, limit_m=limit_m)
    u, v = net.edge_u[o.edge], net.edge_v[o.edge]
    length = net.edge_length[o.edge]
    via_u = dist[u] + o.along_m
    via_v = dist[v] + (length - o.along_m)
    best = o.access_m + np.minimum(via_u, via_v)
    best_src = np.where(via_u <= via_v, src[u], src[v])
    oi, si, direct = _same_edge(o, s)
    if len(oi):
        order = np.lexsort((direct, oi))  # the shortest direct walk per origin first
        oi, si, direct = oi[order], si[order], direct[order]
        first = np.ones(len(oi), dtype=bool)
        first[1:] = oi[1:] != oi[:-1]
        oi, si, direct = oi[first], si[first], direct[first]
        better = direct < best[oi]
        best[oi[better]], best_src[oi[better]] = direct[better], si[better]
    if limit_m is not None:
        best_src = np.where(best <= limit_m, best_src, -1)
        best = np.where(best <= limit_m, best, np.inf)
    best_src = np.where(np.isfinite(best), best_src, -1)
    return best_src, best


def distances(network: WalkNetwork, origins, destinations, *, limit_m: float,
              name: str = "origins", destinations_name: str = "destinations") -> pd.DataFrame:
    """Every origin-destination pair within a walking distance, as a long table.

    One Dijkstra per destination, bounded by `limit_m` and run in batches,
    so the result stays sparse: what a siting model needs as its cost
    matrix.

    Parameters
    ----------
    network : WalkNetwork
    origins, destinations : GeoDataFrame, GeoSeries of points, or Snapped
    limit_m : float
        Pairs farther apart than this are left out.

    Returns
    -------
    DataFrame
        ``origin`` and ``destination`` (positions in the inputs) and
        ``distance_m``, one row per pair within `limit_m`, sorted by origin
        then destination.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import LineString, Point
    >>> roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.52, 24.78)])], crs=4490)
    >>> net = build(roads)
    >>> homes = gpd.GeoSeries([Point(118.501, 24.78), Point(118.519, 24.78)], crs=4490)
    >>> sites = gpd.GeoSeries([Point(118.50, 24.78), Point(118.51, 24.78)], crs=4490)
    >>> distances(net, homes, sites, limit_m=1000).round(0).values.tolist()
    [[0.0, 0.0, 101.0], [0.0, 1.0, 910.0], [1.0, 1.0, 910.0]]
    """
    o = _as_snapped(network, origins, name)
    d = _as_snapped(network, destinations, destinations_name)
    parts = []
    u, v = network.edge_u[o.edge], network.edge_v[o.edge]
    for start in range(0, len(d), _BATCH):
        batch = d.take(np.arange(start, min(start + _BATCH, len(d))))
        rows = network.node_distances(batch, limit_m=limit_m, min_only=False)
        dist = _via_ends(network, o, rows[:, u], rows[:, v])  # (batch, origins)
        di, oi = np.nonzero(dist <= limit_m)
        parts.append(pd.DataFrame({"origin": oi, "destination": di + start, "distance_m": dist[di, oi]}))
    oi, di, direct = _same_edge(o, d)
    parts.append(pd.DataFrame({"origin": oi, "destination": di, "distance_m": direct}))
    out = pd.concat(parts, ignore_index=True)
    out = out[out["distance_m"] <= limit_m]
    out = out.sort_values(["origin", "destination", "distance_m"]).drop_duplicates(["origin", "destination"])
    return out.reset_index(drop=True).astype({"origin": np.int64, "destination": np.int64})
