"""Writing a tile set out as tippecanoe does: a ``z/x/y.pbf`` directory, MBTiles or PMTiles.

:func:`export` is the one entry point. The directory is what GDAL's MVT
driver, QGIS and any static file server read: one uncompressed Mapbox Vector
Tile per non-empty tile and a ``metadata.json`` whose ``json`` member holds
``vector_layers`` and ``tilestats``. The single-file archives Martin,
tippecanoe's tools, QGIS and MapLibre read are written by
:mod:`gridgeo.tiles.archive` from the same tiles and the same metadata.

Zooms follow one rule, stated in :func:`export`: a range wider than the
layers' own draws the layers at its edge further; a narrower one cuts. What
is written, and only that, is what the metadata says.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from gridgeo.io import staged_directory
from gridgeo.tiles._grid import TMS, buffered, overlaps, vector_layer

__all__ = ["FORMATS", "export", "metadata"]

FORMATS = ("dir", "mbtiles", "pmtiles")
"""What :func:`export` writes: a ``z/x/y.pbf`` directory, an MBTiles 1.3 or a PMTiles v3 file."""

_SUFFIXES = {".mbtiles": "mbtiles", ".pmtiles": "pmtiles"}
_TILESTATS_VALUES = 100  # distinct values listed per attribute, as tippecanoe and GDAL do
_GEOMETRY = {"polygon": "Polygon", "line": "LineString", "point": "Point"}


def export(tileset, path, *, format: str | None = None, minzoom: int | None = None,
           maxzoom: int | None = None, layers=None, overwrite: bool = False, progress: bool = False,
           client=None) -> Path:
    """Write every non-empty tile of a tile set to a directory, an MBTiles or a PMTiles file.

    Tiles are rendered for every zoom from ``minzoom`` to ``maxzoom`` over the
    bounds of the layers drawn at that zoom; empty tiles are not written. The
    output is built completely beside ``path`` and then moved into place, so a
    failure leaves nothing half-written and an existing output untouched.

    Parameters
    ----------
    tileset : TileSet
    path : path
        Where to write. ``name.mbtiles`` and ``name.pmtiles`` are files,
        anything else a directory (unless ``format`` says otherwise).
    format : {"dir", "mbtiles", "pmtiles"}, optional
        Default: from ``path``'s suffix. A suffix that names the other
        archive format is refused.

        - ``"dir"``: ``z/x/y.pbf`` (uncompressed) and a tippecanoe-style
          ``metadata.json``; GDAL reads one zoom of it (``ogrinfo DIR/14``).
        - ``"mbtiles"``: MBTiles 1.3, see :func:`gridgeo.tiles.archive.write_mbtiles`.
        - ``"pmtiles"``: PMTiles v3, see :func:`gridgeo.tiles.archive.write_pmtiles`.
    minzoom, maxzoom : int, optional
        The zooms to write. Default: the chosen layers' own range (the
        smallest minzoom, the largest maxzoom). See Notes.
    layers : str or sequence of str, optional
        Default all layers.
    overwrite : bool, default False
        Replace an existing file or a non-empty directory.
    progress : bool, default False
        Show a progress bar (tqdm).
    client : distributed.Client, optional
        Render the tiles on this Dask cluster (see Notes); the output is the
        same, byte for byte.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists (a directory: is not empty) and ``overwrite`` is False.
    ValueError
        If the zooms are not ``0 <= minzoom <= maxzoom <= 24``, ``format``
        is unknown or contradicts the suffix, or no tile would hold anything.
    TypeError
        If a zoom is not a whole number.
    KeyError
        If a layer name is unknown.

    Notes
    -----
    The zoom rule, as a tippecanoe user expects from ``-Z``/``-z``: every
    zoom from ``minzoom`` to ``maxzoom`` gets tiles.

    - Below the chosen layers' smallest minzoom, the layers that start there
      (the top level: towns from z8 in :data:`~gridgeo.tiles.DEFAULT_ZOOMS`)
      are drawn from ``minzoom``; above the largest maxzoom, the layers that
      end there are drawn up to ``maxzoom``. Every other layer keeps its own
      range: ``minzoom=5`` puts towns at z5, not level-3 plots.
    - A narrower range cuts each layer's range; a layer left with no zoom
      (``maxzoom=9`` and grid2 from z11) is left out of the output and of
      its metadata.
    - The metadata say what was written: ``minzoom`` and ``maxzoom`` are the
      lowest and highest zooms holding a tile (a layer far smaller than a
      tile unit at z0 leaves z0 empty, and then the metadata start at z1),
      and each of ``vector_layers`` gives the zooms its layer was drawn at.

    With a `client`, the tile set is copied to every worker once (without its
    cache; geometry the tile set's ``simplified`` keeps is read here and sent
    with it) and the tiles, in the order they are written, are cut into
    runs of consecutive addresses, a few per worker; each run is rendered on
    a worker, and the runs are written here in order as they arrive. Each
    worker simplifies the zooms it draws once for itself, as this process
    would. Warnings a worker raises are raised here, once each.

    Examples
    --------
    >>> import json, tempfile
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, export, grid_layers
    >>> tiles = TileSet(grid_layers(sample.load().grids))
    >>> out = export(tiles, tempfile.mkdtemp() + "/tiles", minzoom=6, maxzoom=8, layers=["town", "village"])
    >>> sorted(p.name for p in out.iterdir())       # towns start at z8: drawn from z6 as asked
    ['6', '7', '8', 'metadata.json']
    >>> meta = json.loads((out / "metadata.json").read_text("utf-8"))
    >>> meta["minzoom"], [(v["id"], v["minzoom"]) for v in json.loads(meta["json"])["vector_layers"]]
    (6, [('town', 6)])
    """
    path = Path(path)
    kind = output_format(path, format)
    if kind != "dir":
        from gridgeo.tiles import archive

        write = archive.write_mbtiles if kind == "mbtiles" else archive.write_pmtiles
        return write(tileset, path, minzoom=minzoom, maxzoom=maxzoom, layers=layers, overwrite=overwrite,
                     progress=progress, client=client)
    ranges, _, _ = zoom_ranges(tileset, layers, minzoom, maxzoom)
    with staged_directory(path, overwrite=overwrite) as staged:
        zooms = set()
        for z, x, y, data in rendered(tileset, ranges, progress=progress, client=client):
            tile = staged / str(z) / str(x) / f"{y}.pbf"
            tile.parent.mkdir(parents=True, exist_ok=True)
            tile.write_bytes(data)
            zooms.add(z)
        meta = written_metadata(tileset, ranges, zooms, name=path.name)
        (staged / "metadata.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return path


def metadata(tileset, *, layers=None, minzoom: int | None = None, maxzoom: int | None = None,
             name: str = "gridgeo") -> dict:
    """The tippecanoe-style ``metadata.json`` of a tile set (as in an MBTiles ``metadata`` table).

    ``bounds`` and ``center`` are comma-separated strings and ``json`` is a
    JSON text holding ``vector_layers`` and ``tilestats`` (feature counts,
    geometry type, and up to 100 distinct values per attribute, with min and
    max for numbers), which is what GDAL's MVT and MBTiles drivers read.
    Zooms follow the rule of :func:`export`; an export records the zooms it
    actually wrote.

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
    ranges, lo, hi = zoom_ranges(tileset, layers, minzoom, maxzoom)
    return _metadata(tileset, ranges, lo, hi, name)


