# TwinPortal: `make demo` and `make test` each set up what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.requirements-installed
DEMO_ENV := DJANGO_SETTINGS_MODULE=twinportal.settings.demo
# Production settings with throwaway values, only to run `check --deploy` against them.
DEPLOY_CHECK_ENV := DJANGO_SETTINGS_MODULE=twinportal.settings.production \
	DJANGO_SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(64))') \
	DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/0 \
	DJANGO_ALLOWED_HOSTS=twinportal.example.org

.PHONY: demo test venv lock services browser lint typecheck pytest deploy-check fuzz bench validation clean

# Installs exactly the versions (and file hashes) of requirements.lock; `make lock` refreshes it.
$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	@touch $(STAMP)

lock:
	bash scripts/lock-requirements.sh

venv: $(STAMP)

demo: venv
	@mkdir -p var
	$(DEMO_ENV) $(PY) manage.py migrate --noinput -v 0
	$(DEMO_ENV) $(PY) manage.py seed_demo
	$(DEMO_ENV) $(PY) manage.py runserver 127.0.0.1:8000 --noreload

services:
	@bash scripts/start-services.sh

browser:
	@bash scripts/install-browser.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: venv
	$(VENV)/bin/mypy .

deploy-check: venv
	$(DEPLOY_CHECK_ENV) $(PY) manage.py check --deploy --fail-level WARNING

pytest: venv services browser
	$(PY) -m pytest -p no:cacheprovider -n 2 --dist loadgroup
	# this test stops and restarts its broker, so it gets a Redis of its own on port 6391
	TEST_REDIS_URL=redis://127.0.0.1:6391/0 $(PY) -m pytest -p no:cacheprovider -m redis_outage

test: venv services browser lint typecheck deploy-check pytest

# property 22 at length: schemathesis over the whole API as clinician, data manager and device
# (`make test` runs the same test with 8 examples per operation)
fuzz: venv services
	TWINPORTAL_FUZZ_EXAMPLES=$${TWINPORTAL_FUZZ_EXAMPLES:-200} $(PY) -m pytest -p no:cacheprovider -n 0 tests/security/test_p22_api_fuzz.py

bench: venv services
	$(PY) -m bench.twin_speed
	$(PY) -m bench.backtest_synthea
	$(PY) -m bench.hss2016_solver
	$(PY) -m bench.nlp_eval
	$(PY) -m bench.cohort_generation
	$(PY) -m bench.admin_lists
	$(PY) -m bench.device_ingestion
	$(PY) -m bench.pages_load
	$(PY) -m bench.twin_nightly

validation: venv
	$(PY) -m bench.validation

clean:
	rm -rf $(VENV) var staticfiles .mypy_cache .ruff_cache
