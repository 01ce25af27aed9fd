"""Figures as an office's Excel workbook: what offices send each other.

:func:`figures_workbook` writes figures per unit (as :func:`gridgeo.stats.figures`
makes them, or the service's ``/stats``) into an ``.xlsx`` file that opens as
an office expects it:

- sheet **指标 Figures**: one row per unit — code (as text, so Excel keeps
  every digit of a 12- to 19-digit code), name, level, parent, then each figure
  under a header in Chinese and English; counts with thousands separators,
  shares as per cent; a withheld figure (the minimum-count rule of
  :mod:`gridgeo.disclosure`) is an empty cell, and the row's
  ``已隐去 suppressed`` column says so. The header row is frozen and filtered.
- sheet **说明 About**: the title, the data version, when it was made (Beijing
  time), the minimum count and how many units it withheld.

The values are the figures themselves, unrounded: the cell formats only
change how they are shown.

Examples
--------
>>> import io, gridgeo, openpyxl
>>> s = gridgeo.sample.load()
>>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
>>> book = openpyxl.load_workbook(io.BytesIO(figures_workbook(f[f["level"] == "village"], title="内坑镇")))
>>> book.sheetnames
['指标 Figures', '说明 About']
>>> sheet = book["指标 Figures"]
>>> [c.value for c in sheet[1]][:3]
['编码 code', '名称 name', '层级 level']
>>> sheet.max_row - 1 == int((f["level"] == "village").sum())
True
"""

from __future__ import annotations

import datetime as _dt
import io
import math

import numpy as np
import pandas as pd

from gridgeo import _mapstyle
from gridgeo.events import MAP_FIELD
from gridgeo.schema import DEFAULT_SCHEME, CodeScheme

__all__ = ["FIGURE_NAMES", "figures_workbook"]

FIGURE_NAMES = {
    "addresses": ("地址数", "addresses"),
    "households": ("户数", "households"),
    "population": ("人口", "population"),
    "units": ("单元数", "units"),
    "workers": ("网格员", "grid workers"),
    "households_per_worker": ("网格员人均服务户数", "households per grid worker"),
    "events": ("事件数", "events"),
    "events_per_1000": ("千人事件数", "events per 1,000 residents"),
    "stations": ("服务站点", "stations"),
    "band": ("户数达标", "households band"),
    "share_5min": ("5分钟生活圈覆盖率", "households within 5 minutes"),
    "share_10min": ("10分钟生活圈覆盖率", "households within 10 minutes"),
    "share_15min": ("15分钟生活圈覆盖率", "households within 15 minutes"),
    "has_station": ("有服务站", "has a station"),
    "suppressed": ("已隐去", "suppressed"),
}
"""The header of each figure: Chinese, English."""

_FIRST = {"code": ("编码", "code"), "name": ("名称", "name"), "level": ("层级", "level"),
          "parent": ("上级编码", "parent")}
_BEIJING = _dt.timezone(_dt.timedelta(hours=8))


