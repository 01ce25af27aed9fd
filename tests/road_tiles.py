"""The store's roads a roads tile must hold, for the tests of both pages: every segment that
crosses the tile's box, and at most those that come within its buffer and the simplification
tolerance. Counted by road id (a road has several segments sharing its id)."""

from __future__ import annotations

from collections import Counter

import gridgeo.store
from gridgeo.tiles import TMS

EXTENT, BUFFER, TOLERANCE = 4096, 80, 8


def store_roads(path):
    """The store's published roads in Web Mercator, read with gridgeo.store (not through the service)."""
    with gridgeo.store.open(str(path)) as store:
        return store.read("roads").to_crs(3857)


def expected(roads, address: str) -> tuple[Counter, Counter]:
    """(the road ids a tile ``z/x/y`` must hold, those it may hold), as Counters of segments."""
    import shapely

    z, x, y = map(int, address.split("/"))
    b = TMS.xy_bounds(x, y, z)
    unit = (b.right - b.left) / EXTENT
    inner = shapely.box(b.left, b.bottom, b.right, b.top)
    outer = inner.buffer((BUFFER + TOLERANCE) * unit, join_style="mitre")
    return Counter(roads.loc[roads.intersects(inner), "road_id"]), Counter(roads.loc[roads.intersects(outer), "road_id"])


def check_drawn(drawn: list[dict], roads, served) -> int:
    """Each tile the page drew holds the roads the served tile holds, and those are the store's
    roads crossing it; ``served(address)`` decodes the service's tile. A tile drawn past the
    tiles' last zoom (``part``) is cut from its ancestor's: it holds the roads crossing it, of
    those the ancestor holds. The roads checked."""
    by_tile: dict[tuple, Counter] = {}
    for feature in drawn:
        by_tile.setdefault((feature["tile"], feature.get("part")), Counter())[feature["road_id"]] += 1
    assert by_tile, "no road drawn"
    checked = 0
    for (address, part), got in by_tile.items():
        whole = served(address)
        if part is None:
            assert got == whole, address
            must, may = expected(roads, address)
        else:
            must, _ = expected(roads, part)
            _, may = expected(roads, address)
            assert not (got - whole), (part, got - whole)
        assert not (must - got) and not (got - may), (address, part, must - got, got - may)
        checked += sum(must.values())
    return checked
