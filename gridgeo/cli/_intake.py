"""What the commands that read an office's files share: the --scheme option, an intake's printout,
and reading a layer the way ``gridgeo load`` reads it (validate, repair, assign, coverage, site)."""

import typer

from gridgeo.cli._app import fail


def scheme_option(value):
    """The scheme --scheme names (None when not given), or a clear error."""
    if value is None:
        return None
    from gridgeo.schema import scheme_from

    try:
        return scheme_from(value)
    except ValueError as exc:
        fail(f"--scheme: {exc}")


def print_intake(got, err: bool = False) -> bool:
    """Print what an intake found (to stderr with `err`); True when it has errors."""
    crs = got.mapping.crs or "?"
    typer.secho(f"{got.source} → {got.kind or '?'} (coordinates: {crs})", bold=True, err=err)
    if got.mapping.columns:
        typer.echo("  columns: " + ", ".join(f"{t} ← {s}" for t, s in got.mapping.columns.items()), err=err)
    if got.mapping.lon or got.mapping.location:
        where = got.mapping.location or f"{got.mapping.lon} / {got.mapping.lat}"
        typer.echo(f"  coordinates from: {where}", err=err)
    counts = got.counts()
    if counts:
        typer.echo("  rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()), err=err)
    if got.changes is not None:
        for row in got.changes.to_dict("records"):
            if "kept" in row:
                typer.echo(f"  {row['collection']}: replaces {row['replaced']:,} of {row['published']:,} published "
                           f"units under {row['parents']:,} parent(s): {row['kept']:,} kept, {row['added']:,} new, "
                           f"{row['removed']:,} removed", err=err)
            else:
                typer.echo(f"  {row['collection']}: replaces the {row['published']:,} published rows with "
                           f"{row['in_file']:,}", err=err)
    for finding in got.findings:
        if finding.severity == "note":
            typer.echo(f"  note: {finding.message_en}", err=err)
    failed = False
    for severity, colour in (("warning", typer.colors.YELLOW), ("error", typer.colors.RED)):
        findings = got.warnings if severity == "warning" else got.errors
        for finding in findings[:40]:
            typer.secho(f"  {severity.upper()} {finding.kind}" + (f" [{', '.join(finding.codes[:5])}]"
                                                                   if finding.codes else ""), fg=colour, err=err)
            typer.echo(f"    {finding.message_en}", err=err)
            typer.echo(f"    {finding.message_zh}", err=err)
        if len(findings) > 40:
            typer.echo(f"  ... and {len(findings) - 40} more {severity}s", err=err)
        failed |= severity == "error" and bool(findings)
    if got.frame is None and not got.errors:
        failed = True
    return failed


_TABLES = {".csv", ".xlsx", ".xls", ".xlsm"}


def read_layer(path, kind, *, layer=None, crs=None, scheme=None):
    """A layer from a file, as a command that checks it itself reads it.

    A vector file in gridgeo's own columns (:data:`gridgeo.schema.LAYERS`)
    is read as it is; an office's own file (网格编码 and 上级编码, level labels,
    codes in number fields, a GK zone, GBK without .cpg; a station sheet with
    高德经度/纬度) is read the way ``gridgeo load`` reads it
    (:func:`gridgeo.intake.inspect`, without validating grids), and what was
    read as what is said on stderr. A file the intake cannot map stops the
    command, exit status 2, its problems printed. A sample directory gives
    the sample's grids.
    """
    from pathlib import Path

    from gridgeo import intake, io, sample
    from gridgeo.crs import CRSError
    from gridgeo.schema import LAYERS

    path = Path(path)
    if kind == "grids" and path.is_dir():
        return sample.load(path).grids
    if path.suffix.lower() not in _TABLES:
        try:
            frame = io.read(path, layer=layer, crs=crs)
            if set(LAYERS[kind]) <= set(frame.columns):
                return frame
        except (io.ReadError, CRSError):
            pass  # the intake says why, or reads it (a zone-prefixed easting)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: check the path")
    got = intake.inspect(path, kind=kind, layer=layer, crs=crs, scheme=scheme, validate=False)
    if got.frame is None or got.errors:
        print_intake(got, err=True)
        typer.secho(f"{path} cannot be read as {kind}: fix the problems above (gridgeo load --dry-run {path} "
                    "shows the same)", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    columns = ", ".join(f"{t} ← {s}" for t, s in got.mapping.columns.items())
    typer.echo(f"{path}: read as gridgeo load reads it ({columns}; coordinates {got.mapping.crs or '?'})", err=True)
    return got.frame


def read_grids(path, *, layer=None, crs=None, scheme=None):
    """Grids from a file or a sample directory: :func:`read_layer`."""
    return read_layer(path, "grids", layer=layer, crs=crs, scheme=scheme)