def output_format(path, format: str | None = None) -> str:
    """What :func:`export` writes at ``path``: ``"dir"``, ``"mbtiles"`` or ``"pmtiles"``.

    Examples
    --------
    >>> output_format("out/jinjiang.pmtiles"), output_format("out/tiles"), output_format("out/t", "mbtiles")
    ('pmtiles', 'dir', 'mbtiles')
    """
    suffix = Path(path).suffix.lower()
    implied = _SUFFIXES.get(suffix)
    if format is None:
        return implied or "dir"
    if format not in FORMATS:
        raise ValueError(f"unknown tile format {format!r}: use one of {', '.join(FORMATS)}")
    if implied is not None and implied != format:
        raise ValueError(f"{path} ends in {suffix} but the format asked is {format!r}: name the output for "
                         f"its format (.{format} for an archive, no archive suffix for a directory), "
                         "or leave the format out to follow the suffix")
    return format


def zoom_ranges(tileset, layers=None, minzoom: int | None = None, maxzoom: int | None = None):
    """The zooms each chosen layer is drawn at, by the rule of :func:`export`.

    Returns
    -------
    ranges : dict
        Layer name -> ``(minzoom, maxzoom)``, in the tile set's layer order;
        layers with no zoom in ``minzoom..maxzoom`` are left out.
    minzoom, maxzoom : int
        The range asked (default the layers' own).

    Examples
    --------
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, grid_layers
    >>> tiles = TileSet(grid_layers(sample.load().grids))
    >>> zoom_ranges(tiles, minzoom=5, maxzoom=10)
    ({'town': (5, 10), 'village': (10, 10)}, 5, 10)
    """
    names = tileset.names_of(layers)
    chosen = [tileset.layers[n] for n in names]
    own_lo = min(layer.minzoom for layer in chosen)
    own_hi = max(layer.maxzoom for layer in chosen)
    lo = own_lo if minzoom is None else _zoom(minzoom, "minzoom")
    hi = own_hi if maxzoom is None else _zoom(maxzoom, "maxzoom")
    if minzoom is None and hi < lo:
        raise ValueError(f"maxzoom={hi} is below z{own_lo}, where the layers {names} start: give minzoom "
                         f"too (at most {hi}) to draw them from there, or a higher maxzoom")
    if maxzoom is None and hi < lo:
        raise ValueError(f"minzoom={lo} is above z{own_hi}, where the layers {names} end: give maxzoom "
                         f"too (at least {lo}) to draw them up to there, or a lower minzoom")
    if not 0 <= lo <= hi <= TMS.maxzoom:
        raise ValueError(f"need 0 <= minzoom <= maxzoom <= {TMS.maxzoom}, got minzoom={lo}, maxzoom={hi}")
    ranges = {}
    for layer in chosen:
        first = lo if layer.minzoom == own_lo else max(layer.minzoom, lo)
        last = hi if layer.maxzoom == own_hi else min(layer.maxzoom, hi)
        if first <= last:
            ranges[layer.name] = (first, last)
    if not ranges:
        own = ", ".join(f"{layer.name} z{layer.minzoom}-{layer.maxzoom}" for layer in chosen)
        raise ValueError(f"no layer is drawn at zooms {lo}-{hi} (the layers: {own}): widen the zooms or "
                         "choose the layers drawn there")
    return ranges, lo, hi


