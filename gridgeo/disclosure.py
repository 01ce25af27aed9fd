"""Public figures that never single out a person or an event: the minimum count.

Personal information (addresses, events, people) stays with authorised
roles; the public sees aggregates. This module states once what an
aggregate may show the public, and makes tables and heat maps that obey it.

The rule
--------
**No public answer lets anyone count fewer than k addresses, households,
people or events** (``k`` = :data:`MIN_COUNT`, 10 by default), whether the
count is printed in the answer or worked out by adding and subtracting
figures the public can see. Zero is not protected: "nothing here" singles
out nobody.

For figures per unit (:func:`public_figures`):

1. *Primary suppression.* A unit's address figures (``addresses``,
   ``households``, ``population``, ``units``) are suppressed when its
   addresses, households or population count 1 to k-1: a sum over fewer
   than k addresses is one household's record or close to it. Its event
   figures (``events``) are suppressed when it has 1 to k-1 events.
2. *Differencing.* A parent is the sum of its children, so a suppressed
   child could be worked out as the parent minus its published siblings,
   and two small ones as their sum. Across the whole hierarchy, the
   counts anyone can derive this way are the sums of the unpublished cells
   of a *cut*: a published unit, minus published units that partition it
   (children, or some children's children ...), leaves the unpublished
   cells in between, plus each parent's *remainder* (what its children do
   not hold: the addresses outside every level-3 plot, or in a gap of a
   faulty plan). The rule is that every such sum, for every published unit
   and the whole area above the top level, is 0 or at least k.
   Where it is not, further units are suppressed (*secondary*
   suppression): the published sibling that costs least, and below it,
   if its own children would give it away, its largest child, and so on.
3. *Everything computed from a suppressed count is suppressed with it*:
   ``households_per_worker``, ``band`` and ``farthest_m`` with the
   addresses, ``events_per_1000`` with the addresses or the events,
   ``share_<m>min`` with the households reached in <m> minutes.
   Coverage is a count too: the households reached within a life circle
   and the households not reached are each checked as in 1. and 2.
4. A suppressed figure is published as missing (null), with the unit's
   ``suppressed`` flag set. Primary and secondary suppressions look the
   same, so nobody learns which cells are the small ones.
5. *Counties.* A table of several counties (a province's store, e.g.
   :func:`gridgeo.sample.province`) is audited county by county: each
   county is a node between the whole area and its units, and is protected
   exactly as it is in its own store, where it is the whole area. The
   county of a unit is its code's first digits above the top level (the
   code scheme's root digits), or the scheme's ``county`` level when it has
   one (:data:`gridgeo.schema.PREFECTURE_SCHEME`). Secondary suppression
   never crosses a county's boundary: a unit above the counties (the whole
   area, a prefecture) a cut of which would leave 1 to k-1 is withheld
   itself instead of suppressing anything in a county. So a county's
   public answers are the same in the province's store as in its own,
   suppressed cells included, and the two stores' answers together give
   away nothing that each does not alone (were the patterns to differ,
   one store's published cell could be subtracted from the other's).
   *A county's own figures* are what its own store publishes as its whole
   area's: they are audited as published, withheld where its whole area's
   would be (``attrs["counties"]`` says which groups), so they may be shown
   beside the units (the service shows the whole area's alone).

For events on a map (:func:`event_blocks`, :func:`heat`): events are
grouped by period (a calendar month by default) and category, and each
group with at least k events is cut into *blocks* of k to 2k-1 events that
lie close together (alternate median cuts along the longer side, as
Mondrian k-anonymity does). A block is shown as its count at the mean
position of its events. Every number a heat map shows is a sum of whole
blocks, so every count anyone can derive by comparing any number of heat
maps (other cells, periods, categories) is 0 or at least k: no
combination of filters isolates an event. Groups with fewer than k events
are not shown; the answer says how many such groups there are, and so at
most how many events are missing.

What is protected, and what is not
----------------------------------
- Protected: any count of addresses, households, people or events below k
  derived by sums and differences of published figures of the hierarchy
  (units, their parents, the whole area) or of heat cells, across any
  number of answers.
- Not an exact count, so not protected: a suppressed cell's range. Knowing
  the rule, anyone can tell that two suppressed siblings whose sum is s
  each hold between 1 and s-1; an unpublished cell is never pinned to one
  value below k, but may be narrowed to an interval.
- Market entities (``units``) and grid workers are not people: ``units``
  goes with its unit's addresses, ``workers`` and ``stations`` are always
  published.
- Event counts per unit broken down by category or status are left out of
  public tables (:data:`DROPPED`): a two-way table needs a different audit.
- Event indicators per unit and period (:func:`public_indicators`) are
  protected period by period, as figures are: within one period no
  count of events received, closed, open or overdue below k can be derived
  along the hierarchy. The flow from one period to the next (the backlog
  at a period's end is the backlog before plus received minus closed) is
  not audited: it can narrow the difference of two suppressed counts, never
  a count of events on its own. A rate is published when its denominator
  is published (at least k), so ``on_time_rate`` times ``closed`` gives
  the events closed on time, which may be fewer than k.
- Figures and heat cells are different partitions of space; the rule does
  not audit a heat cell against a unit's figures, nor uncovered areas (see
  :func:`public_areas`) against either. Neither can be subtracted from the
  other exactly, since their boundaries differ.

References: Hundepool et al., *Statistical Disclosure Control* (Wiley,
2012), ch. 4 (threshold rule, secondary suppression in hierarchical
tables); LeFevre, DeWitt and Ramakrishnan, *Mondrian multidimensional
k-anonymity* (ICDE 2006).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "DROPPED",
    "INDICATOR_GROUPS",
    "public_indicators",
    "public_whole",
    "public_hotspots",
    "GROUPS",
    "MIN_COUNT",
    "PERIODS",
    "PUBLISHED",
    "DisclosureError",
    "aligned_period",
    "event_blocks",
    "heat",
    "public_areas",
    "public_crosswalk",
    "public_figures",
]

MIN_COUNT = 10
"""The smallest count of addresses, households, people or events a public answer shows (k)."""

AUDIT = "counties"
"""How public answers are audited: each county of a province as its own whole area (rule 5 of the
module notes). Kept with what a store derives from the audit (:mod:`gridgeo.derived`), so that the
public tables of a province audited otherwise (by an older gridgeo, the province alone above its
towns) are made again."""

PERIODS = {"month": "M", "quarter": "Q", "year": "Y"}
"""The periods events are grouped by for public heat maps, and their pandas frequencies."""


class DisclosureError(ValueError):
    """A public question the rule cannot answer as asked (the message says what can be asked)."""


@dataclass(frozen=True)
class Group:
    """Figures of a unit that are suppressed together.

    ``counts`` are checked for differencing; ``primary`` make the unit
    suppressed when one of them counts 1 to k-1; ``rates`` are computed from
    the counts and suppressed with them; ``complement`` (a column of the
    table) makes ``complement - count`` a count checked too (households not
    reached); ``within`` names a group whose suppression implies this one's.
    """

    name: str
    counts: tuple[str, ...]
    primary: tuple[str, ...]
    rates: tuple[str, ...] = ()
    complement: str | None = None
    within: str | None = None


def _coverage_group(minutes: int) -> Group:
    return Group(f"coverage_{minutes}min", (f"households_{minutes}min",), (f"households_{minutes}min",),
                 rates=(f"share_{minutes}min", f"population_{minutes}min"), complement="households",
                 within="addresses")


GROUPS = (
    Group("addresses", ("addresses", "households", "population", "units"), ("addresses", "households", "population"),
          rates=("households_per_worker", "band", "farthest_m", "events_per_1000")),
    Group("events", ("events",), ("events",), rates=("events_per_1000",)),
    *(_coverage_group(m) for m in (5, 10, 15)),
)
"""The groups of figures the rule protects (see the module notes)."""

INDICATOR_GROUPS = (
    Group("received", ("received",), ("received",)),
    Group("closed", ("closed",), ("closed",), rates=("closure_rate", "median_hours", "p90_hours", "on_time_rate")),
    Group("backlog", ("backlog",), ("backlog",), rates=("closure_rate",)),
    Group("overdue", ("overdue",), ("overdue",), complement="backlog"),
)
"""The groups of event indicators (:func:`gridgeo.events.indicators`) the rule protects, per period."""

WITHHELD_INDICATORS = ("on_time",)
"""Event indicators never published: the count closed on time is left out (its
rate, with ``closed`` at least k, says what the public may know)."""

PUBLISHED = ("name", "level", "parent", "workers", "stations", "has_station")
"""Columns published as they are: names and hierarchy, grid workers and stations (not personal)."""

DROPPED = ("events_", "farthest_addr", "unreachable_households")
"""Columns (or prefixes) never published: event breakdowns per unit, an address's id, unaudited counts."""

