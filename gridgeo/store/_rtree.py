"""Filling a GeoPackage R-tree fast: a packed (Hilbert-sorted) bulk load.

SQLite's R*Tree inserts one entry at a time with node splits, about 10 µs
each: 800,000 addresses would spend most of their load there. Like GDAL's own
bulk loader, this writes the R-tree's shadow tables (``<rtree>_node``,
``_rowid``, ``_parent``) directly, in the format of SQLite's ``rtree.c``:

- a node is a blob of the tree's node size: a 2-byte depth (root only), a
  2-byte cell count, then cells of an 8-byte id and four 4-byte floats
  (minx, maxx, miny, maxy), all big-endian;
- node 1 is the root; a leaf's cell id is the feature id, an inner cell's
  the child node number;
- coordinates are float32 rounded outwards, so a box always contains its
  feature.

Entries are ordered along a Hilbert curve and packed bottom-up into nodes of
near-equal fill. ``SELECT rtreecheck(...)`` accepts the result (the tests
check it), and GDAL, QGIS and SQLite query it as any other R-tree.
"""

from __future__ import annotations

import numpy as np
import shapely

from gridgeo.store._sql import q

_REBUILD_FROM = 5_000  # fewer new entries than this go in through SQLite's own insert
_CELL = np.dtype([("id", ">i8"), ("box", ">f4", (4,))])


class Pending:
    """New R-tree entries collected during a bulk write, packed in by :meth:`flush`."""

    def __init__(self, tx, rtree):
        self.tx, self.rtree = tx, rtree
        self.ids: list[np.ndarray] = []
        self.boxes: list[np.ndarray] = []

    def add(self, fids, geoms) -> None:
        """Entries for features ``fids`` with geometries ``geoms`` (empty ones are skipped)."""
        geoms = np.asarray(geoms, dtype=object)
        keep = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
        bounds = shapely.bounds(geoms[keep])
        self.ids.append(np.asarray(fids)[keep].astype(np.int64))
        self.boxes.append(bounds[:, [0, 2, 1, 3]])

    def copy_from(self, source: str, mapping_sql: str, params) -> None:
        """Entries copied from the R-tree ``source``, renumbered by ``mapping_sql``
        (a SELECT of ``old`` and ``new`` feature ids)."""
        rows = self.tx.query(f"SELECT m.new, r.minx, r.maxx, r.miny, r.maxy FROM ({mapping_sql}) m "
                             f"JOIN {q(source)} r ON r.id = m.old", params)
        if rows:
            table = np.array(rows, dtype=np.float64)
            self.ids.append(table[:, 0].astype(np.int64))
            self.boxes.append(table[:, 1:])

    def flush(self) -> None:
        if not self.ids:
            return
        ids, boxes = np.concatenate(self.ids), np.concatenate(self.boxes)
        if len(ids) < _REBUILD_FROM:
            self.tx.executemany(f"INSERT INTO {q(self.rtree)} VALUES (?, ?, ?, ?, ?)",
                                zip(ids.tolist(), *(boxes[:, i].tolist() for i in range(4))))
            return
        existing = self.tx.query(f"SELECT id, minx, maxx, miny, maxy FROM {q(self.rtree)}")
        if existing:
            old = np.array(existing, dtype=np.float64)
            ids = np.concatenate([old[:, 0].astype(np.int64), ids])
            boxes = np.concatenate([old[:, 1:], boxes])
        pack(self.tx, self.rtree, ids, boxes)


def root_box(query, rtree: str) -> tuple[float, float, float, float] | None:
    """(minx, maxx, miny, maxy) around every entry of ``rtree``, read from its root
    node alone (the union of the root's cells, float32 rounded outwards as every box
    of the tree); None when the tree is empty. ``query(sql, params)`` runs a SELECT."""
    rows = query(f"SELECT data FROM {q(rtree + '_node')} WHERE nodeno = 1", ())
    if not rows or rows[0][0] is None:
        return None
    data = bytes(rows[0][0])
    count = int.from_bytes(data[2:4], "big")
    if count == 0:
        return None
    cells = np.frombuffer(data, dtype=_CELL, count=count, offset=4)["box"].astype(np.float64)
    return (float(cells[:, 0].min()), float(cells[:, 1].max()), float(cells[:, 2].min()),
            float(cells[:, 3].max()))


def rebuild(tx, rtree: str, table: str) -> None:
    """Rebuild ``rtree`` keeping only the entries of rows still in ``table``
    (after a bulk delete), without recomputing any envelope."""
    rows = tx.query(f"SELECT r.id, r.minx, r.maxx, r.miny, r.maxy FROM {q(rtree)} r "
                    f"JOIN {q(table)} t ON t.fid = r.id")
    table_ = np.array(rows, dtype=np.float64).reshape(-1, 5)
    pack(tx, rtree, table_[:, 0].astype(np.int64), table_[:, 1:])


