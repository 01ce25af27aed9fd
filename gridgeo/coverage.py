"""Coverage of service stations by walking distance: the 5/10/15-minute life circles.

Towns build level-2 service stations "at the residents' doorstep" and aim
for a 15-minute convenience circle (15分钟便民生活圈). The national
residential-planning standard GB 50180-2018 (城市居住区规划设计标准, table
1.0.3 and 4.0.x) sets the walking distances of the 5-, 10- and 15-minute
life circles (生活圈) at about 300 m, 500 m and 800–1,000 m:
:data:`GB50180_CIRCLES`.

The verbs, each returning a (Geo)DataFrame in EPSG:4490:

- :func:`nearest_station`: for every address, the nearest station by
  walking distance along the roads (or straight-line), the distance, the
  walking time and the life circle it falls in. One multi-source Dijkstra
  pass over the network serves every station at once
  (:func:`gridgeo.network.nearest`).
- :func:`summary`: households and population within each circle.
- :func:`per_grid`: the same per grid at every level (through
  :func:`gridgeo.assign`), whether the grid has its own station, its
  farthest household; figures roll up exactly across full levels.
- :func:`service_areas`: the isochrone polygon of every station and circle.
- :func:`uncovered_areas`: polygons around the households left out.

Notes
-----
A life circle is judged by distance (the standard's definition), and the
walking time is ``distance / speed``, reported alongside. With the default
4 km/h the 15-minute circle's 1,000 m is exactly 15 minutes' walk; the
standard's 300 m and 500 m for 5 and 10 minutes are stricter than 4 km/h.
Pass ``circles={5: 333, 10: 667, 15: 1000}`` (or minutes only,
``circles=(5, 10, 15)``, to derive the distances from the speed) for a pure
time-based rule.
"""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gridgeo import crs as gcrs
from gridgeo import network as gnet
from gridgeo.schema import STATION_KINDS, check

__all__ = [
    "GB50180_CIRCLES",
    "WALKING_SPEED_KMH",
    "circle_metres",
    "STATUSES",
    "nearest_station",
    "summary",
    "per_grid",
    "service_areas",
    "served_ground",
    "uncovered_areas",
    "served_area",
]

log = logging.getLogger(__name__)

GB50180_CIRCLES = {5: 300.0, 10: 500.0, 15: 1000.0}
"""Life circle (minutes) -> walking distance in metres, after GB 50180-2018."""

WALKING_SPEED_KMH = 4.0
"""The default walking speed: 15 minutes = 1,000 m."""


def circle_metres(minutes: float, *, circles=None, speed_kmh: float = WALKING_SPEED_KMH) -> float:
    """The walking distance a life circle of so many minutes means.

    The rule: a circle of the standard (``circles``, default :data:`GB50180_CIRCLES`: 5, 10
    and 15 minutes = 300, 500 and 1,000 m) has the standard's distance, as every coverage
    figure counts it; any other number of minutes is walked at ``speed_kmh``. So a planner's
    "10 minutes" is the 500 m the one map's 10-minute coverage shows, not 667 m.

    Examples
    --------
    >>> circle_metres(10), circle_metres(15), circle_metres(7.5)
    (500.0, 1000.0, 500.0)
    """
    if not np.isfinite(minutes) or minutes <= 0:
        raise ValueError(f"步行分钟须为正数：{minutes!r} — walking minutes must be a positive number, not {minutes!r}")
    table = GB50180_CIRCLES if circles is None else circles
    for m, metres in table.items():
        if float(m) == float(minutes):
            return float(metres)
    return float(minutes) * speed_kmh * 1000.0 / 60.0

STATUSES = {
    "ok": "snapped to the road network and reached a station",
    "far_from_road": "more than max_access_m from any road: distance computed, but check the geocode",
    "resnapped": "its nearest road is a piece with no station: walked from the nearest piece that has one",
    "unreachable": "no station reachable on the network",
    "straight": "straight-line distance (method='straight')",
}
"""The ``status`` of an address in :func:`nearest_station`."""


# ----------------------------------------------------------------------------
# nearest_station
# ----------------------------------------------------------------------------


