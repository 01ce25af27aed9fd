"""The data model: grid levels, the code scheme and the columns of every layer.

Everything gridgeo takes and returns is a (Geo)DataFrame with the columns
defined here. One function, :func:`check`, tells a user everything that is
wrong with a frame at once.

Codes follow the national division codes: the county's 6 digits (GB/T 2260,
晋江市 = 350582), 3 more for a town or street (镇街), 3 more for a village or
community (村社, as in the statistical division codes), then a fixed number
of digits per grid level. A code's prefix is always its parent's code, so the
whole chain of a unit can be read off its code. The widths live in one
place, :class:`CodeScheme`, and other layouts are a configuration away
(see :data:`BEIJING_SCHEME`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd
import shapely

__all__ = [
    "Level",
    "CodeScheme",
    "DEFAULT_SCHEME",
    "BEIJING_SCHEME",
    "PREFECTURE_SCHEME",
    "SCHEMES",
    "scheme_from",
    "SchemaError",
    "Problem",
    "LAYERS",
    "ID_COLUMNS",
    "duplicate_ids",
    "STATION_KINDS",
    "ROSTER_ROLES",
    "ROSTER_ROLE_ALIASES",
    "EVENT_CATEGORIES",
    "EVENT_STATUSES",
    "check",
    "normalise_codes",
    "reading_order",
    "number_units",
]


@dataclass(frozen=True)
class Level:
    """One level of the hierarchy.

    Parameters
    ----------
    name : str
        The level's name as used in the ``level`` column (``"grid2"``).
    digits : int
        How many digits this level appends to its parent's code.
    full : bool
        True when the level tiles its parent (no gap, no overlap); False for a
        partial level such as level-3 enterprise plots.
    label : str
        Chinese name of the level, for reports and maps.
    label_en : str
        English name of the level.
    """

    name: str
    digits: int
    full: bool = True
    label: str = ""
    label_en: str = ""


DEFAULT_LEVELS = (
    Level("town", 3, True, "镇街", "town / street"),
    Level("village", 3, True, "村社", "village / community"),
    Level("grid1", 2, True, "一级网格", "level-1 grid"),
    Level("grid2", 2, True, "二级网格", "level-2 grid"),
    Level("grid3", 3, False, "三级网格", "level-3 grid"),
)


@dataclass(frozen=True)
class CodeScheme:
    """The ordered levels and the digit widths of their codes.

    Parameters
    ----------
    levels : tuple of Level
        From the top (largest units) down.
    root_digits : int
        Digits of the code above the top level: the county's 6-digit GB/T 2260
        code.
    root : str, optional
        The root code itself (``"350582"``); when given, top-level codes must
        start with it.
    village_level : str
        The level every grid must belong to exactly one unit of (村/社区).

    Examples
    --------
    >>> s = CodeScheme()
    >>> s.width("grid2")
    16
    >>> s.make_code("350582108201", "grid1", 3)
    '35058210820103'
    >>> s.level_of("35058210820103")
    'grid1'
    >>> s.parent_code("35058210820103")
    '350582108201'
    """

    levels: tuple[Level, ...] = DEFAULT_LEVELS
    root_digits: int = 6
    root: str | None = None
    village_level: str = "village"

    def __post_init__(self):
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValueError(f"level names must be unique, got {names}")
        if self.village_level not in names:
            raise ValueError(f"village_level {self.village_level!r} is not one of {names}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels)

    def level(self, name: str) -> Level:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"unknown level {name!r}: expected one of {list(self.names)}")

    def index(self, name: str) -> int:
        """Position of a level, 0 at the top."""
        return self.names.index(self.level(name).name)

    def width(self, name: str) -> int:
        """Total number of digits of a code at this level."""
        i = self.index(name)
        return self.root_digits + sum(lv.digits for lv in self.levels[: i + 1])

    def parent_level(self, name: str) -> str | None:
        i = self.index(name)
        return self.levels[i - 1].name if i > 0 else None

    def child_level(self, name: str) -> str | None:
        i = self.index(name)
        return self.levels[i + 1].name if i + 1 < len(self.levels) else None

    @property
    def main_level(self) -> str:
        """The level of the grids workers serve day to day: ``grid2`` when the
        scheme has it, else its deepest full level (Beijing's unit grids).

        Examples
        --------
        >>> DEFAULT_SCHEME.main_level, BEIJING_SCHEME.main_level
        ('grid2', 'grid')
        """
        if "grid2" in self.names:
            return "grid2"
        full = [lv.name for lv in self.levels if lv.full]
        return (full or list(self.names))[-1]

    def full_levels(self) -> tuple[str, ...]:
        return tuple(lv.name for lv in self.levels if lv.full)

    def level_of(self, code: str) -> str | None:
        """The level a code's length belongs to, or None."""
        for lv in self.levels:
            if len(code) == self.width(lv.name):
                return lv.name
        return None

    def parent_code(self, code: str) -> str:
        """The code of the enclosing unit ('' for a top-level code)."""
        level = self.level_of(code)
        if level is None:
            raise ValueError(f"code {code!r} has {len(code)} digits, which is no level's width")
        parent = self.parent_level(level)
        return code[: self.width(parent)] if parent else ""

    def chain(self, code: str) -> list[str]:
        """The codes from the top level down to ``code`` itself."""
        level = self.level_of(code)
        if level is None:
            raise ValueError(f"code {code!r} has {len(code)} digits, which is no level's width")
        return [code[: self.width(lv)] for lv in self.names[: self.index(level) + 1]]

    def make_code(self, parent: str, level: str, seq: int) -> str:
        """The code of the ``seq``-th unit of ``level`` inside ``parent``."""
        lv = self.level(level)
        expected = self.width(level) - lv.digits
        if len(parent) != expected:
            raise ValueError(
                f"parent code {parent!r} has {len(parent)} digits; a {level} unit's parent needs {expected}"
            )
        if not 0 < seq < 10**lv.digits:
            raise ValueError(
                f"sequence number {seq} does not fit the {lv.digits} digits of level {level!r}: "
                "widen the level in the CodeScheme"
            )
        return f"{parent}{seq:0{lv.digits}d}"

    def sequence(self, code: str) -> int:
        """The sequence number a code ends with."""
        level = self.level_of(code)
        if level is None:
            raise ValueError(f"code {code!r} has {len(code)} digits, which is no level's width")
        return int(code[-self.level(level).digits :])

    def replace(self, **changes) -> "CodeScheme":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The scheme as plain data (what a store records, and a scheme file holds).

        Examples
        --------
        >>> CodeScheme.from_dict(BEIJING_SCHEME.to_dict()) == BEIJING_SCHEME
        True
        """
        return {
            "levels": [dataclasses.asdict(lv) for lv in self.levels],
            "root_digits": self.root_digits,
            "root": self.root,
            "village_level": self.village_level,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CodeScheme":
        """A scheme from :meth:`to_dict`'s form; unknown fields are an error naming them."""
        if not isinstance(data, dict) or "levels" not in data:
            raise ValueError("a code scheme is an object with 'levels' (a list of {name, digits, full, label, "
                             "label_en}), 'root_digits', 'root' and 'village_level'")
        known = {f.name for f in dataclasses.fields(Level)}
        levels = []
        for item in data["levels"]:
            unknown = sorted(set(item) - known)
            if unknown:
                raise ValueError(f"a level has no field {', '.join(map(repr, unknown))}; its fields are "
                                 f"{', '.join(sorted(known))}")
            levels.append(Level(**item))
        extra = sorted(set(data) - {"levels", "root_digits", "root", "village_level"})
        if extra:
            raise ValueError(f"a code scheme has no field {', '.join(map(repr, extra))}")
        return cls(levels=tuple(levels), root_digits=int(data.get("root_digits", 6)), root=data.get("root"),
                   village_level=data.get("village_level", "village"))


DEFAULT_SCHEME = CodeScheme()
"""County 6 + town 3 + village 3 + grid1 2 + grid2 2 + grid3 3 digits."""

BEIJING_SCHEME = CodeScheme(
    levels=(
        Level("street", 3, True, "街道", "street"),
        Level("community", 3, True, "社区", "community"),
        Level("grid", 3, True, "单元网格", "unit grid"),
    ),
    village_level="community",
)
"""Beijing's unit-grid ID: district 6 + street 3 + community 3 + grid 3 = 15
digits, grids numbered west to east, north to south within a community (use
:func:`number_units`)."""

PREFECTURE_SCHEME = CodeScheme(
    levels=(
        Level("prefecture", 2, True, "地级市", "prefecture"),
        Level("county", 2, True, "县（市、区）", "county"),
        *DEFAULT_LEVELS,
    ),
    root_digits=2,
)
"""A prefecture above its counties: province 2 + prefecture 2 + county 2, then
the county scheme's levels, so that every code below the county is the same
as in :data:`DEFAULT_SCHEME`. GB/T 2260 writes a prefecture as 6 digits padded
with zeros (泉州市 350500); its code here is the 4 digits that prefix its
counties' codes (3505): the intake reads 350500 as 3505."""

SCHEMES = {"default": DEFAULT_SCHEME, "beijing": BEIJING_SCHEME, "prefecture": PREFECTURE_SCHEME}
"""The built-in schemes by name."""


def scheme_from(value) -> CodeScheme:
    """A scheme from a name (:data:`SCHEMES`), a dict, a JSON file, or a scheme.

    Examples
    --------
    >>> scheme_from("beijing").width("grid")
    15
    >>> scheme_from("prefecture").width("county"), scheme_from("prefecture").width("grid3")
    (6, 19)
    """
    import json
    import os

    if value is None:
        return DEFAULT_SCHEME
    if isinstance(value, CodeScheme):
        return value
    if isinstance(value, dict):
        return CodeScheme.from_dict(value)
    text = os.fspath(value)
    if text in SCHEMES:
        return SCHEMES[text]
    if os.path.exists(text):
        try:
            with open(text, encoding="utf-8-sig") as f:
                return CodeScheme.from_dict(json.load(f))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"scheme file {text} is not a code scheme: {exc}") from None
    raise ValueError(f"unknown scheme {text!r}: use {', '.join(SCHEMES)} or a JSON file of one "
                     "(CodeScheme.to_dict's form)")


