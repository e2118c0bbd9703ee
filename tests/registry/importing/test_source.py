"""Which credentials an import sends to its source (docs/migrating.md, "Before the
switch-over"); the reads themselves are tested against a real ``mlflow server`` in
test_import_registry.py."""

from __future__ import annotations

import base64

import pytest

from registry.importing.source import (
    SourceReadError,
    credentials,
    credentials_from_environment,
    from_milliseconds,
)


@pytest.fixture
def environ(monkeypatch):
    for name in (
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def test_options_come_first(environ):
    environ.setenv("MLFLOW_TRACKING_TOKEN", "from-env")
    environ.setenv("MLFLOW_TRACKING_USERNAME", "env-user")
    assert credentials_from_environment("http://old:5000/", "tok", None, None) == (
        "http://old:5000",
        {"Authorization": "Bearer tok"},
    )
    assert credentials_from_environment("http://old:5000", None, "ann", "pw")[1] == {
        "Authorization": _basic("ann", "pw")
    }


def test_then_the_variables_in_the_mlflow_clients_order(environ):
    environ.setenv("MLFLOW_TRACKING_TOKEN", "from-env")
    assert credentials_from_environment("http://old", None, None, None)[1] == {
        "Authorization": "Bearer from-env"
    }
    environ.setenv("MLFLOW_TRACKING_USERNAME", "env-user")
    environ.setenv("MLFLOW_TRACKING_PASSWORD", "env-pw")
    assert credentials_from_environment("http://old", None, None, None)[1] == {
        "Authorization": _basic("env-user", "env-pw")
    }


def test_a_databricks_workspace_from_its_variables(environ):
    environ.setenv("DATABRICKS_HOST", "adb-1.azuredatabricks.net")
    environ.setenv("DATABRICKS_TOKEN", "dapi1")
    assert credentials_from_environment(None, None, None, None) == (
        "https://adb-1.azuredatabricks.net",
        {"Authorization": "Bearer dapi1"},
    )


def test_no_source_is_a_clear_error(environ):
    with pytest.raises(SourceReadError, match="--from URL"):
        credentials_from_environment(None, None, None, None)


def test_runs_from_the_api_send_only_their_own_credentials(environ):
    environ.setenv("MLFLOW_TRACKING_TOKEN", "the-workers-own")
    assert credentials("http://old", "", "", "") == ("http://old", {})


def test_milliseconds_are_kept_exactly():
    for value in (0, 1_700_000_000_123, 1_796_104_855_055, "1699999999999"):
        moment = from_milliseconds(value)
        assert moment is not None
        assert int(moment.timestamp() * 1000) == int(value)
    assert from_milliseconds(None) is None
