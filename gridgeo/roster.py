"""Who answers for each grid: the roster of a grid's team, and figures per person.

Jinjiang joins police work and grid work (警网融合): beside each grid's head
(网格长) and its full-time and part-time workers (专职/兼职网格员) serves a police
officer as deputy head (警格民警, 副网格长). A *roster* is one row per person and
grid: ``grid_code``, ``role`` (one of :data:`gridgeo.schema.ROSTER_ROLES`),
``name`` and ``phone`` (联系电话), loaded through :mod:`gridgeo.intake` from the
office's sheet (网格编码, 姓名, 职务/岗位, 联系电话) and kept in the store with its
history (a replaced roster stays readable at its revision).

The rules, stated once
----------------------
- A person's figures are their grid's: the households and events of the grid
  they serve (a person serving two grids has two rows, one per grid).
- A grid's *workers* are its full-time and part-time grid workers (专职、兼职网格员);
  the head and the police deputy lead and are not counted in
  ``households_per_worker``, the staffing figure (households over workers).
- Names and phones are personal data: :func:`public_team` says what the public
  sees of a team, only what the office chose to publish (the grid's office and
  a service number), never a name or a phone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridgeo.schema import ROSTER_ROLES

__all__ = ["team", "staffing", "public_team", "WORKER_ROLES", "ROSTER_COLUMNS"]

WORKER_ROLES = ("专职网格员", "兼职网格员")
"""The roles counted as a grid's workers (the staffing figure's divisor)."""

ROSTER_COLUMNS = ("grid_code", "role", "role_en", "name", "phone")
"""The columns of a team (:func:`team`), before the figures."""

_FIGURES = ("households", "population", "events")


def team(roster, code: str, *, figures=None) -> pd.DataFrame:
    """The people of one grid, head first (:data:`gridgeo.schema.ROSTER_ROLES` order), with
    the figures of their grid (module notes).

    Parameters
    ----------
    roster : DataFrame
        Rows ``grid_code``, ``role``, ``name``, ``phone`` (the store's ``roster``).
    code : str
        The grid.
    figures : DataFrame, optional
        Figures per unit indexed by code (:func:`gridgeo.stats.figures`): its
        ``households``, ``population``, ``events`` (and ``overdue`` where present)
        are given to each person of the grid.

    Returns
    -------
    DataFrame
        :data:`ROSTER_COLUMNS` then the figures; empty when nobody is on the roster.

    Examples
    --------
    >>> import pandas as pd
    >>> roster = pd.DataFrame({"grid_code": ["1", "1", "2"], "role": ["警格民警", "网格长", "网格长"],
    ...                        "name": ["王警官", "李网格长", "陈网格长"], "phone": ["1", "2", "3"]})
    >>> team(roster, "1")[["role", "name"]].values.tolist()
    [['网格长', '李网格长'], ['警格民警', '王警官']]
    """
    mine = pd.DataFrame(roster[roster["grid_code"].astype(str) == str(code)]).copy()
    order = {role: i for i, role in enumerate(ROSTER_ROLES)}
    mine["_order"] = mine["role"].map(order).fillna(len(order))
    mine = mine.sort_values(["_order", "name"], kind="stable")
    mine["role_en"] = mine["role"].map(ROSTER_ROLES).fillna("")
    if "phone" not in mine.columns:
        mine["phone"] = ""
    out = mine[list(ROSTER_COLUMNS)].reset_index(drop=True)
    if figures is not None:
        for column in [*_FIGURES, "overdue"]:
            if column in figures.columns:
                value = figures[column].get(str(code), np.nan) if str(code) in figures.index else np.nan
                out[column] = value
    return out


def staffing(roster, figures) -> pd.DataFrame:
    """Per unit of ``figures``: ``heads``, ``workers`` (:data:`WORKER_ROLES`), ``police`` and
    ``households_per_worker`` from the roster instead of a bare count of workers.

    Examples
    --------
    >>> import pandas as pd
    >>> roster = pd.DataFrame({"grid_code": ["1", "1", "1"], "role": ["网格长", "专职网格员", "兼职网格员"],
    ...                        "name": ["甲", "乙", "丙"]})
    >>> figures = pd.DataFrame({"households": [300, 50]}, index=pd.Index(["1", "2"], name="code"))
    >>> staffing(roster, figures).loc["1"].tolist()
    [1.0, 2.0, 0.0, 150.0]
    """
    codes = roster["grid_code"].astype(str)
    counts = pd.DataFrame({
        "heads": (roster["role"] == "网格长").groupby(codes).sum(),
        "workers": roster["role"].isin(WORKER_ROLES).groupby(codes).sum(),
        "police": (roster["role"] == "警格民警").groupby(codes).sum(),
    }).reindex(figures.index).fillna(0).astype(float)
    households = pd.to_numeric(figures["households"], errors="coerce")
    counts["households_per_worker"] = (households / counts["workers"]).where(counts["workers"] > 0)
    return counts


def public_team(code: str, *, office: str | None = None, phone: str | None = None) -> dict:
    """What the public sees of a grid's team: what the office publishes (its office's
    name and a service number, as on the 网格牌), or nothing; never a person.

    Examples
    --------
    >>> public_team("3505821062010101", office="内坑镇网格服务中心", phone="0595-85000000")
    {'code': '3505821062010101', 'office': {'name': '内坑镇网格服务中心', 'phone': '0595-85000000'}}
    >>> public_team("3505821062010101")
    {'code': '3505821062010101', 'office': None}
    """
    published = {k: v for k, v in (("name", office), ("phone", phone)) if v}
    return {"code": str(code), "office": published or None}