# --- the other layers -----------------------------------------------------

STATION_KINDS = {
    "grid2_station": ("二级网格服务站", "level-2 grid station"),
    "grid3_point": ("三级网格服务点", "level-3 service point"),
    "park_station": ("园区服务站", "industrial-park station"),
    "campus_station": ("校园服务站", "campus station"),
    "police_station": ("警格服务站", "police-grid station"),
    "community_centre": ("党群服务中心", "neighbourhood centre"),
}

EVENT_CATEGORIES = {
    "dispute": ("矛盾纠纷", "dispute"),
    "safety": ("安全隐患", "safety hazard"),
    "fire": ("消防隐患", "fire hazard"),
    "sanitation": ("环境卫生", "sanitation"),
    "building": ("违章建筑", "illegal building"),
    "public_order": ("治安防控", "public order"),
    "road": ("道路设施", "roads and facilities"),
    "service": ("民生服务", "resident services"),
}

EVENT_STATUSES = {
    "open": ("待处理", "open"),
    "in_progress": ("处理中", "in progress"),
    "closed": ("已办结", "closed"),
}

LAYERS = {
    "grids": {"code": "str", "name": "str", "level": "str", "parent": "str"},
    "stations": {"station_id": "str", "name": "str", "kind": "str", "grid_code": "str"},
    "addresses": {"addr_id": "str", "address": "str"},
    "events": {"event_id": "str", "category": "str", "status": "str", "reported_at": "datetime"},
    "roads": {},
    "boundaries": {"boundary_set": "str", "boundary_id": "str"},
    "roster": {"grid_code": "str", "role": "str", "name": "str"},
}
"""Required columns of each layer (besides the geometry). ``boundaries`` are the
areas other offices draw (警格, 学区 ...): ``boundary_set`` names the set, and
``boundary_id`` a unit, unique within its set (see :mod:`gridgeo.store._layers`). The
``roster`` is people, one row per person and grid, without geometry (:mod:`gridgeo.roster`)."""

