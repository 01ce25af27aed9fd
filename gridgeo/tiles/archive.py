"""Writing a tile set to one file: MBTiles 1.3 (SQLite) or PMTiles v3.

Both hold the tiles :func:`gridgeo.tiles.export` writes to a directory,
gzip-compressed as tippecanoe writes them, and the same ``vector_layers``
and ``tilestats``. MBTiles is what Martin, tippecanoe's ``tile-join``,
GDAL/QGIS and mbview read; PMTiles is what a static file server or object
store hands to MapLibre through HTTP range requests (Martin and go-pmtiles
serve it too). PMTiles is written with the ``pmtiles`` package's writer,
not by hand.

Each file is built beside its place and moved there in one step
(``os.replace``): a failure leaves no half-written file and an existing one
untouched.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from gridgeo.tiles.directory import rendered, written_metadata, zoom_ranges

__all__ = ["write_mbtiles", "write_pmtiles"]

_MBTILES_APPLICATION_ID = 0x4D504258  # "MPBX", as the MBTiles 1.3 specification says


def write_mbtiles(tileset, path, *, minzoom: int | None = None, maxzoom: int | None = None, layers=None,
                  overwrite: bool = False, progress: bool = False, client=None) -> Path:
    """Write every non-empty tile of a tile set to an MBTiles 1.3 file.

    The file is SQLite with the specification's two tables, as tippecanoe
    writes them: ``tiles`` (``zoom_level``, ``tile_column``, ``tile_row``,
    ``tile_data``; rows counted from the south, TMS style, so XYZ tile
    ``z/x/y`` is row ``2**z - 1 - y``; each tile gzip-compressed) with a
    unique index on the address, and ``metadata`` (``name``,
    ``format=pbf``, ``minzoom``, ``maxzoom``, ``bounds``, ``center``,
    ``json`` with ``vector_layers`` and ``tilestats``, ...). GDAL's MBTiles
    driver reads it (``ogrinfo -so file.mbtiles``, one zoom with ``-oo
    ZOOM_LEVEL=14``), and so do Martin and QGIS.

    Parameters
    ----------
    tileset : TileSet
    path : path
        The file to write.
    minzoom, maxzoom : int, optional
        The zooms to write, by the rule of :func:`gridgeo.tiles.export`.
    layers : str or sequence of str, optional
        Default all layers.
    overwrite : bool, default False
        Replace an existing file.
    progress : bool, default False
        Show a progress bar (tqdm).
    client : distributed.Client, optional
        Render the tiles on this Dask cluster, as :func:`gridgeo.tiles.export`
        does; the file is the same, byte for byte.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the zooms are wrong or no tile would hold anything.

    Examples
    --------
    >>> import sqlite3, tempfile
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, station_layer
    >>> from gridgeo.tiles.archive import write_mbtiles
    >>> tiles = TileSet(station_layer(sample.load().stations))
    >>> out = write_mbtiles(tiles, tempfile.mkdtemp() + "/stations.mbtiles", minzoom=12, maxzoom=13)
    >>> db = sqlite3.connect(out)
    >>> db.execute("SELECT name, value FROM metadata WHERE name IN ('format', 'minzoom', 'maxzoom') "
    ...            "ORDER BY name").fetchall()
    [('format', 'pbf'), ('maxzoom', '13'), ('minzoom', '12')]
    >>> db.execute("SELECT zoom_level, COUNT(*) FROM tiles GROUP BY zoom_level").fetchall()
    [(12, 4), (13, 7)]
    >>> db.close()
    """
    path = Path(path)
    ranges, _, _ = zoom_ranges(tileset, layers, minzoom, maxzoom)
    with _staged_file(path, overwrite) as staged, contextlib.closing(sqlite3.connect(staged)) as db:
        db.executescript(f"""
            PRAGMA application_id = {_MBTILES_APPLICATION_ID};
            CREATE TABLE metadata (name TEXT, value TEXT);
            CREATE UNIQUE INDEX name ON metadata (name);
            CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
            CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);
        """)
        zooms = set()
        with db:
            for z, x, y, data in rendered(tileset, ranges, progress=progress, client=client):
                db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (z, x, (1 << z) - 1 - y, _gzip(data)))
                zooms.add(z)
            meta = written_metadata(tileset, ranges, zooms, name=path.stem)
            db.executemany("INSERT INTO metadata VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
    return path


def write_pmtiles(tileset, path, *, minzoom: int | None = None, maxzoom: int | None = None, layers=None,
                  overwrite: bool = False, progress: bool = False, client=None) -> Path:
    """Write every non-empty tile of a tile set to a PMTiles v3 file.

    The tiles go in Hilbert order (the archive is *clustered*), each
    gzip-compressed, through :class:`pmtiles.writer.Writer`, which
    deduplicates identical tiles and builds the directories. The header
    holds the bounds of the written layers, the lowest and highest zooms
    written and the centre at the lowest; the JSON metadata holds
    ``vector_layers`` and ``tilestats`` as objects (the PMTiles
    specification's convention), with ``name``, ``description``, ``type``,
    ``version`` and ``format`` as text.

    Parameters
    ----------
    tileset : TileSet
    path : path
        The file to write.
    minzoom, maxzoom : int, optional
        The zooms to write, by the rule of :func:`gridgeo.tiles.export`.
    layers : str or sequence of str, optional
        Default all layers.
    overwrite : bool, default False
        Replace an existing file.
    progress : bool, default False
        Show a progress bar (tqdm).
    client : distributed.Client, optional
        Render the tiles on this Dask cluster, as :func:`gridgeo.tiles.export`
        does; the file is the same, byte for byte.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is False.
    ValueError
        If the zooms are wrong or no tile would hold anything.
    ImportError
        If the ``pmtiles`` package is missing (``pip install 'gridgeo[tiles]'``).

    Notes
    -----
    Tiles are written one by one as they are rendered; the writer keeps the
    directory entries in memory and the tile data in a temporary file until
    it assembles the archive.

    Examples
    --------
    >>> import tempfile
    >>> from pmtiles.reader import MmapSource, Reader
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, station_layer
    >>> from gridgeo.tiles.archive import write_pmtiles
    >>> tiles = TileSet(station_layer(sample.load().stations))
    >>> out = write_pmtiles(tiles, tempfile.mkdtemp() + "/stations.pmtiles", minzoom=12, maxzoom=13)
    >>> with open(out, "rb") as f:
    ...     reader = Reader(MmapSource(f))
    ...     header, layers = reader.header(), reader.metadata()["vector_layers"]
    >>> header["min_zoom"], header["max_zoom"], [layer["id"] for layer in layers]
    (12, 13, ['stations'])
    """
    try:
        from pmtiles.tile import Compression, TileType, zxy_to_tileid
        from pmtiles.writer import Writer
    except ImportError as exc:
        raise ImportError(f"PMTiles output needs the pmtiles package ({exc.name} is missing): "
                          "pip install 'gridgeo[tiles]', or write .mbtiles instead") from exc

    path = Path(path)
    ranges, _, _ = zoom_ranges(tileset, layers, minzoom, maxzoom)
    with _staged_file(path, overwrite) as staged, open(staged, "wb") as f:
        writer = Writer(f)
        zooms = set()
        # Hilbert order within each zoom; tile ids of a zoom all exceed those of the zoom below
        for z, x, y, data in rendered(tileset, ranges, progress=progress, order=lambda t: zxy_to_tileid(*t),
                                      client=client):
            writer.write_tile(zxy_to_tileid(z, x, y), _gzip(data))
            zooms.add(z)
        meta = written_metadata(tileset, ranges, zooms, name=path.stem)
        west, south, east, north = (float(v) for v in meta["bounds"].split(","))
        centre_lon, centre_lat, centre_zoom = meta["center"].split(",")
        header = {
            "tile_type": TileType.MVT,
            "tile_compression": Compression.GZIP,
            "min_zoom": meta["minzoom"],   # the writer sets both from the tiles it got
            "max_zoom": meta["maxzoom"],
            "min_lon_e7": math.floor(west * 1e7),
            "min_lat_e7": math.floor(south * 1e7),
            "max_lon_e7": math.ceil(east * 1e7),
            "max_lat_e7": math.ceil(north * 1e7),
            "center_zoom": int(centre_zoom),
            "center_lon_e7": round(float(centre_lon) * 1e7),
            "center_lat_e7": round(float(centre_lat) * 1e7),
        }
        writer.finalize(header, _pmtiles_metadata(meta))
    return path


# --- steps ----------------------------------------------------------------------


@contextlib.contextmanager
def _staged_file(path: Path, overwrite: bool):
    """A temporary file beside ``path`` to fill; it replaces ``path`` when the block ends without error."""
    if path.is_dir():
        raise ValueError(f"{path} is a directory: name a file for an archive (…/tiles.mbtiles), "
                         "or write a tile directory (format='dir')")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists: pass overwrite=True (--overwrite) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(handle)
    staged = Path(name)
    try:
        yield staged
        if path.exists():
            shutil.copymode(path, staged)  # keep the replaced file's permissions
        else:
            staged.chmod(0o644)
        os.replace(staged, path)
    except BaseException:
        for leftover in (staged, staged.with_name(staged.name + "-journal")):
            leftover.unlink(missing_ok=True)
        raise


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)  # mtime=0: the same tiles give the same bytes


def _pmtiles_metadata(meta: dict) -> dict:
    inner = json.loads(meta["json"])
    plain = {k: str(v) for k, v in meta.items()
             if k not in ("json", "minzoom", "maxzoom", "bounds", "center")}  # the header holds those
    return {**plain, "vector_layers": inner["vector_layers"], "tilestats": inner["tilestats"]}
