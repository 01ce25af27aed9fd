"""Plans in and out: the block-to-grid CSV, GeoPackage/GeoJSON files, and a store's plans.

The block-to-grid table is how redistricting tools exchange plans (Districtr's
assignment CSV, DistrictBuilder's block equivalency file): one row per block,
``block_id,grid``, plus ``grid_name``. gridgeo writes it in UTF-8 with a BOM so
that Excel shows the Chinese names. Codes are text: Excel shows a 16-digit
code as a number and keeps only 15 digits, so import such a file as text.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import shapely

from gridgeo import io as gio
from gridgeo.plan._kernel import check_state, new_rows, validation
from gridgeo.plan.errors import PlanError
from gridgeo.plan.state import PlanState, start
from gridgeo.schema import normalise_codes

__all__ = ["to_csv", "read_csv", "assigned", "lay", "painted_level", "based_on", "export", "from_store", "save"]

CSV_COLUMNS = ("block_id", "grid", "grid_name")
"""The columns of the block-to-grid CSV."""


def to_csv(state: PlanState, path=None, *, overwrite: bool = False):
    """The block-to-grid table of a plan, written to a CSV file or returned.

    Parameters
    ----------
    state : PlanState
    path : str or os.PathLike, optional
        Where to write it (atomically; an existing file only with
        `overwrite`). Without it the table is returned.
    overwrite : bool, default False

    Returns
    -------
    pathlib.Path or DataFrame
        The path written, or the table (``block_id``, ``grid``, ``grid_name``;
        ``""`` for an unassigned block).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> table = gridgeo.plan.to_csv(state)
    >>> list(table.columns), len(table) == len(state.blocks)
    (['block_id', 'grid', 'grid_name'], True)
    """
    check_state(state)
    names = dict(zip(state.units["code"], state.units["name"]))
    table = pd.DataFrame({"block_id": state._blocks.ids, "grid": state._codes,
                          "grid_name": [names.get(c, "") for c in state._codes]}).astype("str")
    if path is None:
        return table
    target = Path(path)
    if target.exists() and not overwrite:
        raise FileExistsError(f"{target} exists: pass overwrite=True (--overwrite on the command line) to replace it")
    handle, staged = tempfile.mkstemp(prefix=".gridgeo-", suffix=".csv", dir=target.parent)
    os.close(handle)
    try:
        table.to_csv(staged, index=False, encoding="utf-8-sig")
        os.replace(staged, target)
    finally:
        if os.path.exists(staged):
            os.remove(staged)
    return target


def read_csv(state: PlanState, table) -> PlanState:
    """Paint a plan from a block-to-grid CSV (or DataFrame) onto a state's blocks.

    The table defines the whole level: grids it does not name are removed,
    new codes are created (when they are codes of the level under a parent
    of this plan), blocks it does not name are left unassigned.

    Parameters
    ----------
    state : PlanState
        A state on the same blocks (its own grids are replaced).
    table : path or DataFrame
        ``block_id`` and ``grid`` (or ``code``) columns; ``grid_name``
        (or ``name``) names new grids.

    Returns
    -------
    PlanState
        ``attrs["import"]`` reports ``unknown_blocks`` (in the table, not in
        the plan: ignored), ``missing_blocks`` (in the plan, not in the
        table: left unassigned), ``bad_codes`` (not codes of the level under
        a parent of this plan: their blocks left unassigned), ``added`` and
        ``removed`` grids, and ``errors``: the validation errors of the
        result (unassigned blocks leave ``uncovered`` areas until they are
        painted with :func:`gridgeo.plan.reassign`).

    Raises
    ------
    PlanError
        ``conflicting_rows`` when a block is given two different grids.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> table = gridgeo.plan.to_csv(state).iloc[1:]          # one block left out
    >>> back = gridgeo.plan.read_csv(state, table)
    >>> back.attrs["import"]["missing_blocks"] == [state.blocks["block_id"].iloc[0]]
    True
    """
    check_state(state)
    new, report = _imported(state, _table(table))
    checked = validation(new)
    report["errors"] = checked[checked["severity"] == "error"].reset_index(drop=True)
    return dataclasses.replace(new, attrs={**new.attrs, "import": report})


def assigned(state: PlanState, assignment, names=None) -> PlanState:
    """The state with every block in the grid ``assignment`` says: a client's working state.

    The workbench keeps which grid each block is in and sends it with each
    edit; this lays it on the state's blocks. Unlike :func:`read_csv` (an
    import, which may leave blocks out), the assignment must name every
    block of the plan, and only them, with codes of the plan's level.

    Parameters
    ----------
    state : PlanState
        The plan's state on its blocks (its own grids are replaced).
    assignment : mapping
        ``{block id: grid code}`` for every block.
    names : mapping, optional
        ``{grid code: name}``: every grid it names (with a name that is not
        empty) is called so, new or not; the others keep their names.

    Returns
    -------
    PlanState

    Raises
    ------
    PlanError
        ``assignment_mismatch`` naming the unknown and missing blocks and the
        codes that are not of the plan's level under one of its parents.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> same = gridgeo.plan.assigned(state, state.assignment.to_dict())
    >>> same.assignment.equals(state.assignment)
    True
    >>> code = state.units["code"].iloc[0]
    >>> named = gridgeo.plan.assigned(state, state.assignment.to_dict(), {code: "东区网格"})
    >>> named.units.set_index("code").at[code, "name"]
    '东区网格'
    """
    check_state(state)
    names = dict(names or {})
    table = pd.DataFrame({"block_id": [str(b) for b in assignment],
                          "grid": [str(g) for g in dict(assignment).values()]})
    table["grid_name"] = table["grid"].map(names).fillna("")
    new, report = _imported(state, _table(table))
    wrong = {k: report[k][:5] for k in ("unknown_blocks", "missing_blocks", "bad_codes") if len(report[k])}
    if wrong:
        raise PlanError("assignment_mismatch",
                        f"the assignment does not fit the blocks of this plan ({wrong}): every block needs one grid "
                        "of the plan's level. Reopen the plan: the published grids may have changed since",
                        "图块分配与方案的图块不符：每个图块都须属于本层级的一个网格。请重新打开方案（现行网格可能已变动）",
                        blocks=[*wrong.get("unknown_blocks", []), *wrong.get("missing_blocks", [])],
                        codes=wrong.get("bad_codes", []))
    units = new.units
    wanted = units["code"].map(lambda c: str(names.get(c) or "").strip())
    renamed = (wanted != "") & (wanted != units["name"])
    if renamed.any():
        units = units.copy()
        units.loc[renamed, "name"] = wanted[renamed]
    return dataclasses.replace(new, units=units, attrs={**new.attrs, "import": report})


def painted_level(levels, scheme) -> str:
    """The level a plan of ``levels`` paints: its deepest full level (else its deepest).

    Examples
    --------
    >>> from gridgeo.schema import DEFAULT_SCHEME
    >>> painted_level(["grid2", "grid3"], DEFAULT_SCHEME)
    'grid2'
    """
    full = [lv.name for lv in scheme.levels if lv.full and lv.name in levels]
    return full[-1] if full else list(levels)[-1]


def based_on(state: PlanState, base: PlanState, *, plan_id: int, revision: int) -> PlanState:
    """``state`` ready for :func:`save` as edits of ``base``, the store's plan at ``revision``.

    Every unit :func:`save` writes or removes then states that revision, so a
    save over someone else's later save is refused (the workbench sends the
    assignment it opened with, and its edits since).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> ready = gridgeo.plan.based_on(state, state, plan_id=1, revision=7)
    >>> ready.attrs["store"]["revision"], set(ready.attrs["store"]["units"].values())
    (7, {7})
    """
    grids = base.to_grids()
    grids = grids[grids["level"].isin(base.editable)].reset_index(drop=True)
    record = {"plan_id": int(plan_id), "revision": int(revision),
              "units": {code: int(revision) for code in grids["code"]}, "base": grids}
    return dataclasses.replace(state, attrs={**state.attrs, "store": record})


def _imported(state, rows):
    """(the state painted from a block-to-grid table, the import report without validation)."""
    known = rows["block_id"].isin(state._blocks.position)
    report = {"unknown_blocks": rows.loc[~known, "block_id"].tolist()}
    rows = rows[known]
    conflicts = rows.groupby("block_id")["grid"].nunique()
    if (conflicts > 1).any():
        bad = conflicts[conflicts > 1].index.tolist()
        raise PlanError("conflicting_rows", f"the table gives block(s) {', '.join(bad[:10])} more than one grid: "
                        "keep one row per block", f"表中图块 {'、'.join(bad[:10])} 对应多个网格：每个图块只能有一行",
                        blocks=bad)
    rows = rows.drop_duplicates("block_id")
    usable = np.array([_usable_code(state, c) for c in rows["grid"]], dtype=bool)
    report["bad_codes"] = sorted(set(rows.loc[~usable & (rows["grid"] != ""), "grid"]))
    codes = np.full(len(state._codes), "", dtype=object)
    ok = rows[usable]
    codes[state._blocks.positions(ok["block_id"].tolist(), doing="import")] = ok["grid"].to_numpy(dtype=object)
    named = set(rows["block_id"])
    report["missing_blocks"] = [b for b, c in zip(state._blocks.ids, codes) if c == "" and b not in named]
    units = _imported_units(state, codes, ok)
    report["added"] = sorted(set(units["code"]) - set(state.units["code"]))
    report["removed"] = sorted(set(state.units["code"]) - set(units["code"]))
    new = state.relabelled(codes, units, edit={"edit": "import", "message": f"import of {len(ok)} block rows",
                                                   "message_zh": f"导入 {len(ok)} 行图块"},
                         refuse=False)
    return new, report


def lay(state: PlanState, units, *, min_share: float = 0.5, rest: str = "keep") -> PlanState:
    """Paint a state's level from units drawn elsewhere (an office's file), block by block.

    A plan's grids are unions of its blocks; units drawn in another program
    rarely are. The rule: each block goes to the unit covering the largest
    part of its area (units covering it within 1 % of each other, as where two
    drawn units overlap: the grid the block is in now, if it is one of them),
    when that part is at least ``min_share`` of the block;
    a block no unit covers that much keeps the grid it is in (``rest="keep"``)
    or is left unassigned (``rest="unassign"``, an uncovered area to paint).
    Units keep their codes and names; the table this makes goes through
    :func:`read_csv`, so codes that are not of the plan's level under one of
    its parents are reported there.

    Parameters
    ----------
    state : PlanState
    units : GeoDataFrame
        ``code`` (and ``name``) and polygons of the state's level, any CRS
        :func:`gridgeo.crs.to_storage` accepts; other levels are ignored.
    min_share : float, default 0.5
    rest : {"keep", "unassign"}, default "keep"

    Returns
    -------
    PlanState
        ``attrs["import"]`` as :func:`read_csv` gives it, and
        ``attrs["laid"]``: per unit its ``code``, ``drawn_m2`` (its area as
        drawn), ``laid_m2`` (its blocks' area), ``kept_share`` (the part of
        the drawn area its blocks cover) and ``blocks``; ``attrs["kept_blocks"]``
        the ids of the blocks no unit covered that kept their grid.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> metric = gridgeo.crs.metric_crs(state.units)
    >>> wide = state.units.to_crs(metric).buffer(5).to_crs(4490)       # drawn 5 m wide all round
    >>> laid = gridgeo.plan.lay(state, state.units.assign(geometry=wide))
    >>> laid.assignment.equals(state.assignment), bool((laid.attrs["laid"]["kept_share"] > 0.95).all())
    (True, True)
    """
    from gridgeo import crs as gcrs

    check_state(state)
    frame = gcrs.to_storage(units, name="units")
    if "level" in frame.columns:
        frame = frame[frame["level"] == state.level]
    metric = gcrs.metric_crs(state.blocks)
    drawn = np.asarray(shapely.make_valid(np.asarray(frame.to_crs(metric).geometry.array)))
    blocks = np.asarray(state.blocks.to_crs(metric).geometry.array)
    block_area = shapely.area(blocks)
    b, u = shapely.STRtree(drawn).query(blocks, predicate="intersects")
    shared = shapely.area(shapely.intersection(blocks[b], drawn[u]))
    codes = frame["code"].astype(str).to_numpy()
    ids = state.blocks["block_id"].to_numpy()
    pairs = pd.DataFrame({"b": b, "u": u, "shared": shared})
    top = pairs.groupby("b")["shared"].transform("max")
    pairs["near"] = pairs["shared"] >= top - 0.01 * block_area[pairs["b"].to_numpy()]
    now = state.assignment.reindex(ids[pairs["b"].to_numpy()]).fillna("").to_numpy(dtype=object)
    pairs["current"] = now == codes[pairs["u"].to_numpy()]
    best = pairs.sort_values(["near", "current", "shared"], ascending=False).drop_duplicates("b")
    best = best[best["shared"] >= min_share * block_area[best["b"].to_numpy()]]
    names = frame["name"].astype(str).to_numpy() if "name" in frame.columns else codes
    if rest not in ("keep", "unassign"):
        raise ValueError(f"rest must be 'keep' or 'unassign', got {rest!r}")
    table = pd.DataFrame({"block_id": ids[best["b"].to_numpy()], "grid": codes[best["u"].to_numpy()],
                          "grid_name": names[best["u"].to_numpy()]})
    left = np.setdiff1d(np.arange(len(ids)), best["b"].to_numpy())
    current = state.assignment.reindex(ids[left]).fillna("").to_numpy(dtype=object)
    kept_blocks = [b for b, c in zip(ids[left], current) if c] if rest == "keep" else []
    if kept_blocks:
        table = pd.concat([table, pd.DataFrame({"block_id": kept_blocks, "grid": [c for c in current if c],
                                                "grid_name": ""})], ignore_index=True)
    laid = read_csv(state, table)
    renamed = dict(zip(codes, names))
    units_now = laid.units.assign(name=[renamed.get(c, n) for c, n in zip(laid.units["code"], laid.units["name"])])
    kept = pd.DataFrame({"b": b, "u": u, "shared": shared}).merge(best[["b", "u"]], on=["b", "u"])
    per_unit = pd.DataFrame({"code": codes, "drawn_m2": shapely.area(drawn)})
    per_unit["laid_m2"] = pd.Series(block_area[best["b"].to_numpy()]).groupby(best["u"].to_numpy()).sum() \
        .reindex(range(len(codes)), fill_value=0.0).to_numpy()
    per_unit["kept_share"] = (kept.groupby("u")["shared"].sum().reindex(range(len(codes)), fill_value=0.0)
                              .to_numpy() / np.maximum(per_unit["drawn_m2"].to_numpy(), 1e-9))
    per_unit["blocks"] = best.groupby("u").size().reindex(range(len(codes)), fill_value=0).to_numpy()
    return dataclasses.replace(laid, units=units_now,
                               attrs={**laid.attrs, "laid": per_unit, "kept_blocks": kept_blocks})


def _table(table) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        frame = table.astype(object)
    else:
        frame = pd.read_csv(table, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    grid = next((c for c in ("grid", "code", "grid_code") if c in frame.columns), None)
    if "block_id" not in frame.columns or grid is None:
        raise ValueError(f"the block-to-grid table needs block_id and grid columns, it has {list(frame.columns)}")
    name = next((c for c in ("grid_name", "name") if c in frame.columns), None)
    out = pd.DataFrame({"code": frame[grid], "parent": "", "level": "",
                        "block_id": frame["block_id"].astype(object).where(frame["block_id"].notna(), "")})
    out = normalise_codes(out)
    out["block_id"] = out["block_id"].astype(str).str.strip()
    out["grid_name"] = frame[name].fillna("").astype(str).to_numpy() if name else ""
    return out.rename(columns={"code": "grid"})[["block_id", "grid", "grid_name"]]


def _usable_code(state, code) -> bool:
    """A code of the level whose parent is the plan's parent or one of its units."""
    scheme = state.scheme
    if not code or not code.isdigit() or scheme.level_of(code) != state.level:
        return False
    parent = scheme.parent_code(code)
    return parent in set(state._context["code"])


