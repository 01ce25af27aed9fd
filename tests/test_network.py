"""The walking network against independent references: networkx shortest
paths on a graph built line by line with shapely and measured with pyproj's
geodesics, shapely's own noding and nearest-line queries, and pyosmium
reading an .osm file written here."""

import logging
from collections import defaultdict
from xml.sax.saxutils import quoteattr

import geopandas as gpd
import networkx as nx
import numpy as np
import pyproj
import pytest
import shapely
from shapely import LineString, Point

from gridgeo import crs as gcrs
from gridgeo import network as gn


@pytest.fixture(scope="session")
def town_network(sample):
    return gn.build(sample.roads)


GEOD = pyproj.Geod(ellps="GRS80")  # the CGCS2000 ellipsoid's a and f, said independently of gridgeo


def geodesic(lonlat_a, lonlat_b):
    """pyproj's geodesic lengths between two arrays of (lon, lat) rows."""
    return np.asarray(GEOD.inv(lonlat_a[:, 0], lonlat_a[:, 1], lonlat_b[:, 0], lonlat_b[:, 1])[2])


def to_lonlat(xy, metric):
    return np.column_stack(pyproj.Transformer.from_crs(metric, 4490, always_xy=True).transform(xy[:, 0], xy[:, 1]))


def reference_graph(roads, metric, groups):
    """A networkx graph of the road lines with every point of `groups` inserted, measured on the ellipsoid.

    Built independently of gridgeo.network: one graph node per line end
    (lines meet at shared endpoints in the sample), every point snapped to
    its nearest line in `metric` by shapely's STRtree and placed on it by
    ``line_locate_point`` (the planar snapping gridgeo does too), the line cut
    at the points it carries, and a spoke of the access distance from the
    point to its place on the line. Every length is pyproj's geodesic on the
    GRS80 ellipsoid: a line's pieces are its vertex-to-vertex geodesics, a
    point's place along the line the geodesics of the vertices before it plus
    the one from the last vertex to the place, the spoke the geodesic from
    the point to its place. Returns the graph and, per group, the graph key
    of every point.
    """
    lonlat_lines = np.asarray(roads.to_crs(4490).geometry.array)
    lines = np.asarray(roads.to_crs(metric).geometry.array)
    tree = shapely.STRtree(lines)
    on_line = defaultdict(list)
    keys = {}
    graph = nx.Graph()
    # per line: planar and geodesic distance of every vertex from the line's start
    planar_at = [np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(shapely.get_coordinates(line), axis=0).T))])
                 for line in lines]
    ground_at = [np.concatenate([[0.0], np.cumsum(GEOD.line_lengths(*shapely.get_coordinates(line).T))])
                 for line in lonlat_lines]
    for name, points in groups.items():
        pts = np.asarray(points.to_crs(metric).geometry.array)
        _, which = tree.query_nearest(pts, all_matches=False)
        pos = shapely.line_locate_point(lines[which], pts)
        place = to_lonlat(shapely.get_coordinates(shapely.line_interpolate_point(lines[which], pos)), metric)
        access = geodesic(shapely.get_coordinates(points.to_crs(4490).geometry.array), place)
        keys[name] = []
        for i, (line, p, a, q) in enumerate(zip(which.tolist(), pos.tolist(), access.tolist(), place)):
            vertex = min(int(np.searchsorted(planar_at[line], p, side="right")) - 1, len(planar_at[line]) - 2)
            start = shapely.get_coordinates(lonlat_lines[line])[vertex]
            along = min(ground_at[line][vertex] + geodesic(start[None, :], q[None, :])[0],
                        ground_at[line][-1])  # a place at the line's end, not a hair beyond it
            graph.add_edge((name, i), (name, "road", i), length=a)
            on_line[line].append((along, (name, "road", i)))
            keys[name].append((name, i))
    for i, line in enumerate(lines):
        coords = shapely.get_coordinates(line)
        start, end = tuple(np.round(coords[0], 2)), tuple(np.round(coords[-1], 2))
        chain = [(0.0, start)] + sorted(on_line[i]) + [(ground_at[i][-1], end)]
        for (p0, n0), (p1, n1) in zip(chain[:-1], chain[1:]):
            if n0 != n1:
                graph.add_edge(n0, n1, length=p1 - p0)
    return graph, keys


def roads_reaching(roads, stations):
    """The road lines of the connected pieces that hold a station (lines meeting at endpoints)."""
    line_graph = nx.Graph()
    for i, geom in enumerate(roads.geometry):
        ends = np.round(shapely.get_coordinates(geom)[[0, -1]], 7)
        line_graph.add_edge(tuple(ends[0]), tuple(ends[1]), line=i)
    _, station_line = shapely.STRtree(roads.geometry.array).query_nearest(stations.geometry.array,
                                                                          all_matches=False)
    served = set()
    for piece in nx.connected_components(line_graph):
        lines = {d["line"] for _, _, d in line_graph.subgraph(piece).edges(data=True)}
        if lines & set(station_line.tolist()):
            served |= lines
    return roads.iloc[sorted(served)]


