"""Writing a tile set to a directory of ``z/x/y.pbf`` files, as tippecanoe does.

The directory is what GDAL's MVT driver, QGIS and any static file server
read: one uncompressed Mapbox Vector Tile per non-empty tile and a
``metadata.json`` whose ``json`` member holds ``vector_layers`` and
``tilestats``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from gridgeo.io import staged_directory
from gridgeo.tiles.tileset import TMS, vector_layer

__all__ = ["export", "metadata"]

_TILESTATS_VALUES = 100  # distinct values listed per attribute, as tippecanoe and GDAL do
_GEOMETRY = {"polygon": "Polygon", "line": "LineString", "point": "Point"}


def export(tileset, directory, *, minzoom: int | None = None, maxzoom: int | None = None, layers=None,
           overwrite: bool = False, progress: bool = False) -> Path:
    """Write every non-empty tile of a tile set to ``directory/z/x/y.pbf``, with ``metadata.json``.

    Tiles are rendered for every zoom from ``minzoom`` to ``maxzoom`` over the
    chosen layers' bounds; empty tiles are not written. The directory is
    written completely into a temporary sibling and then moved into place, so
    a failure leaves nothing half-written. GDAL reads one zoom level of it
    (``ogrinfo DIR/14``) with the MVT driver.

    Parameters
    ----------
    tileset : TileSet
    directory : path
    minzoom, maxzoom : int, optional
        Default: the chosen layers' own range.
    layers : str or sequence of str, optional
        Default all layers.
    overwrite : bool, default False
        Replace a non-empty ``directory``.
    progress : bool, default False
        Show a progress bar (tqdm).

    Returns
    -------
    Path
        ``directory``.

    Raises
    ------
    FileExistsError
        If ``directory`` is not empty and ``overwrite`` is False.

    Examples
    --------
    >>> import tempfile
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, export, station_layer
    >>> tiles = TileSet(station_layer(sample.load().stations))
    >>> out = export(tiles, tempfile.mkdtemp() + "/tiles", minzoom=12, maxzoom=13)
    >>> sorted(p.name for p in out.iterdir())
    ['12', '13', 'metadata.json']
    """
    names = tileset._names(layers)
    chosen = [tileset.layers[n] for n in names]
    lo = min(layer.minzoom for layer in chosen) if minzoom is None else int(minzoom)
    hi = max(layer.maxzoom for layer in chosen) if maxzoom is None else int(maxzoom)
    if not 0 <= lo <= hi <= TMS.maxzoom:
        raise ValueError(f"need 0 <= minzoom <= maxzoom <= {TMS.maxzoom}, got minzoom={lo}, maxzoom={hi}")
    directory = Path(directory)
    with staged_directory(directory, overwrite=overwrite) as staged:
        _write_tiles(tileset, names, staged, lo, hi, progress)
        meta = metadata(tileset, layers=names, minzoom=lo, maxzoom=hi, name=directory.name)
        (staged / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return directory


def metadata(tileset, *, layers=None, minzoom: int | None = None, maxzoom: int | None = None,
             name: str = "gridgeo") -> dict:
    """The tippecanoe-style ``metadata.json`` of a tile set (as in an MBTiles ``metadata`` table).

    ``bounds`` and ``center`` are comma-separated strings and ``json`` is a
    JSON text holding ``vector_layers`` and ``tilestats`` (feature counts,
    geometry type, and up to 100 distinct values per attribute, with min and
    max for numbers), which is what GDAL's MVT and MBTiles drivers read.

    Examples
    --------
    >>> import json
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, station_layer
    >>> from gridgeo.tiles.directory import metadata
    >>> meta = metadata(TileSet(station_layer(sample.load().stations)))
    >>> json.loads(meta["json"])["tilestats"]["layers"][0]["count"]
    104
    """
    names = tileset._names(layers)
    chosen = [tileset.layers[n] for n in names]
    lo = min(layer.minzoom for layer in chosen) if minzoom is None else minzoom
    hi = max(layer.maxzoom for layer in chosen) if maxzoom is None else maxzoom
    west, south, east, north = tileset.lonlat_bounds(names)
    inner = {
        "vector_layers": [{**vector_layer(layer), "minzoom": max(layer.minzoom, lo),
                           "maxzoom": min(layer.maxzoom, hi)} for layer in chosen],
        "tilestats": {"layerCount": len(chosen), "layers": [_layer_stats(layer) for layer in chosen]},
    }
    return {
        "name": name,
        "description": "gridgeo vector tiles: " + ", ".join(names),
        "version": 2,
        "minzoom": lo,
        "maxzoom": hi,
        "center": f"{(west + east) / 2:.7f},{(south + north) / 2:.7f},{lo}",
        "bounds": f"{west:.7f},{south:.7f},{east:.7f},{north:.7f}",
        "type": "overlay",
        "format": "pbf",
        "generator": "gridgeo",
        "gridgeo_version": tileset.version,
        "json": json.dumps(inner, ensure_ascii=False),
    }


# --- steps ----------------------------------------------------------------------


def _write_tiles(tileset, names, root, lo, hi, progress):
    west, south, east, north = tileset.lonlat_bounds(names)
    tiles = list(TMS.tiles(west, south, east, north, zooms=list(range(lo, hi + 1))))
    if progress:
        from tqdm import tqdm

        tiles = tqdm(tiles, desc="tiles", unit="tile")
    for tile in tiles:
        # render directly: an export must not flush the hot tiles out of a shared cache
        active = tileset._active(names, tile.z, tile.x, tile.y)
        data = tileset._render(active, tile.z, tile.x, tile.y) if active else b""
        if data:
            path = root / str(tile.z) / str(tile.x) / f"{tile.y}.pbf"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _layer_stats(layer) -> dict:
    attributes = []
    for column, kind in layer.fields.items():
        values = layer.frame[column].dropna()
        distinct = pd.unique(values)
        entry = {"attribute": column, "count": int(len(distinct)), "type": kind.lower()}
        if kind == "Number":
            numbers = np.sort(distinct.astype(float))
            listed = numbers[:_TILESTATS_VALUES]
            entry["values"] = [int(v) if float(v).is_integer() else float(v) for v in listed]
            if len(numbers):
                entry["min"], entry["max"] = _plain(numbers[0]), _plain(numbers[-1])
        elif kind == "Boolean":
            entry["values"] = sorted(bool(v) for v in distinct)
        else:
            entry["values"] = sorted(str(v) for v in distinct)[:_TILESTATS_VALUES]
        attributes.append(entry)
    return {"layer": layer.name, "count": int(len(layer.frame)), "geometry": _GEOMETRY[layer.kind],
            "attributeCount": len(attributes), "attributes": attributes}


def _plain(value: float):
    return int(value) if float(value).is_integer() else float(value)
