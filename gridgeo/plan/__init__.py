"""Replanning grids: edit operations, impact and diff between plans, automatic division.

A planner paints road-bounded blocks into grids, as in Districtr or Dave's
Redistricting App. The verbs, all on GeoDataFrames and on a
:class:`PlanState` (the blocks of one parent and which grid each is in):

- :func:`blocks`: the road-bounded blocks inside a village (or any unit),
  with their household, population and unit sums;
- :func:`start` opens the grids of a level inside a parent as a state;
  :func:`from_store` opens a store's plan, :func:`save` saves it back;
- edits, each returning a new state that still validates
  (:func:`gridgeo.validate`), or raising :class:`PlanError` and changing
  nothing: :func:`reassign` (paint blocks into a neighbouring grid),
  :func:`unassign` (the eraser: into the holding pen, which :func:`save`
  refuses), :func:`add`, :func:`merge`, :func:`split` (along a line), :func:`redraw`
  (a new outline), :func:`renumber` (codes in reading order), :func:`rename`;
  :func:`neighbours` and :func:`border_blocks` help pick what to edit;
- :func:`neighbouring_units` (the villages around) and :func:`fences` (the
  level-1 grids a plan that redraws level 2 may not cross, and each block's):
  what the workbench draws around and across a plan;
- :func:`impact`: households, population and units per grid, the balance
  against the band, contiguity, compactness (Polsby-Popper), grids without a
  station and walking coverage, from per-block sums: fast enough to follow
  every edit;
- :func:`diff`: grids reshaped, split, merged, added or removed, and the
  from-to table of who moves between grids;
- :func:`report` (of two states), :func:`report_of` (of a store's plan): the
  pre-publish report (errors, warnings, changes, the from-to table and its
  version) whoever approves or publishes acknowledges;
- :func:`to_csv` / :func:`read_csv`: the block-to-grid table;
  :func:`export`: GeoPackage or GeoJSON;
- :func:`suggest_division`: a first draft balanced by households
  (recombination on spanning trees), with the balance it reached.

Examples
--------
>>> import gridgeo
>>> s = gridgeo.sample.load()
>>> state = gridgeo.plan.start(s.grids, "350582106201", roads=s.roads, addresses=s.addresses,
...                            stations=s.stations)
>>> draft = gridgeo.plan.suggest_division(state)
>>> gridgeo.plan.impact(draft).attrs["summary"]["share_within"]
1.0
>>> gridgeo.plan.diff(state, draft).summary["households_moved"] > 0
True
"""

from gridgeo.plan.blocks import BLOCK_COLUMNS, blocks
from gridgeo.plan.context import block_pairs, fence_level, fences, neighbouring_units, within_steps
from gridgeo.plan.diff import CHANGES, PlanDiff, diff
from gridgeo.plan.division import DIVISION_COLUMNS, suggest_division
from gridgeo.plan.edits import (add, border_blocks, merge, neighbours, reassign, redraw, rename, renumber, split,
                                unassign)
from gridgeo.plan.errors import PlanError
from gridgeo.plan.exchange import (CSV_COLUMNS, assigned, based_on, export, from_store, lay, painted_level, read_csv,
                                   save, to_csv)
from gridgeo.plan.impact import DEFAULT_BAND, impact
from gridgeo.plan.report import PublishReport, report, report_of
from gridgeo.plan.state import PlanState, start

__all__ = [
    "blocks", "start", "PlanState", "PlanError",
    "reassign", "unassign", "add", "merge", "split", "redraw", "renumber", "rename", "neighbours", "border_blocks",
    "neighbouring_units", "fences", "fence_level", "block_pairs", "within_steps",
    "impact", "diff", "PlanDiff", "report", "report_of", "PublishReport", "suggest_division",
    "to_csv", "read_csv", "assigned", "lay", "painted_level", "based_on", "export", "from_store", "save",
    "BLOCK_COLUMNS", "CHANGES", "CSV_COLUMNS", "DEFAULT_BAND", "DIVISION_COLUMNS",
]
