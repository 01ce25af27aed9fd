"""The pre-publish report: what publishing a plan would put on the one map, for whoever approves it.

:func:`report` gathers, for a plan against the published grids it redraws:

- ``errors``: the validation errors of the grids as they would be after the
  publish (:func:`gridgeo.validate`; a plan with any cannot be published);
- ``warnings``, one row per grid and kind, each with its figure, whether the
  plan brings it (``new``: the published grid of that code did not have it)
  and a message in Chinese and English:

  ``off_band``
      households outside the band (300–500 by default);
  ``non_contiguous``
      a grid in several pieces ("published in 4 pieces");
  ``without_station``
      a grid with households and no station ("30 households with no station");
  ``unassigned``
      blocks with households in no grid;
  and every validation warning (holes, sequence gaps, repeated names ...;
  ``multipart`` only for grids not already reported as ``non_contiguous``);

- ``changes`` (each grid the plan changes: reshaped, split, merged, added,
  removed, renumbered, or only ``renamed``; names before and after) and ``moves``, the from-to
  table of blocks, addresses, households and population between grids
  (:func:`gridgeo.plan.diff`);
- ``summary``: counts of all of these, and the households moved;
- ``version``: a digest of all of it and the plan's revision. Whoever
  approves or publishes a report with warnings names this version
  (:func:`gridgeo.review.require_acknowledged`), so an acknowledgement is
  of exactly what was shown: a save, a rebase or a change to the published
  grids makes another report with another version.

Every figure comes from :func:`gridgeo.plan.impact` and :func:`gridgeo.plan.diff`
on the plan's blocks; this module only gathers and words them.
:func:`report_of` makes the report of a store's plan, even one whose units do
not follow the roads' blocks (an office's file saved as drawn): it cuts the
blocks along the published and the planned boundaries both.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridgeo.plan._kernel import validation as _validation
from gridgeo.plan.blocks import blocks as _blocks
from gridgeo.plan.diff import diff
from gridgeo.plan.errors import PlanError
from gridgeo.plan.exchange import painted_level
from gridgeo.plan.impact import DEFAULT_BAND, impact
from gridgeo.plan.state import PlanState, start

__all__ = ["report", "report_of", "PublishReport", "WARNING_KINDS"]

WARNING_KINDS = ("off_band", "non_contiguous", "without_station", "unassigned")
"""The report's own kinds of warning, before validation's (:data:`gridgeo.validation.KINDS`)."""

_ROW_COLUMNS = ["kind", "severity", "code", "name", "level", "value", "new", "message_zh", "message_en"]
_CHANGE_COLUMNS = ["code", "change", "related", "name_before", "name_after", "households_before",
                   "households_after"]
_MOVE_COLUMNS = ["from_code", "from_name", "to_code", "to_name", "blocks", "addresses", "households", "population"]


@dataclass(frozen=True)
class PublishReport:
    """What publishing a plan would do (see :mod:`gridgeo.plan.report`).

    Attributes
    ----------
    plan_id, revision : int
        The plan and the revision of its units reported on
        (:attr:`gridgeo.store.Plan.edited_revision`: a step of the review
        does not change the report).
    errors, warnings : DataFrame
        One row per problem: ``kind``, ``severity``, ``code``, ``name``,
        ``level``, ``value`` (households, pieces ...; NaN for validation's),
        ``new`` (True when the plan brings it, False when the published grid
        has it already, NA for validation's), ``message_zh``, ``message_en``.
    changes : DataFrame
        One row per grid the plan changes (``change`` is not ``unchanged``).
    moves : DataFrame
        The from-to table, with the grids' names.
    summary : dict
    version : str
        16 hex digits of SHA-256 over all of the above.
    """

    plan_id: int
    revision: int
    errors: pd.DataFrame
    warnings: pd.DataFrame
    changes: pd.DataFrame
    moves: pd.DataFrame
    summary: dict
    version: str

    @property
    def needs_acknowledgement(self) -> bool:
        """Whether approving or publishing needs this report's version acknowledged (it has warnings)."""
        return bool(len(self.warnings))

    def to_dict(self) -> dict:
        """The report as plain, JSON-ready data."""
        return {"plan_id": self.plan_id, "revision": self.revision, "version": self.version,
                "needs_acknowledgement": self.needs_acknowledgement, "summary": self.summary,
                "errors": _records(self.errors), "warnings": _records(self.warnings),
                "changes": _records(self.changes), "moves": _records(self.moves)}

    def __repr__(self) -> str:
        return (f"<PublishReport of plan {self.plan_id} at revision {self.revision}: {len(self.errors)} error(s), "
                f"{len(self.warnings)} warning(s), {self.summary.get('households_moved', 0)} households move; "
                f"version {self.version}>")


def report(published: PlanState, plan: PlanState, *, validation=None, plan_id: int | None = None,
           revision: int | None = None, band=DEFAULT_BAND) -> PublishReport:
    """The pre-publish report of ``plan`` against the ``published`` grids.

    Parameters
    ----------
    published : PlanState
        The published grids the plan redraws (:func:`gridgeo.plan.start`).
    plan : PlanState
        The plan on the same blocks (:func:`gridgeo.plan.from_store`, or any
        state edited from ``published``).
    validation : GeoDataFrame, optional
        The :func:`gridgeo.validate` report of the grids as they would be
        after the publish (:meth:`gridgeo.store.Plan.validate`, what the
        store's publish checks); default: validation of ``plan``'s grids.
    plan_id, revision : int, optional
        The plan, and the revision of its units (for a store's plan,
        :attr:`gridgeo.store.Plan.edited_revision`). Default: from
        ``plan.attrs["store"]`` (a state opened from a store), else 0.
    band : (low, high), default (300, 500)
        Households per grid.

    Returns
    -------
    PublishReport

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses,
    ...                            stations=s.stations)
    >>> pair = gridgeo.plan.neighbours(state).iloc[0]
    >>> merged = gridgeo.plan.merge(state, [pair["a"], pair["b"]])
    >>> r = gridgeo.plan.report(state, merged)
    >>> len(r.errors), r.summary["merged"], r.summary["households_moved"] > 0
    (0, 2, True)
    >>> r.warnings[["kind", "code", "value", "new"]].values.tolist()   # merged: over the band, and now it has a station
    [['off_band', '3505821062010101', 575.0, True], ['sequence_gap', '35058210620101', nan, <NA>]]
    >>> r.moves[["from_name", "to_name", "households"]].values.tolist()
    [['前垵村第2网格', '前垵村第1网格', 348]]
    >>> as_published = gridgeo.plan.report(state, state)
    >>> as_published.warnings["message_en"].tolist()[1]
    'grid 3505821062010101 (前垵村第1网格): 227 households with no station'
    >>> gridgeo.plan.report(state, merged).version == r.version != as_published.version
    True
    """
    record = plan.attrs.get("store") or {}
    plan_id = int(record.get("plan_id", 0) if plan_id is None else plan_id)
    revision = int(record.get("revision", 0) if revision is None else revision)
    d = diff(published, plan, band=band)
    before, after = impact(published, band=band), impact(plan, band=band)
    checked = _validation(plan) if validation is None else validation
    problems = _validation_rows(checked)
    errors = problems[problems["severity"] == "error"].reset_index(drop=True)
    own = _own_warnings(before, after, band)
    pieces = set(own.loc[own["kind"] == "non_contiguous", "code"])
    found = problems[(problems["severity"] == "warning")
                     & ~((problems["kind"] == "multipart") & problems["code"].isin(pieces))]
    warnings = pd.concat([own, found], ignore_index=True)[_ROW_COLUMNS] if len(found) else own
    units = pd.DataFrame(d.units[[c for c in _CHANGE_COLUMNS if c in d.units.columns]])
    renamed = (units["change"] == "unchanged") & (units["name_before"] != units["name_after"])
    units.loc[renamed, "change"] = "renamed"
    changes = units[units["change"] != "unchanged"].reset_index(drop=True)
    moves = _moves(d.moves, before, after)
    summary = {
        "figures": True,
        "grids_before": d.summary["grids_before"], "grids_after": d.summary["grids_after"],
        **{k: d.summary[k] for k in ("renumbered", "reshaped", "split", "merged", "added", "removed")},
        "renamed": int(renamed.sum()),
        **{k: v for k, v in d.summary.items() if k.endswith("_moved")},
        "households": int(after["households"].sum()) if "households" in after else 0,
        "households_without_station": int(after.loc[~after["has_station"], "households"].sum())
        if "has_station" in after else None,
        "band": [float(band[0]), float(band[1])],
    }
    return _assembled(plan_id, revision, errors, warnings, changes, moves, summary)


def report_of(store, plan_id: int, *, band=DEFAULT_BAND) -> PublishReport:
    """The pre-publish report of a store's plan, on blocks cut along the roads and along
    both the published and the planned boundaries (so a plan saved as drawn, off the
    roads, is measured too), validated as the store's publish validates
    (:meth:`gridgeo.store.Plan.validate`).

    A plan that cannot be laid on blocks at all (a plan of the whole city; units that
    overlap) gets a report of its validation and its changed units only, with
    ``summary["figures"]`` False: its errors refuse it anyway.

    Examples
    --------
    >>> import tempfile, gridgeo, gridgeo.store
    >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
    >>> sample = gridgeo.sample.load()
    >>> _ = s.load({"grids": sample.grids, "roads": sample.roads, "addresses": sample.addresses,
    ...             "stations": sample.stations}, author="demo", progress=False)
    >>> plan = s.create_plan("调整", parent="350582106201", levels="grid2", author="张三")
    >>> r = gridgeo.plan.report_of(s, plan.id)
    >>> r.summary["figures"], r.summary["households_moved"], r.revision == plan.edited_revision
    (True, 0, True)
    """
    plan = store.plan(plan_id)
    info = plan.info
    parent, levels = info["parent"], info["levels"]
    validation = plan.validate()
    revision = plan.edited_revision
    if parent:
        try:
            before, after = _store_states(store, plan, parent, levels)
        except PlanError:
            pass
        else:
            return report(before, after, validation=validation, plan_id=plan.id, revision=revision, band=band)
    problems = _validation_rows(validation)
    changes = plan.changes()
    changes = pd.DataFrame({"code": changes["code"], "change": changes["change"].replace({"changed": "reshaped"})})
    summary = {"figures": False, **{k: int((changes["change"] == k).sum()) for k in ("reshaped", "added", "removed")},
               "band": [float(band[0]), float(band[1])]}
    return _assembled(plan.id, revision, problems[problems["severity"] == "error"].reset_index(drop=True),
                      problems[problems["severity"] == "warning"].reset_index(drop=True), changes,
                      pd.DataFrame(columns=_MOVE_COLUMNS), summary)


def _store_states(store, plan, parent, levels):
    """The published grids and the plan as states on one set of blocks."""
    scheme = store.scheme
    published = store.read("grids", within=parent).drop(columns=["revision", "author"], errors="ignore")
    units = plan.read().drop(columns=["revision", "author"])
    grids = pd.concat([published[~published["level"].isin(levels)], units], ignore_index=True)
    grids = grids.set_geometry("geometry").set_crs(published.crs, allow_override=True)
    scope = published[published["code"] == parent]
    box = tuple(scope.total_bounds)
    roads = store.read("roads", bbox=box)
    addresses = store.read("addresses", bbox=box) if store.counts().get("addresses") else None
    stations = store.read("stations", bbox=box) if store.counts().get("stations") else None
    level = painted_level(levels, scheme)
    edges = pd.concat([published[published["level"] == level], units[units["level"] == level]], ignore_index=True)
    cut = _blocks(scope, roads, addresses, boundaries=edges.set_geometry("geometry"))
    before = start(published, parent, level=level, blocks=cut, stations=stations, editable=levels, scheme=scheme)
    after = start(grids, parent, level=level, blocks=cut, stations=stations, editable=levels, scheme=scheme)
    return before, after


def _assembled(plan_id, revision, errors, warnings, changes, moves, summary) -> PublishReport:
    summary = {**summary, "errors": len(errors), "warnings": len(warnings),
               **{kind: int((warnings["kind"] == kind).sum()) for kind in WARNING_KINDS}}
    content = {"plan_id": plan_id, "revision": revision, "summary": summary, "errors": _records(errors),
               "warnings": _records(warnings), "changes": _records(changes), "moves": _records(moves)}
    version = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    return PublishReport(plan_id=plan_id, revision=revision, errors=errors, warnings=warnings, changes=changes,
                         moves=moves, summary=summary, version=version[:16])


# --- steps ---------------------------------------------------------------------------------


def _own_warnings(before, after, band) -> pd.DataFrame:
    """The report's own warnings: band, pieces, stations, unassigned households."""
    low, high = (float(band[0]), float(band[1]))
    was = before.set_index("code")
    rows = []

    def new(code, column, test):
        return not (code in was.index and test(was.loc[code, column]))

    for g in after.itertuples(index=False):
        label = f"grid {g.code} ({g.name})"
        label_zh = f"网格 {g.code}（{g.name}）"
        hh = int(g.households) if hasattr(g, "households") else 0
        if g.band != "within":
            where, where_zh = ("under", "低于") if g.band == "under" else ("over", "高于")
            rows.append(dict(kind="off_band", code=g.code, name=g.name, level=g.level, value=hh,
                             new=new(g.code, "band", lambda b: b == g.band),
                             message_en=f"{label}: {hh} households, {where} the band of {low:g}–{high:g}",
                             message_zh=f"{label_zh}：{hh} 户，{where_zh} {low:g}–{high:g} 户的标准"))
        if g.pieces > 1:
            rows.append(dict(kind="non_contiguous", code=g.code, name=g.name, level=g.level, value=int(g.pieces),
                             new=new(g.code, "pieces", lambda p: p == g.pieces),
                             message_en=f"{label} would be published in {int(g.pieces)} pieces that do not touch",
                             message_zh=f"{label_zh} 将以互不相连的 {int(g.pieces)} 块发布"))
        if getattr(g, "has_station", True) is False and hh > 0:
            rows.append(dict(kind="without_station", code=g.code, name=g.name, level=g.level, value=hh,
                             new=new(g.code, "has_station", lambda s: not s),
                             message_en=f"{label}: {hh} households with no station",
                             message_zh=f"{label_zh}：{hh} 户，没有服务站点"))
    summary = after.attrs.get("summary", {})
    lost = int(summary.get("unassigned_households", 0) or 0)
    if lost:
        blocks = int(summary.get("unassigned_blocks", 0))
        rows.append(dict(kind="unassigned", code="", name="", level="", value=lost,
                         new=lost != int(before.attrs.get("summary", {}).get("unassigned_households", 0) or 0),
                         message_en=f"{blocks} block(s) with {lost} households are in no grid",
                         message_zh=f"{blocks} 个图块（{lost} 户）不属于任何网格"))
    out = pd.DataFrame(rows, columns=[c for c in _ROW_COLUMNS if c != "severity"])
    out.insert(1, "severity", "warning")
    order = {k: i for i, k in enumerate(WARNING_KINDS)}
    out = out.iloc[np.lexsort((out["code"].astype(str).to_numpy(), out["kind"].map(order).to_numpy()))]
    out["new"] = out["new"].astype("boolean")
    out["value"] = out["value"].astype("float64")
    return out.reset_index(drop=True)


def _validation_rows(checked) -> pd.DataFrame:
    """Validation's rows as report rows (no geometry; ``new`` unknown)."""
    if checked is None or not len(checked):
        return pd.DataFrame({c: pd.Series(dtype="float64" if c == "value" else "boolean" if c == "new" else "str")
                             for c in _ROW_COLUMNS})
    out = pd.DataFrame({c: checked[c].astype("str") if c in checked.columns else "" for c in
                        ("kind", "severity", "code", "level", "message_zh", "message_en")})
    out["name"] = ""
    out["value"] = np.nan
    out["new"] = pd.array([pd.NA] * len(out), dtype="boolean")
    return out[_ROW_COLUMNS].reset_index(drop=True)


def _moves(moves, before, after) -> pd.DataFrame:
    names = {**dict(zip(before["code"], before["name"])), **dict(zip(after["code"], after["name"]))}
    out = pd.DataFrame(moves.drop(columns=moves.geometry.name))
    out.insert(1, "from_name", out["from_code"].map(lambda c: names.get(c, "")).astype("str"))
    out.insert(3, "to_name", out["to_code"].map(lambda c: names.get(c, "")).astype("str"))
    return out[[c for c in _MOVE_COLUMNS if c in out.columns]].reset_index(drop=True)


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain dicts: NaN and NA as None, numbers as Python's."""
    out = []
    for row in frame.to_dict("records"):
        clean = {}
        for key, value in row.items():
            if value is pd.NA or (isinstance(value, float) and np.isnan(value)):
                value = None
            elif isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            clean[key] = value
        out.append(clean)
    return out