def nearest_station(addresses, stations, network=None, *, method: str = "network", kinds=None,
                    circles=None, speed_kmh: float = WALKING_SPEED_KMH, max_access_m: float = 300.0,
                    isolated: str = "resnap", limit_m: float | None = None, return_report: bool = False,
                    client=None):
    """The nearest station of every address, its walking distance, time and life circle.

    For the network method, all stations are the sources of one
    multi-source Dijkstra pass (scipy.sparse.csgraph) over the walking
    network; every address is snapped to its nearest road and the straight
    access distances of the address and of the station are added to the
    distance along the roads.

    Parameters
    ----------
    addresses : GeoDataFrame
        Standard addresses (``addr_id``, ``address``, points; ``households``
        and ``population`` are carried through when present).
    stations : GeoDataFrame
        Stations (``station_id``, ``name``, ``kind``, ``grid_code``, points).
    network : WalkNetwork, GeoDataFrame of roads or path, optional
        The walking network, or roads to build it from
        (:func:`gridgeo.network.build`). Required for ``method="network"``.
    method : {"network", "straight"}
        Walking distance along the roads, or straight-line distance (to the
        station nearest in the metric CRS, measured on the ellipsoid).
    kinds : str or list of str, optional
        Only stations of these kinds (``"grid2_station"``...; see
        :data:`gridgeo.schema.STATION_KINDS`). Default: all.
    circles : dict or sequence, optional
        Life circles: ``{minutes: metres}``, or minutes only (metres then
        follow from `speed_kmh`). Default :data:`GB50180_CIRCLES`.
    speed_kmh : float, default 4.0
        Walking speed for the ``minutes`` column.
    max_access_m : float, default 300
        An address farther than this from every road is ``far_from_road``
        (kept, with its distance, and reported).
    isolated : {"resnap", "unreachable"}
        What to do with an address whose nearest road is a disconnected piece
        with no station: walk it straight to the nearest piece that has one
        (``resnapped``), or report it ``unreachable``.
    limit_m : float, optional
        Search no farther than this (faster); addresses beyond get no
        station (``unreachable``). Default: no limit.
    return_report : bool, default False
        Also return a dict of diagnostics: ``stations`` (their snapping:
        ``access_m``, ``component``), ``pieces`` (the network's pieces with
        the addresses, households and stations on each) and ``problems``
        (the addresses whose status is not ``ok``).
    client : distributed.Client, optional
        Run on this Dask cluster (:mod:`gridgeo.distribute`): the addresses
        are cut into square tiles of :data:`TILE_M`, each a task with a halo
        of roads and stations (the halo rule below). Needs the road layer
        (not a built network), ``limit_m`` and ``isolated="unreachable"``;
        every column is the in-memory one except ``component``, which is -1
        (a piece of the whole network, which no task holds).

    Returns
    -------
    GeoDataFrame
        Indexed like `addresses`, the address points in EPSG:4490, with
        ``addr_id``, ``households``/``population`` (when present),
        ``station_id``, ``station_kind``, ``distance_m``, ``minutes``,
        ``circle`` (the smallest life circle, in minutes, holding the
        address; missing beyond the largest), ``access_m`` (to the road),
        ``component`` (network piece) and ``status`` (see :data:`STATUSES`).
        ``attrs`` records the circles, speed, method and metric CRS.

    Raises
    ------
    gridgeo.schema.SchemaError
        If addresses or stations fail the schema.
    ValueError
        If no station is of the requested kinds, or an option is unknown.

    See Also
    --------
    per_grid : the figures per grid. summary : the figures overall.

    Notes
    -----
    The boundary rule: an address at exactly a circle's distance is inside
    that circle (``distance <= metres``). Addresses are never dropped: far
    from every road, on an isolated piece or out of reach, they keep their
    row and say so in ``status``; the log names how many.

    The halo rule (Dask): a walk of at most ``limit_m`` from an address never
    leaves the circle of that radius around it, so a tile's task gets the
    stations within ``limit_m`` of the tile, and the roads within a halo
    ``H`` of it, plus every road touching those (so that the roads it keeps
    are cut at their crossings exactly as in the whole network). Walks are
    measured on the ellipsoid and the tiles cut in the metric CRS, so every
    such radius is stretched by the CRS's largest scale factor over the data
    (``k``, at least 1; pyproj's, at most 1.0004 within a Gauss-Krüger zone).
    ``H`` starts at ``k (limit_m + max_access_m)``; the task checks that every
    address's nearest road and every station's lie inside it (``H`` at least
    ``k`` times the farthest address from its road, and ``k`` times ``limit_m``
    plus the farthest station from its road) and is run again with a wider halo when not.
    Each address then snaps to the road it snaps to in the whole network,
    and every walk of at most ``limit_m`` lies in the task's network, so
    distances, stations and statuses are the in-memory ones. ``resnap``
    needs to know whether a piece of the whole network holds a station,
    which no task can: on Dask it is refused.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> net = network.build(s.roads)
    >>> cov = nearest_station(s.addresses, s.stations, net)
    >>> cov[["distance_m", "minutes"]].notna().all().all()
    np.True_
    >>> summary(cov).loc[15, "share_households"] > 0.9
    np.True_
    """
    if method not in ("network", "straight"):
        raise ValueError(f"method must be 'network' or 'straight', got {method!r}")
    if isolated not in ("resnap", "unreachable"):
        raise ValueError(f"isolated must be 'resnap' or 'unreachable', got {isolated!r}")
    addresses = check(gcrs.to_storage(addresses, name="addresses"), "addresses", name="addresses")
    stations = _select_kinds(check(gcrs.to_storage(stations, name="stations"), "stations", name="stations"), kinds)
    circles = _circles(circles, speed_kmh)
    if client is not None:
        return _nearest_on_dask(client, addresses, stations, network, method=method, circles=circles,
                                speed_kmh=speed_kmh, max_access_m=max_access_m, isolated=isolated, limit_m=limit_m,
                                return_report=return_report)
    if method == "network":
        if network is None:
            raise ValueError("method='network' needs the walking network (or the roads to build it from): "
                             "pass network=..., or method='straight' for straight-line distances")
        net = network if isinstance(network, gnet.WalkNetwork) else gnet.build(network)
        station_pos, distance, access, component, status, report = _network_distances(
            net, addresses, stations, max_access_m=max_access_m, isolated=isolated, limit_m=limit_m)
        metric = net.crs
    else:
        metric = gcrs.metric_crs(_joint_bounds(addresses, stations))
        station_pos, distance = _straight_distances(addresses, stations, metric)
        access = np.zeros(len(addresses))
        component = np.zeros(len(addresses), dtype=np.int64)
        status = np.full(len(addresses), "straight", dtype=object)
        report = {}
    result = _result_frame(addresses, stations, station_pos, distance, access, component, status,
                           circles=circles, speed_kmh=speed_kmh)
    result.attrs.update(circles={int(k): float(v) for k, v in circles.items()}, speed_kmh=float(speed_kmh),
                        method=method, metric_crs=metric.srs)
    _log_problems(result)
    if return_report:
        report["problems"] = pd.DataFrame(result[result["status"] != "ok"].drop(columns="geometry"))
        return result, report
    return result


#: Side, in metres, of the square tiles of addresses that are the tasks of nearest_station on Dask.
TILE_M = 10_000.0


