"""Walking-distance coverage of the whole city: gridgeo against networkx and pandana.

On the city-scale sample (about 800,000 addresses, 1,759 stations, 54,000
road lines) this measures, in one run:

- building the walking network from the road lines (target: under 30 s);
- coverage of every address once the network is built: snapping every
  address and station, one multi-source Dijkstra, the nearest station, the
  distance and the life circle of every address (target: under 3 s);
- the baseline: networkx Dijkstra from every station in turn, the same
  answer as gridgeo's (every address's nearest station and distance, no
  bound), every address taking its nearest network node (target: at least
  20 times slower than gridgeo). A full run takes many minutes, so by
  default it runs from ``--baseline-stations`` stations drawn at random and
  the time is scaled to all of them (each search costs the same whatever
  the others do); ``--baseline-stations 0`` runs them all;
- the same baseline bounded at 1,000 m (the 15-minute circle), which
  answers less (no distance beyond 1 km) but is what a per-station
  isochrone tool would do; run in full;
- the peer pandana (contraction hierarchies): its network build and its
  nearest-POI query, addresses and stations placed on their nearest node.

Usage: ``python benchmarks/coverage.py [--repeat 5] [--baseline-stations 60]``.
Every gridgeo figure is the median of ``--repeat`` runs; the networkx
baselines run once.
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np

from common import city_sample, median_time, report

from gridgeo import coverage, network

CUTOFF_M = 1000.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--baseline-stations", type=int, default=60,
                        help="stations the unbounded networkx baseline runs from (0: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    city = city_sample()
    roads, addresses, stations = city.roads, city.addresses, city.stations

    build_s, net = median_time(lambda: network.build(roads), repeat=3)
    cover_s, cov = median_time(lambda: coverage.nearest_station(addresses, stations, net), repeat=args.repeat)
    table = coverage.summary(cov)

    graph = net.to_networkx()
    sample_n = args.baseline_stations or len(stations)
    picked = np.sort(np.random.default_rng(5).choice(len(stations), min(sample_n, len(stations)), replace=False))
    full_s, _ = _networkx_per_station(net, graph, addresses, stations.iloc[picked], cutoff=None)
    full_s *= len(stations) / len(picked)
    nx_s, nx_dist = _networkx_per_station(net, graph, addresses, stations, cutoff=CUTOFF_M)
    pandana_build_s, pandana_query_s, pd_dist = _pandana(net, addresses, stations)

    within = lambda d: np.nansum(np.where(d <= CUTOFF_M, addresses["households"].to_numpy(), 0))  # noqa: E731
    report("city-scale sample", [
        ("road lines", f"{len(roads):,}"),
        ("network", f"{net.n_nodes:,} nodes, {net.n_edges:,} edges, {net.edge_length.sum() / 1000:,.0f} km, "
                    f"{len(net.components())} pieces"),
        ("addresses / stations", f"{len(addresses):,} / {len(stations):,}"),
    ])
    report("building the walking network (median)", [
        ("gridgeo network.build", f"{build_s:.2f} s (target < 30 s)"),
        ("pandana Network (contraction hierarchies)", f"{pandana_build_s:.2f} s"),
    ])
    report("coverage of every address, network built (gridgeo: median)", [
        ("gridgeo nearest_station (snap + 1 multi-source Dijkstra)", f"{cover_s:.2f} s (target < 3 s)"),
        (f"networkx Dijkstra per station, unbounded ({len(picked):,} of {len(stations):,} run"
         + (", scaled)" if len(picked) < len(stations) else ")"), f"{full_s:.1f} s"),
        ("  ratio networkx / gridgeo", f"{full_s / cover_s:.0f}x (target >= 20x)"),
        ("networkx Dijkstra per station, cut at 1,000 m (all run)", f"{nx_s:.1f} s"),
        ("  ratio networkx bounded / gridgeo", f"{nx_s / cover_s:.1f}x"),
        ("pandana nearest_pois + nearest nodes", f"{pandana_query_s:.2f} s"),
        ("  ratio pandana / gridgeo", f"{pandana_query_s / cover_s:.2f}x"),
    ])
    report("households within 1,000 m (the 15-minute circle)", [
        ("gridgeo (snapped to the nearest road)", f"{table.loc[15, 'households']:,.0f} "
                                                  f"({table.loc[15, 'share_households']:.1%})"),
        ("networkx bounded baseline (nearest node)", f"{within(nx_dist):,.0f}"),
        ("pandana (nearest node)", f"{within(pd_dist):,.0f}"),
    ])


def _node_xy(net):
    return net.node_xy[:, 0], net.node_xy[:, 1]


def _nearest_nodes(net, frame):
    """Every point's nearest network node (the usual shortcut of per-node tools) and its distance."""
    from scipy.spatial import cKDTree

    xy = np.column_stack(frame.to_crs(net.crs).geometry.get_coordinates().to_numpy().T)
    dist, node = cKDTree(net.node_xy).query(xy, workers=-1)
    return node, dist


def _networkx_per_station(net, graph, addresses, stations, *, cutoff):
    """networkx: a Dijkstra from each station (bounded at `cutoff`); addresses take the best node."""
    import networkx as nx

    start = time.perf_counter()
    station_node, station_access = _nearest_nodes(net, stations)
    addr_node, addr_access = _nearest_nodes(net, addresses)
    best = np.full(net.n_nodes, np.inf)
    for node, access in zip(station_node.tolist(), station_access.tolist()):
        bound = None if cutoff is None else cutoff - access
        reach = nx.single_source_dijkstra_path_length(graph, node, cutoff=bound, weight="length")
        nodes = np.fromiter(reach.keys(), dtype=np.int64, count=len(reach))
        dist = np.fromiter(reach.values(), dtype=float, count=len(reach)) + access
        np.minimum.at(best, nodes, dist)
    result = best[addr_node] + addr_access
    return time.perf_counter() - start, result


def _pandana(net, addresses, stations):
    import pandana
    import pandas as pd

    x, y = _node_xy(net)
    start = time.perf_counter()
    pnet = pandana.Network(pd.Series(x), pd.Series(y), pd.Series(net.edge_u), pd.Series(net.edge_v),
                           pd.DataFrame({"length": net.edge_length}), twoway=True)
    build_s = time.perf_counter() - start

    def query():
        sxy = stations.to_crs(net.crs).geometry.get_coordinates()
        pnet.set_pois("stations", maxdist=CUTOFF_M, maxitems=1, x_col=sxy["x"], y_col=sxy["y"])
        nearest = pnet.nearest_pois(CUTOFF_M, "stations", num_pois=1, max_distance=np.inf)[1].to_numpy()
        axy = addresses.to_crs(net.crs).geometry.get_coordinates()
        nodes = pnet.get_node_ids(axy["x"], axy["y"]).to_numpy()
        return nearest[nodes]

    query_s, dist = median_time(query, repeat=3)
    return build_s, query_s, dist


if __name__ == "__main__":
    main()