COUNT_COLUMNS = ("households", "population", "units")
"""Optional count columns of addresses; non-negative numbers where present."""

_GEOMETRY_TYPES = {
    "grids": {"Polygon", "MultiPolygon"},
    "stations": {"Point"},
    "roads": {"LineString", "MultiLineString"},
    "boundaries": {"Polygon", "MultiPolygon"},
}


# --- checking ---------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a frame: where it is and what to do."""

    message: str
    row: object = None
    code: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.code:
            where.append(f"code {self.code}")
        prefix = f"{', '.join(where)}: " if where else ""
        return prefix + self.message


class SchemaError(ValueError):
    """A frame does not fit gridgeo's schema. ``problems`` lists every fault."""

    def __init__(self, name: str, kind: str, problems: list[Problem], limit: int = 25):
        self.name = name
        self.kind = kind
        self.problems = problems
        lines = [f"{name} is not a valid {kind} layer ({len(problems)} problem(s)):"]
        lines += [f"  - {p}" for p in problems[:limit]]
        if len(problems) > limit:
            lines.append(f"  ... and {len(problems) - limit} more (see .problems)")
        super().__init__("\n".join(lines))


def check(frame, kind: str = "grids", *, scheme: CodeScheme = DEFAULT_SCHEME, name: str | None = None,
          unique: bool = True):
    """Check a frame against the schema of a layer and normalise it.

    Every problem is collected and reported in one :class:`SchemaError`:
    missing columns, a missing CRS, wrong or empty geometries and, for grids,
    codes that are duplicated, malformed, of the wrong width for their level,
    not prefixed by their parent's code, with a parent that does not exist or
    a level out of order.

    A parent is required to exist only when the frame holds units of the
    parent's level, so one level (or one village) can be checked alone.

    Parameters
    ----------
    frame : GeoDataFrame
    kind : {"grids", "stations", "addresses", "events", "roads"}
    scheme : CodeScheme
    name : str, optional
        What to call the frame in messages (a file name, a layer).
    unique : bool, default True
        Whether the ids of stations, addresses and events (:data:`ID_COLUMNS`)
        must be unique in `frame`. False leaves them to the caller, which
        checks them across the slices of a layer with :func:`duplicate_ids`
        (as :func:`gridgeo.distribute.partition` does on a cluster).

    Returns
    -------
    GeoDataFrame
        A copy with ``code`` and ``parent`` as strings (``parent`` ``""`` at
        the top level) and ``level`` as a string.

    Raises
    ------
    SchemaError

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> g = gpd.GeoDataFrame(
    ...     {"code": ["350582108", "350582108201"], "name": ["内坑镇", "黎山村"],
    ...      "level": ["town", "village"], "parent": ["", "350582108"]},
    ...     geometry=[box(0, 0, 1, 1), box(0, 0, 1, 1)], crs=4490)
    >>> len(check(g))
    2
    """
    if kind not in LAYERS:
        raise ValueError(f"unknown layer kind {kind!r}: expected one of {list(LAYERS)}")
    name = name or kind
    if not hasattr(frame, "geometry"):
        raise SchemaError(name, kind, [Problem(f"expected a GeoDataFrame, got {type(frame).__name__}")])

    problems: list[Problem] = []
    missing = [c for c in LAYERS[kind] if c not in frame.columns]
    if missing:
        problems.append(Problem(f"missing column(s) {missing}; the frame has {list(frame.columns)}"))
    if frame.crs is None and kind != "roster":
        problems.append(Problem("no CRS: say what the coordinates are with .set_crs(...) or crs=..."))

    out = frame.copy()
    if kind in _GEOMETRY_TYPES:
        problems += _geometry_problems(out, kind)
    if kind == "grids" and {"code", "level", "parent"} <= set(frame.columns):
        out = normalise_codes(out)
        problems += _code_problems(out, scheme)
    if kind == "addresses":
        problems += _count_problems(out)
    if kind == "boundaries" and {"boundary_set", "boundary_id"} <= set(out.columns):
        problems += _boundary_problems(out)
    if kind == "roster" and set(LAYERS["roster"]) <= set(out.columns):
        problems += _roster_problems(out)
    if unique and kind in ID_COLUMNS and ID_COLUMNS[kind] in out.columns:
        problems += duplicate_ids(out[ID_COLUMNS[kind]])

    if problems:
        raise SchemaError(name, kind, problems)
    return out