def rendered(tileset, ranges, *, progress: bool = False, order=None, client=None):
    """``(z, x, y, data)`` of every non-empty tile, zoom by zoom, with the layers of ``ranges``.

    At each zoom the tiles covering the bounds of the layers drawn there
    are rendered (``order`` sorts them within the zoom: a key on ``(z, x,
    y)``); tiles that hold nothing are skipped. Rendering bypasses the tile
    set's cache, so an export does not flush the tiles a service keeps hot.
    With a Dask ``client`` the tiles are rendered on its workers and come
    in the same order (see :func:`export`).
    """
    addresses = []
    for z in range(min(a for a, _ in ranges.values()), max(b for _, b in ranges.values()) + 1):
        names = [n for n, (a, b) in ranges.items() if a <= z <= b]
        if not names:
            continue
        tiles = [(z, t.x, t.y) for t in TMS.tiles(*tileset.lonlat_bounds(names), zooms=[z])]
        addresses += sorted(tiles, key=order) if order is not None else tiles
    if client is not None:
        yield from _rendered_on(client, tileset, ranges, addresses, progress)
        return
    if progress:
        from tqdm import tqdm

        addresses = tqdm(addresses, desc="tiles", unit="tile")
    yield from _render_run(tileset, ranges, addresses)


def _render_run(tileset, ranges, addresses):
    """The non-empty tiles of `addresses`, in their order."""
    pad = tileset.buffer / tileset.extent
    for z, x, y in addresses:
        box = buffered(TMS.xy_bounds(x, y, z), pad)
        active = [tileset.sources[n] for n, (a, b) in ranges.items()
                  if a <= z <= b and overlaps(box, tileset.sources[n].bounds)]
        data = tileset.render_sources(active, z, x, y) if active else b""
        if data:
            yield z, x, y, data


