"""Every read endpoint runs an exact number of statements whatever the data size.

Each test measures one endpoint with 2 items, grows the data to 30 items and measures again:
the count must not grow (an N+1 adds at least 28 queries), stays under a small cap, and is
the number pinned for that endpoint (besides the statement timeout, set once per connection in
a server), so a change that adds a statement to a read fails here.
The reader is a model owner without registry-admin rights, so permission lookups are real.

The hot reads are pinned to their exact count, signed with a password and with an API token:
one statement for a token call of a single-object read, which checks the token itself
(docs/decisions/0019-hot-reads-in-one-statement.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.models import PermissionLevel
from registry import services
from registry.models import ImportRun, ModelVersion, RegisteredModel
from tests.conftest import PASSWORD, basic_auth
from webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookFlavor
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db

SMALL, LARGE = 2, 30
# Authentication, permission checks, the rows and their prefetched relations.
MAX_QUERIES = 12


def assert_flat(
    grow: Callable[[int], None],
    read: Callable[[], Any],
    django_assert_max_num_queries,
    exactly: int | None = None,
) -> None:
    """``grow(n)`` brings the data to ``n`` items; ``read()`` calls the endpoint, which runs
    ``exactly`` statements each time when given."""
    counts, pinned = [], []
    for size in (SMALL, LARGE):
        grow(size)
        with django_assert_max_num_queries(MAX_QUERIES), CaptureQueriesContext(connection) as ctx:
            response = read()
        assert response.status_code == 200, response.content
        counts.append(len(ctx.captured_queries))
        # The statement timeout is set once per connection in a server; inside the test's
        # transaction it is set again on each request (config/statement_timeout.py).
        pinned.append([q["sql"] for q in ctx.captured_queries if _TIMEOUT not in q["sql"]])
    assert counts[1] <= counts[0], f"queries grew with the data: {counts}"
    if exactly is not None:
        assert [len(statements) for statements in pinned] == [exactly, exactly], pinned[-1]


_TIMEOUT = "set_config('statement_timeout'"


@pytest.fixture
def token_api(user) -> APIClient:
    """Signs every request in as ``user`` with an API token (``Authorization: Bearer``), whose
    last use is recorded already (that write happens once a minute per token at most)."""
    secret = accounts_services.api_token_create(actor=None, user=user, name="reads").secret
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    response = client.get("/api/2.0/registry/tokens/list")
    assert response.status_code == 200
    return client


@pytest.fixture(params=["password", "token"])
def signed(request, api, token_api) -> tuple[str, APIClient]:
    return request.param, (token_api if request.param == "token" else api)


# Statements per call of the hot reads: (password, token).
HOT = {
    "model-versions/get": (2, 1),
    "registered-models/alias": (2, 1),
    "registered-models/get": (2, 1),
    "databricks/registered-models/get": (2, 1),
    "registered-models/get-latest-versions": (2, 1),
    "model-versions/search": (2, 2),
    "registered-models/search": (2, 2),
}


def hot(signed: tuple[str, APIClient], path: str) -> int:
    return HOT[path][0 if signed[0] == "password" else 1]


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )


@pytest.fixture
def admin_api(admin) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(admin.username))
    return client


@pytest.fixture
def model(user) -> RegisteredModel:
    return services.registered_model_create(actor=user, name="m", tags=[{"key": "t", "value": "0"}])


class Versions:
    """Versions of model ``m`` with a tag and an alias each; version 1 moves through stages."""

    def __init__(self, user: Any) -> None:
        self.user = user
        self.count = 0

    def __call__(self, size: int) -> None:
        while self.count < size:
            self.count += 1
            version = str(self.count)
            services.model_version_create(
                actor=self.user,
                name="m",
                source=f"s3://b/m/{version}",
                tags=[{"key": "n", "value": version}],
            )
            services.registered_model_alias_set(
                actor=self.user, name="m", alias=f"a{version}", version=version
            )
            services.registered_model_tag_set(
                actor=self.user, name="m", key=f"t{version}", value=version
            )


@pytest.fixture
def versions(user, model) -> Versions:
    return Versions(user)


def test_registered_model_get(signed, versions, django_assert_max_num_queries):
    assert_flat(
        versions,
        lambda: signed[1].get("/api/2.0/mlflow/registered-models/get", {"name": "m"}),
        django_assert_max_num_queries,
        hot(signed, "registered-models/get"),
    )


def test_databricks_registered_model_get(signed, versions, django_assert_max_num_queries):
    assert_flat(
        versions,
        lambda: signed[1].get("/api/2.0/mlflow/databricks/registered-models/get", {"name": "m"}),
        django_assert_max_num_queries,
        hot(signed, "databricks/registered-models/get"),
    )


def test_registered_model_search(user, signed, django_assert_max_num_queries):
    made = []

    def grow(size: int) -> None:
        while len(made) < size:
            name = f"m{len(made):02d}"
            services.registered_model_create(
                actor=user, name=name, tags=[{"key": "k", "value": "v"}]
            )
            services.model_version_create(actor=user, name=name, source=f"s3://b/{name}/1")
            made.append(name)

    assert_flat(
        grow,
        lambda: signed[1].get("/api/2.0/mlflow/registered-models/search", {"max_results": 100}),
        django_assert_max_num_queries,
        hot(signed, "registered-models/search"),
    )


def test_get_latest_versions(user, signed, versions, django_assert_max_num_queries):
    def grow(size: int) -> None:
        versions(size)
        for stage, number in (("Staging", size - 1), ("Production", size)):
            services.model_version_stage_transition(
                actor=user, name="m", version=str(number), stage=stage
            )

    assert_flat(
        grow,
        lambda: signed[1].post(
            "/api/2.0/mlflow/registered-models/get-latest-versions", {"name": "m"}, format="json"
        ),
        django_assert_max_num_queries,
        hot(signed, "registered-models/get-latest-versions"),
    )


@pytest.mark.parametrize("alias", ["a1", "latest"])
def test_get_by_alias(signed, versions, alias, django_assert_max_num_queries):
    assert_flat(
        versions,
        lambda: signed[1].get(
            "/api/2.0/mlflow/registered-models/alias", {"name": "m", "alias": alias}
        ),
        django_assert_max_num_queries,
        hot(signed, "registered-models/alias"),
    )


# Reads of a version that are not hot: the user (or token), the version with its model, its
# tags and aliases (what the answer is computed from), and the manifest's row where it has one.
NOT_HOT = {
    "model-versions/get-download-uri": 4,
    "/api/2.0/registry/model-versions/manifest": 3,
}


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/model-versions/get",
        "/api/2.0/mlflow/model-versions/get-download-uri",
        "/api/2.0/registry/model-versions/manifest",
    ],
)
def test_model_version_reads(signed, versions, path, django_assert_max_num_queries):
    short = path.removeprefix("/api/2.0/mlflow/")
    assert_flat(
        versions,
        lambda: signed[1].get(path, {"name": "m", "version": "1"}),
        django_assert_max_num_queries,
        hot(signed, short) if short in HOT else NOT_HOT[short],
    )


def test_model_version_search(signed, versions, django_assert_max_num_queries):
    assert_flat(
        versions,
        lambda: signed[1].get("/api/2.0/mlflow/model-versions/search", {"filter": "name = 'm'"}),
        django_assert_max_num_queries,
        hot(signed, "model-versions/search"),
    )


@pytest.mark.parametrize(
    "path",
    [
        "/api/2.0/mlflow/model-versions/get-activities",
        "/api/2.0/registry/model-versions/activities",
    ],
)
def test_activities(user, api, model, path, django_assert_max_num_queries):
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    done = [0]

    def grow(size: int) -> None:
        stages = ["Staging", "Production", "Archived", "None"]
        while done[0] < size:
            services.model_version_stage_transition(
                actor=user, name="m", version="1", stage=stages[done[0] % 4]
            )
            services.comment_create(actor=user, name="m", version="1", comment=f"c{done[0]}")
            done[0] += 1

    assert_flat(
        grow,
        lambda: api.get(path, {"name": "m", "version": "1"}),
        django_assert_max_num_queries,
        exactly=3,
    )


def test_transition_requests_list(
    user, api, model, django_user_model, django_assert_max_num_queries
):
    """Up to three open requests per version (one per target stage), each with approvals."""
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    services.stage_policy_set(actor=user, name="m", stage="Production", required_approvals=10)
    services.stage_policy_set(actor=user, name="m", stage="Archived", required_approvals=10)
    approvers = []
    for index in range(3):
        approver = django_user_model.objects.create_user(username=f"u{index}", password=PASSWORD)
        accounts_services.registered_model_permissions_update(
            actor=user,
            registered_model=model,
            access_control_list=[
                {"user_name": approver.username, "permission_level": PermissionLevel.CAN_MANAGE}
            ],
            replace=False,
        )
        approvers.append(approver)

    def grow(size: int) -> None:
        stages = ["Production", "Archived"] if size == SMALL else ["Staging"]
        for stage in stages:
            services.transition_request_create(actor=user, name="m", version="1", stage=stage)
            if stage != "Staging":
                for approver in approvers:
                    services.transition_request_approve(
                        actor=approver,
                        name="m",
                        version="1",
                        stage=stage,
                        archive_existing_versions=False,
                    )

    assert_flat(
        grow,
        lambda: api.get("/api/2.0/mlflow/transition-requests/list", {"name": "m", "version": "1"}),
        django_assert_max_num_queries,
        exactly=8,
    )


@pytest.mark.parametrize("name", ["m", ""])
def test_stage_policies_list(user, api, model, name, django_assert_max_num_queries):
    def grow(size: int) -> None:
        if size == LARGE:
            for stage in ("Staging", "Production"):
                services.stage_policy_set(actor=user, name="m", stage=stage, required_approvals=2)

    assert_flat(
        grow,
        lambda: api.get("/api/2.0/registry/stage-policies/list", {"name": name}),
        django_assert_max_num_queries,
        exactly=2 if not name else 3,
    )


@pytest.mark.parametrize("suffix", ["", "/permissionLevels"])
def test_permissions_get(
    user, api, model, django_user_model, suffix, django_assert_max_num_queries
):
    granted = []

    def grow(size: int) -> None:
        while len(granted) < size:
            other = django_user_model.objects.create_user(username=f"g{len(granted)}")
            accounts_services.registered_model_permissions_update(
                actor=user,
                registered_model=model,
                access_control_list=[
                    {"user_name": other.username, "permission_level": PermissionLevel.CAN_READ}
                ],
                replace=False,
            )
            granted.append(other)

    assert_flat(
        grow,
        lambda: api.get(f"/api/2.0/permissions/registered-models/{model.code.hex}{suffix}"),
        django_assert_max_num_queries,
        exactly=2 if suffix else 4,
    )


def test_tokens_list(user, api, django_assert_max_num_queries):
    made = [0]

    def grow(size: int) -> None:
        while made[0] < size:
            accounts_services.api_token_create(actor=None, user=user, name=f"t{made[0]}")
            made[0] += 1

    assert_flat(
        grow,
        lambda: api.get("/api/2.0/registry/tokens/list"),
        django_assert_max_num_queries,
        exactly=2,
    )


class Hooks:
    """``size`` hooks of ``flavor``, each subscribed to two events."""

    def __init__(self, admin: Any, flavor: str) -> None:
        self.admin, self.flavor, self.made = admin, flavor, []

    def __call__(self, size: int) -> None:
        while len(self.made) < size:
            if self.flavor == WebhookFlavor.DATABRICKS:
                events: list[Any] = ["MODEL_VERSION_CREATED", "MODEL_VERSION_TAG_SET"]
                extra = {"model_name": "m"}
            else:
                events = [
                    {"entity": "model_version", "action": "created"},
                    {"entity": "model_version_tag", "action": "set"},
                ]
                extra = {"name": f"h{len(self.made)}"}
            self.made.append(
                webhook_create(
                    actor=self.admin,
                    flavor=self.flavor,
                    events=events,
                    url=f"https://example.com/{len(self.made)}",
                    secret="k",
                    **extra,
                )
            )


def test_registry_webhooks_list(admin, api, model, django_assert_max_num_queries):
    assert_flat(
        Hooks(admin, WebhookFlavor.DATABRICKS),
        lambda: api.get("/api/2.0/mlflow/registry-webhooks/list", {"model_name": "m"}),
        django_assert_max_num_queries,
        exactly=3,
    )


def test_mlflow_webhooks_list_and_get(admin, admin_api, django_assert_max_num_queries):
    hooks = Hooks(admin, WebhookFlavor.MLFLOW)
    assert_flat(
        hooks,
        lambda: admin_api.get("/api/2.0/mlflow/webhooks"),
        django_assert_max_num_queries,
        exactly=3,
    )
    assert_flat(
        hooks,
        lambda: admin_api.get(f"/api/2.0/mlflow/webhooks/{hooks.made[0].code.hex}"),
        django_assert_max_num_queries,
        exactly=3,
    )


def test_delivery_log_list_and_get(admin, user, api, model, django_assert_max_num_queries):
    hooks = Hooks(admin, WebhookFlavor.DATABRICKS)
    hooks(1)
    hook = hooks.made[0]
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    tags = [0]

    def grow(size: int) -> None:
        while tags[0] < size:
            services.model_version_tag_set(
                actor=user, name="m", version="1", key="k", value=str(tags[0])
            )
            tags[0] += 1
        first = WebhookDelivery.objects.filter(webhook=hook).order_by("id").first()
        for number in range(first.attempts.count() + 1, size + 1):
            WebhookDeliveryAttempt.objects.create(delivery=first, number=number, outcome="RETRY")

    base = f"/api/2.0/registry/webhooks/{hook.code.hex}/deliveries"
    assert_flat(grow, lambda: api.get(base), django_assert_max_num_queries, exactly=4)

    first = WebhookDelivery.objects.filter(webhook=hook).order_by("id").first()
    assert_flat(
        grow, lambda: api.get(f"{base}/{first.code}"), django_assert_max_num_queries, exactly=5
    )


def test_artifact_list(api, model, versions, django_assert_max_num_queries):
    folder = f"models/{model.code}/1"
    assert_flat(
        versions,
        lambda: api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": folder}),
        django_assert_max_num_queries,
        exactly=2,
    )


@pytest.mark.real_artifact_copy
def test_artifact_download(settings, user, api, model, tmp_path, django_assert_max_num_queries):
    from registry.artifacts.services import model_version_artifacts_copy

    (tmp_path / "store").mkdir()
    source = tmp_path / "sources" / "m"
    source.mkdir(parents=True)
    (source / "MLmodel").write_text("flavors: {}\n")
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    settings.ARTIFACTS = {**settings.ARTIFACTS, "FILE_SOURCE_ROOTS": [str(tmp_path / "sources")]}
    made = []

    def grow(size: int) -> None:
        while len(made) < size:
            model_version = services.model_version_create(
                actor=user, name="m", source=source.as_uri()
            )
            model_version_artifacts_copy(model_version_id=model_version.pk)
            made.append(model_version)

    def download() -> Any:
        response = api.get(f"/api/2.0/mlflow-artifacts/artifacts/models/{model.code}/1/MLmodel")
        assert b"".join(response.streaming_content) == b"flavors: {}\n"
        return response

    assert_flat(grow, download, django_assert_max_num_queries, exactly=2)


# --- Governed aliases and provenance ----------------------------------------------------------

REGISTRY_API = "/api/2.0/registry/"


def test_alias_policies_list(user, api, model, django_assert_max_num_queries):
    made = [0]

    def grow(size: int) -> None:
        while made[0] < size:
            made[0] += 1
            services.alias_policy_set(
                actor=user, name="m", alias=f"p{made[0]}", protected=True, required_approvals=2
            )

    assert_flat(
        grow,
        lambda: api.get(REGISTRY_API + "alias-policies/list", {"name": "m"}),
        django_assert_max_num_queries,
        exactly=PINNED_GOVERNANCE["alias-policies/list"],
    )


def test_alias_requests_list(user, api, versions, django_assert_max_num_queries):
    services.alias_policy_set(
        actor=user, name="m", alias="champion", protected=True, required_approvals=3
    )
    asked = [0]

    def grow(size: int) -> None:
        versions(size)
        while asked[0] < size:
            asked[0] += 1
            services.alias_request_create(
                actor=user, name="m", alias="champion", version=str(asked[0])
            )

    assert_flat(
        grow,
        lambda: api.get(REGISTRY_API + "alias-requests/list", {"name": "m"}),
        django_assert_max_num_queries,
        exactly=PINNED_GOVERNANCE["alias-requests/list"],
    )


def test_alias_history(user, api, versions, django_assert_max_num_queries):
    moved = [0]

    def grow(size: int) -> None:
        versions(size)
        while moved[0] < size:
            moved[0] += 1
            services.registered_model_alias_set(
                actor=user, name="m", alias="champion", version=str(moved[0])
            )

    assert_flat(
        grow,
        lambda: api.get(REGISTRY_API + "aliases/history", {"name": "m", "alias": "champion"}),
        django_assert_max_num_queries,
        exactly=PINNED_GOVERNANCE["aliases/history"],
    )


def test_registered_model_as_of(api, versions, django_assert_max_num_queries):
    assert_flat(
        versions,
        lambda: api.get(
            REGISTRY_API + "registered-models/as-of",
            # 2100-01-01: every version in stage None so far.
            {"name": "m", "stage": "None", "timestamp": 4_102_444_800_000},
        ),
        django_assert_max_num_queries,
        exactly=PINNED_GOVERNANCE["registered-models/as-of"],
    )


def test_promotion_records(user, api, model, signing, django_assert_max_num_queries):
    """Every move of a version with a digest gets a signed record (``signing``: the registry
    signs, tests/registry/conftest.py)."""
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    ModelVersion.objects.update(artifact_digest="sha256:" + "ab" * 32)
    moves = [0]

    def grow(size: int) -> None:
        stages = ["Staging", "Production", "Archived", "None"]
        while moves[0] < size:
            services.model_version_stage_transition(
                actor=user, name="m", version="1", stage=stages[moves[0] % 4]
            )
            moves[0] += 1

    assert_flat(
        grow,
        lambda: api.get(
            REGISTRY_API + "model-versions/promotion-records", {"name": "m", "version": "1"}
        ),
        django_assert_max_num_queries,
        exactly=PINNED_GOVERNANCE["model-versions/promotion-records"],
    )
    listed = api.get(
        REGISTRY_API + "model-versions/promotion-records", {"name": "m", "version": "1"}
    ).json()
    assert len(listed["records"]) == LARGE
    first = listed["records"][0]["id"]
    assert_flat(
        lambda size: None,
        lambda: api.get(REGISTRY_API + "promotion-records/get", {"id": first}),
        django_assert_max_num_queries,
        exactly=PINNED_GOVERNANCE["promotion-records/get"],
    )


PINNED_GOVERNANCE = {
    "alias-policies/list": 4,
    "alias-requests/list": 7,
    "aliases/history": 3,
    "registered-models/as-of": 4,
    "model-versions/promotion-records": 3,
    "promotion-records/get": 3,
}


def test_import_get(admin, admin_api, django_assert_max_num_queries):
    """An import's progress and report: one row, however long its report."""
    run = ImportRun.objects.create(source_url="http://127.0.0.1:5000", status="SUCCEEDED")

    def grow(size: int) -> None:
        run.report = {"models": [{"name": f"m{n}", "versions": n} for n in range(size)]}
        run.save(update_fields=["report"])

    assert_flat(
        grow,
        lambda: admin_api.get(REGISTRY_API + "imports/get", {"id": str(run.code)}),
        django_assert_max_num_queries,
        exactly=2,
    )


def test_signing_keys(signing, django_assert_max_num_queries):
    """The public keys, to anyone: no user to read, no statement at all."""
    assert_flat(
        lambda size: None,
        lambda: APIClient().get(REGISTRY_API + "signing-keys"),
        django_assert_max_num_queries,
        exactly=0,
    )
