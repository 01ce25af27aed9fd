"""Vector tiles (Mapbox Vector Tiles) of grids, stations, roads and event counts.

Build the layers, put them in a :class:`TileSet`, and ask it for tiles::

    from gridgeo import sample
    from gridgeo.tiles import TileCache, TileSet, event_counts, grid_layers, station_layer, TileLayer

    s = sample.load()
    counts = event_counts(s.events, s.grids, level="grid2", by="category")
    tiles = TileSet([*grid_layers(s.grids), station_layer(s.stations),
                     TileLayer(counts, "events", minzoom=11, maxzoom=16)],
                    version="1", cache=TileCache(max_bytes=64 * 2**20))
    tiles.tile(14, 13583, 7025)                        # bytes; b"" for an empty tile
    tiles.tilejson("/tiles/{z}/{x}/{y}.mvt")           # TileJSON 3.0.0
    tiles.export("tiles/")                             # z/x/y.pbf + metadata.json (GDAL, QGIS)
    tiles.export("jinjiang.mbtiles")                   # MBTiles 1.3 (Martin, GDAL, QGIS)
    tiles.export("jinjiang.pmtiles", minzoom=5)        # PMTiles v3 (MapLibre from a file server); towns from z5

Public layers carry aggregates only: events become counts per unit or
hexagon with :func:`event_counts`; addresses are never published point by
point.
"""

from gridgeo.tiles.aggregate import event_cells, event_counts
from gridgeo.tiles.archive import write_mbtiles, write_pmtiles
from gridgeo.tiles.cache import TileCache
from gridgeo.tiles.directory import export
from gridgeo.tiles.layers import DEFAULT_ZOOMS, TileLayer, boundary_layer, grid_layers, road_layer, station_layer
from gridgeo.tiles.tileset import TMS, TileError, TileSet

__all__ = [
    "DEFAULT_ZOOMS",
    "TMS",
    "TileCache",
    "TileError",
    "TileLayer",
    "TileSet",
    "boundary_layer",
    "event_counts",
    "event_cells",
    "export",
    "grid_layers",
    "road_layer",
    "station_layer",
    "write_mbtiles",
    "write_pmtiles",
]
