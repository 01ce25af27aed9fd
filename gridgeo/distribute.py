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
the categories) is decided once from all of it (on the client for frames,
for stored layers as below) and given to every task.

Walking distances (:func:`gridgeo.coverage.nearest_station`) need no grids:
their tasks are square tiles of addresses, each with a halo of roads and
stations wide enough for the walking limit (the halo rule is stated there).

Tasks run on the cluster's workers; warnings a task raises (a plan with
gaps ...) are raised again on the client, so nothing is lost.

Inputs read on the workers
--------------------------
In-memory frames are held by the client: it places the points in their
top-level unit (an index of the top level only, cheap), and ships each task
its share. For a province, write each layer once with :func:`partition`: a
GeoParquet dataset per layer, one hive-style folder per top-level unit
(``<folder>/<layer>/top=<code>/part.parquet``), split by the rule above, and
the points no top-level unit holds kept aside
(``<folder>/unplaced/<layer>.parquet``) and counted in the manifest
(``<folder>/gridgeo-partition.json``). The same public functions then take a
layer of it (``dataset["events"]``, a :class:`Stored`, or the path of its
folder) instead of a frame: the client holds the grids and the paths only,
and each task reads its own unit's file on its worker. What depends on the
whole data is then decided from a cheap read of the few columns it needs
(the report and close times and the categories of the events, the station
kinds), made on the workers file by file, the kept-aside points included,
and reduced on the client to a handful of values (:func:`summarise`); the
points no unit holds are the manifest's counts. The grids given must be the
grids the dataset was partitioned by (their top-level units are checked
against the manifest), else the call is refused.

A layer may also stay in a gridgeo store (PostGIS): give a
:class:`StoreLayer` (``StoreLayer(url, "events")``) instead of a frame. Each
task then reads, through the store's own :meth:`~gridgeo.store.Store.read`,
the rows in its unit's bounding box and keeps those the rule gives its unit
(decided among the top-level units whose boxes meet that box, which are all
that can cover a point in it). The layer is read once per call
(:class:`Held`): the rows read stay on the workers, what depends on the
whole data is reduced there from them, and the points no unit holds are
those of the boxes no unit covers and, when the layer's count says there
are any, the rows of one query for what lies in no box. Every read is of
the revision the layer was made at.

Notes
-----
:func:`partition` writes one layer at a time. In one process (a layer given
as a path is read only when its turn comes) that process needs the largest
layer's memory, once; with ``client=`` the workers read the input in
slices, cut them and put each unit's pieces together, and the process
holds the grids, the paths and a hash per row (the ids checked across the
slices). The rows of a unit cut from more than one slice are written
twice (its pieces, then its file): keeping the pieces in the workers'
memory to write each row once was measured slower, with more CPU and
worker memory, whether the input came town by town or in time order
(benchmarks/README.md, issue 22). A :class:`StoreLayer` is read once per call, but the units' boxes
overlap, so rows near a shared edge are read by each unit whose box holds
them and kept by one; its rows are held in the workers' memory from the
read until the call's tasks have counted them (the cost of reading once:
Dask spills them to disk if it must). :func:`summarise` of a
:class:`StoreLayer` alone (no grids) reads it page by page, in key order
with an offset.
:func:`gridgeo.coverage.nearest_station` does not take stored layers (its
tasks are tiles, not units). A hive reader infers the ``top`` folder
values as integers unless told they are strings; gridgeo reads each
unit's file directly. Assignment itself takes Dask collections instead (:func:`gridgeo.assign` of a
dask-geopandas frame). :func:`gridgeo.validate` takes a ``client`` too and
partitions by the same rule, with a halo of neighbouring units (see there).
Tile building does not run on Dask yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from gridgeo import crs as gcrs
from gridgeo.schema import DEFAULT_SCHEME, check, level_names

__all__ = ["Part", "split", "run", "top_owner", "partition", "dataset", "Stored", "Partitioned", "StoreLayer",
           "Held", "held", "summarise"]


_LAYERS = ("addresses", "events", "stations")  # checked against the schema; others are checked by their task


class Part:
    """One task's share: a top-level unit's ``code``, its ``grids`` (it and every unit below it) and
    its points per layer (``layers``: a dict of frames, indexed as in the input)."""

    def __init__(self, code, grids, layers):
        self.code, self.grids, self.layers = code, grids, layers

    def __repr__(self) -> str:
        sizes = ", ".join(f"{len(f)} {k}" if hasattr(f, "__len__") else f"{f!r} {k}"
                          for k, f in self.layers.items() if f is not None)
        return f"<Part {self.code}: {len(self.grids)} units, {sizes}>"

    def held(self) -> dict:
        """The futures of its layers held on the workers (:class:`Held`), by layer."""
        return {k: f.future for k, f in self.layers.items() if isinstance(f, _HeldPiece)}

    def without_held(self):
        """The part with its held layers left out (given to its task apart: :func:`run`)."""
        if not any(isinstance(f, _HeldPiece) for f in self.layers.values()):
            return self
        return Part(self.code, self.grids,
                    {k: None if isinstance(f, _HeldPiece) else f for k, f in self.layers.items()})

    def read(self):
        """The part with its stored layers read (on the worker that runs its task)."""
        if not any(isinstance(f, _Piece) for f in self.layers.values()):
            return self
        return Part(self.code, self.grids,
                    {k: f.read() if isinstance(f, _Piece) else f for k, f in self.layers.items()})