def _nearest_on_dask(client, addresses, stations, roads, *, method, circles, speed_kmh, max_access_m, isolated,
                     limit_m, return_report):
    """:func:`nearest_station` by tiles of addresses with a halo of roads (the halo rule)."""
    from gridgeo import distribute

    if method != "network" or roads is None or isinstance(roads, gnet.WalkNetwork):
        raise ValueError("on Dask, nearest_station walks the roads tile by tile: pass the road layer "
                         "(network=roads, a GeoDataFrame or path), not a built WalkNetwork, with method='network' "
                         "/ 在 Dask 上请传入道路图层")
    if limit_m is None or not (np.isfinite(limit_m) and limit_m > 0):
        raise ValueError(f"on Dask, nearest_station needs limit_m (the walking limit that bounds each tile's halo; "
                         f"e.g. the largest circle, {max(circles.values()):g} m), got {limit_m!r} / 请给出步行上限 limit_m")
    if isolated != "unreachable":
        raise ValueError("on Dask, isolated='resnap' cannot be decided tile by tile (it asks whether a piece of the "
                         "whole network holds a station): pass isolated='unreachable' / 在 Dask 上请用 isolated='unreachable'")
    if return_report:
        raise ValueError("on Dask, nearest_station has no report (return_report=False): the pieces are those of "
                         "the whole network, which no task holds")
    frame, _, _ = gnet._road_frame(roads, source=None, layer=None, name="roads")
    metric = gcrs.metric_crs(frame)
    to_m = pyproj.Transformer.from_crs(gcrs.STORAGE_CRS, metric, always_xy=True)
    road_m = shapely.transform(frame.geometry.array, lambda c: np.column_stack(to_m.transform(c[:, 0], c[:, 1])))
    road_tree = shapely.STRtree(road_m)
    a_xy = _metric_xy(addresses, to_m)
    s_xy = _metric_xy(stations, to_m)
    station_tree = shapely.STRtree(shapely.points(s_xy))
    stretch = _largest_scale(metric, _joint_bounds(frame, addresses, stations))  # the halo rule's k
    tile = np.floor((a_xy - np.nanmin(a_xy, axis=0)) / TILE_M).astype(np.int64)
    keys, which = np.unique(tile, axis=0, return_inverse=True)
    which = which.ravel()
    tiles = []
    for k in range(len(keys)):
        rows = np.flatnonzero(which == k)
        lo, hi = a_xy[rows].min(axis=0), a_xy[rows].max(axis=0)
        near = np.sort(station_tree.query(shapely.box(*(lo - stretch * limit_m), *(hi + stretch * limit_m))))
        tiles.append(dict(rows=rows, box=(lo, hi), stations=near, halo=stretch * (limit_m + max_access_m)))
    options = dict(metric=metric, limit_m=float(limit_m), max_access_m=max_access_m, scale=stretch)
    pos = np.full(len(addresses), -1, dtype=np.int64)
    distance = np.full(len(addresses), np.inf)
    access = np.full(len(addresses), np.nan)
    status = np.empty(len(addresses), dtype=object)
    while tiles:
        parts = [_Tile(addresses.iloc[t["rows"]], stations.iloc[t["stations"]], t["stations"],
                       frame.iloc[_halo_roads(road_tree, road_m, t["box"], t["halo"])], t["halo"]) for t in tiles]
        results = distribute.run(client, _nearest_tile, parts, **options)
        wider = []
        for t, (answer, needed) in zip(tiles, results):
            if answer is None:
                wider.append(dict(t, halo=needed + 1.0))
                continue
            rows = t["rows"]
            pos[rows], distance[rows], access[rows], status[rows] = answer
        tiles = wider
    component = np.full(len(addresses), -1, dtype=np.int64)
    result = _result_frame(addresses, stations, pos, distance, access, component, status,
                           circles=circles, speed_kmh=speed_kmh)
    result.attrs.update(circles={int(k): float(v) for k, v in circles.items()}, speed_kmh=float(speed_kmh),
                        method=method, metric_crs=metric.srs)
    _log_problems(result)
    return result


def _largest_scale(metric, bounds) -> float:
    """The largest scale factor of `metric` over a box in degrees, at least 1 (a metric distance is at most
    this many times the ground distance): pyproj's factors on a 9 x 9 lattice of the box, corners included
    (where a transverse Mercator's is largest), with a margin of 1e-6."""
    x0, y0, x1, y1 = bounds
    lon, lat = (c.ravel() for c in np.meshgrid(np.linspace(x0, x1, 9), np.linspace(y0, y1, 9)))
    factors = pyproj.Proj(metric).get_factors(lon, lat)
    return max(1.0, float(np.nanmax(np.maximum(factors.meridional_scale, factors.parallel_scale)))) + 1e-6


def _metric_xy(frame, to_m):
    c = shapely.get_coordinates(frame.geometry.array)
    return np.column_stack(to_m.transform(c[:, 0], c[:, 1]))


def _halo_roads(tree, road_m, box, halo):
    """Positions (ascending) of the roads within `halo` of the box, and of every road touching one of them."""
    lo, hi = box
    first = tree.query(shapely.box(*(lo - halo), *(hi + halo)))
    touching = tree.query(road_m[first], predicate="dwithin", distance=_NODING_M)[1]
    return np.unique(np.concatenate([first, touching]))


_NODING_M = 0.02  # farther than the network's default precision (0.01 m), within which roads are noded


class _Tile:
    """One task of nearest_station on Dask: a tile's addresses, the stations near it (and their positions in
    all the stations), the roads of its halo and the halo's width."""

    def __init__(self, addresses, stations, station_pos, roads, halo):
        self.addresses, self.stations, self.station_pos, self.roads, self.halo = (
            addresses, stations, station_pos, roads, halo)


def _nearest_tile(tile, *, metric, limit_m, max_access_m, scale=1.0):
    """((station position, distance, access, status) per address, None), or (None, the halo needed);
    `scale` is the largest scale factor of `metric` (the halo rule)."""
    if len(tile.roads) == 0:  # no road within the halo: the nearest is farther
        return None, 2.0 * tile.halo
    net = gnet.build(tile.roads, metric=metric)
    a = net.locate(tile.addresses, name="addresses")
    needed = float(a.access_m.max()) if len(a) else 0.0
    if len(tile.stations):
        s = net.locate(tile.stations, name="stations")
        needed = max(needed, limit_m + float(s.access_m.max()))
    needed *= scale
    if needed > tile.halo:
        return None, needed
    status = np.where(a.access_m > max_access_m, "far_from_road", "ok").astype(object)
    if len(tile.stations):
        pos, distance = gnet.nearest_arrays(net, a, s, limit_m)
    else:
        pos, distance = np.full(len(a), -1), np.full(len(a), np.inf)
    status[pos < 0] = "unreachable"
    if len(tile.stations):  # positions among all the stations
        pos = np.where(pos >= 0, np.asarray(tile.station_pos)[np.maximum(pos, 0)], -1)
    return (pos, distance, a.access_m, status), None


def _select_kinds(stations, kinds):
    if kinds is None:
        selected = stations
    else:
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        unknown = sorted(set(kinds) - set(STATION_KINDS) - set(stations["kind"]))
        if unknown:
            raise ValueError(f"unknown station kind(s) {unknown}: expected some of {sorted(STATION_KINDS)}")
        selected = stations[stations["kind"].isin(kinds)]
    if len(selected) == 0:
        present = sorted(stations["kind"].dropna().unique())
        raise ValueError(f"no station of kind(s) {kinds} (the stations have {present}): "
                         "nothing to measure coverage from")
    return selected


def _circles(circles, speed_kmh) -> dict:
    """{minutes: metres}, sorted by minutes."""
    if speed_kmh <= 0:
        raise ValueError(f"speed_kmh must be positive, got {speed_kmh}")
    if circles is None:
        circles = GB50180_CIRCLES
    if not isinstance(circles, dict):
        circles = {m: m * speed_kmh * 1000.0 / 60.0 for m in circles}
    out = {int(m): float(d) for m, d in sorted(circles.items())}
    metres = list(out.values())
    if not out or any(d <= 0 for d in metres) or metres != sorted(metres):
        raise ValueError(f"circles must map increasing minutes to increasing positive metres, got {circles}")
    return out


def _joint_bounds(*frames):
    b = np.array([f.total_bounds for f in frames if len(f)])
    return (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())


