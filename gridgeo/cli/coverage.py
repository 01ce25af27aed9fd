"""``gridgeo coverage``: who is within 5/10/15 minutes' walk of a station."""

from enum import Enum
from pathlib import Path

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli._intake import read_layer


class Method(str, Enum):
    network = "network"
    straight = "straight"


DATA_HELP = "A sample directory written by `gridgeo sample` (the committed town sample by default)."

# the layer options `gridgeo coverage` and `gridgeo site` share
ROADS = typer.Option(None, help="Road lines to walk along (any vector file, or .osm/.pbf).")
STATIONS = typer.Option(None, help="Stations file, instead of the sample's (gridgeo's columns, or an office's "
                                    "own sheet, read as gridgeo load reads it).")
ADDRESSES = typer.Option(None, help="Addresses file, instead of the sample's (gridgeo's columns, or an office's "
                                     "own table).")
CRS = typer.Option(None, help="Coordinate system of those files when they do not say (wgs84, gcj02, bd09...).")
KINDS = typer.Option(None, "--kind", help="Only stations of this kind (repeatable), e.g. grid2_station.")


def load_layers(data, *, roads=None, stations=None, addresses=None, crs=None):
    """The sample in `data`, with any layer replaced by a file (roads may be .osm/.pbf)."""
    from gridgeo import network, sample

    try:
        layers = sample.load(data)
    except FileNotFoundError as exc:
        fail(str(exc))
    try:
        if stations:  # an office's own sheet (站点编号, 高德经度 ...) read as gridgeo load reads it
            layers.stations = read_layer(stations, "stations", crs=crs)
        if addresses:
            layers.addresses = read_layer(addresses, "addresses", crs=crs)
        net = network.build(roads if roads else layers.roads, source=crs if roads else None)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    return layers, net


def print_table(title, frame, *, floats="{:,.1f}"):
    """Print a DataFrame as a rich table: counts with separators, shares as percentages."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(frame.index.name or "")
    for col in frame.columns:
        table.add_column(str(col), justify="right")
    for key, row in zip(frame.index, frame.itertuples(index=False)):
        table.add_row(str(key), *(_cell(v, str(key), str(col), floats) for v, col in zip(row, frame.columns)))
    Console().print(table)


def _cell(value, row, col, floats) -> str:
    import numbers

    import pandas as pd

    if isinstance(value, (bool, str)) or not isinstance(value, numbers.Number):
        return str(value)
    if pd.isna(value):
        return ""
    if row.startswith("share") or col.startswith("share"):
        return f"{value:.1%}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return floats.format(value)


@app.command()
def coverage(
    data: Path = typer.Argument(None, help=DATA_HELP),
    out: Path = typer.Option(None, help="Directory for the GeoJSON layers (grids, uncovered areas...)."),
    roads: Path = ROADS,
    stations: Path = STATIONS,
    addresses: Path = ADDRESSES,
    crs: str = CRS,
    kinds: list[str] = KINDS,
    method: Method = typer.Option(Method.network, help="Walking distance along roads, or straight-line."),
    minutes: int = typer.Option(15, help="The life circle whose uncovered areas are written."),
    level: str = typer.Option("grid2", help="The grid level listed worst first."),
    speed: float = typer.Option(4.0, help="Walking speed in km/h."),
    service_areas: bool = typer.Option(False, "--service-areas", help="Also write each station's isochrones."),
    per_address: bool = typer.Option(False, "--per-address", help="Also write every address with its station."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
):
    """Coverage of stations by walking distance: households within each life circle, per grid."""
    import logging

    from gridgeo import coverage as gcov
    from gridgeo import io

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    layers, net = load_layers(data, roads=roads, stations=stations, addresses=addresses, crs=crs)
    try:
        cov = gcov.nearest_station(layers.addresses, layers.stations, net, method=method.value,
                                   kinds=kinds or None, speed_kmh=speed)
        grids = gcov.per_grid(cov, layers.grids, stations=layers.stations if not kinds else
                              layers.stations[layers.stations["kind"].isin(kinds)])
    except ValueError as exc:
        fail(str(exc))
    if minutes not in cov.attrs["circles"]:
        fail(f"--minutes {minutes} is not a life circle: choose one of {list(cov.attrs['circles'])}")

    print_table("households within each life circle", gcov.summary(cov)[
        ["distance_m", "households", "share_households", "population", "share_population"]])
    by_level = grids.groupby("level", sort=False).agg(
        grids=("code", "size"), without_station=("has_station", lambda s: int((~s).sum())),
        households=("households", "sum"), **{f"within_{minutes}min": (f"households_{minutes}min", "sum")},
        farthest_m=("farthest_m", "max"))
    by_level[f"share_{minutes}min"] = by_level[f"within_{minutes}min"] / by_level["households"]
    print_table("per level", by_level)
    worst = grids[grids["level"] == level].sort_values(f"share_{minutes}min").head(10)
    print_table(f"{level}: the 10 grids worst served within {minutes} minutes",
                worst.set_index("code")[["name", "households", f"share_{minutes}min", "farthest_m", "has_station"]])

    if out is not None:
        written = {"grids": grids, f"uncovered_{minutes}min": gcov.uncovered_areas(cov, minutes=minutes)}
        if service_areas:
            written["service_areas"] = gcov.service_areas(layers.stations, net, kinds=kinds or None, speed_kmh=speed)
        if per_address:
            written["addresses"] = cov
        out.mkdir(parents=True, exist_ok=True)
        for name, frame in written.items():
            try:
                io.write(frame, out / f"{name}.geojson", overwrite=overwrite)
            except FileExistsError as exc:
                fail(f"{exc} (pass --overwrite)")
            typer.echo(f"wrote {out / f'{name}.geojson'} ({len(frame):,} features)")
