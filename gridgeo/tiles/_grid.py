"""The tiling every part of gridgeo.tiles shares: the tile matrix, box tests, TileJSON entries.

Plain names in a private module, so that the tile set, the directory export and
the archives import these rather than each other's private helpers.
"""

from __future__ import annotations

import morecantile

from gridgeo.tiles.layers import TileLayer

__all__ = ["TMS", "buffered", "overlaps", "vector_layer"]

TMS = morecantile.tms.get("WebMercatorQuad")
"""The tile matrix set of every tile: Web Mercator, as MapLibre, Leaflet and GDAL's MVT driver read."""


def vector_layer(layer: TileLayer) -> dict:
    """The TileJSON ``vector_layers`` entry of a layer."""
    return {"id": layer.name, "fields": dict(layer.fields), "minzoom": layer.minzoom,
            "maxzoom": layer.maxzoom, "description": layer.description}


def buffered(bounds, fraction):
    left, bottom, right, top = bounds
    pad = (right - left) * fraction
    return left - pad, bottom - pad, right + pad, top + pad


def overlaps(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]