_BREAKDOWN = ("stations_",)  # station counts by kind: public facilities


def public_figures(figures: pd.DataFrame, k: int = MIN_COUNT, *, scheme=None) -> pd.DataFrame:
    """Figures per unit as the public may see them: every count at least k, or suppressed.

    Parameters
    ----------
    figures : DataFrame
        Figures per unit indexed by ``code`` (or with a ``code`` column), with
        ``level`` and ``parent``: :func:`gridgeo.stats.figures`, with the
        coverage shares or counts of :func:`gridgeo.coverage.per_grid` joined
        in or not. A parent is taken to hold its children (the sums of
        ``stats.figures``); a unit whose parent is not in the table hangs
        under the whole area.
    k : int, default :data:`MIN_COUNT`
        The minimum count; 1 publishes everything.
    scheme : CodeScheme or str, optional
        The code scheme of the units (:func:`gridgeo.schema.scheme_from`;
        default :data:`gridgeo.schema.DEFAULT_SCHEME`): where their counties
        are (rule 5). Units of levels the scheme does not have hang under
        the whole area as they are.

    Returns
    -------
    DataFrame
        The same rows and index, with the columns of :data:`GROUPS` (as
        nullable numbers: suppressed ones missing), :data:`PUBLISHED`,
        station counts by kind, the geometry if any, and ``suppressed``
        (True where any figure of the unit is withheld). Every other column
        is left out (:data:`DROPPED`, and any the rule does not know).
        ``attrs``: ``min_count`` (k), ``suppressed`` ({group: units
        suppressed}, primary and secondary together), ``whole`` ({group:
        whether the whole area's figures must be withheld too}), ``counties``
        ({county: {group: whether the county's own figures must be withheld}},
        empty for one county) and ``left_out`` (the columns not published).

    Raises
    ------
    DisclosureError
        If ``k`` is not a positive integer, or the table lacks ``level`` or ``parent``.

    See Also
    --------
    heat : the same rule for events on a map.

    Notes
    -----
    See the module notes for the rule and what it protects. The work is a
    pass from the deepest units up, keeping for each unit the set of the
    sums below k that cuts through it can leave (a bit set of k+1 bits per
    count), so it takes time linear in the units times k.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import disclosure, sample
    >>> s = sample.load()
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses, events=s.events)
    >>> public = disclosure.public_figures(f, k=10)
    >>> shown = public["households"].dropna()
    >>> bool(((shown == 0) | (shown >= 10)).all())
    True
    >>> plots = public[public["level"] == "grid3"]
    >>> int(plots["suppressed"].sum()) > 0, public.attrs["min_count"]
    (True, 10)
    >>> town = public[public["level"] == "town"].iloc[0]
    >>> int(town["households"]) == int(f.loc[f["level"] == "town", "households"].iloc[0])
    True
    """
    k = _checked_k(k)
    table = _indexed(figures)
    parents = table["parent"].astype(object).where(table["parent"].notna(), "")
    tree = _Tree(table.index.astype(str).to_numpy(dtype=object), parents.astype(str).to_numpy(dtype=object),
                 table["level"].to_numpy(dtype=object), _scheme(scheme))
    geometry = _geometry_name(table)
    audited = {c for g in GROUPS for c in (*g.counts, *g.rates)}
    keep = [c for c in table.columns
            if c in PUBLISHED or c in audited or c.startswith(_BREAKDOWN) or c == geometry]
    out = table[keep].copy()
    suppressed_any = np.zeros(len(table), dtype=bool)
    done: dict[str, np.ndarray] = {}
    for group in GROUPS:
        values = _group_values(table, group)
        if values is None:
            continue
        forced = done[group.within][0] if group.within in done else np.zeros(len(table), dtype=bool)
        verdict = tree.audit(values, _primary(values, k) | forced, k)
        hidden = verdict[:tree.units]
        done[group.name] = (hidden, verdict[tree.units:])
        suppressed_any |= hidden
        for column in (*group.counts, *group.rates):
            if column in out.columns:
                out[column] = _nullable(out[column])
                out.loc[hidden, column] = pd.NA
    out["suppressed"] = suppressed_any
    out.index.name = "code"
    out.attrs = {"min_count": k, "suppressed": {g: int(h.sum()) for g, (h, _) in done.items()},
                 "whole": {g: bool(w[-1]) for g, (_, w) in done.items()},
                 "counties": {c: {g: bool(w[i]) for g, (_, w) in done.items()} for i, c in enumerate(tree.counties)},
                 "left_out": [c for c in table.columns if c not in out.columns]}
    return out


PIECE_COUNTS = ("addresses", "households", "population")
"""The counts of a crosswalk's pieces (:func:`gridgeo.crosswalk.crosswalk`) the minimum count protects."""


