"""CQL2 filters (OGC API - Features Part 3) as parameterised SQL for the store.

pygeofilter parses a filter (``cql2-text`` or ``cql2-json``) into its AST
(cql2-text with its grammar in a parser of our own that mends AND/OR precedence
and ``NOT (...)``, see :func:`_text_parser`); this module walks that AST and
builds a WHERE clause with ``?`` placeholders,
one value per placeholder, never a value pasted into the SQL. Properties are
the columns of the layer, quoted as identifiers only after they are found
among them; values become values of the column's kind as ``where=`` makes
them. What the two backends write differently (a case-sensitive LIKE, a
spatial predicate on their own index) is asked of the backend.

The subset (and the OGC conformance classes it makes up, :data:`CONFORMANCE`):

- comparisons ``=``, ``<>``, ``<``, ``<=``, ``>``, ``>=`` of a property with a
  literal (either side) or with another property of a comparable kind;
- ``LIKE`` (case-sensitive; ``%`` any characters, ``_`` one, ``\\`` escapes
  the next), ``IN (...)``, ``BETWEEN ... AND ...``, ``IS NULL``, each with
  ``NOT``;
- ``AND``, ``OR``, ``NOT`` and parentheses (AND binds tighter than OR; a
  comparison with a missing value is neither true nor false, as in SQL);
- ``S_INTERSECTS(geometry, <literal>)`` with a WKT (or GeoJSON) geometry or
  ``BBOX(minx, miny, maxx, maxy)``, longitude/latitude (CRS84, EPSG:4326 and
  EPSG:4490 taken alike, as ``bbox=`` takes them);
- literals: text, numbers, booleans, ``DATE('2025-03-01')`` and
  ``TIMESTAMP('2025-03-01T08:00:00Z')`` (a time without a zone is UTC).

Everything else (functions such as CASEI, arithmetic, temporal, array and
other spatial predicates, properties the layer lacks, a malformed filter) is
refused with a :class:`~gridgeo.store.errors.FilterError` that names it.

Limits: pygeofilter's cql2-text takes no quote inside a string (``'it''s'``;
cql2-json takes any text), and property names of at least two characters
(others in double quotes). A filter has at most :data:`MAX_PREDICATES`
conditions, :data:`MAX_VALUES` values and :data:`MAX_DEPTH` levels of nesting.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
from collections.abc import Mapping

import shapely

from gridgeo.store.errors import FilterError, StoreError

LANGS = ("cql2-text", "cql2-json")

CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-json",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
)
"""The conformance classes the store's filters implement, for an API's ``/conformance``."""

SUPPORTED = ("=, <>, <, <=, >, >=, LIKE, IN, BETWEEN, IS NULL, AND, OR, NOT and S_INTERSECTS, "
             "with text, number, boolean, DATE('...'), TIMESTAMP('...'), WKT and BBOX(...) literals")

GEOMETRY_PROPERTIES = ("geometry", "geom")
"""The names a filter may give the layer's geometry."""

MAX_PREDICATES = 200
MAX_DEPTH = 50
MAX_VALUES = 5000
"""Limits that keep a filter within what both databases take (SQLite's expression depth and
number of parameters) and a request's work bounded."""

_FLIP = {"=": "=", "<>": "<>", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_NUMBERS = ("integer", "real")
_LONLAT_CRS = ("CRS84", "4326", "4490")
_GEOJSON_TYPES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
                  "GeometryCollection")


# --- parsing --------------------------------------------------------------------------


def parse(filter, lang: str | None = None):  # noqa: A002 - the OGC parameter's name
    """The pygeofilter AST of a CQL2 filter.

    Parameters
    ----------
    filter : str or mapping
        CQL2 text (``"parent = '350582106201'"``), or CQL2 JSON as a mapping
        or as JSON text.
    lang : {"cql2-text", "cql2-json"}, optional
        Default: ``cql2-json`` for a mapping, ``cql2-text`` for a string.

    Raises
    ------
    FilterError
        An unknown language, or a filter that does not parse, saying where.

    Examples
    --------
    >>> parse("parent = '350582106201'")
    Equal(lhs=ATTRIBUTE parent, rhs='350582106201')
    >>> parse({"op": "=", "args": [{"property": "parent"}, "350582106201"]})
    Equal(lhs=ATTRIBUTE parent, rhs='350582106201')
    """
    require()
    if lang is None:
        lang = "cql2-json" if isinstance(filter, Mapping) else "cql2-text"
    if lang not in LANGS:
        raise FilterError(f"filter-lang {lang!r} is not supported: use 'cql2-text' or 'cql2-json'")
    if lang == "cql2-text":
        if not isinstance(filter, str):
            raise FilterError(f"a cql2-text filter is a string, got {type(filter).__name__}: give "
                              "filter_lang='cql2-json' for a CQL2 JSON filter")
        return _parse_text(filter)
    return _parse_json(filter)


