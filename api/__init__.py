"""The gridgeo map service: a thin FastAPI layer over the gridgeo library."""

from api.main import create_app
from api.settings import Settings

__all__ = ["create_app", "Settings"]
