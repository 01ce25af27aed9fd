"""``gridgeo keys``: API keys of the service (roles viewer, planner, reviewer, admin; scopes)."""

from typing import List

import typer

from gridgeo.cli._app import app, fail

keys_app = typer.Typer(help="API keys of the service: only their SHA-256 digests are kept.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

_FILE = typer.Option("data/keys.json", "--file", envvar="GRIDGEO_KEYS_FILE", help="The keys file.")


@keys_app.command("add")
def add(name: str = typer.Argument(..., help="Who the key is for (shown as a plan's author)."),
        role: str = typer.Option("viewer", help="viewer (leadership), planner, reviewer or admin."),
        scope: List[str] = typer.Option([], "--scope", help="A unit the key covers (a town's or village's "
                                                            "code); repeat for several. Planners and reviewers "
                                                            "only; none: the whole city."),
        file: str = _FILE):
    """Make a key and print it once: it cannot be shown again."""
    from api.keys import KeyStore

    try:
        key = KeyStore(file).add(name, role, scopes=scope)
    except ValueError as exc:
        fail(str(exc))
    typer.echo(key)
    where = f" covering {', '.join(scope)}" if scope else ""
    typer.echo(f"(a {role} key for {name}{where}; keep it: {file} holds only its digest)", err=True)


@keys_app.command("list")
def list_keys(file: str = _FILE):
    """Who has keys, with their roles and scopes (never the keys)."""
    from api.keys import KeyStore

    for entry in KeyStore(file).entries():
        scopes = ",".join(entry["scopes"]) or "(whole city)"
        typer.echo(f"{entry['name']}\t{entry['role']}\t{scopes}\t{entry['created']}")


@keys_app.command("remove")
def remove(name: str = typer.Argument(..., help="Whose keys to revoke."), file: str = _FILE):
    """Revoke every key of a person."""
    from api.keys import KeyStore

    n = KeyStore(file).remove(name)
    if not n:
        fail(f"{file} has no key for {name!r}")
    typer.echo(f"revoked {n} key(s) of {name}")