def public_crosswalk(table: pd.DataFrame, public: pd.DataFrame, k: int = MIN_COUNT) -> pd.DataFrame:
    """A crosswalk's pieces as the public may see them: the same rule as :func:`public_figures`.

    The rule for pieces: the pieces of a grid (its rows in the crosswalk, one
    per unit of the other layer it overlaps) split the grid's addresses,
    households and people. A grid's piece counts are published only when

    1. the grid's own counts are published (``public``, the output of
       :func:`public_figures`, shows them: the unit is not suppressed);
    2. every piece of the grid counts 0 or at least ``k`` addresses,
       households and people;
    3. what the grid holds outside its pieces (its published count minus its
       pieces': addresses outside every unit of the other layer) is 0 or at
       least ``k`` too, so that no subtraction gives a small count away.

    Otherwise every piece of that grid has its counts withheld (missing) and
    ``suppressed`` set: its pieces look the same whichever condition failed.
    Areas and shares count no one and are always shown. A sum of published
    pieces over several grids (an other unit's total) is a sum of counts of 0
    or at least k, and the pieces of a withheld grid are withheld together.

    Parameters
    ----------
    table : DataFrame
        Rows of :func:`gridgeo.crosswalk.crosswalk` (``code`` and the counts).
    public : DataFrame
        :func:`public_figures` of the grids, indexed by code.
    k : int

    Returns
    -------
    DataFrame
        ``table`` with :data:`PIECE_COUNTS` nullable (withheld ones missing)
        and ``suppressed``; ``attrs["min_count"]`` is k.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import disclosure, sample
    >>> s = sample.load()
    >>> table = gridgeo.crosswalk(s.grids, s.precincts, other_id="precinct_id", addresses=s.addresses)
    >>> f = gridgeo.stats.figures(s.grids, addresses=s.addresses)
    >>> shown = disclosure.public_crosswalk(table, disclosure.public_figures(f))
    >>> h = shown["households"].dropna()
    >>> bool(((h == 0) | (h >= 10)).all()), bool(shown["suppressed"].any())
    (True, True)
    """
    k = _checked_k(k)
    out = table.copy()
    codes = out["code"].astype(str)
    withheld = pd.Series(False, index=out.index)
    grid_hidden = public["suppressed"].reindex(codes.unique()).fillna(True).astype(bool)
    for column in PIECE_COUNTS:
        if column not in out.columns:
            continue
        values = pd.to_numeric(out[column]).fillna(0)
        small = (values > 0) & (values < k)
        totals = pd.to_numeric(public[column], errors="coerce").reindex(codes.unique()) \
            if column in public.columns else pd.Series(np.nan, index=codes.unique())
        rest = totals - values.groupby(codes.to_numpy()).sum().reindex(totals.index)
        grid_hidden |= totals.isna() | ((rest > 0) & (rest < k))
        withheld |= small
    bad = set(grid_hidden[grid_hidden].index) | set(codes[withheld])
    hidden = codes.isin(bad).to_numpy()
    for column in PIECE_COUNTS:
        if column in out.columns:
            out[column] = _nullable(out[column])
            out.loc[hidden, column] = pd.NA
    out["suppressed"] = hidden
    out.attrs = {**table.attrs, "min_count": k}
    return out


def public_indicators(table: pd.DataFrame, k: int = MIN_COUNT, *, scheme=None) -> pd.DataFrame:
    """Event indicators per unit and period as the public may see them (the rule of :func:`public_figures`).

    Each period is a table of its own, and each count in it is protected as
    figures are (:data:`INDICATOR_GROUPS`): a unit's ``received``, ``closed``,
    ``backlog`` or ``overdue`` is suppressed when it counts 1 to k-1, or when a
    subtraction along the hierarchy would give such a count away; so is
    ``overdue`` when the open events not overdue (``backlog - overdue``) would
    count 1 to k-1. The times and ``on_time_rate`` go with ``closed`` (their
    denominator), ``closure_rate`` with ``closed`` and ``backlog``: every rate
    published has a denominator of at least k. The count of events closed on
    time is left out. See the module
    notes for what is not protected (the flow from period to period).

    Parameters
    ----------
    table : DataFrame
        :func:`gridgeo.events.indicators` of every level (a parent must be in
        the table for its children to be audited against it), without a
        breakdown by category or status.
    k : int, default :data:`MIN_COUNT`
    scheme : CodeScheme or str, optional
        As :func:`public_figures`: where the units' counties are.

    Returns
    -------
    DataFrame
        The same rows, the audited columns nullable (suppressed ones missing),
        ``on_time`` left out, and ``suppressed`` (True where any indicator of the
        row is withheld). ``attrs``: ``min_count``, ``suppressed`` ({group: rows}),
        ``whole`` ({period: [the groups the whole area's figures must be withheld
        in]}, periods with none left out; :func:`public_whole` reads it) and
        ``counties`` ({county: {period: [groups]}} likewise, empty for one county).

    Raises
    ------
    DisclosureError
        For a breakdown by category or status (a two-way table needs another
        audit: ask for one category at a time with a viewer key), or a bad k.

    Examples
    --------
    >>> import gridgeo
    >>> from gridgeo import disclosure, events, sample
    >>> s = sample.load()
    >>> table = events.indicators(s.events, s.grids, period="month")
    >>> public = disclosure.public_indicators(table, 10)
    >>> shown = public["received"].dropna()
    >>> bool(((shown == 0) | (shown >= 10)).all()), int(public["suppressed"].sum()) > 0
    (True, True)
    >>> town = public[public["level"] == "town"]
    >>> bool((town["received"] == table.loc[town.index, "received"]).all())
    True
    """
    k = _checked_k(k)
    for column in ("category", "status"):
        if column in table.columns:
            raise DisclosureError(f"indicators broken down by {column} are not public: ask for the totals (or use "
                                  f"a viewer key) / 按{column}分列的指标不公开")
    missing = [c for c in ("code", "level", "parent", "period") if c not in table.columns]
    if missing:
        raise DisclosureError(f"the indicators need columns {missing} / 缺少列 {missing}")
    out = table.drop(columns=[c for c in WITHHELD_INDICATORS if c in table.columns]).copy()
    audited = [c for g in INDICATOR_GROUPS for c in (*g.counts, *g.rates) if c in out.columns]
    for column in audited:
        out[column] = _nullable(out[column])
    hidden_any = np.zeros(len(out), dtype=bool)
    totals = {g.name: 0 for g in INDICATOR_GROUPS}
    period = pd.factorize(out["period"])[0]
    order = np.argsort(period, kind="stable")
    bounds = np.searchsorted(period[order], np.arange(period.max() + 2 if len(period) else 1))
    first = order[bounds[0]:bounds[1]] if len(order) else order
    codes = table["code"].to_numpy(dtype=object)[first]
    parents = table["parent"].astype(object).where(table["parent"].notna(), "").astype(str).to_numpy(dtype=object)
    tree = _Tree(codes, parents[first], table["level"].to_numpy(dtype=object)[first], _scheme(scheme))
    labels = table["period"].astype(str).to_numpy(dtype=object)
    whole_withheld: dict[str, list[str]] = {}
    county_withheld: dict[str, dict[str, list[str]]] = {}
    every_code = table["code"].to_numpy(dtype=object)
    counted = {c: _as_counts(table[c]) for g in INDICATOR_GROUPS for c in (*g.counts, g.complement)
               if c is not None and c in table.columns}
    withheld = {c: np.zeros(len(out), dtype=bool) for c in audited}  # the rows whose value goes
    for p in range(len(bounds) - 1):  # one audit per period (a dozen), each over every unit
        rows = order[bounds[p]:bounds[p + 1]]
        if not np.array_equal(every_code[rows], codes):
            raise DisclosureError("every period must list the same units in the same order / 各周期单元须一致")
        done = {}
        for group in INDICATOR_GROUPS:
            present = [c for c in group.counts if c in table.columns]
            if not present:
                continue
            values = np.column_stack([counted[c][rows] for c in present])
            if group.complement is not None and group.complement in table.columns:
                values = np.column_stack([values, np.maximum(counted[group.complement][rows] - values[:, 0], 0)])
            forced = done.get(group.within, np.zeros(len(rows), dtype=bool))
            verdict = tree.audit(values, _primary(values, k) | forced, k)
            hidden = verdict[:tree.units]
            done[group.name] = hidden
            label = labels[rows[0]]
            if verdict[-1]:
                whole_withheld.setdefault(label, []).append(group.name)
            for i in np.flatnonzero(verdict[tree.units:-1]):
                county_withheld.setdefault(tree.counties[i], {}).setdefault(label, []).append(group.name)
            totals[group.name] += int(hidden.sum())
            for column in (*group.counts, *group.rates):
                if column in withheld:
                    withheld[column][rows[hidden]] = True
            hidden_any[rows[hidden]] = True
    for column, rows in withheld.items():
        if rows.any():
            out[column] = out[column].mask(rows, pd.NA)
    out["suppressed"] = hidden_any
    out.attrs = {**table.attrs, "min_count": k, "suppressed": totals, "whole": whole_withheld,
                 "counties": county_withheld}
    return out