def _network_distances(net, addresses, stations, *, max_access_m, isolated, limit_m):
    """Per address: station position, distance, access, piece, status; and a report."""
    a = net.locate(addresses, name="addresses")
    s = net.locate(stations, name="stations")
    station_piece = net.node_component[net.edge_u[s.edge]]
    far_stations = s.access_m > max_access_m
    if far_stations.any():
        worst = np.argsort(-s.access_m)[: min(5, int(far_stations.sum()))]
        log.warning("%d station(s) are more than %g m from any road, e.g. %s",
                    int(far_stations.sum()), max_access_m,
                    ", ".join(f"{stations['station_id'].iloc[i]} ({s.access_m[i]:.0f} m)" for i in worst))
    component = net.node_component[net.edge_u[a.edge]]
    status = np.where(a.access_m > max_access_m, "far_from_road", "ok").astype(object)
    if isolated == "resnap":
        a, moved = _resnap_isolated(net, a, component, np.unique(station_piece))
        status[moved] = "resnapped"
    pos, distance = gnet.nearest_arrays(net, a, s, limit_m)
    status[pos < 0] = "unreachable"
    report = {
        "stations": pd.DataFrame({"station_id": stations["station_id"].to_numpy(), "access_m": s.access_m,
                                  "component": station_piece}, index=stations.index),
        "pieces": _pieces_report(net, component, addresses, station_piece),
    }
    return pos, distance, a.access_m, component, status, report


def _resnap_isolated(net, snapped, component, served):
    """Move points whose piece has no station onto the nearest edge of a piece that has one."""
    moved = ~np.isin(component, served)
    if not moved.any():
        return snapped, moved
    keep = np.flatnonzero(np.isin(net.edge_component, served))
    a, b = net.node_xy[net.edge_u[keep]], net.node_xy[net.edge_v[keep]]
    tree = shapely.STRtree(shapely.linestrings(np.stack([a, b], axis=1)))
    xy = snapped.xy[moved]
    _, hit = tree.query_nearest(shapely.points(xy), all_matches=False)
    edge = keep[hit]
    t, _ = gnet._project(xy, net.node_xy[net.edge_u[edge]], net.node_xy[net.edge_v[edge]])
    out = gnet.Snapped(snapped.index, snapped.edge.copy(), snapped.along_m.copy(), snapped.access_m.copy(),
                       snapped.xy)
    out.edge[moved] = edge
    out.along_m[moved], out.access_m[moved] = gnet._on_ellipsoid(net, edge, t, xy)
    log.warning("%d address(es) sit by road pieces cut off from every station; they were measured from the "
                "nearest connected road instead (status 'resnapped')", int(moved.sum()))
    return out, moved


def _pieces_report(net, component, addresses, station_piece):
    pieces = net.components()
    pieces["addresses"] = np.bincount(component, minlength=len(pieces))
    if "households" in addresses.columns:
        hh = addresses["households"].fillna(0).to_numpy(dtype=float)
        pieces["households"] = np.bincount(component, weights=hh, minlength=len(pieces))
    pieces["stations"] = np.bincount(station_piece, minlength=len(pieces))
    return pieces


def _straight_distances(addresses, stations, metric):
    """The station nearest to every address in `metric` (a k-d tree) and the geodesic to it: measured on the
    ellipsoid, as every walk is (:mod:`gridgeo.network`'s measuring rule)."""
    from scipy.spatial import cKDTree
    to_m = pyproj.Transformer.from_crs(gcrs.STORAGE_CRS, metric, always_xy=True)
    a, s = (shapely.get_coordinates(frame.geometry.array) for frame in (addresses, stations))
    _, pos = cKDTree(np.column_stack(to_m.transform(s[:, 0], s[:, 1]))).query(
        np.column_stack(to_m.transform(a[:, 0], a[:, 1])), workers=-1)
    return pos, gnet._geodesic(a, s[pos])


def _result_frame(addresses, stations, pos, distance, access, component, status, *, circles, speed_kmh):
    reached = pos >= 0
    distance = np.where(reached, distance, np.nan)
    metres = np.array(list(circles.values()))
    which = np.searchsorted(metres, distance, side="left")  # first circle with metres >= distance
    inside = reached & (which < len(metres))
    circle = pd.array(np.where(inside, np.array(list(circles))[np.minimum(which, len(metres) - 1)], 0),
                      dtype="Int64")
    circle[~inside] = pd.NA
    ids = pd.Categorical.from_codes(np.where(reached, pos, -1), categories=stations["station_id"].to_numpy())
    kinds, kind_code = np.unique(stations["kind"].to_numpy(dtype=object), return_inverse=True)
    kind = pd.Categorical.from_codes(np.where(reached, kind_code.ravel()[np.maximum(pos, 0)], -1), categories=kinds)
    columns = {"addr_id": addresses["addr_id"].to_numpy()}
    for col in ("households", "population"):
        if col in addresses.columns:
            columns[col] = addresses[col].to_numpy()
    columns.update(
        station_id=ids,
        station_kind=kind,
        distance_m=distance,
        minutes=distance / (speed_kmh * 1000.0 / 60.0),
        circle=circle,
        access_m=access,
        component=component,
        status=pd.Categorical(status, categories=list(STATUSES)),
    )
    return gpd.GeoDataFrame(columns, index=addresses.index, geometry=addresses.geometry.array,
                            crs=gcrs.STORAGE_CRS)


def _log_problems(result):
    counts = result["status"].value_counts()
    for status in ("far_from_road", "unreachable"):
        n = int(counts.get(status, 0))
        if n:
            rows = result.index[result["status"] == status][:5].tolist()
            log.warning("%d address(es) are %s (%s), e.g. rows %s; they are kept and counted as such",
                        n, status, STATUSES[status], rows)


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------


def summary(coverage) -> pd.DataFrame:
    """Households, population and addresses within each life circle.

    Parameters
    ----------
    coverage : GeoDataFrame
        The result of :func:`nearest_station`.

    Returns
    -------
    DataFrame
        Indexed by ``circle`` (minutes): ``distance_m``, ``addresses``,
        ``households``, ``population`` within the circle (cumulative: the
        15-minute circle includes the 5-minute one) and their shares of the
        total (``share_households``, ``share_population``, ``share_addresses``).

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> homes = gpd.GeoDataFrame({"addr_id": ["1", "2"], "address": ["甲", "乙"], "households": [3, 1]},
    ...                          geometry=[Point(118.5, 24.78), Point(118.51, 24.78)], crs=4490)
    >>> station = gpd.GeoDataFrame({"station_id": ["S"], "name": ["站"], "kind": ["grid2_station"],
    ...                             "grid_code": [""]}, geometry=[Point(118.5, 24.781)], crs=4490)
    >>> cov = nearest_station(homes, station, method="straight")
    >>> summary(cov)["share_households"].tolist()
    [0.75, 0.75, 0.75]
    """
    circles = _recorded_circles(coverage)
    weights = _weights(coverage)
    rows = []
    for minutes, metres in circles.items():
        within = (coverage["distance_m"] <= metres).to_numpy()
        rows.append({"circle": minutes, "distance_m": metres,
                     **{col: float(w[within].sum()) for col, w in weights.items()}})
    out = pd.DataFrame(rows).set_index("circle")
    for col, w in weights.items():
        out[f"share_{col}"] = out[col] / w.sum() if w.sum() else np.nan
    return out


