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
.PHONY: help run test lint migrate manage services browser migrations-check bench

help:  ## list the recipes
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON_BOOTSTRAP) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e ".[test]"
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

test: $(VENV)/.installed-test services browser  ## install test dependencies and run the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test  ## ruff and the migrations check
	$(PY) -m ruff check .
	DJANGO_SETTINGS_MODULE=config.test_settings DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

migrate: $(VENV)/.installed  ## apply migrations to the configured database
	$(PY) manage.py migrate --noinput

manage: $(VENV)/.installed  ## run a manage.py command: make manage ARGS="createsuperuser"
	$(PY) manage.py $(ARGS)

bench: $(VENV)/.installed services  ## side-by-side benchmark against mlflow server (bench/compare.py; ARGS="--scale")
	$(PY) bench/compare.py $(ARGS)
