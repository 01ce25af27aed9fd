"""Where a table keeps its coordinates, and what system the column names imply.

Tables of points (station sheets, address exports) hold longitude and latitude
in two columns with many names (经度/纬度, lng/lat, lon/lat, x/y), sometimes
naming the system they are in (百度经度/百度纬度 are Baidu BD-09, 高德经度/高德纬度
Amap GCJ-02), or in one column ``"lng,lat"`` as Amap's web services return
it (``location``). :func:`find` picks them, :func:`xy` reads them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridgeo.intake import aliases

__all__ = ["Coordinates", "find", "xy"]


@dataclass(frozen=True)
class Coordinates:
    """The coordinate columns of a table and the system their names imply."""

    lon: str | None = None
    lat: str | None = None
    location: str | None = None
    implied: str | None = None  # "bd09", "gcj02", "wgs84" or None

    @property
    def columns(self) -> list[str]:
        return [c for c in (self.lon, self.lat, self.location) if c]


def find(columns, *, lon=None, lat=None, location=None) -> Coordinates | str:
    """The coordinate columns among ``columns``, or a message saying why none.

    Given names win (both ``lon`` and ``lat``, or ``location``); otherwise the
    first pair of :data:`aliases.COORDINATES` present, then a single
    :data:`aliases.LOCATION` column.

    Examples
    --------
    >>> find(["站点编号", "百度经度", "百度纬度"])
    Coordinates(lon='百度经度', lat='百度纬度', location=None, implied='bd09')
    >>> find(["名称", "location"]).location
    'location'
    >>> find(["名称"])[:32]
    "no coordinate columns among '名称'"
    """
    columns = [str(c) for c in columns]
    if location is not None:
        if location not in columns:
            return f"there is no column {location!r} (given as the location column); the columns are {_listing(columns)}"
        return Coordinates(location=location, implied=_implied_by(location))
    if (lon is None) != (lat is None):
        return "give both the longitude and the latitude column (--lon and --lat), or neither"
    if lon is not None:
        missing = [c for c in (lon, lat) if c not in columns]
        if missing:
            return f"there is no column {', '.join(map(repr, missing))}; the columns are {_listing(columns)}"
        return Coordinates(lon=lon, lat=lat, implied=_implied_by(lon) or _implied_by(lat))
    by_normal: dict[str, list[str]] = {}
    for c in columns:
        by_normal.setdefault(aliases.normal(c), []).append(c)
    for lon_names, lat_names, implied in aliases.COORDINATES:
        x = _first(by_normal, lon_names)
        y = _first(by_normal, lat_names)
        if x and y:
            return Coordinates(lon=x, lat=y, implied=implied)
    where = _first(by_normal, aliases.LOCATION)
    if where:
        return Coordinates(location=where)
    return (f"no coordinate columns among {_listing(columns)}: expected 经度/纬度, lng/lat, lon/lat, x/y "
            "(百度经度/百度纬度 for Baidu, 高德经度/高德纬度 for Amap) or one 'lng,lat' column named location; "
            "or say which with --lon and --lat (or --location)")


def _first(by_normal, names):
    for name in names:
        found = by_normal.get(aliases.normal(name))
        if found:
            return found[0]
    return None


def _implied_by(column: str) -> str | None:
    key = aliases.normal(column)
    for lon_names, lat_names, implied in aliases.COORDINATES:
        if key in {aliases.normal(n) for n in (*lon_names, *lat_names)}:
            return implied
    return None


def _listing(columns) -> str:
    return ", ".join(map(repr, columns)) or "none"


def xy(frame: pd.DataFrame, where: Coordinates) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, bad): the coordinates as floats, and the rows without usable ones
    (missing, not numbers, not finite, or a location that is not "x,y").

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"location": ["118.58,24.78", "118.6， 24.8", "", "abc"]})
    >>> x, y, bad = xy(t, Coordinates(location="location"))
    >>> x[:2].tolist(), bad.tolist()
    ([118.58, 118.6], [False, False, True, True])
    """
    if where.location:
        text = frame[where.location].astype(object).where(frame[where.location].notna(), "").astype(str)
        parts = text.str.replace("，", ",", regex=False).str.replace(";", ",", regex=False).str.split(",")
        two = parts.map(len) == 2
        lon = parts.map(lambda p: p[0] if len(p) == 2 else None)
        lat = parts.map(lambda p: p[1] if len(p) == 2 else None)
        x = pd.to_numeric(lon.str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
        y = pd.to_numeric(lat.str.strip(), errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
        x[~two.to_numpy()] = np.nan
    else:
        x = _numbers(frame[where.lon])
        y = _numbers(frame[where.lat])
    return x, y, ~(np.isfinite(x) & np.isfinite(y))


def _numbers(values: pd.Series) -> np.ndarray:
    if values.dtype == object or pd.api.types.is_string_dtype(values.dtype):
        values = values.astype(object).map(lambda v: v.strip().replace("，", ".") if isinstance(v, str) else v)
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
