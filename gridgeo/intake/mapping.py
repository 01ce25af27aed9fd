"""How a file's columns and values map to gridgeo's schema, as an editable record.

A :class:`Mapping` says which layer a file holds, which of its columns is
which schema column, how its values translate (二级网格 -> grid2), where its
coordinates are and in which system. :func:`gridgeo.intake.inspect` detects
one from the file and any overrides; a dry run can write it to JSON
(:meth:`Mapping.write`) for the office to check and reuse on the next load
(:meth:`Mapping.read`), so that a monthly file goes in the same way every
month.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from gridgeo.intake import aliases
from gridgeo.schema import LAYERS, CodeScheme

__all__ = ["Mapping", "KINDS"]

KINDS = tuple(LAYERS)
"""The layers a file can hold: grids, stations, addresses, events, roads."""


@dataclass
class Mapping:
    """What a file holds and how it maps to the schema.

    Parameters
    ----------
    kind : str, optional
        The layer: ``grids``, ``stations``, ``addresses``, ``events`` or
        ``roads``.
    level : str, optional
        For grids: the one level every unit of the file is at, when the file
        has no level column (a file of level-2 grids).
    columns : dict
        ``{schema column: file column}``, e.g. ``{"code": "网格编码"}``.
    values : dict
        ``{schema column: {file value: schema value}}``, e.g.
        ``{"level": {"二级": "grid2"}}``: overrides of the built-in labels.
    crs : str, optional
        The coordinate system (``wgs84``, ``cgcs2000``, ``gcj02``, ``bd09``,
        ``EPSG:4527`` ...), when the file does not say or says wrong.
    lon, lat, location : str, optional
        The coordinate columns of a table: two columns, or one ``"lng,lat"``.
    layer : str, optional
        The layer of a GeoPackage or zip, or the sheet of a workbook.

    Examples
    --------
    >>> m = Mapping(kind="grids", columns={"code": "网格编码"}, values={"level": {"二级": "grid2"}})
    >>> Mapping.from_dict(m.to_dict()) == m
    True
    >>> Mapping.parse_overrides(["code=网格编码", "name = 名称"])
    {'code': '网格编码', 'name': '名称'}
    """

    kind: str | None = None
    level: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    crs: str | None = None
    lon: str | None = None
    lat: str | None = None
    location: str | None = None
    layer: str | None = None

    def __post_init__(self):
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r}: a file holds one of {', '.join(KINDS)}")
        for target in self.columns:
            if self.kind is not None and target not in targets(self.kind):
                raise ValueError(f"columns: {target!r} is not a column of the {self.kind} layer; its columns are "
                                 f"{', '.join(targets(self.kind))}")

    # --- JSON -----------------------------------------------------------------------

    def to_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}, [])}

    @classmethod
    def from_dict(cls, data: dict) -> "Mapping":
        if not isinstance(data, dict):
            raise ValueError(f"a mapping is a JSON object, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"a mapping has no field {', '.join(map(repr, unknown))}; its fields are "
                             f"{', '.join(sorted(known))}")
        data = dict(data)
        data["columns"] = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
        data["values"] = {str(k): {str(a): str(b) for a, b in (v or {}).items()}
                          for k, v in (data.get("values") or {}).items()}
        return cls(**data)

    def write(self, path) -> Path:
        """Write the mapping as JSON (UTF-8, readable Chinese), atomically."""
        path = Path(path)
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n"
        staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        staged.write_text(text, encoding="utf-8")
        os.replace(staged, path)
        return path

    @classmethod
    def read(cls, path) -> "Mapping":
        """A mapping written by :meth:`write` (or by hand)."""
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8-sig")))
        except FileNotFoundError:
            raise FileNotFoundError(f"mapping file {path} does not exist") from None
        except (json.JSONDecodeError, ValueError, TypeError) as exc:
            raise ValueError(f"mapping file {path} is not a gridgeo mapping: {exc}") from None

    def merged(self, other: "Mapping | None") -> "Mapping":
        """This mapping with ``other``'s fields taking precedence where set."""
        if other is None:
            return self
        out = dataclasses.replace(self, columns=dict(self.columns), values={k: dict(v) for k, v in self.values.items()})
        for f in dataclasses.fields(self):
            value = getattr(other, f.name)
            if f.name == "columns":
                out.columns.update(value)
            elif f.name == "values":
                for column, table in value.items():
                    out.values.setdefault(column, {}).update(table)
            elif value is not None:
                setattr(out, f.name, value)
        return out

    @staticmethod
    def parse_overrides(items) -> dict[str, str]:
        """``["code=网格编码", ...]`` (the command line's ``--map``) as a dict."""
        out = {}
        for item in items or ():
            target, sep, source = str(item).partition("=")
            if not sep or not target.strip() or not source.strip():
                raise ValueError(f"--map {item!r}: write it as schema_column=file_column, e.g. code=网格编码")
            out[target.strip()] = source.strip()
        return out

    @staticmethod
    def parse_values(items) -> dict[str, dict[str, str]]:
        """``["level:二级=grid2", ...]`` (the command line's ``--value``) as a dict."""
        out: dict[str, dict[str, str]] = {}
        for item in items or ():
            head, sep, value = str(item).rpartition("=")
            column, colon, source = head.partition(":")
            if not sep or not colon or not column.strip() or not source.strip() or not value.strip():
                raise ValueError(f"--value {item!r}: write it as column:file_value=value, e.g. level:二级=grid2")
            out.setdefault(column.strip(), {})[source.strip()] = value.strip()
        return out


