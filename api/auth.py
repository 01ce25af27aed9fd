"""The FastAPI dependencies of authentication: who is calling, and whether they may.

The keys themselves (roles, digests, the keys file) are :mod:`api.keys`, which
imports no web framework, so that ``gridgeo keys`` does not load the service.
Clients send a key in the ``X-API-Key`` header or as ``Authorization: Bearer <key>``.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from api.keys import ANONYMOUS, ROLES, KeyStore, Principal, digest

__all__ = ["ANONYMOUS", "ROLES", "KeyStore", "Principal", "digest", "principal", "require"]


_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="An API key (viewer, planner, reviewer or admin)")
_bearer = HTTPBearer(auto_error=False, description="The same API key as a bearer token")


def principal(request: Request, key: str | None = Depends(_api_key),
              bearer: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
    """The caller: anonymous without a key; an unknown key is refused (401)."""
    token = key or (bearer.credentials if bearer else None)
    if not token:
        return ANONYMOUS
    found = request.app.state.services.keys.lookup(token)
    if found is None:
        raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
    return found


def require(role: str):
    """A dependency that lets only ``role`` (or a higher one) through."""

    def _check(who: Principal = Depends(principal)) -> Principal:
        if not who.has(role):
            status = 401 if who.role == "anonymous" else 403
            raise HTTPException(status, f"this needs the {role} role (send an API key in the X-API-Key header)",
                                headers={"WWW-Authenticate": "Bearer"} if status == 401 else None)
        return who

    return _check
