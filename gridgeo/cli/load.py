"""``gridgeo load``: put a sample directory, or files of layers, into a store."""

from pathlib import Path

import typer

from gridgeo.cli._app import app, fail

_KINDS = ("grids", "stations", "addresses", "events", "roads")
_LEVELS = ("town", "village", "grid1", "grid2", "grid3")


@app.command()
def load(
    sources: list[Path] = typer.Argument(..., help="A sample directory written by `gridgeo sample`, or files "
                                         "named for their layer (grid2.geojson, stations.gpkg, addresses.csv...)."),
    store: str = typer.Option("data/gridgeo.gpkg", help="The store: a .gpkg path or a postgresql:// URL."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when the store already holds data."),
    layer: str = typer.Option(None, help="The layer of a single file whose name does not say it "
                              "(grids, a grid level, stations, addresses, events, roads)."),
    crs: str = typer.Option(None, help="The coordinate system of files that do not say: wgs84, cgcs2000, "
                            "gcj02 (Amap), bd09 (Baidu); required for CSV/Excel."),
    mode: str = typer.Option("replace", help="replace: the loaded layers replace the published ones (kept in "
                             "history); append: add rows with new keys."),
    author: str = typer.Option(None, help="Who loads (default: the login name)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
):
    """Load layers into a store (created if needed), all in one transaction."""
    import getpass

    from gridgeo import store as gstore

    postgis = gstore.is_postgis(store)
    try:
        present = if_missing and _holds_data(store, postgis)
    except gstore.StoreError as exc:
        fail(str(exc))
    if present:
        typer.echo(f"{_shown(store)} already holds data: nothing to do")
        return
    layers = _read_sources(sources, layer, crs)
    author = author or getpass.getuser()
    try:
        if postgis:
            target = gstore.open(store, create=True)
            revision = target.load(layers, author=author, mode=mode, progress=progress,
                                   message=f"gridgeo load {' '.join(map(str, sources))}")
            counts = target.counts()
            target.close()
        else:
            revision, counts = _load_gpkg(Path(store), layers, author, mode, progress, sources)
    except (gstore.StoreError, ValueError, OSError) as exc:
        fail(str(exc))
    for name, frame in layers.items():
        typer.echo(f"  {name:<10} {len(frame):>9,}")
    typer.echo(f"loaded {', '.join(map(str, sources))} into {_shown(store)} (revision {revision}; "
               f"{counts['grids']:,} grids, {counts['stations']:,} stations)")


def _holds_data(store: str, postgis: bool) -> bool:
    from gridgeo import store as gstore

    if not postgis and not Path(store).exists():
        return False
    try:
        with gstore.open(store) as existing:
            return existing.version > 0
    except gstore.NotAStoreError as exc:
        if postgis:
            return False
        raise gstore.StoreError(f"{exc}. If an older gridgeo made it, remove it (make clean-store) and load "
                                "again") from None


def _load_gpkg(path: Path, layers, author, mode, progress, sources):
    """A new GeoPackage is built beside its place and moved there only when
    complete, so an interrupted first load leaves no half-filled store."""
    import os

    from gridgeo import store as gstore

    path.parent.mkdir(parents=True, exist_ok=True)
    message = f"gridgeo load {' '.join(map(str, sources))}"
    if path.exists():
        with gstore.open(path) as target:
            return target.load(layers, author=author, mode=mode, progress=progress, message=message), \
                target.counts()
    staged = path.with_name(f".loading-{os.getpid()}-{path.name}")
    staged.unlink(missing_ok=True)
    try:
        with gstore.open(staged, create=True) as target:
            revision = target.load(layers, author=author, mode=mode, progress=progress, message=message)
            counts = target.counts()
        os.link(staged, path)  # never over a store another process made meanwhile
    except FileExistsError:
        fail(f"{path} appeared while loading: another load won the race; run again with --if-missing")
    finally:
        for leftover in (staged, Path(f"{staged}-wal"), Path(f"{staged}-shm")):
            leftover.unlink(missing_ok=True)
    return revision, counts


def _read_sources(sources, layer, crs) -> dict:
    """kind -> GeoDataFrame from a sample directory or files of layers."""
    import pandas as pd

    from gridgeo import io, sample

    if len(sources) == 1 and sources[0].is_dir():
        try:
            data = sample.load(sources[0])
        except FileNotFoundError as exc:
            fail(str(exc))
        return {"grids": data.grids, "stations": data.stations, "addresses": data.addresses,
                "events": data.events, "roads": data.roads}
    if layer and len(sources) > 1:
        fail("--layer names the layer of a single file; name the files for their layers instead")
    frames: dict[str, list] = {}
    for path in sources:
        if not path.exists():
            fail(f"{path} does not exist")
        name = layer or path.stem
        if name not in _KINDS + _LEVELS:
            fail(f"cannot tell which layer {path} is: name it grids, a level ({', '.join(_LEVELS)}), "
                 f"{', '.join(_KINDS[1:])}, or pass --layer")
        try:
            frame = io.read(path, crs=crs)
        except (io.ReadError, ValueError) as exc:
            fail(str(exc))
        if name in _LEVELS:
            frame = frame.assign(level=name) if "level" not in frame.columns else frame
            name = "grids"
        frames.setdefault(name, []).append(frame)
    return {name: (parts[0] if len(parts) == 1 else
                   type(parts[0])(pd.concat(parts, ignore_index=True), crs=parts[0].crs))
            for name, parts in frames.items()}


def _shown(store: str) -> str:
    from gridgeo.store.postgis import display

    return display(store)
