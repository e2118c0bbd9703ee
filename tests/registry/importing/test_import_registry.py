"""``manage.py import_registry`` against a real ``mlflow server`` (docs/migrating.md).

The source is the pinned ``mlflow server`` of ``.venv-mlflow`` with a PostgreSQL backend store
(a database of its own on the test server) and its artifacts on the test S3 server; it is seeded
through its API with the real ``mlflow`` client: models, versions (some deleted, the highest of
one model among them), tags, descriptions, stages, aliases, real model files. The registry (web
server and Celery worker in their own processes) imports it with the command run as a user runs
it, in a process of its own; then every read call of the protocol is made on both servers with
the ``mlflow`` client and compared field by field, apart from the differences docs/migrating.md
lists. A second run imports nothing, a run killed half-way and started again ends complete with
no duplicates, and a dry run writes nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
import warnings

import mlflow
import numpy as np
import psycopg2
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.conftest import PASSWORD
from tests.processes import ROOT, SOURCE_BUCKET, MlflowServer, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.real_artifact_copy]

BULK_VERSIONS = 25
ADMIN = ("admin", "x-admin-password")

# The fields of the protocol compared between the two servers. Not compared (docs/migrating.md,
# "What differs after the import"): a copied version's last_updated_timestamp (the copy into
# the store updates it), user_id (the registry's MLflow API does not answer it), status_message,
# and MLflow 3's deployment_job_state, metrics and params, which the registry does not keep.
VERSION_FIELDS = (
    "name",
    "version",
    "creation_timestamp",
    "current_stage",
    "description",
    "source",
    "run_id",
    "run_link",
    "status",
    "tags",
    "aliases",
    "model_id",
)
MODEL_FIELDS = ("name", "creation_timestamp", "last_updated_timestamp", "description", "tags")


def _server_params():
    from django.db import connection

    return connection.settings_dict


@pytest.fixture
def source_database():
    """A database of its own for the source's backend store, on the test server."""
    params = _server_params()
    name = f"mlflow_source_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(
        dbname="postgres",
        user=params["USER"],
        password=params["PASSWORD"] or None,
        host=params["HOST"],
        port=params["PORT"],
    )
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    password = f":{params['PASSWORD']}" if params["PASSWORD"] else ""
    yield f"postgresql+psycopg2://{params['USER']}{password}@{params['HOST']}:{params['PORT']}/{name}"
    with admin.cursor() as cursor:
        cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture
def source_server(moto_server, tmp_path, source_database):
    server = MlflowServer(
        tmp_path / "mlflow",
        s3_root=f"s3://{SOURCE_BUCKET}/mlflow",
        moto=moto_server,
        backend_store_uri=source_database,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def stack_env(source_server):
    # The source is also the tracking server the registry reads models:/<id> sources from.
    return {"MLFLOW_TRACKING_SERVER_URL": source_server.url}


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(
        username="admin", email="admin@example.com", password="x-admin-password"
    )


@pytest.fixture
def clients(monkeypatch, source_server, registry_stack, admin):
    """(source, registry): the ``mlflow`` client of each, as a user configures it."""
    from accounts.services import api_token_create

    for name in list(os.environ):
        if name.startswith(("AWS_", "MLFLOW_")):
            monkeypatch.delenv(name)
    for name, value in source_server.s3_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(
        "MLFLOW_TRACKING_TOKEN", api_token_create(actor=None, user=admin, name="import").secret
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    warnings.simplefilter("ignore", FutureWarning)  # stages are deprecated client-side
    mlflow.set_tracking_uri(source_server.url)
    mlflow.set_registry_uri(source_server.url)
    yield (
        MlflowClient(source_server.url, source_server.url),
        MlflowClient(source_server.url, registry_stack.url),
    )
    mlflow.set_tracking_uri("")
    mlflow.set_registry_uri("")


@pytest.fixture
def trained():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(19)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] - 0.3 * features[:, 2] > 0).astype(int)
    return LogisticRegression().fit(features, labels), features


