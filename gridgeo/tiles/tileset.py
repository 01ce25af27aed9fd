"""Mapbox Vector Tiles of one or more layers, rendered on demand and cached.

The design in one paragraph: each layer is projected to Web Mercator once.
For each zoom a polygon layer is simplified ONCE, as a coverage
(:func:`shapely.coverage_simplify`, so neighbours keep one shared edge), at a
tolerance tied to the zoom's pixel size, and the result is kept with an
STRtree. A cold tile then costs one tree query, the clipping of a few
polygons to the tile box (buffered so that strokes do not show seams),
snapping to the tile's integer grid and encoding with
:mod:`gridgeo.tiles.mvt`. Tile geometry (bounds, zoom ranges, which tiles
cover an area) is morecantile's ``WebMercatorQuad``.

The map to tile coordinates is one vectorised transform, the few geometries
rounding makes invalid are snap-rounded again by GEOS, and rings are
oriented with :func:`shapely.orient_polygons`, so the encoder gets integer
coordinates, y down, wound as the specification says. (mapbox-vector-tile,
which encoded tiles before :mod:`gridgeo.tiles.mvt`, can map and wind
coordinates itself, but with a Python call per coordinate and without
repairing what rounding breaks; it stays the reference decoder of the
tests.)
"""

from __future__ import annotations

import hashlib
import threading
import warnings

import morecantile
import numpy as np
import pandas as pd
import shapely

from gridgeo.tiles._grid import TMS, buffered, overlaps, vector_layer
from gridgeo.tiles.layers import TileLayer
from gridgeo.tiles.mvt import Attributes, encode_layer, encode_tile

__all__ = ["TileSet", "TileError", "TMS"]

"""The tile matrix set of every gridgeo tile: OGC WebMercatorQuad (XYZ, EPSG:3857)."""

TILEJSON_VERSION = "3.0.0"

_COLLECTION = 7  # shapely.get_type_id of a GeometryCollection


class TileError(ValueError):
    """A tile address that does not exist in the tile matrix set (an API answers 404)."""


