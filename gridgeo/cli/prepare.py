"""``gridgeo prepare``: compute and keep what the service derives from a store's published data."""

import typer

from gridgeo.cli._app import app, fail


@app.command()
def prepare(
    store: str = typer.Option("data/gridgeo.gpkg", envvar="GRIDGEO_STORE",
                              help="The store: a .gpkg path or a postgresql:// URL (or GRIDGEO_STORE)."),
    quiet: bool = typer.Option(False, "--quiet", help="Say nothing but errors."),
    min_count: int = typer.Option(10, "--min-count", envvar="GRIDGEO_MIN_COUNT", min=1,
                                  help="The minimum count of the public figures kept (the service's GRIDGEO_MIN_COUNT)."),
    heat_period: str = typer.Option("month", "--heat-period", envvar="GRIDGEO_HEAT_PERIOD",
                                    help="The period of the public event indicators kept: month, quarter or year "
                                         "(the service's GRIDGEO_HEAT_PERIOD)."),
):
    """Compute the figures, walking coverage, served ground, public event indicators and
    tile geometry of the published data once, and keep them in the store: a service started (or
    restarted) on it answers at once. The service runs this by itself after a
    publish; run it after `gridgeo load` to have the first start ready too.
    Items that did not change since the version before are kept by reference to it, not written again."""
    from gridgeo import derived
    from gridgeo import store as gstore

    say = (lambda line: None) if quiet else (lambda line: typer.echo(line, err=True))
    if heat_period not in ("month", "quarter", "year"):
        fail(f"--heat-period 只能是 month、quarter 或 year — --heat-period must be month, quarter or year, "
             f"got {heat_period!r}")
    try:
        with gstore.open(store) as opened:
            version = opened.version
            done = derived.build(opened, log=say, min_count=min_count, heat_period=heat_period)
            if done is None:
                claim = opened.derived_state(version)["claim"] or {}
                typer.echo(f"version {version} of {opened.url} is being prepared by {claim.get('owner', 'another process')} "
                           f"(since {claim.get('at', '?')}): nothing to do")
                return
            if not quiet:
                typer.echo(f"{opened.url}: version {done} prepared")
    except derived.DerivedError as exc:
        fail(str(exc), code=1)
    except (gstore.StoreError, ValueError) as exc:
        fail(str(exc))
