"""``gridgeo load``: put a sample (or any directory of layers) into a store."""

from pathlib import Path

import typer

from gridgeo.cli._app import app, fail


@app.command()
def load(
    source: Path = typer.Argument(..., help="A sample directory written by `gridgeo sample`."),
    store: str = typer.Option("data/gridgeo.gpkg", help="The GeoPackage to load into."),
    if_missing: bool = typer.Option(False, "--if-missing", help="Do nothing when the store already exists."),
):
    """Load a sample directory into the embedded GeoPackage store."""
    from gridgeo import io, sample

    target = Path(store)
    if target.exists():
        if if_missing:
            typer.echo(f"{target} already exists: nothing to do")
            return
        fail(f"{target} already exists: remove it or pass --if-missing")
    try:
        data = sample.load(source)
    except FileNotFoundError as exc:
        fail(str(exc))
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".loading-{target.name}")
    staged.unlink(missing_ok=True)
    for name, frame in data.layers().items():
        io.write(frame, staged, layer=name, driver="GPKG")
        typer.echo(f"  {name:<10} {len(frame):>8,}")
    staged.replace(target)
    typer.echo(f"loaded {source} into {target}")