class TileSet:
    """Vector tiles of one or more :class:`TileLayer`.

    Parameters
    ----------
    layers : TileLayer or sequence of TileLayer
        Layer names must be unique; their order is the order in a tile.
    version : str, optional
        The data version the tiles are rendered from (a store's publish
        version). Cache keys and ETags include it, so a new version never
        serves an old tile. Default: a hash of the layers' content.
    cache : TileCache, optional
        Where rendered tiles are kept; None renders every request.
    extent : int, default 4096
        Tile coordinates run from 0 to ``extent`` across a tile.
    buffer : int, default 80
        How far beyond the tile edge (in tile units: 80 is 5 pixels of a
        256-pixel tile, as tippecanoe and GDAL do) polygons and lines are
        kept, so that outlines do not show at tile edges.
    tolerance : float, default 8
        Simplification per zoom, in tile units (8 is one pixel of a
        512-pixel tile): the tolerance of :func:`shapely.coverage_simplify`
        in metres is ``tolerance`` times the zoom's tile-unit size.
    simplified : callable, optional
        ``simplified(layer, z)``: a layer's geometry already simplified for
        zoom ``z`` (Web Mercator, one geometry per feature in the layer's
        order, as :meth:`zoom_geometry` gives it), or None. What it gives is
        used instead of simplifying again: :mod:`gridgeo.derived` keeps it
        in the store, so a restarted service reads it.

    Attributes
    ----------
    layers : dict
        Name -> TileLayer.
    version : str
    bounds : tuple
        ``(west, south, east, north)`` of all layers, in degrees.
    minzoom, maxzoom : int
        The smallest minzoom and largest maxzoom of the layers.

    Notes
    -----
    Boundary rules:

    - A tile outside a layer's zoom range, or whose (buffered) box does not
      reach the layer's bounds, holds nothing of it; this is decided from the
      zoom and the bounds alone, without touching geometry.
    - A polygon or line is clipped to the tile box buffered by ``buffer``;
      parts that vanish on the tile's integer grid are dropped.
    - A point belongs to exactly one tile at each zoom: the one whose box
      (``TMS.xy_bounds``) holds it, west and north edges included, east and
      south excluded, as :meth:`morecantile.TileMatrixSet.tile` decides (up
      to floating-point noise for a point on the edge itself).
    - Polygon exterior rings have positive area in tile coordinates (y
      down), interior rings negative, as the MVT 2.1 specification says.

    Everything here is thread-safe: the API renders from a thread pool.

    Examples
    --------
    >>> from gridgeo import sample
    >>> from gridgeo.tiles import TileSet, grid_layers
    >>> tiles = TileSet(grid_layers(sample.load().grids))
    >>> tiles.minzoom, tiles.maxzoom
    (8, 16)
    >>> tiles.tile(3, 0, 0)     # far from Jinjiang: an empty tile (an API answers 204)
    b''
    """

    def __init__(self, layers, *, version: str | None = None, cache=None, extent: int = 4096,
                 buffer: int = 80, tolerance: float = 8.0, simplified=None):
        layers = [layers] if isinstance(layers, TileLayer) else list(layers)
        _check_layers(layers)
        if extent <= 0 or buffer < 0 or tolerance < 0:
            raise ValueError(f"need extent > 0, buffer >= 0 and tolerance >= 0, got extent={extent}, "
                             f"buffer={buffer}, tolerance={tolerance}")
        self.layers = {layer.name: layer for layer in layers}
        self.extent = int(extent)
        self.buffer = int(buffer)
        self.tolerance = float(tolerance)
        self.cache = cache
        self.version = str(version) if version is not None else _content_version(layers)
        # each layer's source (its Web Mercator geometry, encoded attributes, zooms) is made on the
        # first tile that needs it: a service's first grid2 tile does not wait for every layer
        self.sources = _Sources({layer.name: layer for layer in layers}, simplified)
        # tiles rendered with other settings must not share cache entries
        default = (self.extent, self.buffer, self.tolerance) == (4096, 80, 8.0)
        self._namespace = self.version if default else f"{self.version}-e{extent}b{buffer}t{tolerance:g}"

    @property
    def nbytes(self) -> int:
        """Bytes the tile set holds in memory: its layers and the zoom geometry read so far (grows as
        tiles of new zooms are asked for, up to every zoom of every layer); not the tiles of its cache."""
        return sum(source.nbytes for source in list(self.sources.values()))  # those made so far

    def __repr__(self) -> str:
        return f"TileSet({list(self.layers)}, version={self.version!r}, zooms {self.minzoom}-{self.maxzoom})"

    def __reduce__(self):
        """Pickled (a Dask worker's copy) without its cache and the zoom geometry made so far, which the
        copy makes again or takes from ``simplified`` (which must pickle too)."""
        return (_restored, (list(self.layers.values()), self.version, self.extent, self.buffer, self.tolerance,
                            self.sources.simplified))

    @property
    def minzoom(self) -> int:
        return min(layer.minzoom for layer in self.layers.values())

    @property
    def maxzoom(self) -> int:
        return max(layer.maxzoom for layer in self.layers.values())

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.lonlat_bounds()

    def lonlat_bounds(self, layers=None) -> tuple[float, float, float, float]:
        """``(west, south, east, north)`` in degrees of the chosen layers (default all)."""
        boxes = np.array([self.layers[name].frame.total_bounds for name in self.names_of(layers)])
        return (float(boxes[:, 0].min()), float(boxes[:, 1].min()),
                float(boxes[:, 2].max()), float(boxes[:, 3].max()))

    def tile(self, z: int, x: int, y: int, *, layers=None) -> bytes:
        """The Mapbox Vector Tile at ``z/x/y``, encoded; ``b""`` when it holds nothing.

        Parameters
        ----------
        z, x, y : int
            XYZ tile address (x east, y south from the north-west corner).
        layers : str or sequence of str, optional
            The layers to put in the tile (default all): the API's
            ``/tiles/{layer}/{z}/{x}/{y}.mvt`` passes one name.

        Returns
        -------
        bytes
            An MVT 2.1 tile with one MVT layer per non-empty layer, or ``b""``
            for a tile with no feature at all (an API answers 204 No
            Content). Out of a layer's zoom range or bounds, ``b""`` comes
            back without touching geometry.

        Raises
        ------
        TileError
            If ``z/x/y`` is not a tile of WebMercatorQuad.
        KeyError
            If a layer name is unknown.

        Examples
        --------
        >>> import mapbox_vector_tile
        >>> from gridgeo import sample
        >>> from gridgeo.tiles import TileSet, station_layer
        >>> tiles = TileSet(station_layer(sample.load().stations))
        >>> data = tiles.tile(12, 3395, 1756)
        >>> sorted(mapbox_vector_tile.decode(data))
        ['stations']
        """
        names = self.names_of(layers)
        _check_tile(z, x, y)
        active = self._active(names, z, x, y)
        if not active:
            return b""
        key = "+".join(names)
        if self.cache is not None:
            cached = self.cache.get(self._namespace, key, z, x, y)
            if cached is not None:
                return cached
        data = self.render_sources(active, z, x, y)
        if self.cache is not None:
            self.cache.put(self._namespace, key, z, x, y, data)
        return data

    def cached(self, z: int, x: int, y: int, *, layers=None) -> bytes | None:
        """The tile if it needs no rendering, else None: what the cache holds, or
        ``b""`` for a tile that zooms and bounds alone show to be empty.

        An async server answers these on its event loop and sends only the
        rest to a worker thread.

        Examples
        --------
        >>> from gridgeo import sample
        >>> from gridgeo.tiles import TileCache, TileSet, station_layer
        >>> tiles = TileSet(station_layer(sample.load().stations), cache=TileCache())
        >>> tiles.cached(12, 3395, 1756) is None       # not rendered yet
        True
        >>> tiles.tile(12, 3395, 1756) == tiles.cached(12, 3395, 1756)
        True
        >>> tiles.cached(3, 0, 0)                      # far from Jinjiang
        b''
        """
        names = self.names_of(layers)
        if self.cache is not None:
            # only a tile of the matrix is ever cached: a hit needs no check of the address
            data = self.cache.get(self._namespace, "+".join(names), int(z), int(x), int(y))
            if data is not None:
                return data
        _check_tile(z, x, y)
        return None if self._active(names, z, x, y) else b""

    def prepare(self, *, layers=None) -> "TileSet":
        """Simplify the chosen layers (default all) at every zoom of their range now.

        Otherwise each zoom is simplified on its first tile (a tenth of a
        second or so for a city's level-2 grids); a service calls this at
        start-up so that no request pays for it.

        Returns
        -------
        TileSet
            ``self``.

        Examples
        --------
        >>> from gridgeo import sample
        >>> from gridgeo.tiles import TileSet, grid_layers
        >>> tiles = TileSet(grid_layers(sample.load().grids))
        >>> tiles.prepare(layers="grid3") is tiles
        True
        """
        for name in self.names_of(layers):
            layer = self.layers[name]
            for z in range(layer.minzoom, layer.maxzoom + 1):
                self.sources[name]._at_zoom(z, self._tolerance(z))
        return self

    def zoom_geometry(self, layer: str, z: int) -> np.ndarray:
        """A layer's geometry as tiles of zoom ``z`` draw it: in Web Mercator,
        simplified for the zoom, one geometry per feature in the layer's order.

        Examples
        --------
        >>> from gridgeo import sample
        >>> from gridgeo.tiles import TileSet, grid_layers
        >>> tiles = TileSet(grid_layers(sample.load().grids))
        >>> len(tiles.zoom_geometry("grid2", 12)) == len(tiles.layers["grid2"].frame)
        True
        """
        if layer not in self.layers:
            raise KeyError(f"unknown layer {layer!r}: this tile set has {list(self.layers)}")
        return self.sources[layer]._at_zoom(int(z), self._tolerance(int(z)))[0]

    def etag(self, z: int, x: int, y: int, *, layers=None) -> str:
        """The ETag header value of a tile: a quoted hash of version, settings and address.

        It is known without rendering the tile, so an API can answer
        ``304 Not Modified`` to ``If-None-Match`` before touching it.

        Examples
        --------
        >>> from gridgeo import sample
        >>> from gridgeo.tiles import TileSet, station_layer
        >>> tiles = TileSet(station_layer(sample.load().stations), version="7")
        >>> tiles.etag(14, 13583, 7025) == TileSet(tiles.layers.values(), version="7").etag(14, 13583, 7025)
        True
        """
        key = f"{self._namespace}/{'+'.join(self.names_of(layers))}/{int(z)}/{int(x)}/{int(y)}"
        return f'"{hashlib.blake2b(key.encode(), digest_size=12).hexdigest()}"'

    def tilejson(self, url_template, *, layers=None, name: str | None = None,
                 description: str = "") -> dict:
        """A TileJSON 3.0.0 document for the chosen layers (default all).

        Parameters
        ----------
        url_template : str or sequence of str
            Where the tiles are served, e.g.
            ``"https://host/tiles/grid2/{z}/{x}/{y}.mvt"``.
        layers : str or sequence of str, optional
        name, description : str, optional

        Returns
        -------
        dict
            ``tilejson``, ``tiles``, ``name``, ``description``, ``bounds``
            (degrees), ``center`` ([lon, lat, zoom]), ``minzoom``,
            ``maxzoom`` and ``vector_layers`` (``id``, ``fields`` as name ->
            ``"String"``/``"Number"``/``"Boolean"``, ``minzoom``,
            ``maxzoom``, ``description``).

        Examples
        --------
        >>> from gridgeo import sample
        >>> from gridgeo.tiles import TileSet, grid_layers
        >>> tiles = TileSet(grid_layers(sample.load().grids))
        >>> doc = tiles.tilejson("/tiles/grid2/{z}/{x}/{y}.mvt", layers="grid2")
        >>> doc["tilejson"], doc["minzoom"], [v["id"] for v in doc["vector_layers"]]
        ('3.0.0', 11, ['grid2'])
        """
        names = self.names_of(layers)
        chosen = [self.layers[n] for n in names]
        tiles = [url_template] if isinstance(url_template, str) else list(url_template)
        west, south, east, north = self.lonlat_bounds(names)
        minzoom = min(layer.minzoom for layer in chosen)
        return {
            "tilejson": TILEJSON_VERSION,
            "name": name or "+".join(names),
            "description": description,
            "tiles": tiles,
            "bounds": [west, south, east, north],
            "center": [(west + east) / 2, (south + north) / 2, minzoom],
            "minzoom": minzoom,
            "maxzoom": max(layer.maxzoom for layer in chosen),
            "vector_layers": [vector_layer(layer) for layer in chosen],
        }

    def export(self, directory, *, minzoom: int | None = None, maxzoom: int | None = None, layers=None,
               overwrite: bool = False, progress: bool = False, client=None):
        """Write the tiles to ``directory/z/x/y.pbf`` with a tippecanoe-style ``metadata.json``.

        See :func:`gridgeo.tiles.export` for the details.
        """
        from gridgeo.tiles.directory import export

        return export(self, directory, minzoom=minzoom, maxzoom=maxzoom, layers=layers,
                      overwrite=overwrite, progress=progress, client=client)

    # --- steps ----------------------------------------------------------------

    def names_of(self, layers) -> list[str]:
        if layers is None:
            return list(self.layers)
        wanted = [layers] if isinstance(layers, str) else list(layers)
        unknown = [n for n in wanted if n not in self.layers]
        if unknown:
            raise KeyError(f"unknown layer(s) {unknown}: this tile set has {list(self.layers)}")
        return [n for n in self.layers if n in wanted]

    def _active(self, names, z, x, y) -> list["_Source"]:
        """The sources that may hold something in the tile, from zooms and bounds alone."""
        in_zoom = [self.sources[n] for n in names if self.layers[n].minzoom <= z <= self.layers[n].maxzoom]
        if not in_zoom:
            return []
        box = buffered(TMS.xy_bounds(x, y, z), self.buffer / self.extent)
        return [s for s in in_zoom if overlaps(box, s.bounds)]

    def _tolerance(self, z) -> float:
        """The simplification tolerance at zoom ``z``, in Web Mercator metres."""
        bounds = TMS.xy_bounds(0, 0, z)
        return self.tolerance * (bounds.right - bounds.left) / self.extent

    def render_sources(self, sources, z, x, y) -> bytes:
        bounds = TMS.xy_bounds(x, y, z)
        grid = _TileGrid(bounds, self.extent, self.buffer)
        return encode_tile([source.encode(z, grid, self._tolerance(z)) for source in sources])