def pack(tx, rtree: str, ids: np.ndarray, boxes: np.ndarray) -> None:
    """Replace the content of ``rtree`` with ``ids`` and their ``boxes``
    (columns minx, maxx, miny, maxy)."""
    size = int(tx.query(f"SELECT length(data) FROM {q(rtree + '_node')} WHERE nodeno = 1")[0][0])
    fanout = (size - 4) // 24
    if len(ids) == 0:
        for table in ("_node", "_rowid", "_parent"):
            tx.execute(f"DELETE FROM {q(rtree + table)}")
        tx.execute(f"INSERT INTO {q(rtree + '_node')} VALUES (1, zeroblob({size}))")
        return
    boxes = _outward_float32(boxes)
    order = _hilbert_order(boxes)
    ids, boxes = ids[order], boxes[order]

    levels = []  # bottom-up: (child ids, child boxes, group offsets)
    child_ids, child_boxes = ids, boxes
    while True:
        groups = -(-len(child_ids) // fanout)
        offsets = np.linspace(0, len(child_ids), groups + 1).round().astype(np.int64)
        levels.append((child_ids, child_boxes, offsets))
        if groups == 1:
            break
        starts = offsets[:-1]
        node_boxes = np.column_stack([
            np.minimum.reduceat(child_boxes[:, 0], starts), np.maximum.reduceat(child_boxes[:, 1], starts),
            np.minimum.reduceat(child_boxes[:, 2], starts), np.maximum.reduceat(child_boxes[:, 3], starts)])
        child_ids, child_boxes = np.zeros(groups, dtype=np.int64), node_boxes.astype(np.float32)
    # node numbers top-down: the root is 1
    numbers, next_number = [], 1
    for child_ids_, _, offsets in reversed(levels):
        count = len(offsets) - 1
        numbers.insert(0, np.arange(next_number, next_number + count))
        next_number += count
    for depth in range(len(levels) - 1, 0, -1):  # inner cells point at the node numbers below
        levels[depth] = (numbers[depth - 1], levels[depth][1], levels[depth][2])

    for table in ("_node", "_rowid", "_parent"):
        tx.execute(f"DELETE FROM {q(rtree + table)}")
    fields = [("depth", ">u2"), ("count", ">u2"), ("cells", _CELL, (fanout,))]
    if size > 4 + 24 * fanout:
        fields.append(("pad", "u1", (size - 4 - 24 * fanout,)))
    node = np.dtype(fields)
    for height, (cids, cboxes, offsets) in enumerate(levels):
        count = len(offsets) - 1
        nodes = np.zeros(count, dtype=node)
        sizes = np.diff(offsets)
        nodes["count"] = sizes
        if height == len(levels) - 1:
            nodes["depth"][0] = height
        slot = np.arange(len(cids)) - np.repeat(offsets[:-1], sizes)
        owner = np.repeat(np.arange(count), sizes)
        nodes["cells"]["id"][owner, slot] = cids
        nodes["cells"]["box"][owner, slot] = cboxes
        raw = nodes.tobytes()
        nos = numbers[height].tolist()
        tx.executemany(f"INSERT INTO {q(rtree + '_node')} VALUES (?, ?)",
                       ((no, raw[i * size:(i + 1) * size]) for i, no in enumerate(nos)))
        if height == 0:
            tx.executemany(f"INSERT INTO {q(rtree + '_rowid')} (rowid, nodeno) VALUES (?, ?)",
                           zip(cids.tolist(), numbers[0][owner].tolist()))
        else:
            tx.executemany(f"INSERT INTO {q(rtree + '_parent')} VALUES (?, ?)",
                           zip(cids.tolist(), numbers[height][owner].tolist()))


def _outward_float32(boxes: np.ndarray) -> np.ndarray:
    """float32 boxes that contain the float64 ones (as SQLite rounds them)."""
    out = boxes.astype(np.float32)
    low, high = out[:, [0, 2]], out[:, [1, 3]]
    low = np.where(low > boxes[:, [0, 2]], np.nextafter(low, np.float32(-np.inf)), low)
    high = np.where(high < boxes[:, [1, 3]], np.nextafter(high, np.float32(np.inf)), high)
    return np.column_stack([low[:, 0], high[:, 0], low[:, 1], high[:, 1]]).astype(np.float32)


def _hilbert_order(boxes: np.ndarray, level: int = 16) -> np.ndarray:
    """Indices that sort boxes along a Hilbert curve through their centres."""
    x = (boxes[:, 0].astype(np.float64) + boxes[:, 1]) / 2
    y = (boxes[:, 2].astype(np.float64) + boxes[:, 3]) / 2
    side = (1 << level) - 1
    span_x = max(float(x.max() - x.min()), 1e-12)
    span_y = max(float(y.max() - y.min()), 1e-12)
    xi = ((x - x.min()) / span_x * side).astype(np.uint64)
    yi = ((y - y.min()) / span_y * side).astype(np.uint64)
    return np.argsort(_hilbert(xi, yi, level), kind="stable")


def _hilbert(x: np.ndarray, y: np.ndarray, level: int) -> np.ndarray:
    """Distance along the Hilbert curve of order ``level`` (vectorised xy2d)."""
    d = np.zeros(len(x), dtype=np.uint64)
    x, y = x.copy(), y.copy()
    s = np.uint64(1 << (level - 1))
    one = np.uint64(1)
    n = np.uint64((1 << level) - 1)
    while s > 0:
        rx = ((x & s) > 0).astype(np.uint64)
        ry = ((y & s) > 0).astype(np.uint64)
        d += s * s * ((np.uint64(3) * rx) ^ ry)
        # rotate the quadrant
        flip = (ry == 0) & (rx == 1)
        x = np.where(flip, n - x, x)
        y = np.where(flip, n - y, y)
        swap = ry == 0
        x, y = np.where(swap, y, x), np.where(swap, x, y)
        s = s >> one
    return d
