"""What can go wrong in a store, as exceptions a caller can act on.

Every message names the store, the layer, the plan or the unit at fault, who
did what when that matters, and what to do next. The API maps them to HTTP
statuses: :class:`NotFound` 404, :class:`StaleEditError` and
:class:`ConflictError` 409, :class:`PublishError` and :class:`RollbackError` 422,
:class:`FilterError` 400, the rest 400 or 500.
"""

from __future__ import annotations

__all__ = [
    "StoreError",
    "NotAStoreError",
    "SchemaVersionError",
    "NotFound",
    "PlanStateError",
    "StaleEditError",
    "ConflictError",
    "PublishError",
    "RollbackError",
    "FilterError",
]


class StoreError(Exception):
    """Something about a store went wrong; the message says what to do."""


class NotAStoreError(StoreError):
    """The file or database exists but holds no gridgeo store (or no file is there)."""


class SchemaVersionError(StoreError):
    """The store was written by a newer gridgeo than this one."""


class NotFound(StoreError, LookupError):
    """A layer, plan or unit that does not exist."""


class FilterError(StoreError, ValueError):
    """A ``filter=`` (CQL2) or ``sortby=`` a read cannot run: it does not parse, names a
    property the layer lacks, or uses an operator or function the store does not support.
    The message names what and says what is supported; nothing was read."""


class PlanStateError(StoreError):
    """A plan that is published or abandoned cannot be changed."""


class StaleEditError(StoreError):
    """An edit based on an old revision of a unit someone else has changed since.

    Attributes
    ----------
    conflicts : list of dict
        One entry per unit: ``code``, ``based_on`` (the revision the edit
        stated), ``revision`` (the unit's revision now), ``author`` (who made
        it) and ``at`` (when), and ``change`` ("changed", "added" or
        "removed").
    """

    def __init__(self, message: str, conflicts: list[dict]):
        super().__init__(message)
        self.conflicts = conflicts


class ConflictError(StoreError):
    """A plan cannot be published or rebased as it is: the published units it
    replaces have changed since it was made (``conflicts`` lists them)."""

    def __init__(self, message: str, conflicts: list[dict]):
        super().__init__(message)
        self.conflicts = conflicts


class PublishError(StoreError):
    """Publishing was refused because the result fails validation.

    Attributes
    ----------
    report : GeoDataFrame
        The report of :func:`gridgeo.validate` on the grids as they would be
        after the publish; its rows with ``severity == "error"`` are why.
    """

    def __init__(self, message: str, report):
        super().__init__(message)
        self.report = report


class RollbackError(StoreError):
    """A rollback was refused; nothing was written (see :meth:`Store.rollback`).

    ``str(error)`` says why in English and Chinese; the attributes carry what a
    user interface needs.

    Attributes
    ----------
    reason : str
        ``"not_a_revision"`` (the store has no such revision),
        ``"nothing_to_change"`` (the published data already equal that revision's),
        ``"no_grids"`` (that revision has no grids, and the store has) or
        ``"invalid_result"`` (the grids after it would fail :func:`gridgeo.validate`).
    message_en, message_zh : str
        What is wrong and what to do.
    to : int or None
        The revision asked for.
    report : GeoDataFrame or None
        For ``"invalid_result"``: the validation report of the part of the grids
        the rollback touches; its rows with ``severity == "error"`` are why.

    Examples
    --------
    >>> e = RollbackError("nothing_to_change", "nothing would change", "无任何变化", to=3)
    >>> e.reason, str(e)
    ('nothing_to_change', 'nothing would change / 无任何变化')
    """

    def __init__(self, reason: str, message_en: str, message_zh: str, *, to=None, report=None):
        super().__init__(f"{message_en} / {message_zh}")
        self.reason = reason
        self.message_en = message_en
        self.message_zh = message_zh
        self.to = to
        self.report = report

    def to_dict(self) -> dict:
        """The refusal as plain data (for a JSON response); the report's errors are listed apart."""
        return {"reason": self.reason, "message_en": self.message_en, "message_zh": self.message_zh,
                "to": self.to}
