"""A least-recently-used cache bounded by the bytes its values hold.

A service keeps what it derives from a data version (figures, tile sets,
encoded answers) to answer the next request at once. At city scale those
values reach hundreds of MB, so they are kept in an :class:`LRUCache`
bounded by bytes, not by count: when a value does not fit, the values used
least recently are dropped until it does, and are made again when asked for.

The rules:

- :attr:`LRUCache.nbytes` (the sum of the kept values' :func:`nbytes`) is
  never above ``max_bytes`` once a call returns; a value larger than the
  bound is handed back but not kept.
- A value whose size grows after it was kept (one with an ``nbytes``
  attribute, e.g. a :class:`gridgeo.tiles.TileSet` reading its zooms as
  tiles are asked for) is measured again by :meth:`LRUCache.settle`, and by
  every :meth:`LRUCache.put`.
- :meth:`LRUCache.get_or_make` makes a missing value once however many
  threads ask for it at the same time; None is never kept (asked again).

Examples
--------
>>> cache = LRUCache(max_bytes=4_000)
>>> cache.put("a", b"x" * 1_500)
>>> cache.put("b", b"y" * 1_500)
>>> cache.get("a") is not None       # "a" is now the most recently used
True
>>> cache.put("c", b"z" * 1_500)     # over the bound: "b" goes
>>> sorted(cache.keys()), cache.nbytes <= 4_000
(['a', 'c'], True)
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["LRUCache", "nbytes"]

ENTRY_OVERHEAD = 256
"""Bytes an entry costs besides its value (key, links): keeps many small values bounded too."""

_GEOMETRY_BYTES = 96
"""What a GEOS geometry costs besides its coordinates (object headers, envelope), roughly."""

_SAMPLE = 200
"""A container longer than this is measured on this many items and scaled."""


def nbytes(value: Any) -> int:
    """The bytes a value holds in memory, estimated from its parts.

    Exact for ``bytes`` and NumPy arrays; a DataFrame counts its columns
    deeply (text included); a geometry counts 16 bytes a coordinate pair
    (24 with z) and a fixed cost per geometry; an object with an ``nbytes``
    attribute says its own; lists, tuples and dicts count their items (a
    long one from a sample of :data:`_SAMPLE` items); instances of gridgeo's
    own classes count their attributes. Anything else counts
    :func:`sys.getsizeof`. Shared parts count once.

    Examples
    --------
    >>> nbytes(b"1234") >= 4
    True
    >>> import geopandas as gpd, shapely
    >>> frame = gpd.GeoDataFrame({"code": ["a", "b"]}, geometry=[shapely.box(0, 0, 1, 1)] * 2)
    >>> nbytes(frame) > 2 * 5 * 16
    True
    """
    return _measure(value, set())


def _measure(value, seen: set) -> int:
    if value is None or isinstance(value, (bool, int, float, str, bytes, bytearray, memoryview)):
        return sys.getsizeof(value)
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, (pd.DataFrame, pd.Series, pd.Index)):
        return _frame(value)
    if isinstance(value, np.ndarray):
        return value.nbytes + (_geometries(value) if value.dtype == object else 0)
    own = getattr(type(value), "nbytes", None)
    if own is not None and not isinstance(value, type):
        return int(value.nbytes)
    if isinstance(value, (list, tuple, set, frozenset)):
        return sys.getsizeof(value) + _items(list(value), seen)
    if isinstance(value, dict):
        return sys.getsizeof(value) + _items(list(value.keys()), seen) + _items(list(value.values()), seen)
    if type(value).__module__.startswith("shapely"):
        if type(value).__name__ == "STRtree":
            return 64 * len(value.geometries)  # the tree's nodes; its geometries are the caller's
        return _geometries(np.array([value], dtype=object))
    if type(value).__module__.startswith("gridgeo") and hasattr(value, "__dict__"):
        return sys.getsizeof(value) + _items(list(vars(value).values()), seen)
    return sys.getsizeof(value)


def _items(items: list, seen: set) -> int:
    if len(items) <= _SAMPLE:
        return sum(_measure(item, seen) for item in items)
    step = len(items) / _SAMPLE
    sample = [items[int(i * step)] for i in range(_SAMPLE)]
    return int(sum(_measure(item, seen) for item in sample) * step)


def _frame(frame) -> int:
    import geopandas as gpd

    if isinstance(frame, pd.DataFrame) and frame.attrs:
        frame = frame.copy(deep=False)  # the same columns; pandas copies attrs deeply with each column read
        frame.attrs = {}
    columns = [frame] if isinstance(frame, (pd.Series, pd.Index)) else [frame[c] for c in frame.columns]
    total = 0 if isinstance(frame, (pd.Series, pd.Index)) else int(frame.index.memory_usage(deep=True))
    for column in columns:
        if isinstance(getattr(column, "dtype", None), gpd.array.GeometryDtype):
            total += 8 * len(column) + _geometries(np.asarray(column.array, dtype=object))
        else:
            total += int(column.memory_usage(deep=True, index=False) if isinstance(column, pd.Series)
                         else column.memory_usage(deep=True))
    return total


def _geometries(values: np.ndarray) -> int:
    import shapely

    geoms = values[np.fromiter((isinstance(v, shapely.Geometry) for v in values.flat), bool, values.size)
                   .reshape(values.shape)] if values.size else values
    if not geoms.size:
        return 0
    dims = np.where(shapely.has_z(geoms), 24, 16)
    return int((shapely.get_num_coordinates(geoms) * dims).sum()) + _GEOMETRY_BYTES * geoms.size


class LRUCache:
    """Values by key, the least recently used dropped first when their bytes pass ``max_bytes``.

    Thread-safe: a service asks from a thread pool.

    Parameters
    ----------
    max_bytes : int
        The bound on :attr:`nbytes`. ``0`` keeps nothing.
    measure : callable, default :func:`nbytes`
        The bytes of a value.

    Attributes
    ----------
    hits, misses, evictions : int
        Lookups answered, not answered, and values dropped to make room.
    """

    def __init__(self, max_bytes: int, *, measure: Callable[[Any], int] = nbytes):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.measure = measure
        self.hits = self.misses = self.evictions = 0
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._making: dict[Hashable, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key) -> bool:
        return key in self._entries

    def keys(self) -> list:
        """The keys kept, least recently used first."""
        with self._lock:
            return list(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes the kept values hold (as measured when kept or last settled), entries' overhead included."""
        return self._bytes

    def get(self, key, default=None):
        """The value kept under ``key`` (now the most recently used), else ``default``."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return default
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key, value) -> None:
        """Keep ``value`` under ``key``, dropping the least recently used values until it fits
        (a value larger than the bound alone is not kept; nor is None)."""
        if value is None:
            return
        cost = self.measure(value) + ENTRY_OVERHEAD
        with self._lock:
            self._drop(key)
            if cost <= self.max_bytes:
                self._entries[key] = (value, cost)
                self._bytes += cost
            self._settle()

    def get_or_make(self, key, make: Callable[[], Any]):
        """The value under ``key``, made by ``make()`` (once, whoever else asks meanwhile) when missing."""
        hit = self.get(key, _MISSING)
        if hit is not _MISSING:
            return hit
        with self._lock:
            lock = self._making.setdefault(key, threading.Lock())
        try:
            with lock:
                with self._lock:
                    entry = self._entries.get(key)
                    if entry is not None:
                        self._entries.move_to_end(key)
                        return entry[0]
                value = make()
                self.put(key, value)
                return value
        finally:
            with self._lock:
                if self._making.get(key) is lock:
                    del self._making[key]

    def discard(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop every value whose key ``keep(key)`` refuses (e.g. those of another data version)."""
        with self._lock:
            for key in [k for k in self._entries if not keep(k)]:
                self._drop(key)

    def settle(self) -> None:
        """Measure again the values that grow (those with an ``nbytes`` attribute) and drop the least
        recently used until the bound holds."""
        with self._lock:
            self._settle()

    # --- steps (the caller holds the lock) ----------------------------------------------------

    def _drop(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]

    def _settle(self) -> None:
        for key, (value, cost) in list(self._entries.items()):
            if getattr(type(value), "nbytes", None) is not None:
                now = self.measure(value) + ENTRY_OVERHEAD
                self._entries[key] = (value, now)
                self._bytes += now - cost
        while self._bytes > self.max_bytes and self._entries:
            _, (_, cost) = self._entries.popitem(last=False)
            self._bytes -= cost
            self.evictions += 1


_MISSING = object()
