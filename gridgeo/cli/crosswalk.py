"""``gridgeo crosswalk``: another office's areas (警格, 学区, 社区) against one level of the grids."""

from pathlib import Path
from typing import Optional

import typer

from gridgeo.cli._app import app, fail

_OUTPUTS = (".xlsx", ".gpkg", ".csv")
# id columns an office's file is likely to have, tried in order when --other-id is not given
_NAME_COLUMNS = ("name", "名称", "警格名称", "NAME")
_ID_COLUMNS = ("警格编号", "警格编码", "编号", "编码", "代码", "precinct_id", "id", "code", "ID", "CODE")


@app.command()
def crosswalk(
    grids: Path = typer.Argument(..., help="The grids: any vector file the intake reads (Chinese "
                                           "headers, GBK shapefiles, Gauss-Krüger eastings), a "
                                           "sample directory, or a gridgeo store (.gpkg): its "
                                           "published grids, and its addresses unless --addresses "
                                           "names others."),
    other: Path = typer.Argument(..., help="The other layer's polygons: police precincts, school "
                                           "catchments, community boundaries; or a gridgeo store "
                                           "(.gpkg) holding them as a boundary set (--set)."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write: .xlsx (a sheet each for "
                                                            "the crosswalk, the misalignment report "
                                                            "and the nesting of every unit), .gpkg "
                                                            "(a layer each) or .csv (the crosswalk; "
                                                            "the report beside it)."),
    level: str = typer.Option("grid2", "--level", help="The level of the grids to compare with."),
    addresses: Optional[Path] = typer.Option(None, "--addresses", help="Address points with "
                                                                       "households and population."),
    other_id: Optional[str] = typer.Option(None, "--other-id", help="The other layer's id column "
                                                                    "(default: 警格编号, 编号, id ... "
                                                                    "whichever it has)."),
    crs: Optional[str] = typer.Option(None, "--crs", help="What the grids' coordinates are when the "
                                                          "file does not say."),
    other_crs: Optional[str] = typer.Option(None, "--other-crs", help="What the other layer's "
                                                                      "coordinates are: wgs84, "
                                                                      "cgcs2000, gcj02 (Amap), bd09 "
                                                                      "(Baidu) or an EPSG code."),
    sliver_area: float = typer.Option(100.0, help="Square metres: smaller overlaps are slivers."),
    sliver_width: float = typer.Option(5.0, help="Metres: narrower overlaps are slivers."),
    boundary_set: Optional[str] = typer.Option(None, "--set", help="When OTHER is a gridgeo store: "
                                                                     "its boundary set to use (警格, 学区 "
                                                                     "...; default: its only one)."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
):
    """Lay another office's areas over the grids: every overlap with its households, what nests,
    what is split, and where the two nearly agree (gridgeo.crosswalk).

    Exit status 0 when written, 2 when a file cannot be used (nothing is written then).
    """
    from gridgeo import crosswalk as cw
    from gridgeo import io
    from gridgeo.crs import CRSError
    from gridgeo.schema import SchemaError

    suffix = output.suffix.lower()
    if suffix not in _OUTPUTS:
        fail(f"{output}: write to .xlsx, .gpkg or .csv / 请写成 .xlsx、.gpkg 或 .csv 文件")
    if output.exists() and not overwrite:
        fail(f"{output} already exists: pass --overwrite to replace it / 输出文件已存在：加 --overwrite 覆盖")
    try:
        grid_frame, stored_points = _read_grids(grids, crs)
        other_frame, stored_id = _read_other(other, other_crs, boundary_set)
        other_id = other_id or stored_id or _guess_id(other_frame, other)
        points = io.read(addresses) if addresses is not None else stored_points
        options = dict(level=level, other_id=other_id, addresses=points, sliver_area=sliver_area,
                       sliver_width=sliver_width, name=str(grids), other_name=str(other))
        table = cw.crosswalk(grid_frame, other_frame, **options)
        report = cw.misalignment(grid_frame, other_frame, **options)
        units = cw.nesting(grid_frame, other_frame, **options)
    except cw.CrosswalkError as exc:
        fail(f"{exc.message_en}\n       {exc.message_zh}")
    except (FileNotFoundError, io.ReadError, CRSError, SchemaError, ValueError, KeyError) as exc:
        fail(str(exc))
    summary = table.attrs["summary"]
    # the names people read beside the codes: the grids' and the other layer's (its name column, if any)
    named = next((c for c in _NAME_COLUMNS if c in other_frame.columns), None)
    table = cw.with_names(table, grid_frame, other_frame, other_id=other_id, other_name=named or "name")
    _write(output, suffix, table, report, units)
    typer.echo(f"wrote {output}: {len(table):,} overlaps, {len(report):,} places to look at")
    for layer, name in (("grids", f"{level} grids"), ("other", str(other))):
        counts = summary[layer]
        typer.echo(f"  {name}: {counts['units']:,} units, " + ", ".join(
            f"{counts[s]:,} {s}" for s in cw.STATUSES))


def _store(path):
    """The gridgeo store a .gpkg path holds, or None for any other file."""
    if path.suffix.lower() != ".gpkg" or not path.is_file():
        return None
    import pyogrio

    if "gridgeo_meta" not in {str(name) for name, _ in pyogrio.list_layers(path)}:
        return None
    from gridgeo import store as gstore

    return gstore.open(str(path))


def _read_grids(path, crs):
    """(grids, addresses or None): the grids through the intake (Chinese headers, level labels,
    codes in number fields, GBK, zone-prefixed eastings), a sample directory's, or a store's
    published grids and addresses."""
    from gridgeo import intake, sample

    if path.is_dir():
        return sample.load(path).grids, None
    store = _store(path)
    if store is not None:
        with store:
            addresses = store.read("addresses", columns=[c for c in ("households", "population")
                                                         if c in store.columns("addresses")])
            return store.read("grids"), addresses if len(addresses) else None
    got = intake.inspect(path, kind="grids", crs=crs)
    if not got.ok:
        errors = got.errors
        lines = [f"{path}: {len(errors)} error(s) / {len(errors)} 个错误"]
        lines += [f"  - {e.message_en} / {e.message_zh}" for e in errors[:10]]
        raise ValueError("\n".join(lines))
    return got.frame, None


def _read_other(path, crs, boundary_set):
    """(other layer, its id column or None): a file, or a store's boundary set."""
    from gridgeo import io
    from gridgeo.crosswalk import CrosswalkError

    store = _store(path)
    if store is None:
        if boundary_set is not None:
            raise CrosswalkError(f"--set 只用于 gridgeo 库文件，{path} 不是", f"--set names a boundary set of a "
                                 f"gridgeo store, and {path} is not one: leave --set out")
        return io.read(path, crs=crs), None
    with store:
        sets = store.boundary_sets()
        if boundary_set is None and len(sets) == 1:
            boundary_set = sets[0]
        if boundary_set not in sets:
            raise CrosswalkError(
                f"{path} 的边界集有 {sets}：请用 --set 指定一个" if sets else f"{path} 没有其他部门的边界：请先用 gridgeo load 载入",
                f"{path} holds the boundary sets {sets}: choose one with --set" if sets else
                f"{path} holds no other office's boundaries: load them first with gridgeo load")
        return store.read(boundary_set), "boundary_id"


def _guess_id(frame, path):
    from gridgeo.crosswalk import CrosswalkError

    for column in _ID_COLUMNS:
        if column in frame.columns and frame[column].notna().all() and frame[column].is_unique:
            return column
    raise CrosswalkError(
        f"{path} 没有可识别的编号列（有：{list(frame.columns)}）：请用 --other-id 指定",
        f"{path} has no id column gridgeo recognises (it has {list(frame.columns)}): name it with --other-id")


def _write(output, suffix, table, report, units):
    """All sheets or layers into a staged file, moved into place at the end."""
    import os
    import tempfile

    import pandas as pd

    handle, staged = tempfile.mkstemp(prefix=".gridgeo-", suffix=suffix, dir=output.parent or ".")
    os.close(handle)
    extra = output.with_name(output.stem + "_misalignment.csv")
    staged_extra = str(extra.with_name(".gridgeo-" + extra.name))
    try:
        if suffix == ".xlsx":
            with pd.ExcelWriter(staged, engine="openpyxl") as book:
                for sheet, frame in (("crosswalk", table), ("misalignment", report), ("nesting", units)):
                    pd.DataFrame(frame.drop(columns="geometry")).to_excel(book, sheet_name=sheet, index=False)
        elif suffix == ".gpkg":
            os.unlink(staged)
            for layer, frame in (("crosswalk", table), ("misalignment", report), ("nesting", units)):
                frame.to_file(staged, layer=layer, driver="GPKG", engine="pyogrio")
        else:
            pd.DataFrame(table.drop(columns="geometry")).to_csv(staged, index=False, encoding="utf-8-sig")
            pd.DataFrame(report.drop(columns="geometry")).to_csv(staged_extra, index=False, encoding="utf-8-sig")
            os.replace(staged_extra, extra)
        os.replace(staged, output)
    finally:
        for path in (staged, staged_extra):
            if os.path.exists(path):
                os.unlink(path)