def _seed(source: MlflowClient, model, tmp_path) -> dict:
    """The source registry: what a team has after a while."""
    with mlflow.start_run() as run:
        logged = mlflow.sklearn.log_model(model, name="model", pip_requirements=["sklearn"])
    saved = tmp_path / "saved"
    mlflow.sklearn.save_model(model, str(saved), pip_requirements=["sklearn"])
    with mlflow.start_run() as plain:
        mlflow.log_artifacts(str(saved), "exported")
    files = f"{plain.info.artifact_uri}/exported"  # s3://source/mlflow/...
    logged_uri = f"models:/{logged.model_id}"

    source.create_registered_model(
        "churn", tags={"team": "risk", "tier": "1"}, description="Churn scoring"
    )
    for number in range(1, 6):
        from_logged = number % 2 == 1
        source.create_model_version(
            "churn",
            logged_uri if from_logged else files,
            run_id=run.info.run_id if from_logged else plain.info.run_id,
            tags={"n": str(number)},
            description=f"churn {number}",
            model_id=logged.model_id if from_logged else None,
        )
    source.delete_model_version("churn", "2")
    source.delete_model_version("churn", "5")  # the highest: a gap at the top
    source.transition_model_version_stage("churn", "3", "Production")
    source.transition_model_version_stage("churn", "1", "Archived")
    source.transition_model_version_stage("churn", "4", "Staging")
    source.set_model_version_tag("churn", "3", "validated", "yes")
    source.set_registered_model_alias("churn", "champion", "3")
    source.set_registered_model_alias("churn", "challenger", "4")
    # dev to prod, as MLflow documents it: the copy's source is models:/churn/3.
    source.copy_model_version("models:/churn/3", "churn-prod")

    source.create_registered_model("fraud", description="Fraud")
    for _ in range(3):
        source.create_model_version("fraud", files, run_id=plain.info.run_id)
    source.delete_model_version("fraud", "1")
    source.transition_model_version_stage("fraud", "2", "Staging")
    source.set_registered_model_alias("fraud", "prod", "3")

    source.create_registered_model("empty", tags={"owner": "nobody"})

    source.create_registered_model("bulk")
    for _ in range(BULK_VERSIONS):
        source.create_model_version("bulk", files, run_id=plain.info.run_id)
    source.set_registered_model_alias("bulk", "latest-good", str(BULK_VERSIONS))
    return {"files": files, "logged": logged_uri}


def _import(stack, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "import_registry", *args],
        cwd=ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def _on_a_terminal(stack, *args: str) -> str:
    """What the command writes to its standard error when that is a terminal."""
    import pty

    leader, follower = pty.openpty()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "import_registry", *args],
        cwd=ROOT,
        env=stack.env(),
        stdout=subprocess.DEVNULL,
        stderr=follower,
        start_new_session=True,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=120) == 0, shown
    os.close(leader)
    return shown.decode(errors="replace")


def _rows() -> dict[str, int]:
    """How many rows each table an import writes holds."""
    from registry.models import (
        Activity,
        AuditEntry,
        ImportedObject,
        ModelVersion,
        ModelVersionTag,
        PointerMove,
        RegisteredModel,
        RegisteredModelAlias,
        RegisteredModelTag,
    )

    tables = (
        Activity,
        AuditEntry,
        ImportedObject,
        ModelVersion,
        ModelVersionTag,
        PointerMove,
        RegisteredModel,
        RegisteredModelAlias,
        RegisteredModelTag,
    )
    return {table.__name__: table.objects.count() for table in tables}


def _version(v) -> dict:
    data = {field: getattr(v, field) for field in VERSION_FIELDS}
    data["aliases"] = sorted(data["aliases"] or [])
    data["model_id"] = data["model_id"] or ""
    data["run_link"] = data["run_link"] or ""
    data["description"] = data["description"] or ""
    return data


def _model(m) -> dict:
    data = {field: getattr(m, field) for field in MODEL_FIELDS}
    data["description"] = data["description"] or ""
    data["aliases"] = dict(m.aliases or {})
    data["latest_versions"] = sorted(
        (_version(v) | {"aliases": None} for v in m.latest_versions or []),
        key=lambda v: int(v["version"]),
    )
    return data


def _number(version: dict) -> int:
    return int(version["version"])


def _same(what: str, source, registry) -> None:
    if registry != source:
        pairs = zip(source, registry, strict=False) if isinstance(source, list) else []
        differing = [(s, r) for s, r in pairs if s != r][:2]
        raise AssertionError(f"{what} differs: {differing or (source, registry)}")


