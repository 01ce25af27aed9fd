"""The gridgeo map service: a thin FastAPI layer over the gridgeo library.

``create_app`` and ``Settings`` load FastAPI when first asked for, so that
:mod:`api.keys` (what ``gridgeo keys`` needs) imports no web framework.
"""

__all__ = ["create_app", "Settings"]


def __getattr__(name):
    if name == "create_app":
        from api.main import create_app

        return create_app
    if name == "Settings":
        from api.settings import Settings

        return Settings
    raise AttributeError(f"module 'api' has no attribute {name!r}")