class _Piece:
    """One top-level unit's file of a stored layer, read where the task runs."""

    def __init__(self, path):
        self.path = str(path)

    def read(self):
        import geopandas as gpd

        return gpd.read_parquet(self.path)

    def __repr__(self) -> str:
        return f"<file {self.path}>"


def split(grids, layers: dict, *, scheme=None, client=None):
    """The tasks of the partition rule (module notes): ``(parts, unplaced, top)``.

    Parameters
    ----------
    grids : GeoDataFrame
        Every level in one frame.
    layers : dict of str to GeoDataFrame, Stored, StoreLayer, path or None
        The points per layer (None: not given); a layer written by
        :func:`partition` (:class:`Stored`, or its folder) or kept in a store
        (:class:`StoreLayer`) is not read here: each part names its unit's
        file, or its query, read by the task on its worker.
    scheme : CodeScheme, optional
    client : distributed.Client, optional
        Needed for a :class:`StoreLayer`: it is read on the workers
        (:meth:`StoreLayer.held`), and each part's rows stay there.

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
    from gridgeo.assignment import assign

    grids, top, top_index, owner, codes = _tops(grids, scheme)
    rows = {layer: None for layer in layers}
    unplaced = {}
    pieces = {}
    for layer, frame in layers.items():
        if frame is None:
            continue
        if is_stored(frame):
            stored = stored_layer(frame)
            if isinstance(stored, StoreLayer):  # read once, on the workers, for these grids
                stored = stored.held(client, grids, scheme=scheme)
            pieces[layer] = stored.pieces(grids, top, codes, scheme=scheme or DEFAULT_SCHEME)
            unplaced[layer] = stored.unplaced_by(client, top_index, top)
            continue
        if layer in _LAYERS:
            frame = check(frame, layer, scheme=scheme or DEFAULT_SCHEME, name=layer)
        placed = assign(frame, top_index, levels=[top], name=layer)
        unplaced[layer] = {s: int((placed["status"] == s).sum()) for s in ("outside", "invalid")}
        rows[layer] = (frame, placed[top].cat.codes.to_numpy())
    parts = []
    for i, code in enumerate(codes):
        part_layers = {}
        for layer, held in rows.items():
            if layer in pieces:
                part_layers[layer] = pieces[layer][code]
            elif held is None:
                part_layers[layer] = None
            else:
                frame, where = held
                part_layers[layer] = frame[where == i]
        parts.append(Part(code, grids[owner == code], part_layers))
    return parts, unplaced, top


def _tops(grids, scheme):
    """(grids, top level, an index of the top level, each unit's top owner, the top codes sorted)."""
    from gridgeo.assignment import AssignIndex

    scheme = scheme or DEFAULT_SCHEME
    grids = gcrs.to_storage(check(grids, "grids", scheme=scheme, name="grids"), name="grids")
    top = level_names(grids, scheme)[0]
    on_top = (grids["level"] == top).to_numpy()
    top_index = AssignIndex(grids[on_top], scheme=scheme)
    owner = top_owner(grids, top)
    codes = np.sort(grids.loc[on_top, "code"].to_numpy(dtype=object))
    return grids, top, top_index, owner, codes


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
    futures = [client.submit(_recording, task, part.without_held(), held=part.held(), pure=False, **shared)
               if isinstance(part, Part) else client.submit(_recording, task, part, pure=False, **shared)
               for part in parts]  # a held piece's rows go to the task as a future: where they are, or moved once
    results = client.gather(futures)
    out = []
    for value, caught in results:
        for message, category in caught:
            warnings.warn(message, category, stacklevel=3)
        out.append(value)
    return out


def _recording(task, part, held=None, **shared):
    if held:
        part = Part(part.code, part.grids, {**part.layers, **held})
    if isinstance(part, Part):
        part = part.read()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = task(part, **shared)
    return value, [(str(w.message), w.category) for w in caught]


# ----------------------------------------------------------------------------------------------
# inputs written partitioned once, read on the workers
# ----------------------------------------------------------------------------------------------

MANIFEST = "gridgeo-partition.json"


class PartitionError(ValueError):
    """A partitioned dataset that cannot be written or does not fit the grids given."""


def partition(grids, layers: dict, folder, *, scheme=None, client=None, slice_rows=100_000):
    """Write each layer once as a GeoParquet dataset split by the partition rule (module notes).

    Parameters
    ----------
    grids : GeoDataFrame
        Every level in one frame: its top level decides the parts.
    layers : dict of str to GeoDataFrame or path
        The points per layer (``addresses``, ``events``, ``stations``, or
        others). A path (GeoParquet, or any file :func:`geopandas.read_file`
        reads) is read when its turn comes, so that no more than one layer is
        held at a time; with `client`, each worker reads its slices of it and
        this process reads none of its rows.
    folder : str or Path
        The dataset to make; it must not exist.
    scheme : CodeScheme, optional
    client : distributed.Client, optional
        Cut on this Dask cluster: the input of each layer is read in slices of
        `slice_rows` rows, each slice checked, placed and written in pieces per
        top-level unit by a worker, and the pieces of each unit are then put
        together in slice order by a worker. The dataset is the one this
        process would write: the same files, rows, order and counts. The
        workers must see `folder` (and the input files) at the same paths as
        this process (a LocalCluster, or a shared file system).
    slice_rows : int, default 100,000
        The rows of a slice, with `client`. A GeoParquet file is cut at its
        row groups (a slice is one or more whole row groups, however large:
        write it with a smaller ``row_group_size`` to cut it finer); a frame
        and the files :func:`geopandas.read_file` reads (``rows=``) at any row.

    Returns
    -------
    Partitioned
        The dataset: ``dataset[layer]`` is what the public functions take.

    Raises
    ------
    PartitionError
        If ``folder`` exists.
    gridgeo.schema.SchemaError
        If the grids or a layer fail the schema.

    Notes
    -----
    Every layer is written into a temporary folder beside ``folder``, which
    becomes ``folder`` (one rename) only when every layer and the manifest
    are written: a refused or failed write leaves no dataset, whole or half
    (on a cluster, once every task has ended). Every top-level unit has its
    file, empty or not; its rows are in the order of the input. Each layer is
    checked against the schema whole (ids unique across the province) and
    written in the storage CRS. On a cluster each slice is checked alone
    and the ids across all of them: a refusal lists the same faults, each
    slice's in turn (a fault of the whole layer, such as a missing column,
    once) and the duplicated ids last, so their order (and, past ten of a
    kind, their number) may differ from the one-process list.

    Examples
    --------
    >>> import tempfile, pathlib, gridgeo
    >>> s = gridgeo.sample.load()
    >>> ds = partition(s.grids, {"events": s.events}, pathlib.Path(tempfile.mkdtemp()) / "town")
    >>> ds["events"].unplaced, ds["events"].rows == len(s.events), len(ds.tops)
    ({'outside': 0, 'invalid': 0}, True, 1)
    """
    folder = Path(folder)
    if folder.exists():
        raise PartitionError(f"{folder} 已存在，不覆盖 / {folder} exists: partitioned datasets are written once; "
                             "remove it or choose another folder")
    if not isinstance(layers, dict) or not layers:
        raise PartitionError("layers 须为 {图层名: 数据} / give layers as a dict of layer name to frame or path, "
                             f"got {type(layers).__name__}")
    if isinstance(slice_rows, bool) or not isinstance(slice_rows, (int, np.integer)) or slice_rows < 1:
        raise PartitionError(f"slice_rows 须为正整数 / slice_rows must be a whole number of rows, 1 or more; "
                             f"got {slice_rows!r}")
    grids, top, top_index, _, codes = _tops(grids, scheme)
    scheme = scheme or DEFAULT_SCHEME
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.writing-", dir=folder.parent))
    try:
        manifest = {"format": 1, "top": top, "tops": [str(c) for c in codes], "grids_key": _grids_key(grids, top),
                    "layers": {}}
        if client is not None:  # the index of the top level, sent to every worker once
            top_index = client.scatter(top_index, broadcast=True, hash=False)
        for layer, source in layers.items():
            if client is None:
                facts = _partition_here(source, layer, scratch, scheme, top_index, top, codes)
            else:
                facts = _partition_on(client, source, layer, scratch, scheme, top_index, top, codes, int(slice_rows))
            manifest["layers"][layer] = facts
        shutil.rmtree(scratch / ".pieces", ignore_errors=True)
        (scratch / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        os.rename(scratch, folder)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return Partitioned(folder)


def _partition_here(source, layer, scratch, scheme, top_index, top, codes) -> dict:
    """One layer of :func:`partition` in this process: its manifest entry."""
    frame = _source(source, layer)
    if layer in _LAYERS:
        frame = check(frame, layer, scheme=scheme, name=layer)
    frame, where, unplaced = _placed_top(frame, layer, top_index, top)
    for i, piece in _by_top(frame, where, len(codes)):
        target = scratch / layer / f"top={codes[i]}"
        target.mkdir(parents=True)
        piece.to_parquet(target / "part.parquet")
    (scratch / "unplaced").mkdir(exist_ok=True)
    frame.iloc[np.flatnonzero(where < 0)].to_parquet(scratch / "unplaced" / f"{layer}.parquet")
    return {"rows": len(frame), "unplaced": unplaced}


def _placed_top(frame, layer, top_index, top):
    """(the frame in the storage CRS, each row's top-level unit as a position in the sorted codes or -1,
    the counts of the rows no top-level unit holds): the partition rule applied."""
    from gridgeo.assignment import assign

    frame = gcrs.to_storage(frame, name=layer)
    placed = assign(frame, top_index, levels=[top], name=layer)
    where = placed[top].cat.codes.to_numpy()
    return frame, where, {s: int((placed["status"] == s).sum()) for s in ("outside", "invalid")}


def _by_top(frame, where, n):
    """``(i, rows of frame whose top-level unit is i)`` for i in 0..n-1, every i, the rows in frame order."""
    order = np.argsort(where, kind="stable")
    bounds = np.searchsorted(where[order], np.arange(n + 1))
    for i in range(n):
        yield i, frame.iloc[order[bounds[i]:bounds[i + 1]]]


# --- partition on a cluster: slices cut on the workers, then each unit's pieces put together ---------


def _partition_on(client, source, layer, scratch, scheme, top_index, top, codes, slice_rows) -> dict:
    """One layer of :func:`partition` on the cluster: its manifest entry, the files as :func:`_partition_here`
    writes them."""
    slices = _slices(client, source, layer, slice_rows)
    pieces = scratch / ".pieces" / layer
    checked = layer in _LAYERS
    shared = dict(layer=layer, checked=checked, scheme=scheme, top_index=top_index, top=top, n=len(codes),
                  pieces=str(pieces))
    cut = _settled(client, [client.submit(_cut_slice, piece, number=k, pure=False, **shared)
                            for k, piece in enumerate(slices)])
    if checked:
        _refuse_problems(client, cut, slices, layer, scheme)
    jobs = [(str(scratch / layer / f"top={code}" / "part.parquet"),
             [str(pieces / str(k) / f"{i}.parquet") for k, c in enumerate(cut) if c["counts"][i]])
            for i, code in enumerate(codes)]
    jobs.append((str(scratch / "unplaced" / f"{layer}.parquet"),
                 [str(pieces / str(k) / "aside.parquet") for k, c in enumerate(cut) if c["aside"]]))
    empty = str(pieces / "0" / "empty.parquet")
    per_task = max(1, -(-len(jobs) // (4 * max(1, len(client.nthreads())))))
    _settled(client, [client.submit(_put_together, jobs[i:i + per_task], empty, pure=False)
                      for i in range(0, len(jobs), per_task)])
    shutil.rmtree(pieces)  # the slices' pieces: every one moved or put together
    return {"rows": sum(c["rows"] for c in cut),
            "unplaced": {s: sum(c["unplaced"][s] for c in cut) for s in ("outside", "invalid")}}


def _settled(client, futures) -> list:
    """The futures' results in order, their warnings raised again here; if one fails, its error once every
    task has ended (so that nothing a task writes outlives the call)."""
    from distributed import wait

    try:
        results = client.gather(futures)
    except BaseException:
        try:
            wait(futures)  # every task ended: finished, failed or cancelled (which wait raises once all have)
        except Exception:  # noqa: BLE001 - the first error is the one to raise
            pass
        raise
    for value, caught in results:
        for message, category in caught:
            warnings.warn(message, category, stacklevel=4)
    return [value for value, _ in results]


class _Slice:
    """Rows ``start`` to ``stop`` of a layer's input file, read on a worker with the labels the whole read
    gives them."""

    def __init__(self, path, start, stop, groups=None):
        self.path, self.start, self.stop, self.groups = str(path), start, stop, groups

    def read(self):
        import geopandas as gpd

        if self.groups is None:  # any file geopandas.read_file reads: its rows, numbered as in the whole read
            frame = gpd.read_file(self.path, rows=slice(self.start, self.stop))
            frame.index = pd.RangeIndex(self.start, self.start + len(frame))
            return frame
        import io

        import pyarrow.parquet as pq

        file = pq.ParquetFile(self.path)
        table = file.read_row_groups(self.groups)
        buffer = io.BytesIO()  # geopandas' own reader, on these row groups with the file's metadata
        pq.write_table(table, buffer)
        buffer.seek(0)
        frame = gpd.read_parquet(buffer)
        whole = _range_index(file.schema_arrow.metadata)
        if whole is not None:  # a range index is kept as metadata: the whole read's labels of these rows
            frame.index = whole[self.start:self.stop]
        return frame

    def __repr__(self) -> str:
        return f"<rows {self.start}:{self.stop} of {self.path}>"


def _range_index(metadata):
    """The RangeIndex the pandas metadata of a parquet file describes, or None (an index kept as a column)."""
    described = json.loads((metadata or {}).get(b"pandas", b"{}")).get("index_columns", [])
    if len(described) != 1 or not isinstance(described[0], dict) or described[0].get("kind") != "range":
        return None
    d = described[0]
    return pd.RangeIndex(d["start"], d["stop"], d["step"], name=d.get("name"))


def _slices(client, source, layer, slice_rows) -> list:
    """The slices of a layer's input: for a frame, its rows scattered to the workers; for a file, what each
    worker reads."""
    if source is None:
        _source(source, layer)
    if not isinstance(source, (str, os.PathLike)):
        frame = source
        bounds = list(range(0, len(frame), slice_rows)) + [len(frame)] if len(frame) else [0, 0]
        return client.scatter([frame.iloc[a:b] for a, b in zip(bounds[:-1], bounds[1:])], hash=False)
    path = Path(source)
    if path.suffix in (".parquet", ".geoparquet"):
        import pyarrow.parquet as pq

        meta = pq.ParquetFile(path).metadata
        out, groups, start = [], [], 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows = sum(meta.row_group(i).num_rows for i in groups)
            if rows >= slice_rows or g == meta.num_row_groups - 1:
                out.append(_Slice(path, start, start + rows, groups))
                start, groups = start + rows, []
        return out or [_Slice(path, 0, 0, [])]
    import pyogrio

    n = pyogrio.read_info(path, force_feature_count=True)["features"]
    return [_Slice(path, a, min(a + slice_rows, n)) for a in range(0, n, slice_rows)] or [_Slice(path, 0, None)]


def _cut_slice(piece, *, number, layer, checked, scheme, top_index, top, n, pieces):
    """A slice read, checked (ids aside), placed and written per top-level unit: ``pieces/<number>/<i>.parquet``
    for every unit ``i`` it has rows of, ``aside.parquet`` for the rows none holds, and (slice 0)
    ``empty.parquet``, the layer with no rows. Returns its counts, and the hashes of its ids."""
    from gridgeo.schema import ID_COLUMNS, SchemaError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = piece.read() if isinstance(piece, _Slice) else piece
        out = {"rows": len(frame), "problems": [], "hashes": None}
        if checked:
            try:
                frame = check(frame, layer, scheme=scheme, name=layer, unique=False)
            except SchemaError as exc:
                return {**out, "problems": exc.problems}, []
            column = frame[ID_COLUMNS[layer]]
            out["hashes"] = pd.util.hash_array(column.to_numpy(dtype=object), categorize=False)
        frame, where, out["unplaced"] = _placed_top(frame, layer, top_index, top)
        folder = Path(pieces) / str(number)
        folder.mkdir(parents=True)
        out["counts"] = np.bincount(where[where >= 0], minlength=n)
        for i, rows in _by_top(frame, where, n):
            if len(rows):
                rows.to_parquet(folder / f"{i}.parquet")
        out["aside"] = bool((where < 0).any())
        if out["aside"]:
            frame.iloc[np.flatnonzero(where < 0)].to_parquet(folder / "aside.parquet")
        if number == 0:
            frame.iloc[:0].to_parquet(folder / "empty.parquet")
    return out, [(str(w.message), w.category) for w in caught]


def _refuse_problems(client, cut, slices, layer, scheme):
    """A SchemaError with every slice's problems, in slice order, and the ids used by more than one row of
    the layer (found by their hashes, confirmed from the rows that have them); nothing if none."""
    from gridgeo.schema import ID_COLUMNS, SchemaError, duplicate_ids

    problems, said = [], set()
    for c in cut:
        for p in c["problems"]:
            if p.row is None and str(p) in said:  # the layer's own faults (a missing column, no CRS), once
                continue
            said.add(str(p))
            problems.append(p)
    hashes = [c["hashes"] for c in cut if c["hashes"] is not None]
    if hashes:
        whole = pd.Series(np.concatenate(hashes))
        twice = np.unique(whole[whole.duplicated(keep=False)].to_numpy())
        if len(twice):
            column = ID_COLUMNS[layer]
            found = _settled(client, [client.submit(_rows_hashed, piece, column, twice, pure=False)
                                      for piece, c in zip(slices, cut) if c["hashes"] is not None])
            problems += duplicate_ids(pd.concat(found))
    if problems:
        raise SchemaError(layer, layer, problems)


def _rows_hashed(piece, column, hashes):
    """The ids (with their labels) of a slice whose hashes are among `hashes`."""
    frame = piece.read() if isinstance(piece, _Slice) else piece
    ids = frame[column]
    return ids[np.isin(pd.util.hash_array(ids.to_numpy(dtype=object), categorize=False), hashes)], []


def _put_together(jobs, empty):
    """Each ``(target, pieces)``: the pieces of one file, in slice order, written as one (as this process
    writes the rows of a unit); no piece: the layer's empty file."""
    import geopandas as gpd

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for target, pieces in jobs:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            if not pieces:
                shutil.copyfile(empty, target)
            elif len(pieces) == 1:
                os.replace(pieces[0], target)
            else:
                frames = [gpd.read_parquet(p) for p in pieces]
                whole = pd.concat(frames)
                whole.attrs = dict(frames[0].attrs)
                whole.to_parquet(target)
                del frames, whole
    return None, [(str(w.message), w.category) for w in caught]


def dataset(folder):
    """The partitioned dataset :func:`partition` wrote in ``folder``."""
    return Partitioned(folder)


class Partitioned:
    """A dataset :func:`partition` wrote: ``top`` (the level), ``tops`` (its codes) and a :class:`Stored`
    per layer (``dataset["events"]``)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        try:
            self.manifest = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PartitionError(f"{self.folder} 不是分区数据集 / {self.folder} is not a dataset written by "
                                 f"gridgeo.distribute.partition (its {MANIFEST} cannot be read: {exc})") from None
        self.top, self.tops = self.manifest["top"], list(self.manifest["tops"])

    @property
    def layers(self) -> list:
        return list(self.manifest["layers"])

    def __getitem__(self, layer):
        if layer not in self.manifest["layers"]:
            raise KeyError(f"{self.folder} 没有图层 {layer!r} / the dataset has no layer {layer!r}: it has "
                           f"{self.layers}")
        return Stored(self, layer)

    def __repr__(self) -> str:
        return f"<Partitioned {self.folder}: {len(self.tops)} {self.top} units, layers {self.layers}>"


class Stored:
    """One layer of a :class:`Partitioned` dataset: what the public functions take instead of a frame."""

    def __init__(self, dataset: Partitioned, layer: str):
        self.dataset, self.layer = dataset, layer
        facts = dataset.manifest["layers"][layer]
        self.rows, self.unplaced = int(facts["rows"]), dict(facts["unplaced"])

    def file(self, code) -> Path:
        return self.dataset.folder / self.layer / f"top={code}" / "part.parquet"

    @property
    def files(self) -> list:
        """Every file of the layer: one per top-level unit, then the points kept aside."""
        return [self.file(c) for c in self.dataset.tops] + [self.dataset.folder / "unplaced" / f"{self.layer}.parquet"]

    @property
    def columns(self) -> list:
        """The layer's columns (from the parquet schema, no rows read)."""
        import pyarrow.parquet as pq

        return [c for c in pq.read_schema(self.files[-1]).names if not c.startswith("__index_level_")]

    @property
    def attrs(self) -> dict:
        """The layer's ``attrs`` as written (pandas keeps them in the parquet metadata; no rows read)."""
        import pyarrow.parquet as pq

        metadata = pq.read_schema(self.files[-1]).metadata or {}
        return json.loads(metadata.get(b"PANDAS_ATTRS", b"{}"))

    def pieces(self, grids, top, codes, *, scheme=None) -> dict:
        """Each top-level unit's file, read where its task runs (the grids checked: :meth:`check_grids`)."""
        self.check_grids(grids, top, codes)
        return {code: _Piece(self.file(code)) for code in codes}

    def unplaced_by(self, client, top_index, top) -> dict:
        """The points no top-level unit holds, as counted when written."""
        return dict(self.unplaced)

    def check_grids(self, grids, top, codes):
        """Refuse grids other than those the dataset was partitioned by (by their top-level units)."""
        manifest = self.dataset.manifest
        if top != manifest["top"] or [str(c) for c in codes] != manifest["tops"] \
                or _grids_key(grids, top) != manifest["grids_key"]:
            raise PartitionError(
                f"{self.dataset.folder}: 网格的{top}与分区时不同 / the grids' {top} units are not those the dataset "
                f"was partitioned by ({len(codes)} given, {len(manifest['tops'])} then, or their boundaries moved): "
                "partition the layers again with gridgeo.distribute.partition")

    def __repr__(self) -> str:
        return f"<Stored {self.layer} of {self.dataset.folder}: {self.rows} rows>"


def is_stored(value) -> bool:
    """Whether a layer given to a public function is a stored one (a :class:`Stored` or its folder's path, or
    a :class:`StoreLayer`)."""
    return isinstance(value, (Stored, StoreLayer, Held, str, os.PathLike))


def stored_layer(value):
    """The :class:`Stored` layer ``value`` names (itself, or the path ``<dataset>/<layer>``), or the
    :class:`StoreLayer` it is."""
    if isinstance(value, (Stored, StoreLayer, Held)):
        return value
    path = Path(value)
    return Partitioned(path.parent)[path.name]


def summarise(client, stored, columns, reduce):
    """``[reduce(frame)]`` for every file of a stored layer (its parts, then the points kept aside), or every
    page of a :class:`StoreLayer`, run on the workers, each reading only ``columns`` (those the layer has):
    the cheap read that decides what depends on the whole data."""
    stored = stored_layer(stored)
    present = [c for c in columns if c in stored.columns]
    if isinstance(stored, Held):  # the rows read once, reduced where they are held
        return _settled(client, [client.submit(_held_columns, frame, present, reduce, pure=False)
                                 for frame in stored.frames])
    if isinstance(stored, StoreLayer):
        return stored.pages(client, _columns_of, columns=present, reduce=reduce)
    futures = [client.submit(_summarised, str(path), present, reduce, pure=False) for path in stored.files]
    return client.gather(futures)


def _summarised(path, columns, reduce):
    import pyarrow.parquet as pq

    return reduce(pq.read_table(path, columns=columns).to_pandas())


def _columns_of(frame, *, columns, reduce):
    return reduce(pd.DataFrame(frame[columns]))


def _held_columns(frame, columns, reduce):
    return reduce(pd.DataFrame(frame[columns])), []


def held(client, layers: dict, grids, *, scheme=None) -> dict:
    """``layers`` with each :class:`StoreLayer` read once on the workers for ``grids`` (:meth:`StoreLayer.held`),
    the others as they are: what a public function gives :func:`summarise` and :func:`split`, so that the
    rows are read once for both."""
    return {k: v.held(client, grids, scheme=scheme) if isinstance(v, StoreLayer) else v for k, v in layers.items()}


# ----------------------------------------------------------------------------------------------
# a store's layer read on the workers, each task its unit's rows
# ----------------------------------------------------------------------------------------------


class StoreLayer:
    """A layer of a gridgeo store (:func:`gridgeo.store.open`: PostGIS, or a GeoPackage the workers can
    open at the same path), given to the public functions instead of a frame and read on the workers.

    Each top-level unit's task reads the rows in its unit's bounding box (:meth:`gridgeo.store.Store.read`
    with ``bbox=``, on the spatial index) and keeps those the partition rule gives its unit, deciding
    with the top-level units whose boxes meet its own (every unit that can cover a point of the box).
    A public function reads it once (:meth:`held`): what depends on the whole layer (the points no unit
    holds, the periods and categories ...) is reduced from the rows read, where they are held. Every read
    is of one revision, the
    store's latest when the layer is made, so that the answers are those of
    ``store.read(collection, at=revision)`` even while the store is written to.

    Parameters
    ----------
    url : str
        The store: a ``postgresql://`` URL (or a ``.gpkg`` path).
    collection : str
        The layer: ``addresses``, ``events``, ``stations``.
    at : int, optional
        The revision to read (default: the store's latest).
    page_rows : int, default 100,000
        The rows of a page of :func:`summarise` of the layer alone (the public functions do not page).

    Examples
    --------
    >>> import tempfile, gridgeo.store, gridgeo.sample
    >>> path = tempfile.mkdtemp() + "/town.gpkg"
    >>> s = gridgeo.sample.load()
    >>> with gridgeo.store.open(path, create=True) as store:
    ...     store.load({"grids": s.grids, "events": s.events}, author="网格办", progress=False)
    1
    >>> layer = StoreLayer(path, "events")
    >>> layer.revision, layer.columns[:2], layer.count() == len(s.events)
    (1, ['event_id', 'category'], True)
    """

    def __init__(self, url, collection: str, *, at=None, page_rows: int = 100_000):
        from gridgeo import store as gstore

        with gstore.open(url) as store:
            if collection not in store.collections():
                raise KeyError(f"{store.url} 没有图层 {collection!r} / the store has no layer {collection!r}: it "
                               f"has {store.collections()}")
            self.revision = store.revision if at is None else int(at)
            self.columns = [*store.columns(collection), "revision"]
            self._where = store.url
        self.url, self.collection, self.page_rows = str(url), collection, int(page_rows)
        self.attrs = {}

    def __repr__(self) -> str:
        return f"<StoreLayer {self.collection} of {self._where} at revision {self.revision}>"

    def read(self, **options):
        """:meth:`gridgeo.store.Store.read` of the layer at the revision, with `options` (``bbox``, ``limit`` ...)."""
        from gridgeo import store as gstore

        with gstore.open(self.url) as store:
            return store.read(self.collection, at=self.revision, **options)

    def pieces(self, grids, top, codes, *, scheme=None) -> dict:
        """Each top-level unit's query: its box, and the top-level units whose boxes meet it."""
        import shapely

        on_top = grids[grids["level"] == top].set_index("code").loc[list(codes)].reset_index()
        boxes = shapely.box(*shapely.bounds(on_top.geometry.to_numpy()).T)
        mine, theirs = shapely.STRtree(boxes).query(boxes, predicate="intersects")
        near = pd.Series(theirs).groupby(mine).agg(list)
        return {code: _StorePiece(self, code, tuple(float(v) for v in on_top.geometry.iloc[i].bounds),
                                  on_top.iloc[sorted(near[i])][["code", "name", "level", "parent",
                                                                on_top.geometry.name]], top, scheme)
                for i, code in enumerate(codes)}

    def pages(self, client, task, *, columns=None, **options) -> list:
        """``[task(page, columns=columns, **options)]`` for every page of the layer (``columns``: the attribute
        columns read, besides the geometry and ``revision``; None: all), on the workers."""
        rows = self.count()
        futures = [client.submit(_page, self, start, self.page_rows, columns, task, pure=False, **options)
                   for start in range(0, max(rows, 1), self.page_rows)]
        return _settled(client, futures)

    def count(self) -> int:
        from gridgeo import store as gstore

        with gstore.open(self.url) as store:
            return store.count(self.collection, at=self.revision)

    def held(self, client, grids, *, scheme=None) -> Held:
        """The layer read once on the workers for ``grids``: each top-level unit's rows held where they were
        read, and the rows no top-level unit holds (:class:`Held`)."""
        if client is None:
            raise TypeError("数据库图层在 Dask 集群上读取：请给 client / a store's layer is read on a Dask cluster: "
                            "give client=")
        return Held(self, client, grids, scheme=scheme)


class Held:
    """A :class:`StoreLayer` read once on the workers for some grids (:meth:`StoreLayer.held`): what
    :func:`summarise` reduces and :func:`split` shares out instead of reading the layer again.

    Each top-level unit's task reads the rows in its unit's box and keeps those the partition rule gives its
    unit (as :class:`StoreLayer` says). A row in the box that no top-level unit covers is no unit's: it is
    kept aside by the task of the first unit (smallest code) whose box holds it, so that each is kept once.
    The rows in no unit's box (and those without a geometry) are read by one more query only when the
    layer's count says there are any (``NOT S_INTERSECTS`` the union of the boxes, or no geometry). Every row
    is then read once, and those near a shared edge once more by each other unit whose box holds them; the
    rows stay on the workers (in their memory: Dask spills them if it must) until the holder is let go.

    Attributes
    ----------
    frames : list of distributed.Future
        Every row once: each unit's rows, the rows each unit's box keeps aside, the rows of no box.
    unplaced : dict
        ``{"outside": n, "invalid": n}``: the rows no top-level unit holds.
    """

    def __init__(self, layer: StoreLayer, client, grids, *, scheme=None):
        self.layer, self.columns, self.attrs = layer, layer.columns, dict(layer.attrs)
        grids, top, _, _, codes = _tops(grids, scheme)
        self.top, self.codes, self.key = top, [str(c) for c in codes], _grids_key(grids, top)
        boxed = layer.pieces(grids, top, codes, scheme=scheme or DEFAULT_SCHEME)
        reads = [client.submit(_read_boxed, boxed[code], pure=False) for code in codes]
        self.rows = {code: client.submit(_item, f, 0, pure=False) for code, f in zip(self.codes, reads)}
        aside = [client.submit(_item, f, 1, pure=False) for f in reads]
        counts = _settled(client, [client.submit(_item, f, 2, pure=False) for f in reads])  # and their warnings
        del reads
        self.unplaced = {s: sum(c[s] for c in counts) for s in ("outside", "invalid")}
        self.bboxes = {code: boxed[code].bbox for code in self.codes}
        in_boxes, total = sum(c["rows"] for c in counts), layer.count()
        self.frames = [*self.rows.values(), *aside]
        if total > in_boxes:  # rows in no unit's box, or without a geometry: the one query for them
            on_top = grids[(grids["level"] == top).to_numpy()]
            rest = client.submit(_read_rest, layer, tuple(self.bboxes.values()),
                                 on_top[["code", "name", "level", "parent", on_top.geometry.name]], top,
                                 scheme or DEFAULT_SCHEME, pure=False)
            found = _settled(client, [client.submit(_item, rest, 1, pure=False)])[0]
            if found["rows"] != total - in_boxes:
                raise RuntimeError(f"{layer}: 读到的行数不符 / the rows read ({in_boxes} in the units' boxes, "
                                   f"{found['rows']} in none) are not the {total} the layer counts: was it written "
                                   "at this revision meanwhile? Read it again")
            self.frames.append(client.submit(_item, rest, 0, pure=False))
            for s in ("outside", "invalid"):
                self.unplaced[s] += found[s]

    def __repr__(self) -> str:
        return f"<Held {self.layer!r}: {len(self.codes)} {self.top} units>"

    def pieces(self, grids, top, codes, *, scheme=None) -> dict:
        """Each top-level unit's rows, held where they were read (the grids must be those they were read for)."""
        if top != self.top or [str(c) for c in codes] != self.codes or _grids_key(grids, top) != self.key:
            raise PartitionError(f"{self.layer}: 网格与读取时不同 / the grids' {top} units are not those the layer was "
                                 "read for: read it again for these grids")
        return {code: _HeldPiece(self.rows[str(code)], self.layer, code, self.bboxes[str(code)]) for code in codes}

    def unplaced_by(self, client, top_index, top) -> dict:
        """The rows no top-level unit holds, counted when read."""
        return dict(self.unplaced)


def _item(value, i):
    """The ``i``-th of a task's results (a future of each part of one read)."""
    return value[i]


def _read_boxed(piece):
    """(the unit's rows by the rule, the rows of its box no unit covers that it keeps aside, their counts): the
    read of :class:`Held` for one top-level unit."""
    import shapely

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame, placed = piece.placed()
    owner = placed[piece.top].astype(object)
    mine = (owner == piece.code).to_numpy()
    none = owner.isna().to_numpy()
    if none.any():  # no unit covers them: the first box (smallest code) holding each keeps it aside
        near = piece.near.sort_values("code")
        boxes = shapely.box(*shapely.bounds(near.geometry.to_numpy()).T)
        holds = shapely.intersects(boxes[None, :], frame.geometry.to_numpy()[none][:, None])
        first = near["code"].to_numpy(dtype=object)[np.argmax(holds, axis=1)]
        kept = np.zeros(len(frame), bool)
        kept[np.flatnonzero(none)] = holds.any(axis=1) & (first == piece.code)
        none = kept
    status = placed["status"].to_numpy()[none]
    counts = {"rows": int(mine.sum() + none.sum()), "outside": int((status == "outside").sum()),
              "invalid": int((status == "invalid").sum())}
    return frame[mine], frame[none], (counts, [(str(w.message), w.category) for w in caught])


def _read_rest(layer, bboxes, tops, top, scheme):
    """(the rows of the layer in no top-level unit's box or without a geometry, their counts)."""
    import shapely

    from gridgeo.assignment import AssignIndex, assign

    union = shapely.union_all(shapely.box(*np.asarray(bboxes, dtype=float).T))
    where = {"op": "or", "args": [
        {"op": "not", "args": [{"op": "s_intersects", "args": [{"property": "geometry"},
                                                               shapely.geometry.mapping(union)]}]},
        {"op": "isNull", "args": [{"property": "geometry"}]}]}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        frame = layer.read(filter=where)
        placed = assign(frame, AssignIndex(tops, scheme=scheme, _one_call=True), levels=[top], name=layer.collection)
    status = placed["status"].to_numpy()
    return frame, ({"rows": len(frame), "outside": int((status == "outside").sum()),
                    "invalid": int((status == "invalid").sum())}, [(str(w.message), w.category) for w in caught])


def _page(stored, start, rows, columns, task, **options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read = None if columns is None else [c for c in columns if c != "revision"]  # revision always comes
        value = task(stored.read(columns=read, limit=rows, offset=start), columns=columns, **options)
    return value, [(str(w.message), w.category) for w in caught]


class _StorePiece(_Piece):
    """One top-level unit's rows of a :class:`StoreLayer`: those in its box that the partition rule gives it,
    decided with the top-level units `near` it (those whose boxes meet its box)."""

    def __init__(self, layer, code, bbox, near, top, scheme):
        self.layer, self.code, self.bbox, self.near, self.top, self.scheme = layer, code, bbox, near, top, scheme

    def placed(self):
        """(the rows in the unit's box, their top-level unit among those near it)."""
        from gridgeo.assignment import AssignIndex, assign

        frame = self.layer.read(bbox=self.bbox)
        index = AssignIndex(self.near, scheme=self.scheme, _one_call=True)
        return frame, assign(frame, index, levels=[self.top], name=self.layer.collection)

    def read(self):
        frame, placed = self.placed()
        return frame[(placed[self.top].astype(object) == self.code).to_numpy()]

    def __repr__(self) -> str:
        return f"<{self.layer.collection} in the box of {self.code}, revision {self.layer.revision}>"


class _HeldPiece:
    """One top-level unit's rows of a :class:`Held` layer: a future of them, given to its task (:func:`run`)."""

    def __init__(self, future, layer, code, bbox):
        self.future, self.layer, self.code, self.bbox = future, layer, code, bbox

    def read(self):
        return self.future.result()

    def __repr__(self) -> str:
        return f"<{self.layer.collection} of {self.code} held on the workers, revision {self.layer.revision}>"


def _source(source, layer):
    if isinstance(source, (str, os.PathLike)):
        import geopandas as gpd

        path = Path(source)
        return gpd.read_parquet(path) if path.suffix in (".parquet", ".geoparquet") else gpd.read_file(path)
    if source is None:
        raise PartitionError(f"图层 {layer} 为空 / layer {layer!r} is None: leave it out")
    return source


def _grids_key(grids, top) -> str:
    """A digest of the top-level units (codes and exact boundaries) that decided the parts."""
    on_top = grids[grids["level"] == top].sort_values("code")
    digest = hashlib.sha256()
    for code, geometry in zip(on_top["code"], on_top.geometry.to_wkb()):
        digest.update(str(code).encode() + b"\0" + geometry)
    return digest.hexdigest()