def _compare_everything(source: MlflowClient, registry: MlflowClient, names: list[str]) -> None:
    """Every read call of the protocol, on both servers, field by field."""
    _same(
        "search_registered_models",
        [_model(m) for m in source.search_registered_models(max_results=100)],
        [_model(m) for m in registry.search_registered_models(max_results=100)],
    )
    for search in ("name LIKE 'churn%'", "tags.team = 'risk'", "name = 'fraud'"):
        _same(
            f"search_registered_models {search}",
            [_model(m) for m in source.search_registered_models(search)],
            [_model(m) for m in registry.search_registered_models(search)],
        )
    for search in ("tags.n = '3'", "name LIKE 'chu%'", "version_number > 2"):
        _same(
            f"search_model_versions {search}",
            sorted(
                (
                    (v.name, _version(v) | {"aliases": None})
                    for v in source.search_model_versions(search)
                ),
                key=str,
            ),
            sorted(
                (
                    (v.name, _version(v) | {"aliases": None})
                    for v in registry.search_model_versions(search)
                ),
                key=str,
            ),
        )
    for name in names:
        _same(
            name,
            _model(source.get_registered_model(name)),
            _model(registry.get_registered_model(name)),
        )
        versions = source.search_model_versions(f"name='{name}'", max_results=1000)
        # mlflow server answers a search's versions without their aliases; the registry with
        # them (docs/migrating.md): compared through get_model_version below.
        _same(
            f"search_model_versions {name}",
            sorted((_version(v) | {"aliases": None} for v in versions), key=_number),
            sorted(
                (
                    _version(v) | {"aliases": None}
                    for v in registry.search_model_versions(f"name='{name}'")
                ),
                key=_number,
            ),
        )
        for v in versions:
            _same(
                f"{name} v{v.version}",
                _version(source.get_model_version(name, v.version)),
                _version(registry.get_model_version(name, v.version)),
            )
        for stages in (None, ["None"], ["Staging"], ["Production"], ["Archived"]):
            _same(
                f"get_latest_versions {name} {stages}",
                sorted((_version(v) for v in source.get_latest_versions(name, stages)), key=str),
                sorted((_version(v) for v in registry.get_latest_versions(name, stages)), key=str),
            )
        for alias in source.get_registered_model(name).aliases:
            _same(
                f"{name}@{alias}",
                _version(source.get_model_version_by_alias(name, alias)),
                _version(registry.get_model_version_by_alias(name, alias)),
            )