ID_COLUMNS = {"stations": "station_id", "addresses": "addr_id", "events": "event_id"}
"""The id column of each point layer, unique in the layer."""


def duplicate_ids(ids: pd.Series) -> list[Problem]:
    """The problems of ids used by more than one row: the first ten such values (in the order they first
    come), each with every row (index label) that uses it; what :func:`check` reports.

    Examples
    --------
    >>> [str(p) for p in duplicate_ids(pd.Series(["a", "b", "a"], name="event_id"))]
    ["event_id 'a' is used by rows [0, 2]"]
    """
    column = ids.name
    problems = []
    for value in pd.unique(ids[ids.duplicated(keep=False)])[:10]:
        rows = list(ids.index[ids == value])
        problems.append(Problem(f"{column} {value!r} is used by rows {rows}", column=column))
    return problems


ROSTER_ROLES = {
    "网格长": "grid head",
    "专职网格员": "full-time grid worker",
    "兼职网格员": "part-time grid worker",
    "警格民警": "police officer, deputy grid head",
}
"""The roles of a grid's team (警网融合 puts a police officer beside the grid head as its
deputy), in the order a team is listed: Chinese value -> English."""

ROSTER_ROLE_ALIASES = {
    "网格长": "网格长", "grid head": "网格长", "head": "网格长",
    "专职网格员": "专职网格员", "专职": "专职网格员", "网格员": "专职网格员", "full-time grid worker": "专职网格员",
    "兼职网格员": "兼职网格员", "兼职": "兼职网格员", "part-time grid worker": "兼职网格员",
    "警格民警": "警格民警", "警格民警/副网格长": "警格民警", "副网格长（民警）": "警格民警", "副网格长": "警格民警",
    "民警": "警格民警", "社区民警": "警格民警", "police": "警格民警", "police officer, deputy grid head": "警格民警",
}
"""What offices write in a roster's role column (职务/岗位), and the role it means."""


