"""Service settings, read from the environment with the prefix ``GRIDGEO_``.

=====================  ==========================================  =====================
variable               meaning                                     default
=====================  ==========================================  =====================
GRIDGEO_STORE          the store: a GeoPackage path or a           ``data/gridgeo.gpkg``
                       ``postgresql://`` URL
GRIDGEO_TITLE          title of the landing page                   gridgeo
GRIDGEO_CORS_ORIGINS   comma-separated origins allowed by CORS     (none)
=====================  ==========================================  =====================
"""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGEO_", extra="ignore")

    store: str = Field("data/gridgeo.gpkg", description="GeoPackage path or postgresql:// URL")
    title: str = "gridgeo"
    description: str = "晋江网格化服务管理 · 一张图 — grids, stations, coverage and events"
    cors_origins: list[str] = Field(default_factory=list)
