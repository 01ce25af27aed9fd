"""Running the figures of many cities on a Dask cluster, with the in-memory answers.

A province is many cities' data under one code. The public functions that
count per unit — :func:`gridgeo.stats.figures`, :func:`gridgeo.events.indicators`
and :func:`gridgeo.coverage.per_grid` — and :func:`gridgeo.coverage.nearest_station`
take one more keyword, the same for all:

``client`` : ``distributed.Client``, optional
    Run on this Dask cluster instead of in this process. The answer is the
    in-memory answer, row for row and value for value.

The partition rule, stated once
-------------------------------
One task per **top-level unit** (a town or street, 镇街): it gets that unit
and every unit below it, and the points (addresses, events, stations) that
:func:`gridgeo.assign` puts in that unit at the top level — the smallest
code among the top-level units that cover the point, so a point on the edge
between two towns goes to exactly one. Every unit of a level at or below the
top lies inside one top-level unit, so all the points a unit holds are in
one task, and its figures there (sums, medians and percentiles of the
events, the farthest address) are made from the same points as in memory,
never averaged across tasks. Points no top-level unit holds (outside, or
invalid) are counted aside as in memory (``attrs["unplaced"]``). Whatever
depends on the whole data (the periods an event table lists, its ``as_of``,
the categories) is decided once from all of it on the client and given to
every task.

Walking distances (:func:`gridgeo.coverage.nearest_station`) need no grids:
their tasks are square tiles of addresses, each with a halo of roads and
stations wide enough for the walking limit (the halo rule is stated there).

Tasks run on the cluster's workers; warnings a task raises (a plan with
gaps ...) are raised again on the client, so nothing is lost.

Notes
-----
The input frames are held by the client: it places the points in their
top-level unit (an index of the top level only, cheap), and ships each task
its share. Reading partitioned files straight on the workers is not done.
Assignment itself takes Dask collections instead (:func:`gridgeo.assign` of a
dask-geopandas frame). :func:`gridgeo.validate` takes a ``client`` too and
partitions by the same rule, with a halo of neighbouring units (see there).
Tile building does not run on Dask yet.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, check, level_names

__all__ = ["Part", "split", "run", "top_owner"]


_LAYERS = ("addresses", "events", "stations")  # checked against the schema; others are checked by their task


class Part:
    """One task's share: a top-level unit's ``code``, its ``grids`` (it and every unit below it) and
    its points per layer (``layers``: a dict of frames, indexed as in the input)."""

    def __init__(self, code, grids, layers):
        self.code, self.grids, self.layers = code, grids, layers

    def __repr__(self) -> str:
        sizes = ", ".join(f"{len(f)} {k}" for k, f in self.layers.items() if f is not None)
        return f"<Part {self.code}: {len(self.grids)} units, {sizes}>"


def split(grids, layers: dict, *, scheme=None):
    """The tasks of the partition rule (module notes): ``(parts, unplaced, top)``.

    Parameters
    ----------
    grids : GeoDataFrame
        Every level in one frame.
    layers : dict of str to GeoDataFrame or None
        The points per layer (None: not given).
    scheme : CodeScheme, optional

    Returns
    -------
    parts : list of Part
        One per top-level unit, in code order.
    unplaced : dict
        Per layer given, ``{"outside": n, "invalid": n}``: the points no top-level unit holds.
    top : str
        The top level.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> parts, unplaced, top = split(s.grids, {"events": s.events})
    >>> top, len(parts), len(parts[0].layers["events"]) == len(s.events), unplaced
    ('town', 1, True, {'events': {'outside': 0, 'invalid': 0}})
    """
    from gridgeo.assignment import AssignIndex, assign

    scheme = scheme or DEFAULT_SCHEME
    grids = gcrs.to_storage(check(grids, "grids", scheme=scheme, name="grids"), name="grids")
    top = level_names(grids, scheme)[0]
    on_top = (grids["level"] == top).to_numpy()
    top_index = AssignIndex(grids[on_top], scheme=scheme)
    owner = top_owner(grids, top)
    codes = np.sort(grids.loc[on_top, "code"].to_numpy(dtype=object))
    rows = {layer: None for layer in layers}
    unplaced = {}
    for layer, frame in layers.items():
        if frame is None:
            continue
        if layer in _LAYERS:
            frame = check(frame, layer, scheme=scheme, name=layer)
        placed = assign(frame, top_index, levels=[top], name=layer)
        unplaced[layer] = {s: int((placed["status"] == s).sum()) for s in ("outside", "invalid")}
        rows[layer] = (frame, placed[top].cat.codes.to_numpy())
    parts = []
    for i, code in enumerate(codes):
        part_layers = {}
        for layer, held in rows.items():
            if held is None:
                part_layers[layer] = None
            else:
                frame, where = held
                part_layers[layer] = frame[where == i]
        parts.append(Part(code, grids[owner == code], part_layers))
    return parts, unplaced, top


def top_owner(grids, top):
    """Per unit, the code of the top-level unit above it (itself at the top), by following parents;
    None for a unit whose parents never reach the top (the partition rule of the module notes).

    Examples
    --------
    >>> import gridgeo
    >>> grids = gridgeo.sample.load().grids
    >>> owner = top_owner(grids, "town")
    >>> sorted(set(owner)) == sorted(grids.loc[grids["level"] == "town", "code"])
    True
    """
    codes = grids["code"].to_numpy(dtype=object)
    tops = pd.Index(codes[(grids["level"] == top).to_numpy()])
    parent_of = pd.Series(grids["parent"].to_numpy(dtype=object), index=codes)
    parent_of = parent_of[~parent_of.index.duplicated()]
    current = codes.copy()
    for _ in range(grids["level"].nunique() + 1):
        climbing = ~pd.Index(current).isin(tops)
        if not climbing.any():
            break
        current[climbing] = parent_of.reindex(current[climbing]).to_numpy()
    return np.where(pd.Index(current).isin(tops), current, None)


def run(client, task, parts, **shared):
    """``[task(part, **shared) for part in parts]`` on the client's cluster, in order.

    Warnings a task raises are raised again here.
    """
    if not parts:
        return []
    futures = [client.submit(_recording, task, part, pure=False, **shared) for part in parts]
    results = client.gather(futures)
    out = []
    for value, caught in results:
        for message, category in caught:
            warnings.warn(message, category, stacklevel=3)
        out.append(value)
    return out


def _recording(task, part, **shared):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = task(part, **shared)
    return value, [(str(w.message), w.category) for w in caught]
