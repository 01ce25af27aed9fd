"""``gridgeo load``: an office's files, or a sample directory, into a store.

Every file goes through :mod:`gridgeo.intake`: its layer, columns, values,
codes and coordinate system are detected (and can be set with options), it is
checked against the store, and the load changes only what the files name, or
nothing at all.
"""

from pathlib import Path
from typing import List, Optional

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli._intake import print_intake as _print_intake
from gridgeo.cli._intake import scheme_option as _scheme

_SAMPLE_GENERATOR = "gridgeo.sample"
_READABLE = {".geojson", ".json", ".gpkg", ".shp", ".zip", ".parquet", ".fgb", ".csv", ".xlsx", ".xlsm", ".xls"}


@app.command()
def load(
    sources: List[Path] = typer.Argument(..., help="Files of layers (a grid shapefile or a zip of one, "
                                         "GeoPackage, GeoJSON, station or address sheets in CSV/Excel ...), or a "
                                         "directory of them (a sample written by `gridgeo sample` included)."),
    store: str = typer.Option("data/gridgeo.gpkg", help="The store: a .gpkg path or a postgresql:// URL."),
    layer: Optional[str] = typer.Option(None, "--layer", help="What a single file holds when its name does not "
                                        "say: grids, a grid level (town, village, grid1, grid2, grid3), stations, "
                                        "addresses, events, roads, or boundaries (another office's areas: police "
                                        "precincts, school catchments; name the set with --name)."),
    set_name: Optional[str] = typer.Option(None, "--name", help="For boundaries: the name of the set the file's "
                                           "areas make, e.g. --layer boundaries --name 警格 (default: what the "
                                           "file's name says, precincts/警格 -> 警格). Loading a set again replaces "
                                           "that set alone; each set is a collection of the store and the service."),
    crs: Optional[str] = typer.Option(None, help="The coordinate system when a file does not say (or says wrong): "
                                      "wgs84, cgcs2000, gcj02 (Amap, Tencent), bd09 (Baidu) or an EPSG code such "
                                      "as EPSG:4527."),
    lon: Optional[str] = typer.Option(None, "--lon", help="A table's longitude column (default: found by name)."),
    lat: Optional[str] = typer.Option(None, "--lat", help="A table's latitude column."),
    location: Optional[str] = typer.Option(None, "--location", help="A table's single 'lng,lat' column."),
    sheet: Optional[str] = typer.Option(None, "--sheet", help="The sheet of a workbook, or the layer of a "
                                        "GeoPackage or zip that holds several."),
    map_: List[str] = typer.Option([], "--map", help="A column mapping, schema_column=file_column, e.g. "
                                   "--map code=网格编码 (repeatable)."),
    value: List[str] = typer.Option([], "--value", help="A value mapping, column:file_value=value, e.g. "
                                    "--value level:二级=grid2 (repeatable)."),
    mapping: Optional[Path] = typer.Option(None, "--mapping", help="A mapping file (JSON) written by "
                                           "--save-mapping, to load the same kind of file the same way."),
    save_mapping: Optional[Path] = typer.Option(None, "--save-mapping", help="Write the detected mapping of "
                                                "the (single) file to this JSON file, to check, edit and reuse."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="The code scheme of the grids: default (county "
                                         "6 + town 3 + village 3 + grid 2/2/3 digits), beijing (15-digit unit grids), "
                                         "prefecture (a prefecture over its counties), or a JSON file of one. A new "
                                         "store records it; an existing one must have it (or hold no grids yet)."),
    region: Optional[str] = typer.Option(None, "--region", help="The area the store covers, CODE=NAME (e.g. "
                                         "350582=晋江市), shown above the top level; a sample records its own."),
    scope: str = typer.Option("parents", help="What a grid file replaces: parents = its levels' units under the "
                              "parents the file covers; level = every unit of its levels. Other levels are never "
                              "touched."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the mapping, the counts per level, the changes "
                                 "and the problems, and change nothing."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when the store already holds data."),
    mode: str = typer.Option("replace", help="replace: the loaded layers replace the published ones (kept in "
                             "history); append: add rows with new keys."),
    author: Optional[str] = typer.Option(None, help="Who loads (default: the login name)."),
    progress: bool = typer.Option(True, help="Show progress bars."),
):
    """Load files into a store (created if needed), all in one transaction, or refuse and change nothing.

    Another office's areas are loaded as a named boundary set:
    ``gridgeo load precincts.shp --layer boundaries --name 警格`` (the file's id
    column, 编号 or 警格编号, becomes ``boundary_id``; ``--map boundary_id=COLUMN``
    names it). Loading the set again replaces that set alone.

    Exit status 0 when loaded (or a dry run found no error), 1 when the files
    were refused (every problem is listed, located), 2 when the command
    cannot run (a missing file, a bad option).
    """
    import getpass

    from gridgeo import store as gstore

    if mode not in ("replace", "append"):
        fail(f"--mode {mode!r}: use replace or append")
    if scope not in ("parents", "level"):
        fail(f"--scope {scope!r}: use parents or level")
    area = _region(region)
    postgis = gstore.is_postgis(store)
    wanted = _scheme(scheme)
    _remove_stale_staging(store, postgis)
    try:
        present = if_missing and _holds_data(store, postgis)
    except gstore.StoreError as exc:
        fail(str(exc))
    if present:
        typer.echo(f"{_shown(store)} already holds data: nothing to do")
        return
    files, sample_dir = _files(sources)
    if layer and len(files) > 1:
        fail("--layer names what a single file holds; name the files for their layers, or load them one by one")
    if save_mapping and len(files) != 1:
        fail("--save-mapping writes the mapping of one file: load the files one by one")
    author = author or getpass.getuser()
    message = f"gridgeo load {' '.join(map(str, sources))}"
    if sample_dir is not None and not dry_run:
        layers, county = _sample_layers(sample_dir)
        _load(store, postgis, layers, author, mode, progress, message, scope, sources, wanted, area or county)
        return
    existing = _open_existing(store, postgis)
    if existing is not None and wanted is not None and wanted != existing.scheme and existing.count("grids"):
        names = ", ".join(existing.scheme.names)
        existing.close()
        fail(f"{_shown(store)} holds grids under the scheme with levels {names}: it cannot take --scheme {scheme}. "
             "Load into a new store")
    active = wanted or (existing.scheme if existing is not None else None)
    options = _options(layer, crs, lon, lat, location, sheet, map_, value, mapping, scope, active)
    options["boundary_set"] = set_name
    try:
        intakes = [_inspect(path, options, existing) for path in files]
    finally:
        if existing is not None:
            existing.close()
    refused = False
    for got in intakes:
        refused |= _print_intake(got)
    if save_mapping is not None:
        intakes[0].mapping.write(save_mapping)
        typer.echo(f"mapping written to {save_mapping} (reuse it with --mapping {save_mapping})")
    if refused:
        typer.secho("refused: nothing was loaded and the store is unchanged. Fix the problems above and load "
                    "again" + ("" if dry_run else " (--dry-run shows the same without loading)"), fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(1)
    if dry_run:
        typer.echo("dry run: nothing was changed")
        return
    layers = _layers_of(intakes, mode)
    _load(store, postgis, layers, author, mode, progress, message, scope, sources, wanted, area)


# --- what to read ----------------------------------------------------------------------


def _files(sources) -> tuple[list[Path], Path | None]:
    """(the files to read, the sample directory when the only source is one)."""
    import json

    files = []
    for path in sources:
        if not path.exists():
            fail(f"{path} does not exist")
        if path.is_dir():
            meta = path / "metadata.json"
            if len(sources) == 1 and meta.exists():
                try:
                    info = json.loads(meta.read_text(encoding="utf-8"))
                except ValueError:
                    info = {}
                if info.get("generator") == _SAMPLE_GENERATOR:
                    return _sample_files(path, info.get("files", [])), path
            inside = sorted(p for p in path.iterdir() if p.suffix.lower() in _READABLE and not p.name.startswith("."))
            if not inside:
                fail(f"{path} holds no file gridgeo reads ({', '.join(sorted(_READABLE))})")
            files += inside
        else:
            if path.suffix.lower() not in _READABLE:
                fail(f"cannot tell which layer {path} is, or read it: load GeoJSON, GeoPackage, Shapefile (.shp or "
                     f".zip), GeoParquet, FlatGeobuf, CSV or Excel files")
            files.append(path)
    return files, None



def _options(layer, crs, lon, lat, location, sheet, map_, value, mapping, scope, scheme) -> dict:
    from gridgeo.intake import Mapping
    from gridgeo.schema import DEFAULT_SCHEME, LAYERS

    try:
        columns = Mapping.parse_overrides(map_)
        values = Mapping.parse_values(value)
        given = Mapping.read(mapping) if mapping is not None else None
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc))
    kind, level = None, None
    names = (scheme or DEFAULT_SCHEME).names
    if layer:
        if layer in LAYERS:
            kind = layer
        elif layer in names:
            kind, level = "grids", layer
        else:
            fail(f"--layer {layer!r}: use grids, a level ({', '.join(names)}), stations, addresses, events, roads "
                 "or boundaries")
    return dict(kind=kind, level=level, mapping=given, columns=columns, values=values, crs=crs, lon=lon, lat=lat,
                location=location, layer=sheet, scope=scope, scheme=scheme)


