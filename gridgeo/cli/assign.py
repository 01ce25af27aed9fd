"""``gridgeo assign``: the unit holding every point, at every level, written beside the points."""

from enum import Enum
from pathlib import Path

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli._intake import read_grids, scheme_option

_TABLES = {".csv", ".xlsx", ".xls", ".xlsm"}


class Engine(str, Enum):
    memory = "memory"
    dask = "dask"


@app.command()
def assign(
    grids: Path = typer.Argument(..., help="The grids: one file holding every level (GeoPackage, "
                                           "GeoJSON, GeoParquet...; in gridgeo's columns or an office's own, "
                                           "read as gridgeo load reads them), or a sample directory."),
    points: Path = typer.Argument(..., help="The points: a CSV or Excel table with longitude and "
                                            "latitude columns, or any vector file of points."),
    output: Path = typer.Option(..., "-o", "--output",
                                help="Where to write: .csv or .parquet for tables; any vector "
                                     "format for vector points."),
    crs: str = typer.Option(None, "--crs", help="What the points' coordinates are: wgs84, cgcs2000, "
                                                "gcj02 (Amap, Tencent), bd09 (Baidu) or an EPSG code. "
                                                "Required for tables."),
    layer: str = typer.Option(None, "--layer", help="The grids' layer, in a file with several."),
    scheme: str = typer.Option(None, "--scheme", help="The grids' code scheme: default, beijing, prefecture or a "
                                                      "JSON file of one."),
    tolerance_m: float = typer.Option(0.0, "--tolerance-m", help="Snap points this near a unit."),
    cell_m: float = typer.Option(None, "--cell-m", min=0.01,
                                 help="Side of the index cells in metres (default: adapted to the grids, "
                                      "about 16 cells per boundary segment; smaller is faster per point, "
                                      "larger builds faster and smaller)."),
    engine: Engine = typer.Option(Engine.memory, help="memory: batches in this process; dask: a "
                                                      "local dask.distributed cluster."),
    workers: int = typer.Option(2, min=1, help="Worker processes of the dask engine."),
    batch: int = typer.Option(200_000, min=1, help="Points per batch (per partition on dask)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
):
    """Assign points to the town, village and grids holding them (gridgeo.assign).

    The columns of the points are kept as they are; one column per level
    (the unit's code), ``status`` and ``reason`` are added (as
    ``assigned_<name>`` where the points already have a column of that name,
    such as the ``status`` of events).
    """
    import time

    from gridgeo import AssignIndex
    from gridgeo.crs import CRSError
    from gridgeo.io import ReadError
    from gridgeo.schema import DEFAULT_SCHEME, SchemaError

    if output.exists() and not overwrite:
        fail(f"{output} already exists: pass --overwrite to replace it")
    table = points.suffix.lower() in _TABLES
    if table and output.suffix.lower() not in (".csv", ".parquet"):
        fail(f"{points} is a table: write it to a .csv or .parquet, not {output.suffix}")
    started = time.perf_counter()
    try:
        codes = scheme_option(scheme)
        index = AssignIndex(read_grids(grids, layer=layer, scheme=codes), cell_m=cell_m, name=str(grids),
                            scheme=codes or DEFAULT_SCHEME)
        typer.echo(f"index of {grids}: cells of {index.cell_m:g} m, {index.nbytes / 1e6:.1f} MB, built in "
                   f"{time.perf_counter() - started:.1f} s")
        data = _read_points(points, crs, table)
        run = _on_dask if engine is Engine.dask else _in_memory
        result = run(data, index, crs=None if not table else crs, tolerance_m=tolerance_m,
                     batch=batch, workers=workers, name=str(points))
    except (FileNotFoundError, ReadError, CRSError, SchemaError, ValueError, KeyError) as exc:
        fail(str(exc))
    _write(result, output, table)
    seconds = time.perf_counter() - started
    counts = result["assigned_status" if "status" in data.columns else "status"].value_counts()
    typer.echo(f"wrote {output}: {len(result):,} points in {seconds:.1f} s")
    for status, count in counts.items():
        if count:
            typer.echo(f"  {status:<9} {count:>10,}")


def _read_points(path, crs, table):
    """A table as read, text columns kept as text (assign finds lon/lat and
    converts them); vector points in EPSG:4490."""
    from gridgeo import io

    if not table:
        return io.read(path, crs=crs)
    import pandas as pd

    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: check the path")
    if crs is None:
        raise ValueError(f"{path}: a table never says its coordinate system: pass --crs "
                         "(wgs84, cgcs2000, gcj02, bd09 or an EPSG code)")
    if path.suffix.lower() != ".csv":
        return pd.read_excel(path, dtype=str)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, encoding=encoding, keep_default_na=False,
                               na_values=[""])
        except UnicodeDecodeError:
            continue
    raise ValueError(f"{path} is neither UTF-8 nor GBK text")


def _in_memory(data, index, *, crs, tolerance_m, batch, name, **_):
    import pandas as pd
    from rich.console import Console
    from rich.progress import Progress

    from gridgeo import assign

    parts = []
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("assigning", total=len(data))
        for start in range(0, len(data), batch):
            chunk = data.iloc[start:start + batch]
            result = assign(chunk, index, crs=crs, tolerance_m=tolerance_m, name=name)
            parts.append(chunk.join(_renamed(result, chunk)))
            progress.advance(task, len(chunk))
    return pd.concat(parts) if parts else data.join(_renamed(assign(data, index, crs=crs), data))


def _on_dask(data, index, *, crs, tolerance_m, batch, workers, name):
    import dask.dataframe as dd
    import dask_geopandas
    import geopandas as gpd
    import pandas as pd
    from distributed import Client, LocalCluster, as_completed
    from rich.console import Console
    from rich.progress import Progress

    from gridgeo import assign

    npartitions = max(1, -(-len(data) // batch))
    if isinstance(data, gpd.GeoDataFrame):
        parts = dask_geopandas.from_geopandas(data, npartitions=npartitions)
    else:
        parts = dd.from_pandas(data, npartitions=npartitions)
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        result = assign(parts, index, crs=crs, tolerance_m=tolerance_m, name=name)
        combined = parts.assign(**{new: result[old] for old, new in _names(result, parts).items()})
        futures = client.compute(combined.to_delayed())
        order = {future.key: i for i, future in enumerate(futures)}
        done = [None] * len(futures)
        with Progress(transient=True, console=Console(stderr=True)) as progress:
            task = progress.add_task(f"assigning on {workers} workers", total=len(futures))
            for future in as_completed(futures):
                done[order[future.key]] = future.result()
                progress.advance(task)
    return pd.concat(done)


def _names(result, points):
    """The name of each assignment column beside the points' own columns."""
    return {c: f"assigned_{c}" if c in points.columns else c for c in result.columns}


def _renamed(result, points):
    return result.rename(columns=_names(result, points))


def _write(result, output, table):
    import os
    import tempfile

    from gridgeo import io

    codes = {c: result[c].astype("str") for c in result.columns
             if str(result[c].dtype) == "category"}
    result = result.assign(**codes)
    if not table:
        io.write(result, output, overwrite=True)
        return
    handle, staged = tempfile.mkstemp(prefix=".gridgeo-", suffix=output.suffix, dir=output.parent or ".")
    os.close(handle)
    try:
        if output.suffix.lower() == ".csv":
            result.to_csv(staged, index=False, encoding="utf-8-sig")
        else:
            result.to_parquet(staged, index=False)
        os.replace(staged, output)
    finally:
        if os.path.exists(staged):
            os.unlink(staged)
