# The two commands of the README:
#   make run   - set up and run the whole service on the embedded default (no external services)
#   make test  - set up and run the whole test suite against PostgreSQL and Redis
# Other recipes: make help

PYTHON_BOOTSTRAP ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
BIND ?= 127.0.0.1:8000

.DEFAULT_GOAL := help
.PHONY: help run test lint migrate manage services browser migrations-check audit lock soak bench bench-register

help:  ## list the recipes
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

# requirements.lock pins every dependency (the service's and the tests'): installs are
# repeatable, and `make audit` checks exactly what is installed. `make lock` refreshes it.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c requirements.lock -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml requirements.lock
	$(PIP) install --quiet -c requirements.lock -e ".[test]"
	touch $@

# `mlflow server`, the tracking server the tests and the benchmark run beside the registry, in
# a virtualenv of its own: its pins (gunicorn<27, its own Flask stack) clash with the service's.
# requirements-mlflow.lock pins it and everything it pulls in (boto3 for s3:// artifact roots,
# psycopg2-binary for a PostgreSQL store).
MLFLOW_VENV ?= .venv-mlflow
$(MLFLOW_VENV)/.installed: requirements-mlflow.lock
	$(PYTHON_BOOTSTRAP) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/python -m pip --disable-pip-version-check install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/python -m pip --disable-pip-version-check install --quiet \
		-r requirements-mlflow.lock
	touch $@

run: export DJANGO_DEBUG ?= true
run: $(VENV)/.installed  ## install, migrate, create an admin if none, run web + worker + beat
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin
	$(PY) manage.py run_embedded --bind $(BIND)

services:  ## start PostgreSQL and Redis on this machine if they are not running
	@.ci/services

browser:  ## install Debian's Chromium for the browser tests if it is missing (as root)
	@.ci/browser

test: $(VENV)/.installed-test $(MLFLOW_VENV)/.installed services browser audit lint  ## install test dependencies, lint, and run the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

audit: $(VENV)/.installed-test  ## pip-audit the locked dependencies (skipped, saying so, if PyPI's API is unreachable)
	@PY=$(PY) .ci/audit

lock:  ## re-resolve pyproject.toml's dependencies to their newest releases and pin them
	rm -rf .venv-lock
	$(PYTHON_BOOTSTRAP) -m venv .venv-lock
	.venv-lock/bin/python -m pip --disable-pip-version-check install --quiet --upgrade pip
	.venv-lock/bin/python -m pip --disable-pip-version-check install --quiet -e ".[test]"
	.venv-lock/bin/python -m pip --disable-pip-version-check freeze --exclude-editable \
		| LC_ALL=C sort > requirements.lock
	rm -rf .venv-lock

lint: $(VENV)/.installed-test  ## ruff, the import contracts and mypy (pyproject.toml), the migrations check
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	DJANGO_SETTINGS_MODULE=config.test_settings DATABASE_URL=sqlite:///:memory: $(VENV)/bin/lint-imports
	DJANGO_SETTINGS_MODULE=config.test_settings DATABASE_URL=sqlite:///:memory: $(PY) -m mypy
	DJANGO_SETTINGS_MODULE=config.test_settings DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

migrate: $(VENV)/.installed  ## apply migrations to the configured database
	$(PY) manage.py migrate --noinput

manage: $(VENV)/.installed  ## run a manage.py command: make manage ARGS="createsuperuser"
	$(PY) manage.py $(ARGS)

soak: $(VENV)/.installed services  ## 10 min of mixed load on the production setup: make soak SOAK_ARGS="--minutes 2"
	$(PY) bench/soak.py $(SOAK_ARGS)

bench: $(VENV)/.installed $(MLFLOW_VENV)/.installed services  ## side-by-side benchmark against mlflow server (bench/compare.py; ARGS="--scale")
	$(PY) bench/compare.py $(ARGS)

bench-register: $(VENV)/.installed-test $(MLFLOW_VENV)/.installed services  ## mlflow.register_model end to end, the registry beside mlflow server (bench/register.py; ARGS="--count 5")
	$(PY) bench/register.py $(ARGS)
