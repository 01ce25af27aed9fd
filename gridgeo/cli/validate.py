"""``gridgeo validate``: check a grid layer and list what is wrong, and where."""

from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli._intake import read_grids, scheme_option

_PROGRESS_FROM = 2000  # units: a progress bar from this size on, unless told


class Format(str, Enum):
    text = "text"
    json = "json"
    geojson = "geojson"


@app.command()
def validate(
    file: Path = typer.Argument(..., help="The grid layer: GeoJSON, GeoPackage, Shapefile (.shp or .zip), "
                                          "GeoParquet, FlatGeobuf; in gridgeo's columns or an office's own "
                                          "(read as gridgeo load reads them)."),
    layer: Optional[str] = typer.Option(None, "--layer", "-l", help="The layer to read from a file with several."),
    format: Format = typer.Option(Format.text, "--format", "-f",
                                  help="text: a summary and every problem; json: the same as JSON; "
                                       "geojson: the problems as a FeatureCollection."),
    output: Optional[Path] = typer.Option(None, "--output", "-o",
                                          help="Also write the problems to this file (.geojson, .gpkg, ...), "
                                               "for QGIS or a map."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the --output file if it exists."),
    crs: Optional[str] = typer.Option(None, "--crs", help="What the coordinates are when the file does not say: "
                                                          "wgs84, cgcs2000, gcj02, bd09 or an EPSG code."),
    scheme: Optional[str] = typer.Option(None, "--scheme", help="The code scheme: default, beijing, prefecture "
                                                                "or a JSON file of one (CodeScheme.to_dict)."),
    level: Optional[List[str]] = typer.Option(None, "--level", help="Check this level only (repeat for several)."),
    gap_width: float = typer.Option(2.0, help="Metres: narrower uncovered pieces are gaps, wider ones uncovered."),
    sliver_area: float = typer.Option(100.0, help="Square metres: smaller units or parts are slivers."),
    tolerance: float = typer.Option(1.0, help="Metres a unit may stick out of its parent."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                            help=f"Show a progress bar (default: from {_PROGRESS_FROM:,} units on)."),
):
    """Check a grid layer: geometry, topology, nesting, shape and codes.

    Exit status 0 when there is no error (warnings are fine), 1 when there are
    errors, 2 when the file cannot be checked.
    """
    import json

    from gridgeo import io
    from gridgeo.crs import CRSError
    from gridgeo.schema import DEFAULT_SCHEME, SchemaError
    from gridgeo.validation import validate as check

    codes = scheme_option(scheme)
    try:
        grids = read_grids(file, layer=layer, crs=crs, scheme=codes)
        report = check(grids, levels=level or None, gap_width=gap_width, sliver_area=sliver_area,
                       tolerance=tolerance, name=str(file), scheme=codes or DEFAULT_SCHEME,
                       progress=len(grids) >= _PROGRESS_FROM if progress is None else progress)
    except (FileNotFoundError, io.ReadError, CRSError, SchemaError, ValueError) as exc:
        fail(str(exc))
    if output is not None:
        try:
            io.write(report, output, overwrite=overwrite)
        except (FileExistsError, ValueError) as exc:
            fail(str(exc))

    summary = report.attrs["summary"]
    if format is Format.geojson:
        typer.echo(report.to_json(drop_id=True, ensure_ascii=False))
    elif format is Format.json:
        typer.echo(json.dumps({"file": str(file), "summary": summary, "problems": _problems(report)},
                              ensure_ascii=False, indent=2))
    else:
        _print_text(file, report, summary, output)
    raise typer.Exit(0 if summary["valid"] else 1)


def _problems(report):
    """The report's rows as dicts, located by a point on each problem."""
    import shapely

    points = shapely.point_on_surface(report.geometry.array)
    rows = report.drop(columns=report.geometry.name).to_dict("records")
    for row, point in zip(rows, points):
        located = point is not None and not shapely.is_empty(point)
        row["lon"] = round(float(point.x), 7) if located else None
        row["lat"] = round(float(point.y), 7) if located else None
        row["area_m2"] = None if row["area_m2"] != row["area_m2"] else round(row["area_m2"], 2)
    return rows


def _print_text(file, report, summary, output):
    verdict = "valid" if summary["valid"] else "NOT valid"
    typer.echo(f"{file}: {summary['units']:,} units in {len(summary['levels'])} level(s): {verdict}, "
               f"{summary['errors']:,} error(s), {summary['warnings']:,} warning(s)")
    for kind, n in summary["by_kind"].items():
        typer.echo(f"  {kind:<16} {n:>6,}")
    for row in report.itertuples(index=False):
        colour = typer.colors.RED if row.severity == "error" else typer.colors.YELLOW
        typer.secho(f"{row.severity.upper():<7} {row.kind:<16} {row.level:<8} {row.codes}", fg=colour)
        typer.echo(f"        {row.message_en}")
        typer.echo(f"        {row.message_zh}")
    if output is not None:
        typer.echo(f"problems written to {output}")
