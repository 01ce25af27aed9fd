"""Intake: an office's own files into gridgeo, safely.

Offices hold shapefiles drawn by villages and park operators, station sheets
collected on Amap or Baidu, address tables exported from Excel. Their columns
are named in Chinese (网格编码, 上级编码, 经度), their levels are labels
(二级网格), their codes may sit in number fields, their coordinates may be in a
Gauss-Krüger zone or in GCJ-02. One intake, used by ``gridgeo load``, the
service's ``POST /imports`` and the workbench, takes them in:

>>> from gridgeo import intake
>>> got = intake.inspect("sample_geojson/grid2.geojson")       # doctest: +SKIP
>>> got.ok, got.counts(), got.mapping.columns                    # doctest: +SKIP

- :func:`inspect` reads a file, detects what it holds and how it maps to the
  schema (:class:`Mapping`, editable and reusable as JSON), and reports every
  problem, located (:class:`Intake`, :class:`Finding`);
- :func:`load` puts checked files into a store, changing only what they name
  (a file of level-2 grids replaces level-2 grids, under the parents it
  covers), or refuses and changes nothing;
- :func:`to_plans` opens a grid file that a load would refuse as draft plans,
  to fix and publish on the workbench;
- :func:`detect_offset` tells whether a layer fits a trusted one better read
  as GCJ-02 or BD-09 than as it says.
"""

from __future__ import annotations

from gridgeo.intake.drafts import to_plans
from gridgeo.intake.inspection import Finding, Intake, inspect
from gridgeo.intake.mapping import Mapping
from gridgeo.intake.offset import detect_offset

__all__ = ["inspect", "load", "to_plans", "Intake", "Finding", "Mapping", "IntakeError", "detect_offset"]


class IntakeError(ValueError):
    """A load refused: ``intakes`` are what was inspected, with their findings;
    ``report`` the validation report that refused grids, if that was why."""

    def __init__(self, message: str, intakes, report=None):
        super().__init__(message)
        self.intakes = list(intakes)
        self.report = report


def load(intakes, store, *, author: str, message: str = "", progress: bool | None = None) -> int:
    """Load inspected files into a store in one transaction, or refuse and change nothing.

    Each layer a file holds replaces the published one; a grid file replaces
    only its levels, under the parents it covers (or the whole level, as the
    intake's ``scope`` says); several files of one layer load together (a
    level-1 and a level-2 file, two station sheets).

    Parameters
    ----------
    intakes : Intake or list of Intake
        From :func:`inspect`, each with the store given, so that the grids
        were validated as they would be after the load.
    store : gridgeo.store.Store
    author : str
    message : str
    progress : bool, optional

    Returns
    -------
    int
        The new revision.

    Raises
    ------
    IntakeError
        If any intake has an error (nothing is written), or the store refuses
        the grids (its validation report in ``.report``).
    """
    import geopandas as gpd
    import pandas as pd

    from gridgeo.store.errors import PublishError, StoreError

    intakes = [intakes] if isinstance(intakes, Intake) else list(intakes)
    if not intakes:
        raise ValueError("nothing to load: give at least one intake")
    refused = [i for i in intakes if not i.ok]
    if refused:
        lines = [f"{i.source}: {len(i.errors)} error(s), first: {i.errors[0].message_en}" if i.errors else
                 f"{i.source}: could not be read" for i in refused]
        raise IntakeError("nothing was loaded: " + "; ".join(lines), intakes)
    scopes = {i.scope for i in intakes if i.kind == "grids"}
    if len(scopes) > 1:
        raise ValueError("the grid files of one load must share one scope")
    layers: dict[str, list] = {}
    for i in intakes:
        layers.setdefault(i.kind, []).append(i.frame)
    frames = {}
    for kind, parts in layers.items():
        frame = parts[0] if len(parts) == 1 else gpd.GeoDataFrame(pd.concat(parts, ignore_index=True),
                                                                  geometry="geometry", crs=parts[0].crs)
        frames[kind] = frame
    try:
        return store.load(frames, author=author, message=message, progress=progress,
                          scope=scopes.pop() if scopes else "parents")
    except PublishError as exc:
        raise IntakeError(str(exc), intakes, report=exc.report) from exc
    except StoreError as exc:
        raise IntakeError(str(exc), intakes) from exc
