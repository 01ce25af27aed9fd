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
- A grid's *workers* are its full-time and part-time grid workers
  (专职、兼职网格员, :data:`WORKER_ROLES`); the head (网格长) and the police
  deputy (警格民警) lead and are not counted in ``households_per_worker``, the
  staffing figure (households over workers).
- Staffing counts *posts*: rows of the roster. A unit's heads, workers and
  police are the posts on it and on every unit below it (all levels, a level-3
  plot's workers in its level-2 grid too), so a parent is the sum of its
  children, as every count of :func:`gridgeo.stats.figures`; a person listed on
  two grids holds two posts. A roster row naming a code the units lack counts
  nowhere and is counted aside (``attrs["unknown"]``).
- A *person* is a name and phone (a name alone where no phone is given, then
  only within one grid). A person's figures are the sums over every grid they
  serve: a police officer deputy to three grids answers for the three grids'
  households, events and overdue events (``overdue``: the events still open
  whose category's time limit has passed, by :func:`gridgeo.events.indicators`'
  rule over one period, ``period=None``: counted at its end, one second after
  the last report in the data).
- Names and phones are personal data: :func:`public_team` says what the public
  sees of a team, only what the office chose to publish (the grid's office and
  a service number), never a name or a phone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridgeo.schema import ROSTER_ROLES

__all__ = ["team", "posts", "staffing", "public_team", "WORKER_ROLES", "ROSTER_COLUMNS", "PERSON_FIGURES"]

WORKER_ROLES = ("专职网格员", "兼职网格员")
"""The roles counted as a grid's workers (the staffing figure's divisor)."""

ROSTER_COLUMNS = ("grid_code", "role", "role_en", "name", "phone")
"""The columns of a team (:func:`team`), before the figures."""

PERSON_FIGURES = ("grids", "households", "population", "events", "overdue")
"""A person's figures in :func:`team` (module notes): the grids they serve, and the sums
over those grids."""

_FIGURES = ("households", "population", "events")
_POSTS = {"heads": ("网格长",), "workers": WORKER_ROLES, "police": ("警格民警",)}


def team(roster, code: str, *, figures=None, indicators=None) -> pd.DataFrame:
    """The people of one grid, head first (:data:`gridgeo.schema.ROSTER_ROLES` order), each
    with the figures of every grid they serve (module notes).

    Parameters
    ----------
    roster : DataFrame
        Rows ``grid_code``, ``role``, ``name``, ``phone`` (the store's ``roster``).
    code : str
        The grid.
    figures : DataFrame, optional
        Figures per unit indexed by code (:func:`gridgeo.stats.figures`): its
        ``households``, ``population`` and ``events`` are summed over each
        person's grids.
    indicators : DataFrame, optional
        :func:`gridgeo.events.indicators` over one period (``period=None``) of the
        units: its ``overdue`` is summed over each person's grids.

    Returns
    -------
    DataFrame
        :data:`ROSTER_COLUMNS`, then ``grids`` (how many grids the person serves)
        and those of ``households``, ``population``, ``events``, ``overdue`` given;
        empty when nobody is on the roster.

    Examples
    --------
    >>> import pandas as pd
    >>> roster = pd.DataFrame({"grid_code": ["1", "1", "2", "2"], "role": ["警格民警", "网格长", "网格长", "警格民警"],
    ...                        "name": ["王警官", "李网格长", "陈网格长", "王警官"], "phone": ["1", "2", "3", "1"]})
    >>> figures = pd.DataFrame({"households": [300, 200]}, index=pd.Index(["1", "2"], name="code"))
    >>> team(roster, "1", figures=figures)[["role", "name", "grids", "households"]].values.tolist()
    [['网格长', '李网格长', 1, 300], ['警格民警', '王警官', 2, 500]]
    """
    roster = _checked(roster)
    mine = pd.DataFrame(roster[roster["grid_code"] == str(code)]).copy()
    order = {role: i for i, role in enumerate(ROSTER_ROLES)}
    mine["_order"] = mine["role"].map(order).fillna(len(order))
    mine = mine.sort_values(["_order", "name"], kind="stable")
    mine["role_en"] = mine["role"].map(ROSTER_ROLES).fillna("")
    out = mine[list(ROSTER_COLUMNS)].reset_index(drop=True)
    served = _served(roster, out)
    out["grids"] = served.groupby(level=0).size().reindex(out.index, fill_value=0).astype(np.int64)
    per_unit = {}
    if figures is not None:
        per_unit.update({c: figures[c] for c in _FIGURES if c in figures.columns})
    if indicators is not None:
        per_unit["overdue"] = _overdue(indicators)
    for column, values in per_unit.items():
        values = pd.to_numeric(values, errors="coerce")
        values.index = values.index.astype(str)
        values = values[~values.index.duplicated()]
        out[column] = values.reindex(served.to_numpy()).fillna(0).groupby(served.index).sum() \
            .reindex(out.index, fill_value=0).round().astype(np.int64)
    return out


def _checked(roster) -> pd.DataFrame:
    missing = [c for c in ("grid_code", "role", "name") if c not in roster.columns]
    if missing:
        raise ValueError(f"花名册缺少列 {missing}（有：{list(roster.columns)}）：请给出 grid_code、role、name、phone — "
                         f"the roster has no column(s) {missing} (it has {list(roster.columns)}): give grid_code, "
                         "role, name and phone (gridgeo load reads an office's sheet into them)")
    roster = pd.DataFrame(roster).copy()
    roster["grid_code"] = roster["grid_code"].astype(str)
    roster["phone"] = roster["phone"].fillna("").astype(str) if "phone" in roster.columns else ""
    roster["name"] = roster["name"].fillna("").astype(str)
    return roster


def _served(roster, members) -> pd.Series:
    """The grid codes each member serves (index: the member's row in `members`): the rows of the
    roster with their name and phone, or with their name and grid where they have no phone."""
    key = lambda frame: np.where(frame["phone"].str.strip() != "",  # noqa: E731
                                 frame["name"] + "\x1f" + frame["phone"], frame["name"] + "\x1e" + frame["grid_code"])
    wanted = pd.Series(np.arange(len(members)), index=key(members))
    rows = pd.DataFrame({"person": key(roster), "grid_code": roster["grid_code"].to_numpy()}).drop_duplicates()
    rows = rows[rows["person"].isin(wanted.index)]
    mine = rows.merge(wanted.rename("member").rename_axis("person").reset_index(), on="person")
    return pd.Series(mine["grid_code"].to_numpy(), index=mine["member"].to_numpy())


def _overdue(indicators) -> pd.Series:
    table = indicators
    if "period" in table.columns and table["period"].nunique() > 1:
        raise ValueError("indicators should be over one period (gridgeo.events.indicators(..., period=None)): "
                         "overdue is counted now, not per period — 逾期按当前计，请用 period=None 的指标")
    if "code" in table.columns:
        table = table.set_index("code")
    return table["overdue"]


def posts(roster, units) -> pd.DataFrame:
    """Per unit: ``heads``, ``workers`` (:data:`WORKER_ROLES`) and ``police``, the posts of the
    roster on it and on every unit below it (module notes).

    Parameters
    ----------
    roster : DataFrame
        ``grid_code`` and ``role``.
    units : DataFrame
        The units, indexed by code, with ``parent`` (the enclosing unit's code;
        empty or missing at the top), as :func:`gridgeo.stats.figures` gives them.

    Returns
    -------
    DataFrame
        Indexed as `units`, int64 counts; ``attrs["unknown"]``: roster rows naming a
        code `units` lack.

    Examples
    --------
    >>> import pandas as pd
    >>> units = pd.DataFrame({"parent": ["", "v", "v"]}, index=pd.Index(["v", "g1", "g2"], name="code"))
    >>> roster = pd.DataFrame({"grid_code": ["g1", "g1", "g2", "g2", "x"],
    ...                        "role": ["网格长", "专职网格员", "专职网格员", "兼职网格员", "专职网格员"]})
    >>> counts = posts(roster, units)
    >>> counts["workers"].tolist(), counts.attrs["unknown"]
    ([3, 1, 2], 1)
    """
    codes = pd.Index(units.index.astype(str))
    position = pd.Series(np.arange(len(codes)), index=codes)
    position = position[~position.index.duplicated()]
    parent = (units["parent"].fillna("").astype(str).to_numpy() if "parent" in units.columns
              else np.full(len(codes), ""))
    up = position.reindex(parent).fillna(-1).to_numpy().astype(np.int64)
    at = position.reindex(roster["grid_code"].astype(str).to_numpy()).fillna(-1).to_numpy().astype(np.int64)
    role = roster["role"].astype(str).to_numpy()
    out = pd.DataFrame(index=units.index)
    for column, roles in _POSTS.items():
        own = np.bincount(at[(at >= 0) & np.isin(role, roles)], minlength=len(codes)).astype(np.int64)
        total, current, seen = own.copy(), up.copy(), 0
        while (current >= 0).any() and seen <= len(codes):  # each unit's posts added to every ancestor
            live = np.flatnonzero(current >= 0)
            np.add.at(total, current[live], own[live])
            current[live] = up[current[live]]
            seen += 1
        out[column] = total
    out.attrs["unknown"] = int((at < 0).sum())
    return out


def staffing(roster, figures) -> pd.DataFrame:
    """Per unit of ``figures``: :func:`posts` (``heads``, ``workers``, ``police``) and
    ``households_per_worker`` (NaN without workers), from the roster instead of a bare count.

    Examples
    --------
    >>> import pandas as pd
    >>> roster = pd.DataFrame({"grid_code": ["1", "1", "1"], "role": ["网格长", "专职网格员", "兼职网格员"],
    ...                        "name": ["甲", "乙", "丙"]})
    >>> figures = pd.DataFrame({"households": [300, 50]}, index=pd.Index(["1", "2"], name="code"))
    >>> staffing(roster, figures).loc["1"].tolist()
    [1.0, 2.0, 0.0, 150.0]
    """
    counts = posts(roster, figures).astype(float)
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
