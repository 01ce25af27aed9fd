# The two set-up commands: `make demo` and `make test`. Each does its own set-up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STORE ?= data/gridgeo.gpkg
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test venv assets system-packages clean-store

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "gridgeo needs Python 3.11 or newer, found " + sys.version'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Leaflet and its plugins, from the npm registry (served by the service; never a CDN).
ASSETS := api/static/node_modules/.package-lock.json
$(ASSETS): api/static/package.json api/static/package-lock.json
	npm ci --prefix api/static --no-audit --no-fund
	touch $@

assets: $(ASSETS)

system-packages:
	scripts/system-packages test

# Run the service on the sample, from the embedded GeoPackage store.
demo: venv
	scripts/system-packages demo
	$(MAKE) assets
	$(BIN)/gridgeo load sample_geojson --store $(STORE) --if-missing
	$(BIN)/gridgeo prepare --store $(STORE) --quiet
	@test -f data/keys.json || { \
	  $(BIN)/gridgeo keys add 演示领导 --role viewer --file data/keys.json > data/demo-viewer.key; \
	  $(BIN)/gridgeo keys add 演示网格办 --role planner --file data/keys.json > data/demo-planner.key; }
	@test -f data/demo-reviewer.key || \
	  $(BIN)/gridgeo keys add 演示审核员 --role reviewer --file data/keys.json > data/demo-reviewer.key
	@echo "demo API keys: viewer $$(cat data/demo-viewer.key), planner $$(cat data/demo-planner.key), reviewer $$(cat data/demo-reviewer.key)"
	GRIDGEO_KEYS_FILE=data/keys.json $(BIN)/gridgeo serve --store $(STORE) --host $(HOST) --port $(PORT)

# The whole test suite.
test: venv system-packages assets
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean-store:
	rm -f $(STORE)