def _restored(layers, version, extent, buffer, tolerance, simplified):
    return TileSet(layers, version=version, extent=extent, buffer=buffer, tolerance=tolerance, simplified=simplified)


class _TileGrid:
    """A tile's box in Web Mercator and the affine map to its integer grid (y down)."""

    def __init__(self, bounds, extent, buffer):
        self.left, self.bottom, self.right, self.top = bounds
        self.extent = extent
        self.unit = (self.right - self.left) / extent  # metres per tile unit
        pad = buffer * self.unit
        self.clip = (self.left - pad, self.bottom - pad, self.right + pad, self.top + pad)
        self.clip_box = shapely.box(-buffer, -buffer, extent + buffer, extent + buffer)  # in tile units

    def to_tile(self, geoms):
        scale = np.array([1.0, -1.0]) / self.unit
        origin = np.array([self.left, self.top])
        return shapely.transform(geoms, lambda xy: (xy - origin) * scale)

    def holds(self, x, y):
        """Points in the tile: west and north edges in, east and south out."""
        return (x >= self.left) & (x < self.right) & (y > self.bottom) & (y <= self.top)


class _Sources(dict):
    """Layer name -> :class:`_Source`, each made (once, whatever the threads) when first asked for;
    iterating gives only those made so far."""

    def __init__(self, layers: dict, simplified):
        super().__init__()
        self._layers = layers
        self.simplified = simplified  # the tile set's ``simplified``
        self._lock = threading.Lock()

    def __missing__(self, name):
        layer = self._layers[name]  # a KeyError names the unknown layer
        with self._lock:
            if not dict.__contains__(self, name):
                dict.__setitem__(self, name, _Source(layer, self.simplified))
            return dict.__getitem__(self, name)


