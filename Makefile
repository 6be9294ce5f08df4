# Set-up is part of every target: the virtual environment is created and the pinned
# requirements installed on first use (and again when requirements.txt or pyproject.toml change).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# uv installs the pinned requirements (downloads in parallel: ~40 s from a cold cache on 2 cores,
# where pip took ~4.5 minutes); the venv keeps pip, which installs uv itself.
UV_VERSION := 0.13.9

.PHONY: venv mwaa-venv browser demo demo-stop test test-fast screenshots serve bench clean

$(STAMP): requirements.txt pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), f"Python 3.11 is required, found {sys.version.split()[0]} at {sys.executable}"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q uv==$(UV_VERSION)
	$(BIN)/uv pip install --python $(BIN)/python --link-mode=copy -q -r requirements.txt
	$(BIN)/uv pip install --python $(BIN)/python --link-mode=copy -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## make mwaa-venv: a second venv, .venv-mwaa, with the oldest Airflow 3 that Amazon MWAA offers and the
## requirements of `lake package mwaa` installed as MWAA installs them (under the release's constraints),
## for tests/e2e/test_mwaa_compat.py (docs/deploy-mwaa.md). MWAA runs 3.0.6 on Python 3.12; this machine
## has 3.11. Airflow's constraints file of a release is its highest resolution on the release day; only
## PyPI is reachable here, so uv recomputes it (--exclude-newer: Airflow 3.0.6, the amazon provider that
## file pins, and the package's bare requirements, which that file pins too) into .venv-mwaa/constraints.txt,
## then installs the package's requirements under it.
MWAA_AIRFLOW_VERSION := 3.0.6
MWAA_AMAZON_PROVIDER := 9.12.0
MWAA_RESOLVED_AT     := 2025-08-30T00:00:00Z
MWAA_VENV            := .venv-mwaa
MWAA_STAMP           := $(MWAA_VENV)/.installed

$(MWAA_STAMP): $(STAMP) Makefile lake/deploy/mwaa.py
	test -x $(MWAA_VENV)/bin/python || $(PYTHON) -m venv --without-pip $(MWAA_VENV)
	$(BIN)/lake package mwaa --airflow-version $(MWAA_AIRFLOW_VERSION) --out $(MWAA_VENV)/package > /dev/null
	grep -v '^--constraint' $(MWAA_VENV)/package/requirements.txt > $(MWAA_VENV)/requirements.txt
	{ grep -vE '^(#|-)|[<=>]' $(MWAA_VENV)/requirements.txt; echo apache-airflow==$(MWAA_AIRFLOW_VERSION); \
	  echo apache-airflow-providers-amazon==$(MWAA_AMAZON_PROVIDER); } > $(MWAA_VENV)/constraints.in
	$(BIN)/uv pip compile --python $(MWAA_VENV)/bin/python -q --exclude-newer $(MWAA_RESOLVED_AT) \
		-o $(MWAA_VENV)/constraints.txt $(MWAA_VENV)/constraints.in
	$(BIN)/uv pip install --python $(MWAA_VENV)/bin/python --link-mode=copy -q -c $(MWAA_VENV)/constraints.txt \
		apache-airflow==$(MWAA_AIRFLOW_VERSION) apache-airflow-providers-amazon==$(MWAA_AMAZON_PROVIDER) \
		-r $(MWAA_VENV)/requirements.txt
	touch $(MWAA_STAMP)

mwaa-venv: $(MWAA_STAMP)

## make browser: headless Chromium for the browser tests (tests/e2e/test_dashboards_browser.py):
## Debian's chromium + chromium-driver, installed with apt-get when missing (as root or with sudo)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "make browser: $$(chromium --version 2>/dev/null) and chromedriver are installed"; \
	elif ! command -v apt-get >/dev/null; then \
		echo "make browser: no apt-get: install Chromium and its chromedriver as /usr/bin/chromium and /usr/bin/chromedriver; the browser tests fail without them" >&2; exit 1; \
	else \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		echo "make browser: installing chromium chromium-driver with apt-get"; \
		{ $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
		|| { echo "make browser: 'apt-get install chromium chromium-driver' failed (above); the browser tests cannot run" >&2; exit 1; }; \
	fi

## make demo: localaws + Airflow in the background, provision, replay 2013-01-01..07, backfill them,
## print the results; leaves the UI on http://localhost:8080 (CI=true or DEMO_ARGS=--no-ui: exit when done)
demo: $(STAMP)
	$(BIN)/lake demo $(if $(filter true 1 yes,$(CI)),--no-ui,) $(DEMO_ARGS)

## make demo-stop: stop what make demo started
demo-stop: $(STAMP)
	$(BIN)/lake demo --stop

## make test-fast: the fast tier (marker unit: no Spark, no Airflow scheduler or whole-DAG run, nothing
## multi-minute), in FAST_WORKERS pytest-xdist processes (default 2: one per core)
FAST_WORKERS ?= 2
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m unit -n $(FAST_WORKERS) $(PYTEST_ARGS)

## make test: the whole test suite, every tier: the unit tier as make test-fast runs it, then the
## others (spark, e2e, slow) in HEAVY_WORKERS pytest-xdist processes (default 3: on 2 cores these tests wait on
## polls, sensors and sleeps a third of the time, so a third worker fills the gaps) by module: the demo-stack
## tests one after the other in one worker, each other module whole (tests/conftest.py); both parts
## always run, and it fails when either fails. With PYTEST_ARGS (e.g. -m "not slow"): one pytest run.
HEAVY_WORKERS ?= 3
test: $(STAMP) browser mwaa-venv
ifeq ($(strip $(PYTEST_ARGS)),)
	@unit=0; rest=0; \
	$(BIN)/python -m pytest -m unit -n $(FAST_WORKERS) || unit=$$?; \
	$(BIN)/python -m pytest -m "not unit" -n $(HEAVY_WORKERS) --dist loadfile --no-loadscope-reorder || rest=$$?; \
	echo "make test: unit tier exit $$unit, other tiers exit $$rest"; \
	[ $$unit -eq 0 ] && [ $$rest -eq 0 ]
else
	$(BIN)/python -m pytest $(PYTEST_ARGS)
endif

## make screenshots: the browser tests, retaking the dashboards' screenshots in docs/img (LAKE_SCREENSHOTS=1;
## other runs leave docs/img alone)
screenshots: $(STAMP) browser
	LAKE_SCREENSHOTS=1 $(BIN)/python -m pytest tests/e2e/test_dashboards_browser.py $(PYTEST_ARGS)

## make serve: localaws on 127.0.0.1:4566 with state kept in .localaws/
serve: $(STAMP)
	$(BIN)/localaws serve --state-dir .localaws

## make bench: benchmarks under bench/ (they print their figures; dashboards.py: the Lake pages' server time and
## their browser load event in headless Chromium, the refresh DAG; stream.py: Firehose ingest (localaws in its own
## process and in-process) + 60 s of lake stream send;
## big_day.py: a 2 GB day through the DAG, ~20 min)
bench: $(STAMP)
	$(BIN)/python bench/localaws_startup.py
	$(BIN)/python bench/warm_runtimes.py
	$(BIN)/python bench/localaws_athena.py
	$(BIN)/python bench/localaws_durability.py
	$(BIN)/python bench/glue_pool.py
	$(BIN)/python bench/extractor.py --scale 1
	$(BIN)/python bench/dashboards.py
	$(BIN)/python bench/stream.py
	$(BIN)/python bench/big_day.py

clean:
	rm -rf $(VENV) $(MWAA_VENV) .localaws .demo .pytest_cache
