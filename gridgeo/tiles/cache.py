"""A cache of rendered tiles: in memory (LRU bounded by bytes) and on disk.

Tiles are keyed by the data version they were rendered from, so a publish
that changes the version never serves an old tile: the new version's keys
simply miss. :meth:`TileCache.retain` then frees what older versions hold.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

__all__ = ["TileCache"]

# what one entry costs besides its bytes (key, list links); keeps empty tiles bounded too
_ENTRY_OVERHEAD = 128
_SAFE = re.compile(r"[^A-Za-z0-9._+-]")


class TileCache:
    """Rendered tiles by (version, layer, z, x, y), in memory and optionally on disk.

    The memory part is a least-recently-used map bounded by ``max_bytes``
    (an empty tile counts too, so millions of them cannot grow it without
    bound). With ``directory``, every tile is also written to
    ``<directory>/<version>/<layer>/<z>/<x>/<y>.mvt`` (an empty file for an
    empty tile) and read back when memory misses, so a restarted service
    starts warm. Writes are atomic (a temporary file renamed into place), and
    every method is thread-safe: the API renders tiles from a thread pool.

    Parameters
    ----------
    max_bytes : int, default 256 MiB
        Memory budget. ``0`` keeps nothing in memory (disk only, if given).
    directory : path, optional
        Root of the disk cache; created when needed.

    Attributes
    ----------
    hits, misses : int
        Lookups answered (from memory or disk) and not answered.

    Notes
    -----
    ``version`` and ``layer`` become directory names: characters other than
    letters, digits and ``._+-`` are replaced by ``_``.

    Examples
    --------
    >>> cache = TileCache(max_bytes=1_000_000)
    >>> cache.put("v1", "grid2", 14, 13591, 7042, b"tile")
    >>> cache.get("v1", "grid2", 14, 13591, 7042)
    b'tile'
    >>> cache.get("v2", "grid2", 14, 13591, 7042) is None   # another version misses
    True
    """

    def __init__(self, max_bytes: int = 256 * 2**20, directory=None):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be 0 or more, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.directory = Path(directory) if directory is not None else None
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Bytes the memory part holds (tiles plus a fixed overhead per entry)."""
        return self._bytes

    def get(self, version: str, layer: str, z: int, x: int, y: int) -> bytes | None:
        """The cached tile, or None when neither memory nor disk has it."""
        key = (version, layer, z, x, y)
        with self._lock:
            data = self._entries.get(key)
            if data is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return data
        data = self._read_disk(key)
        with self._lock:
            if data is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, data)
        return data

    def put(self, version: str, layer: str, z: int, x: int, y: int, data: bytes) -> None:
        """Keep a rendered tile (``b""`` for an empty one)."""
        key = (version, layer, z, x, y)
        data = bytes(data)
        self._write_disk(key, data)
        with self._lock:
            self._remember(key, data)

    def retain(self, version: str) -> None:
        """Forget every tile of any version other than ``version`` (memory and disk)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] != version]:
                self._bytes -= self._cost(self._entries.pop(key))
        if self.directory is not None and self.directory.is_dir():
            keep = _safe(version)
            for child in self.directory.iterdir():
                if child.is_dir() and child.name != keep:
                    shutil.rmtree(child, ignore_errors=True)

    def clear(self) -> None:
        """Forget every tile, in memory and on disk."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0
        if self.directory is not None and self.directory.is_dir():
            for child in self.directory.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)

    # --- steps ----------------------------------------------------------------

    @staticmethod
    def _cost(data: bytes) -> int:
        return len(data) + _ENTRY_OVERHEAD

    def _remember(self, key: tuple, data: bytes) -> None:
        # caller holds the lock
        cost = self._cost(data)
        if cost > self.max_bytes:
            return
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= self._cost(old)
        self._entries[key] = data
        self._bytes += cost
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= self._cost(evicted)

    def _path(self, key: tuple) -> Path:
        version, layer, z, x, y = key
        return self.directory / _safe(version) / _safe(layer) / str(int(z)) / str(int(x)) / f"{int(y)}.mvt"

    def _read_disk(self, key: tuple) -> bytes | None:
        if self.directory is None:
            return None
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def _write_disk(self, key: tuple, data: bytes) -> None:
        if self.directory is None:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _safe(part: str) -> str:
    name = _SAFE.sub("_", str(part))
    if name in ("", ".", ".."):
        name = f"_{name}_"
    return name
