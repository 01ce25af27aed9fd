"""``gridgeo plan suggest`` and ``gridgeo plan import``: a first draft of a village's grids, and
a block-to-grid CSV applied to a store's plan."""

from pathlib import Path
from typing import Optional, Tuple

import typer

from gridgeo.cli._app import app, fail

plan_app = typer.Typer(help="Replanning grids: automatic division and block-to-grid tables.", no_args_is_help=True)
app.add_typer(plan_app, name="plan")

_STORE = typer.Option(None, "--store", help="Read the grids, roads and addresses from this store "
                                            "(a .gpkg path or a postgresql:// URL).")


@plan_app.command("suggest")
def suggest(
    parent: str = typer.Argument(..., help="The code of the village (or level-1 grid) to divide."),
    sample: Optional[Path] = typer.Option(None, "--sample", help="A sample directory (default: the committed "
                                                                  "town sample)."),
    store: Optional[str] = _STORE,
    level: str = typer.Option("grid2", help="The level of the grids to propose."),
    band: Tuple[float, float] = typer.Option((300, 500), help="Households per grid, low and high (included)."),
    seed: int = typer.Option(0, help="The same seed gives the same division."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the proposal: .gpkg (grids and "
                                                                       "blocks layers) or .geojson."),
    csv: Optional[Path] = typer.Option(None, "--csv", help="Write the block-to-grid table (CSV)."),
    overwrite: bool = typer.Option(False, help="Replace existing output files."),
):
    """Propose grids of whole road-bounded blocks, contiguous and compact, with households in the band.

    Prints the balance reached against the published grids.
    """
    import warnings

    from gridgeo import plan
    from gridgeo.crs import CRSError
    from gridgeo.schema import SchemaError

    try:
        grids, roads, addresses = _layers(sample, store, parent)
        state = plan.start(grids, parent, level=level, roads=roads, addresses=addresses)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            draft = plan.suggest_division(state, band=band, seed=seed)
        if output is not None:
            plan.export(draft, output, overwrite=overwrite)
        if csv is not None:
            plan.to_csv(draft, csv, overwrite=overwrite)
    except (plan.PlanError, CRSError, SchemaError, FileExistsError, FileNotFoundError, ValueError, KeyError) as exc:
        fail(str(exc))
    for warning in caught:
        typer.secho(f"warning: {warning.message}", fg=typer.colors.YELLOW, err=True)
    before, after = plan.impact(state, band=band), plan.impact(draft, band=band)
    typer.echo(f"{parent}: {int(after['households'].sum()):,} households on {len(draft.blocks)} blocks")
    for label, table in (("published", before), ("proposed", after)):
        s = table.attrs["summary"]
        typer.echo(f"  {label:<9}  {s['grids']:>3} grids  {s['within']:>3} within {band[0]:g}-{band[1]:g}  "
                   f"{s['under']:>3} under  {s['over']:>3} over  households {s['min']:,.0f}-{s['max']:,.0f}  "
                   f"Polsby-Popper {table['polsby_popper'].mean():.2f}")
    moved = plan.diff(state, draft).summary.get("households_moved", 0)
    typer.echo(f"  {moved:,} households would change grid")
    for path in (output, csv):
        if path is not None:
            typer.echo(f"wrote {path}")


@plan_app.command("import")
def import_csv(
    table: Path = typer.Argument(..., help="The block-to-grid CSV (block_id, grid[, grid_name])."),
    store: str = typer.Option(..., "--store", help="The store holding the plan (.gpkg or postgresql:// URL)."),
    plan_id: int = typer.Option(..., "--plan", help="The plan to paint (see `gridgeo plans`)."),
    author: str = typer.Option(..., "--author", help="Who saves the plan."),
):
    """Paint a store's plan from a block-to-grid CSV and save it (stale edits are refused)."""
    from gridgeo import plan
    from gridgeo import store as gstore

    try:
        with gstore.open(store) as opened:
            state = plan.from_store(opened, plan_id)
            painted = plan.read_csv(state, table)
            report = painted.attrs["import"]
            saved = plan.save(painted, opened, author=author, message=f"import of {table.name}")
    except (plan.PlanError, gstore.StoreError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"plan {plan_id}: saved revision {saved.attrs['store']['revision']} "
               f"({len(painted.units)} grids, {len(report['added'])} added, {len(report['removed'])} removed)")
    for key in ("unknown_blocks", "missing_blocks", "bad_codes"):
        if report[key]:
            typer.secho(f"  {key.replace('_', ' ')}: {', '.join(report[key][:20])}", fg=typer.colors.YELLOW)
    if len(report["errors"]):
        typer.secho(f"  the plan does not validate yet ({len(report['errors'])} error(s)): paint the missing "
                    "blocks before publishing", fg=typer.colors.YELLOW)


def _layers(sample, store, parent):
    """Grids, roads and addresses from a sample directory or a store."""
    if store is not None:
        from gridgeo import store as gstore

        with gstore.open(store) as opened:
            town = parent[: 9]
            grids = opened.read("grids", within=town)
            bounds = tuple(grids.loc[grids["code"] == parent].total_bounds) if (grids["code"] == parent).any() \
                else None
            if bounds is None:
                raise ValueError(f"the store has no unit {parent}")
            return grids, opened.read("roads", bbox=bounds), opened.read("addresses", bbox=bounds)
    from gridgeo import sample as gsample

    s = gsample.load(sample)
    return s.grids, s.roads, s.addresses