def _imported_units(state, codes, rows):
    present = pd.unique(codes[codes != ""])
    units = state.units[state.units["code"].isin(present)]
    named = dict(zip(rows["grid"], rows["grid_name"]))
    new = new_rows(state, sorted(set(present) - set(units["code"])), named)
    return pd.concat([units, new], ignore_index=True)


def export(state: PlanState, path, *, overwrite: bool = False):
    """Write a plan to a GeoPackage (layers ``grids`` and ``blocks``) or a
    GeoJSON file (the grids).

    Parameters
    ----------
    state : PlanState
    path : str or os.PathLike
        ``.gpkg``, ``.geojson`` or any extension :func:`gridgeo.io.write` knows.
    overwrite : bool, default False
        Replace existing layers (a GeoPackage keeps its other layers).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile, gridgeo
    >>> s = gridgeo.sample.load()
    >>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads)
    >>> path = gridgeo.plan.export(state, tempfile.mkdtemp() + "/plan.gpkg")
    >>> [name for name, _ in gridgeo.io.list_layers(path)]
    ['grids', 'blocks']
    """
    check_state(state)
    target = Path(path)
    grids = state.to_grids()
    if target.suffix.lower() == ".gpkg":
        gio.write(grids, target, layer="grids", overwrite=overwrite)
        gio.write(state.blocks, target, layer="blocks", overwrite=overwrite)
        return target
    return gio.write(grids, target, overwrite=overwrite)