def test_import_an_mlflow_server(clients, source_server, registry_stack, trained, tmp_path):
    from registry.models import Activity, AuditEntry, ModelVersion, RegisteredModel

    source, registry = clients
    model, features = trained
    try:
        seeded = _seed(source, model, tmp_path)
        url = source_server.url

        # A dry run says what it would import and writes nothing.
        before = _rows()
        dry = _import(registry_stack, "--from", url, "--dry-run")
        assert "Dry run: nothing written" in dry.stdout
        assert "models_imported: 5" in dry.stdout
        assert f"versions_imported: {3 + 1 + 2 + BULK_VERSIONS}" in dry.stdout
        assert _rows() == before

        # A run killed half-way through a model's versions, then started again.
        killed = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "manage.py",
                "import_registry",
                "--from",
                url,
                "--models",
                "bulk",
                "--artifacts",
                "reference",
                "--concurrency",
                "1",
            ],
            cwd=ROOT,
            env=registry_stack.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert killed.stdout is not None
        seen = 0
        for line in killed.stdout:
            seen += line.startswith("imported version bulk")
            if seen == 3:
                os.killpg(killed.pid, signal.SIGKILL)
                break
        killed.wait(timeout=30)
        assert killed.returncode == -signal.SIGKILL
        half = ModelVersion.objects.filter(registered_model__name="bulk").count()
        assert 3 <= half < BULK_VERSIONS, half
        resumed = _import(
            registry_stack, "--from", url, "--models", "bul%", "--artifacts", "reference"
        )
        assert f"versions_imported: {BULK_VERSIONS - half}" in resumed.stdout, resumed.stdout
        numbers = list(
            ModelVersion.objects.filter(registered_model__name="bulk")
            .order_by("version")
            .values_list("version", flat=True)
        )
        assert numbers == list(range(1, BULK_VERSIONS + 1))
        # One import entry on each version's trail: none imported twice.
        trail = Activity.objects.filter(model_name="bulk").values_list("version", flat=True)
        assert sorted(trail) == numbers

        # The whole registry, copying the files through the registry's copy task.
        report_path = tmp_path / "report.json"
        _import(
            registry_stack,
            "--from",
            url,
            "--report",
            str(report_path),
            "--reserve",
            "churn=5",
            "--wait",
            "120",
        )
        report = json.loads(report_path.read_text())
        # churn-prod v1 copies churn v3: imported once that is here and READY (its copy is
        # done), which this run may or may not have seen.
        waiting = [(f["name"], f["version"]) for f in report["failed"]]
        assert waiting in ([], [("churn-prod", 1)]), report["failed"]
        assert all("run again" in f["reason"] for f in report["failed"])
        assert report["conflicts"] == []
        assert report["counts"]["versions_imported"] == 6 - len(waiting)
        assert report["counts"]["versions_unchanged"] == BULK_VERSIONS
        assert report["counts"]["reserved_numbers_updated"] == 1
        # --wait: each copy the worker made, with its size.
        copies = [i for i in report["imported"] if i["kind"] == "copy"]
        assert len(copies) == report["counts"]["versions_imported"]
        assert all(int(i["reason"].split()[0]) > 1000 for i in copies), copies

        def copied() -> bool:
            return not ModelVersion.objects.exclude(status="READY").exists()

        wait_for(copied, 120, "the copies of the imported versions")
        if waiting:
            _import(registry_stack, "--from", url, "--report", str(report_path), "--wait", "60")
            report = json.loads(report_path.read_text())
            assert [(i["kind"], i["name"], i["version"]) for i in report["imported"]] == [
                ("version", "churn-prod", 1),
                ("copy", "churn-prod", 1),
            ], report
            wait_for(copied, 120, "the copy of churn-prod v1")
        copy = ModelVersion.objects.get(registered_model__name="churn-prod", version=1)
        assert copy.copied_from == ModelVersion.objects.get(
            registered_model__name="churn", version=3
        )
        assert copy.artifact_digest == copy.copied_from.artifact_digest
        names = ["bulk", "churn", "churn-prod", "empty", "fraud"]
        _compare_everything(source, registry, names)
        # Gaps stay gaps: the deleted versions are not on either server.
        for name, number in (("churn", "2"), ("churn", "5"), ("fraud", "1")):
            for client in (source, registry):
                with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST|not found"):
                    client.get_model_version(name, number)
        # The import is on the trail and in the audit log.
        imported = Activity.objects.get(model_name="churn", version=3)
        assert (imported.activity_type, imported.to_stage) == ("SYSTEM_TRANSITION", "Production")
        assert url in imported.system_comment
        assert AuditEntry.objects.filter(action="IMPORTED", model_name="churn").exists()
        assert AuditEntry.objects.filter(action="IMPORT_RUN").count() == 2 + len(waiting)

        # The imported versions load through the registry, from its own copy.
        mlflow.set_registry_uri(registry_stack.url)
        for uri in (
            "models:/churn/3",
            "models:/churn@challenger",
            "models:/fraud/2",
            "models:/churn-prod/1",
        ):
            loaded = mlflow.pyfunc.load_model(uri)
            assert (loaded.predict(features) == model.predict(features)).all()
        mlflow.set_registry_uri(url)

        # A second run imports nothing.
        before = _rows()
        again = _import(registry_stack, "--from", url, "--report", str(report_path))
        report = json.loads(again_report := report_path.read_text())
        assert report["imported"] == [], again_report
        assert report["failed"] == [], again_report
        assert report["conflicts"] == [], again.stdout
        after = _rows()
        assert after.pop("AuditEntry") == before.pop("AuditEntry") + 1  # the run itself
        assert after == before

        # The next number is the one the source gives: v5, deleted there, is never reused.
        files = seeded["files"]
        assert source.create_model_version("churn", files).version == "6"
        assert registry.create_model_version("churn", files).version == "6"

        # The source goes on during the switch-over; here someone edits a model.
        source.create_model_version("fraud", source.get_model_version("fraud", "2").source)
        source.update_model_version("churn", "3", description="churn 3, retrained")
        source.set_registered_model_alias("churn", "champion", "4")
        source.update_registered_model("churn", description="Churn scoring v2")
        registry.update_registered_model("churn", description="Churn scoring, edited here")
        third = _import(registry_stack, "--from", url, "--report", str(report_path))
        report = json.loads(report_path.read_text())
        assert {(i["kind"], i["name"], i["version"], i["result"]) for i in report["imported"]} == {
            ("version", "fraud", 4, "imported"),
            ("version", "churn", 3, "updated"),
            ("aliases", "churn", None, "updated"),
        }, third.stdout
        assert [(c["kind"], c["name"]) for c in report["conflicts"]] == [("model", "churn")]
        assert registry.get_registered_model("churn").description == "Churn scoring, edited here"
        assert registry.get_model_version("churn", "3").description == "churn 3, retrained"
        assert registry.get_model_version_by_alias("churn", "champion").version == "4"
        assert RegisteredModel.objects.get(name="fraud").last_version_number == 4
    except BaseException:
        print(registry_stack.logs())  # noqa: T201 - shown by pytest on failure
        print(source_server.log())  # noqa: T201
        raise


