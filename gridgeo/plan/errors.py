"""The one error a plan edit raises: what was refused, in English and Chinese."""

from __future__ import annotations

__all__ = ["PlanError"]

DOING_ZH = {"reassign": "调整图块归属", "add a grid": "新增网格", "import": "导入", "merge": "合并", "split": "拆分",
            "redraw": "重绘", "rename": "改名",
            "unassign": "移入待分配区", "save": "保存"}
"""The Chinese for what an edit was doing, for messages."""


class PlanError(ValueError):
    """An edit, an import or a division that gridgeo refuses; nothing was changed.

    ``str(error)`` is the English message; the attributes carry what a user
    interface needs to show it in either language and to point at the fault.

    Attributes
    ----------
    reason : str
        A stable, machine-readable name of the refusal (``"not_neighbours"``,
        ``"unknown_blocks"``, ``"invalid_result"`` ...), for API status codes
        and translations.
    message_en, message_zh : str
        What is wrong and what to do, in English and in Chinese.
    codes : list of str
        The units at fault.
    blocks : list of str
        The blocks at fault.
    report : GeoDataFrame or None
        For ``reason="invalid_result"``: the :func:`gridgeo.validate` rows the
        edit would have introduced.

    Examples
    --------
    >>> e = PlanError("not_neighbours", "grids A and B do not touch", "网格 A 与 B 不相邻", codes=["A", "B"])
    >>> str(e), e.reason, e.codes
    ('grids A and B do not touch', 'not_neighbours', ['A', 'B'])
    """

    def __init__(self, reason: str, message_en: str, message_zh: str, *, codes=(), blocks=(), report=None):
        super().__init__(message_en)
        self.reason = reason
        self.message_en = message_en
        self.message_zh = message_zh
        self.codes = [str(c) for c in codes]
        self.blocks = [str(b) for b in blocks]
        self.report = report

    def to_dict(self) -> dict:
        """The error as plain data (for a JSON response)."""
        return {"reason": self.reason, "message_en": self.message_en, "message_zh": self.message_zh,
                "codes": self.codes, "blocks": self.blocks}
