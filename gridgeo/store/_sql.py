"""What every module of the store shares and needs from none of them: identifiers quoted
for SQL, the time revisions keep, and the layout version of the tables.

It imports nothing of the store's, so that the store's modules (the Store, its
backends, its plans, its tables) import it rather than each other.
"""

from __future__ import annotations

import datetime as _dt

__all__ = ["SCHEMA_VERSION", "q", "now", "utc_text"]

SCHEMA_VERSION = 5
"""The layout of the tables this gridgeo writes; recorded as ``schema_version`` in ``gridgeo_meta``.

1. the layers, their history, plans, revisions.
2. ``gridgeo_derived``: derived data kept per data version (:mod:`gridgeo.derived`).
3. ``gridgeo_audit``: the audit trail (who changed what, and when), filled in for
   the revisions an older store already holds.
4. ``boundaries`` and ``boundaries_history``: the named boundary sets of other
   offices (警格, 学区 ...); ``roster`` and ``roster_history``: who answers for each grid.
5. ``gridgeo_derived.source``: an item a version keeps unchanged from the version before refers to
   the row holding its bytes instead of a copy of them (:meth:`Store.copy_derived`).
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


def utc_text(when) -> str:
    """A time (a datetime, a pandas Timestamp, a date or ISO 8601 text) as the UTC text
    revisions keep; a time without a zone is taken as UTC.

    Examples
    --------
    >>> utc_text("2025-03-01T08:00+08:00"), utc_text("2025-03-01")
    ('2025-03-01T00:00:00.000000Z', '2025-03-01T00:00:00.000000Z')
    """
    import pandas as pd

    try:
        stamp = pd.Timestamp(when)
        if pd.isna(stamp):
            raise ValueError
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        if not 1 <= stamp.year <= 9999:
            raise ValueError
    except (ValueError, TypeError, OverflowError):  # pandas' OutOfBoundsDatetime is a ValueError
        raise ValueError(f"{when!r} is not a time: give ISO 8601 text of a year from 1 to 9999, such as "
                         "2025-03-01 or 2025-03-01T08:00+08:00") from None
    return (f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}T{stamp.hour:02d}:{stamp.minute:02d}:"
            f"{stamp.second:02d}.{stamp.microsecond:06d}Z")