def _open_existing(store, postgis):
    """The store to check against, or None when it does not exist yet (nothing is created)."""
    from gridgeo import store as gstore

    if not postgis and not Path(store).exists():
        return None
    try:
        opened = gstore.open(store)
    except gstore.NotAStoreError as exc:
        if postgis:
            return None
        fail(f"{exc}. If an older gridgeo made it, remove it (make clean-store) and load again")
    except gstore.StoreError as exc:
        fail(str(exc))
    return opened


def _inspect(path, options, existing):
    from gridgeo import intake

    try:
        return intake.inspect(path, store=existing, **options)
    except ValueError as exc:
        fail(f"{path}: {exc}")


def _layers_of(intakes, mode) -> dict:
    import geopandas as gpd
    import pandas as pd

    parts: dict[str, list] = {}
    for got in intakes:
        parts.setdefault(got.kind, []).append(got.frame)
    return {kind: frames[0] if len(frames) == 1 else
            gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=frames[0].crs)
            for kind, frames in parts.items()}


def _sample_files(directory: Path, names) -> list[Path]:
    """The files of a sample."""
    # the optional layers (the police precincts) are loaded too: as the boundary set 警格
    return [directory / f for f in names]


def _sample_layers(directory: Path) -> tuple[dict, tuple | None]:
    from gridgeo import sample

    try:
        data = sample.load(directory)
    except FileNotFoundError as exc:
        fail(str(exc))
    county = data.metadata.get("county") or {}
    region = (county["code"], county["name"]) if county.get("code") and county.get("name") else None
    layers = {"grids": data.grids, "stations": data.stations, "addresses": data.addresses, "events": data.events,
              "roads": data.roads}
    if data.precincts is not None:  # the police precincts, as the boundary set 警格
        layers["boundaries"] = data.boundaries()
        layers["roster"] = data.roster()  # who answers for each grid, the police deputy among them
    return layers, region


