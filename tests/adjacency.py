"""Which blocks share an edge, measured with shapely alone: the independent answer
the plan tests hold gridgeo.plan's and the service's block topology against."""

from __future__ import annotations

import networkx as nx
import shapely


def edge_graph(blocks, id_column: str = "block_id") -> nx.Graph:
    """Blocks (a GeoDataFrame) joined where they share an edge, not just a corner."""
    geoms = blocks.geometry.array
    ids = blocks[id_column]
    graph = nx.Graph()
    graph.add_nodes_from(ids)
    i, j = shapely.STRtree(geoms).query(geoms, predicate="touches")
    for a, b in zip(i[i < j], j[i < j]):
        if shapely.intersection(geoms[a].boundary, geoms[b].boundary).length > 0:
            graph.add_edge(ids.iat[a], ids.iat[b])
    return graph
