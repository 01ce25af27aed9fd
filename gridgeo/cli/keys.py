"""``gridgeo keys``: API keys of the service (roles viewer, planner, reviewer, admin; scopes).

Every key made or revoked is appended to the audit log beside the keys file
(:func:`gridgeo.audit.record_key_change`), with who did it.
"""

from typing import List

import typer

from gridgeo.cli._app import app, fail

keys_app = typer.Typer(help="API keys of the service: only their SHA-256 digests are kept.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

_FILE = typer.Option("data/keys.json", "--file", envvar="GRIDGEO_KEYS_FILE", help="The keys file.")
_AUTHOR = typer.Option(None, "--author", help="Who changes the keys, for the audit log (default: the login name).")


def _logged(file, action, author, what) -> None:
    """Put a key change in the audit log beside the keys file."""
    import getpass

    from gridgeo.audit import keys_log_path, record_key_change

    try:
        record_key_change(file, action, author or getpass.getuser(), what)
    except OSError as exc:
        fail(f"the key change was made, but {keys_log_path(file)} could not record it ({exc}): note it by hand")


@keys_app.command("add")
def add(name: str = typer.Argument(..., help="Who the key is for (shown as a plan's author)."),
        role: str = typer.Option("viewer", help="viewer (leadership), planner, reviewer or admin."),
        scope: List[str] = typer.Option([], "--scope", help="A unit the key covers (a town's or village's "
                                                            "code); repeat for several. Planners and reviewers "
                                                            "only; none: the whole city."),
        file: str = _FILE, author: str = _AUTHOR):
    """Make a key and print it once: it cannot be shown again."""
    from api.keys import KeyStore, KeysUnavailable

    try:
        key = KeyStore(file).add(name, role, scopes=scope)
    except (ValueError, KeysUnavailable) as exc:
        fail(str(exc))
    _logged(file, "key-add", author, {"name": name, "role": role, "scopes": list(scope)})
    typer.echo(key)
    where = f" covering {', '.join(scope)}" if scope else ""
    typer.echo(f"(a {role} key for {name}{where}; keep it: {file} holds only its digest)", err=True)


@keys_app.command("list")
def list_keys(file: str = _FILE):
    """Who has keys, with their roles and scopes (never the keys)."""
    from api.keys import KeyStore, KeysUnavailable

    try:
        entries = KeyStore(file).entries()
    except KeysUnavailable as exc:
        fail(str(exc))
    for entry in entries:
        scopes = ",".join(entry["scopes"]) or "(whole city)"
        typer.echo(f"{entry['name']}\t{entry['role']}\t{scopes}\t{entry['created']}")


@keys_app.command("remove")
def remove(name: str = typer.Argument(..., help="Whose keys to revoke."), file: str = _FILE,
           author: str = _AUTHOR):
    """Revoke every key of a person."""
    from api.keys import KeyStore, KeysUnavailable

    try:
        n = KeyStore(file).remove(name)
    except KeysUnavailable as exc:
        fail(str(exc))
    if not n:
        fail(f"{file} has no key for {name!r}")
    _logged(file, "key-remove", author, {"name": name, "count": n})
    typer.echo(f"revoked {n} key(s) of {name}")