def _region(text):
    if text is None:
        return None
    code, sep, name = text.partition("=")
    if not sep or not code.strip().isdigit() or not name.strip():
        fail(f"--region {text!r}: write it as CODE=NAME, e.g. 350582=晋江市")
    return code.strip(), name.strip()


# --- printing ---------------------------------------------------------------------------



# --- loading ------------------------------------------------------------------------------


def _load(store, postgis, layers, author, mode, progress, message, scope, sources, scheme=None, region=None):
    from gridgeo import store as gstore

    try:
        if postgis:
            target = gstore.open(store, create=True, scheme=scheme)
            try:
                before = target.revision
                revision = target.load(layers, author=author, mode=mode, progress=progress, message=message,
                                       scope=scope, region=region)
                counts, changed = target.counts(), target.revision != before
            finally:
                target.close()
        else:
            revision, counts, changed = _load_gpkg(Path(store), layers, author, mode, progress, message, scope,
                                                   scheme, region)
    except gstore.PublishError as exc:
        _print_report(exc.report)
        fail(f"refused: {exc}", code=1)
    except (gstore.StoreError, ValueError, OSError) as exc:
        fail(str(exc), code=1 if isinstance(exc, gstore.StoreError) else 2)
    for name, frame in layers.items():
        typer.echo(f"  {name:<10} {len(frame):>9,}")
    if not changed:
        typer.echo(f"nothing changed: {', '.join(map(str, sources))} hold(s) exactly what {_shown(store)} "
                   f"publishes; it stays at version {revision} / 数据未变化，版本仍为 {revision}")
        return
    typer.echo(f"loaded {', '.join(map(str, sources))} into {_shown(store)} (revision {revision}; "
               f"{counts['grids']:,} grids, {counts['stations']:,} stations)")


