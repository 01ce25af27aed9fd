"""Service settings, read from the environment with the prefix ``GRIDGEO_``.

========================  ==========================================  =====================
variable                  meaning                                     default
========================  ==========================================  =====================
GRIDGEO_STORE             the store: a GeoPackage path or a           ``data/gridgeo.gpkg``
                          ``postgresql://`` URL
GRIDGEO_TITLE             title of the landing page                   gridgeo
GRIDGEO_CORS_ORIGINS      origins allowed by CORS (JSON list)         (none)
GRIDGEO_KEYS_FILE         API keys (digests only), see api.auth       (none: everyone is
                                                                      anonymous)
GRIDGEO_MAX_LIMIT         the largest ``limit`` of a features page    10000
GRIDGEO_MAX_ASSIGN        the most points one POST /assign takes      100000
GRIDGEO_MAX_BODY          the largest request body, in bytes          16 MiB
GRIDGEO_TILE_CACHE        directory for rendered tiles                (memory only)
GRIDGEO_ANSWER_CACHE      where the map's public answers are kept     ``~/.cache/gridgeo/
                          per data version, given while a restarted   answers``; ``off``
                          service is being built (:mod:`api.boot`;
                          read by ``gridgeo serve`` before the app)
GRIDGEO_ANSWER_CACHE_MB   the most one version's kept answers take    512
GRIDGEO_TILE_CACHE_BYTES  memory for rendered tiles, in bytes         128 MiB
GRIDGEO_TILE_RENDERERS    tiles a worker draws at the same time       1
GRIDGEO_CACHE_MB          memory for what a worker keeps of the       384
                          version it serves (figures, tile sets,
                          encoded answers ...), in MiB: the least
                          recently used is dropped and read again
                          when needed (:mod:`gridgeo.lru`)
GRIDGEO_BASEMAP           XYZ template of a basemap for the map page  (none)
GRIDGEO_TIANDITU_KEY      天地图 key: the government basemap          (none)
GRIDGEO_VERSION_TTL       seconds between checks of the data version  1.0
GRIDGEO_PREPARE           how a new data version's derived data is    background
                          prepared: ``background`` (a ``gridgeo
                          prepare`` process; the previous version is
                          served meanwhile), ``inline`` (in the
                          request that needs it: small stores,
                          tests) or ``off`` (run ``gridgeo prepare``
                          yourself)
GRIDGEO_PUBLIC_URL        the service's address as clients reach it   (none: links use the
                          (https://grid.example.gov.cn), for links    request's host, and
                          and TileJSON                                are not cached by
                                                                      shared caches)
GRIDGEO_IMPORTS_DIR       where planners' uploads are kept (shared    (a folder in the
                          by the service's workers)                   temporary directory)
GRIDGEO_MAX_UPLOAD        the largest upload, in bytes                200 MiB
GRIDGEO_RATE_ASSIGN       POST /assign per client without an API      ``5/10``: 5 requests
                          key: ``requests/seconds``, 0 for no limit   in any 10 s
GRIDGEO_RATE_AREAS        GET /coverage/areas, likewise               ``10/10``
GRIDGEO_RATE_ITEMS        items requests over a wide area, likewise   ``10/10``
GRIDGEO_RATE_PRINT        GET /export/map.png|pdf, likewise           ``5/10``
GRIDGEO_RATE_BUSY         the service's time all the heavy requests   ``3/10``
                          of one client without a key may take:
                          seconds/in any seconds, 0 for no budget
GRIDGEO_RATE_WIDE_BBOX    an items bbox wider than this (square       0.01 (about 100 km²)
                          degrees) is a wide one
GRIDGEO_RATE_WIDE_LIMIT   an items request without a bbox asking      1000
                          for more features than this is a wide one
GRIDGEO_TRUSTED_PROXIES   how many proxies in front of the service    0 (the client is the
                          append to X-Forwarded-For                   peer address)
GRIDGEO_MIN_COUNT         the smallest count of addresses,            10
                          households, people or events an anonymous
                          answer shows (k): smaller ones, and those
                          that would give them away by subtraction,
                          are withheld (:mod:`gridgeo.disclosure`);
                          viewer keys and up see every figure
GRIDGEO_HEAT_MIN_CELL     the smallest cell of the anonymous event    250
                          heat map, in metres
GRIDGEO_HEAT_PERIOD       the shortest period of the anonymous event  month
                          heat map: ``month``, ``quarter`` or
                          ``year`` (``from`` and ``to`` must be the
                          first days of such periods)
GRIDGEO_SELF_PUBLISH      a small office without a second person:     false (a reviewer
                          a planner publishes a plan they created     approves, then
                          after acknowledging its pre-publish         publishes)
                          report, and a reviewer may approve their
                          own (:mod:`gridgeo.review`)
========================  ==========================================  =====================

The rate limits (:mod:`api.limits`) are per worker process and leave callers
with an API key alone.
"""

from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GRIDGEO_", extra="ignore")

    store: str = Field("data/gridgeo.gpkg", description="GeoPackage path or postgresql:// URL")
    title: str = "gridgeo"
    description: str = "晋江网格化服务管理 · 一张图 — grids, stations, coverage and events"
    cors_origins: list[str] = Field(default_factory=list)
    keys_file: str | None = None
    max_limit: int = 10_000
    default_limit: int = 100
    max_assign: int = 100_000
    max_body: int = 16 * 2**20
    tile_cache: str | None = None
    tile_cache_bytes: int = Field(128 * 2**20, ge=0)
    tile_renderers: int = Field(1, ge=1, le=64, description="tiles a worker draws at the same time (api.routes.tiles)")
    cache_mb: int = Field(384, ge=0, description="MiB a worker keeps of the version it serves")
    basemap: str | None = None
    basemap_attribution: str = ""
    tianditu_key: str | None = None
    version_ttl: float = 1.0
    public_url: str | None = None
    imports_dir: str | None = None
    max_upload: int = 200 * 2**20
    prepare: Literal["background", "inline", "off"] = "background"
    rate_assign: str = "5/10"
    rate_areas: str = "10/10"
    rate_items: str = "10/10"
    rate_print: str = "5/10"
    rate_busy: str = Field("3/10", description="the service's time the heavy requests of a client without a key "
                           "may take: seconds/in any seconds (api.limits.BusyWindow); 0 for no budget")
    rate_wide_bbox: float = Field(0.01, ge=0)
    rate_wide_limit: int = Field(1000, ge=0)
    trusted_proxies: int = Field(0, ge=0, le=10)
    min_count: int = Field(10, ge=1, description="the minimum count k of anonymous answers")
    heat_min_cell: float = Field(250.0, ge=50, le=2000, description="the smallest anonymous heat cell (m)")
    heat_period: Literal["month", "quarter", "year"] = "month"
    self_publish: bool = False
    siting_time_s: float = Field(20.0, gt=0, le=600, description="HiGHS stops a siting proposal after this many "
                                 "seconds with the best answer found (said not proven optimal)")
    team_office: str | None = Field(None, description="what the public sees of a grid's team: the office's name "
                                    "(as on the 网格牌); default none")
    team_phone: str | None = Field(None, description="the service number the public sees for every grid's team; "
                                   "default none (no names or phones are ever public)")

    @field_validator("rate_assign", "rate_areas", "rate_items", "rate_print", "rate_busy")
    @classmethod
    def _rate(cls, value: str) -> str:
        from api.limits import Rate

        Rate.parse(value)  # a ValueError names what is wrong, and pydantic the setting
        return value.strip()
