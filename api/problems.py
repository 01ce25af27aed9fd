"""Errors as RFC 9457 problem details (``application/problem+json``).

Every error the service returns has this shape, so clients (the pages, QGIS,
other city systems) read one format, and nothing personal or internal leaks
into a message: validation errors name the parameter, domain errors carry
the library's own message, anything unexpected is a bare 500 with a request
id that points into the log.

The statuses mean one thing each, and the OpenAPI document says which ones an
operation answers (:func:`responses` for the routes, :func:`document` for what
every operation shares):

- 400: the request does not fit what the document says the operation takes
  (a parameter of the wrong type or out of its range or list, a body that is
  not the schema, and for OGC API - Features a filter, bbox or datetime the
  server cannot use, as the standard asks);
- 401: no key where a role is needed, or a key the service does not know;
- 403: the key's role may not do this; 404: no such thing; 405: no such method
  on this path (``Allow`` lists the ones there are);
- 409: a conflict with someone else's change or with a plan's state;
- 413: a body past the service's limit; 429: a client without a key asked for
  a heavy answer too often (:mod:`api.limits`), ``Retry-After`` says when to
  ask again;
- 422: the request fits the document, but a rule of gridgeo that the document
  cannot state refuses it (a plan's edit, an upload that is not a layer,
  points and ids that do not pair up); the body says which, in Chinese and English;
- 503: the derived data a route reads (figures, coverage, tiles) is still being
  prepared; ``Retry-After`` says when to ask again, and the body has
  ``preparing: true``.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("gridgeo.api")

PROBLEM = "application/problem+json"

PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "An error, as RFC 9457 problem details. Library refusals add their own fields "
                   "(message_zh, message_en, reason, units, conflicts, errors).",
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "description": "about:blank: the status says what kind of error it is"},
        "title": {"type": "string", "description": "The status in words, or the library error's name"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string", "description": "What came, what was expected and what to do"},
        "instance": {"type": "string", "description": "The path refused (not given for 401 and 403)"},
        "errors": {"type": "array", "items": {"type": "object"},
                   "description": "Each parameter that did not fit, or each validation error of a refused publish"},
        "request_id": {"type": "string", "description": "A 500's id in the service log"},
        "preparing": {"type": "boolean", "description": "A 503's: the data is being prepared, ask again later"},
        "retry_after": {"type": "integer", "description": "A 429's: seconds until the client may ask again"},
        "limit": {"type": "string", "description": "A 429's: the limit passed (assign, areas or items)"},
    },
    "additionalProperties": True,
}
"""The JSON Schema of every problem body (``#/components/schemas/Problem`` in the OpenAPI document)."""

MEANINGS = {
    400: "请求不符合接口说明 The request does not fit what this operation takes: the problem names the parameter",
    401: "缺少所需的 API 密钥，或密钥无效 No key where a role is needed, or a key the service does not know",
    403: "密钥的角色无权执行此操作 The key's role may not do this",
    404: "找不到 Not found: no such collection, level, unit, layer, plan or upload",
    409: "与他人的修改或方案状态冲突 A conflict with someone else's change or with the plan's state",
    413: "请求体过大 The body is larger than the service takes",
    429: "请求过于频繁 Too many heavy requests from this client without an API key: ask again after Retry-After "
         "seconds",
    422: "格式正确，但被 gridgeo 的规则拒绝 The request fits the document, but a rule of gridgeo refuses it: "
         "the problem says which, in Chinese and English",
    503: "数据正在准备，请稍候 The data this answer is made of is being prepared: ask again after Retry-After "
         "seconds",
}
"""What each error status means, as the OpenAPI document describes it."""


def responses(*statuses: int) -> dict[int, dict]:
    """The OpenAPI ``responses`` of error statuses, each a problem body: for a route's
    or a router's ``responses=``.

    Examples
    --------
    >>> sorted(responses(404, 409))
    [404, 409]
    >>> responses(404)[404]["content"]["application/problem+json"]["schema"]
    {'$ref': '#/components/schemas/Problem'}
    >>> list(responses(503)[503]["headers"])
    ['Retry-After']
    """
    out = {}
    for status in statuses:
        out[status] = {"description": MEANINGS[status],
                       "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        if status in (429, 503):
            out[status]["headers"] = {"Retry-After": {"description": "Seconds to wait before asking again", "required": True,
                                                      "schema": {"type": "integer", "minimum": 1}}}
    return out


def document(schema: dict) -> dict:
    """What every operation of the OpenAPI document shares, written into it (in place).

    The problem schema joins the components; FastAPI's own 422 for a request that
    does not validate becomes the 400 problem this module answers (:func:`install`),
    on every operation that takes parameters or a body; and an operation with a
    body may be refused 413 (the service's body limit).
    """
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answers = operation.setdefault("responses", {})
            fastapi_422 = answers.get("422", {}).get("content", {}).get("application/json", {}).get("schema", {})
            if fastapi_422.get("$ref", "").endswith("/HTTPValidationError"):
                del answers["422"]
            if operation.get("parameters") or operation.get("requestBody"):
                answers.setdefault("400", responses(400)[400])
            if operation.get("requestBody"):
                answers.setdefault("413", responses(413)[413])
    text = json.dumps(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"/{name}\"" not in text:
            schema["components"]["schemas"].pop(name, None)
    return schema


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


def allowed_methods(app: FastAPI, scope) -> list[str]:
    """Every method some route of ``app`` takes on the request's path, sorted.

    Starlette answers 405 with the methods of the first route whose path matched;
    a path's GET and POST are often two routes (in two routers, even), and its
    ``Allow`` must name them all.
    """
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    methods = set()
    for route in app_routes(app):
        regex, verbs = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and verbs and regex.match(path):
            methods.update(verbs)
    return sorted(methods)


def app_routes(app: FastAPI) -> list:
    """The app's routes, those of included routers among them."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # a FastAPI whose app.routes is already flat
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def install(app: FastAPI, domain_errors: dict[type[Exception], int] | None = None) -> None:
    """Map errors to problem responses: ours, FastAPI's, and the library's."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem):
        return problem_response(exc.status, exc.title, exc.detail, instance=_instance(request, exc.status),
                                **exc.extra)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        title = {401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                 413: "Payload Too Large", 503: "Service Unavailable"}.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            allowed = allowed_methods(request.app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            detail = (f"{request.url.path} 不支持 {request.method}，可用 {'、'.join(allowed)} — "
                      f"{request.url.path} takes {', '.join(allowed)}, not {request.method}")
        return problem_response(exc.status_code, title, detail, instance=_instance(request, exc.status_code),
                                headers=headers or None)

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