def _parse_text(text: str):
    if not text.strip():
        raise FilterError("the filter is empty: give a condition such as parent = '350582106201'")
    from lark.exceptions import UnexpectedInput

    try:
        return _text_parser().parse(text)
    except UnexpectedInput as exc:
        line, column = getattr(exc, "line", None), getattr(exc, "column", None)
        pos = getattr(exc, "pos_in_stream", None)
        at = ""
        if isinstance(column, int) and column > 0:
            at = f" at line {line} column {column}" if isinstance(line, int) and line > 1 else f" at column {column}"
        near = text[pos:][:30] if isinstance(pos, int) and 0 <= pos < len(text) else ""
        hint = (" (a quote inside a string, '', is not supported in cql2-text: match it with _ in a LIKE, "
                "or send the filter as cql2-json)" if "''" in text else "")
        raise FilterError(f"the cql2-text filter {_short(text)} cannot be parsed{at}"
                          f"{f' near {near!r}' if near else ''}{hint}: expected a condition such as "
                          "parent = '350582106201' or households >= 10 AND name LIKE '%村'") from None
    except FilterError:
        raise
    except Exception as exc:  # noqa: BLE001 - pygeofilter's literal parsing: what it raises is the input's fault
        raise FilterError(f"the cql2-text filter {_short(text)} cannot be parsed: {exc}") from None


def _parse_json(data):
    from pygeofilter.parsers.cql2_json import parse as parse_json

    if isinstance(data, (bytes, bytearray)):
        data = data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            raise FilterError(f"the cql2-json filter is not JSON ({exc.msg} at line {exc.lineno} "
                              f"column {exc.colno})") from None
    if not isinstance(data, Mapping):
        raise FilterError(f"a cql2-json filter is a JSON object such as {{\"op\": \"=\", \"args\": "
                          f"[{{\"property\": \"parent\"}}, \"350582106201\"]}}, got {type(data).__name__}")
    try:
        return parse_json(_json_literals(data, 0))
    except FilterError:
        raise
    except RecursionError:
        raise FilterError(f"the cql2-json filter is nested more than {MAX_DEPTH} levels deep") from None
    except Exception as exc:  # noqa: BLE001 - pygeofilter's walker raises bare Exception, KeyError...
        detail = f"missing member {exc}" if isinstance(exc, KeyError) else str(exc)
        detail = detail if len(detail) <= 200 else detail[:200] + "…"
        raise FilterError(f"the cql2-json filter cannot be read: {detail}; expected objects "
                          "such as {\"op\": \"=\", \"args\": [{\"property\": \"parent\"}, \"350582106201\"]}") \
            from None