def test_import_from_the_api(clients, source_server, registry_stack, admin, user, tmp_path):
    """An admin starts an import over HTTP; the worker runs it; its progress and report are
    read back. Anyone else is refused."""
    import requests

    from registry.models import ImportRun, ModelVersion

    source, registry = clients
    source.create_registered_model("churn", tags={"team": "risk"})
    files = f"s3://{SOURCE_BUCKET}/mlflow/none"  # referenced, never read
    for _ in range(3):
        source.create_model_version("churn", files)
    source.delete_model_version("churn", "2")
    source.set_registered_model_alias("churn", "champion", "3")
    start = f"{registry_stack.url}/api/2.0/registry/imports/start"
    body = {"source_url": source_server.url, "artifacts": "reference", "concurrency": 2}
    try:
        refused = requests.post(start, json=body, auth=("alice", PASSWORD), timeout=30)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error_code"] == "PERMISSION_DENIED"
        bad = requests.post(start, json=body | {"artifacts": "maybe"}, auth=ADMIN, timeout=30)
        assert bad.status_code == 400, bad.text
        assert not ImportRun.objects.exists()

        started = requests.post(start, json=body | {"token": "not-needed"}, auth=ADMIN, timeout=30)
        assert started.status_code == 200, started.text
        run_id = started.json()["import_run"]["id"]

        def state() -> dict:
            answer = requests.get(
                f"{registry_stack.url}/api/2.0/registry/imports/get",
                params={"id": run_id},
                auth=ADMIN,
                timeout=30,
            )
            assert answer.status_code == 200, answer.text
            return answer.json()["import_run"]

        wait_for(lambda: state()["status"] in ("SUCCEEDED", "FAILED"), 120, "the import run")
        run = state()
        assert run["status"] == "SUCCEEDED", run
        assert run["progress"]["models_total"] == run["progress"]["models_done"] == 1
        assert run["progress"]["versions_total"] == run["progress"]["versions_done"] == 2
        assert run["report"]["counts"] == {
            "aliases_imported": 1,
            "models_imported": 1,
            "versions_imported": 2,
        }
        assert run["report"]["failed"] == []
        assert run["progress"]["counts"] == run["report"]["counts"]
        assert sorted(
            ModelVersion.objects.filter(registered_model__name="churn").values_list(
                "version", flat=True
            )
        ) == [1, 3]
        assert registry.get_model_version_by_alias("churn", "champion").version == "3"
        # The credentials are not kept once the run ends.
        assert ImportRun.objects.get(code=run_id).token == ""

        # On a terminal, the command shows progress bars (models, versions, rate, time left).
        shown = _on_a_terminal(
            registry_stack, "--from", source_server.url, "--dry-run", "--concurrency", "1"
        )
        assert "models  : 100%" in shown, shown
        assert "versions: 100%" in shown, shown
        assert "version/s]" in shown, shown
    except BaseException:
        print(registry_stack.logs())  # noqa: T201 - shown by pytest on failure
        raise
