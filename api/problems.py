"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the service returns has this shape, so clients (the pages, QGIS,
other city systems) read one format, and nothing personal or internal leaks
into a message: validation errors name the parameter, domain errors carry
the library's own message, anything unexpected is a bare 500 with a request
id that points into the log.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("gridgeo.api")

PROBLEM = "application/problem+json"


def domain_fields(exc: Exception) -> dict:
    """What a library error carries beyond its message, for the problem body: a plan
    refusal's reason, both languages, units and blocks; a stale edit's or a conflict's
    units; a refused publish's validation errors; a refused approval's or publish's
    pre-publish report (``report``, as its ``to_dict`` gives it)."""
    from api.encode import plain, records

    fields = {}
    if callable(getattr(exc, "to_dict", None)):
        fields.update(plain(exc.to_dict()))
    if getattr(exc, "conflicts", None) is not None:
        fields["conflicts"] = plain(exc.conflicts)
    report = getattr(exc, "report", None)
    if report is not None and hasattr(report, "columns") and "severity" in report.columns:
        errors = report[report["severity"] == "error"]
        keep = [c for c in ("code", "level", "kind", "severity", "message_zh", "message_en") if c in errors.columns]
        fields["errors"] = records(errors[keep].reset_index(drop=True))
    if not isinstance(fields.get("report"), dict):
        fields.pop("report", None)
    return fields


class Problem(Exception):
    """An error with an HTTP status, raised by endpoints and mapped by the handlers."""

    def __init__(self, status: int, title: str, detail: str | None = None, **extra):
        super().__init__(detail or title)
        self.status, self.title, self.detail, self.extra = status, title, detail, extra


def problem_response(status: int, title: str, detail: str | None = None, *, instance: str | None = None,
                     headers: dict | None = None, **extra) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _instance(request: Request, status: int) -> str | None:
    # a refused request's path may name a record (an address id): do not echo it
    return None if status in (401, 403) else request.url.path


def install(app: FastAPI, domain_errors: dict[type[Exception], int] | None = None) -> None:
    """Map errors to problem responses: ours, FastAPI's, and the library's."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, exc.title, exc.detail, instance=_instance(request, exc.status),
                                **exc.extra)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        title = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                 413: "Payload Too Large"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, title, detail, instance=_instance(request, exc.status_code),
                                headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [
            {"parameter": ".".join(str(p) for p in err.get("loc", ())[1:]) or str(err.get("loc", [""])[0]),
             "in": str(err.get("loc", ["query"])[0]), "message": err.get("msg", "")}
            for err in exc.errors()
        ]
        detail = "; ".join(f"{e['parameter']}: {e['message']}" for e in errors)
        return problem_response(400, "Bad Request", detail, instance=request.url.path, errors=errors)

    for error_type, status in (domain_errors or {}).items():
        def _handler(request: Request, exc: Exception, status=status):
            return problem_response(status, type(exc).__name__, str(exc), instance=_instance(request, status),
                                    **domain_fields(exc))
        app.add_exception_handler(error_type, _handler)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        request_id = request.headers.get("x-request-id") or hex(id(request))[2:]
        log.exception("unexpected error %s on %s %s", request_id, request.method, request.url.path)
        # the connection may be in any state after an unexpected error: close it rather than reuse it
        return problem_response(500, "Internal Server Error", f"see the service log, request {request_id}",
                                instance=request.url.path, headers={"Connection": "close"},
                                request_id=request_id)