# --- stores -----------------------------------------------------------------------


def from_store(store, plan_id: int, *, level: str | None = None, roads=None, blocks=None, addresses=None,
               stations=None, coverage=None, network=None) -> PlanState:
    """Open a store's plan as a state to edit.

    The plan's units (:meth:`gridgeo.store.Plan.read`) replace the
    published units of its levels inside its parent; edits may change only
    the plan's levels.

    Parameters
    ----------
    store : gridgeo.store.Store
    plan_id : int
    level : str, optional
        The level painted; default the deepest full level the plan redraws.
    roads, blocks, addresses, stations, coverage, network
        As for :func:`gridgeo.plan.start` (roads, addresses and stations
        default to the store's, inside the parent's bounds).

    Returns
    -------
    PlanState
        ``attrs["store"]`` records the plan id and the revisions the state is
        based on, for :func:`save`.

    Examples
    --------
    >>> import tempfile, gridgeo, gridgeo.store
    >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
    >>> sample = gridgeo.sample.load()
    >>> _ = s.load({"grids": sample.grids, "roads": sample.roads, "addresses": sample.addresses}, author="demo")
    >>> plan = s.create_plan("调整", parent="350582106201", levels="grid2", author="张三")
    >>> state = gridgeo.plan.from_store(s, plan.id)
    >>> state.editable, len(state.units)
    (('grid2',), 4)
    """
    plan = store.plan(plan_id)
    info = plan.info
    parent, levels = info["parent"], info["levels"]
    if not parent:
        raise ValueError(f"plan {plan_id} redraws the whole city: open its villages one at a time with "
                         "gridgeo.plan.start on plan.read()")
    published = store.read("grids", within=parent)
    units = plan.read()
    grids = pd.concat([published[~published["level"].isin(levels)].drop(columns="revision"),
                       units.drop(columns=["revision", "author"])], ignore_index=True)
    grids = grids.set_geometry("geometry").set_crs(published.crs, allow_override=True)
    bounds = published.loc[published["code"] == parent].total_bounds
    if roads is None and blocks is None:
        roads = store.read("roads", bbox=tuple(bounds))
    if addresses is None and blocks is None and "addresses" in store.collections():
        addresses = store.read("addresses", bbox=tuple(bounds))
    if stations is None and "stations" in store.collections():
        stations = store.read("stations", bbox=tuple(bounds))
    scheme = store.scheme
    state = start(grids, parent, level=level or painted_level(levels, scheme), roads=roads, blocks=blocks,
                  addresses=addresses, stations=stations, coverage=coverage, network=network, editable=levels,
                  scheme=scheme)
    record = {"plan_id": int(plan_id), "revision": int(info["revision"]),
              "units": dict(zip(units["code"], units["revision"].astype(int))),
              "base": units.drop(columns=["revision", "author"])}
    return dataclasses.replace(state, attrs={**state.attrs, "store": record})


