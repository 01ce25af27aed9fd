"""Uploads for planners: an office's file checked by gridgeo.intake, then opened as draft plans.

- ``POST /imports`` (planner): a file as ``multipart/form-data`` (``file``;
  the parts of a shapefile together, or a zip of them), with optional form
  fields ``kind``, ``crs``, ``mapping`` (JSON, :class:`gridgeo.intake.Mapping`),
  ``scope`` and, for another office's areas, ``boundary_set`` (警格, 学区 ...). Answers the report: what the file holds, the detected
  mapping and the file's columns, the counts per level, what it would change,
  every problem (located ones as GeoJSON) and the units to draw.
- ``GET /imports/{id}``: the report again.
- ``POST /imports/{id}/check``: the same file with an edited mapping.
- ``POST /imports/{id}/plans``: open the file's grids as draft plans, one per
  unit redrawn (:func:`gridgeo.intake.to_plans`), each of them inside the
  planner's scopes (else a 403 naming the unit and nothing is opened). An
  upload never publishes.

The uploaded files are kept under ``GRIDGEO_IMPORTS_DIR`` (by default a
folder in the system's temporary directory), so that every worker of the
service reads the same upload.

A request that fits the OpenAPI document but whose file or mapping gridgeo
cannot use (not a layer, parts of several shapefiles, a mapping that is not
one or does not fit the file) is refused 422 with gridgeo's reason; 400 is
for a request that does not fit the document.
"""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from api.auth import Principal, require
from api.dependencies import base_url
from api.encode import feature_collection, plain
from api.problems import Problem, responses
from gridgeo import intake, review
from gridgeo.intake.drafts import plan_parents

PLANNER = require("planner")
UNUSABLE = responses(422)
"""An upload or a mapping gridgeo cannot use."""
CREATED = {201: {"headers": {"Location": {"description": "The upload's report: /imports/{id}",
                                          "schema": {"type": "string"}}}}}
_ID = re.compile(r"^[0-9a-f]{16}$")
_MAX_UNITS_DRAWN = 5000
_KEEP = 50  # uploads kept; older ones are removed


class Check(BaseModel):
    kind: str | None = Field(None, description="grids, a grid level, stations, addresses, events, roads, "
                             "boundaries (another office's areas) or roster (who answers for each grid)")
    boundary_set: str | None = Field(None, max_length=40, description="For boundaries: the set's name (警格, 学区 ...)")
    crs: str | None = Field(None, description="wgs84, cgcs2000, gcj02, bd09 or an EPSG code")
    columns: dict[str, str] = Field(default_factory=dict, description="schema column -> file column")
    values: dict[str, dict[str, str]] = Field(default_factory=dict, description="column -> file value -> value")
    lon: str | None = None
    lat: str | None = None
    location: str | None = None
    layer: str | None = Field(None, description="The layer of a GeoPackage or zip, the sheet of a workbook")
    scope: str = Field("parents", pattern="^(parents|level)$")


class Drafts(BaseModel):
    name: str = Field(..., min_length=1, max_length=200, description="The draft plans' name")