def _zoom_bytes(geoms, original) -> int:
    """What a zoom's geometry and tree add (nothing but the tree when it is the layer's own geometry)."""
    from gridgeo.lru import nbytes

    return 64 * len(geoms) + (0 if geoms is original else nbytes(geoms))


class _Source:
    """A layer in Web Mercator, with its simplified geometry and STRtree per zoom."""

    def __init__(self, layer: TileLayer, simplified=None):
        self.layer = layer
        self._simplified_by = simplified
        # EPSG:4490 and WGS84 are taken as identical (see gridgeo.crs): no datum shift
        mercator = layer.frame.geometry.set_crs(4326, allow_override=True).to_crs(TMS.crs.srs)
        self.geoms = np.asarray(mercator.array, dtype=object)
        self.bounds = tuple(shapely.total_bounds(self.geoms))
        self.attributes = Attributes(layer.columns())
        self._zooms: dict[int, tuple] = {}
        self._coverage: bool | None = None
        self._lock = threading.Lock()
        self._base_bytes: int | None = None
        self.zoom_bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes held: the layer, its Web Mercator geometry and the zooms read so far."""
        from gridgeo.lru import nbytes

        if self._base_bytes is None:
            self._base_bytes = nbytes(self.layer.frame) + nbytes(self.geoms) + nbytes(self.attributes)
        return self._base_bytes + self.zoom_bytes

    def encode(self, z, grid: _TileGrid, tolerance) -> bytes:
        """The layer's MVT ``Layer`` message in the tile (``b""`` when nothing of it is there)."""
        geoms, tree = self._at_zoom(z, tolerance)
        if self.layer.kind == "point":
            rows = self._points_in(geoms, tree, grid)
            shapes = _point_pixels(geoms[rows], grid)
        else:
            rows, shapes = self._clipped(geoms, tree, grid)
        if not len(rows):
            return b""
        return encode_layer(self.layer.name, shapes, kind=self.layer.kind, ids=rows, attributes=self.attributes,
                            extent=grid.extent)

    def _at_zoom(self, z, tolerance):
        found = self._zooms.get(z)
        if found is None:
            with self._lock:
                found = self._zooms.get(z)
                if found is None:
                    geoms = self._kept(z)
                    geoms = self._simplified(tolerance) if geoms is None else geoms
                    tree = shapely.STRtree(geoms)
                    tree.query(shapely.box(0, 0, 0, 0))  # build it here: building on a first query is not thread-safe
                    found = self._zooms[z] = (geoms, tree)
                    self.zoom_bytes += _zoom_bytes(geoms, self.geoms)
        return found

    def _kept(self, z):
        """The geometry of zoom ``z`` made before (the tile set's ``simplified``), or None."""
        if self._simplified_by is None:
            return None
        geoms = self._simplified_by(self.layer.name, z)
        if geoms is None:
            return None
        geoms = np.asarray(geoms, dtype=object)
        if len(geoms) != len(self.geoms):
            raise ValueError(f"the kept geometry of layer {self.layer.name!r} at zoom {z} has {len(geoms)} "
                             f"features, the layer {len(self.geoms)}: it was made from other data")
        return geoms

    def _simplified(self, tolerance):
        if self.layer.kind == "point" or tolerance == 0:
            return self.geoms
        if self.layer.kind == "line":
            return shapely.simplify(self.geoms, tolerance, preserve_topology=True)
        if self._coverage is None:
            self._coverage = bool(shapely.coverage_is_valid(self.geoms))
            if not self._coverage:
                warnings.warn(
                    f"layer {self.layer.name!r} is not a valid polygon coverage (units overlap or their "
                    "shared edges do not share vertices): each polygon is simplified alone, so neighbours "
                    "may show slivers at low zooms; check it with gridgeo.validate", stacklevel=4)
        if self._coverage:
            return shapely.coverage_simplify(self.geoms, tolerance)
        return shapely.simplify(self.geoms, tolerance, preserve_topology=True)

    @staticmethod
    def _points_in(geoms, tree, grid):
        rows = np.sort(tree.query(shapely.box(grid.left, grid.bottom, grid.right, grid.top)))
        inside = grid.holds(shapely.get_x(geoms[rows]), shapely.get_y(geoms[rows]))
        return rows[inside]

    def _clipped(self, geoms, tree, grid):
        rows = np.sort(tree.query(shapely.box(*grid.clip)))
        clipped = shapely.clip_by_rect(geoms[rows], *grid.clip)
        keep = ~shapely.is_empty(clipped)
        rows, clipped = rows[keep], clipped[keep]
        snapped = shapely.transform(grid.to_tile(clipped), np.round)
        broken = ~shapely.is_valid(snapped) | (shapely.get_type_id(snapped) == _COLLECTION)
        if broken.any():
            # rounding made a few invalid (a sliver collapsed, rings touch), or the clip
            # left a stray edge: snap-round those from the simplified source instead
            repaired = shapely.intersection(grid.to_tile(geoms[rows[broken]]), grid.clip_box, grid_size=1.0)
            snapped[broken] = _of_kind(repaired, self.layer.kind)
            keep = ~shapely.is_empty(snapped)
            rows, snapped = rows[keep], snapped[keep]
        if self.layer.kind == "polygon":
            # y points down in tile coordinates: positive (counter-clockwise in
            # shapely's terms) area is the spec's clockwise exterior ring
            snapped = shapely.orient_polygons(snapped, exterior_cw=False)
        return rows, snapped