def public_whole(table: pd.DataFrame, k: int = MIN_COUNT, *, audit: pd.DataFrame | None = None) -> pd.DataFrame:
    """The whole area's event indicators per period (:func:`gridgeo.events.region`) as the public may see them.

    The rule is :func:`public_indicators`' for the whole area above the top
    level, which that audit already takes as published: in each period, a
    group of :data:`INDICATOR_GROUPS` is withheld (its counts and the rates
    made from them missing, ``suppressed`` set) when one of its counts (or
    its complement: the open events not overdue) is 1 to k-1, or when the
    audit of the units withheld it (``audit``: when a cut under the whole
    area would leave 1 to k-1 and no unit could be suppressed instead, as
    above the counties of a province, rule 5 of the module notes). Nothing
    else can give a count of the whole area away: the audit has made every
    cut under a published whole area sum to 0 or at least k. ``on_time`` is
    left out, as there.

    Parameters
    ----------
    table : DataFrame
        :func:`gridgeo.events.region` of the whole area.
    k : int, default :data:`MIN_COUNT`
    audit : DataFrame, optional
        :func:`public_indicators` of the units over the same periods; its
        ``attrs["whole"]`` is applied. Without it, only the whole area's own
        counts are checked, which is enough for one county alone only when
        no cut under it failed.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"period": ["2025-05", "2025-06"], "received": [40, 12], "closed": [30, 4],
    ...                   "backlog": [20, 16], "closure_rate": [0.6, 0.2], "median_hours": [20.0, 30.0],
    ...                   "p90_hours": [50.0, 60.0], "on_time": [25, 3], "on_time_rate": [0.83, 0.75],
    ...                   "overdue": [10, 3]})
    >>> shown = public_whole(t, 10)
    >>> shown[["received", "closed", "closure_rate", "overdue"]].astype(object).values.tolist()
    [[40, 30, 0.6, 10], [12, <NA>, <NA>, <NA>]]
    >>> shown["suppressed"].tolist(), "on_time" in shown.columns
    ([False, True], False)
    """
    k = _checked_k(k)
    out = table.drop(columns=[c for c in WITHHELD_INDICATORS if c in table.columns]).copy()
    audited = [c for g in INDICATOR_GROUPS for c in (*g.counts, *g.rates) if c in out.columns]
    for column in audited:
        out[column] = _nullable(out[column])
    hidden_any = np.zeros(len(out), dtype=bool)
    for group in INDICATOR_GROUPS:
        present = [c for c in group.counts if c in table.columns]
        if not present:
            continue
        values = np.column_stack([_as_counts(table[c]) for c in present])
        if group.complement is not None and group.complement in table.columns:
            values = np.column_stack([values, np.maximum(_as_counts(table[group.complement]) - values[:, 0], 0)])
        hidden = _primary(values, k)
        if audit is not None:
            withheld = audit.attrs.get("whole", {})
            hidden |= np.array([group.name in withheld.get(str(p), ()) for p in table["period"]], dtype=bool)
        for column in (*group.counts, *group.rates):
            if column in out.columns:
                out.loc[out.index[hidden], column] = pd.NA
        hidden_any |= hidden
    out["suppressed"] = hidden_any
    out.attrs = {**table.attrs, "min_count": k}
    return out


def public_hotspots(table: pd.DataFrame, k: int = MIN_COUNT) -> pd.DataFrame:
    """Hot spots (:func:`gridgeo.events.hotspots`) as the public may see them.

    The rule: a unit whose events in the span count 1 to k-1 is left out; the
    others show ``code``, ``z``, ``p`` and ``class`` only (no count, base or rate).
    ``attrs["withheld"]`` says how many units were left out.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"code": ["a", "b", "c"], "events": [0, 4, 30], "base": 1.0, "rate": 1.0,
    ...                   "z": [0.1, 2.0, 3.0], "p": [0.5, 0.01, 0.001], "class": ["none", "hot", "hot"]})
    >>> shown = public_hotspots(t, 10)
    >>> shown["code"].tolist(), list(shown.columns), shown.attrs["withheld"]
    (['a', 'c'], ['code', 'z', 'p', 'class'], 1)
    """
    k = _checked_k(k)
    small = _small(table["events"].to_numpy(dtype=float), k)
    out = table.loc[~small, [c for c in ("code", "z", "p", "class") if c in table.columns]].reset_index(drop=True)
    out.attrs = {**table.attrs, "withheld": int(small.sum()), "min_count": k}
    return out


def public_areas(areas, k: int = MIN_COUNT, *, counts=("addresses", "households", "population")):
    """The areas (e.g. :func:`gridgeo.coverage.uncovered_areas`) whose counts the public may see.

    An area is shown only when none of its ``counts`` is 1 to k-1; the others
    are left out whole (their outline would show where the few addresses are).
    Areas do not nest, so there is nothing to subtract.

    Parameters
    ----------
    areas : GeoDataFrame
    k : int, default :data:`MIN_COUNT`
    counts : sequence of str
        The columns that count addresses, households or people (those present are checked).

    Returns
    -------
    GeoDataFrame
        The areas shown, in their order; ``attrs["withheld"]`` is how many were left out.

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely import box
    >>> areas = gpd.GeoDataFrame({"addresses": [3, 12, 0], "households": [5, 30, 0]},
    ...                          geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)])
    >>> shown = public_areas(areas, 10)
    >>> list(shown["addresses"]), shown.attrs["withheld"]
    ([12, 0], 1)
    """
    k = _checked_k(k)
    small = np.zeros(len(areas), dtype=bool)
    for column in counts:
        if column in areas.columns:
            small |= _small(areas[column].to_numpy(dtype=float), k)
    shown = areas[~small].reset_index(drop=True)
    shown.attrs = {**areas.attrs, "withheld": int(small.sum()), "min_count": k}
    return shown


# --- events on a map ---------------------------------------------------------------------------


