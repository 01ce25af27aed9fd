"""``gridgeo tiles export``: write vector tiles to a z/x/y directory, an MBTiles or a PMTiles file."""

import re
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli._intake import print_intake, scheme_option

tiles_app = typer.Typer(help="Mapbox Vector Tiles of grids, stations and event counts.", no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")


class Format(str, Enum):
    mbtiles = "mbtiles"
    pmtiles = "pmtiles"
    dir = "dir"


@tiles_app.command("export")
def export(
    sources: List[Path] = typer.Argument(..., help="Files of grids, stations, events or roads, as offices "
                                                   "write them (read the way `gridgeo load` reads them), or a "
                                                   "sample directory written by `gridgeo sample`."),
    out: Path = typer.Argument(..., help="Where to write: NAME.mbtiles, NAME.pmtiles, or a directory "
                                         "(z/x/y.pbf and metadata.json)."),
    format: Optional[Format] = typer.Option(None, "--format", help="mbtiles, pmtiles or dir (default: from "
                                                                  "OUT's suffix, a directory without one)."),
    minzoom: Optional[int] = typer.Option(None, help="First zoom to write (default: the layers' own). Below "
                                                     "the layers' own, the top layer (towns) is drawn from it."),
    maxzoom: Optional[int] = typer.Option(None, help="Last zoom to write (default: the layers' own). Above the "
                                                     "layers' own, the layers that end there are drawn up to it."),
    layers: Optional[str] = typer.Option(None, help="Comma-separated layer names to keep (default all)."),
    crs: Optional[str] = typer.Option(None, help="The coordinates' system when a file does not say it: "
                                                 "wgs84, cgcs2000, gcj02 (Amap), bd09 (Baidu) or an EPSG code."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="The code scheme of the grids: default, beijing, "
                                         "prefecture, or a JSON file of one (as for gridgeo load)."),
    events_level: Optional[str] = typer.Option(None, help="Grid level events are counted in (default: grid2, or "
                                               "the scheme's finest level when it has no grid2)."),
    hexagon: Optional[float] = typer.Option(None, help="Count events in hexagons this many metres apart instead."),
    min_count: int = typer.Option(10, "--min-count", min=1,
                                  help="Publish an event count only when it is at least this many, and no "
                                       "count that gives a smaller one away (gridgeo.disclosure); hexagons "
                                       "below it are left out. 1 publishes every count, by category too: "
                                       "only for tiles that authorised users alone will see."),
    overwrite: bool = typer.Option(False, help="Replace an existing file or a non-empty directory."),
):
    """Export tiles the way tippecanoe does: a z/x/y directory, MBTiles or PMTiles.

    A directory is read by GDAL (ogrinfo DIR/14), QGIS and any file server;
    MBTiles by Martin, GDAL (ogrinfo -so OUT.mbtiles) and QGIS; PMTiles by
    MapLibre from a plain file server or object store, and by Martin. Every
    zoom from --minzoom to --maxzoom gets tiles: below the layers' own
    range the top layer (towns from z8) is drawn from --minzoom, above it the
    layers ending there are drawn up to --maxzoom, and every other layer keeps
    its own zooms. The metadata record the zooms actually written.

    Each file is read as ``gridgeo load`` reads it (Chinese headers, level
    labels, codes in number fields, GK zones, GCJ-02): a file whose columns,
    codes or coordinates it cannot read is refused here with the same
    located problems, and nothing is written (a grid file is drawn as it is,
    not validated: ``gridgeo validate`` checks it). Events
    are published only as counts per grid unit (or hexagon), under the
    minimum count (--min-count, 10: a count of 1 to 9 singles out events);
    address points are never published.
    """
    try:
        from gridgeo.tiles import TileSet
        from gridgeo.tiles import export as export_tiles
        from gridgeo.tiles.directory import output_format
    except ImportError as exc:
        fail(f"vector tiles need the 'tiles' extra ({exc.name} is missing): pip install 'gridgeo[tiles]'")
    try:
        kind = output_format(out, None if format is None else format.value)
        codes = scheme_option(scheme)
        frames = _read_sources(sources, crs, codes)
        tile_layers = _tile_layers(frames, events_level, hexagon, min_count, codes)
        wanted = None if layers is None else [n.strip() for n in layers.split(",") if n.strip()]
        tileset = TileSet(tile_layers)
        export_tiles(tileset, out, format=kind, minzoom=minzoom, maxzoom=maxzoom, layers=wanted,
                     overwrite=overwrite, progress=True)
    except ImportError as exc:
        fail(str(exc))
    except (FileExistsError, FileNotFoundError, KeyError, ValueError) as exc:
        fail(str(exc).strip('"'))
    _report(out, kind, wanted or list(tileset.layers), minzoom, maxzoom)


def _report(out, kind, chosen, minzoom, maxzoom):
    """What was written, read back from the output: tiles per zoom, layers and their zooms."""
    zooms, vector_layers = _inventory(out, kind)
    typer.echo(f"wrote {out} ({kind}):")
    for z in sorted(zooms):
        count, size = zooms[z]
        typer.echo(f"  zoom {z:>2}  {count:>7,} tiles  {size / 1024:>10,.0f} KiB")
    asked = range(min(zooms) if minzoom is None else minzoom, (max(zooms) if maxzoom is None else maxzoom) + 1)
    empty = [z for z in asked if z not in zooms]
    if empty:
        typer.echo(f"  no tile at zoom {', '.join(map(str, empty))}: the features there are smaller than a "
                   f"tile unit; the metadata say z{min(zooms)}-{max(zooms)}, what was written")
    drawn = {layer["id"]: layer for layer in vector_layers}
    typer.echo("  layers: " + ", ".join(f"{n} z{v['minzoom']}-{v['maxzoom']}" for n, v in drawn.items()))
    left_out = [n for n in chosen if n not in drawn]
    if left_out:
        typer.echo(f"  left out (no zoom of theirs in the range written): {', '.join(left_out)}")


def _inventory(out, kind):
    """``{zoom: (tiles, bytes)}`` and ``vector_layers`` of a written output."""
    import json

    if kind == "mbtiles":
        import contextlib
        import sqlite3

        with contextlib.closing(sqlite3.connect(f"file:{out}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT zoom_level, COUNT(*), SUM(LENGTH(tile_data)) FROM tiles GROUP BY zoom_level")
            zooms = {z: (n, size) for z, n, size in rows}
            meta = json.loads(db.execute("SELECT value FROM metadata WHERE name = 'json'").fetchone()[0])
        return zooms, meta["vector_layers"]
    if kind == "pmtiles":
        from pmtiles.reader import MmapSource, Reader, all_tiles

        zooms = {}
        with open(out, "rb") as f:
            source = MmapSource(f)
            for (z, _, _), data in all_tiles(source):
                count, size = zooms.get(z, (0, 0))
                zooms[z] = (count + 1, size + len(data))
            return zooms, Reader(source).metadata()["vector_layers"]
    zooms = {}
    for zoom in (p for p in out.iterdir() if p.is_dir()):
        files = list(zoom.rglob("*.pbf"))
        zooms[int(zoom.name)] = (len(files), sum(f.stat().st_size for f in files))
    meta = json.loads((out / "metadata.json").read_text("utf-8"))
    return zooms, json.loads(meta["json"])["vector_layers"]


def _read_sources(sources, crs, scheme=None):
    """(kind, name, frame) for every source; a sample directory gives several.

    A file is read through the intake (:func:`gridgeo.intake.inspect`, grids
    not validated: tiles draw them as they are): one it cannot read stops the
    export, its problems printed, exit status 1."""
    from gridgeo import intake, sample

    frames = []
    for path in sources:
        if path.is_dir():
            data = sample.load(path)
            frames += [("grids", "grids", data.grids), ("stations", "stations", data.stations),
                       ("events", "events", data.events)]
            continue
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        got = intake.inspect(path, crs=crs, scheme=scheme, validate=False)
        if got.kind == "addresses":
            raise ValueError(f"{path} holds address points: they are never published in public tiles; "
                             "publish figures per grid instead (join them to the grids)")
        if not got.ok:
            print_intake(got)
            typer.secho(f"refused: {path} cannot be read as gridgeo load reads it, and nothing was "
                        "written. Fix the problems above (gridgeo load --dry-run shows the same)",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        # the file's name names its layer when a tile URL can carry it (服务站.xlsx: "stations")
        name = path.stem if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", path.stem) else got.kind
        frames.append((got.kind, name, got.frame))
    return frames


def _public_counts(counts, min_count, hexagon, scheme=None):
    """Event counts under the minimum count: per unit, ``events`` withheld (null, ``suppressed``)
    and no breakdown by category; per hexagon, the hexagons withheld left out (a shape shows where)."""
    import geopandas as gpd

    from gridgeo import disclosure

    if min_count <= 1:
        return counts
    table = counts.assign(code=counts["cell"], level="hexagon", parent="") if hexagon is not None else counts
    public = disclosure.public_figures(table, min_count, scheme=None if hexagon is not None else scheme)
    typer.echo(f"events: {int(public['suppressed'].sum())} of {len(public)} counts under the minimum count "
               f"{min_count} withheld; by category left out", err=True)
    if hexagon is not None:
        shown = ~public["suppressed"].to_numpy()
        return gpd.GeoDataFrame({"cell": counts["cell"].to_numpy()[shown],
                                 "events": public["events"].to_numpy()[shown].astype("int64")},
                                geometry=counts.geometry.array[shown], crs=counts.crs)
    return gpd.GeoDataFrame(public.reset_index(), geometry=public.geometry.name, crs=counts.crs)


def _tile_layers(frames, events_level, hexagon, min_count=10, scheme=None):
    import geopandas as gpd
    import pandas as pd

    from gridgeo.schema import DEFAULT_SCHEME
    from gridgeo.tiles import (DEFAULT_ZOOMS, TileLayer, boundary_layer, event_counts, grid_layers, road_layer,
                               station_layer)

    scheme = scheme or DEFAULT_SCHEME
    if events_level is None:
        events_level = "grid2" if "grid2" in scheme.names else scheme.names[-1]

    by_kind = {}
    for kind, name, frame in frames:
        by_kind.setdefault(kind, []).append((name, frame))
    grids = pd.concat([f for _, f in by_kind.get("grids", [])]) if "grids" in by_kind else None
    layers = grid_layers(grids, scheme=scheme) if grids is not None else []
    layers += [station_layer(f, name=name) for name, f in by_kind.get("stations", [])]
    for name, events in by_kind.get("events", []):
        if grids is None and hexagon is None:
            raise ValueError(f"{name}: events are published as counts per grid unit: give the grids too, "
                             "or --hexagon METRES to count them in hexagons")
        counts = _public_counts(event_counts(events, grids, level=events_level, hexagon=hexagon, by="category",
                                             scheme=scheme), min_count, hexagon, scheme)
        layers.append(TileLayer(counts, name, minzoom=DEFAULT_ZOOMS["events"][0], maxzoom=16,
                                description="网格事件数 (event counts)"))
    for kind, layer in (("roads", road_layer), ("boundaries", boundary_layer)):  # one layer each
        if kind in by_kind:
            parts = [f for _, f in by_kind[kind]]
            frame = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(pd.concat(parts, ignore_index=True),
                                                                      geometry="geometry", crs=parts[0].crs)
            layers.append(layer(frame))
    if not layers:
        raise ValueError("nothing to export: give grids, stations, events or roads")
    return layers