def _json_literals(node, depth):
    """CQL2 JSON with its date, timestamp and bbox literals read strictly (pygeofilter
    reads timestamps with dateparser, which takes "yesterday", and a bbox as an envelope
    in another axis order); everything else as it came."""
    if depth > 4 * MAX_DEPTH:
        raise FilterError(f"the cql2-json filter is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, list):
        return [_json_literals(item, depth + 1) for item in node]
    if not isinstance(node, Mapping):
        return node
    if set(node) == {"timestamp"}:
        return _timestamp(node["timestamp"])
    if set(node) == {"date"}:
        return _date(node["date"])
    if "bbox" in node and "coordinates" not in node and "op" not in node:
        from pygeofilter import values

        return values.Geometry(shapely.geometry.mapping(_box(node["bbox"])))
    if node.get("type") in _GEOJSON_TYPES and ("coordinates" in node or "geometries" in node):
        from pygeofilter import values

        return values.Geometry(dict(node))  # a GeometryCollection too, which pygeofilter misses
    if "property" in node and not isinstance(node["property"], str):
        raise FilterError(f"a property is named by a string, got {node['property']!r}")
    out = {key: _json_literals(value, depth + 1) for key, value in node.items()}
    args = out.get("args")
    if out.get("op") == "between" and isinstance(args, list) and len(args) == 3:
        out["args"] = [args[0], args[1:]]  # CQL2 1.0's three arguments, in the form pygeofilter reads
    return out


@functools.lru_cache(maxsize=1)
def _text_parser():
    """pygeofilter's cql2-text grammar and transformer, in a parser of our own that mends
    what pygeofilter 0.4 gets wrong:

    - its grammar gives AND and OR the same precedence, so ``a OR b AND c`` would be read
      ``(a OR b) AND c``; CQL2 (like SQL) binds AND tighter: ``a OR (b AND c)``;
    - it takes no ``NOT (a AND b)``, only ``NOT`` before one predicate;
    - its module-level parser is built with ``debug=True`` and prints a parser dump to
      stdout on every literal it cannot read (and its WKT reader prints every ``SRID=``);
    - it reads times with dateparser (which takes "yesterday"); here they are ISO 8601.

    The condition rules are replaced (:data:`_CONDITION_RULES`); the rest of the grammar
    (predicates, literals, WKT) and the AST are pygeofilter's."""
    import os
    import re

    from lark import Lark, v_args
    from pygeofilter.parsers.cql2_text import parser as module

    folder = os.path.dirname(module.__file__)
    with open(os.path.join(folder, "grammar.lark"), encoding="utf-8") as f:
        grammar = f.read()
    rules = re.search(r"\?start: condition\n.*?(?=\n\?predicate:)", grammar, re.DOTALL)
    if rules is not None:
        grammar = grammar[:rules.start()] + _CONDITION_RULES + grammar[rules.end():]

    @v_args(inline=True)
    class Transformer(module.CQLTransformer):
        def DATETIME(self, token):  # noqa: N802 - lark's name for the terminal
            return _timestamp(str(token))

        def DATE(self, token):  # noqa: N802
            return _date(str(token))

        def wkt__geometry_with_srid(self, srid, geometry):  # pygeofilter's prints the geometry to stdout
            return {**geometry, "crs": {"type": "name", "properties": {"name": f"urn:ogc:def:crs:EPSG::{srid}"}}}

    return Lark(grammar, parser="lalr", maybe_placeholders=False, transformer=Transformer(),
                import_paths=[os.path.dirname(folder)])


_CONDITION_RULES = """?start: condition

?condition: conjunction
          | condition "OR"i conjunction                 -> or_

?conjunction: condition_1
            | conjunction "AND"i condition_1            -> and_

?condition_1: predicate
            | "NOT"i predicate                          -> not_
            | "NOT"i "(" condition ")"                  -> not_
            | "(" condition ")"
"""
"""CQL2's boolean expressions (booleanTerm, booleanFactor): OR of ANDs of [NOT] primaries."""


def _timestamp(text):
    try:
        return _dt.datetime.fromisoformat(str(text))
    except ValueError:
        raise FilterError(f"TIMESTAMP({text!r}) is not an ISO 8601 time such as "
                          "'2025-03-01T08:00:00Z'") from None


def _date(text):
    try:
        return _dt.date.fromisoformat(str(text))
    except ValueError:
        raise FilterError(f"DATE({text!r}) is not an ISO 8601 date such as '2025-03-01'") from None


def _box(numbers):
    try:
        values = [float(v) for v in numbers]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (4, 6):
        raise FilterError(f"a BBOX is 4 numbers (minx, miny, maxx, maxy) or 6, got {numbers!r}")
    minx, miny, maxx, maxy = values if len(values) == 4 else values[:2] + values[3:5]
    if not all(math.isfinite(v) for v in values) or minx > maxx or miny > maxy:
        raise FilterError(f"a BBOX is minx, miny, maxx, maxy with minx <= maxx and miny <= maxy, got {numbers!r}")
    return shapely.box(minx, miny, maxx, maxy)


def _short(text, n=120):
    text = str(text)
    return repr(text if len(text) <= n else text[:n] + "…")


# --- translating ----------------------------------------------------------------------


def where(node, *, layer: str, columns: Mapping[str, str], value, intersects, like) -> tuple[str, list]:
    """A parsed filter as (SQL condition with ``?`` placeholders, its values).

    Parameters
    ----------
    node
        What :func:`parse` returned.
    layer : str
        The layer's name, for messages.
    columns : mapping of str -> str
        The layer's columns and their kinds (``text``, ``integer`` ...).
    value : callable
        ``value(kind, column, literal)``: the literal as the backend stores the
        column's kind; raises ValueError for a literal of another kind.
    intersects : callable
        ``intersects(geometry)``: (SQL, params) true where the row's geometry
        intersects a shapely geometry (the backend's spatial index and predicate).
    like : callable
        ``like(column_sql, parts)``: (SQL, params) of a case-sensitive match,
        ``parts`` a list of ``("text", s)``, ``("any", "")``, ``("one", "")``.

    Examples
    --------
    >>> node = parse("households >= 3 AND NOT addr_id IN ('1', '2')")
    >>> where(node, layer="addresses", columns={"addr_id": "text", "households": "integer"},
    ...       value=lambda kind, column, v: v, intersects=None, like=None)
    ('(("households" >= ?) AND (NOT ("addr_id" IN (?, ?))))', [3, '1', '2'])
    """
    return _Translator(layer, columns, value, intersects, like).condition(node, 0)


class _Translator:
    def __init__(self, layer, columns, value, intersects, like):
        self.layer, self.columns = layer, dict(columns)
        self.value, self.intersects, self.like = value, intersects, like
        self.predicates = 0
        self.values = 0

    # conditions

    def condition(self, node, depth):
        from pygeofilter import ast

        if depth > MAX_DEPTH:
            raise FilterError(f"the filter is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, (ast.And, ast.Or)):
            parts = _chain(node)
            sqls, params = [], []
            for part in parts:
                sql, p = self.condition(part, depth + 1)
                sqls.append(sql)
                params += p
            return "(" + f" {node.op.value} ".join(sqls) + ")", params
        if isinstance(node, ast.Not):
            sql, params = self.condition(node.sub_node, depth + 1)
            return f"(NOT {sql})", params
        self.predicates += 1
        if self.predicates > MAX_PREDICATES:
            raise FilterError(f"the filter has more than {MAX_PREDICATES} conditions: split the query")
        handler = _handlers().get(type(node))
        if handler is None:
            raise FilterError(f"{_describe(node)} is not supported in a filter: the store supports {SUPPORTED}")
        return handler(self, node)

    def comparison(self, node):
        from pygeofilter import ast

        op = node.op.value
        left, right = self.operand(node.lhs, op), self.operand(node.rhs, op)
        if left is None and right is None:
            raise FilterError(f"{_text(node.lhs)} {op} {_text(node.rhs)} compares two values: one side of "
                              "a comparison must be a property of the layer")
        if left is not None and right is not None:
            (a, ka), (b, kb) = left, right
            if not (ka == kb or (ka in _NUMBERS and kb in _NUMBERS)):
                raise FilterError(f"{a} ({ka}) {op} {b} ({kb}) compares properties of different kinds")
            return f"({_q(a)} {op} {_q(b)})", []
        if left is None:
            (column, kind), literal, op = right, node.lhs, _FLIP[op]
        else:
            (column, kind), literal = left, node.rhs
        assert not isinstance(literal, ast.Node)
        return f"({_q(column)} {op} ?)", [self.literal(kind, column, literal, op)]

    def between(self, node):
        column, kind = self.property(node.lhs, "BETWEEN")
        low = self.literal(kind, column, self.scalar(node.low, "BETWEEN"), "BETWEEN")
        high = self.literal(kind, column, self.scalar(node.high, "BETWEEN"), "BETWEEN")
        return f"({_q(column)} {'NOT ' if node.not_ else ''}BETWEEN ? AND ?)", [low, high]

    def in_(self, node):
        column, kind = self.property(node.lhs, "IN")
        items = node.sub_nodes
        if not isinstance(items, list):
            raise FilterError(f"{column} IN takes a list of values, got {_text(items)}")
        if not items:
            raise FilterError(f"{column} IN () lists no values: give at least one")
        values = [self.literal(kind, column, self.scalar(item, "IN"), "IN") for item in items]
        marks = ", ".join("?" * len(values))
        return f"({_q(column)} {'NOT ' if node.not_ else ''}IN ({marks}))", values

    def is_null(self, node):
        from pygeofilter import ast

        if isinstance(node.lhs, ast.Attribute) and node.lhs.name in GEOMETRY_PROPERTIES:
            column = "geom"
        else:
            column, _ = self.property(node.lhs, "IS NULL")
        return f"({_q(column)} IS {'NOT ' if node.not_ else ''}NULL)", []

    def like_(self, node):
        column, kind = self.property(node.lhs, "LIKE")
        if kind != "text":
            raise FilterError(f"LIKE matches text, and {column!r} of the {self.layer} layer is {kind}: "
                              f"compare it with =, <, >, BETWEEN or IN")
        if node.nocase:
            raise FilterError("ILIKE (a case-insensitive LIKE) is not supported: LIKE is case-sensitive")
        if not isinstance(node.pattern, str):
            raise FilterError(f"the pattern of {column} LIKE ... must be a text literal such as '%村', "
                              f"got {_text(node.pattern)}")
        self.count_values(1)
        sql, params = self.like(_q(column), like_parts(node.pattern))
        return (f"(NOT {sql})" if node.not_ else sql), params

    def spatial(self, node):
        from pygeofilter import ast

        sides = [node.lhs, node.rhs]
        named = [isinstance(s, ast.Attribute) for s in sides]
        if named.count(True) != 1:
            raise FilterError("S_INTERSECTS compares the layer's geometry with a geometry literal, as in "
                              "S_INTERSECTS(geometry, BBOX(118.45, 24.76, 118.48, 24.79))")
        attribute, literal = (sides[0], sides[1]) if named[0] else (sides[1], sides[0])
        self.geometry_property(attribute)
        return self.intersecting(geometry_literal(literal))

    def bbox(self, node):
        from pygeofilter import ast

        if not isinstance(node.lhs, ast.Attribute):
            raise FilterError("BBOX(geometry, minx, miny, maxx, maxy) takes the geometry property first")
        self.geometry_property(node.lhs)
        _check_crs(node.crs)
        return self.intersecting(_box([node.minx, node.miny, node.maxx, node.maxy]))

    def intersecting(self, geometry):
        parts = _parts(geometry)
        if not parts:
            return "(1 = 0)", []  # an empty geometry intersects nothing
        self.count_values(len(parts))
        sqls, params = [], []
        for part in parts:
            sql, p = self.intersects(part)
            sqls.append(sql)
            params += p
        return ("(" + " OR ".join(sqls) + ")" if len(sqls) > 1 else sqls[0]), params

    # operands

    def operand(self, node, op):
        """(column, kind) for a property, None for a literal; refuses the rest."""
        from pygeofilter import ast

        if isinstance(node, ast.Attribute):
            return self.property(node, op)
        self.scalar(node, op)
        return None

    def scalar(self, node, op):
        from pygeofilter import ast, values

        if isinstance(node, ast.Function):
            name = "CASEI" if node.name == "lower" else node.name.upper()
            raise FilterError(f"functions ({name}) are not supported in a filter: compare a property "
                              f"with a value; the store supports {SUPPORTED}")
        if isinstance(node, ast.Arithmetic):
            raise FilterError(f"arithmetic ({node.op.value}) is not supported in a filter: compare a property "
                              "with a value")
        if isinstance(node, ast.Attribute):
            raise FilterError(f"{op} takes values here, not the property {node.name!r}")
        if isinstance(node, (values.Geometry, values.Envelope)):
            raise FilterError(f"a geometry is compared with S_INTERSECTS, not {op}")
        if isinstance(node, (values.Interval, _dt.timedelta, _dt.time)):
            raise FilterError(f"intervals and durations are not supported: compare a time with {op} "
                              "TIMESTAMP('...') or use BETWEEN")
        if isinstance(node, (list, tuple)):
            raise FilterError(f"a list of values is not a value for {op}: use IN (...)")
        if isinstance(node, ast.Node) or not isinstance(node, (str, bool, int, float, _dt.date)):
            raise FilterError(f"{_describe(node)} is not a value {op} takes: give text, a number, true/false, "
                              "DATE('...') or TIMESTAMP('...')")
        return node

    def property(self, node, op):
        from pygeofilter import ast

        if not isinstance(node, ast.Attribute):
            self.scalar(node, op)
            raise FilterError(f"{op} needs a property of the layer on its left, got {_text(node)}")
        name = node.name
        if name in self.columns:
            return name, self.columns[name]
        if name in GEOMETRY_PROPERTIES:
            raise FilterError(f"the geometry is filtered with S_INTERSECTS, not {op}")
        raise FilterError(f"the {self.layer} layer has no property {name!r}: filter on "
                          f"{', '.join(map(repr, self.columns))} (or the geometry with S_INTERSECTS)")

    def geometry_property(self, node):
        if node.name not in GEOMETRY_PROPERTIES:
            if node.name in self.columns:
                raise FilterError(f"S_INTERSECTS takes the geometry, and {node.name!r} is a "
                                  f"{self.columns[node.name]} property: write S_INTERSECTS(geometry, ...)")
            raise FilterError(f"the {self.layer} layer has no geometry property {node.name!r}: write "
                              "S_INTERSECTS(geometry, ...)")

    def literal(self, kind, column, literal, op):
        """A literal as the value the backend compares ``column`` with."""
        self.count_values(1)
        if isinstance(literal, _dt.datetime):
            if kind == "date":
                raise FilterError(f"{column!r} of the {self.layer} layer is a date: compare it with "
                                  "DATE('2025-03-01'), not a TIMESTAMP")
            if literal.utcoffset() is not None:
                literal = literal.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        if kind == "integer" and isinstance(literal, float) and not isinstance(literal, bool) \
                and math.isfinite(literal) and not literal.is_integer():
            return literal  # households > 2.5: compared as a number, not rounded
        if isinstance(literal, float) and not math.isfinite(literal):
            raise FilterError(f"{column} {op} {literal}: give a finite number")
        try:
            return self.value(kind, column, literal)
        except (TypeError, ValueError, OverflowError):
            raise FilterError(f"cannot compare {column!r} ({kind}) of the {self.layer} layer with "
                              f"{_text(literal)}: give a value of that kind") from None

    def count_values(self, n):
        self.values += n
        if self.values > MAX_VALUES:
            raise FilterError(f"the filter has more than {MAX_VALUES} values: split the query")


@functools.cache
def _handlers():
    """The AST class -> handler table (pygeofilter is imported only when a filter is given)."""
    from pygeofilter import ast

    table = {cls: _Translator.comparison for cls in (ast.Equal, ast.NotEqual, ast.LessThan, ast.LessEqual,
                                                     ast.GreaterThan, ast.GreaterEqual)}
    table.update({ast.Between: _Translator.between, ast.In: _Translator.in_, ast.IsNull: _Translator.is_null,
                  ast.Like: _Translator.like_, ast.GeometryIntersects: _Translator.spatial,
                  ast.BBox: _Translator.bbox})
    return table


def _chain(node):
    """The operands of a chain of ANDs (or ORs) in order, without recursion (a chain is
    as long as the filter, and Python's stack is not)."""
    kind, out, stack = type(node), [], [node]
    while stack:
        item = stack.pop()
        if type(item) is kind:
            stack += [item.rhs, item.lhs]
        else:
            out.append(item)
    return out


def like_parts(pattern: str) -> list[tuple[str, str]]:
    """A CQL2 LIKE pattern as ``("text", s)``, ``("any", "")`` (``%``) and ``("one", "")``
    (``_``) parts; ``\\`` makes the next character literal.

    Examples
    --------
    >>> like_parts(r"%村\\_1_")
    [('any', ''), ('text', '村_1'), ('one', '')]
    """
    parts: list[tuple[str, str]] = []
    text: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern):
                raise FilterError(f"the LIKE pattern {pattern!r} ends with the escape character \\: write \\\\ "
                                  "for a backslash")
            text.append(pattern[i + 1])
            i += 2
            continue
        if c in "%_":
            if text:
                parts.append(("text", "".join(text)))
                text = []
            parts.append(("any" if c == "%" else "one", ""))
        else:
            text.append(c)
        i += 1
    if text:
        parts.append(("text", "".join(text)))
    return parts


def geometry_literal(node):
    """A shapely geometry from a pygeofilter geometry literal or ``BBOX(...)``, checked."""
    from pygeofilter import ast, values

    if isinstance(node, ast.Function) and node.name.lower() == "bbox":
        return _box(node.arguments)
    if isinstance(node, values.Envelope):
        raise FilterError("ENVELOPE(...) is not CQL2: write BBOX(minx, miny, maxx, maxy)")
    if not isinstance(node, values.Geometry):
        raise FilterError(f"S_INTERSECTS takes a geometry literal (WKT such as POINT(118.46 24.78), or "
                          f"BBOX(minx, miny, maxx, maxy)), got {_describe(node)}")
    data = dict(node.geometry)
    crs = data.pop("crs", None)
    if crs is not None:
        _check_crs(((crs.get("properties") or {}).get("name")) if isinstance(crs, Mapping) else crs)
    data.pop("bbox", None)
    try:
        geometry = shapely.geometry.shape(data)
    except Exception as exc:  # noqa: BLE001 - shapely's and GEOS's errors on a malformed literal
        raise FilterError(f"the geometry literal cannot be read: {exc}") from None
    coords = shapely.get_coordinates(geometry)
    if len(coords) and (not (abs(coords[:, 0]) <= 180).all() or not (abs(coords[:, 1]) <= 90).all()):
        raise FilterError("geometry literals are longitude/latitude (CRS84, EPSG:4326 or EPSG:4490); "
                          f"this one reaches {coords[:, 0].min():g}..{coords[:, 0].max():g}, "
                          f"{coords[:, 1].min():g}..{coords[:, 1].max():g}")
    if not geometry.is_empty and not shapely.is_valid(geometry):
        raise FilterError(f"the geometry literal is not valid ({shapely.is_valid_reason(geometry)}): "
                          "fix it (e.g. with shapely.make_valid) and send it again")
    return geometry


def _parts(geometry):
    """The geometry as parts a database intersects with (a collection's members,
    flattened); none for an empty one."""
    if geometry.is_empty:
        return []
    if geometry.geom_type != "GeometryCollection":
        return [geometry]
    out = []
    for part in shapely.get_parts(geometry):
        out += _parts(part)
    return out


def _check_crs(crs):
    if crs is None:
        return
    text = str(crs).strip().upper()
    if not text.endswith(_LONLAT_CRS):
        raise FilterError(f"geometry literals are in CRS84 (EPSG:4326 and EPSG:4490 are taken alike), "
                          f"got {crs!r}: convert the geometry first")


def _q(name):
    from gridgeo.store._sql import q

    return q(name)


def _describe(node) -> str:
    """What a node is, in the words of CQL2."""
    from pygeofilter import ast

    if isinstance(node, ast.SpatialComparisonPredicate):
        return f"S_{node.op.value}"
    if isinstance(node, ast.TemporalPredicate):
        return f"T_{node.op.value.replace(' ', '_')}"
    if isinstance(node, ast.ArrayPredicate):
        return f"A_{node.op.value[1:]}"
    if isinstance(node, ast.Relate):
        return "RELATE"
    if isinstance(node, ast.SpatialDistancePredicate):
        return node.op.value
    if isinstance(node, ast.Exists):
        return "EXISTS"
    if isinstance(node, ast.Include):
        return "EXCLUDE" if node.not_ else "INCLUDE"
    if isinstance(node, ast.Function):
        return f"the function {'CASEI' if node.name == 'lower' else node.name.upper()}"
    if isinstance(node, ast.Arithmetic):
        return f"arithmetic ({node.op.value})"
    if isinstance(node, ast.Attribute):
        return f"the property {node.name!r} alone (not a condition)"
    if isinstance(node, ast.Node):
        return type(node).__name__
    return f"the value {_text(node)}"


def _text(value) -> str:
    from pygeofilter import ast

    if isinstance(value, ast.Attribute):
        return value.name
    if isinstance(value, str):
        return repr(value)
    return _describe(value) if isinstance(value, ast.Node) else repr(value)


def require():
    """Import pygeofilter, or say how to install it."""
    try:
        import pygeofilter  # noqa: F401
    except ImportError:
        raise StoreError("filters need pygeofilter: pip install pygeofilter") from None
