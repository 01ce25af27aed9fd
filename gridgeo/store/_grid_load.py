"""What a load of grid units replaces, and the check that the result is valid.

A grid file names some levels, and for each level the parents its units lie
in. A load replaces exactly that: with ``scope="parents"`` (the default) the
published units of each loaded level whose parent is one of the parents the
file's units name; with ``scope="level"`` every published unit of each loaded
level. Other levels, and other parents' units, are never touched.

Before anything is written the grids as they would be after the load go
through :func:`gridgeo.validate`, on the part the load touches: the loaded
units, their parents, and the units whose parent is a loaded or a replaced
unit (which must still nest, and must still have a parent). Any error refuses
the load.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gridgeo.store.errors import PublishError

SCOPES = ("parents", "level")

_CHUNK = 500  # codes per IN (...) list


def check_scope(scope: str) -> str:
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}: 'parents' replaces a level's units "
                         "under the parents the file covers, 'level' the whole level")
    return scope


def conditions(frame, scope: str) -> list[tuple[str, list]]:
    """(SQL condition, params) selecting the published units a load of
    ``frame`` replaces, one or more per loaded level."""
    out = []
    for level, rows in frame.groupby("level", sort=True):
        if scope == "level":
            out.append(("level = ?", [level]))
            continue
        parents = sorted(set(rows["parent"]))
        for start in range(0, len(parents), _CHUNK):
            chunk = parents[start:start + _CHUNK]
            out.append((f"level = ? AND parent IN ({', '.join('?' * len(chunk))})", [level, *chunk]))
    return out


def replaced_mask(current, frame, scope: str) -> np.ndarray:
    """Which rows of the published ``current`` a load of ``frame`` replaces."""
    mask = np.zeros(len(current), dtype=bool)
    for level, rows in frame.groupby("level", sort=True):
        at_level = (current["level"] == level).to_numpy(copy=True)
        if scope == "parents":
            at_level &= current["parent"].isin(set(rows["parent"])).to_numpy()
        mask |= at_level
    return mask


def report_after(current, frame, scope: str, *, mode: str, scheme):
    """The :func:`gridgeo.validate` report of the grids after loading ``frame``
    over the published ``current``, on the part the load touches."""
    from gridgeo.validation import validate

    gone = replaced_mask(current, frame, scope) if mode == "replace" else np.zeros(len(current), bool)
    kept = current[~gone]
    names = set(current.columns) - {"geometry"} if len(current.columns) else set(frame.columns)
    new = frame.drop(columns=[c for c in frame.columns if c not in names | {"geometry"}])
    parts = [p for p in (kept, new) if len(p)]
    after = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)
    after = after.set_geometry("geometry").set_crs(frame.crs, allow_override=True)
    touched = set(frame["code"]) | set(current.loc[gone, "code"])
    parents = set(frame["parent"]) | set(current.loc[gone, "parent"])
    involved = after["code"].isin(touched) | after["code"].isin(parents) | after["parent"].isin(touched)
    part = after[involved.to_numpy()]
    levels = set(frame["level"]) | set(part.loc[part["parent"].isin(touched), "level"])
    return validate(part, levels=[lv for lv in scheme.names if lv in levels], scheme=scheme,
                    name="the grids loaded")


def validate_after(store, tx, frame, scope: str, *, mode: str, scheme) -> None:
    """Raise :class:`PublishError` if the grids after loading ``frame`` fail validation."""
    available = store.layer_columns("grids", tx=tx)
    names = list(available)
    sql = f"SELECT {store._db.geom_expr('geom')}, {', '.join(_layers_q(n) for n in names)} FROM grids ORDER BY code"
    current = store.frame_of(tx.query(sql), names, available)
    report = report_after(current, frame, scope, mode=mode, scheme=scheme)
    errors = report[report["severity"] == "error"] if len(report) else report
    if len(errors):
        raise PublishError(
            f"the load was refused: the grids would fail validation with {len(errors)} error(s): "
            f"{describe(errors)}. Nothing was changed. Fix the file (gridgeo repair, or a draft plan) and load "
            "again; the whole report is in .report", report)


def describe(errors, limit=5) -> str:
    parts = []
    for _, row in errors.head(limit).iterrows():
        parts.append(f"{row.get('codes') or row.get('code') or row.get('parent', '')}: {row.get('kind', '')} "
                     f"({row.get('message_zh', '')} / {row.get('message_en', '')})")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def _layers_q(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'