def figures_workbook(figures: pd.DataFrame, *, columns=None, title: str | None = None, version=None,
                     when: _dt.datetime | None = None, min_count: int | None = None,
                     scheme: CodeScheme = DEFAULT_SCHEME) -> bytes:
    """The figures per unit as an ``.xlsx`` workbook (see the module's rules).

    Parameters
    ----------
    figures : DataFrame
        One row per unit: ``code`` (a column or the index), ``name``,
        ``level``, ``parent`` and figures. A geometry column is left out.
    columns : list of str, optional
        The figures to write, in order (default every known figure present:
        :data:`FIGURE_NAMES`).
    title : str, optional
        What the table is of (a place), written on the About sheet.
    version : optional
        The data version.
    when : datetime, optional
        When it was made (default now); written in Beijing time.
    min_count : int, optional
        The minimum count withholding small units' figures, if one applied.

    Returns
    -------
    bytes
        The workbook.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    table = figures.reset_index() if "code" not in figures.columns else figures.copy()
    table = table.drop(columns=[c for c in table.columns if c == "geometry"])
    chosen = columns if columns is not None else [c for c in FIGURE_NAMES if c in table.columns]
    missing = [c for c in chosen if c not in table.columns]
    if missing:
        raise KeyError(f"没有这些指标列 {missing} — the figures have no column(s) {missing}: "
                       f"use some of {[c for c in table.columns if c in FIGURE_NAMES]}")
    first = [c for c in _FIRST if c in table.columns]
    book = Workbook()
    sheet = book.active
    sheet.title = "指标 Figures"
    heads = [" ".join(_FIRST[c]) for c in first] + [" ".join(_names(c)) for c in chosen]
    sheet.append(heads)
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="DDE6F0")
    for cell in sheet[1]:
        cell.font, cell.fill = bold, fill
        cell.alignment = Alignment(wrap_text=True, vertical="center")
    bands = _mapstyle.style()["band"]
    for row in table[first + chosen].itertuples(index=False):
        values = []
        for name, value in zip(first + chosen, row):
            if name == "level":
                value = f"{_mapstyle.level_label(value, scheme=scheme)} {value}"
            elif name == "band" and isinstance(value, str) and value in bands:
                value = f"{bands[value]['label']} {value}"
            values.append(_cell(value))
        sheet.append(values)
    formats = {c: _format(c, table[c]) for c in chosen}
    for j, name in enumerate(first + chosen, start=1):
        letter = get_column_letter(j)
        fmt = formats.get(name)
        if fmt or name in ("code", "parent"):
            for (cell,) in sheet.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = fmt or "@"
        width = max([len(str(heads[j - 1])) * 1.2] + [len(str(v)) * (1.8 if name == "name" else 1.1)
                                                       for v in table[name].head(200)])
        sheet.column_dimensions[letter].width = min(max(width, 8), 40)
    sheet.freeze_panes = "C2"
    sheet.auto_filter.ref = sheet.dimensions

    about = book.create_sheet("说明 About")
    stamp = (when or _dt.datetime.now(_dt.UTC)).astimezone(_BEIJING)
    suppressed = int(table["suppressed"].fillna(False).astype(bool).sum()) if "suppressed" in table else 0
    rows = [("标题 title", title or ""), ("单元数 units", len(table)),
            ("数据版本 data version", "" if version is None else str(version)),
            ("导出时间（北京时间） made (Beijing time)", f"{stamp:%Y-%m-%d %H:%M}"),
            ("最小公开数 minimum count", "" if not min_count else min_count),
            ("隐去指标的单元 units with figures withheld", suppressed),
            ("说明 note", "少于最小公开数的指标留空 — figures counting fewer than the minimum are left empty"
             if min_count else "全部指标 — every figure"),
            ("来源 source", "gridgeo")]
    for key, value in rows:
        about.append([key, value])
    about.column_dimensions["A"].width = 40
    about.column_dimensions["B"].width = 60
    for (cell,) in about.iter_rows(min_col=1, max_col=1):
        cell.font = bold
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _cell(value):
    """A value as a cell takes it: missing as empty, numpy scalars as Python numbers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if not math.isfinite(float(value)) else float(value)
    return value


def _names(column: str) -> tuple[str, str]:
    """A figure's header: :data:`FIGURE_NAMES`, or an event indicator's name (``ev_closure_rate``)."""
    if column in FIGURE_NAMES:
        return FIGURE_NAMES[column]
    return _mapstyle.field_label(column, "zh"), _mapstyle.field_label(column, "en")


def _format(name: str, values: pd.Series) -> str | None:
    if name.startswith("share_") or (name.startswith(MAP_FIELD) and _mapstyle.field_style(name).get("format") == "pct"):
        return "0.0%"
    if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
        return None
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    whole = bool(len(numbers) == 0 or np.all(np.mod(numbers.to_numpy(dtype=float), 1) == 0))
    return "#,##0" if whole else "#,##0.0"
