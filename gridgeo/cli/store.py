"""``gridgeo plans``, ``gridgeo revisions`` and ``gridgeo history``: what a store holds and who changed it."""

import typer

from gridgeo.cli._app import app, fail

_STORE = typer.Option("data/gridgeo.gpkg", help="The store: a .gpkg path or a postgresql:// URL.")


@app.command()
def plans(
    store: str = _STORE,
    status: str = typer.Option(None, help="Only plans in this status: draft, published or abandoned."),
):
    """List the plans of a store: id, name, parent, levels, status, author, revisions."""
    from gridgeo import store as gstore

    try:
        with gstore.open(store) as opened:
            table = opened.plans(status=status)
    except (gstore.StoreError, ValueError) as exc:
        fail(str(exc))
    if table.empty:
        typer.echo("no plans" + (f" with status {status}" if status else ""))
        return
    shown = table[["plan_id", "name", "parent", "levels", "status", "author", "base_revision", "revision",
                   "updated_at"]]
    typer.echo(shown.to_string(index=False))


@app.command()
def revisions(
    store: str = _STORE,
    layer: str = typer.Option(None, help="Only revisions that changed this layer (grids, stations...)."),
    since: int = typer.Option(0, help="Only revisions after this one."),
):
    """The revision log of a store: when, who, what, and the layers changed."""
    from gridgeo import store as gstore

    try:
        with gstore.open(store) as opened:
            log = opened.revisions(layer=layer, since=since)
            version = opened.version
    except (gstore.StoreError, ValueError) as exc:
        fail(str(exc))
    if log.empty:
        typer.echo("no revisions")
        return
    log["at"] = log["at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    typer.echo(log.to_string(index=False))
    typer.echo(f"published data at revision {version}")


@app.command()
def history(
    code: str = typer.Argument(..., help="The key of a row: a unit's code, a station's, address's or event's id."),
    store: str = _STORE,
    layer: str = typer.Option("grids", help="The layer the key is in (grids, stations, addresses, events, roads)."),
):
    """Every version of one unit (or station ...): which revision wrote it, who, when, and which
    revision replaced it. With `gridgeo revisions`, what to give `gridgeo rollback --to`."""
    from gridgeo import store as gstore

    try:
        with gstore.open(store) as opened:
            versions = opened.history(layer, code=code)
    except (gstore.StoreError, ValueError) as exc:
        fail(str(exc))
    if versions.empty:
        fail(f"{layer} has no row {code!r}, now or in its history", code=1)
    shown = versions.drop(columns=["geometry"])
    for col in ("valid_from", "valid_to"):
        shown[col] = shown[col].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("")
    keep = [c for c in ("code", "station_id", "addr_id", "event_id", "segment_id", "name", "level", "parent",
                        "revision", "author", "valid_from", "retired", "retired_by", "valid_to") if c in shown.columns]
    typer.echo(shown[keep].to_string(index=False))