def test_nearest_station_distances_match_networkx(sample, town_network):
    addresses, stations = sample.addresses, sample.stations
    graph, keys = reference_graph(sample.roads, town_network.crs, {"a": addresses, "s": stations})
    dist, paths = nx.multi_source_dijkstra(graph, set(keys["s"]), weight="length")
    expected = np.array([dist.get(k, np.nan) for k in keys["a"]])
    expected_station = [paths[k][0][1] if k in paths else -1 for k in keys["a"]]

    got = gn.nearest(town_network, addresses, stations.set_index(np.arange(len(stations))))

    reached = ~np.isnan(expected)
    assert reached.sum() > 17_900
    np.testing.assert_array_equal(got["distance_m"].isna().to_numpy(), ~reached)
    np.testing.assert_allclose(got["distance_m"].to_numpy()[reached], expected[reached], rtol=0, atol=1e-6)
    same = got["source"].to_numpy()[reached] == np.array(expected_station)[reached]
    assert same.mean() > 0.999  # the rest are exact ties between two stations


def test_distances_within_limit_match_networkx(sample, town_network):
    origins = sample.addresses.iloc[::40]
    sites = sample.stations.iloc[:12]
    graph, keys = reference_graph(sample.roads, town_network.crs, {"o": origins, "d": sites})
    limit = 800.0
    expected = {}
    for j, key in enumerate(keys["d"]):
        reach = nx.single_source_dijkstra_path_length(graph, key, cutoff=limit, weight="length")
        for i, okey in enumerate(keys["o"]):
            if okey in reach:
                expected[(i, j)] = reach[okey]

    got = gn.distances(town_network, origins, sites, limit_m=limit)

    pairs = dict(zip(zip(got["origin"], got["destination"]), got["distance_m"]))
    assert len(expected) > 100
    borderline = {p for p, d in expected.items() if abs(d - limit) < 1e-6}
    assert set(pairs) ^ set(expected) <= borderline
    np.testing.assert_allclose([pairs[p] for p in expected], list(expected.values()), atol=1e-6)


def test_snapping_finds_the_exact_nearest_road(sample, town_network):
    snapped = gn.snap(sample.addresses, town_network)
    lines = sample.roads.to_crs(town_network.crs).geometry.array
    points = sample.addresses.to_crs(town_network.crs).geometry.array
    which, nearest = shapely.STRtree(lines).query_nearest(points, return_distance=True, all_matches=False)
    # the nearest point in the metric CRS, its access measured on the ellipsoid
    place = shapely.get_coordinates(shapely.shortest_line(points[which[0]], lines[which[1]]))[1::2]
    ground = geodesic(shapely.get_coordinates(sample.addresses.geometry.array), to_lonlat(place, town_network.crs))

    np.testing.assert_allclose(snapped["access_m"].to_numpy(), ground, rtol=0, atol=1e-6)
    on_road = snapped.to_crs(town_network.crs).geometry.array
    np.testing.assert_allclose(shapely.distance(on_road, points), nearest, atol=1e-3)
    assert snapped.index.equals(sample.addresses.index)


def test_pieces_are_labelled_and_reported(sample, town_network, caplog):
    with caplog.at_level(logging.WARNING, logger="gridgeo.network"):
        gn.build(sample.roads)
    pieces = town_network.components()
    reference = list(nx.connected_components(town_network.to_networkx()))

    assert len(pieces) == len(reference) > 1
    assert sorted(pieces["nodes"]) == sorted(len(c) for c in reference)
    assert pieces["length_m"].is_monotonic_decreasing
    ground = sum(GEOD.geometry_length(line) for line in sample.roads.to_crs(4490).geometry)
    assert pieces["length_m"].sum() == pytest.approx(ground, rel=1e-12)
    assert f"{len(pieces)} disconnected pieces" in caplog.text


