"""``gridgeo repair``: fix what gridgeo.repair can fix in a grid layer, write the result and a log.

The input file is only read, never written. Three files may come out:

- the repaired grids (``-o OUT``): every column of the input, the geometries
  repaired (units no step changed keep theirs bit for bit), the dropped sliver
  units gone, in EPSG:4490, in the format OUT's extension names;
- the log (``--log``, by default ``<OUT stem>-log.geojson`` beside OUT): one
  feature per change, then one per problem left (step ``not_repaired``),
  each with its messages in Chinese and English (:data:`gridgeo.validation.LOG_COLUMNS`).
  GeoJSON because the log mixes polygons, lines and points; a ``.gpkg`` works too;
- the validation report before the repair, when ``--report`` names a file.

Nothing is written unless every output can be: an existing file (or GeoPackage
layer) is refused without ``--overwrite`` before anything is read.
"""

from pathlib import Path
from typing import Optional

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli._intake import read_grids

_PROGRESS_FROM = 2000  # units: a progress bar from this size on, unless told
_MIXED_GEOMETRY = (".geojson", ".json", ".gpkg")  # formats that hold points, lines and polygons in one layer


@app.command()
def repair(
    file: Path = typer.Argument(..., help="The grid layer: GeoJSON, GeoPackage, Shapefile (.shp or .zip), "
                                          "GeoParquet, FlatGeobuf; in gridgeo's columns or an office's own "
                                          "(read as gridgeo load reads them, and written in gridgeo's). Only "
                                          "read, never changed."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the repaired grids (.geojson, "
                                                            ".gpkg, .shp, .parquet, .fgb)."),
    log: Optional[Path] = typer.Option(None, "--log", help="Where to write the log of changes and of the "
                                                           "problems left (.geojson or .gpkg; default: "
                                                           "<OUT stem>-log.geojson beside OUT)."),
    report: Optional[Path] = typer.Option(None, "--report", help="Also write the validation report before "
                                                                 "the repair to this file (.geojson or .gpkg)."),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", help="The layer to read from a file with several."),
    crs: Optional[str] = typer.Option(None, "--crs", help="What the coordinates are when the file does not say: "
                                                          "wgs84, cgcs2000, gcj02, bd09 or an EPSG code."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="The code scheme: default, beijing, prefecture "
                                                                "or a JSON file of one (CodeScheme.to_dict)."),
    gap_width: float = typer.Option(2.0, help="Metres: narrower uncovered pieces are gaps, wider ones uncovered."),
    sliver_area: float = typer.Option(100.0, help="Square metres: smaller units or parts are slivers."),
    tolerance: float = typer.Option(1.0, help="Metres a unit may stick out of its parent."),
    snap_distance: float = typer.Option(0.01, help="Metres: vertices this close are made one."),
    encoding: str = typer.Option("UTF-8", "--encoding", help="Text encoding of a shapefile OUT's .dbf "
                                                             "(GBK for old desktop GIS)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT, the log and the report if they exist."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                            help=f"Show a progress bar (default: from {_PROGRESS_FROM:,} units on)."),
):
    """Repair a grid layer (gridgeo.repair) and write the repaired grids, the log and a summary.

    Invalid polygons are made valid, the polygons of geometry collections
    kept, slivers removed, units clipped to their parent, overlaps, gaps and
    uncovered pieces given to neighbours, edges matched. Codes, names,
    multipart units, holes and shapes are left for a planner: the log lists
    every problem left, and why.

    Exit status 0 when no error is left (warnings are fine), 1 when errors
    remain, 2 when the file cannot be read or an output cannot be written.
    """
    from gridgeo import io
    from gridgeo.crs import CRSError
    from gridgeo.schema import SchemaError, scheme_from
    from gridgeo.validation import repair as fix
    from gridgeo.validation import validate as check

    log = log if log is not None else output.with_name(f"{output.stem}-log.geojson")
    outputs = {"--output": output, "--log": log, **({"--report": report} if report is not None else {})}
    _check_outputs(file, outputs, overwrite)
    _check_encoding(output, encoding)
    digest = _digest(file)
    options = {"gap_width": gap_width, "sliver_area": sliver_area, "tolerance": tolerance}
    try:
        codes = scheme_from(scheme)
        grids = read_grids(file, layer=layer, crs=crs, scheme=codes)
        show = len(grids) >= _PROGRESS_FROM if progress is None else progress
        before = check(grids, scheme=codes, name=str(file), progress=show, **options)
        repaired, changes = fix(grids, before, snap_distance=snap_distance, scheme=codes, name=str(file),
                                progress=show, **options)
    except CRSError as exc:
        fail(f"{exc}\n(on the command line say it with --crs, e.g. --crs wgs84; 命令行中用 --crs 指定坐标系，"
             "如 --crs gcj02)")
    except (FileNotFoundError, io.ReadError, SchemaError, ValueError) as exc:
        fail(str(exc))
    _check_shapefile_can_hold(repaired, output)
    _write_all([(repaired, output, encoding), (changes, log, "UTF-8")]
               + ([(before, report, "UTF-8")] if report is not None else []), overwrite)

    left = changes[changes["step"] == "not_repaired"]
    _print_summary(file, len(grids), before, changes, left)
    typer.echo(f"wrote {output} ({len(repaired):,} units), the log {log} ({len(changes):,} rows)"
               + (f", the report before repair {report}" if report is not None else ""))
    if digest is not None and _digest(file) == digest:
        typer.echo(f"{file} was only read: unchanged (sha256 {digest[:12]}…) 输入文件未改动")
    elif digest is not None:  # gridgeo never writes it: someone else did, meanwhile
        typer.secho(f"warning: {file} changed while it was being repaired: check it (its sha256 differs)\n"
                    f"警告：修复期间 {file} 被改动（sha256 不同），请检查", fg=typer.colors.YELLOW, err=True)
    raise typer.Exit(1 if (left["severity"] == "error").any() else 0)


def _digest(file):
    """sha256 of the input (every part of a shapefile), None if it cannot be read."""
    import hashlib

    try:
        parts = sorted(file.parent.glob(f"{file.stem}.*")) if file.suffix.lower() == ".shp" else [file]
        h = hashlib.sha256()
        for part in parts:
            h.update(part.name.encode())
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def _check_outputs(file, outputs, overwrite):
    """Refuse, before any work, an output that is the input, two outputs in
    one file, an output format that cannot hold the log, or an existing
    output without --overwrite."""
    source = _same_file_key(file)
    seen = {}
    for flag, path in outputs.items():
        key = _same_file_key(path)
        if key == source:
            fail(f"{flag} {path} is the input file: write the repaired grids elsewhere, the input is only read\n"
                 f"{flag} {path} 就是输入文件：请写到别处，输入文件只读不改")
        if key in seen:
            fail(f"{seen[key]} and {flag} name the same file {path}: give each its own\n"
                 f"{seen[key]} 与 {flag} 指向同一文件 {path}：请分别指定")
        seen[key] = flag
        if flag != "--output" and path.suffix.lower() not in _MIXED_GEOMETRY:
            what = {"--log": "日志", "--report": "报告"}[flag]
            fail(f"{flag} {path}: the {flag[2:]} mixes polygons, lines and points; write it to .geojson or .gpkg\n"
                 f"{flag} {path}：{what}同时含有面、线和点，请写为 .geojson 或 .gpkg")
        if not overwrite and _exists(path):
            fail(f"{path} already exists: pass --overwrite to replace it (nothing was read or written)\n"
                 f"{path} 已存在：如要替换请加 --overwrite（未读取也未写入任何文件）")


def _check_encoding(output, encoding):
    import codecs

    try:
        utf8 = codecs.lookup(encoding).name == "utf-8"
    except LookupError:
        fail(f"--encoding {encoding}: no such text encoding; use UTF-8 or GBK\n"
             f"--encoding {encoding}：没有这种编码，请用 UTF-8 或 GBK")
    if not utf8 and output.suffix.lower() != ".shp":
        fail(f"--encoding {encoding} is for a shapefile OUT; {output.suffix} is always UTF-8: drop --encoding\n"
             f"--encoding {encoding} 只用于 Shapefile 输出，{output.suffix} 总是 UTF-8：请去掉 --encoding")


def _same_file_key(path):
    """What identifies the file(s) at `path`: a shapefile is its folder and stem."""
    path = Path(path).resolve()
    return (path.parent, path.stem.lower()) if path.suffix.lower() == ".shp" else (path, None)


def _exists(path):
    """True if writing `path` would replace data: the file, a shapefile's parts,
    or the layer of that name in a GeoPackage."""
    from gridgeo import io

    suffix = path.suffix.lower()
    if suffix == ".gpkg" and path.exists():
        try:
            return path.stem in [name for name, _ in io.list_layers(path)]
        except io.ReadError:
            return True
    if suffix == ".shp":
        return any(path.with_suffix(s).exists() for s in (".shp", ".shx", ".dbf"))
    return path.exists()


def _check_shapefile_can_hold(repaired, output):
    """A shapefile holds one geometry type: refuse units left as points, lines or collections."""
    if output.suffix.lower() != ".shp":
        return
    kinds = repaired.geom_type
    other = kinds.notna() & ~kinds.isin(["Polygon", "MultiPolygon"])
    if other.any():
        listed = ", ".join(f"{c} ({k})" for c, k in zip(repaired.loc[other, "code"][:5], kinds[other][:5]))
        more = f" and {int(other.sum()) - 5} more" if other.sum() > 5 else ""
        fail(f"{output}: a shapefile holds polygons only, but {int(other.sum())} unit(s) are still no polygons after "
             f"the repair: {listed}{more}. Write OUT as .gpkg or .geojson, or draw those units again; nothing was "
             f"written\n{output}：Shapefile 只能存面，但修复后仍有 {int(other.sum())} 个单元不是面：{listed}{more}。"
             "请输出为 .gpkg 或 .geojson，或重新绘制这些单元；未写入任何文件")


def _parts(path):
    """The files `path` stands for: a shapefile's sidecars too."""
    if path.suffix.lower() == ".shp":
        return [path.with_suffix(s) for s in (".shp", ".shx", ".dbf", ".prj", ".cpg")]
    return [path]


def _write_all(items, overwrite):
    """Write each (frame, path, encoding); if one fails, remove the files this
    call created, so that a failure leaves what was there before."""
    from gridgeo import io

    created, replaced = [], []
    for frame, path, encoding in items:
        new = not any(part.exists() for part in _parts(path))
        try:
            io.write(frame, path, overwrite=overwrite, encoding=encoding)
        except Exception as exc:  # GDAL's errors are many; every one is reported the same way
            for done in created:
                for part in _parts(done):
                    part.unlink(missing_ok=True)
            also_en = f"; {', '.join(map(str, replaced))} had already been replaced (--overwrite)" if replaced else ""
            also_zh = f"；{'、'.join(map(str, replaced))} 已被替换（--overwrite）" if replaced else ""
            fail(f"cannot write {path}: {exc}; the files this run had created were removed{also_en}\n"
                 f"无法写入 {path}：{exc}；本次新建的文件已删除{also_zh}")
        (created if new else replaced).append(path)


def _print_summary(file, units, before, changes, left):
    summary = before.attrs["summary"]
    typer.echo(f"{file}: {units:,} units; before repair {summary['errors']:,} error(s), "
               f"{summary['warnings']:,} warning(s)")
    typer.echo(f"{file}：{units:,} 个单元；修复前 {summary['errors']:,} 个错误、{summary['warnings']:,} 个警告")
    for kind, n in summary["by_kind"].items():
        typer.echo(f"  {kind:<16} {n:>6,}")
    done = changes[changes["step"] != "not_repaired"]
    typer.echo(f"changes 修改: {len(done):,}")
    if len(done):
        table = done.groupby(["step", "kind"], sort=False).agg(
            units=("code", "nunique"), gained=("area_gained_m2", "sum"), lost=("area_lost_m2", "sum"))
        for (step, kind), n, gained, lost in table.itertuples(name=None):
            typer.echo(f"  {step:<26} {kind:<16} {n:>5,} unit(s)  +{gained:,.1f} m²  -{lost:,.1f} m²")
    errors, warnings = left[left["severity"] == "error"], left[left["severity"] == "warning"]
    verdict = "valid" if errors.empty else "NOT valid"
    typer.echo(f"after repair: {verdict}, {len(errors):,} error(s) and {len(warnings):,} warning(s) left")
    typer.echo(f"修复后：{'有效' if errors.empty else '仍无效'}，剩余 {len(errors):,} 个错误、{len(warnings):,} 个警告")
    for row in errors.itertuples(index=False):
        typer.secho(f"ERROR   {row.kind:<16} {row.level:<8} {row.code}", fg=typer.colors.RED)
        typer.echo(f"        {row.message_en}")
        typer.echo(f"        {row.message_zh}")
    for kind, n in warnings["kind"].value_counts(sort=False).items():
        typer.secho(f"WARNING {kind:<16} {n:>6,} (each in the log 详见日志)", fg=typer.colors.YELLOW)