def _roster_problems(frame) -> list[Problem]:
    """A roster's grid codes as exact text, its roles as :data:`ROSTER_ROLES` values, names present."""
    problems = []
    codes = frame["grid_code"].astype(object)
    frame["grid_code"] = codes.where(codes.notna(), "").map(_as_code_text).astype("str")
    roles = frame["role"].astype(object).where(frame["role"].notna(), "").map(lambda v: str(v).strip())
    known = roles.map(lambda v: ROSTER_ROLE_ALIASES.get(v, ROSTER_ROLE_ALIASES.get(v.lower())))
    for row in list(frame.index[known.isna()])[:10]:
        problems.append(Problem(f"role {roles[row]!r} is none of {list(ROSTER_ROLES)}: map it with "
                                f"--value role:{roles[row]}=<role>", row=row, column="role"))
    frame["role"] = known.fillna(roles).astype("str")
    for col in ("grid_code", "name"):
        values = frame[col].astype(object)
        empty = values.isna() | (values.astype(str).str.strip() == "")
        for row in list(frame.index[empty])[:10]:
            problems.append(Problem(f"{col} is empty: every person of a roster names a grid and a name",
                                    row=row, column=col))
    if "phone" in frame.columns:
        frame["phone"] = frame["phone"].astype(object).where(frame["phone"].notna(), "").map(_as_code_text) \
            .astype("str")
    return problems


def _boundary_problems(frame) -> list[Problem]:
    """Boundary ids as exact text (``"12"``, not ``12.0``), present, and unique within their set."""
    problems = []
    for col in ("boundary_set", "boundary_id"):
        values = frame[col].astype(object)
        frame[col] = values.where(values.notna(), "").map(_as_code_text).astype("str")
    for col in ("boundary_id",):  # a set's name is checked where it is given (the store's collections)
        for row in list(frame.index[frame[col] == ""])[:10]:
            problems.append(Problem(f"{col} is empty: every unit needs one", row=row, column=col))
    pairs = frame["boundary_set"] + "/" + frame["boundary_id"]
    for value in pd.unique(pairs[pairs.duplicated(keep=False) & (frame["boundary_id"] != "")])[:10]:
        rows = list(frame.index[pairs == value])
        problems.append(Problem(f"boundary_id {value.split('/', 1)[1]!r} is used by rows {rows}: ids are unique "
                                "within a set; merge those areas or renumber them", column="boundary_id"))
    return problems


