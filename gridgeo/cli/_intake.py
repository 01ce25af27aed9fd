"""What ``gridgeo load`` and ``gridgeo tiles export`` share: the --scheme option and an intake's printout."""

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


def print_intake(got) -> bool:
    """Print what an intake found; True when it has errors."""
    crs = got.mapping.crs or "?"
    typer.secho(f"{got.source} → {got.kind or '?'} (coordinates: {crs})", bold=True)
    if got.mapping.columns:
        typer.echo("  columns: " + ", ".join(f"{t} ← {s}" for t, s in got.mapping.columns.items()))
    if got.mapping.lon or got.mapping.location:
        where = got.mapping.location or f"{got.mapping.lon} / {got.mapping.lat}"
        typer.echo(f"  coordinates from: {where}")
    counts = got.counts()
    if counts:
        typer.echo("  rows: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    if got.changes is not None:
        for row in got.changes.to_dict("records"):
            if "kept" in row:
                typer.echo(f"  {row['collection']}: replaces {row['replaced']:,} of {row['published']:,} published "
                           f"units under {row['parents']:,} parent(s): {row['kept']:,} kept, {row['added']:,} new, "
                           f"{row['removed']:,} removed")
            else:
                typer.echo(f"  {row['collection']}: replaces the {row['published']:,} published rows with "
                           f"{row['in_file']:,}")
    for finding in got.findings:
        if finding.severity == "note":
            typer.echo(f"  note: {finding.message_en}")
    failed = False
    for severity, colour in (("warning", typer.colors.YELLOW), ("error", typer.colors.RED)):
        findings = got.warnings if severity == "warning" else got.errors
        for finding in findings[:40]:
            typer.secho(f"  {severity.upper()} {finding.kind}" + (f" [{', '.join(finding.codes[:5])}]"
                                                                   if finding.codes else ""), fg=colour)
            typer.echo(f"    {finding.message_en}")
            typer.echo(f"    {finding.message_zh}")
        if len(findings) > 40:
            typer.echo(f"  ... and {len(findings) - 40} more {severity}s")
        failed |= severity == "error" and bool(findings)
    if got.frame is None and not got.errors:
        failed = True
    return failed
