"""The planner's workbench, server side: one class over plain data.

The page keeps its working state (which grid every block is in, and the grids'
names) and sends it with every request; :class:`Workbench` lays it on the plan's
blocks with :mod:`gridgeo.plan`, applies edits, saves, takes the review's steps
(each allowed or refused by :mod:`gridgeo.review`, approvals and publishes
after the pre-publish report of :func:`gridgeo.plan.report`) and exports, and
answers plain, JSON-ready dicts. Nothing here knows HTTP: the routes in
:mod:`api.routes.plans` parse, call one method and encode. A refusal of the
library's (a :class:`gridgeo.plan.PlanError`, a stale save, a publish that fails
validation) is raised as it is, for the service's one error map.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

import gridgeo.plan
import gridgeo.review
from api import derived
from api.encode import feature_collection, plain, records
from api.services import Preparing
from gridgeo.plan import PlanError

__all__ = ["Workbench", "BLOCK_PROPERTIES", "IMPACT_COLUMNS", "EXPORTS"]

BLOCK_PROPERTIES = ["block_id", "addresses", "households", "population", "units"]
"""What a block tells the page: sums, never an address."""

IMPACT_COLUMNS = ["code", "name", "parent", "blocks", "addresses", "households", "population", "units", "stations",
                  "band", "off_band", "pieces", "contiguous", "area_m2", "polsby_popper", "has_station",
                  "share_15min"]
"""The figures per grid after every edit (:func:`gridgeo.plan.impact`)."""

DIFF_COLUMNS = ["code", "change", "related", "name_before", "name_after", "blocks_before", "blocks_after",
                "households_before", "households_after", "population_before", "population_after",
                "band_before", "band_after"]
MOVE_COLUMNS = ["from_code", "to_code", "blocks", "addresses", "households", "population", "units"]

EXPORTS = {
    "gpkg": ("application/geopackage+sqlite3", ".gpkg"),
    "geojson": ("application/geo+json", ".geojson"),
    "csv": ("text/csv; charset=utf-8", ".csv"),
}
"""format -> (media type, file suffix) of the plan downloads."""


class Workbench:
    """The workbench's operations on the store of ``services``, for one request."""

    def __init__(self, services):
        self.services = services
        self.store = services.store
        self.scheme = services.store.scheme
        self.self_publish = bool(services.settings.self_publish)

    # --- who may -----------------------------------------------------------------------

    def allow(self, who, action: str, plan_id: int | None = None, *, parent: str | None = None) -> dict | None:
        """Refuse ``action`` unless :func:`gridgeo.review.check` allows it to ``who``; the plan's
        info with its review so far (None for ``create``)."""
        info = None
        if plan_id is not None:
            plan = self.store.plan(plan_id)
            info = {**plan.info, **gridgeo.review.steps(plan.history())}
        gridgeo.review.check(who, action, info, scheme=self.scheme, self_publish=self.self_publish, parent=parent)
        return info

    def me(self, who) -> dict:
        """The caller as the page needs to know them."""
        return {"name": who.name, "role": who.role, "scopes": list(who.scopes), "self_publish": self.self_publish}

    # --- opening -----------------------------------------------------------------------

    def levels_for(self, parent: str, level: str | None) -> list[str]:
        """The level painted and the levels below it present in the parent (recoded when their block moves)."""
        level = level or self.scheme.main_level
        if level not in self.scheme.names:
            raise PlanError("unknown_level", f"no level {level!r}: use one of {list(self.scheme.names)}",
                            f"没有层级 {level!r}：应为 {'、'.join(self.scheme.names)} 之一")
        if not self.scheme.level(level).full:  # the workbench's blocks are cut from the roads, not plots
            full = [lv.name for lv in self.scheme.levels if lv.full]
            raise PlanError("level_not_full", f"the workbench paints a level whose grids cover their parent "
                            f"({', '.join(full)}); {level} units are plots inside them, not painted from blocks",
                            f"工作台只能绘制覆盖上级单元的层级（{'、'.join(full)}）；{level} 是其中的地块，不由街块绘制")
        grids = self.published(parent)
        found = grids.loc[grids["code"] == parent, "level"]
        names = self.scheme.names
        if len(found) and names.index(found.iloc[0]) >= names.index(level):
            raise PlanError("level_not_below", f"a plan inside {parent} ({found.iloc[0]}) redraws a level below it, "
                            f"not {level}", f"{parent}（{found.iloc[0]}）内的方案只能调整其下级层级，不能调整 {level}",
                            codes=[parent])
        present = set(grids.loc[grids["code"].str.startswith(parent), "level"])
        return [lv for lv in names[names.index(level):] if lv == level or lv in present]

    def base(self, parent: str, levels: list[str]) -> gridgeo.plan.PlanState:
        """The published grids of ``parent`` as a plan state: its blocks, their sums and
        the grids they are in, built once per data version and shared by every plan
        of the unit. Edits may change only the plan's ``levels``."""
        services = self.services

        def build():
            inside = self.published(parent)
            inside = inside.drop(columns=[c for c in ("revision", "author") if c in inside.columns])
            box = inside.loc[inside["code"] == parent].total_bounds
            return gridgeo.plan.start(
                inside, parent, level=gridgeo.plan.painted_level(levels, self.scheme), editable=levels,
                name=f"the published grids of {parent}", scheme=self.scheme,
                roads=self.layer("roads", box), addresses=self.layer("addresses", box),
                stations=self.layer("stations", box), coverage=self.nearest(box))
        return services.current(f"plan:base:{parent}:{','.join(levels)}", build)

    def published(self, parent: str) -> gpd.GeoDataFrame:
        """The store's published grids at and inside ``parent`` (the workbench plans on what is
        published now, not on the version whose figures the map shows)."""
        return self.services.current(f"plan:grids:{parent}", lambda: self.store.read("grids", within=parent))

    def layer(self, kind: str, box) -> gpd.GeoDataFrame | None:
        """A layer's published rows in a box (None when the layer is empty, or the box is the
        bounds of nothing: a unit with no blocks yet)."""
        if not np.isfinite(box).all():
            return None
        frame = self.store.read(kind, bbox=tuple(box))
        frame = frame.drop(columns=[c for c in ("revision", "author") if c in frame.columns])
        return frame if len(frame) or self.store.counts().get(kind, 0) else None

    def nearest(self, box) -> gpd.GeoDataFrame | None:
        """Every address's walk to its nearest station in a box, from the derived data served
        (None while none is prepared: plans then show no coverage)."""
        if not np.isfinite(box).all():
            return None
        try:
            return derived.nearest(self.services, bbox=tuple(box))
        except Preparing:
            return None

    def info(self, plan_id: int) -> dict:
        info = self.store.plan(plan_id).info
        if not info["parent"]:
            raise PlanError("whole_city", f"plan {plan_id} redraws the whole city: the workbench opens plans of "
                            "one unit (a village)", f"方案 {plan_id} 涉及全域：工作台只能打开一个单元（村社）的方案")
        return info

    def opened(self, plan_id: int) -> gridgeo.plan.PlanState:
        """The store's plan laid on the blocks of its unit (``attrs["store"]`` says its revision)."""
        info = self.info(plan_id)
        base = self.base(info["parent"], info["levels"])
        box = base.blocks.total_bounds  # the parent's ground: its grids of the level may be none yet
        return gridgeo.plan.from_store(self.store, plan_id, level=base.level,
                                       blocks=base.blocks.drop(columns="grid"),
                                       stations=self.layer("stations", box), coverage=self.nearest(box))

    def working(self, plan_id: int, assignment: dict, names: dict | None = None) -> gridgeo.plan.PlanState:
        """The page's working state on the plan's blocks (refused when it does not fit them)."""
        info = self.info(plan_id)
        return gridgeo.plan.assigned(self.base(info["parent"], info["levels"]), assignment, names)

    # --- changing -----------------------------------------------------------------------

    def create(self, *, name: str, parent: str, level: str | None, start: str, author: str,
               description: str = "", who=None) -> dict:
        """A new plan of ``parent``'s grids, from the published ones or from an automatic division."""
        levels = self.levels_for(parent, level)
        plan = self.store.create_plan(name, parent=parent, levels=levels, author=author, description=description)
        try:
            state = self.opened(plan.id)
            if start == "suggested":
                draft = gridgeo.plan.suggest_division(state)
                gridgeo.plan.save(draft, self.store, author=author, message=draft.log[-1]["message"])
                state = self.opened(plan.id)
        except BaseException:
            plan.abandon(author=author, message="could not be opened in the workbench")
            raise
        return self.body(plan.id, state, blocks=True, who=who)

    def apply(self, state, op: str, *, blocks=(), to=None, codes=(), line=None, polygon=None, name=None):
        """One edit of gridgeo.plan on ``state``; its refusal is the library's PlanError."""
        def needed(value, what):
            if not value:
                raise PlanError("missing_grid", f"{op} needs {what!r}: the code of the grid it acts on",
                                f"{op} 需要指明 {what}：所作用网格的编码")
            return value

        verbs = {
            "reassign": lambda: gridgeo.plan.reassign(state, list(blocks), needed(to, "to")),
            "unassign": lambda: gridgeo.plan.unassign(state, list(blocks)),
            "add": lambda: gridgeo.plan.add(state, list(blocks), name=name or None),
            "merge": lambda: gridgeo.plan.merge(state, list(codes), into=to or None),
            "split": lambda: gridgeo.plan.split(state, needed(to, "to"),
                                                _shape(line, ("LineString", "MultiLineString"), "line")),
            "redraw": lambda: gridgeo.plan.redraw(state, needed(to, "to"),
                                                  _shape(polygon, ("Polygon", "MultiPolygon"), "polygon")),
            "renumber": lambda: gridgeo.plan.renumber(state, to or None),
            "rename": lambda: gridgeo.plan.rename(state, needed(to, "to"), name or ""),
        }
        if op not in verbs:
            raise PlanError("unknown_edit", f"no edit {op!r}: use one of {list(verbs)}",
                            f"没有编辑操作 {op!r}：应为 {'、'.join(verbs)} 之一")
        return verbs[op]()

    def edit(self, plan_id: int, assignment: dict, names: dict, op: str, **params) -> dict:
        """The page's state after one edit, and the edit's log entry (nothing is stored)."""
        state = self.working(plan_id, assignment, names)
        after = self.apply(state, op, **params)
        return {**self.state_body(after), "log": after.log[-1] if after is not state else None}

    def save(self, plan_id: int, *, assignment: dict, names: dict, base: dict, base_revision: int, author: str,
             message: str = "", base_names: dict | None = None, who=None) -> dict:
        """Save the page's working state as edits of the plan at ``base_revision``; a stale save is refused.

        ``base`` and ``base_names`` are the assignment and names at that revision (without
        ``base_names``, the names the plan holds now), so a grid renamed since is written;
        ``saved`` in the answer says whether anything was (a save of nothing writes nothing)."""
        now = self.working(plan_id, assignment, names)
        if base_names is None:
            units = self.store.plan(plan_id).read()
            base_names = dict(zip(units["code"], units["name"]))
        then = self.working(plan_id, base, base_names)
        state = gridgeo.plan.based_on(now, then, plan_id=plan_id, revision=base_revision)
        done = gridgeo.plan.save(state, self.store, author=author, message=message or "saved from the workbench")
        return {**self.body(plan_id, self.opened(plan_id), blocks=False, who=who), "saved": done.attrs["store"]["saved"]}

    # --- the review ------------------------------------------------------------------------

    def report(self, plan_id: int) -> gridgeo.plan.PublishReport:
        """The saved plan's pre-publish report, validated as the store's publish validates: on the
        unit's blocks kept for the workbench, or (a plan saved off those blocks, or of the whole
        city) by :func:`gridgeo.plan.report_of`."""
        plan = self.store.plan(plan_id)
        try:
            info = self.info(plan_id)
            base = self.base(info["parent"], info["levels"])
            opened = self.opened(plan_id)
        except PlanError:
            return gridgeo.plan.report_of(self.store, plan_id)
        return gridgeo.plan.report(base, opened, validation=plan.validate(), revision=plan.edited_revision)

    def step(self, plan_id: int, action: str, who, *, message: str = "", acknowledge: str | None = None) -> dict:
        """Take one step of the review (submit, withdraw, return, approve, publish) as ``who``.

        Approving and publishing first make the report: errors refuse them, warnings need
        ``acknowledge`` to be its version (:func:`gridgeo.review.require_acknowledged`);
        the version is recorded in the plan's log either way."""
        self.allow(who, action, plan_id)
        plan = self.store.plan(plan_id)
        body = {}
        if action in ("approve", "publish"):
            report = self.report(plan_id)
            gridgeo.review.require_acknowledged(report, acknowledge, doing=action)
            do = plan.approve if action == "approve" else plan.publish
            revision = do(author=who.name, message=message, report=report.version, revision=report.revision)
            body["report"] = {"version": report.version, "summary": plain(report.summary)}
            if action == "publish":
                self.services.forget()  # plan bases follow the new grids at once, the map when they are prepared
                body["data_version"] = self.services.data_version
        elif action == "return":
            revision = plan.send_back(author=who.name, comment=message)
        elif action in ("submit", "withdraw"):
            revision = getattr(plan, action)(author=who.name, message=message)
        else:
            raise ValueError(f"no review step {action!r}")
        info = plan.info
        return {"plan_id": plan_id, "status": info["status"], "revision": revision,
                "plan": self.summary(info, who), **body}

    # --- answers ---------------------------------------------------------------------------

    def plans(self, status: str | None = None, who=None) -> list[dict]:
        table = self.store.plans(status=status)
        return [self.summary(row, who) for row in table.to_dict("records")]

    def state_body(self, state) -> dict:
        """What the page redraws after an edit: the assignment, the grids (with where
        their names go, [lat, lon]) and their figures."""
        from gridgeo.labels import label_points

        units = records(pd.DataFrame(state.units[["code", "name", "parent"]]))
        points = label_points(state.units, scheme=state.scheme).geometry
        for unit, y, x in zip(units, points.y, points.x):
            unit["label"] = [round(float(y), 6), round(float(x), 6)]
        return {
            "assignment": state.assignment.to_dict(),
            "units": units,
            "grids": feature_collection(state.units, ["code", "name"]),
            "impact": self.impact(state),
        }

    @staticmethod
    def impact(state) -> dict:
        table = gridgeo.plan.impact(state)
        return {"grids": records(pd.DataFrame(table[[c for c in IMPACT_COLUMNS if c in table.columns]])),
                "summary": plain(table.attrs["summary"])}

    def body(self, plan_id: int, state, *, blocks: bool, who=None) -> dict:
        info = self.store.plan(plan_id).info
        base = self.base(info["parent"], info["levels"])
        body = {
            "plan": self.summary(info, who),
            "level": state.level,
            "band": list(gridgeo.plan.DEFAULT_BAND),
            "revision": state.attrs["store"]["revision"],
            **self.state_body(state),
            "published": feature_collection(base.units, ["code", "name"]),
            "history": records(self.store.plan(plan_id).history().assign(
                at=lambda h: h["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))),
        }
        if blocks:
            body["blocks"] = feature_collection(base.blocks, BLOCK_PROPERTIES)
            body["context"] = self.context(info["parent"], base)
        return body

    def context(self, parent: str, base) -> dict:
        """What the page draws around and across the plan: the units around its parent
        (:func:`gridgeo.plan.neighbouring_units`), the fences it may not paint across and
        every block's (:func:`gridgeo.plan.fences`), with the fences' level and its label."""
        def around():
            box = self.published(parent).loc[lambda f: f["code"] == parent].total_bounds
            if not np.isfinite(box).all():
                return feature_collection(gpd.GeoDataFrame({"code": [], "name": []}, geometry=[], crs=4490),
                                          ["code", "name"])
            near = self.store.read("grids", bbox=tuple(box))
            near = near.drop(columns=[c for c in ("revision", "author") if c in near.columns])
            return feature_collection(gridgeo.plan.neighbouring_units(near, parent, scheme=self.scheme),
                                      ["code", "name"])

        of, units = gridgeo.plan.fences(base)
        level = gridgeo.plan.fence_level(base)
        info = self.scheme.level(level) if level else None
        return {
            "neighbours": self.services.current(f"plan:around:{parent}", around),
            "fence_level": level,
            "fence_label": info.label if info else None,
            "fence_label_en": info.label_en if info else None,
            "fences": feature_collection(units, ["code", "name"]),
            "fence_of": of.to_dict() if level else {},
            "pairs": gridgeo.plan.block_pairs(base)[["a", "b"]].to_numpy().tolist(),
        }

    def summary(self, info: dict, who=None) -> dict:
        """One plan as the list shows it: with its review so far (who submitted, returned
        with which comment, approved) and, for ``who``, the steps they may take (``can``)."""
        names = self.services.current("plan:names", lambda: self.store.read(
            "grids", columns=["code", "name"]).set_index("code")["name"])
        levels = info["levels"].split(",") if isinstance(info["levels"], str) else list(info["levels"])
        history = self.store.plan(info["plan_id"]).history()
        review = gridgeo.review.steps(history)
        can = [] if who is None else gridgeo.review.allowed(
            who, {**info, **review}, scheme=self.scheme, self_publish=self.self_publish)
        authors = [a for a in history.loc[history["action"].isin(
            ["create", "save", "rebase"]), "author"].unique().tolist()]
        return {
            "id": int(info["plan_id"]), "name": info["name"], "parent": info["parent"],
            "parent_name": names.get(info["parent"], ""), "levels": levels, "status": info["status"],
            "author": info["author"], "authors": authors, "description": info["description"],
            "revision": int(info["revision"]), "base_revision": int(info["base_revision"]),
            "created_at": _when(info["created_at"]), "updated_at": _when(info["updated_at"]),
            "review": review, "can": can,
        }

    def diff(self, plan_id: int, state) -> dict:
        info = self.info(plan_id)
        published = self.base(info["parent"], info["levels"])
        d = gridgeo.plan.diff(published, state)
        return {
            "summary": plain(d.summary),
            "units": records(pd.DataFrame(d.units[[c for c in DIFF_COLUMNS if c in d.units.columns]])),
            "moves": feature_collection(d.moves, [c for c in MOVE_COLUMNS if c in d.moves.columns]),
        }

    @staticmethod
    def download(state, plan_id: int, format: str) -> tuple[bytes, str, str]:
        """(the file's bytes, its media type, its name) of a plan in ``format``."""
        media, suffix = EXPORTS[format]
        name = f"plan-{plan_id}-{state.parent}{suffix}"
        if format == "csv":
            content = gridgeo.plan.to_csv(state).to_csv(index=False).encode("utf-8-sig")
        else:
            with tempfile.TemporaryDirectory(prefix="gridgeo-export-") as folder:
                content = Path(gridgeo.plan.export(state, Path(folder) / name)).read_bytes()
        return content, media, name


def problems(report) -> list[dict]:
    """A validation report's errors, as the page lists them."""
    errors = report[report["severity"] == "error"] if len(report) else report
    keep = [c for c in ("code", "level", "kind", "severity", "message_zh", "message_en") if c in errors.columns]
    return records(pd.DataFrame(errors[keep]).reset_index(drop=True))


def _when(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else ""


def _shape(geojson: dict | None, kinds: tuple, name: str):
    if not geojson or geojson.get("type") not in kinds:
        raise PlanError("bad_geometry", f"{name!r} should be a GeoJSON {' or '.join(kinds)} in longitude/latitude, "
                        f"got {None if not geojson else geojson.get('type')!r}",
                        f"{name} 应为经纬度的 GeoJSON {' 或 '.join(kinds)}")
    try:
        geometry = shapely.from_geojson(json.dumps(geojson))
    except shapely.errors.GEOSException as exc:
        raise PlanError("bad_geometry", f"{name!r} is not valid GeoJSON: {exc}", f"{name} 不是有效的 GeoJSON：{exc}") \
            from None
    return geometry
