"""The shared typer application every command module adds its commands to."""

import typer

app = typer.Typer(
    name="gridgeo",
    help="gridgeo: grids, stations and figures for community grid governance (网格化服务管理).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def fail(message: str, code: int = 2) -> None:
    """Print an error the user can act on and exit with ``code``."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)
