"""What the service says of the data it serves (preparing, serving a version, starting): always shown,
whatever the logging configuration, as uvicorn's own lines are."""

import logging

log = logging.getLogger("gridgeo.api.data")
if not log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(levelname)s:     gridgeo: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