def _print_report(report) -> None:
    if report is None or not len(report):
        return
    for row in report[report["severity"] == "error"].head(40).itertuples(index=False):
        typer.secho(f"  ERROR {row.kind:<16} {row.level:<8} {row.codes}", fg=typer.colors.RED, err=True)
        typer.echo(f"        {row.message_en}", err=True)
        typer.echo(f"        {row.message_zh}", err=True)


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


def _staging_name(path: Path, pid: int) -> Path:
    return path.with_name(f".loading-{pid}-{path.name}")


def _remove_stale_staging(store: str, postgis: bool) -> None:
    """Remove what loads killed before they finished left beside a GeoPackage store.

    A first load builds the store as ``.loading-<pid>-<name>`` and moves it
    into place when complete; a load killed on the way (kill -9, a power cut)
    leaves that file. A staging file whose process is gone is removed.
    """
    import os

    if postgis:
        return
    path = Path(store)
    if not path.parent.is_dir():
        return
    for leftover in path.parent.glob(f".loading-*-{path.name}*"):
        pid_text = leftover.name[len(".loading-"):].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid != os.getpid() and _alive(pid):
            continue
        leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _load_gpkg(path: Path, layers, author, mode, progress, message, scope, scheme=None, region=None):
    """A new GeoPackage is built beside its place and moved there only when
    complete, so an interrupted first load leaves no half-filled store."""
    import os

    from gridgeo import store as gstore

    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        with gstore.open(path, scheme=scheme) as target:
            before = target.revision
            revision = target.load(layers, author=author, mode=mode, progress=progress, message=message,
                                   scope=scope, region=region)
            return revision, target.counts(), target.revision != before
    staged = _staging_name(path, os.getpid())
    staged.unlink(missing_ok=True)
    try:
        with gstore.open(staged, create=True, scheme=scheme) as target:
            revision = target.load(layers, author=author, mode=mode, progress=progress, message=message,
                                   scope=scope, region=region)
            counts = target.counts()
        os.link(staged, path)  # never over a store another process made meanwhile
    except FileExistsError:
        fail(f"{path} appeared while loading: another load won the race; run again with --if-missing")
    finally:
        for leftover in (staged, Path(f"{staged}-wal"), Path(f"{staged}-shm")):
            leftover.unlink(missing_ok=True)
    return revision, counts, True


def _shown(store: str) -> str:
    from gridgeo.store.postgis import display

    return display(store)
