"""``gridgeo sample``: write a generated sample."""

from enum import Enum
from pathlib import Path

import typer

from gridgeo.cli._app import app, fail


class Scale(str, Enum):
    town = "town"
    city = "city"
    province = "province"


class Format(str, Enum):
    geojson = "geojson"
    parquet = "parquet"
    gpkg = "gpkg"


@app.command()
def sample(
    directory: Path = typer.Argument(..., help="Directory to write (one file per layer)."),
    scale: Scale = typer.Option(Scale.town, help="town: 内坑镇 alone; city: all of Jinjiang; province: --cities "
                                                 "copies of the city side by side, one county each."),
    cities: int = typer.Option(2, min=1, max=99, help="Cities in a province sample."),
    seed: int = typer.Option(7, help="The same seed gives the same files."),
    format: Format = typer.Option(None, help="geojson (default for town) or parquet (default for city) or gpkg."),
    overwrite: bool = typer.Option(False, help="Replace a non-empty directory."),
):
    """Generate realistic sample data on the real outline of Jinjiang (晋江市)."""
    from gridgeo import sample as gsample

    fmt = format.value if format else ("geojson" if scale is Scale.town else "parquet")
    try:
        s = gsample.generate(scale.value, seed=seed, cities=cities)
        s.write(directory, format=fmt, overwrite=overwrite)
    except FileExistsError as exc:
        fail(str(exc))
    counts = s.metadata["counts"]
    extent = f", {cities} cities" if scale is Scale.province else ""
    typer.echo(f"wrote {directory} ({scale.value}{extent}, seed {seed}, {fmt}):")
    for key, value in counts.items():
        typer.echo(f"  {key:<11} {value:>9,}")