def _recorded_circles(coverage) -> dict:
    circles = coverage.attrs.get("circles")
    if not circles:
        raise ValueError("coverage has no recorded life circles: pass the result of nearest_station()")
    return {int(m): float(d) for m, d in circles.items()}


def _weights(coverage) -> dict:
    out = {"addresses": np.ones(len(coverage))}
    for col in ("households", "population"):
        if col in coverage.columns:
            out[col] = coverage[col].fillna(0).to_numpy(dtype=float)
    return out


def per_grid(coverage, grids, *, stations=None, assignment=None, levels=None, client=None) -> gpd.GeoDataFrame:
    """Coverage figures of every grid at every level.

    Addresses are placed in grids with :func:`gridgeo.assign` (or the
    `assignment` you already have); stations too, to tell which grids have
    their own.

    Parameters
    ----------
    coverage : GeoDataFrame
        The result of :func:`nearest_station`.
    grids : GeoDataFrame or gridgeo.AssignIndex
        The grids (every level in one frame), or an index built from them.
    stations : GeoDataFrame, optional
        The stations counted as a grid's own (usually those given to
        :func:`nearest_station`); without them ``stations`` and
        ``has_station`` are left out.
    assignment : DataFrame, optional
        :func:`gridgeo.assign` of the addresses (indexed like `coverage`,
        one column of codes per level), to avoid assigning again.
    levels : list of str, optional
        The levels to report; default every level of the grids.
    client : distributed.Client, optional
        Run on this Dask cluster, one task per top-level unit, with the same
        answer (the partition rule of :mod:`gridgeo.distribute`). Then
        `coverage` (and `stations`) may also be a layer written by
        :func:`gridgeo.distribute.partition` (``dataset["coverage"]`` or its
        folder; without `assignment`): each task reads its unit's file on its
        worker.

    Returns
    -------
    GeoDataFrame
        One row per grid (``code``, ``name``, ``level``, ``parent``, the
        grid polygon in EPSG:4490), ordered by level then code, with
        ``addresses``, ``households``, ``population``; for every circle
        ``households_<m>min``, ``population_<m>min`` and
        ``share_<m>min`` (households within, over households; NaN for a
        grid without households); ``unreachable_households``;
        ``farthest_m`` and ``farthest_addr`` (the farthest reached address
        with households); ``stations`` and ``has_station``.

    Notes
    -----
    Counts of a full level add up exactly to its parent's (every address
    lies in one unit per level); a partial level (level-3 plots) counts only
    the addresses inside its units. Addresses outside every grid are left
    out of every count.

    Examples
    --------
    >>> from gridgeo import sample
    >>> s = sample.load()
    >>> cov = nearest_station(s.addresses, s.stations, method="straight")
    >>> g = per_grid(cov, s.grids, stations=s.stations, levels=["town", "village"])
    >>> int(g.loc[g["level"] == "village", "households_15min"].sum()) == int(
    ...     g.loc[g["level"] == "town", "households_15min"].sum())
    True
    """
    from gridgeo import distribute
    from gridgeo.assignment import AssignIndex, assign

    if distribute.is_stored(coverage) and client is None:
        raise TypeError("分区存储的覆盖结果在 Dask 集群上读取：请给 client / a coverage stored partitioned "
                        "(gridgeo.distribute.partition) is read on a Dask cluster: give client=")
    circles = _recorded_circles(distribute.stored_layer(coverage) if distribute.is_stored(coverage) else coverage)
    if client is not None:
        return _per_grid_on_dask(client, coverage, grids, stations=stations, assignment=assignment, levels=levels)
    index = grids if isinstance(grids, AssignIndex) else AssignIndex(grids)
    frame = _grid_frame(index, grids)
    levels = [lv for lv in frame["level"].unique()] if levels is None else list(levels)
    if assignment is None:
        assignment = assign(coverage, index, levels=levels, name="addresses")
    missing = [lv for lv in levels if lv not in assignment.columns]
    if missing:
        raise ValueError(f"the assignment has no column for level(s) {missing}: assign with levels={levels}")
    figures = _address_figures(coverage, circles)
    parts = []
    for level in levels:
        codes = assignment[level].astype(object).to_numpy()
        parts.append(_level_figures(figures, codes, coverage["addr_id"].to_numpy(), circles))
    out = pd.concat(parts)
    if stations is not None:
        placed = assign(gcrs.to_storage(stations, name="stations"), index, levels=levels, name="stations")
        counts = pd.concat([placed[lv].astype(object).value_counts() for lv in levels])
        out["stations"] = counts.reindex(out.index).fillna(0).astype(np.int64)
        out["has_station"] = out["stations"] > 0
    result = frame[frame["level"].isin(levels)].join(out, on="code")
    _fill_empty_grids(result)
    order = {lv: i for i, lv in enumerate(levels)}
    result = result.sort_values(["level", "code"], key=lambda c: c.map(order) if c.name == "level" else c)
    return result.reset_index(drop=True)


