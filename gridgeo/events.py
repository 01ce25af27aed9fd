"""Events over time: the leadership's time indicators per unit and period, trends, rankings, hot spots.

Grid and digital city management is evaluated on how cases move through
their flow (CJ/T 292: 信息收集 → 案卷建立 → 任务派遣 → 任务处理 → 处理反馈 →
核查结案 → 综合评价). :func:`indicators` counts, per unit of a level and per
period, what was received, closed and left open, how long closing took and
how much of it was on time; :func:`trends` adds the change from the previous
period and from the same period a year before; :func:`ranking` orders the
units of a level; :func:`hotspots` and :func:`emerging_hotspots` find where
events cluster (Getis-Ord Gi* and local Moran's I from esda); :func:`stages`
times each step of the flow where the data carry it.

Events are placed once with :func:`gridgeo.assign` (:func:`place`; every
function also takes the raw events and places them itself), then every figure
is a numpy ``bincount`` or one sort over integer codes: no loop over units or
periods.

The indicators, stated once
---------------------------
A period is a half-open interval ``[start, end)`` of local (naive) time. The
periods listed are those that meet both the span asked for and the data (the
first report to ``as_of``); a span wholly outside the data is refused. An
event is *open at* an instant ``t`` when it was reported before ``t`` and is
not closed before ``t`` (no ``closed_at``, or ``closed_at >= t``). For every
unit and period:

- ``received``: events reported in the period;
- ``closed``: events closed in the period (whenever they were reported);
- ``backlog``: events open at the period's end (at ``as_of`` for a period
  that ends after it: by default one second after the latest time in the
  data), those reported before the first period listed included;
- ``closure_rate``: ``closed / (closed + backlog)``, the share of the
  period's workload (open at its start or received in it) closed in it;
  missing when there was no workload;
- ``median_hours``, ``p90_hours``: the median and 90th percentile of the
  hours from report to close of the events closed in the period (linear
  interpolation between order statistics, as :meth:`pandas.Series.quantile`);
- ``on_time``, ``on_time_rate``: the events closed in the period within
  their category's time limit (``closed_at - reported_at <= limit``), and
  their share of ``closed``;
- ``overdue``: events open at the period's end whose limit had passed
  (``reported_at + limit < end``).

Time limits are hours per category (:data:`DEFAULT_TIME_LIMITS`, or a table
of one's own: a dict or a Series by category; a category the table does not
name gets :data:`OTHER_TIME_LIMIT`).

Up the hierarchy: a unit counts the events the assignment gives it at its
level, so on full levels a parent's counts are the sums of its children's
(unless a faulty plan leaves a gap: :func:`gridgeo.stats.figures` warns of
those); medians, percentiles and rates of a parent are computed again from
its events, never averaged from its children.

Data that cannot be counted is counted aside, never dropped silently:
``attrs`` of every table says how many events lie outside every unit
(``unplaced``), have no report time (``undated``), or were closed before they
were reported (``inconsistent``: they count as closed but not in the times).

Notes
-----
Times are taken as they come (naive local time; a zone-aware column is
converted to its local wall time). Weeks are ISO weeks (Monday to Sunday),
labelled by their ISO year (``2026-W01`` starts on 2025-12-29).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
import weakref

import geopandas as gpd
import numpy as np
import pandas as pd

from gridgeo.schema import DEFAULT_SCHEME

__all__ = ["DEFAULT_TIME_LIMITS", "OTHER_TIME_LIMIT", "PERIODS", "INDICATORS", "STAGES", "HOTSPOT_CLASSES",
           "EMERGING_CLASSES", "EventsError", "Placed", "place", "by_category", "Tally", "tally", "indicators", "region", "overview", "trends", "changes",
           "ranking", "ranked", "map_values", "map_caption", "INDICATOR_NAMES", "MAP_FIELD", "hotspots",
           "emerging_hotspots", "stages"]

DEFAULT_TIME_LIMITS = {
    "safety": 24, "fire": 24, "public_order": 24,
    "sanitation": 48,
    "dispute": 72, "road": 72,
    "building": 120, "service": 120,
}
"""Hours within which an event of each category should be closed: a day for hazards and public
order, two days for sanitation, three for disputes and roads, five working days for illegal
buildings and resident services (the usual tiers of city-management case limits)."""

OTHER_TIME_LIMIT = 72
"""Hours allowed to a category the limit table does not name."""

PERIODS = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}
"""The periods indicators are counted by, and their pandas frequencies (weeks end on Sunday)."""

INDICATORS = ("received", "closed", "backlog", "closure_rate", "median_hours", "p90_hours", "on_time",
              "on_time_rate", "overdue")
"""The indicator columns of :func:`indicators`."""

INDICATOR_NAMES = {
    "received": ("受理事件", "events received"), "closed": ("办结", "closed"), "backlog": ("积压", "backlog"),
    "closure_rate": ("办结率", "closure rate"), "median_hours": ("办结用时中位数（小时）", "median hours to close"),
    "p90_hours": ("办结用时90%分位（小时）", "90th percentile hours"), "on_time": ("按期办结", "on time"),
    "on_time_rate": ("按期办结率", "closed on time"), "overdue": ("超期未办结", "overdue"),
}
"""What each indicator is called: Chinese, English (the one map's words, ``events-words.js``)."""

MAP_FIELD = "ev_"
"""The one map names an event indicator ``ev_<indicator>`` among its figures (the choropleth menu, the
print and the Excel export), beside the figures the tiles carry."""

HIGHER_IS_BETTER = {"closure_rate": True, "on_time_rate": True, "closed": True, "on_time": True,
                    "received": False, "backlog": False, "median_hours": False, "p90_hours": False,
                    "overdue": False}
"""Which way :func:`ranking` orders each indicator (rank 1 is the best; for ``received``, the fewest)."""

STAGES = (("filing", "reported_at", "filed_at"), ("dispatch", "filed_at", "dispatched_at"),
          ("handling", "dispatched_at", "handled_at"), ("verification", "handled_at", "verified_at"),
          ("closing", "verified_at", "closed_at"))
"""The steps of the case flow: (name, from column, to column): 立案, 派遣, 处置, 核查, 结案."""

HOTSPOT_CLASSES = ("hot", "cold", "none")
EMERGING_CLASSES = ("new", "intensifying", "persistent", "diminishing", "cold", "none")

_COUNTS = ("received", "closed", "backlog", "on_time", "overdue")
_NEVER = np.iinfo(np.int64).max  # the close time of an event not closed


class EventsError(ValueError):
    """Events or parameters the indicators cannot use (the message says what to send)."""


# ----------------------------------------------------------------------------------------------
# placing the events once
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Placed:
    """Events placed in their units, as integer arrays: what every function here counts from.

    Make it with :func:`place`; pass it instead of the events to skip placing them again.

    Attributes
    ----------
    index : gridgeo.AssignIndex
    unit : dict of str to ndarray
        Per level, each event's unit as a position in ``index.codes[level]`` (-1: none).
    reported, closed : ndarray of int64
        Seconds since 1970 (naive local time); ``closed`` is a huge number for events not closed.
    category, status : pandas.Categorical
    steps : dict of str to ndarray
        Any further step times present (``filed_at`` ...), as ``closed`` (a huge number: not given).
    attrs : dict
        ``unplaced``, ``undated``, ``inconsistent`` counts and ``as_of`` (seconds).
    runs : dict of str to (int, int), optional
        Set by :func:`by_category`: the events are ordered by category, and each category's dated
        events are the positions ``[start, stop)``; None for events in the order they came.
    """

    index: object
    unit: dict
    reported: np.ndarray
    closed: np.ndarray
    category: pd.Categorical
    status: pd.Categorical
    steps: dict
    attrs: dict
    runs: dict | None = None

    def __len__(self) -> int:
        return len(self.reported)

    @functools.cached_property
    def units(self):
        """Every unit of every level, and how counts roll up (the tree of :func:`gridgeo.stats.figures`),
        with each event's deepest unit of a full level (a position in that table, -1 for none)."""
        from gridgeo.stats import _unit_table, _UnitTree

        table = _unit_table(self.index)
        tree = _UnitTree(self.index, table, self.index.scheme)
        deepest = np.full(len(self), -1, dtype=np.int64)
        for lv in tree.full:
            deepest = np.where(self.unit[lv] >= 0, tree.start[lv] + self.unit[lv], deepest)
        return table, tree, deepest

    @functools.cached_property
    def unit_text(self) -> dict:
        """``code``, ``name``, ``level``, ``parent`` of every unit of :attr:`units` as text arrays, made once:
        the tables' first columns are taken from them."""
        table = self.units[0]
        columns = {"code": table.index.to_numpy(dtype=object)}
        columns.update({c: table[c].to_numpy(dtype=object) for c in ("name", "level", "parent")})
        return {c: pd.array(values, dtype="str") for c, values in columns.items()}

    @functools.cached_property
    def dated_span(self) -> np.ndarray:
        """The first and the last report time of the dated events (seconds; empty when none): what the
        periods of every table are decided from, kept by a part of the events (:meth:`part`)."""
        dated = self.reported[self.reported != _NEVER]
        return np.array([dated.min(), dated.max()], dtype=np.int64) if len(dated) else dated[:0]

    @functools.cached_property
    def sorted_codes(self) -> dict:
        """Each level's codes as a sorted numpy array of text (the index's order), for prefix ranges."""
        return {lv: np.asarray(self.index.codes[lv].to_numpy(dtype=object), dtype=str) for lv in self.index.levels}

    @functools.cached_property
    def nested(self) -> bool:
        """Whether every event's unit at each full level is its deepest unit or an ancestor of it (the
        assignment of nested grids): then the events of a unit's subtree are those whose deepest unit is in
        it, and :meth:`order` finds them by slices."""
        table, tree, deepest = self.units
        coo = tree.roll_up.tocoo()
        for lv in tree.full:
            n = len(self.index.codes[lv])
            above = np.full(len(table), -1, dtype=np.int64)  # each unit's ancestor (or itself) at lv
            at = (coo.row >= tree.start[lv]) & (coo.row < tree.start[lv] + n)
            above[coo.col[at]] = coo.row[at]
            own = self.unit[lv]
            if ((own >= 0) & (above[np.maximum(deepest, 0)] != tree.start[lv] + own)).any():
                return False
        return True

    def order(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """(positions of the events sorted by ``key``, the sorted keys): ``"deepest"`` (the row of the deepest
        unit in :attr:`units`) or a level's name (the unit's position at it); made once per key."""
        kept = self.__dict__.setdefault("_orders", {})
        if key not in kept:
            values = self.units[2] if key == "deepest" else self.unit[key]
            order = np.argsort(values, kind="stable")
            kept[key] = (order, values[order])
        return kept[key]

    def part(self, positions) -> Placed:
        """The events at ``positions`` (ascending), placed as here, with the same unit tree, periods' span,
        ``as_of`` and counts aside: the part of the table of every event that a unit's rows need."""
        positions = np.asarray(positions, dtype=np.int64)
        out = Placed(index=self.index, unit={lv: u.take(positions) for lv, u in self.unit.items()},
                     reported=self.reported.take(positions), closed=self.closed.take(positions),
                     category=self.category.take(positions), status=self.status.take(positions),
                     steps={k: v.take(positions) for k, v in self.steps.items()}, attrs=self.attrs)
        table, tree, deepest = self.units
        out.__dict__["units"] = (table, tree, deepest.take(positions))
        out.__dict__["dated_span"] = self.dated_span
        out.__dict__["sorted_codes"] = self.sorted_codes
        out.__dict__["unit_text"] = self.unit_text  # the units' text, made once per version
        return out


def place(events, units_or_index, *, scheme=None) -> Placed:
    """Place events in their units at every level, once (:func:`gridgeo.assign`).

    Parameters
    ----------
    events : GeoDataFrame
        Grid events with ``category``, ``status``, ``reported_at``, ``closed_at``
        (missing: not closed) and any step times (``filed_at``, ``dispatched_at``,
        ``handled_at``, ``verified_at``).
    units_or_index : GeoDataFrame or gridgeo.AssignIndex
        The grids, or the index built from them.
    scheme : CodeScheme, optional

    Returns
    -------
    Placed

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> placed = gridgeo.events.place(s.events, s.grids)
    >>> len(placed) == len(s.events), placed.attrs["unplaced"]
    (True, 0)
    """
    from gridgeo.assignment import AssignIndex, assign
    from gridgeo.schema import check

    index = units_or_index if isinstance(units_or_index, AssignIndex) else \
        AssignIndex(units_or_index, scheme=scheme or DEFAULT_SCHEME)
    _require_columns(events)
    events = check(events, "events", scheme=index.scheme, name="events")
    where = assign(events, index, name="events")
    unit = {lv: where[lv].cat.codes.to_numpy().astype(np.int64) for lv in index.levels}
    reported, closed, as_of = _times(events)
    undated = reported == _NEVER
    inconsistent = (closed != _NEVER) & ~undated & (closed < reported)
    steps = {c: _seconds(events[c]) for c in ("filed_at", "dispatched_at", "handled_at", "verified_at")
             if c in events.columns}
    status = events["status"] if "status" in events.columns else pd.Series("", index=events.index)
    return Placed(index=index, unit=unit, reported=reported, closed=closed,
                  category=pd.Categorical(events["category"].astype("str").to_numpy()),
                  status=pd.Categorical(status.astype("str").to_numpy()), steps=steps,
                  attrs={"unplaced": int((where["status"].isin(["outside", "invalid"])).sum()),
                         "undated": int(undated.sum()), "inconsistent": int(inconsistent.sum()),
                         "as_of": as_of})


def by_category(placed: Placed) -> Placed:
    """The same placed events ordered by category, then report time: each category one contiguous run.

    Every figure of this module counts events whatever their order (``bincount``
    and sorts), so the answers are the same; what changes is the work: a filter
    on one category (what the one map asks at each change of its category
    menu) reads that category's run of the arrays as views (:attr:`Placed.runs`)
    instead of testing every event and gathering those kept. Undated events
    (no report time) come last in their category's run, outside its
    ``[start, stop)``.

    Parameters
    ----------
    placed : Placed
        As :func:`place` gives it (events ordered by category already are ordered again, alike).

    Returns
    -------
    Placed
        New arrays (the given ones are left as they are), with ``runs``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> placed = gridgeo.events.place(s.events, s.grids)
    >>> ordered = gridgeo.events.by_category(placed)
    >>> start, stop = ordered.runs["dispute"]
    >>> set(ordered.category[start:stop]), stop - start == int((s.events["category"] == "dispute").sum())
    ({'dispute'}, True)
    >>> a = gridgeo.events.indicators(placed, level="town", category="dispute")
    >>> a.equals(gridgeo.events.indicators(ordered, level="town", category="dispute"))
    True
    """
    codes = np.asarray(placed.category.codes, dtype=np.int64)
    order = np.lexsort((placed.reported, codes))  # _NEVER (undated) sorts last in its category
    codes = codes[order]
    reported = placed.reported[order]
    n_categories = len(placed.category.categories)
    start = np.searchsorted(codes, np.arange(n_categories), side="left")
    dated = (reported != _NEVER) & (codes >= 0)  # in each run the dated events come first
    stop = start + np.bincount(codes[dated], minlength=n_categories)
    runs = {str(c): (int(a), int(b)) for c, a, b in zip(placed.category.categories, start, stop)}
    return Placed(index=placed.index, unit={lv: u[order] for lv, u in placed.unit.items()}, reported=reported,
                  closed=placed.closed[order], category=placed.category[order], status=placed.status[order],
                  steps={c: t[order] for c, t in placed.steps.items()}, attrs=dict(placed.attrs), runs=runs)


def _require_columns(events):
    for column in ("reported_at", "category"):
        if column not in events.columns:
            raise EventsError(f"事件缺少 {column} 列 / the events have no {column!r} column (they have "
                              f"{[c for c in events.columns if c != 'geometry']}): load them with gridgeo.io or "
                              "the intake, which maps 上报时间/办结时间/事件类型")


def _times(events):
    """(reported, closed, as_of) in seconds, as :func:`place` reads them."""
    reported = _seconds(events["reported_at"])
    closed = _seconds(events["closed_at"]) if "closed_at" in events.columns else np.full(len(events), _NEVER)
    latest = max([int(t[t != _NEVER].max()) for t in (reported, closed) if (t != _NEVER).any()], default=0)
    return reported, closed, latest + 1


def _seconds(column) -> np.ndarray:
    """Seconds since 1970 of a time column (naive local time), :data:`_NEVER` where missing."""
    stamps = pd.to_datetime(column, errors="coerce")
    if getattr(stamps.dt, "tz", None) is not None:
        stamps = stamps.dt.tz_localize(None)
    values = stamps.astype("datetime64[s]").to_numpy().astype("datetime64[s]")
    out = values.astype(np.int64)
    out[np.isnat(values)] = _NEVER
    return out


def _placed(events, units_or_index) -> Placed:
    if isinstance(events, Placed):
        return events
    if units_or_index is None:
        raise EventsError("give the grids (or an AssignIndex) to place the events in, or events placed with "
                          "gridgeo.events.place / 请提供网格")
    return place(events, units_or_index)


# ----------------------------------------------------------------------------------------------
# periods
# ----------------------------------------------------------------------------------------------


def _periods(period, start, end, placed: Placed):
    """(labels, starts, ends) of the periods listed: seconds, half-open."""
    return _periods_of(period, start, end, placed.dated_span, placed.attrs["as_of"])


def _periods_of(period, start, end, reported, as_of):
    """:func:`_periods` from the report times (or the first and last of them) and ``as_of`` of all the events."""
    if period is not None and period not in PERIODS:
        raise EventsError(f"period 只能是 {list(PERIODS)} 或不分周期 — period must be one of {list(PERIODS)} "
                          f"or None (one from-to span), got {period!r}")
    dated = reported[reported != _NEVER]
    first = pd.Timestamp(int(dated.min()) if len(dated) else as_of, unit="s") if start is None else pd.Timestamp(start)
    latest = int(dated.max()) + 1 if len(dated) else as_of
    last = pd.Timestamp(latest, unit="s") if end is None else pd.Timestamp(end)
    if last <= first:
        raise EventsError(f"to={last:%Y-%m-%d} 不晚于 from={first:%Y-%m-%d} — the span is empty: `to` (exclusive) "
                          "must come after `from`")
    if period is None:
        begin = first.normalize() if start is None else first
        label = f"{begin:%Y-%m-%d}/{(last - pd.Timedelta(seconds=1)):%Y-%m-%d}"
        return [label], np.array([_s(begin)]), np.array([_s(last)])
    freq = PERIODS[period]
    # only the periods the data can speak of: from the first report to as_of (before it every count is
    # nought, after it nothing is known), so that no span asks for thousands of empty periods
    known_from = pd.Timestamp(int(dated.min()) if len(dated) else as_of, unit="s")
    known_to = pd.Timestamp(as_of, unit="s")
    lo, hi = max(first, known_from), min(last, known_to)
    if hi <= lo:
        raise EventsError(f"{first:%Y-%m-%d} 至 {last:%Y-%m-%d} 没有事件数据（数据自 {known_from:%Y-%m-%d} 至 "
                          f"{known_to:%Y-%m-%d}）— no event data from {first:%Y-%m-%d} to {last:%Y-%m-%d}: the data run "
                          f"from {known_from:%Y-%m-%d} to {known_to:%Y-%m-%d}")
    ordinals = pd.period_range(lo.to_period(freq), (hi - pd.Timedelta(seconds=1)).to_period(freq), freq=freq)
    starts = ordinals.start_time
    ends = (ordinals + 1).start_time
    return _labels(ordinals, period), _s(starts), _s(ends)


def _s(t) -> np.ndarray | int:
    if isinstance(t, pd.Timestamp):
        return int((t.tz_localize(None) if t.tz else t).floor("s").to_datetime64().astype("datetime64[s]").astype(np.int64))
    return np.asarray(pd.DatetimeIndex(t).as_unit("s").asi8, dtype=np.int64)


def _labels(ordinals: pd.PeriodIndex, period: str) -> list[str]:
    starts = ordinals.start_time
    if period == "day":
        return list(starts.strftime("%Y-%m-%d"))
    if period == "week":
        iso = starts.isocalendar()
        return [f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"])]
    if period == "month":
        return list(starts.strftime("%Y-%m"))
    if period == "quarter":
        return [f"{y}-Q{q}" for y, q in zip(starts.year, starts.quarter)]
    return [str(y) for y in starts.year]


def _limits(placed: Placed, time_limits) -> np.ndarray:
    """Each category's time limit, in seconds (:func:`_timed` gathers them for the events it counts)."""
    table = _limit_table(time_limits)
    hours = np.array([float(table.get(c, OTHER_TIME_LIMIT)) for c in placed.category.categories])
    return np.rint(hours * 3600).astype(np.int64)


def _limit_table(time_limits) -> dict:
    table = dict(DEFAULT_TIME_LIMITS if time_limits is None else
                 (time_limits.to_dict() if isinstance(time_limits, pd.Series) else time_limits))
    bad = {c: h for c, h in table.items() if not (isinstance(h, (int, float, np.number)) and h > 0)}
    if bad:
        raise EventsError(f"时限须为正的小时数 / time limits must be positive hours, got {bad}")
    return table


def _kept(placed: Placed, category) -> slice | np.ndarray:
    """The positions of the dated events of the categories asked: the category's run (a slice: the arrays
    read as views) when the events are ordered by category (:func:`by_category`) and one is asked, else
    the positions of :func:`_chosen`."""
    wanted = [category] if isinstance(category, str) else list(category or ())
    if placed.runs is not None and len(wanted) == 1:
        start, stop = placed.runs.get(str(wanted[0]), (0, 0))
        return slice(start, stop)
    return np.flatnonzero(_chosen(placed, category))


def _chosen(placed: Placed, category) -> np.ndarray:
    keep = placed.reported != _NEVER
    if category:
        wanted = [category] if isinstance(category, str) else list(category)
        known = placed.category.categories
        wanted_codes = np.zeros(len(known) + 1, bool)  # the last slot: code -1 (no category), never wanted
        wanted_codes[known.get_indexer([w for w in wanted if w in known])] = True
        keep &= wanted_codes[placed.category.codes]
    return keep


def _levels(placed: Placed, level) -> list[str]:
    return _levels_of(list(placed.index.levels), level)


def _levels_of(names, level) -> list[str]:
    chosen = names if level is None else ([level] if isinstance(level, str) else list(level))
    unknown = [lv for lv in chosen if lv not in names]
    if unknown:
        raise EventsError(f"没有层级 {unknown}，可用 {names} — no level {unknown}: use one of {names}")
    return chosen


# ----------------------------------------------------------------------------------------------
# indicators
# ----------------------------------------------------------------------------------------------


def indicators(events, units_or_index=None, *, level=None, period="month", start=None, end=None, category=None,
               time_limits=None, by=None, as_of=None, unit=None, client=None) -> pd.DataFrame:
    """The time indicators of every unit of a level, per period (see the module notes for each rule).

    Parameters
    ----------
    events : GeoDataFrame or Placed
        Grid events (``category``, ``status``, ``reported_at``, ``closed_at``), or
        the same placed once with :func:`place`.
    units_or_index : GeoDataFrame or gridgeo.AssignIndex, optional
        The grids (or their index); not needed with placed events.
    level : str or list of str, optional
        The levels whose units are listed (default every level).
    period : {"month", "week", "day", "quarter", "year"} or None, default "month"
        The periods; None makes one period from ``start`` to ``end``.
    start, end : date or str, optional
        The first day listed (included) and the end (excluded); default from the
        first event reported to the last. Periods are whole calendar periods
        covering the span. Events reported before ``start`` still count in
        ``backlog`` and ``overdue`` (and in ``closed`` when closed in a period listed).
    category : str or list of str, optional
        Only events of these categories.
    time_limits : dict or Series of hours by category, optional
        Default :data:`DEFAULT_TIME_LIMITS`.
    by : {"category", "status"}, optional
        A row per category (or recorded status) too, in a column of that name.
    as_of : datetime, optional
        When the data were taken: backlog and overdue of a period ending later are
        counted at it (default one second after the latest time in the data).
    unit : str, optional
        Only the rows of the units inside this one: the unit itself and those
        whose code it begins (a code's prefix is its parent's code; a county's
        six digits select the county), exactly the rows the table of every
        unit has for them. The periods and ``as_of`` still come from all the
        events; only the events those rows count are counted, so a county's
        table costs its events, not the province's.
    client : distributed.Client, optional
        Run on this Dask cluster, one task per top-level unit, with the same
        answer (the partition rule of :mod:`gridgeo.distribute`; the events
        and the grids must be given, not placed events). The events may then
        be a layer written by :func:`gridgeo.distribute.partition`
        (``dataset["events"]`` or its folder) or a store's layer
        (:class:`gridgeo.distribute.StoreLayer`): each task reads its unit's
        file or rows on its worker, and the periods, ``as_of``, the
        categories and the undated and inconsistent counts are decided from
        the four columns they need (report and close times, category,
        status) read file by file on the workers (a store's layer: from
        the rows its tasks read, once, where they are held), the events no
        unit holds included.

    Returns
    -------
    DataFrame
        One row per unit, period (and `by` value): ``code``, ``name``, ``level``,
        ``parent``, ``period`` (label: ``2025-06``, ``2025-W23``, ``2025-Q2``,
        ``2025``, ``2025-06-01``, or ``2025-03-01/2025-03-31`` for one span),
        ``period_start``, ``period_end`` and :data:`INDICATORS`; counts are
        int64, rates and hours float (NaN where there is nothing to measure).
        Units with no event have rows of zeros. ``attrs``: ``unplaced``,
        ``undated``, ``inconsistent``, ``as_of``, ``period``, ``time_limits``.

    Raises
    ------
    EventsError
        For an unknown period, level or `by`, an empty span, or a bad limit table.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = gridgeo.events.indicators(s.events, s.grids, level=["town", "village"], period="quarter")
    >>> town = table[table["level"] == "town"].set_index("period")
    >>> list(town.index)
    ['2025-Q1', '2025-Q2', '2025-Q3', '2025-Q4']
    >>> villages = table[table["level"] == "village"].groupby("period")["received"].sum()
    >>> bool((town["received"] == villages).all())
    True
    >>> int(town["received"].sum()) == len(s.events)
    True
    >>> grid1 = gridgeo.events.indicators(s.events, s.grids, level="grid1", period="quarter")
    >>> mine = gridgeo.events.indicators(s.events, s.grids, level="grid1", period="quarter", unit="350582106201")
    >>> mine.equals(grid1[grid1["code"].str.startswith("350582106201")].reset_index(drop=True))
    True
    """
    if client is not None:
        out = _indicators_on_dask(client, events, units_or_index, level=level, period=period, start=start,
                                  end=end, category=category, time_limits=time_limits, by=by, as_of=as_of)
        if unit:
            attrs = out.attrs
            out = out[out["code"].str.startswith(str(unit)).to_numpy()].reset_index(drop=True)
            out.attrs = attrs
        return out
    placed = _placed(events, units_or_index)
    levels = _levels(placed, level)
    labels, starts, ends = _periods(period, start, end, placed)
    cut = placed.attrs["as_of"] if as_of is None else _s(pd.Timestamp(as_of))
    rows = None
    if unit is not None and unit != "":
        rows, placed = _within(placed, levels, str(unit))
    out = _indicators_table(placed, levels, (labels, starts, ends), cut, category, time_limits, by, rows=rows)
    out.attrs = _attrs(placed, cut, period, time_limits)
    return out


def indicators_as_in(placed, table) -> pd.DataFrame:
    """:func:`indicators` (every level, all categories) of some units alone, as a table of all of them has them.

    The periods, ``as_of`` and the period kind are those of ``table`` (an :func:`indicators` table of all
    the events), not decided from ``placed``: events placed in the units below some parents (each
    parent holding its events, :mod:`gridgeo.distribute`'s rule one level down) give those units' rows
    of ``table`` exactly. Used to prepare a publish that changed the grids of some villages only
    (:mod:`gridgeo.derived`).

    Parameters
    ----------
    placed : Placed
        The events of some units, placed in them and the units below (:func:`place`).
    table : DataFrame
        :func:`indicators` of all the events (its ``attrs`` say ``as_of`` and ``period``).

    Returns
    -------
    DataFrame
        The rows :func:`indicators` gives for the units of ``placed``, in its order; no ``attrs``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = indicators(s.events, s.grids)
    >>> village = s.grids[s.grids["code"].str.startswith("350582106201") & (s.grids["level"] != "town")]
    >>> index = gridgeo.AssignIndex(village)
    >>> held = s.events[gridgeo.assign(s.events, s.grids, levels=["village"])["village"] == "350582106201"]
    >>> part = indicators_as_in(place(held, index), table)
    >>> mine = table[table["code"].isin(village["code"])].reset_index(drop=True)
    >>> bool((part["received"].to_numpy() == mine["received"].to_numpy()).all()), len(part) == len(mine)
    (True, True)
    """
    spans = table.drop_duplicates("period")
    periods = (list(spans["period"]), _s(spans["period_start"]), _s(spans["period_end"]))
    levels = [lv for lv in placed.index.levels]
    return _indicators_table(placed, levels, periods, _s(pd.Timestamp(table.attrs["as_of"])), None, None, None)


def _indicators_table(placed, levels, periods, cut, category, time_limits, by, rows=None):
    labels, starts, ends = periods
    where = _kept(placed, category)
    group, group_names = _by(placed, by)
    timed = _timed(placed, where, _limits(placed, time_limits), group, starts, ends, cut)
    return _table(placed, levels, timed, group_names, by, labels, starts, ends, rows=rows)


def _within(placed, levels, unit):
    """(the rows of the unit table inside ``unit`` at ``levels``, the events that count in them as a
    :meth:`Placed.part`). An event counts in a row when its deepest full unit rolls up into the row or, at
    the row's level, the row is its unit (a partial level's own count; each level's times). The units
    inside a code are a range of each level's sorted codes; with nested placement (:attr:`Placed.nested`)
    their events are slices of the events sorted by deepest unit (and by unit, at a partial level listed):
    the cost is the unit's events and units, not the province's. Otherwise every event is tested."""
    table, tree, deepest = placed.units
    rows = []
    for lv in levels:
        codes = placed.sorted_codes[lv]
        lo, hi = np.searchsorted(codes, [unit, unit + "\U0010ffff"])
        rows.append(np.arange(tree.start[lv] + lo, tree.start[lv] + hi))
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    if not len(rows) and not any(np.searchsorted(c, unit + "\U0010ffff") > np.searchsorted(c, unit)
                                 for c in placed.sorted_codes.values()):
        raise EventsError(f"没有编码以 {unit!r} 开头的单元 — no unit's code begins with {unit!r}: give a unit's code "
                          "(or a county's), or none for every unit")
    below = np.unique(tree.roll_up[rows].indices)  # the units whose counts roll up into a row listed
    if placed.nested:
        found = [_slices(*placed.order("deepest"), below)]
        for lv in levels:
            if lv in tree.partial:
                mine = rows[(rows >= tree.start[lv]) & (rows < tree.start[lv] + len(placed.index.codes[lv]))]
                found.append(_slices(*placed.order(lv), mine - tree.start[lv]))
        positions = np.unique(np.concatenate(found))
    else:
        counting = np.zeros(len(table), dtype=bool)
        counting[below] = True
        counting = (deepest >= 0) & counting[np.maximum(deepest, 0)]
        listed = np.zeros(len(table), dtype=bool)
        listed[rows] = True
        for lv in levels:
            own = placed.unit[lv]
            counting |= (own >= 0) & listed[tree.start[lv] + np.maximum(own, 0)]
        positions = np.flatnonzero(counting)
    return rows, placed.part(positions)


def _slices(order, keys, wanted) -> np.ndarray:
    """The positions in ``order`` whose key (``keys``, sorted) is one of ``wanted``."""
    lo = np.searchsorted(keys, wanted, side="left")
    hi = np.searchsorted(keys, wanted, side="right")
    size = hi - lo
    if not size.sum():
        return np.zeros(0, np.int64)
    starts = np.repeat(lo - np.concatenate([[0], np.cumsum(size)[:-1]]), size)
    return order[starts + np.arange(int(size.sum()))]


def _indicators_on_dask(client, events, units_or_index, *, level, period, start, end, category, time_limits, by,
                        as_of):
    """:func:`indicators` one task per top-level unit: the periods, ``as_of`` and the categories are decided
    here from all the events, each task counts its unit's events, and the tables are put in the in-memory order."""
    from gridgeo import distribute
    from gridgeo.assignment import AssignIndex
    from gridgeo.schema import check, level_names

    if isinstance(events, Placed) or units_or_index is None:
        raise EventsError("在 Dask 上计算需要事件和网格本身 / on Dask, give the events and the grids (or their index), "
                          "not events placed with gridgeo.events.place: each task places its own")
    index = units_or_index if isinstance(units_or_index, AssignIndex) else None
    grids = index.grids if index is not None else units_or_index
    scheme = index.scheme if index is not None else DEFAULT_SCHEME
    stored = distribute.is_stored(events)
    if stored:  # checked whole when written; the facts below are read on the workers, file by file
        events = distribute.stored_layer(events)
        _require_columns(pd.DataFrame(columns=events.columns))
        events = distribute.held(client, {"events": events}, grids, scheme=scheme)["events"]  # a store's: read once
        facts = _joined_facts(distribute.summarise(client, events, _FACT_COLUMNS, _facts))
    else:
        _require_columns(events)
        events = check(events, "events", scheme=scheme, name="events")
        facts = _facts(events)
    grids = check(grids, "grids", scheme=scheme, name="grids")
    levels = _levels_of(level_names(grids, scheme), level)
    _limit_table(time_limits)
    if by not in (None, "category", "status"):
        _by(None, by)
    periods = _periods_of(period, start, end, facts["span"], facts["as_of"])
    cut = facts["as_of"] if as_of is None else _s(pd.Timestamp(as_of))
    categories = {"category": pd.Categorical(np.array(sorted(facts["category"]), dtype=object)).categories,
                  "status": pd.Categorical(np.array(sorted(facts["status"]), dtype=object)).categories}
    parts, unplaced, top = distribute.split(grids, {"events": events}, scheme=scheme, client=client)
    tables = distribute.run(client, _indicators_part, parts, scheme=scheme, levels=levels, periods=periods, cut=cut,
                            category=category, time_limits=time_limits, by=by, categories=categories)
    out = pd.concat(tables, ignore_index=True)
    rank = out["level"].map({lv: i for i, lv in enumerate(levels)}).to_numpy()
    out = out.iloc[np.lexsort((out["code"].to_numpy(dtype=object), rank))].reset_index(drop=True)
    out.attrs = {"unplaced": sum(unplaced["events"].values()), "undated": facts["undated"],
                 "inconsistent": facts["inconsistent"],
                 "as_of": pd.Timestamp(cut, unit="s"), "period": period,
                 "time_limits": dict(DEFAULT_TIME_LIMITS if time_limits is None else time_limits)}
    return out


_FACT_COLUMNS = ("reported_at", "closed_at", "category", "status")


def _facts(events) -> dict:
    """What the periods, ``as_of``, the categories and the counts aside depend on, of some events: reduced
    so that the facts of parts joined (:func:`_joined_facts`) are the facts of all of them. ``span``: the
    first and last report times (all :func:`_periods_of` reads of them); ``latest``: the latest time."""
    reported, closed, _ = _times(events)
    dated = reported[reported != _NEVER]
    times = np.concatenate([dated, closed[closed != _NEVER]])
    status = events["status"] if "status" in events.columns else pd.Series("", index=events.index)
    facts = {"span": np.array([dated.min(), dated.max()] if len(dated) else [], dtype=np.int64),
             "latest": int(times.max()) if len(times) else None,
             "undated": int((reported == _NEVER).sum()),
             "inconsistent": int(((closed != _NEVER) & (reported != _NEVER) & (closed < reported)).sum()),
             "category": set(pd.Categorical(events["category"].astype("str").to_numpy()).categories),
             "status": set(pd.Categorical(status.astype("str").to_numpy()).categories)}
    facts["as_of"] = (facts["latest"] or 0) + 1  # as _times says it
    return facts


def _joined_facts(parts) -> dict:
    latest = [f["latest"] for f in parts if f["latest"] is not None]
    joined = {"span": np.concatenate([f["span"] for f in parts]) if parts else np.array([], np.int64),
              "latest": max(latest) if latest else None,
              "undated": sum(f["undated"] for f in parts), "inconsistent": sum(f["inconsistent"] for f in parts),
              "category": set().union(*(f["category"] for f in parts)),
              "status": set().union(*(f["status"] for f in parts))}
    joined["as_of"] = (joined["latest"] or 0) + 1
    return joined


def _indicators_part(part, *, scheme, levels, periods, cut, category, time_limits, by, categories):
    from gridgeo.assignment import AssignIndex

    index = AssignIndex(part.grids, scheme=scheme, _one_call=True)  # built for this task alone: the lighter one
    placed = place(part.layers["events"], index, scheme=scheme)
    placed.category = placed.category.set_categories(categories["category"])
    placed.status = placed.status.set_categories(categories["status"])
    held = [lv for lv in levels if lv in placed.index.levels]  # a town may lack a partial level
    return _indicators_table(placed, held, periods, cut, category, time_limits, by)


def region(events, units_or_index=None, *, unit=None, period="month", start=None, end=None, category=None,
           time_limits=None, as_of=None) -> pd.DataFrame:
    """The indicators of one unit, or of the whole area, per period: what a leader's cards show.

    The rule: the whole area (``unit`` None or empty) counts every event
    placed in a unit of the top level (the events outside every unit are
    counted aside, in ``attrs["unplaced"]``); a unit counts the events the
    assignment gives it at its level. Counts are therefore the sums of the
    units' below on a full level, and rates, medians and percentiles are
    computed again from the events themselves (never summed or averaged
    from the units'): the same rules as :func:`indicators`, whose row of the
    unit this is.

    Parameters
    ----------
    unit : str, optional
        A unit's code; None or ``""`` for the whole area.
    Others
        As :func:`indicators`.

    Returns
    -------
    DataFrame
        One row per period: ``code`` (``""`` for the whole area), ``name``,
        ``level`` (``""`` for the whole area), ``period``, ``period_start``,
        ``period_end`` and :data:`INDICATORS`. ``attrs`` as :func:`indicators`.

    Raises
    ------
    EventsError
        For a code that is no unit, and as :func:`indicators`.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> whole = gridgeo.events.region(s.events, s.grids, period="quarter")
    >>> whole["period"].tolist(), int(whole["received"].sum()) == len(s.events)
    (['2025-Q1', '2025-Q2', '2025-Q3', '2025-Q4'], True)
    >>> villages = gridgeo.events.indicators(s.events, s.grids, level="village", period="quarter")
    >>> whole["received"].tolist() == villages.groupby("period")["received"].sum().tolist()
    True
    """
    placed = _placed(events, units_or_index)
    inside, code, name, level = _region_events(placed, unit)
    periods = _periods(period, start, end, placed)
    cut = placed.attrs["as_of"] if as_of is None else _s(pd.Timestamp(as_of))
    where = np.arange(len(placed))[_kept(placed, category)]
    where = where[inside[where]]
    timed = _timed(placed, where, _limits(placed, time_limits), None, *periods[1:], cut)
    out = _region_rows(timed, np.ones(len(where), bool), code, name, level, periods)
    out.attrs = _attrs(placed, cut, period, time_limits)
    return out


def overview(events, units_or_index=None, *, unit=None, level=None, period="month", start=None, end=None,
             category=None, time_limits=None, as_of=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`region` of a unit (or the whole area) and :func:`indicators` of some levels, from one pass.

    What the one map asks at each filter change: the cards' unit and the
    choropleth's and the ranking's levels, for the same periods and
    categories. The events are filtered and their times placed among the
    periods once (the work :func:`region` and :func:`indicators` would each
    do), then counted per unit and for the unit asked; the answers are
    exactly those of the two functions called apart (the same rules, stated
    there).

    Parameters
    ----------
    unit : str, optional
        As :func:`region`: a unit's code, or None / ``""`` for the whole area.
    level : str or list of str, optional
        As :func:`indicators` (default every level).
    Others
        As :func:`indicators`.

    Returns
    -------
    (DataFrame, DataFrame)
        ``region(...)`` and ``indicators(...)``, with their ``attrs``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> placed = gridgeo.events.place(s.events, s.grids)
    >>> whole, towns = gridgeo.events.overview(placed, level="town", period="quarter", category="dispute")
    >>> whole.equals(gridgeo.events.region(placed, period="quarter", category="dispute"))
    True
    >>> towns.equals(gridgeo.events.indicators(placed, level="town", period="quarter", category="dispute"))
    True
    """
    placed = _placed(events, units_or_index)
    levels = _levels(placed, level)
    inside, code, name, unit_level = _region_events(placed, unit)
    periods = _periods(period, start, end, placed)
    cut = placed.attrs["as_of"] if as_of is None else _s(pd.Timestamp(as_of))
    timed = _timed(placed, _kept(placed, category), _limits(placed, time_limits), None, *periods[1:], cut)
    attrs = _attrs(placed, cut, period, time_limits)
    whole = _region_rows(timed, inside[timed.where], code, name, unit_level, periods)
    whole.attrs = dict(attrs)
    table = _table(placed, levels, timed, [None], None, *periods)
    table.attrs = dict(attrs)
    return whole, table


@dataclasses.dataclass
class Tally:
    """Every unit's indicators per category and period, counted once: what makes a category cheap to ask.

    Made by :func:`tally` for one period kind, over all the data's periods, every
    category and every level; :meth:`overview` then answers :func:`overview` of
    one category by reading its columns, with no pass over the events. Compact
    arrays (int32 counts, float64 hours): about 18 MB for a city's 5,100 units,
    8 categories and 12 months.

    It keeps no reference to the events it counted (a cache may let them go and read them again):
    :meth:`overview` is given them.

    Attributes
    ----------
    events : int
        How many events were counted (:meth:`overview` checks the events it is given).
    period : str
    periods : (list, ndarray, ndarray)
        The labels, starts and ends (seconds) of the periods.
    categories : list of str
    counts : dict of str to ndarray
        ``received``, ``closed``, ``on_time``, ``backlog``, ``overdue`` per unit of every level
        (rows: the unit table of :attr:`Placed.units`), category and period (columns:
        category-major), int32.
    hours : dict of str to (ndarray, ndarray)
        Per level, the median and 90th percentile hours to close, as ``counts``.
    whole : (dict, ndarray, ndarray)
        The whole area's counts, median and 90th percentile seconds per category (rows) and period.
    attrs : dict
        The ``attrs`` of the tables (:func:`indicators`).
    """

    events: int
    period: str
    periods: tuple
    categories: list
    counts: dict
    hours: dict
    whole: tuple
    attrs: dict

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays."""
        own = [*self.counts.values(), *(a for pair in self.hours.values() for a in pair), *self.whole[0].values(),
               *self.whole[1:]]
        return int(sum(a.nbytes for a in own))

    def overview(self, placed: Placed, *, unit=None, level=None, category) -> tuple[pd.DataFrame, pd.DataFrame]:
        """:func:`overview` of ``placed`` (the events counted, in any order), for this tally's period and one
        category (every other parameter at its default): the same tables, read from the columns of ``category``.

        Raises
        ------
        EventsError
            A category the tally does not count (:func:`overview` answers it), other events than those
            counted, or as :func:`overview`.
        """
        wanted = [category] if isinstance(category, str) else list(category or ())
        if len(wanted) != 1 or str(wanted[0]) not in self.categories:
            raise EventsError(f"the tally counts one category of {self.categories} at a time, not {category!r}: "
                              "ask gridgeo.events.overview")
        if len(placed) != self.events or [str(c) for c in placed.category.categories] != self.categories:
            raise EventsError(f"these {len(placed)} events are not the {self.events} the tally counted: tally them")
        levels = _levels(placed, level)
        g = self.categories.index(str(wanted[0]))
        n = len(self.periods[0])
        columns = slice(g * n, (g + 1) * n)
        if unit is None or unit == "":
            counts, median, p90 = self.whole
            whole = _region_frame({key: value[g].astype(np.int64) for key, value in counts.items()}, median[g], p90[g],
                                  "", "", "", self.periods)
        else:  # one unit's events, read from its category's run (the unit's row is no sum of the whole's)
            whole = region(placed, unit=unit, period=self.period, category=wanted)
        whole.attrs = dict(self.attrs)
        counts = {key: value[:, columns].astype(np.int64) for key, value in self.counts.items()}
        times = {lv: (self.hours[lv][0][:, columns], self.hours[lv][1][:, columns]) for lv in levels}
        table = _table_frame(placed, levels, counts, times, [None], None, *self.periods)
        table.attrs = dict(self.attrs)
        return whole, table


def tally(events, units_or_index=None, *, period="month") -> Tally:
    """Count every unit's indicators per category and period once (:class:`Tally`), for :meth:`Tally.overview`.

    The rules are those of :func:`indicators` and :func:`region` (the default
    span, ``as_of`` and time limits); each count and each time is made once for
    every category together, grouped by category as ``by="category"`` groups
    them, so that a category read from the tally is what a filter on it counts.

    Parameters
    ----------
    events : GeoDataFrame or Placed
    units_or_index : GeoDataFrame or gridgeo.AssignIndex, optional
    period : {"month", "week", "day", "quarter", "year"}, default "month"

    Returns
    -------
    Tally

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> placed = gridgeo.events.place(s.events, s.grids)
    >>> counted = gridgeo.events.tally(placed, period="quarter")
    >>> whole, towns = counted.overview(placed, level="town", category="dispute")
    >>> whole.equals(gridgeo.events.region(placed, period="quarter", category="dispute"))
    True
    >>> towns.equals(gridgeo.events.indicators(placed, level="town", period="quarter", category="dispute"))
    True
    """
    if period is None:
        raise EventsError("a tally needs a period (month, week, day, quarter or year) / 须指定统计周期")
    placed = _placed(events, units_or_index)
    periods = _periods(period, None, None, placed)
    cut = placed.attrs["as_of"]
    categories = [str(c) for c in placed.category.categories]
    group, _ = _by(placed, "category")
    timed = _timed(placed, np.flatnonzero(_chosen(placed, None)), _limits(placed, None), group, *periods[1:], cut)
    n_groups, n = len(categories), len(periods[0])
    counts = {key: value.astype(np.int32) for key, value in _unit_counts(placed, timed, n_groups, n).items()}
    hours = _level_times(placed, list(placed.index.levels), timed, n_groups, n)
    inside, *_ = _region_events(placed, None)
    whole = _region_counts(timed, inside[timed.where], n_groups, n)
    return Tally(events=len(placed), period=period, periods=periods, categories=categories, counts=counts, hours=hours,
                 whole=({key: value.astype(np.int32) for key, value in whole[0].items()}, *whole[1:]),
                 attrs=_attrs(placed, cut, period, None))


def _attrs(placed, cut, period, time_limits) -> dict:
    return {**{k: placed.attrs[k] for k in ("unplaced", "undated", "inconsistent")},
            "as_of": pd.Timestamp(cut, unit="s"), "period": period,
            "time_limits": dict(DEFAULT_TIME_LIMITS if time_limits is None else time_limits)}


def _region_rows(timed, inside, code, name, level, periods) -> pd.DataFrame:
    """The rows of :func:`region` of the events of ``timed`` that ``inside`` (a mask over them) holds."""
    counts, median, p90 = _region_counts(timed, inside, 1, len(periods[0]))
    return _region_frame({key: value[0] for key, value in counts.items()}, median[0], p90[0], code, name, level,
                         periods)


def _region_counts(timed, inside, n_groups, n):
    """The counts (``received``, ``closed``, ``on_time``, ``backlog``, ``overdue``) and the median and 90th
    percentile seconds of the events of ``timed`` that ``inside`` holds, per group (rows) and period."""
    counts = _counted(np.where(inside, 0, -1), timed, 1, n_groups, n)
    counts = {key: value.reshape(n_groups, n).astype(np.int64) for key, value in counts.items()}
    measured = timed.timed & inside
    median, p90 = _quantiles(timed.group[measured] * n + timed.closed[measured], timed.seconds[measured],
                             n_groups * n, (0.5, 0.9))
    return ({"received": counts["received"], "closed": counts["closed"], "on_time": counts["on_time"],
             "backlog": counts["reported_before"] - counts["closed_before"],
             "overdue": counts["due_before"] - counts["late_before"]},
            median.reshape(n_groups, n), p90.reshape(n_groups, n))


def _region_frame(counts, median, p90, code, name, level, periods) -> pd.DataFrame:
    """:func:`region`'s rows from one group's counts and times (seconds) per period."""
    labels, starts, ends = periods
    n = len(labels)
    received, closed, on_time, backlog = counts["received"], counts["closed"], counts["on_time"], counts["backlog"]
    workload = closed + backlog
    return pd.DataFrame({"code": pd.array([code] * n, dtype="str"), "name": pd.array([name] * n, dtype="str"),
                         "level": pd.array([level] * n, dtype="str"), "period": pd.array(labels, dtype="str"),
                         "period_start": pd.to_datetime(starts, unit="s"), "period_end": pd.to_datetime(ends, unit="s"),
                         "received": received, "closed": closed, "backlog": backlog,
                         "closure_rate": np.divide(closed, workload, out=np.full(n, np.nan), where=workload > 0),
                         "median_hours": median / 3600.0, "p90_hours": p90 / 3600.0, "on_time": on_time,
                         "on_time_rate": np.divide(on_time, closed, out=np.full(n, np.nan), where=closed > 0),
                         "overdue": counts["overdue"]})


def _region_events(placed: Placed, unit):
    """(which events the unit holds, its code, name and level) of a unit, or of the whole area."""
    if unit is None or unit == "":
        top = placed.index.levels[0]
        return placed.unit[top] >= 0, "", "", ""
    for lv in placed.index.levels:
        position = pd.Index(placed.index.codes[lv]).get_indexer([str(unit)])[0]
        if position >= 0:
            names = placed.index.grids.set_index("code")["name"]
            return placed.unit[lv] == position, str(unit), str(names.get(str(unit), "")), lv
    raise EventsError(f"没有编码为 {unit!r} 的单元 — no unit with code {unit!r}: give a unit's code, or none for the "
                      "whole area")


def _by(placed, by):
    if by is None:
        return None, [None]
    if by not in ("category", "status"):
        raise EventsError(f"by 只能是 category 或 status — by must be 'category' or 'status', got {by!r}")
    values = getattr(placed, by)
    return values.codes.astype(np.int64), list(values.categories)


@dataclasses.dataclass
class _Timed:
    """Per event (of those kept), where its times fall among the periods: computed once for every level."""

    where: slice | np.ndarray  # the positions of the events counted (every array below is over them, in this order)
    group: np.ndarray      # the `by` value's code
    received: np.ndarray   # period of the report, or -1
    closed: np.ndarray     # period of the close, or -1
    on_time: np.ndarray    # closed in a period listed, within its limit
    open_first: tuple      # first period whose instant is after (reported, closed, deadline, max(deadline, closed))
    timed: np.ndarray      # closed in a period listed, with a sane duration
    seconds: np.ndarray    # duration in seconds of the timed events


def _timed(placed, where, limit, group, starts, ends, cut) -> _Timed:
    """``where``: the positions of the events counted (:func:`_kept`: taken by position, far faster than a
    sparse mask); ``limit``: each category's limit (:func:`_limits`); ``group``: each event's `by` code, or
    None for one group."""
    n_periods = len(starts)
    edges = np.append(starts, ends[-1])
    reported, closed = placed.reported[where], placed.closed[where]
    lim = limit[placed.category.codes[where]] if len(limit) else np.zeros(len(reported), np.int64)

    def period(times):
        j = np.searchsorted(edges, times, side="right") - 1
        return np.where((j >= 0) & (j < n_periods) & (times != _NEVER), j, -1)

    at = np.minimum(ends, cut)

    def first(times):  # n_periods for never
        return np.where(times != _NEVER, np.searchsorted(at, times, side="right"), n_periods)

    duration = np.where((closed != _NEVER) & (closed >= reported), closed - reported, -1)
    j_closed = period(closed)
    deadline = reported + lim
    timed = (duration >= 0) & (j_closed >= 0)
    group = np.zeros(len(reported), np.int64) if group is None else group[where]
    return _Timed(where=where, group=group, received=period(reported), closed=j_closed,
                  on_time=timed & (duration <= lim),
                  open_first=(first(reported), first(closed), first(deadline), first(np.maximum(deadline, closed))),
                  timed=timed, seconds=duration)


def _table(placed, levels, timed, group_names, by, labels, starts, ends, rows=None):
    """The indicators of the units of ``levels`` (or of ``rows`` of the unit table among them: the rows
    inside a unit, counted among the units below them only): counts made once at the deepest unit of each
    event and rolled up the tree (partial levels count their own events), times sorted per level."""
    n_groups, n_periods = len(group_names), len(labels)
    if rows is None:
        counts = _unit_counts(placed, timed, n_groups, n_periods)
        times = _level_times(placed, levels, timed, n_groups, n_periods)
        return _table_frame(placed, levels, counts, times, group_names, by, labels, starts, ends)
    table, tree, deepest = placed.units
    width = n_groups * n_periods
    space = np.unique(np.concatenate([rows, tree.roll_up[rows].indices]))  # the rows and the units below them
    target = _Rows(rows)
    found = _counted(_among(space, deepest.take(timed.where)), timed, len(space), n_groups, n_periods)
    roll = tree.roll_up[rows][:, space]
    counts = {name: roll @ value for name, value in found.items()}  # the finest full units, rolled up
    for lv in tree.partial:  # each partial level's own
        unit = placed.unit[lv].take(timed.where)
        found = _counted(target.position(np.where(unit >= 0, tree.start[lv] + unit, -1)), timed, target.size,
                         n_groups, n_periods)
        for name, value in found.items():
            counts[name] = counts[name] + value
    counts = {name: np.rint(np.asarray(value)).astype(np.int64) for name, value in counts.items()}
    counts["backlog"] = counts.pop("reported_before") - counts.pop("closed_before")
    counts["overdue"] = counts.pop("due_before") - counts.pop("late_before")
    median = np.full((len(rows), width), np.nan)
    p90 = np.full((len(rows), width), np.nan)
    for lv in levels:  # a median is made from the events, never from the children's medians
        n_units = len(placed.index.codes[lv])
        mine = np.flatnonzero((rows >= tree.start[lv]) & (rows < tree.start[lv] + n_units))
        if len(mine) == 0:
            continue
        at = rows[mine] - tree.start[lv]  # ascending
        unit = placed.unit[lv].take(timed.where)
        unit = unit if len(at) == n_units else _among(at, unit)
        ok = timed.timed & (unit >= 0)
        group = (unit[ok] * n_groups + timed.group[ok]) * n_periods + timed.closed[ok]
        m, p = _quantiles(group, timed.seconds[ok], len(at) * width, (0.5, 0.9))
        median[mine] = m.reshape(len(at), width) / 3600.0
        p90[mine] = p.reshape(len(at), width) / 3600.0
    return _frame(placed, rows, counts, median, p90, group_names, by, labels, starts, ends)


def _unit_counts(placed, timed, n_groups, n_periods) -> dict:
    """``received``, ``closed``, ``on_time``, ``backlog`` and ``overdue`` of every unit of every level (rows: the
    unit table of :attr:`Placed.units`) per group and period (columns: group-major)."""
    table, tree, deepest = placed.units
    n_all = len(table)
    counts = {}
    places = [(deepest[timed.where], None)] + [(placed.unit[lv][timed.where], lv) for lv in tree.partial]
    for unit, lv in places:  # the finest full units, then each partial level's own
        where = unit if lv is None else np.where(unit >= 0, tree.start[lv] + unit, -1)
        found = _counted(where, timed, n_all, n_groups, n_periods)
        if lv is None:
            found = {name: tree.roll_up @ value for name, value in found.items()}
        for name, value in found.items():
            counts[name] = counts.get(name, 0) + value
    counts = {name: np.rint(value).astype(np.int64) for name, value in counts.items()}
    counts["backlog"] = counts.pop("reported_before") - counts.pop("closed_before")
    counts["overdue"] = counts.pop("due_before") - counts.pop("late_before")
    return counts


def _level_times(placed, levels, timed, n_groups, n_periods) -> dict:
    """Per level, the median and 90th percentile hours to close of each unit (rows) per group and period."""
    width = n_groups * n_periods
    out = {}
    for lv in levels:  # a median is made from the events, never from the children's medians
        n_units = len(placed.index.codes[lv])
        unit = placed.unit[lv][timed.where]
        ok = timed.timed & (unit >= 0)
        group = (unit[ok] * n_groups + timed.group[ok]) * n_periods + timed.closed[ok]
        m, p = _quantiles(group, timed.seconds[ok], n_units * width, (0.5, 0.9))
        out[lv] = (m.reshape(n_units, width) / 3600.0, p.reshape(n_units, width) / 3600.0)
    return out


def _table_frame(placed, levels, counts, times, group_names, by, labels, starts, ends) -> pd.DataFrame:
    """:func:`indicators`' table of the units of ``levels`` from :func:`_unit_counts` and :func:`_level_times`."""
    _, tree, _ = placed.units
    width = len(group_names) * len(labels)
    rows = np.concatenate([np.arange(tree.start[lv], tree.start[lv] + len(placed.index.codes[lv])) for lv in levels]) \
        if levels else np.zeros(0, np.int64)
    median = np.concatenate([times[lv][0] for lv in levels]) if levels else np.full((0, width), np.nan)
    p90 = np.concatenate([times[lv][1] for lv in levels]) if levels else np.full((0, width), np.nan)
    return _frame(placed, rows, {name: np.asarray(value)[rows] for name, value in counts.items()}, median, p90,
                  group_names, by, labels, starts, ends)


def _frame(placed, rows, counts, median, p90, group_names, by, labels, starts, ends) -> pd.DataFrame:
    """The table of the unit table's ``rows`` from their counts (rows x group and period) and times."""
    n_groups, n_periods = len(group_names), len(labels)
    width = n_groups * n_periods

    def flat(matrix):
        return np.asarray(matrix).reshape(-1)

    def text(values, repeat):
        return pd.array(np.asarray(values, dtype=object), dtype="str").take(repeat)

    per_row = np.repeat(rows, width)  # the units' text made once per version (Placed.unit_text), then taken
    out = pd.DataFrame({column: values.take(per_row) for column, values in placed.unit_text.items()})
    if by is not None:
        out[by] = text(group_names, np.tile(np.repeat(np.arange(n_groups), n_periods), len(rows)))
    each = np.tile(np.arange(n_periods), len(rows) * n_groups)
    out["period"] = text(labels, each)
    out["period_start"] = pd.to_datetime(starts, unit="s").take(each)  # a dozen dates made, then taken
    out["period_end"] = pd.to_datetime(ends, unit="s").take(each)
    received, closed, on_time = flat(counts["received"]), flat(counts["closed"]), flat(counts["on_time"])
    backlog, overdue = flat(counts["backlog"]), flat(counts["overdue"])
    workload = closed + backlog
    out["received"] = received
    out["closed"] = closed
    out["backlog"] = backlog
    out["closure_rate"] = np.divide(closed, workload, out=np.full(len(out), np.nan), where=workload > 0)
    out["median_hours"] = np.asarray(median).reshape(-1)
    out["p90_hours"] = np.asarray(p90).reshape(-1)
    out["on_time"] = on_time
    out["on_time_rate"] = np.divide(on_time, closed, out=np.full(len(out), np.nan), where=closed > 0)
    out["overdue"] = overdue
    return out


class _Rows:
    """Rows of the unit table in any order, and where a row is among them."""

    def __init__(self, rows):
        self.rows, self.size = rows, len(rows)
        self.sorter = np.argsort(rows, kind="stable")

    def position(self, where) -> np.ndarray:
        """Each value of ``where`` as its position among the rows, -1 where it is none of them."""
        pos = _among(self.rows[self.sorter], where)
        return np.where(pos >= 0, self.sorter[np.maximum(pos, 0)], -1)


def _among(space, where) -> np.ndarray:
    """Each value of ``where`` as its position in ``space`` (ascending), -1 where it is not there."""
    if len(space) == 0:
        return np.full(len(where), -1, dtype=np.int64)
    pos = np.minimum(np.searchsorted(space, where), len(space) - 1)
    return np.where(space[pos] == where, pos, -1)


def _counted(unit, timed, n_units, n_groups, n_periods) -> dict:
    """Per unit (rows) and group x period (columns): the counts of events whose unit is ``unit``."""
    live = unit >= 0
    key = unit * n_groups + timed.group
    size = n_units * n_groups

    def per_period(j, where=None):
        ok = (j >= 0) & live if where is None else (j >= 0) & live & where
        return np.bincount(key[ok] * n_periods + j[ok], minlength=size * n_periods).reshape(n_units, n_groups * n_periods)

    def before(first):
        counts = np.bincount(key[live] * (n_periods + 1) + first[live], minlength=size * (n_periods + 1))
        return np.cumsum(counts.reshape(size, n_periods + 1), axis=1)[:, :n_periods].reshape(n_units, n_groups * n_periods)

    rep_first, clo_first, due_first, late_first = timed.open_first
    return {"received": per_period(timed.received), "closed": per_period(timed.closed),
            "on_time": per_period(timed.closed, timed.on_time),
            "reported_before": before(rep_first), "closed_before": before(clo_first),
            "due_before": before(due_first), "late_before": before(late_first)}


def _quantiles(group, values, n_groups, qs):
    """Per group (0..n_groups-1), the quantiles ``qs`` of ``values`` (linear, as pandas); NaN when empty.

    Integer values (seconds) are sorted with their group in one int64 key, a single sort."""
    values = np.asarray(values)
    if values.dtype.kind in "iu" and len(values) and values.min() >= 0 and values.max() < 2**40 and n_groups < 2**22:
        packed = np.sort((group.astype(np.int64) << 40) | values.astype(np.int64))
        group, values = packed >> 40, (packed & (2**40 - 1)).astype(float)
    else:
        order = np.lexsort((values, group))
        group, values = group[order], values[order].astype(float)
    counts = np.bincount(group, minlength=n_groups)
    offset = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = []
    has = counts > 0
    for q in qs:
        position = q * np.maximum(counts - 1, 0)
        low = np.floor(position).astype(np.int64)
        high = np.minimum(low + 1, np.maximum(counts - 1, 0))
        fraction = position - low
        result = np.full(n_groups, np.nan)
        lo_v = values[(offset + low)[has]]
        hi_v = values[(offset + high)[has]]
        result[has] = lo_v + (hi_v - lo_v) * fraction[has]
        out.append(result)
    return out


# ----------------------------------------------------------------------------------------------
# trends and rankings
# ----------------------------------------------------------------------------------------------


def trends(events, units_or_index=None, *, level=None, period="month", start=None, end=None, category=None,
           time_limits=None, as_of=None, indicator=None, unit=None) -> pd.DataFrame:
    """The indicators as a series per unit, with the change from the period before and a year before.

    The rule: for an indicator ``x``, ``x_pop`` is ``x`` minus its value in the
    period before (环比) and ``x_yoy`` minus its value in the same period a year
    before (同比: the same month, quarter, day, or ISO week number of the year
    before), both plain differences (rates in points); they are missing where
    that period is before the first event or has no value. The earlier periods
    are computed from the events, whatever ``start`` says.

    Parameters
    ----------
    indicator : str or list of str, optional
        The indicators to follow (default all of :data:`INDICATORS`).
    unit : str, optional
        Only the rows of the units inside this one, exactly the rows the table of
        every unit has for them, counted from their events alone (as :func:`indicators`).
    Others
        As :func:`indicators`; `period` must not be None.

    Returns
    -------
    DataFrame
        :func:`indicators` with ``x_pop`` and ``x_yoy`` beside each indicator ``x``,
        ordered by unit then period.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> t = gridgeo.events.trends(s.events, s.grids, level="town", indicator="received")
    >>> feb = t.set_index("period").loc["2025-02"]
    >>> int(feb["received_pop"]) == int(feb["received"]) - int(t.set_index("period").loc["2025-01", "received"])
    True
    >>> v = gridgeo.events.trends(s.events, s.grids, level="village", indicator="received")
    >>> mine = gridgeo.events.trends(s.events, s.grids, level="village", indicator="received", unit="350582106201")
    >>> mine.equals(v[v["code"].str.startswith("350582106201")].reset_index(drop=True))
    True
    """
    if period is None:
        raise EventsError("trends need a period (month, week, day, quarter or year) / 趋势须指定统计周期")
    placed = _placed(events, units_or_index)
    wanted = _indicators(indicator)
    labels, starts, _ = _periods(period, start, end, placed)
    first = pd.Timestamp(int(starts[0]), unit="s")
    earlier = (first - pd.DateOffset(years=1)) - pd.Timedelta(days=7)
    full = indicators(placed, level=level, period=period, start=earlier, end=end, category=category,
                      time_limits=time_limits, as_of=as_of, unit=unit)
    dated = placed.reported[placed.reported != _NEVER]
    known = full["period_end"] > pd.Timestamp(int(dated.min()) if len(dated) else 0, unit="s")
    for x in wanted:  # periods before the first event have no value to compare with
        full[x] = full[x].astype(float).where(known)
    out = changes(full, wanted)
    out = out[out["period_start"] >= first].reset_index(drop=True)
    for x in wanted:
        if x in _COUNTS:
            out[x] = out[x].astype("Int64")
    out.attrs = full.attrs
    return out


def changes(table: pd.DataFrame, indicator=None) -> pd.DataFrame:
    """Beside each indicator ``x`` of an :func:`indicators` table, ``x_pop`` and ``x_yoy`` (the rule of :func:`trends`).

    Works on any table of that shape, a public one (:func:`gridgeo.disclosure.public_indicators`)
    too: a change is missing where either value is.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"code": "1", "name": "", "level": "town", "parent": "",
    ...                   "period": ["2024-06", "2025-05", "2025-06"], "received": [4, 10, 13],
    ...                   "period_start": pd.to_datetime(["2024-06-01", "2025-05-01", "2025-06-01"]),
    ...                   "period_end": pd.to_datetime(["2024-07-01", "2025-06-01", "2025-07-01"])})
    >>> changes(t, "received")[["received_pop", "received_yoy"]].iloc[-1].tolist()
    [3.0, 9.0]
    """
    wanted = _indicators(indicator)
    plain = table.copy(deep=False)
    plain.attrs = {}  # pandas copies a frame's attrs deeply at every step: not the table's, once per column
    level_rank, code_rank = _ranks(plain["level"]), _ranks(plain["code"])
    start = plain["period_start"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    end = plain["period_end"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    start = np.where(start == np.iinfo(np.int64).min, np.iinfo(np.int64).max, start)  # NaT last, as sort_values
    order = np.lexsort((start, code_rank, level_rank))  # stable: by level, code, then period start
    code_rank, start, end = code_rank[order], start[order], end[order]
    same_unit = np.zeros(len(order), bool)
    named = plain["code"].notna().to_numpy()[order]  # a missing code is no unit: never the same as another
    same_unit[1:] = (code_rank[1:] == code_rank[:-1]) & named[1:] & (start[1:] == end[:-1]) & \
        (start[1:] != np.iinfo(np.int64).max)
    # the row of the same unit a year before: (code, label) keys as integers, the labels' year-before once each
    label, labels = pd.factorize(plain["period"].to_numpy(dtype=object)[order])
    before_label = pd.Index(labels).get_indexer(_year_before(pd.Series(labels, dtype="str"))) \
        if len(labels) else np.zeros(0, np.int64)
    width = max(len(labels), 1)
    keys = pd.Index(np.where(label >= 0, code_rank * width + label, -1))
    wanted_label = np.where(label >= 0, before_label[label], -1)
    year_row = keys.get_indexer(np.where((wanted_label >= 0) & named, code_rank * width + wanted_label, -2))
    keep = [c for c in ("code", "name", "level", "parent", "period", "period_start", "period_end") if c in plain.columns]
    columns = {c: plain[c].array.take(order) for c in keep}
    for x in wanted:
        column = plain[x].array.take(order)
        value = np.asarray(column.to_numpy(dtype=float, na_value=np.nan) if hasattr(column, "to_numpy")
                           else column, dtype=float)
        previous = np.concatenate([[np.nan], value[:-1]])
        columns[x] = column
        columns[f"{x}_pop"] = np.where(same_unit, value - previous, np.nan)
        columns[f"{x}_yoy"] = value - np.where(year_row >= 0, value[np.maximum(year_row, 0)], np.nan)
    out = pd.DataFrame(columns)
    out.attrs = table.attrs
    return out


def _ranks(column: pd.Series) -> np.ndarray:
    """Each value's place among the sorted distinct values (missing ones last: -1 would sort first)."""
    codes, uniques = pd.factorize(column.to_numpy(dtype=object), sort=True)
    return np.where(codes >= 0, codes, len(uniques)).astype(np.int64)


def _year_before(labels: pd.Series) -> np.ndarray:
    """The label of the same period a year before."""
    text = labels.astype(str)
    year = text.str[:4].astype(int) - 1
    return (year.astype(str) + text.str[4:]).to_numpy(dtype=object)


def _indicators(indicator) -> list[str]:
    wanted = list(INDICATORS) if indicator is None else ([indicator] if isinstance(indicator, str) else
                                                          list(indicator))
    unknown = [x for x in wanted if x not in INDICATORS]
    if unknown:
        raise EventsError(f"没有指标 {unknown}，可用 {list(INDICATORS)} — no indicator {unknown}: use one of "
                          f"{list(INDICATORS)}")
    return wanted


def ranking(events, units_or_index=None, *, indicator="closure_rate", level="town", period="month", at=None,
            start=None, end=None, category=None, time_limits=None, as_of=None, unit=None) -> pd.DataFrame:
    """The units of a level ranked by an indicator in a period, with the change from the period before.

    The rule: rank 1 is the best (:data:`HIGHER_IS_BETTER` says which way; for
    ``received`` the fewest events); ties share the best rank they span
    (``method="min"``); units with no value (a rate with nothing to measure)
    come last, unranked.

    Parameters
    ----------
    indicator : str, default "closure_rate"
    level : str, default "town"
    at : str, optional
        The period's label (``2025-06``); default the last period.
    unit : str, optional
        Rank only the level's units inside this one (counted from their events alone,
        :func:`trends`); their ranks are among themselves.
    Others
        As :func:`indicators`.

    Returns
    -------
    DataFrame
        One row per unit, best first: ``rank``, ``code``, ``name``, ``parent``,
        ``period``, ``value``, ``previous`` (the period before), ``change``
        (``value - previous``), ``previous_rank`` and ``rank_change``
        (``previous_rank - rank``: positive is up).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> r = gridgeo.events.ranking(s.events, s.grids, indicator="backlog", level="village", at="2025-06")
    >>> len(r), int(r["rank"].iloc[0])
    (28, 1)
    >>> bool(r["value"].is_monotonic_increasing)
    True
    """
    (indicator,) = _indicators(indicator)
    if isinstance(level, (list, tuple)):
        raise EventsError("ranking takes one level / 排名只针对一个层级")
    table = trends(events, units_or_index, level=level, period=period, start=start, end=end, category=category,
                   time_limits=time_limits, as_of=as_of, indicator=indicator, unit=unit)
    return ranked(table, indicator, at)


def ranked(table: pd.DataFrame, indicator: str, at=None) -> pd.DataFrame:
    """The rows of one period of a :func:`trends` table (or of :func:`changes`) ranked (the rule of :func:`ranking`).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"code": ["a", "b", "c"], "name": "", "parent": "", "period": "2025-06",
    ...                   "backlog": [5, 2, None], "backlog_pop": [1, -1, None]})
    >>> ranked(t, "backlog")[["code", "rank"]].values.tolist()
    [['b', 1], ['a', 2], ['c', <NA>]]
    """
    (indicator,) = _indicators(indicator)
    plain = table.copy(deep=False)
    plain.attrs = {}  # pandas copies a frame's attrs deeply at every step: not the table's, once per column
    labels = plain["period"].to_numpy(dtype=object)
    periods = list(pd.unique(labels))
    if not periods:
        raise EventsError("no period to rank / 没有可排名的周期")
    at = periods[-1] if at is None else str(at)
    if at not in periods:
        raise EventsError(f"没有周期 {at!r} — no period {at!r}: use one of {periods[0]} … {periods[-1]}")
    higher = HIGHER_IS_BETTER[indicator]
    now = np.flatnonzero(labels == at)
    change = plain[f"{indicator}_pop"].to_numpy(dtype=float, na_value=np.nan)[now]
    out = pd.DataFrame({"code": pd.Index(plain["code"].array.take(now), name="code"),
                        "name": plain["name"].to_numpy()[now], "parent": plain["parent"].to_numpy()[now],
                        "period": at, "value": plain[indicator].to_numpy(dtype=float, na_value=np.nan)[now]})
    out["previous"] = out["value"] - change
    out["change"] = change
    out["rank"] = out["value"].rank(method="min", ascending=not higher).astype("Int64")
    out["previous_rank"] = out["previous"].rank(method="min", ascending=not higher).astype("Int64")
    out["rank_change"] = out["previous_rank"] - out["rank"]
    out = out.sort_values(["rank", "code"], na_position="last", kind="stable").reset_index(drop=True)
    return out[["rank", "code", "name", "parent", "period", "value", "previous", "change", "previous_rank",
                "rank_change"]]


def map_values(table: pd.DataFrame, indicator: str, at) -> pd.DataFrame:
    """One period's value of an indicator for every unit of an :func:`indicators` table: the one map's event
    choropleth, and what its print and Excel export show.

    The rows of period ``at`` (a label: ``2025-06``), in the table's order, indexed by ``code``: ``name``,
    ``level``, ``parent``, the indicator as a float named :data:`MAP_FIELD` + indicator (``ev_closure_rate``;
    NaN where there is nothing to measure, or where a public table withholds it) and ``suppressed`` (False
    unless the table says). Works on a public table (:func:`gridgeo.disclosure.public_indicators`) alike.

    Raises
    ------
    EventsError
        An unknown indicator, or a period the table does not have.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> table = gridgeo.events.indicators(s.events, s.grids, level="village", period="quarter")
    >>> v = map_values(table, "received", "2025-Q2")
    >>> len(v), list(v.columns)
    (28, ['name', 'level', 'parent', 'ev_received', 'suppressed'])
    >>> int(v["ev_received"].sum()) == int(table.loc[table["period"] == "2025-Q2", "received"].sum())
    True
    """
    (indicator,) = _indicators(indicator)
    chosen = (table["period"] == str(at)).to_numpy(dtype=bool, na_value=False)
    if not chosen.any():
        periods = list(dict.fromkeys(table["period"]))
        raise EventsError(f"没有周期 {at!r} — no period {at!r}: use one of "
                          f"{periods[0] + ' … ' + periods[-1] if periods else 'none (the table is empty)'}")
    if indicator not in table.columns:
        raise EventsError(f"这张表没有 {indicator} — the table has no {indicator!r} (a public table withholds "
                          f"{[x for x in INDICATORS if x not in table.columns]})")
    where = np.flatnonzero(chosen)
    value = table[indicator].iloc[where]
    suppressed = table["suppressed"].iloc[where].fillna(False).astype(bool).to_numpy() \
        if "suppressed" in table.columns else np.zeros(len(where), bool)
    out = pd.DataFrame({"name": table["name"].array.take(where), "level": table["level"].array.take(where),
                        "parent": table["parent"].array.take(where),
                        MAP_FIELD + indicator: value.to_numpy(dtype=float, na_value=np.nan),
                        "suppressed": suppressed},
                       index=pd.Index(table["code"].array.take(where), name="code"))
    return out


def map_caption(at, category=None, language: str = "zh") -> str:
    """The period and the categories of an event choropleth in words, for a title (``2025-06 · 矛盾纠纷``).

    Examples
    --------
    >>> map_caption("2025-06", ["dispute", "road"]), map_caption("2025-Q2", None, "en")
    ('2025-06 · 矛盾纠纷、道路设施', '2025-Q2 · all categories')
    """
    from gridgeo.schema import EVENT_CATEGORIES

    wanted = [category] if isinstance(category, str) else list(category or ())
    named = [EVENT_CATEGORIES.get(c, (c, c))[1 if language == "en" else 0] for c in wanted]
    if not named:
        return f"{at} · {'all categories' if language == 'en' else '全部类别'}"
    return f"{at} · {(', ' if language == 'en' else '、').join(named)}"


# ----------------------------------------------------------------------------------------------
# hot spots
# ----------------------------------------------------------------------------------------------


def hotspots(events, units_or_index=None, *, level="grid2", base=None, per="households", scale=100.0,
             method="gi", permutations=999, alpha=0.05, seed=0, start=None, end=None, category=None) -> pd.DataFrame:
    """Where events cluster: Getis-Ord Gi* or local Moran's I of the event rate per unit (esda).

    The rule: the rate is events reported in ``[start, end)`` per ``scale`` of
    ``base[per]`` (events per 100 households by default; the plain count
    without a base). Weights are Queen contiguity of the units' polygons
    (libpysal's rule: units with a vertex in common in any ring are neighbours,
    so units sharing an edge or a corner). Units without a base (zero
    households) and units left with no neighbour are not tested: their ``z``
    and ``p`` are missing, ``class`` is ``none`` and ``neighbours`` says 0 (and
    ``attrs["islands"]``, ``attrs["no_base"]`` list them). The others are tested
    with ``permutations`` conditional permutations (seeded, so repeatable):

    - ``gi``: Gi* (each unit with itself among its neighbours, binary weights):
      ``z`` is the Gi* z-score, ``p`` the pseudo p-value of the permutations;
      ``hot`` where ``z > 0`` and ``p < alpha``, ``cold`` where ``z < 0`` and ``p < alpha``.
    - ``moran``: local Moran's I (row-standardised): ``z`` is the standardised I
      against the permutations, ``p`` their pseudo p-value; ``hot`` is a high unit
      among high neighbours (quadrant HH) and ``cold`` a low one among low (LL)
      with ``p < alpha``; the outliers (HL, LH) are ``none``, with ``quadrant``.

    Parameters
    ----------
    level : str, default "grid2"
    base : DataFrame, optional
        Indexed by unit code with the column `per` (e.g. :func:`gridgeo.stats.figures`).
    per : str, default "households"
    scale : float, default 100
    method : {"gi", "moran"}
    permutations : int, default 999
    alpha : float, default 0.05
    seed : int, default 0
    start, end, category
        As :func:`indicators`.

    Returns
    -------
    DataFrame
        One row per unit of the level: ``code``, ``events``, ``base``, ``rate``, ``neighbours``,
        ``z``, ``p``, ``class``, ``quadrant`` (moran only).

    Notes
    -----
    The level's Queen weights are made once per assignment index (the placed
    events' ``index``), vectorised (libpysal's ``Queen`` checks them in the
    tests), and kept while the index lives: every question on it (other spans,
    categories, methods, each period of :func:`emerging_hotspots`) takes its
    tested units from them, the same weights as Queen builds on those units
    alone, and then costs esda's permutations. The answers are esda's to the
    bit for the same seed. See ``benchmarks/events.py`` for the city's figures
    against Queen and esda called directly.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
    >>> h = gridgeo.events.hotspots(s.events, s.grids, base=f, permutations=99)
    >>> len(h), sorted(set(h["class"])) <= ["cold", "hot", "none"]
    (128, True)
    """
    from libpysal.weights import w_subset

    if method not in ("gi", "moran"):
        raise EventsError(f"method 只能是 gi 或 moran — method must be 'gi' or 'moran', got {method!r}")
    if not (isinstance(permutations, (int, np.integer)) and 0 < permutations <= 99999):
        raise EventsError(f"permutations must be a positive integer (999 by default), got {permutations!r}")
    placed = _placed(events, units_or_index)
    (level,) = _levels(placed, level)
    codes = placed.index.codes[level]
    counts = _counts(placed, level, start, end, category)
    if base is not None:
        values = _base(base, per, codes)
        rate = np.divide(counts * float(scale), values, out=np.full(len(codes), np.nan), where=values > 0)
    else:
        values = np.full(len(codes), np.nan)
        rate = counts.astype(float)
    tested = ~np.isnan(rate)
    ids = list(np.asarray(codes, dtype=object)[tested])
    whole = _queen(placed.index, level)
    w = w_subset(whole, ids, silence_warnings=True)  # the weights Queen builds on the tested units alone
    islands = set(w.islands)
    connected = [c for c in ids if c not in islands]
    out = pd.DataFrame({"code": pd.array(codes, dtype="str"), "events": counts.astype(np.int64),
                        "base": values, "rate": rate, "neighbours": 0, "z": np.nan, "p": np.nan,
                        "class": "none"})
    if len(connected) >= 3:
        if islands:
            w = w_subset(whole, connected, silence_warnings=True)
        where = pd.Index(codes).get_indexer(connected)
        y = rate[where]
        z, p, klass, quadrant = _local(y, w, method, permutations, alpha, seed)
        out.loc[where, "neighbours"] = [w.cardinalities[c] for c in connected]
        out.loc[where, "z"], out.loc[where, "p"], out.loc[where, "class"] = z, p, klass
        if method == "moran":
            out["quadrant"] = pd.array([pd.NA] * len(out), dtype="Int64")
            out.loc[where, "quadrant"] = quadrant
    out["class"] = pd.Categorical(out["class"], categories=list(HOTSPOT_CLASSES))
    out.attrs = {"method": method, "permutations": permutations, "alpha": alpha, "seed": seed,
                 "islands": sorted(islands), "no_base": list(np.asarray(codes)[~tested]),
                 "rate": f"events per {scale:g} {per}" if base is not None else "events"}
    return out


_QUEENS = weakref.WeakKeyDictionary()
"""Per assignment index, the Queen weights of each level's units (:func:`_queen`); let go with the index."""


def _queen(index, level):
    """Queen contiguity of every unit of ``level`` as libpysal's ``Queen`` gives it, made once per index and level.

    Contiguity depends on the polygons alone, not on the events or the base, so
    every hot spot question on the index (each period of :func:`emerging_hotspots`,
    each category and span the service is asked) takes the units it tests from
    these weights (:func:`libpysal.weights.w_subset`: two units are neighbours
    when they share a vertex, whichever other units are kept, so the subset is
    the weights Queen builds on those units alone) instead of building them again.
    The weights kept are never given to esda (which changes the weights it is
    given): each question gets its own subset.
    """
    from libpysal.weights import W

    kept = _QUEENS.setdefault(index, {})
    if level not in kept:
        codes = list(index.codes[level].to_numpy(dtype=object))
        geoms = index.grids.set_index("code").loc[codes].geometry.to_numpy()
        first, second = _shared_vertex_pairs(geoms)
        order = np.lexsort((second, first))
        first, second = first[order], second[order]
        bounds = np.searchsorted(first, np.arange(len(codes) + 1))
        neighbours = {c: [codes[j] for j in second[bounds[i]:bounds[i + 1]]] for i, c in enumerate(codes)}
        kept[level] = W(neighbours, id_order=codes, silence_warnings=True)
    return kept[level]


def _shared_vertex_pairs(geoms) -> tuple[np.ndarray, np.ndarray]:
    """Every ordered pair (i, j), i != j, of the polygons that share a vertex (equal coordinates) in any of
    their rings: libpysal's Queen rule (``libpysal.weights._contW_lists``: a vertex's polygons are each
    other's neighbours), vectorised. Its Python loop over every vertex was most of a city's first hot spot
    question (0.15-0.3 s for the 98,000 vertices of the 1,736 level-2 grids); ``Queen.from_dataframe``
    checks these pairs in the tests."""
    import shapely

    xy, owner = shapely.get_coordinates(np.asarray(geoms, dtype=object), return_index=True)
    xy = xy + 0.0  # -0.0 becomes 0.0: equal coordinates, equal keys
    order = np.lexsort((owner, xy[:, 1], xy[:, 0]))
    xy, owner = xy[order], owner[order]
    new_vertex = np.r_[True, (xy[1:] != xy[:-1]).any(axis=1)]
    vertex = np.cumsum(new_vertex)
    keep = new_vertex | np.r_[True, owner[1:] != owner[:-1]]  # each polygon once per vertex
    vertex, owner = vertex[keep], owner[keep]
    first, second = [], []
    for k in range(1, len(vertex)):  # the polygons at a vertex are a run: pair each with the k-th after it
        same = vertex[k:] == vertex[:-k]
        if not same.any():
            break
        first += [owner[:-k][same], owner[k:][same]]
        second += [owner[k:][same], owner[:-k][same]]
    if not first:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    n = len(geoms)
    pairs = np.unique(np.concatenate(first).astype(np.int64) * n + np.concatenate(second))
    return pairs // n, pairs % n


def _local(y, w, method, permutations, alpha, seed):
    """(z, p, class, quadrant) of every unit, from esda."""
    if method == "gi":
        from esda.getisord import G_Local

        g = G_Local(y, w, transform="B", star=True, permutations=permutations, seed=seed, n_jobs=1)
        z, p = np.asarray(g.Zs, dtype=float), np.asarray(g.p_sim, dtype=float)
        klass = np.where(p < alpha, np.where(z > 0, "hot", np.where(z < 0, "cold", "none")), "none")
        return z, p, klass, None
    from esda.moran import Moran_Local

    m = Moran_Local(y, w, transformation="r", permutations=permutations, seed=seed, n_jobs=1)
    z, p, q = np.asarray(m.z_sim, dtype=float), np.asarray(m.p_sim, dtype=float), np.asarray(m.q)
    klass = np.where(p < alpha, np.where(q == 1, "hot", np.where(q == 3, "cold", "none")), "none")
    return z, p, klass, q


def _counts(placed, level, start, end, category):
    """Events reported in [start, end) per unit of the level."""
    keep = _chosen(placed, category)
    if start is not None:
        keep &= placed.reported >= _s(pd.Timestamp(start))
    if end is not None:
        keep &= placed.reported < _s(pd.Timestamp(end))
    unit = placed.unit[level]
    keep &= unit >= 0
    return np.bincount(unit[keep], minlength=len(placed.index.codes[level]))


def _base(base, per, codes):
    table = base.set_index("code") if "code" in base.columns else base
    if per not in table.columns:
        raise EventsError(f"the base has no column {per!r} (it has {list(table.columns)[:12]}): give "
                          "gridgeo.stats.figures with addresses, or name the column with `per` / 缺少基数列")
    return pd.to_numeric(table[per], errors="coerce").reindex(list(codes)).fillna(0).to_numpy(dtype=float)


def emerging_hotspots(events, units_or_index=None, *, level="grid2", period="month", base=None,
                      per="households", scale=100.0, permutations=99, alpha=0.05, seed=0, start=None, end=None,
                      category=None) -> pd.DataFrame:
    """Hot spots over consecutive periods: which are new, intensifying, persistent or diminishing.

    The rule, a simplification of ArcGIS's emerging hot spot analysis: Gi*
    (:func:`hotspots`, ``method="gi"``) is computed for every period; the trend
    of each unit's Gi* z-scores over the periods is the Mann-Kendall test
    (Kendall's tau of z against time, two-sided, significant at ``alpha``).
    The first of these that holds classifies the unit:

    1. ``new``: hot in the last period and in no period before;
    2. ``intensifying``: hot in the last period, and its z rising significantly;
    3. ``persistent``: hot in at least 90 % of the periods, with no significant trend;
    4. ``diminishing``: hot in some period, and its z falling significantly;
    5. ``cold``: cold in the last period;
    6. ``none``: anything else (never hot, or hot now and then without a trend).

    Needs at least three periods; with four (quarters) no trend can be significant at 0.05,
    so months (the default) are the useful grain over a year.

    Returns
    -------
    DataFrame
        One row per unit: ``code``, ``class``, ``hot_periods``, ``periods``,
        ``tau``, ``trend_p``, ``last_z``, ``last_p``.

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
    >>> e = gridgeo.events.emerging_hotspots(s.events, s.grids, base=f, permutations=19)
    >>> len(e), int(e["periods"].iloc[0])
    (128, 12)
    """
    from scipy.stats import kendalltau

    if period is None:
        raise EventsError("emerging hot spots need a period / 须指定统计周期")
    placed = _placed(events, units_or_index)
    labels, starts, ends = _periods(period, start, end, placed)
    if len(labels) < 3:
        raise EventsError(f"emerging hot spots need at least three periods, the span has {len(labels)}: "
                          "choose a shorter period or a longer span / 至少需要三个周期")
    z, klass = [], []
    for s, e in zip(starts, ends):  # one esda run per period (a dozen, not per unit)
        h = hotspots(placed, level=level, base=base, per=per, scale=scale, method="gi", permutations=permutations,
                     alpha=alpha, seed=seed, start=pd.Timestamp(int(s), unit="s"),
                     end=pd.Timestamp(int(e), unit="s"), category=category)
        z.append(h["z"].to_numpy(dtype=float))
        klass.append(h["class"].astype(str).to_numpy())
    codes = h["code"]
    z, klass = np.column_stack(z), np.column_stack(klass)
    hot, cold = klass == "hot", klass == "cold"
    n = len(labels)
    tau = np.full(len(codes), np.nan)
    trend_p = np.full(len(codes), np.nan)
    time = np.arange(n)
    for i in np.flatnonzero(~np.isnan(z).any(axis=1)):  # scipy's test is one series at a time
        result = kendalltau(time, z[i])
        tau[i], trend_p[i] = result.statistic, result.pvalue
    up = (trend_p < alpha) & (tau > 0)
    down = (trend_p < alpha) & (tau < 0)
    hot_count = hot.sum(axis=1)
    last_hot = hot[:, -1]
    rules = [last_hot & (hot_count == 1), last_hot & up, (hot_count >= 0.9 * n) & ~up & ~down,
             (hot_count > 0) & down, cold[:, -1]]
    names = ["new", "intensifying", "persistent", "diminishing", "cold"]
    out = pd.DataFrame({"code": codes, "class": pd.Categorical(np.select(rules, names, default="none"),
                                                                categories=list(EMERGING_CLASSES)),
                        "hot_periods": hot_count.astype(np.int64), "periods": n, "tau": tau, "trend_p": trend_p,
                        "last_z": z[:, -1], "last_p": np.nan})
    out.attrs = {"periods": labels, "alpha": alpha, "permutations": permutations}
    return out


# ----------------------------------------------------------------------------------------------
# stages
# ----------------------------------------------------------------------------------------------


def stages(events, units_or_index=None, *, level=None, period=None, start=None, end=None,
           category=None) -> pd.DataFrame:
    """The median hours of each step of the case flow per unit (and period), where the data time it.

    The rule: a stage (:data:`STAGES`: ``filing`` 立案 reported→filed, ``dispatch``
    派遣, ``handling`` 处置, ``verification`` 核查, ``closing`` 结案 verified→closed)
    is measured on the events that carry both its times, in order; ``whole`` is
    reported→closed. An event belongs to the period of its report. Stages whose
    columns the events lack are left out: with only ``reported_at`` and
    ``closed_at``, only ``whole``.

    Returns
    -------
    DataFrame
        ``code``, ``name``, ``level``, ``parent``, ``period``, and per stage
        ``<stage>_hours`` (median) and ``<stage>_events`` (how many were timed).

    Examples
    --------
    >>> import gridgeo
    >>> s = gridgeo.sample.load()
    >>> st = gridgeo.events.stages(s.events.drop(columns=["filed_at", "dispatched_at", "handled_at",
    ...                                                  "verified_at"], errors="ignore"), s.grids, level="town")
    >>> [c for c in st.columns if c.endswith("_hours")]
    ['whole_hours']
    """
    placed = _placed(events, units_or_index)
    levels = _levels(placed, level)
    labels, starts, ends = _periods(period, start, end, placed)
    keep = _chosen(placed, category)
    times = {"reported_at": placed.reported, "closed_at": placed.closed, **placed.steps}
    measured = [(name, a, b) for name, a, b in STAGES if a in times and b in times] + \
        [("whole", "reported_at", "closed_at")]
    edges = np.append(starts, ends[-1])
    j = np.searchsorted(edges, placed.reported, side="right") - 1
    in_span = (j >= 0) & (j < len(labels))
    frames = []
    grids = placed.index.grids.set_index("code")
    for lv in levels:
        codes = placed.index.codes[lv]
        unit = placed.unit[lv]
        size = len(codes) * len(labels)
        rows = np.repeat(np.arange(len(codes)), len(labels))
        out = pd.DataFrame({"code": pd.array(np.asarray(codes)[rows], dtype="str"),
                            "name": pd.array(grids["name"].reindex(codes).to_numpy()[rows], dtype="str"),
                            "level": lv,
                            "parent": pd.array(grids["parent"].reindex(codes).to_numpy()[rows], dtype="str"),
                            "period": pd.array(np.tile(np.asarray(labels, dtype=object), len(codes)), dtype="str")})
        for name, a, b in measured:
            ta, tb = times[a], times[b]
            ok = keep & in_span & (unit >= 0) & (ta != _NEVER) & (tb != _NEVER) & (tb >= ta)
            group = unit[ok] * len(labels) + j[ok]
            (median,) = _quantiles(group, tb[ok] - ta[ok], size, (0.5,))
            median = median / 3600.0
            out[f"{name}_hours"] = median
            out[f"{name}_events"] = np.bincount(group, minlength=size).astype(np.int64)
        frames.append(out)
    return pd.concat(frames, ignore_index=True)

