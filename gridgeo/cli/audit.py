"""``gridgeo audit``: who changed what, and when, in a store and in the service's keys."""

from typing import List, Optional

import typer

from gridgeo.cli._app import app, fail


@app.command()
def audit(
    store: str = typer.Option("data/gridgeo.gpkg", envvar="GRIDGEO_STORE",
                              help="The store: a .gpkg path or a postgresql:// URL (or GRIDGEO_STORE)."),
    keys_file: Optional[str] = typer.Option(None, "--keys-file", envvar="GRIDGEO_KEYS_FILE",
                                            help="Also the key changes logged beside this keys file "
                                                 "(or GRIDGEO_KEYS_FILE)."),
    since: Optional[str] = typer.Option(None, help="From this time on (ISO 8601; UTC unless a zone is given, "
                                                   "e.g. 2025-03-01T00:00+08:00)."),
    until: Optional[str] = typer.Option(None, help="Before this time."),
    author: Optional[str] = typer.Option(None, help="Only what this person did."),
    action: Optional[List[str]] = typer.Option(None, help="Only this action (load, publish, rollback, save-plan, "
                                                          "key-add ...); repeatable."),
    plan: Optional[int] = typer.Option(None, "--plan", help="Only the steps of this plan."),
    last: Optional[int] = typer.Option(None, "--last", min=1, help="Only the last N entries."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (one array of entries) instead of a table."),
):
    """The audit trail: every load, plan step, publish, rollback and key change, with who,
    when and what (rows added/changed/removed per layer, the grid units by code)."""
    import json

    from gridgeo import audit as gaudit
    from gridgeo import store as gstore

    try:
        with gstore.open(store) as opened:
            trail = gaudit.trail(opened, keys_file, since=since, until=until, author=author,
                                 action=action or None, plan_id=plan)
    except (gstore.StoreError, ValueError) as exc:
        fail(str(exc))
    if last is not None:
        trail = trail.tail(last)
    if as_json:
        entries = [{"source": r["source"], "entry": int(r["entry"]), "at": r["at"].isoformat(),
                    "author": r["author"], "action": r["action"], "revision": _number(r["revision"]),
                    "plan_id": _number(r["plan_id"]), "message": r["message"], "what": r["what"],
                    "summary": r["summary"]}
                   for r in trail.to_dict("records")]
        typer.echo(json.dumps(entries, ensure_ascii=False, indent=1))
        return
    if trail.empty:
        typer.echo("no entries")
        return
    _print(trail)


def _number(value):
    import pandas as pd

    return None if pd.isna(value) else int(value)


def _print(trail) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="audit trail / 审计记录", title_justify="left")
    for name, justify in (("at (UTC)", "left"), ("who 操作人", "left"), ("action", "left"), ("rev", "right"),
                          ("plan", "right"), ("what 内容", "left"), ("message 说明", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in trail.itertuples(index=False):
        table.add_row(f"{r.at:%Y-%m-%d %H:%M:%S}", r.author, r.action,
                      str(_number(r.revision) or ""), str(_number(r.plan_id) or ""),
                      r.summary, r.message)
    Console().print(table)
