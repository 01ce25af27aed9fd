"""``gridgeo rollback``: the published data of an earlier revision again, as one new revision."""

from typing import List, Optional

import typer

from gridgeo.cli._app import app, fail

_UNITS_SHOWN = 40


@app.command()
def rollback(
    store: str = typer.Option("data/gridgeo.gpkg", envvar="GRIDGEO_STORE",
                              help="The store: a .gpkg path or a postgresql:// URL (or GRIDGEO_STORE)."),
    to: int = typer.Option(..., "--to", help="The revision whose published data to restore "
                                             "(see `gridgeo revisions`)."),
    author: Optional[str] = typer.Option(None, help="Who rolls back (default: the login name)."),
    message: str = typer.Option("", "--message", "-m", help="Why (kept in the audit trail)."),
    layer: Optional[List[str]] = typer.Option(
        None, "--layer", help="Only this layer (grids, a grid level, stations, addresses, events, roads); "
                              "repeatable. Default: all."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask: roll back if it is allowed."),
):
    """Make the published data equal revision TO's again, as one new revision.

    Prints what would change (rows added, changed and removed per layer, the
    grid units by code, the draft plans that will need a rebase) and asks
    before doing it. Refused, with nothing changed, when TO is not a
    revision, when nothing would change, or when the grids after it would
    fail validation; the exit status is then 1.
    """
    import getpass

    from gridgeo import store as gstore

    author = author or getpass.getuser()
    try:
        with gstore.open(store) as opened:
            preview = opened.rollback_preview(to, layers=layer or None)
            _show(opened, preview)
            refusal = preview.get("refusal")
            if refusal:
                fail(f"{refusal['message_en']}\n       {refusal['message_zh']}", code=1)
            if not yes and not typer.confirm(f"roll back to revision {to}? / 回退到版本 {to}？", default=False):
                fail("not confirmed: nothing was changed / 未确认，未作任何修改", code=1)
            revision = opened.rollback(to, author=author, message=message, layers=layer or None,
                                       base_version=preview["version"])
    except gstore.RollbackError as exc:
        fail(f"{exc.message_en}\n       {exc.message_zh}", code=1)
    except gstore.ConflictError as exc:
        fail(str(exc), code=1)
    except (gstore.StoreError, ValueError, TypeError) as exc:
        fail(str(exc))
    typer.echo(f"rolled back to revision {to} as revision {revision}, by {author}; services on the store follow "
               f"the new data version / 已回退到版本 {to}（新版本 {revision}）")


def _show(store, preview) -> None:
    """What a rollback would change, as tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    log = store.revisions()
    row = log[log["revision"] == preview["to"]]
    if len(row):
        r = row.iloc[0]
        console.print(f"revision {preview['to']}: {r['at']:%Y-%m-%d %H:%M:%S} UTC, {r['action']} by {r['author']}"
                      + (f" ({r['message']})" if r["message"] else ""))
    else:
        console.print("revision 0: the empty store")
    console.print(f"published data now at version {preview['version']}")
    if not preview["layers"]:
        return
    table = Table(title=f"a rollback to revision {preview['to']} would / 回退将", title_justify="left")
    for name in ("layer", "put back 恢复", "changed back 改回", "removed 删除"):
        table.add_column(name, justify="left" if name == "layer" else "right")
    for kind, counts in preview["layers"].items():
        table.add_row(kind, *(f"{counts[k]:,}" for k in ("added", "changed", "removed")))
        if kind == "grids":
            for level, c in preview.get("levels", {}).items():
                table.add_row(f"  {level}", *(f"{c[k]:,}" for k in ("added", "changed", "removed")))
    console.print(table)
    for what, label in (("added", "put back"), ("changed", "changed back"), ("removed", "removed")):
        codes = preview.get("units", {}).get(what) or []
        if codes:
            more = f" … and {len(codes) - _UNITS_SHOWN} more" if len(codes) > _UNITS_SHOWN else ""
            console.print(f"units {label}: {', '.join(codes[:_UNITS_SHOWN])}{more}", soft_wrap=True)
    for plan in preview.get("plans", []):
        console.print(f"plan {plan['plan_id']} {plan['name']!r} ({plan['status']}, {plan['author']}) redraws "
                      f"{', '.join(plan['units'])}: it will have to be rebased before it is published",
                      soft_wrap=True)
    for error in preview.get("errors", [])[:20]:
        console.print(f"[red]{error['code']}: {error['kind']}[/red] {error['message_en']} / {error['message_zh']}",
                      soft_wrap=True)