def router() -> APIRouter:
    r = APIRouter(tags=["imports"])

    @r.post("/imports", status_code=201, summary="Upload a file and check it against the store (nothing is "
                                                 "changed)", responses={**CREATED, **UNUSABLE})
    async def upload(request: Request,
                     file: list[UploadFile] = File(..., min_length=1, description="The file, or the parts of a shapefile"),
                     kind: str | None = Form(None, max_length=64), crs: str | None = Form(None, max_length=200),
                     boundary_set: str | None = Form(None, max_length=40),
                     mapping: str | None = Form(None, max_length=100_000),
                     scope: Literal["parents", "level"] = Form("parents"), who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        try:
            options = Check(kind=kind, crs=crs, scope=scope, boundary_set=boundary_set, **_mapping_fields(mapping))
        except ValidationError as exc:
            raise Problem(422, "Unprocessable Content", f"对照表不合适 — the mapping does not fit: "
                          f"{exc.errors()[0]['msg']}") from None
        folder = _new_folder(services.settings)
        try:
            source = await _save(folder, file, services.settings.max_upload)
            (folder / "request.json").write_text(json.dumps({"source": source, "author": who.name}), "utf-8")
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return JSONResponse(_report(services, folder, options), status_code=201,
                            headers={"Location": f"{base_url(request)}/imports/{folder.name}"})

    @r.get("/imports/{import_id}", summary="The report of an upload", responses={**responses(404), **UNUSABLE})
    def report(import_id: str, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        return JSONResponse(_report(services, _folder(services.settings, import_id), None))

    @r.post("/imports/{import_id}/check", summary="Check the upload again with an edited mapping",
            responses={**responses(404), **UNUSABLE})
    def check(import_id: str, body: Check, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        return JSONResponse(_report(services, _folder(services.settings, import_id), body))

    @r.post("/imports/{import_id}/plans", status_code=201, summary="Open the upload's grids as draft plans",
            responses=responses(404, 422))
    def plans(import_id: str, body: Drafts, request: Request, who: Principal = Depends(PLANNER)):
        services = request.app.state.services
        folder = _folder(services.settings, import_id)
        got = _inspected(services, folder, _options(folder))
        for parent in plan_parents(got, services.store.scheme):
            review.check(who, "create", parent=parent, scheme=services.store.scheme,
                         self_publish=services.settings.self_publish)
        try:
            made = intake.to_plans(got, services.store, name=body.name, author=who.name)
        except ValueError as exc:
            raise Problem(422, "Unprocessable Content", str(exc)) from None
        return JSONResponse({"plans": [{"id": p.id, "name": p.info["name"], "parent": p.info["parent"],
                                        "levels": p.info["levels"], "status": p.info["status"]} for p in made]},
                            status_code=201)

    return r


# --- the uploads on disk ---------------------------------------------------------------


def _root(settings) -> Path:
    root = Path(settings.imports_dir) if settings.imports_dir else Path(tempfile.gettempdir()) / "gridgeo-imports"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _new_folder(settings) -> Path:
    root = _root(settings)
    old = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for stale in old[: max(0, len(old) - _KEEP + 1)]:
        shutil.rmtree(stale, ignore_errors=True)
    folder = root / secrets.token_hex(8)
    folder.mkdir()
    return folder


def _folder(settings, import_id: str) -> Path:
    folder = _root(settings) / import_id
    if not _ID.match(import_id) or not (folder / "request.json").exists():
        raise Problem(404, "Not Found", f"no upload {import_id!r}: uploads are kept for the last {_KEEP} files")
    return folder


async def _save(folder: Path, files: list[UploadFile], limit: int) -> str:
    """Write the uploaded parts into ``folder``; the name of the file to read."""
    names, total = [], 0
    for part in files:
        name = Path(part.filename or "upload").name
        if not name or name.startswith("."):
            raise Problem(422, "Unprocessable Content", f"上传的文件需要文件名 — an uploaded file needs a name, "
                          f"got {part.filename!r}")
        with open(folder / name, "wb") as out:
            while chunk := await part.read(1 << 20):
                total += len(chunk)
                if total > limit:
                    raise Problem(413, "Payload Too Large", f"uploads are limited to {limit:,} bytes")
                out.write(chunk)
        names.append(name)
    if len(names) == 1:
        return names[0]
    shp = [n for n in names if n.lower().endswith(".shp")]
    stems = {Path(n).stem.lower() for n in names}
    if len(shp) != 1 or len(stems) != 1:
        raise Problem(422, "Unprocessable Content", f"多个文件须是同一个 shapefile 的各部分 — several files are the "
                      f"parts of one shapefile (.shp, .dbf, .shx, .prj, .cpg of one name); got {names}: upload one "
                      "file, or a zip")
    return shp[0]


def _options(folder: Path) -> Check:
    path = folder / "options.json"
    return Check(**json.loads(path.read_text("utf-8"))) if path.exists() else Check()


def _mapping_fields(text: str | None) -> dict:
    if not text:
        return {}
    try:
        given = intake.Mapping.from_dict(json.loads(text)).to_dict()
    except (ValueError, TypeError) as exc:
        raise Problem(422, "Unprocessable Content", f"mapping 不是 gridgeo 的对照表（JSON）— mapping is not a gridgeo "
                      f"mapping (JSON): {exc}") from None
    return {k: v for k, v in given.items() if k in Check.model_fields and k != "kind"} | (
        {"kind": given["kind"]} if "kind" in given else {})


def _inspected(services, folder: Path, options: Check):
    request = json.loads((folder / "request.json").read_text("utf-8"))
    kind = options.kind
    try:
        return intake.inspect(folder / request["source"], kind=kind, columns=options.columns or None,
                              values=options.values or None, crs=options.crs, lon=options.lon, lat=options.lat,
                              location=options.location, layer=options.layer, store=services.store,
                              scope=options.scope, name=request["source"], boundary_set=options.boundary_set)
    except ValueError as exc:  # gridgeo.intake's reason, in both languages where it gives them
        raise Problem(422, "Unprocessable Content", str(exc)) from None


def _report(services, folder: Path, options: Check | None) -> dict:
    if options is None:
        options = _options(folder)
    else:
        (folder / "options.json").write_text(options.model_dump_json(), "utf-8")
    got = _inspected(services, folder, options)
    body = {"id": folder.name, **plain(got.summary())}
    body["targets"] = list(intake.mapping.targets(got.kind)) if got.kind else []
    body["can_open"] = got.frame is not None and got.kind == "grids" and not [
        f for f in got.findings if f.severity == "error"]
    body["located"] = _located(got.report)
    body["units"] = _units(got.frame) if got.kind == "grids" else None
    return body


def _located(report) -> dict:
    """The validation report's problems as GeoJSON, where they are."""
    return feature_collection(report, ["kind", "severity", "codes", "message_zh", "message_en"])


def _units(frame) -> dict | None:
    if frame is None or len(frame) > _MAX_UNITS_DRAWN:
        return None
    return feature_collection(frame, ["code", "name", "level", "parent"])
