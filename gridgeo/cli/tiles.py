"""``gridgeo tiles export``: write vector tiles to a directory (z/x/y.pbf + metadata.json)."""

from pathlib import Path
from typing import List, Optional

import typer

from gridgeo.cli._app import app, fail

tiles_app = typer.Typer(help="Mapbox Vector Tiles of grids, stations and event counts.", no_args_is_help=True)
app.add_typer(tiles_app, name="tiles")


@tiles_app.command("export")
def export(
    sources: List[Path] = typer.Argument(..., help="Files of grids, stations or events (any format gridgeo "
                                                   "reads), or a sample directory written by `gridgeo sample`."),
    directory: Path = typer.Argument(..., help="Directory to write: z/x/y.pbf and metadata.json."),
    minzoom: Optional[int] = typer.Option(None, help="First zoom to write (default: the layers' own)."),
    maxzoom: Optional[int] = typer.Option(None, help="Last zoom to write (default: the layers' own)."),
    layers: Optional[str] = typer.Option(None, help="Comma-separated layer names to keep (default all)."),
    crs: Optional[str] = typer.Option(None, help="The coordinates' system when a file does not say it: "
                                                 "wgs84, cgcs2000, gcj02 (Amap), bd09 (Baidu) or an EPSG code."),
    events_level: str = typer.Option("grid2", help="Grid level events are counted in."),
    hexagon: Optional[float] = typer.Option(None, help="Count events in hexagons this many metres apart instead."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty directory."),
):
    """Export tiles the way tippecanoe does, readable by GDAL (ogrinfo DIR/14), QGIS and any file server.

    Grid levels, stations and events are recognised by their columns. Events
    are published only as counts per grid unit (or hexagon); address points
    are never published.
    """
    try:
        from gridgeo.tiles import TileSet
    except ImportError as exc:
        fail(f"vector tiles need the 'tiles' extra ({exc.name} is missing): pip install 'gridgeo[tiles]'")
    try:
        frames = _read_sources(sources, crs)
        tile_layers = _tile_layers(frames, events_level, hexagon)
        wanted = None if layers is None else [n.strip() for n in layers.split(",") if n.strip()]
        tileset = TileSet(tile_layers)
        tileset.export(directory, minzoom=minzoom, maxzoom=maxzoom, layers=wanted, overwrite=overwrite,
                       progress=True)
    except (FileExistsError, FileNotFoundError, KeyError, ValueError) as exc:
        fail(str(exc).strip('"'))
    typer.echo(f"wrote {directory}:")
    for zoom in sorted((p for p in directory.iterdir() if p.is_dir()), key=lambda p: int(p.name)):
        files = list(zoom.rglob("*.pbf"))
        size = sum(f.stat().st_size for f in files)
        typer.echo(f"  zoom {zoom.name:>2}  {len(files):>7,} tiles  {size / 1024:>10,.0f} KiB")


def _read_sources(sources, crs):
    """(kind, name, frame) for every source; a sample directory gives several."""
    from gridgeo import io, sample

    frames = []
    for path in sources:
        if path.is_dir():
            data = sample.load(path)
            frames += [("grids", "grids", data.grids), ("stations", "stations", data.stations),
                       ("events", "events", data.events)]
        else:
            frame = io.read(path, crs=crs)
            frames.append((_kind(frame, path), path.stem, frame))
    return frames


def _kind(frame, path):
    columns = set(frame.columns)
    if {"code", "level", "parent"} <= columns:
        return "grids"
    if "station_id" in columns:
        return "stations"
    if "event_id" in columns:
        return "events"
    if "addr_id" in columns:
        raise ValueError(f"{path} holds address points: they are never published in public tiles; "
                         "publish figures per grid instead (join them to the grids)")
    return "other"


def _tile_layers(frames, events_level, hexagon):
    import pandas as pd

    from gridgeo.tiles import DEFAULT_ZOOMS, TileLayer, event_counts, grid_layers, station_layer

    by_kind = {}
    for kind, name, frame in frames:
        by_kind.setdefault(kind, []).append((name, frame))
    grids = pd.concat([f for _, f in by_kind.get("grids", [])]) if "grids" in by_kind else None
    layers = grid_layers(grids) if grids is not None else []
    layers += [station_layer(f, name=name) for name, f in by_kind.get("stations", [])]
    for name, events in by_kind.get("events", []):
        if grids is None and hexagon is None:
            raise ValueError(f"{name}: events are published as counts per grid unit: give the grids too, "
                             "or --hexagon METRES to count them in hexagons")
        counts = event_counts(events, grids, level=events_level, hexagon=hexagon, by="category")
        layers.append(TileLayer(counts, name, minzoom=DEFAULT_ZOOMS["events"][0], maxzoom=16,
                                description="网格事件数 (event counts)"))
    layers += [TileLayer(f, name) for name, f in by_kind.get("other", [])]
    if not layers:
        raise ValueError("nothing to export: give grids, stations or events")
    return layers