def _per_grid_on_dask(client, coverage, grids, *, stations, assignment, levels):
    """:func:`per_grid` one task per top-level unit (:mod:`gridgeo.distribute`), in the in-memory order."""
    from gridgeo import distribute
    from gridgeo.assignment import AssignIndex

    scheme = grids.scheme if isinstance(grids, AssignIndex) else None
    frame = _grid_frame(grids if isinstance(grids, AssignIndex) else None, grids.grids if scheme else grids)
    levels = [lv for lv in frame["level"].unique()] if levels is None else list(levels)
    stored = distribute.is_stored(coverage)
    if stored and assignment is not None:
        raise ValueError("分区存储的覆盖结果由各任务自行落格，不接受 assignment / a coverage stored partitioned "
                         "(gridgeo.distribute.partition) is placed by each task on its worker: leave assignment out")
    if not stored:
        coverage = coverage.reset_index(drop=True)  # positions, to find each task's rows of `assignment`
    if assignment is not None:
        assignment = assignment.reset_index(drop=True)
    if stations is not None and not distribute.is_stored(stations):
        stations = gcrs.to_storage(stations, name="stations")
    layers = {"coverage": coverage, "stations": stations}
    parts, _, _ = distribute.split(frame, layers, **({"scheme": scheme} if scheme else {}), client=client)
    for part in parts:
        if not stored:  # a stored coverage keeps its attrs in its files
            part.layers["coverage"].attrs = dict(coverage.attrs)
        part.layers["assignment"] = None if assignment is None else assignment.loc[part.layers["coverage"].index]
    tables = distribute.run(client, _per_grid_part, parts, levels=levels)
    out = pd.concat(tables, ignore_index=True)
    rank = out["level"].map({lv: i for i, lv in enumerate(levels)}).to_numpy()
    out = out.iloc[np.lexsort((out["code"].to_numpy(dtype=object), rank))].reset_index(drop=True)
    return gpd.GeoDataFrame(out, geometry=frame.geometry.name, crs=frame.crs)


def _per_grid_part(part, *, levels):
    held = set(part.grids["level"])  # a town may lack a partial level (no enterprise plots)
    return per_grid(part.layers["coverage"], part.grids, stations=part.layers["stations"],
                    assignment=part.layers["assignment"], levels=[lv for lv in levels if lv in held])


def _grid_frame(index, grids):
    frame = grids if isinstance(grids, gpd.GeoDataFrame) else getattr(index, "grids", None)
    if frame is None:
        raise TypeError("per_grid needs the grids GeoDataFrame (an AssignIndex alone has no polygons)")
    scheme = getattr(index, "scheme", None)
    frame = check(gcrs.to_storage(frame, name="grids"), "grids", name="grids",
                  **({"scheme": scheme} if scheme is not None else {}))
    return frame[["code", "name", "level", "parent", frame.geometry.name]]


def _address_figures(coverage, circles) -> pd.DataFrame:
    """Per address: its counts, and its counts again where inside each circle."""
    w = _weights(coverage)
    hh = w.get("households", w["addresses"])
    pop = w.get("population", np.zeros(len(coverage)))
    dist = coverage["distance_m"].to_numpy()
    cols = {"addresses": w["addresses"], "households": hh, "population": pop}
    for minutes, metres in circles.items():
        within = dist <= metres
        cols[f"households_{minutes}min"] = np.where(within, hh, 0.0)
        cols[f"population_{minutes}min"] = np.where(within, pop, 0.0)
    cols["unreachable_households"] = np.where(np.isnan(dist), hh, 0.0)
    cols["_dist"] = np.where((hh > 0) & ~np.isnan(dist), dist, -1.0)
    return pd.DataFrame(cols)


def _level_figures(figures, codes, addr_ids, circles) -> pd.DataFrame:
    placed = pd.notna(codes)
    f = figures[placed].copy()
    f["code"] = codes[placed]
    grouped = f.groupby("code", sort=True)
    sums = grouped[[c for c in f.columns if c not in ("_dist", "code")]].sum()
    far = grouped["_dist"].idxmax()
    sums["farthest_m"] = figures["_dist"].to_numpy()[far.to_numpy()]
    sums["farthest_addr"] = addr_ids[far.to_numpy()]
    none = sums["farthest_m"] < 0
    sums.loc[none, "farthest_m"] = np.nan
    sums.loc[none, "farthest_addr"] = None
    for minutes in circles:
        sums[f"share_{minutes}min"] = sums[f"households_{minutes}min"] / sums["households"].where(sums["households"] > 0)
    return sums


def _fill_empty_grids(result):
    count_cols = [c for c in result.columns if c.startswith(("addresses", "households", "population", "unreachable"))]
    result[count_cols] = result[count_cols].fillna(0)
    for col in count_cols:
        if np.all(np.mod(result[col].to_numpy(dtype=float), 1) == 0):
            result[col] = result[col].astype(np.int64)
    if "has_station" in result.columns:
        result["has_station"] = result["has_station"].fillna(False).astype(bool)
        result["stations"] = result["stations"].fillna(0).astype(np.int64)


# ----------------------------------------------------------------------------
# Polygons for the map
# ----------------------------------------------------------------------------


def service_areas(stations, network, *, kinds=None, circles=None, speed_kmh: float = WALKING_SPEED_KMH,
                  trim_m: float = 100.0, resolution_m: float = 25.0) -> gpd.GeoDataFrame:
    """The area within each life circle of each station (isochrone polygons).

    A station's area for a circle of ``D`` metres is the union of the roads
    it reaches within ``D``, each piece of road widened by what is left of
    the walk there (``D`` minus the piece's farthest distance), but never by
    more than `trim_m`: the "walk the road, then step off it" rule, cut at
    `trim_m` so that an area follows its streets.

    Parameters
    ----------
    stations : GeoDataFrame
    network : WalkNetwork, GeoDataFrame of roads or path
    kinds : str or list of str, optional
        Only stations of these kinds.
    circles : dict or sequence, optional
        As in :func:`nearest_station`; default :data:`GB50180_CIRCLES`.
    speed_kmh : float
        For circles given as minutes only.
    trim_m : float, default 100
        The widest a road is widened.
    resolution_m : float, default 25
        Edges near the limit are cut into pieces this long, so an area ends
        within that much of its exact end.

    Returns
    -------
    GeoDataFrame
        One row per station and circle: ``station_id``, ``name``, ``kind``,
        ``circle`` (minutes), ``distance_m`` and a (Multi)Polygon in
        EPSG:4490; a station that reaches no road within a circle has an
        empty polygon.

    Notes
    -----
    Conservative by construction: every point inside is within the circle's
    distance of the station along the roads plus a straight step off them,
    up to `resolution_m` short of the exact isochrone. The walks are
    measured on the ellipsoid (:mod:`gridgeo.network`'s measuring rule) and
    the step off the road is drawn in the network's metric CRS, whose metre
    is at least a ground metre in a Gauss-Krüger zone (scale factor 1 on the
    central meridian, more off it): the step drawn is never longer on the
    ground than the walk left.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> net = network.build(s.roads)
    >>> areas = service_areas(s.stations.head(2), net, circles={5: 300, 15: 1000})
    >>> areas[["station_id", "circle"]].shape, bool(areas.geometry.is_valid.all())
    ((4, 2), True)
    """
    stations = _select_kinds(check(gcrs.to_storage(stations, name="stations"), "stations", name="stations"), kinds)
    circles = _circles(circles, speed_kmh)
    net = network if isinstance(network, gnet.WalkNetwork) else gnet.build(network)
    snapped = net.locate(stations, name="stations")
    pieces = []
    for start in range(0, len(snapped), gnet._BATCH):
        batch = np.arange(start, min(start + gnet._BATCH, len(snapped)))
        rows = net.node_distances(snapped.take(batch), limit_m=max(circles.values()), min_only=False)
        for minutes, metres in circles.items():
            pieces.append(_reached_pieces(net, snapped.take(batch), rows, batch, minutes, metres,
                                          trim_m=trim_m, resolution_m=resolution_m))
    pieces = pd.concat(pieces, ignore_index=True)
    polygons = shapely.buffer(pieces["geometry"].to_numpy(), pieces["radius"].to_numpy(), quad_segs=4)
    areas = (gpd.GeoDataFrame({"station": pieces["station"], "circle": pieces["circle"]},
                              geometry=gpd.GeoSeries(polygons, crs=net.crs))
             .dissolve(by=["station", "circle"]))
    full = pd.MultiIndex.from_product([range(len(stations)), list(circles)], names=["station", "circle"])
    geoms = areas.geometry.reindex(full)
    geoms = geoms.where(geoms.notna(), shapely.Polygon())
    out = stations[["station_id", "name", "kind"]].iloc[full.get_level_values("station")].reset_index(drop=True)
    out["circle"] = full.get_level_values("circle").to_numpy()
    out["distance_m"] = out["circle"].map(circles)
    out = gpd.GeoDataFrame(out, geometry=gpd.GeoSeries(np.asarray(geoms, dtype=object), crs=net.crs))
    return out.to_crs(gcrs.STORAGE_CRS)