def _of_kind(geoms, kind):
    """Only the polygons (or lines) of each geometry: snap-rounding can leave a collapsed part as a line."""
    parts, index = shapely.get_parts(geoms, return_index=True)
    keep = shapely.get_dimensions(parts) == (2 if kind == "polygon" else 1)
    owners, members = np.unique(index[keep], return_inverse=True)
    out = np.full(len(geoms), shapely.from_wkt("GEOMETRYCOLLECTION EMPTY"), dtype=object)
    collect = shapely.multipolygons if kind == "polygon" else shapely.multilinestrings
    if len(owners):
        out[owners] = collect(parts[keep], indices=members)
    return out


def _point_pixels(points, grid):
    pixels = shapely.get_coordinates(grid.to_tile(points))
    pixels = np.clip(np.floor(pixels), 0, grid.extent - 1)
    return shapely.points(pixels)


def _check_tile(z, x, y):
    if not all(isinstance(v, (int, np.integer)) for v in (z, x, y)):
        raise TileError(f"tile address {z}/{x}/{y} must be integers")
    if not TMS.is_valid(morecantile.Tile(int(x), int(y), int(z))):
        size = 2 ** int(z) if 0 <= z <= TMS.maxzoom else None
        span = f"x and y run from 0 to {size - 1}" if size else f"z runs from 0 to {TMS.maxzoom}"
        raise TileError(f"tile {z}/{x}/{y} does not exist in WebMercatorQuad: at zoom {z} {span}")


def _check_layers(layers):
    if not layers:
        raise ValueError("a TileSet needs at least one TileLayer")
    bad = [type(layer).__name__ for layer in layers if not isinstance(layer, TileLayer)]
    if bad:
        raise TypeError(f"layers should be TileLayer objects (see grid_layers, station_layer), got {bad}")
    names = [layer.name for layer in layers]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"layer names must be unique, {dup} appear more than once: pass name=... to tell them apart")


def _content_version(layers) -> str:
    digest = hashlib.blake2b(digest_size=8)
    for layer in layers:
        digest.update(repr((layer.name, layer.minzoom, layer.maxzoom, layer.fields)).encode())
        digest.update(b"".join(shapely.to_wkb(layer.frame.geometry.array, flavor="iso")))
        attrs = layer.frame[list(layer.fields)]
        digest.update(pd.util.hash_pandas_object(attrs, index=False).to_numpy().tobytes())
    return digest.hexdigest()