def test_crossing_lines_are_noded_like_shapely():
    # a lattice of long lines crossing without shared vertices, and a T-junction,
    # drawn in Gauss-Krüger metres (CM 120E) so that straight lines stay straight
    x0, y0 = 350_000.0, 2_742_000.0
    rows = [[(x0, y0 + 100 * i), (x0 + 800, y0 + 100 * i)] for i in range(6)]
    cols = [[(x0 + 150 * j, y0 - 50), (x0 + 150 * j, y0 + 550)] for j in range(6)]
    tee = [[(x0 + 450, y0 + 550), (x0 + 450, y0 + 750)], [(x0 + 300, y0 + 750), (x0 + 600, y0 + 750)]]
    lines = [LineString(c) for c in rows + cols + tee]
    net = gn.build(gpd.GeoDataFrame(geometry=lines, crs=4549), metric=4549)

    noded = shapely.get_parts(shapely.node(shapely.union_all(lines)))
    ref = nx.Graph()
    for line in noded:  # straight pieces, measured on the ellipsoid
        ends = shapely.get_coordinates(line)[[0, -1]]
        a, b = ends
        length = geodesic(*to_lonlat(ends, 4549)[:, None, :])[0]
        ref.add_edge(tuple(np.round(a, 2)), tuple(np.round(b, 2)), length=length)

    assert (net.n_nodes, net.n_edges) == (ref.number_of_nodes(), ref.number_of_edges()) == (57, 81)
    ours = net.to_networkx()
    ref_nodes = list(ref.nodes)
    ours_of = {k: int(np.argmin(np.hypot(*(net.node_xy - np.array(k)).T))) for k in ref_nodes}
    for src in ref_nodes[::7]:
        want = nx.single_source_dijkstra_path_length(ref, src, weight="length")
        have = nx.single_source_dijkstra_path_length(ours, ours_of[src], weight="length")
        assert len(have) == len(want)
        for k, d in want.items():
            assert have[ours_of[k]] == pytest.approx(d, abs=1e-6)


def test_osm_lines_are_not_noded_at_bridges():
    # the same crossing from OSM: two ways that share no node (a bridge) stay apart
    roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)]),
                                       LineString([(118.505, 24.775), (118.505, 24.785)])], crs=4490)
    assert gn.build(roads, node_crossings=False).n_nodes == 4
    assert gn.build(roads).n_nodes == 5


def write_osm(path, roads, extra_ways=()):
    """Write road lines as an OSM XML file: one node per distinct coordinate."""
    coords = shapely.get_coordinates(roads.geometry.array)
    ids = {}
    for lon, lat in np.round(coords, 7).tolist():
        ids.setdefault((lon, lat), len(ids) + 1)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="gridgeo tests">']
    lines += [f'  <node id="{i}" version="1" lat="{lat:.7f}" lon="{lon:.7f}"/>' for (lon, lat), i in ids.items()]
    ways = [(geom, {"highway": "primary" if cls == "arterial" else "residential", "name": name})
            for geom, cls, name in zip(roads.geometry, roads["class"], roads["name"])] + list(extra_ways)
    for w, (geom, tags) in enumerate(ways, start=1):
        refs = "".join(f'<nd ref="{ids[(lon, lat)]}"/>'
                       for lon, lat in np.round(shapely.get_coordinates(geom), 7).tolist())
        tag_xml = "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags.items())
        lines.append(f'  <way id="{w}" version="1">{refs}{tag_xml}</way>')
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")


def test_network_from_osm_file_matches_the_same_lines(sample, tmp_path):
    box = shapely.box(118.44, 24.77, 118.47, 24.80)
    roads = sample.roads[sample.roads.within(box)].reset_index(drop=True)
    a, b = shapely.get_coordinates(roads.geometry.iloc[0])[[0, -1]]
    motorway = (LineString([a, b]), {"highway": "motorway"})
    no_foot = (LineString([a, b]), {"highway": "trunk", "foot": "no"})
    path = tmp_path / "town.osm"
    write_osm(path, roads, extra_ways=[motorway, no_foot])

    read = gn.read_osm(path)
    from_osm = gn.build(path)
    from_lines = gn.build(roads, node_crossings=False)

    assert len(read) == len(roads) and set(read["highway"]) == {"primary", "residential"}
    assert read.crs == gcrs.STORAGE_CRS
    assert (from_osm.n_nodes, from_osm.n_edges) == (from_lines.n_nodes, from_lines.n_edges)
    assert from_osm.edge_length.sum() == pytest.approx(from_lines.edge_length.sum(), rel=1e-9)
    assert sorted(from_osm.components()["nodes"]) == sorted(from_lines.components()["nodes"])


def test_network_from_osm_pbf(sample, tmp_path):
    import osmium

    roads = sample.roads[sample.roads.within(shapely.box(118.44, 24.77, 118.46, 24.79))].reset_index(drop=True)
    write_osm(tmp_path / "town.osm", roads)
    with osmium.SimpleWriter(str(tmp_path / "town.osm.pbf")) as writer:  # the same data as PBF
        for obj in osmium.FileProcessor(str(tmp_path / "town.osm")):
            (writer.add_node if obj.is_node() else writer.add_way)(obj)

    from_pbf = gn.build(tmp_path / "town.osm.pbf")
    from_xml = gn.build(tmp_path / "town.osm")
    assert from_pbf.n_edges == from_xml.n_edges > 100
    assert from_pbf.edge_length.sum() == pytest.approx(from_xml.edge_length.sum(), rel=1e-9)