def save(state: PlanState, store, *, author: str, message: str | None = None) -> PlanState:
    """Save the units a state changed into the store's plan it was opened from.

    Only the units the state changed since it was opened (or last saved)
    are written (geometry, name or parent), and the units it no longer has
    are removed, each stating the revision it was based on: if another
    planner changed one of them since, nothing is saved and the store's
    :class:`~gridgeo.store.StaleEditError` names the unit and who changed it.
    Units the state did not change are left as they are in the plan, so two
    planners editing different grids of one plan both keep their work.

    Parameters
    ----------
    state : PlanState
        Opened with :func:`from_store`.
    store : gridgeo.store.Store
    author : str
    message : str, optional
        Default: the state's edit log.

    Raises
    ------
    PlanError
        ``blocks_unassigned`` when blocks wait in the holding pen
        (:func:`gridgeo.plan.unassign`): a plan is saved with every block in
        a grid, and nothing is written.

    Returns
    -------
    PlanState
        The same plan, now based on the new revision (save again after more
        edits). ``attrs["store"]["saved"]`` says whether anything was written:
        a state that changes nothing since it was opened or last saved writes
        nothing, not even a revision, and stays based on the revision it was.

    Examples
    --------
    >>> import tempfile, gridgeo, gridgeo.store
    >>> s = gridgeo.store.open(tempfile.mkdtemp() + "/demo.gpkg", create=True)
    >>> sample = gridgeo.sample.load()
    >>> _ = s.load({"grids": sample.grids, "roads": sample.roads, "addresses": sample.addresses}, author="demo")
    >>> plan = s.create_plan("调整", parent="350582106201", levels="grid2", author="张三")
    >>> state = gridgeo.plan.from_store(s, plan.id)
    >>> pair = gridgeo.plan.neighbours(state).iloc[0]
    >>> state = gridgeo.plan.save(gridgeo.plan.merge(state, [pair["a"], pair["b"]]), s, author="张三")
    >>> len(s.plan(plan.id).read()), state.attrs["store"]["saved"]
    (3, True)
    >>> again = gridgeo.plan.save(state, s, author="张三")          # nothing changed since
    >>> again.attrs["store"]["saved"], again.attrs["store"]["revision"] == s.plan(plan.id).revision
    (False, True)
    """
    check_state(state)
    record = state.attrs.get("store")
    if not record:
        raise ValueError("this state was not opened from a store's plan: open it with gridgeo.plan.from_store")
    _refuse_pen(state)
    plan = store.plan(record["plan_id"])
    base = record["base"]
    mine = state.to_grids()
    mine = mine[mine["level"].isin(plan.levels)].reset_index(drop=True)
    changed = _changed_units(mine, base)
    removed = sorted(set(base["code"]) - set(mine["code"]))
    units = mine[changed].copy()
    units["revision"] = pd.array([record["units"].get(c) for c in units["code"]], dtype="Int64")
    if not len(units) and not removed:
        return dataclasses.replace(state, attrs={**state.attrs, "store": {**record, "saved": False}})
    text = message or "; ".join(e["message"] for e in state.log) or "gridgeo.plan.save"
    before = plan.revision
    revision = plan.save(units if len(units) else None, author=author, base_revision=record["revision"],
                         remove={c: record["units"].get(c, record["revision"]) for c in removed}, message=text)
    if revision == before:  # the plan already held exactly these units: nothing was written
        return dataclasses.replace(state, attrs={**state.attrs, "store": {**record, "saved": False}})
    saved = {c: v for c, v in record["units"].items() if c not in removed}
    saved.update({c: revision for c in units["code"]})
    record = {**record, "revision": revision, "units": saved, "base": mine, "saved": True}
    return dataclasses.replace(state, log=(), attrs={**state.attrs, "store": record})


def _changed_units(mine, base) -> np.ndarray:
    """Which of the state's units differ from those it was based on (or are new)."""
    before = base.set_index("code").reindex(mine["code"])
    known = before["name"].notna().to_numpy()
    same = known.copy()
    same[known] = ((before["name"].to_numpy()[known] == mine["name"].to_numpy()[known])
                   & (before["parent"].to_numpy()[known] == mine["parent"].to_numpy()[known])
                   & shapely.equals(before.geometry.array[known], mine.geometry.array[known]))
    return ~same


def _refuse_pen(state) -> None:
    """Refuse a state with blocks in the holding pen, naming them."""
    pen = state.assignment[state.assignment == ""]
    if len(pen):
        shown = ", ".join(pen.index[:10]) + (" ..." if len(pen) > 10 else "")
        raise PlanError("blocks_unassigned",
                        f"{len(pen)} block(s) are in the holding pen, in no grid: {shown}. Paint each into a grid "
                        "(the brush) before saving; nothing was saved",
                        f"还有 {len(pen)} 个图块在待分配区，不属于任何网格：{shown}。请先用画刷把它们划入网格再保存；"
                        "本次未保存任何内容", blocks=list(pen.index))