def _geometry_problems(frame, kind) -> list[Problem]:
    geoms = frame.geometry.array
    types = shapely.get_type_id(geoms)
    names = np.array(["Point", "LineString", "LinearRing", "Polygon", "MultiPoint",
                      "MultiLineString", "MultiPolygon", "GeometryCollection"])
    allowed = _GEOMETRY_TYPES[kind]
    problems = []
    code_of = frame["code"] if "code" in frame.columns else None
    for pos in np.flatnonzero(types < 0):
        problems.append(Problem("geometry is missing", row=frame.index[pos],
                                code=None if code_of is None else code_of.iloc[pos]))
    ok_type = (types >= 0)
    bad_type = ok_type & ~np.isin(names[np.clip(types, 0, 7)], list(allowed))
    for pos in np.flatnonzero(bad_type):
        problems.append(Problem(f"geometry is a {names[types[pos]]}, expected {' or '.join(sorted(allowed))}",
                                row=frame.index[pos], code=None if code_of is None else code_of.iloc[pos]))
    empty = ok_type & ~bad_type & shapely.is_empty(geoms)
    for pos in np.flatnonzero(empty):
        problems.append(Problem("geometry is empty", row=frame.index[pos],
                                code=None if code_of is None else code_of.iloc[pos]))
    return problems


def normalise_codes(frame):
    """``code``, ``parent`` and ``level`` as text, in place: missing values become
    ``""`` and codes read as numbers (Excel, .dbf) lose their ``.0``.

    Returns the frame. :func:`check` calls it; :func:`gridgeo.validate`, which
    must report faulty rows rather than refuse them, calls it alone.
    """
    for col in ("code", "parent", "level"):
        column = frame[col]
        if isinstance(column.dtype, pd.StringDtype):  # text already: only the missing and the blanks to tidy
            frame[col] = column.fillna("").str.strip().astype("str")
            continue
        values = column.astype(object)
        values = values.where(values.notna(), "")
        frame[col] = values.map(_as_code_text).astype("str")
    return frame


def _as_code_text(value) -> str:
    # codes read from Excel or a .dbf may arrive as numbers: 350582108.0
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _code_problems(frame, scheme: CodeScheme) -> list[Problem]:
    problems = []
    codes = frame["code"]
    # (Python lists once: iterating the columns themselves costs a call per value)
    code_list, level_list, parent_list = codes.tolist(), frame["level"].tolist(), frame["parent"].tolist()
    known_levels = set(scheme.names)
    present_levels = set(level_list)
    code_set = set(code_list)
    level_of_code = dict(zip(code_list, level_list))

    for value in pd.unique(codes[codes.duplicated(keep=False)]):
        rows = list(frame.index[codes == value])
        problems.append(Problem(f"duplicate code, used by rows {rows}", code=value, column="code"))

    # a level's width and parent level, looked up once per level, not per row
    width_of = {lv: scheme.width(lv) for lv in known_levels}
    parent_of = {lv: scheme.parent_level(lv) for lv in known_levels}
    for row, code, level, parent in zip(frame.index.tolist(), code_list, level_list, parent_list):
        if level not in known_levels:
            problems.append(Problem(f"unknown level {level!r}: expected one of {list(scheme.names)}",
                                    row=row, code=code, column="level"))
            continue
        if not code or not code.isdigit():
            problems.append(Problem(f"code {code!r} is not a string of digits", row=row, column="code"))
            continue
        width = width_of[level]
        if len(code) != width:
            problems.append(Problem(f"a {level} code has {width} digits, this one has {len(code)}",
                                    row=row, code=code, column="code"))
            continue
        if scheme.root and not code.startswith(scheme.root):
            problems.append(Problem(f"code does not start with the county code {scheme.root}",
                                    row=row, code=code, column="code"))
        parent_level = parent_of[level]
        if parent_level is None:
            if parent and parent != code[: scheme.root_digits]:
                problems.append(Problem(f"a {level} unit has no parent in the hierarchy, got parent {parent!r}",
                                        row=row, code=code, column="parent"))
            continue
        if not parent:
            problems.append(Problem(f"a {level} unit needs a parent ({parent_level})",
                                    row=row, code=code, column="parent"))
            continue
        actual = level_of_code.get(parent) or scheme.level_of(parent)
        if actual != parent_level:
            problems.append(Problem(
                f"level out of order: the parent of a {level} unit must be a {parent_level}, "
                f"but {parent} is {'a ' + actual if actual else 'no known level'}",
                row=row, code=code, column="parent"))
            continue
        if not code.startswith(parent):
            problems.append(Problem(f"code prefix is not its parent's code {parent}",
                                    row=row, code=code, column="code"))
        if parent_level in present_levels and parent not in code_set:
            problems.append(Problem(f"parent {parent} does not exist", row=row, code=code, column="parent"))
    return problems