def test_roads_in_degrees_become_metres(sample):
    roads = sample.roads.iloc[:300].to_crs(4326)
    net = gn.build(roads)
    metric = gcrs.metric_crs(roads)
    assert net.crs == metric
    ground = sum(GEOD.geometry_length(line) for line in roads.to_crs(4490).geometry)
    assert net.edge_length.sum() == pytest.approx(ground, rel=1e-10)  # (short edges: micrometres, see below)
    assert abs(net.edge_length.sum() / roads.to_crs(metric).length.sum() - 1) < 1e-3  # metres, not degrees


def test_roads_in_a_projected_crs_are_accepted(sample):
    roads = sample.roads.iloc[:300]
    net = gn.build(roads.to_crs(4549))
    reference = gn.build(roads)
    assert net.edge_length.sum() == pytest.approx(reference.edge_length.sum(), rel=1e-6)


def test_empty_road_layer_is_refused():
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=4490))
    with pytest.raises(gn.NetworkError, match="empty.*method='straight'"):
        gn.build(empty)


def test_layer_without_lines_is_refused():
    points = gpd.GeoDataFrame(geometry=[Point(118.5, 24.78)], crs=4490)
    with pytest.raises(gn.NetworkError, match="no LineStrings"):
        gn.build(points, name="roads.geojson")


def test_roads_without_crs_must_say_what_they_are():
    roads = gpd.GeoDataFrame(geometry=[LineString([(118.50, 24.78), (118.51, 24.78)])])
    with pytest.raises(gcrs.CRSError, match="no coordinate system"):
        gn.build(roads)
    assert gn.build(roads, source="wgs84").n_edges == 1


def test_points_far_from_roads_keep_their_distance(town_network):
    far = gpd.GeoSeries([Point(118.30, 24.80)], crs=4490)  # ~15 km west of the town
    snapped = gn.snap(far, town_network)
    assert snapped["access_m"].iloc[0] > 10_000
    lines = town_network.edges(crs=town_network.crs).geometry.array
    point = far.to_crs(town_network.crs).iloc[0]
    place = shapely.get_coordinates(shapely.shortest_line(point, lines[shapely.distance(point, lines).argmin()]))[1]
    exact = geodesic(shapely.get_coordinates(far.array), to_lonlat(place[None, :], town_network.crs))[0]
    assert snapped["access_m"].iloc[0] == pytest.approx(exact, rel=1e-9)


def test_non_points_are_refused(town_network):
    poly = gpd.GeoSeries([shapely.box(118.45, 24.78, 118.46, 24.79)], crs=4490)
    with pytest.raises(gn.NetworkError, match="not points.*representative_point"):
        gn.snap(poly, town_network, name="buildings")


def test_edges_and_nodes_frames(town_network):
    edges = town_network.edges()
    nodes = town_network.nodes()
    assert edges.crs == gcrs.STORAGE_CRS and len(edges) == town_network.n_edges
    assert {"name", "class", "length_m", "component"} <= set(edges.columns)
    assert nodes["degree"].sum() == 2 * town_network.n_edges


def test_short_geodesics_are_pyprojs_to_micrometres():
    """The radii-of-curvature lengths below 1 km against pyproj's geodesics on the CGCS2000 ellipsoid
    (a Geod made here from its two constants), over China's latitudes; longer ones are pyproj's own."""
    geod = pyproj.Geod(a=6378137.0, rf=298.257222101)
    rng = np.random.default_rng(22)
    n = 200_000
    lon, lat = rng.uniform(73, 135, n), rng.uniform(18, 53.5, n)
    length = np.r_[10 ** rng.uniform(-3, 3, n - 2_000), rng.uniform(1_000, 60_000, 2_000)]
    lon2, lat2, _ = geod.fwd(lon, lat, rng.uniform(0, 360, n), length)
    _, _, expected = geod.inv(lon, lat, lon2, lat2)
    ours = gn._geodesic(np.c_[lon, lat], np.c_[lon2, lat2])
    short = ours < gn._SHORT_M
    assert short.sum() > 150_000 and (~short).sum() > 1_500
    assert np.abs(ours[short] - expected[short]).max() < 5e-6
    assert np.abs(ours[~short] - expected[~short]).max() < 1e-6
    # a planar reading of the same steps (what the radii replace) would not pass
    assert np.abs(np.hypot((lon2 - lon) * 111_320 * np.cos(np.radians(lat)), (lat2 - lat) * 110_574)
                  - expected)[short].max() > 1e-3