def targets(kind: str) -> tuple[str, ...]:
    """The schema columns a file of ``kind`` can map to: the required ones, then the optional ones.

    Examples
    --------
    >>> targets("stations")
    ('station_id', 'name', 'kind', 'grid_code')
    """
    return tuple(dict.fromkeys([*LAYERS[kind], *aliases.COLUMNS.get(kind, {})]))


# --- detection ------------------------------------------------------------------------


def detect_columns(columns, kind: str, given: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """``{schema column: file column}`` for a file's columns.

    The ``given`` pairs win; every other schema column of the layer takes the
    first file column whose normalised name is one of its aliases
    (:data:`aliases.COLUMNS`), each file column at most once.

    Returns
    -------
    mapping : dict
    missing_given : list of str
        Given file columns the file does not have.

    Examples
    --------
    >>> detect_columns(["网格编码", "网格名称", "上级编码", "网格等级", "面积"], "grids", {})[0]
    {'code': '网格编码', 'name': '网格名称', 'parent': '上级编码', 'level': '网格等级'}
    >>> detect_columns(["编码", "名称"], "grids", {"name": "名称", "code": "编码"})[0]
    {'name': '名称', 'code': '编码'}
    >>> detect_columns(["单元网格编", "名称"], "grids", {})[0]  # a shapefile's 10-byte field name
    {'name': '名称', 'code': '单元网格编'}
    """
    columns = [str(c) for c in columns]
    out = {t: s for t, s in given.items() if s in columns}
    missing = [s for s in given.values() if s not in columns]
    used = set(out.values())
    by_normal: dict[str, list[str]] = {}
    for c in columns:
        by_normal.setdefault(aliases.normal(c), []).append(c)
    for target, names in aliases.COLUMNS[kind].items():
        if target in out:
            continue
        for name in names:
            found = [c for c in by_normal.get(aliases.normal(name), []) if c not in used]
            if found:
                out[target] = found[0]
                used.add(found[0])
                break
    # a .dbf keeps 10 bytes of a field name: 单元网格编码 comes back as 单元网格编
    for target, names in aliases.COLUMNS[kind].items():
        if target in out:
            continue
        cut = [c for c in columns if c not in used and len(aliases.normal(c)) >= 4 and any(
            aliases.normal(n).startswith(aliases.normal(c)) and len(aliases.normal(n)) > len(aliases.normal(c))
            and len(str(c).encode("gbk", "replace")) >= 9 for n in names)]
        if len(cut) == 1:
            out[target] = cut[0]
            used.add(cut[0])
    return out, missing


_GENERIC = {aliases.normal(w) for w in ("id", "编号", "编码", "代码", "名称", "名字", "name", "code", "类型", "类别",
                                        "type", "kind", "bm", "dm", "等级", "grid", "gridcode", "网格编码",
                                        "所属网格", "所属网格编码")}


def kind_from_name(name: str) -> str | None:
    """The layer a file's name says it holds, or None.

    Examples
    --------
    >>> kind_from_name("晋江市网格服务站点.xlsx"), kind_from_name("grid2.geojson"), kind_from_name("data.csv")
    ('stations', 'grids', None)
    """
    stem = aliases.normal(Path(str(name)).stem)
    if stem in KINDS:
        return stem
    for kind, words in aliases.FILE_KINDS:
        if any(aliases.normal(w) in stem for w in words):
            return kind
    return None


def level_from_name(name: str, scheme: CodeScheme) -> str | None:
    """The grid level a file's name says, or None: its stem is a level's name
    (``grid2``), or holds one of the level's labels of two characters or more
    (``内坑镇二级网格.shp``), the longest label winning.

    Examples
    --------
    >>> from gridgeo.schema import DEFAULT_SCHEME
    >>> level_from_name("grid2.geojson", DEFAULT_SCHEME), level_from_name("内坑镇三级网格.shp", DEFAULT_SCHEME)
    ('grid2', 'grid3')
    """
    stem = aliases.normal(Path(str(name)).stem)
    labels = aliases.level_labels(scheme)
    if stem in scheme.names:
        return stem
    found = [(len(label), level) for label, level in labels.items()
             if len(label) >= 2 and not label.isascii() and label in stem]
    if not found:
        return None
    found.sort(reverse=True)
    return found[0][1]


def kind_from_columns(columns, geometry_type: str | None) -> tuple[str | None, dict[str, int]]:
    """The layer a file's columns and geometry say it holds, with each kind's score.

    Polygons are grids and lines roads; points (or a table) are whichever of
    stations, addresses and events has the most of its own columns (names
    shared by several layers, like 编号 or 名称, do not count). None when
    two kinds tie.

    Examples
    --------
    >>> kind_from_columns(["事件编号", "事件类型", "上报时间"], "Point")[0]
    'events'
    >>> kind_from_columns(["站点编号", "名称", "类型", "经度", "纬度"], None)[0]
    'stations'
    """
    geometry_type = (geometry_type or "").replace("Multi", "")
    if geometry_type == "Polygon":
        return "grids", {}
    if geometry_type == "LineString":
        return "roads", {}
    scores = {}
    present = {aliases.normal(c) for c in columns}
    for kind in ("stations", "addresses", "events"):
        score = 0
        for target, names in aliases.COLUMNS[kind].items():
            if any(aliases.normal(n) in present and aliases.normal(n) not in _GENERIC for n in names):
                score += 1
        scores[kind] = score
    best = max(scores.values())
    winners = [k for k, v in scores.items() if v == best]
    return (winners[0] if best > 0 and len(winners) == 1 else None), scores
