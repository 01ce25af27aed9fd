"""The FastAPI dependencies of authentication: who is calling, and whether they may.

The keys themselves (roles, digests, the keys file) are :mod:`api.keys`, which
imports no web framework, so that ``gridgeo keys`` does not load the service.
Clients send a key in the ``X-API-Key`` header, as ``Authorization: Bearer <key>``,
or as the password of HTTP Basic with any user name (QGIS's authentication
manager and GDAL can send nothing else to an OGC API).

:func:`principal` runs on every route (the app's own dependency): a request
without a key is anonymous and reads the public data; a key the service does
not know is refused 401 on every route, so that a mistyped key is never
silently served as anonymous. While the keys file cannot be read, a request
with a key is answered 503 (it cannot be checked) and anonymous ones go on.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBasic, HTTPBasicCredentials, HTTPBearer

from api.keys import ANONYMOUS, ROLES, KeyStore, KeysUnavailable, Principal, digest
from api.problems import app_routes, responses

__all__ = ["ANONYMOUS", "ROLES", "KeyStore", "Principal", "digest", "principal", "require", "document"]


UNCHECKABLE = (" While the service cannot read its keys file, any request that carries a key, by any of the "
               "three schemes, is answered 503 (a problem, with Retry-After) on every operation; requests "
               "without a key go on.")
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key (viewer, planner, reviewer or admin)." + UNCHECKABLE)
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token")
_basic = HTTPBasic(auto_error=False, description="The same API key as the password, any user name (QGIS, GDAL)")

UNKNOWN_KEY = ("服务不认识这个 API 密钥：请核对，或向管理员申请（gridgeo keys add）；公开数据无需密钥 — "
               "this API key is not known to the service: check it, or ask an administrator for one "
               "(gridgeo keys add); the public data needs no key")


def principal(request: Request, key: str | None = Depends(_api_key),
              bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
              basic: HTTPBasicCredentials | None = Depends(_basic)) -> Principal:
    """The caller: anonymous without a key (an empty ``X-API-Key`` is none); a key the
    service does not know is refused (401); while the keys file cannot be read, any
    key is answered 503."""
    token = key or (bearer.credentials if bearer else None) or (basic.password if basic else None)
    if not token:
        return ANONYMOUS
    try:
        found = request.app.state.services.keys.lookup(token)
    except KeysUnavailable:
        # the log says what is wrong with the file (once); the caller learns only that keys cannot be checked
        raise HTTPException(503, "暂时无法核对 API 密钥，请稍后再试；公开数据无需密钥 — API keys cannot be checked "
                                 "at the moment: try again later (the public data needs no key)",
                            headers={"Retry-After": "60"}) from None
    if found is None:
        raise HTTPException(401, UNKNOWN_KEY, headers={"WWW-Authenticate": "Bearer"})
    return found


def require(role: str):
    """A dependency that lets only ``role`` (or a higher one) through."""

    def _check(who: Principal = Depends(principal)) -> Principal:
        if not who.has(role):
            status = 401 if who.role == "anonymous" else 403
            raise HTTPException(status, f"this needs the {role} role (send an API key in the X-API-Key header)",
                                headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        return who

    _check.role = role  # what document() reads
    return _check


def document(schema: dict, app: FastAPI) -> dict:
    """The OpenAPI document's security as the routes apply it (in place).

    FastAPI lists the key schemes on every operation, as if each needed a key;
    an operation that needs no role also takes none (``{}``, OpenAPI's optional
    security), and one that needs a role may refuse a lower one (403).
    """
    for route in app_routes(app):
        path, methods, dependant = (getattr(route, name, None) for name in ("path_format", "methods", "dependant"))
        if path not in schema.get("paths", {}) or not methods or dependant is None:
            continue
        role = _required_role(dependant)
        for method in methods:
            operation = schema["paths"][path].get(method.lower())
            if operation is None or "security" not in operation:
                continue
            if role is None:
                operation["security"] = [{}, *[s for s in operation["security"] if s]]
            else:
                operation.setdefault("responses", {}).setdefault("403", responses(403)[403])
    return schema


def _required_role(dependant) -> str | None:
    """The role a route's dependencies require (:func:`require`), or None."""
    for sub in dependant.dependencies:
        role = getattr(sub.call, "role", None) or _required_role(sub)
        if role:
            return role
    return None
