"""What every module of the store shares and needs from none of them: identifiers quoted
for SQL, the time revisions keep, and the layout version of the tables.

It imports nothing of the store's, so that the store's modules (the Store, its
backends, its plans, its tables) import it rather than each other.
"""

from __future__ import annotations

import datetime as _dt

__all__ = ["SCHEMA_VERSION", "q", "now"]

SCHEMA_VERSION = 2
"""The layout of the tables this gridgeo writes; recorded as ``schema_version`` in ``gridgeo_meta``.

1. the layers, their history, plans, revisions.
2. ``gridgeo_derived``: derived data kept per data version (:mod:`gridgeo.derived`).
"""


def q(name: str) -> str:
    """A quoted SQL identifier.

    Examples
    --------
    >>> q('code'), q('we"ird')
    ('"code"', '"we""ird"')
    """
    return '"' + str(name).replace('"', '""') + '"'


def now() -> str:
    """The current time, UTC, as ISO 8601 text (the form revisions keep)."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