def _reached_pieces(net, snapped, rows, batch, minutes, metres, *, trim_m, resolution_m) -> pd.DataFrame:
    """Pieces of road reached within `metres`, each with the width left to it."""
    du, dv = rows[:, net.edge_u], rows[:, net.edge_v]
    b, e = np.nonzero(np.minimum(du, dv) < metres)
    du, dv, length = du[b, e], dv[b, e], net.edge_length[e]
    own = e == snapped.edge[b]  # a station's own edge: walk straight along it
    # every reached edge is cut into pieces; edges far inside the circle stay whole
    whole = ~own & (_farthest_on_piece(du, dv, length, 0.0, length) <= metres - trim_m)
    n = np.where(whole, 1, np.maximum(np.ceil(length / resolution_m), 1)).astype(np.int64)
    rep = np.repeat(np.arange(len(e)), n)
    j = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    s0, s1 = j * length[rep] / n[rep], (j + 1) * length[rep] / n[rep]
    far = _farthest_on_piece(du[rep], dv[rep], length[rep], s0, s1)
    along = snapped.along_m[b[rep]]
    straight = snapped.access_m[b[rep]] + np.maximum(np.abs(s0 - along), np.abs(s1 - along))
    far = np.where(own[rep], straight, far)
    radius = np.minimum(trim_m, metres - far)
    keep = radius > 0
    rep, s0, s1, radius = rep[keep], s0[keep], s1[keep], radius[keep]
    lines = _edge_pieces(net, e[rep], s0, s1)
    return pd.DataFrame({"station": batch[b[rep]], "circle": minutes, "radius": radius, "geometry": lines})


def _edge_pieces(net, e, s0, s1):
    """The pieces of edges ``e`` from ``s0`` to ``s1`` metres (on the ellipsoid) of their node ``u``, as
    lines in the metric CRS (placed at the same fractions of the straight edge)."""
    a, b = net.node_xy[net.edge_u[e]], net.node_xy[net.edge_v[e]]
    length = np.maximum(net.edge_length[e], gnet._TINY)
    return shapely.linestrings(np.stack([a + (b - a) * (s0 / length)[:, None],
                                         a + (b - a) * (s1 / length)[:, None]], axis=1))


def served_ground(stations, network, *, kinds=None, circles=None, speed_kmh: float = WALKING_SPEED_KMH,
                  trim_m: float = 100.0, resolution_m: float = 25.0, tolerance_m: float = 2.0) -> gpd.GeoDataFrame:
    """The ground each life circle serves, from one walk out of every station at once.

    The rule of :func:`service_areas` (walk the roads, then step off them by
    what is left of the walk, at most `trim_m`), with the walk measured
    from the nearest station of all rather than from each in turn: one
    multi-source pass instead of one per station, so a city takes seconds,
    not minutes. The result holds the union of the stations' service areas
    (:func:`served_area` of :func:`service_areas`): on each piece of road
    the nearest station's walk is never longer than any one station's. It
    is as conservative: every point inside is within the circle's distance
    of some station along the roads plus a straight step off them.

    Parameters
    ----------
    stations : GeoDataFrame
    network : WalkNetwork, GeoDataFrame of roads or path
    kinds : str or list of str, optional
        Only stations of these kinds.
    circles : dict or sequence, optional
        As in :func:`nearest_station`; default :data:`GB50180_CIRCLES`.
    speed_kmh : float
        For circles given as minutes only.
    trim_m, resolution_m : float
        As in :func:`service_areas`.
    tolerance_m : float, default 2.0
        Simplification of the result in metres (0 keeps every vertex).

    Returns
    -------
    GeoDataFrame
        One row per circle: ``circle`` (minutes), ``distance_m``,
        ``stations`` (how many stand within the circle's distance of a road)
        and the (Multi)Polygon, in EPSG:4490, as :func:`served_area` gives.

    Examples
    --------
    >>> from gridgeo import sample, network
    >>> s = sample.load()
    >>> ground = served_ground(s.stations.head(3), network.build(s.roads), circles={15: 1000})
    >>> ground[["circle", "stations"]].values.tolist()
    [[15, 3]]
    """
    stations = _select_kinds(check(gcrs.to_storage(stations, name="stations"), "stations", name="stations"), kinds)
    circles = _circles(circles, speed_kmh)
    net = network if isinstance(network, gnet.WalkNetwork) else gnet.build(network)
    snapped = net.locate(stations, name="stations")
    if len(snapped):
        dist, _ = net.node_distances(snapped, limit_m=max(circles.values()), min_only=True)
    else:
        dist = np.full(net.n_nodes, np.inf)
    # the nearest station's walk to every node; no station's own edge in this pass
    anyone = gnet.Snapped(pd.RangeIndex(1), np.array([-1]), np.zeros(1), np.zeros(1), np.zeros((1, 2)))
    rows, geoms = [], []
    for minutes, metres in circles.items():
        pieces = pd.concat([_reached_pieces(net, anyone, dist[None, :], np.zeros(1, dtype=np.int64), minutes, metres,
                                            trim_m=trim_m, resolution_m=resolution_m),
                            _own_edge_pieces(net, snapped, minutes, metres, trim_m=trim_m,
                                             resolution_m=resolution_m)], ignore_index=True)
        lines = pieces["geometry"].to_numpy()
        area = shapely.union_all(shapely.buffer(lines, pieces["radius"].to_numpy(), quad_segs=4)) if len(lines) \
            else shapely.Polygon()
        if tolerance_m > 0 and not area.is_empty:
            area = shapely.simplify(area, tolerance_m)
        rows.append({"circle": minutes, "distance_m": metres,
                     "stations": int((snapped.access_m < metres).sum()) if len(snapped) else 0})
        geoms.append(area)
    out = gpd.GeoDataFrame(rows, geometry=gpd.GeoSeries(geoms, crs=net.crs))
    out["circle"] = out["circle"].astype("int64")
    return out.to_crs(gcrs.STORAGE_CRS)