def event_blocks(events: pd.DataFrame, k: int = MIN_COUNT, *, period: str = "month") -> pd.DataFrame:
    """Events grouped by period and category and cut into blocks of k to 2k-1 nearby events.

    The rule (see the module notes): a group (one period, one category) with
    fewer than k events is withheld; a larger one is cut in two at the median
    along the longer side of its events' extent, and each half again, while a
    half can keep at least k events. Ties in position go by the events' order.

    Parameters
    ----------
    events : DataFrame
        ``x``, ``y`` (metres, in any metric CRS), ``category`` and ``reported_at``
        (e.g. :meth:`gridgeo.derived.Derived.events`). Events without a time
        or a category are withheld.
    k : int, default :data:`MIN_COUNT`
    period : {"month", "quarter", "year"}
        The calendar period events are grouped by: the shortest period a
        public heat map can show.

    Returns
    -------
    DataFrame
        One row per block: ``period`` (the period's first day), ``category``,
        ``x``, ``y`` (the mean position of its events) and ``events`` (k to
        2k-1).
        ``attrs["withheld"]`` is a DataFrame of the groups withheld
        (``period``, ``category``, ``events`` below k), ``attrs["period"]``
        and ``attrs["min_count"]`` say how it was made.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> ev = pd.DataFrame({"x": rng.uniform(0, 1000, 45), "y": rng.uniform(0, 1000, 45),
    ...                    "category": ["fire"] * 40 + ["road"] * 5,
    ...                    "reported_at": pd.Timestamp("2025-03-02")})
    >>> blocks = event_blocks(ev, 10)
    >>> list(blocks["events"]), blocks.attrs["withheld"]["events"].tolist()
    ([10, 10, 10, 10], [5])
    """
    k = _checked_k(k)
    freq = _frequency(period)
    stamps = pd.to_datetime(events["reported_at"], errors="coerce")
    known = stamps.notna().to_numpy() & events["category"].notna().to_numpy()
    x = events["x"].to_numpy(dtype=float)[known]
    y = events["y"].to_numpy(dtype=float)[known]
    starts = stamps[known].dt.to_period(freq).dt.start_time.to_numpy()
    category = events["category"].astype("str").to_numpy()[known]
    period_code, period_of = pd.factorize(starts, sort=True)
    category_code, category_of = pd.factorize(category, sort=True)
    codes = period_code.astype(np.int64) * max(len(category_of), 1) + category_code
    n_groups = len(period_of) * len(category_of)
    sizes = np.bincount(codes, minlength=n_groups)
    kept = sizes[codes] >= k
    block = _mondrian(x[kept], y[kept], codes[kept], k)
    counts = np.bincount(block)
    group_of = np.zeros(len(counts), dtype=np.int64)
    group_of[block] = codes[kept]

    def labelled(group):
        return {"period": pd.DatetimeIndex(np.asarray(period_of)[group // max(len(category_of), 1)]),
                "category": pd.array(np.asarray(category_of, dtype=object)[group % max(len(category_of), 1)],
                                     dtype="str")}

    out = pd.DataFrame({
        **labelled(group_of),
        "x": np.bincount(block, weights=x[kept]) / np.maximum(counts, 1),
        "y": np.bincount(block, weights=y[kept]) / np.maximum(counts, 1),
        "events": counts.astype(np.int64),
    })
    small = np.flatnonzero((sizes > 0) & (sizes < k))
    withheld = pd.DataFrame({**labelled(small), "events": sizes[small].astype(np.int64)})
    out = out.sort_values(["period", "category", "x", "y"], kind="stable").reset_index(drop=True)
    out.attrs = {"withheld": withheld, "period": period, "min_count": k,
                 "unknown": int((~known).sum())}
    return out


def heat(blocks: pd.DataFrame, *, cell_m: float, crs, category=None, start=None, end=None) -> pd.DataFrame:
    """A public heat map: the blocks of :func:`event_blocks` counted on square cells.

    A block counts in the cell that holds its position (cells of side
    ``cell_m`` tile the metric CRS from its origin, as
    :func:`gridgeo.tiles.event_cells` does for single events). Every cell's
    count is a sum of whole blocks, so it is at least k.

    Parameters
    ----------
    blocks : DataFrame
        :func:`event_blocks`.
    cell_m : float
        The side of a cell, in metres.
    crs : pyproj.CRS
        The metric CRS of the blocks' positions.
    category : str or list of str, optional
        Only these categories.
    start, end : date, optional
        Only periods from ``start`` (included) to ``end`` (excluded), each the
        first day of a period (:func:`aligned_period` checks them).

    Returns
    -------
    DataFrame
        ``lat``, ``lon`` (the cell's centre, EPSG:4490, 6 decimals) and
        ``count``. ``attrs``: ``withheld_groups`` (the groups of period and
        category asked for that were withheld for having fewer than k
        events), ``withheld_at_most`` (so at most this many events are
        missing: (k-1) per group; the exact number is not published, since
        comparing answers could single out a small group) and ``min_count``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pyproj
    >>> rng = np.random.default_rng(1)
    >>> ev = pd.DataFrame({"x": rng.uniform(0, 900, 60) + 400000, "y": rng.uniform(0, 900, 60) + 2740000,
    ...                    "category": "fire", "reported_at": pd.Timestamp("2025-03-02")})
    >>> crs = pyproj.CRS.from_epsg(4547)
    >>> cells = heat(event_blocks(ev, 10), cell_m=1000, crs=crs)
    >>> int(cells["count"].sum()), bool((cells["count"] >= 10).all())
    (60, True)
    """
    import geopandas as gpd

    if not cell_m > 0:
        raise DisclosureError(f"cell_m must be a positive number of metres, got {cell_m!r}")
    chosen, withheld = _chosen(blocks, category, start, end)
    k = blocks.attrs.get("min_count", MIN_COUNT)
    attrs = {"withheld_groups": len(withheld), "withheld_at_most": int(len(withheld) * (k - 1)),
             "min_count": k}
    if chosen.empty:
        out = pd.DataFrame({"lat": [], "lon": [], "count": []})
        out.attrs = attrs
        return out
    xy = np.floor(chosen[["x", "y"]].to_numpy(dtype=float) / cell_m).astype(np.int64)
    cells, inverse = np.unique(xy, axis=0, return_inverse=True)
    counts = np.bincount(inverse.reshape(-1), weights=chosen["events"].to_numpy(dtype=float))
    centres = gpd.GeoSeries(gpd.points_from_xy((cells[:, 0] + 0.5) * cell_m, (cells[:, 1] + 0.5) * cell_m),
                            crs=crs).to_crs(4490)
    out = pd.DataFrame({"lat": np.round(centres.y.to_numpy(), 6), "lon": np.round(centres.x.to_numpy(), 6),
                        "count": np.rint(counts).astype(np.int64)})
    out.attrs = attrs
    return out


def aligned_period(start, end, period: str = "month") -> None:
    """Check that ``start`` and ``end`` are each the first day of a ``period`` (or None).

    Raises
    ------
    DisclosureError
        Naming the dates and what to send instead, in Chinese and English.

    Examples
    --------
    >>> aligned_period("2025-03-01", "2025-05-01")
    >>> aligned_period("2025-03-02", None)
    Traceback (most recent call last):
    ...
    gridgeo.disclosure.DisclosureError: 公开的事件热力图按整月统计：from=2025-03-02 不是月初，请用 2025-03-01 / public event heat maps count whole months: from=2025-03-02 is not the first day of a month; send 2025-03-01 (or use a viewer key for days)
    """
    freq = _frequency(period)
    words = {"month": ("整月", "月初"), "quarter": ("整季度", "季度初"), "year": ("整年", "年初")}[period]
    for name, value in (("from", start), ("to", end)):
        if value is None:
            continue
        day = pd.Timestamp(value)
        first = day.to_period(freq).start_time
        if day != first:
            raise DisclosureError(
                f"公开的事件热力图按{words[0]}统计：{name}={day:%Y-%m-%d} 不是{words[1]}，请用 {first:%Y-%m-%d} / "
                f"public event heat maps count whole {period}s: {name}={day:%Y-%m-%d} is not the first day of a "
                f"{period}; send {first:%Y-%m-%d} (or use a viewer key for days)")


# --- the differencing rule on a hierarchy --------------------------------------------------------


class _Tree:
    """Units as a tree under one root (the whole area), and the pass that protects it.

    Cell values are per node and count; a node's *equation* is "the node
    equals the sum of its children of one level, plus a remainder >= 0".
    For a node x, ``A(x)`` is the set of sums (below k; k stands for "k or
    more") that the unpublished cells of a cut of x's subtree can have: x
    itself when unpublished (else 0), or the sum over its children's cuts
    plus the remainder. A published node is safe when no cut below it sums
    to 1..k-1.

    With a ``scheme``, units of several counties get a node per county
    (:attr:`counties`, after the units; :func:`_counties`) between their top
    units and the root, which then holds the counties; :attr:`above` marks
    the nodes above the counties, which are withheld rather than settled by
    suppressing below them (rule 5 of the module notes).
    """

    def __init__(self, codes, parents, levels, scheme=None):
        self.units = len(codes)
        position = pd.Series(np.arange(len(codes)), index=pd.Index(codes, dtype=object))
        if position.index.has_duplicates:
            dup = list(position.index[position.index.duplicated()][:10])
            raise DisclosureError(f"figures list units {dup} more than once / 单元编码重复")
        found = position.reindex(pd.Index(parents, dtype=object)).to_numpy()
        top = np.isnan(found)
        self.counties, county_of, above, root_above = _counties(codes, levels, top, scheme)
        n = self.units + len(self.counties)
        self.n = n
        self.root = n
        self.levels = np.concatenate([np.asarray(levels, dtype=object),
                                      np.full(len(self.counties), _COUNTY_NODE, dtype=object)])
        parent = np.where(top, n, np.nan_to_num(found)).astype(np.int64)
        parent[county_of >= 0] = self.units + county_of[county_of >= 0]
        self.parent = np.concatenate([parent, np.full(len(self.counties), n, np.int64), [-1]])
        # above the counties (the root when counties are nodes, a prefecture): never settled by
        # suppressing a county or what is under it, only by being withheld itself
        self.above = np.concatenate([above, np.zeros(len(self.counties), bool), [root_above]])
        depth = np.zeros(n + 1, dtype=np.int64)
        current = self.parent[:n].copy()
        live = np.arange(n)
        steps = 0
        while len(live):
            depth[live] += 1
            current_live = current[live]
            live = live[current_live != n]
            current[live] = self.parent[current[live]]
            steps += 1
            if steps > n + 1:
                raise DisclosureError("the units' parents form a cycle / 单元的上级关系成环")
        self.depth = depth
        self.order = np.argsort(-depth, kind="stable")  # deepest first, the root last

    def children(self):
        """{node: {level: [children]}} (made once: every audit of the tree reads it)."""
        if getattr(self, "_kids", None) is None:
            out: dict[int, dict[object, list[int]]] = {}
            for child in range(self.n):
                out.setdefault(int(self.parent[child]), {}).setdefault(self.levels[child], []).append(child)
            self._kids = out
        return self._kids

    def layers(self):
        """The tree depth by depth, deepest first, as arrays (made once): per depth ``(nodes, groups,
        child, group_of, starts)``: its nodes; its *groups* (a node with its children of one level: an
        equation) as the node of each; the children of the groups, group after group, with each one's
        group (a position in ``groups``), and where each group's children start."""
        if getattr(self, "_layers", None) is None:
            n = self.n
            level_code = pd.factorize(pd.Series(self.levels, dtype=object))[0].astype(np.int64) if n else \
                np.zeros(0, np.int64)
            key = self.parent[:n] * (int(level_code.max()) + 1 if n else 1) + level_code
            by_group = np.argsort(key, kind="stable")
            starts = np.flatnonzero(np.r_[True, key[by_group][1:] != key[by_group][:-1]]) if n else \
                np.zeros(0, np.int64)
            group_node = self.parent[by_group[starts]] if n else np.zeros(0, np.int64)
            sizes = np.diff(np.append(starts, n))
            group_depth = self.depth[group_node]
            out = []
            for d in range(int(self.depth.max()), -1, -1):
                nodes = np.flatnonzero(self.depth == d)
                groups = np.flatnonzero(group_depth == d)
                child = np.concatenate([by_group[starts[g]:starts[g] + sizes[g]] for g in groups]) if len(groups) \
                    else np.zeros(0, np.int64)
                group_of = np.repeat(np.arange(len(groups)), sizes[groups])
                first = np.append(0, np.cumsum(sizes[groups])[:-1]) if len(groups) else np.zeros(0, np.int64)
                out.append((nodes, group_node[groups], child, group_of, first))
            self._layers = out
        return self._layers

    def protect(self, values: np.ndarray, suppressed: np.ndarray, k: int, *, one_by_one: bool = False):
        """Suppress further units until every published unit is safe.

        Returns the suppressed units (the root left out) and whether the
        whole area's figures must be withheld too. ``one_by_one``: every node
        in turn, in Python (what the arrays of a depth at once must equal).
        """
        hidden = self.audit(values, suppressed, k, one_by_one=one_by_one)
        return hidden[:self.units], bool(hidden[-1])

    def audit(self, values: np.ndarray, suppressed: np.ndarray, k: int, *, one_by_one: bool = False):
        """:meth:`protect`'s verdict on every node: the units, then the county nodes
        (:attr:`counties`), then the root."""
        return _Protection(self, values, suppressed, k, one_by_one=one_by_one).run()


class _Protection:
    def __init__(self, tree, values, suppressed, k, *, one_by_one=False):
        self.tree, self.k = tree, k
        n, units = tree.n, tree.units
        # a county node and the whole area hold what hangs under them (their units sum to them)
        self.values = np.zeros((n + 1, values.shape[1]), dtype=np.int64)
        self.values[:units] = values
        owner = tree.parent[:units]
        np.add.at(self.values, owner[owner >= units], values[owner >= units])
        self.values[n] = self.values[:n][tree.parent[:n] == n].sum(axis=0)
        self.m = self.values.shape[1]
        # the whole area and the counties are published too (a city's figures): withheld when they
        # count 1..k-1 themselves
        whole = self.values[units:]
        self.hidden = np.append(suppressed.astype(bool), ((whole > 0) & (whole < k)).any(axis=1))
        self.kids = tree.children()
        self.bad = ((1 << k) - 1) & ~1  # sums 1..k-1
        # the sets of sums as bits of an int64 while they fit (k + 1 bits, shifted by up to k: 2k + 1)
        self.vectorised = k <= _VECTOR_K and not one_by_one
        self.A = np.ones((n + 1, self.m), dtype=np.int64) if self.vectorised else \
            [[1] * self.m for _ in range(n + 1)]

    def run(self):
        """Every node from the deepest up: a published node is settled (made safe, or suppressed),
        then its sets of sums made from its children's. Nodes of one depth are independent (settling
        a node changes its own subtree alone), so a depth is done at once with arrays, and the few
        nodes a cut of which fails are settled one by one (:meth:`_settle`)."""
        if not self.vectorised:
            for node in self.tree.order:
                node = int(node)
                if not self.hidden[node]:
                    self._settle(node)
                self._refresh(node)
            return self.hidden.copy()
        k, A, values, hidden = self.k, self.A, self.values, self.hidden
        for nodes, group_node, child, group_of, first in self.tree.layers():
            A[nodes] = np.where(hidden[nodes][:, None], np.left_shift(1, np.clip(values[nodes], 0, k)), 1)
            if not len(group_node):
                continue
            held = np.add.reduceat(values[child], first, axis=0)
            rest = values[group_node] - held
            usable = ~(rest < 0).any(axis=1)  # else the children hold more than the node: no equation
            acc = np.left_shift(1, np.clip(rest, 0, k))
            # a child whose cuts all sum to 0 ({0}: bit 0) adds nothing: the others are added in pairs
            # within each group (the sums of sets are associative), halving them each round
            some = np.flatnonzero((A[child] != 1).any(axis=1))
            sets, groups = A[child[some]], group_of[some]
            while len(groups) > 1 and (groups[1:] == groups[:-1]).any():
                rank = np.arange(len(groups)) - np.searchsorted(groups, groups, side="left")
                lead = rank % 2 == 0
                paired = np.flatnonzero(lead & np.r_[groups[1:] == groups[:-1], False])
                sets[paired] = _plus_many(sets[paired], sets[paired + 1], k)
                sets, groups = sets[lead], groups[lead]
            acc[groups] = _plus_many(acc[groups], sets, k)
            failing = usable & ((acc & self.bad) != 0).any(axis=1) & ~hidden[group_node]
            unsafe = np.unique(group_node[failing])
            fine = usable & ~np.isin(group_node, unsafe)
            np.bitwise_or.at(A, group_node[fine], acc[fine])
            for node in unsafe:
                node = int(node)
                self._settle(node)
                self._refresh(node)
        return self.hidden.copy()

    # -- sets of sums (bit i: a cut sums to i; bit k: to k or more) --

    def _single(self, value) -> int:
        return 1 << int(min(max(value, 0), self.k))

    def _plus(self, a: int, b: int) -> int:
        k = self.k
        low, top = (1 << k) - 1, 1 << k
        out = 0
        while a:
            bit = a & -a
            a ^= bit
            shifted = b << (bit.bit_length() - 1)
            out |= (shifted & low) | (top if shifted >> k else 0)
        return out

    def _sums(self, node: int, level) -> list[int] | None:
        """The sums of the cuts of ``node`` through its children of ``level``, per count
        (None: the children hold more than the node, so there is no equation to use)."""
        children = self.kids[node][level]
        rest = self.values[node] - self.values[children].sum(axis=0)
        if (rest < 0).any():
            return None
        columns = self.A[children].T.tolist() if self.vectorised else \
            [[self.A[child][j] for child in children] for j in range(self.m)]
        out = []
        for j in range(self.m):
            acc = self._single(rest[j])
            for sums in columns[j]:
                if sums != 1:  # {0} adds nothing
                    acc = self._plus(acc, sums)
            out.append(acc)
        return out

    def _refresh(self, node: int) -> None:
        own = [self._single(v) if self.hidden[node] else 1 for v in self.values[node]]
        for level in self.kids.get(node, {}):
            sums = self._sums(node, level)
            if sums is not None:
                own = [a | b for a, b in zip(own, sums)]
        self.A[node] = own

    def _settle(self, node: int) -> None:
        """Make a published node safe, or suppress it (its parent then settles it). A node above
        the counties suppresses nothing below it: it is suppressed itself."""
        for level in self.kids.get(node, {}):
            while True:
                sums = self._sums(node, level)
                failing = [] if sums is None else [j for j in range(self.m) if sums[j] & self.bad]
                if not failing:
                    break
                child = None if self.tree.above[node] else self._cheapest(node, level, failing)
                if child is None:
                    self.hidden[node] = True
                    return
                self._hide(child, failing)

    def _cheapest(self, node, level, failing):
        """The published child whose suppression fixes ``failing`` at least cost: a
        child large enough in every failing count, preferring one whose own children
        do not give it away, then the smallest."""
        best, best_key = None, None
        for child in self.kids[node][level]:
            if self.hidden[child] or (self.values[child][failing] < self.k).any():
                continue
            key = (self._exposed(child, failing), int(self.values[child][failing].min()), child)
            if best_key is None or key < best_key:
                best, best_key = child, key
        return best

    def _exposed(self, node, failing) -> int:
        """1 when suppressing ``node`` alone would not hide it (a cut below sums below k)."""
        for level in self.kids.get(node, {}):
            sums = self._sums(node, level)
            if sums is not None and any(sums[j] & ((1 << self.k) - 1) for j in failing):
                return 1
        return 0

    def _hide(self, node, failing) -> None:
        """Suppress ``node`` so that every cut of its subtree sums to k or more in ``failing``."""
        self.hidden[node] = True
        for level in self.kids.get(node, {}):
            while True:
                sums = self._sums(node, level)
                if sums is None or not any(sums[j] & ((1 << self.k) - 1) for j in failing):
                    break
                open_ = [c for c in self.kids[node][level]
                         if (self.values[c][failing] >= self.k).all() and
                         any(self.A[c][j] & ((1 << self.k) - 1) for j in failing)]
                if not open_:
                    break
                largest = max(open_, key=lambda c: (int(self.values[c][failing].min()), -c))
                self._hide(largest, failing)
        self._refresh(node)


_COUNTY = "county"
"""The level a code scheme names for counties (县、市、区: :data:`gridgeo.schema.PREFECTURE_SCHEME`)."""

_COUNTY_NODE = "\x00county"
"""The level of the county nodes :class:`_Tree` adds (no unit's level)."""


def _counties(codes, levels, top, scheme):
    """The county nodes a tree adds, each unit's county among them (-1: none), which units are above
    the counties, and whether the root is.

    A unit of ``scheme`` (its level one of the scheme's, its code that level's width) has its county
    in its code's first digits: as many as the scheme's ``county`` level has when it has one, else
    its root digits (the code above the top level). The units at the table's top (``top``: no parent
    in the table) below the counties get a county node each county when they span more than one,
    or hang beside a real county or a unit above one; a unit of a level above the counties
    (a prefecture) is above them, and so is the root when counties are nodes of the tree.
    """
    n = len(codes)
    county_of = np.full(n, -1, np.int64)
    above = np.zeros(n, dtype=bool)
    if scheme is None or not n:
        return [], county_of, above, False
    width = scheme.width(_COUNTY) if _COUNTY in scheme.names else scheme.root_digits
    widths = pd.Series(np.asarray(levels, dtype=object)).map({lv: scheme.width(lv) for lv in scheme.names})
    code_text = pd.Series(np.asarray(codes, dtype=object)).astype(str)
    of_scheme = (widths == code_text.str.len()).to_numpy()
    widths = widths.fillna(-1).to_numpy()
    above = of_scheme & (widths < width)
    real = of_scheme & (widths == width)
    below = of_scheme & (widths > width) & top
    keys = code_text[below].str[:width].to_numpy(dtype=object)
    counties = sorted(set(keys))
    if len(counties) > 1 or (counties and (above.any() or real.any())):
        county_of[below] = np.searchsorted(np.array(counties, dtype=object), keys)
    else:
        counties = []
    return counties, county_of, above, bool(counties) or bool(real.any())


_VECTOR_K = 30
"""The largest k whose sets of sums :class:`_Protection` keeps in int64 arrays (above: Python ints)."""


def _plus_many(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """:meth:`_Protection._plus` of arrays of sets of sums: element by element, every sum of one of
    ``a`` and one of ``b`` (bit ``k``: k or more)."""
    out = np.zeros_like(a)
    for i in range(k + 1):
        has = ((a >> i) & 1).astype(bool)
        if not has.any():
            continue
        shifted = ((b & ((1 << (k - i)) - 1)) << i) | np.where((b >> (k - i)) != 0, 1 << k, 0)
        out |= np.where(has, shifted, 0)
    return out


# --- helpers -----------------------------------------------------------------------------------


def _scheme(scheme):
    from gridgeo import schema

    return schema.DEFAULT_SCHEME if scheme is None else schema.scheme_from(scheme)


def _checked_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise DisclosureError(f"the minimum count k must be a positive integer, got {k!r} / 最小计数 k 必须是正整数")
    return int(k)


def _frequency(period: str) -> str:
    if period not in PERIODS:
        raise DisclosureError(f"period must be one of {list(PERIODS)}, got {period!r} / 统计周期须为 month、quarter 或 year")
    return PERIODS[period]


def _indexed(figures: pd.DataFrame) -> pd.DataFrame:
    table = figures
    if "code" in table.columns:
        table = table.set_index("code")
    missing = [c for c in ("level", "parent") if c not in table.columns]
    if missing:
        raise DisclosureError(f"figures need columns {missing} to know the hierarchy (they have "
                              f"{list(table.columns)[:20]}) / 缺少层级列 {missing}")
    return table


def _geometry_name(table):
    import geopandas as gpd

    if not isinstance(table, gpd.GeoDataFrame):
        return None
    try:
        return table.geometry.name
    except AttributeError:  # a GeoDataFrame whose geometry column was left out
        return None


def _group_values(table, group: Group) -> np.ndarray | None:
    """The group's counts as an int matrix (units x counts), or None when the table has none."""
    columns = []
    for column in group.counts:
        if column in table.columns:
            columns.append(_as_counts(table[column]))
        elif column.startswith("households_") and column.endswith("min") and "households" in table.columns:
            share = f"share_{column[len('households_'):]}"
            if share in table.columns:  # the count the share and the households give away
                covered = pd.to_numeric(table[share], errors="coerce").to_numpy(dtype=float) * \
                    _as_counts(table["households"])
                columns.append(np.rint(np.nan_to_num(covered)).astype(np.int64))
    if not columns:
        return None
    if group.complement is not None:
        if group.complement not in table.columns:
            return None
        columns.append(np.maximum(_as_counts(table[group.complement]) - columns[0], 0))
    return np.column_stack(columns)


def _primary(values: np.ndarray, k: int) -> np.ndarray:
    small = np.zeros(len(values), dtype=bool)
    for j in range(values.shape[1]):
        small |= _small(values[:, j], k)
    return small


def _small(values, k) -> np.ndarray:
    values = np.nan_to_num(np.asarray(values, dtype=float))
    return (values > 0) & (values < k)


def _as_counts(series) -> np.ndarray:
    return np.rint(pd.to_numeric(series, errors="coerce").fillna(0).to_numpy(dtype=float)).astype(np.int64)


def _nullable(series: pd.Series) -> pd.Series:
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object or pd.api.types.is_string_dtype(series):
        return series.astype(object)
    if pd.api.types.is_bool_dtype(series):
        return series.astype("boolean")
    if pd.api.types.is_integer_dtype(series):
        return series.astype("Int64")
    return series.astype("Float64")


def _mondrian(x, y, group, k) -> np.ndarray:
    """Block ids: each group cut at the median of the longer side while both halves keep k.

    Every round cuts all blocks of 2k or more at once: one stable sort by
    block then position along the block's longer side (ties by the events'
    order), and the lower half of each becomes a block of its own.
    """
    n = len(x)
    block = pd.factorize(group, sort=True)[0].astype(np.int64) if n else np.zeros(0, np.int64)
    while n:
        sizes = np.bincount(block)
        split = sizes >= 2 * k
        if not split.any():
            break
        frame = pd.DataFrame({"block": block, "x": x, "y": y}).groupby("block", sort=True)
        low, high = frame.min(), frame.max()
        span_x, span_y = (high["x"] - low["x"]).to_numpy(), (high["y"] - low["y"]).to_numpy()
        along_x = span_x >= span_y
        start = np.where(along_x, low["x"].to_numpy(), low["y"].to_numpy())
        span = np.where(along_x, span_x, span_y)
        span = np.where(span > 0, span, 1.0)
        position = (np.where(along_x[block], x, y) - start[block]) / span[block]  # 0..1 inside the block
        order = np.argsort(block + 0.5 * position, kind="stable")
        ordered = block[order]
        first = np.r_[True, ordered[1:] != ordered[:-1]]
        rank = np.arange(n) - np.repeat(np.flatnonzero(first), sizes)
        cut = split[ordered] & (rank == sizes[ordered] // 2)
        block = np.empty(n, dtype=np.int64)
        block[order] = np.cumsum(first | cut) - 1
    return block


def _chosen(blocks, category, start, end):
    keep = np.ones(len(blocks), dtype=bool)
    withheld = blocks.attrs.get("withheld", pd.DataFrame({"period": [], "category": [], "events": []}))
    wkeep = np.ones(len(withheld), dtype=bool)
    if category:
        wanted = [category] if isinstance(category, str) else list(category)
        keep &= blocks["category"].isin(wanted).to_numpy()
        wkeep &= withheld["category"].isin(wanted).to_numpy()
    if start is not None:
        keep &= (blocks["period"] >= pd.Timestamp(start)).to_numpy()
        wkeep &= (pd.to_datetime(withheld["period"]) >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        keep &= (blocks["period"] < pd.Timestamp(end)).to_numpy()
        wkeep &= (pd.to_datetime(withheld["period"]) < pd.Timestamp(end)).to_numpy()
    return blocks[keep], withheld[wkeep]
