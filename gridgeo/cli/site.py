"""``gridgeo site``: where to put new service stations."""

from enum import Enum
from pathlib import Path

import typer

from gridgeo.cli._app import app, fail
from gridgeo.cli.coverage import ADDRESSES, CRS, DATA_HELP, KINDS, ROADS, STATIONS, load_layers, print_table


class Model(str, Enum):
    mclp = "mclp"
    lscp = "lscp"
    pmedian = "pmedian"


@app.command()
def site(
    data: Path = typer.Argument(None, help=DATA_HELP),
    model: Model = typer.Option(Model.mclp, help="mclp: best k sites for the most households; lscp: fewest "
                                                "sites covering --share; pmedian: k sites, least walking."),
    k: int = typer.Option(3, help="New sites to place (mclp, pmedian)."),
    radius: float = typer.Option(1000.0, help="Walking distance in metres that counts as covered."),
    share: float = typer.Option(1.0, help="Share of households to cover (lscp)."),
    candidates: Path = typer.Option(None, help="Available sites (points); default: road junctions."),
    roads: Path = ROADS,
    stations: Path = STATIONS,
    addresses: Path = ADDRESSES,
    crs: str = CRS,
    kinds: list[str] = KINDS,
    level: str = typer.Option("grid2", help="The level of the households gained per unit."),
    out: Path = typer.Option(None, help="GeoJSON file for the chosen sites."),
    per_grid: Path = typer.Option(None, help="CSV file for the households and addresses within the walk per unit "
                                             "of --level, before and after, and gained."),
    overwrite: bool = typer.Option(False, help="Replace an existing output file."),
):
    """Propose new service stations: maximal coverage, set covering or p-median on walking distances."""
    import logging

    from gridgeo import io, siting

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    layers, net = load_layers(data, roads=roads, stations=stations, addresses=addresses, crs=crs)
    try:
        sites = io.read(candidates, crs=crs) if candidates else None
        common = dict(radius_m=radius, candidates=sites, kinds=kinds or None, units=layers.grids, level=level)
        if model is Model.mclp:
            result = siting.maximal_coverage(layers.addresses, layers.stations, net, k=k, **common)
        elif model is Model.lscp:
            result = siting.set_covering(layers.addresses, layers.stations, net, share=share, **common)
        else:
            result = siting.p_median(layers.addresses, layers.stations, net, k=k, **common)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))

    typer.secho(result.message, fg=typer.colors.GREEN if result.feasible else typer.colors.YELLOW)
    print_table("before and after", result.figures.T)
    if len(result.sites):
        shown = result.sites.assign(lon=result.sites.geometry.x, lat=result.sites.geometry.y)
        print_table("chosen sites", shown.set_index("site_id")[["households_new", "population_new",
                                                                 "addresses_new", "lon", "lat"]],
                    floats="{:.6f}")
    table = result.per_unit.drop(columns="geometry")
    changed = table[table["households_gained"] != 0].set_index("name")
    if len(changed):
        print_table(f"households gained per {level}", changed[["households", "households_before", "households_after",
                                                                "households_gained", "share_after"]])
    if per_grid is not None:
        if per_grid.exists() and not overwrite:
            fail(f"{per_grid} exists (pass --overwrite)")
        table.to_csv(per_grid, index=False, encoding="utf-8-sig")  # a BOM: Excel reads the names as UTF-8
        typer.echo(f"wrote {per_grid} ({len(table)} units of {level})")
    if out is not None:
        try:
            io.write(result.sites, out, overwrite=overwrite)
        except FileExistsError as exc:
            fail(f"{exc} (pass --overwrite)")
        typer.echo(f"wrote {out} ({len(result.sites)} sites)")
    if not result.feasible:
        raise typer.Exit(1)