def _own_edge_pieces(net, snapped, minutes, metres, *, trim_m, resolution_m) -> pd.DataFrame:
    """Pieces of each station's own edge, walked straight along it from the station."""
    if not len(snapped):
        return pd.DataFrame({"station": [], "circle": [], "radius": [], "geometry": []})
    e = snapped.edge
    length = net.edge_length[e]
    n = np.maximum(np.ceil(length / resolution_m), 1).astype(np.int64)
    rep = np.repeat(np.arange(len(e)), n)
    j = np.arange(len(rep)) - np.repeat(np.cumsum(n) - n, n)
    s0, s1 = j * length[rep] / n[rep], (j + 1) * length[rep] / n[rep]
    along = snapped.along_m[rep]
    far = snapped.access_m[rep] + np.maximum(np.abs(s0 - along), np.abs(s1 - along))
    radius = np.minimum(trim_m, metres - far)
    keep = radius > 0
    rep, s0, s1, radius = rep[keep], s0[keep], s1[keep], radius[keep]
    lines = _edge_pieces(net, e[rep], s0, s1)
    return pd.DataFrame({"station": rep, "circle": minutes, "radius": radius, "geometry": lines})


def _farthest_on_piece(du, dv, length, s0, s1):
    """The largest of min(du + s, dv + length - s) over s in [s0, s1]."""
    d0 = np.minimum(du + s0, dv + length - s0)
    d1 = np.minimum(du + s1, dv + length - s1)
    crest = (dv + length - du) / 2  # where the two directions meet
    inside = (crest > s0) & (crest < s1)
    return np.where(inside, (du + dv + length) / 2, np.maximum(d0, d1))


def uncovered_areas(coverage, *, minutes: int = 15, radius_m: float = 50.0, within=None) -> gpd.GeoDataFrame:
    """Polygons around the households left outside a life circle.

    Every address with households beyond the circle (or with no station
    reachable) is widened by `radius_m`; touching discs merge into one area.

    Parameters
    ----------
    coverage : GeoDataFrame
        The result of :func:`nearest_station`.
    minutes : int, default 15
        The life circle (one of those recorded in `coverage`).
    radius_m : float, default 50
        How far around each household left out the area reaches.
    within : GeoDataFrame or geometry, optional
        Clip the areas to it (the town's outline, say).

    Returns
    -------
    GeoDataFrame
        One row per area, largest number of households first: ``addresses``,
        ``households``, ``population`` left out in it, ``nearest_m`` and
        ``farthest_m`` (walking distances to the nearest station; NaN when
        none is reachable) and the polygon in EPSG:4490.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import Point
    >>> homes = gpd.GeoDataFrame({"addr_id": ["1", "2", "3"], "address": ["甲", "乙", "丙"],
    ...                           "households": [3, 1, 2]},
    ...     geometry=[Point(118.5, 24.78), Point(118.52, 24.78), Point(118.5203, 24.78)], crs=4490)
    >>> station = gpd.GeoDataFrame({"station_id": ["S"], "name": ["站"], "kind": ["grid2_station"],
    ...                             "grid_code": [""]}, geometry=[Point(118.5, 24.781)], crs=4490)
    >>> areas = uncovered_areas(nearest_station(homes, station, method="straight"))
    >>> areas[["addresses", "households"]].values.tolist()
    [[2, 3]]
    """
    circles = _recorded_circles(coverage)
    if minutes not in circles:
        raise ValueError(f"minutes={minutes} is not one of the recorded circles {list(circles)}")
    metric = pyproj.CRS.from_user_input(coverage.attrs.get("metric_crs") or gcrs.metric_crs(coverage))
    hh = _weights(coverage).get("households", np.ones(len(coverage)))
    dist = coverage["distance_m"].to_numpy()
    out_mask = (hh > 0) & ~(dist <= circles[minutes])
    left_out = coverage[out_mask].to_crs(metric)
    columns = ["addresses", "households", "population", "nearest_m", "farthest_m"]
    if len(left_out) == 0:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=gpd.GeoSeries([], crs=gcrs.STORAGE_CRS))
    merged = shapely.get_parts(shapely.union_all(shapely.buffer(left_out.geometry.array, radius_m, quad_segs=8)))
    if within is not None:
        clip = within.to_crs(metric).geometry.union_all() if hasattr(within, "to_crs") else \
            gcrs.to_storage(gpd.GeoSeries([within], crs=gcrs.STORAGE_CRS)).to_crs(metric).iloc[0]
        merged = shapely.get_parts(shapely.intersection(merged, clip))
        merged = merged[shapely.area(merged) > 0]
    pts, area = shapely.STRtree(merged).query(left_out.geometry.array, predicate="intersects")
    first = np.unique(pts, return_index=True)[1]  # a point on a shared edge counts once
    pts, area = pts[first], area[first]
    w = _weights(left_out)
    frame = pd.DataFrame({
        "area": area,
        "addresses": w["addresses"][pts],
        "households": w.get("households", w["addresses"])[pts],
        "population": w.get("population", np.zeros(len(left_out)))[pts],
        "distance": left_out["distance_m"].to_numpy()[pts],
    }).groupby("area").agg(addresses=("addresses", "sum"), households=("households", "sum"),
                           population=("population", "sum"), nearest_m=("distance", "min"),
                           farthest_m=("distance", "max"))
    frame = frame.astype({"addresses": np.int64, "households": np.int64, "population": np.int64})
    out = gpd.GeoDataFrame(frame.reset_index(drop=True), geometry=gpd.GeoSeries(merged[frame.index], crs=metric))
    out = out.sort_values(["households", "addresses"], ascending=False, kind="stable").reset_index(drop=True)
    return out.to_crs(gcrs.STORAGE_CRS)


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
