"""The ``gridgeo`` command line.

Each module of this package adds its commands to the one typer app in
:mod:`gridgeo.cli._app`; :func:`main` imports them all, so a new command is
a new module here and nothing else.
"""

import importlib
import pkgutil

from gridgeo.cli._app import app

__all__ = ["app", "main"]


def _load_commands() -> None:
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_load_commands()


def main() -> None:
    app()