def _count_problems(frame) -> list[Problem]:
    problems = []
    for col in COUNT_COLUMNS:
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna() | (values < 0)
        for row in list(frame.index[bad])[:10]:
            problems.append(Problem(f"{col} must be a non-negative number, got {frame.at[row, col]!r}",
                                    row=row, column=col))
    return problems


# --- numbering ----------------------------------------------------------------


def reading_order(geoms, *, row_height: float | None = None) -> np.ndarray:
    """Rank units north to south in rows, west to east within a row.

    This is the order in which published schemes number grids (Beijing's
    unit grids, for example). Rows are bands of ``row_height`` (default: the
    median width of a unit, the square root of its area) taken from the
    northernmost unit down; the order is stable for a given geometry.

    Parameters
    ----------
    geoms : array of geometries in a projected (metric) CRS
    row_height : float, optional

    Returns
    -------
    ndarray of int
        ``order[i]`` is the 0-based rank of ``geoms[i]``.

    Examples
    --------
    >>> from shapely import box
    >>> reading_order([box(1, 0, 2, 1), box(0, 0, 1, 1), box(0, 1, 1, 2)]).tolist()
    [2, 1, 0]
    """
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0, dtype=int)
    pts = shapely.point_on_surface(geoms)
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    if row_height is None:
        row_height = float(np.median(np.sqrt(shapely.area(geoms)))) or 1.0
    by_y = np.argsort(-y, kind="stable")
    row = np.empty(len(geoms), dtype=int)
    current, top = 0, y[by_y[0]]
    for i in by_y:
        if top - y[i] > row_height / 2:
            current, top = current + 1, y[i]
        row[i] = current
    order = np.lexsort((x, row))
    rank = np.empty(len(geoms), dtype=int)
    rank[order] = np.arange(len(geoms))
    return rank


def number_units(geoms, parent: str, level: str, *, scheme: CodeScheme = DEFAULT_SCHEME,
                 start: int = 1, row_height: float | None = None) -> list[str]:
    """Codes for new units of ``level`` inside ``parent``, in reading order.

    Parameters
    ----------
    geoms : array of geometries in a projected (metric) CRS
    parent : str
        The parent's code.
    level : str
    scheme : CodeScheme
    start : int
        The first sequence number.

    Examples
    --------
    >>> from shapely import box
    >>> number_units([box(1, 0, 2, 1), box(0, 0, 1, 1)], "350582108201", "grid1")
    ['35058210820102', '35058210820101']
    """
    rank = reading_order(geoms, row_height=row_height)
    return [scheme.make_code(parent, level, start + int(r)) for r in rank]


def level_names(frame, scheme: CodeScheme = DEFAULT_SCHEME, levels: Iterable[str] | None = None) -> list[str]:
    """The levels present in a grids frame (or the requested ones), top first."""
    present = set(frame["level"]) if levels is None else set(levels)
    unknown = present - set(scheme.names)
    if unknown:
        raise KeyError(f"unknown level(s) {sorted(unknown)}: expected {list(scheme.names)}")
    return [lv for lv in scheme.names if lv in present]