_RUNS_PER_WORKER = 4  # runs of tiles per worker: enough to even out dense and empty areas
_RUN_MIN = 64         # tiles in a run at the least: each run is one task


def _rendered_on(client, tileset, ranges, addresses, progress):
    """:func:`rendered` on a Dask cluster: runs of consecutive addresses rendered on the workers,
    yielded in order."""
    import warnings

    from gridgeo.tiles.tileset import TileSet

    kept = tileset.sources.simplified
    if kept is not None:  # read here what the tile set keeps: the callable may hold a store
        kept = _Kept({(n, z): kept(n, z) for n, (a, b) in ranges.items() for z in range(a, b + 1)})
    copy = TileSet(list(tileset.layers.values()), version=tileset.version, extent=tileset.extent,
                   buffer=tileset.buffer, tolerance=tileset.tolerance, simplified=kept)
    shipped = client.scatter(copy, broadcast=True, hash=False)
    workers = max(1, len(client.scheduler_info()["workers"]))
    size = max(_RUN_MIN, -(-len(addresses) // (workers * _RUNS_PER_WORKER)))
    futures = [client.submit(_render_remote, shipped, ranges, addresses[i:i + size], pure=False)
               for i in range(0, len(addresses), size)]
    if progress:
        from tqdm import tqdm

        futures = tqdm(futures, desc="tile runs", unit="run")
    warned = set()
    for future in futures:
        tiles, caught = future.result()
        future.release()
        for message, category in caught:
            if (message, category) not in warned:
                warned.add((message, category))
                warnings.warn(message, category, stacklevel=4)
        yield from tiles


def _render_remote(tileset, ranges, addresses):
    """One run on a worker: its non-empty tiles and the warnings raised."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiles = list(_render_run(tileset, ranges, addresses))
    return tiles, [(str(w.message), w.category) for w in caught]


class _Kept:
    """A tile set's ``simplified`` as a table read beforehand: ``(layer, z)`` -> geometry or None."""

    def __init__(self, table):
        self.table = table

    def __call__(self, layer, z):
        return self.table.get((layer, z))


def written_metadata(tileset, ranges, zooms, *, name: str) -> dict:
    """:func:`metadata` of an export that wrote tiles at ``zooms``; refuses an export that wrote none."""
    if not zooms:
        raise ValueError(f"nothing to write: no tile of layers {list(ranges)} at zooms "
                         f"{min(a for a, _ in ranges.values())}-{max(b for _, b in ranges.values())} holds a "
                         "feature (at low zooms a small area rounds away to nothing): choose higher zooms")
    return _metadata(tileset, ranges, min(zooms), max(zooms), name)


# --- steps ----------------------------------------------------------------------


def _zoom(value, what) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} should be a whole number of 0 to {TMS.maxzoom}, got {value!r}")
    return int(value)


def _metadata(tileset, ranges, lo, hi, name):
    drawn = {n: (max(a, lo), min(b, hi)) for n, (a, b) in ranges.items() if max(a, lo) <= min(b, hi)}
    chosen = [tileset.layers[n] for n in drawn]
    west, south, east, north = tileset.lonlat_bounds(list(drawn))
    inner = {
        "vector_layers": [{**vector_layer(layer), "minzoom": drawn[layer.name][0],
                           "maxzoom": drawn[layer.name][1]} for layer in chosen],
        "tilestats": {"layerCount": len(chosen), "layers": [_layer_stats(layer) for layer in chosen]},
    }
    return {
        "name": name,
        "description": "gridgeo vector tiles: " + ", ".join(drawn),
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
