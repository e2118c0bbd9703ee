"""Each page of the UI costs a fixed number of queries, however many rows it shows: a page
reads the actor's level and the policies in force once and hands them to every row. Every GET
page of ui/urls.py is here (the version's timeline also in test_timeline.py), at two sizes of
the data it shows, for each kind of viewer whose page differs; the navigation's count of
requests waiting for the viewer is on every page, so the error pages grow those too."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import services as account_services
from accounts.models import PermissionLevel, RegisteredModelGrant
from registry import services
from tests.ui.conftest import MODEL
from webhooks.models import (
    AttemptOutcome,
    WebhookDelivery,
    WebhookDeliveryAttempt,
    WebhookFlavor,
)
from webhooks.services import management as webhook_services

pytestmark = pytest.mark.django_db

numbers = itertools.count(1)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _queries(client: Client, url: str, status: int = 200) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == status, response.content[:500]
    if status == 200:
        # The lazy navigation count is read while rendering: a page that never rendered it
        # would hide its queries.
        assert response.content
    return len(captured.captured_queries)


def _same_count(
    client: Client,
    url: str,
    add_rows: Callable[[int], None],
    few: int = 2,
    status: int = 200,
) -> None:
    """The page's queries with a few rows and with ten are as many."""
    add_rows(few)
    client.get(url)  # warm up: the session, content types
    with_few = _queries(client, url, status)
    add_rows(10 - few)
    with_many = _queries(client, url, status)
    assert with_many == with_few, f"{with_few} queries with {few} rows, {with_many} with 10"


def _version(story) -> int:
    return services.model_version_create(
        actor=story.owner, name=MODEL, source=f"s3://models/fraud/{next(numbers)}"
    ).version


def _hook(story, events: tuple[str, ...] = ("MODEL_VERSION_TAG_SET",)):
    return webhook_services.webhook_create(
        actor=story.owner,
        flavor=WebhookFlavor.DATABRICKS,
        events=list(events),
        url=f"https://hooks.example.com/{next(numbers)}",
        model_name=MODEL,
    )


def test_model_list(story):
    def add_models(count: int) -> None:
        for _ in range(count):
            name = f"model-{next(numbers)}"
            services.registered_model_create(
                actor=story.owner, name=name, tags=[{"key": "team", "value": "risk"}]
            )
            for _ in range(2):
                services.model_version_create(actor=story.owner, name=name, source="s3://m/1")
            services.model_version_stage_transition(
                actor=story.owner, name=name, version=1, stage="Staging"
            )
            services.registered_model_alias_set(
                actor=story.owner, name=name, alias="champion", version="2"
            )

    _same_count(_client(story.carol), reverse("ui:model-list"), add_models)
    _same_count(_client(story.carol), reverse("ui:model-list") + "?q=model&tag=team", add_models)
    _same_count(_client(story.carol), reverse("ui:model-list") + "?sort=-updated", add_models)


def test_model_detail_for_a_manager(story, django_user_model):
    def add_versions_hooks_and_grants(count: int) -> None:
        for _ in range(count):
            _version(story)
            _hook(story)
            reader = django_user_model.objects.create_user(username=f"reader-{next(numbers)}")
            account_services.registered_model_permissions_update(
                actor=story.owner,
                registered_model=story.model,
                access_control_list=[
                    {"user_name": reader.username, "permission_level": "CAN_READ"}
                ],
                replace=False,
            )

    url = reverse("ui:model-detail", kwargs={"name": MODEL})
    _same_count(_client(story.owner), url, add_versions_hooks_and_grants)


def test_version_detail_with_requests_and_comments(story):
    """Open requests (one per target stage at most) and comments, seen by a manager who did not
    write them, so every row's actions depend on the manager's level and the policies."""
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Staging", required_approvals=2)
    url = reverse("ui:version-detail", kwargs={"name": MODEL, "version": 2})
    client = _client(story.owner)

    def add_comments(count: int) -> None:
        for _ in range(count):
            services.comment_create(actor=story.alice, name=MODEL, version=2, comment="looks good")

    _same_count(client, url, add_comments)

    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Staging")
    one_request = _queries(client, url)
    services.transition_request_create(actor=story.bob, name=MODEL, version=2, stage="Production")
    services.transition_request_create(actor=story.carol, name=MODEL, version=2, stage="Archived")
    assert _queries(client, url) == one_request


def test_waiting_for_me(story):
    def add_requests(count: int) -> None:
        for _ in range(count):
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=_version(story), stage="Staging"
            )

    _same_count(_client(story.owner), reverse("ui:waiting"), add_requests)


def test_waiting_for_me_across_models(story):
    """The levels and the policies of the models are read together, not one model at a time."""

    def add_models_with_requests(count: int) -> None:
        for _ in range(count):
            name = f"model-{next(numbers)}"
            registered_model = services.registered_model_create(actor=story.owner, name=name)
            RegisteredModelGrant.objects.create(
                registered_model=registered_model,
                user=story.alice,
                level=PermissionLevel.CAN_READ,
            )
            services.model_version_create(actor=story.owner, name=name, source="s3://m/1")
            services.transition_request_create(
                actor=story.alice, name=name, version=1, stage="Staging"
            )

    _same_count(_client(story.owner), reverse("ui:waiting"), add_models_with_requests)


def test_waiting_for_me_with_alias_requests_across_models(story):
    """Alias requests on many models, under their policies: read together, as above."""

    def add_models_with_alias_requests(count: int) -> None:
        for _ in range(count):
            name = f"model-{next(numbers)}"
            services.registered_model_create(actor=story.owner, name=name)
            services.model_version_create(actor=story.owner, name=name, source="s3://m/1")
            services.alias_policy_set(
                actor=story.owner, name=name, alias="champion", protected=True
            )
            services.alias_request_create(actor=story.owner, name=name, alias="champion", version=1)

    _same_count(_client(story.owner), reverse("ui:waiting"), add_models_with_alias_requests)


def test_webhooks_list(story):
    def add_hooks(count: int) -> None:
        for _ in range(count):
            _hook(story, events=("MODEL_VERSION_TAG_SET", "COMMENT_CREATED"))

    _same_count(_client(story.owner), reverse("ui:webhook-list"), add_hooks)


def test_webhook_detail(story):
    hook = _hook(story)

    def add_deliveries(count: int) -> None:
        for _ in range(count):
            services.model_version_tag_set(
                actor=story.owner, name=MODEL, version=1, key="k", value=str(next(numbers))
            )
        for delivery in WebhookDelivery.objects.filter(webhook=hook, attempts__isnull=True):
            WebhookDeliveryAttempt.objects.create(
                delivery=delivery, number=1, outcome=AttemptOutcome.RETRY, response_status=500
            )

    url = reverse("ui:webhook-detail", kwargs={"code": hook.code})
    _same_count(_client(story.owner), url, add_deliveries)
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 10


def test_tokens(story):
    def add_tokens(count: int) -> None:
        for _ in range(count):
            account_services.api_token_create(
                actor=story.alice, name=f"token-{next(numbers)}", expires_in_days=30
            )

    _same_count(_client(story.alice), reverse("ui:tokens"), add_tokens)


def test_model_detail_with_tags_and_aliases_for_a_manager(story):
    """The editing forms: each tag has its delete button, each alias its delete and the
    protection that decides it, each stage its prefilled policy form, and the deletion guard
    (Production versions, protected aliases) is read for all versions at once."""

    def add_tags_and_aliases(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            services.registered_model_tag_set(actor=story.owner, name=MODEL, key=f"k{n}", value="v")
            version = _version(story)
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{n}", version=version
            )
            services.alias_policy_set(actor=story.owner, name=MODEL, alias=f"a{n}", protected=True)

    url = reverse("ui:model-detail", kwargs={"name": MODEL})
    _same_count(_client(story.owner), url, add_tags_and_aliases)


def test_version_detail_with_tags_for_a_manager(story):
    """The version's edit card: a delete button per tag, the gate-tag rule, the deletion guard."""
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_version_tags={"validation_status": "passed"},
    )

    def add_tags_and_aliases(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            services.model_version_tag_set(
                actor=story.owner, name=MODEL, version=2, key=f"k{n}", value="v"
            )
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{n}", version=2
            )
            services.alias_policy_set(actor=story.owner, name=MODEL, alias=f"a{n}", protected=True)

    url = reverse("ui:version-detail", kwargs={"name": MODEL, "version": 2})
    _same_count(_client(story.owner), url, add_tags_and_aliases)


def _waiting_for_owner(story) -> Callable[[int], None]:
    """Requests the owner may decide: the navigation's count on every page grows with them."""

    def add(count: int) -> None:
        for _ in range(count):
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=_version(story), stage="Staging"
            )

    return add


def test_home(story):
    """The home page sends to the models list; it reads nothing of the models."""
    _same_count(_client(story.owner), reverse("ui:home"), _waiting_for_owner(story), status=302)


def test_login_page(story, django_user_model):
    def add_models_and_users(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            services.registered_model_create(actor=story.owner, name=f"model-{n}")
            django_user_model.objects.create_user(username=f"user-{n}")

    _same_count(Client(), reverse("ui:login"), add_models_and_users)


def test_model_detail_for_a_reader(story):
    """A reader sees the versions, tags, aliases, policies and open requests without the
    editing forms: the rows' actions are still decided once for the page."""

    def add_rows(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            version = _version(story)
            services.registered_model_tag_set(actor=story.owner, name=MODEL, key=f"k{n}", value="v")
            services.model_version_tag_set(
                actor=story.owner, name=MODEL, version=version, key="validation_status", value="ok"
            )
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{n}", version=version
            )
            services.alias_policy_set(actor=story.owner, name=MODEL, alias=f"a{n}", protected=True)
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=version, stage="Staging"
            )

    url = reverse("ui:model-detail", kwargs={"name": MODEL})
    _same_count(_client(story.carol), url, add_rows)


def test_version_detail_for_a_reader(story):
    """Tags, aliases, open requests with approvals, alias requests and comments, seen by a
    reader (no editing card, no decision buttons)."""
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Staging", required_approvals=3)
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=3
    )
    url = reverse("ui:version-detail", kwargs={"name": MODEL, "version": 2})
    stages = iter(["Staging", "Production"])

    def add_rows(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            services.model_version_tag_set(
                actor=story.owner, name=MODEL, version=2, key=f"k{n}", value="v"
            )
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{n}", version=2
            )
            services.comment_create(actor=story.alice, name=MODEL, version=2, comment=f"c{n}")
            services.alias_policy_set(actor=story.owner, name=MODEL, alias=f"p{n}", protected=True)
            services.alias_request_create(actor=story.alice, name=MODEL, alias=f"p{n}", version=2)
        stage = next(stages, None)
        if stage is not None:
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=2, stage=stage
            )
            services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage=stage)

    _same_count(_client(story.carol), url, add_rows)


def test_my_requests(story):
    """The requester's page: transition and alias requests, open ones with their approvals and
    what the move still needs."""
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Staging", required_approvals=2)

    def add_requests(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            version = _version(story)
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=version, stage="Staging"
            )
            services.transition_request_approve(
                actor=story.bob, name=MODEL, version=version, stage="Staging"
            )
            services.alias_policy_set(actor=story.owner, name=MODEL, alias=f"p{n}", protected=True)
            services.alias_request_create(
                actor=story.alice, name=MODEL, alias=f"p{n}", version=version
            )

    _same_count(_client(story.alice), reverse("ui:my-requests"), add_requests)


def test_webhook_new(story):
    def add_hooks_and_waiting(count: int) -> None:
        for _ in range(count):
            _hook(story)
        _waiting_for_owner(story)(count)

    _same_count(_client(story.owner), reverse("ui:webhook-new"), add_hooks_and_waiting)


def test_error_pages(story):
    """A missing model, a missing version, an unknown address: readable pages, at a fixed
    cost however many requests wait for the viewer."""
    client = _client(story.owner)
    add = _waiting_for_owner(story)
    _same_count(
        client, reverse("ui:model-detail", kwargs={"name": "no-such-model"}), add, status=404
    )
    _same_count(
        client,
        reverse("ui:version-detail", kwargs={"name": MODEL, "version": 999}),
        add,
        status=404,
    )
    _same_count(client, "/no/such/page/", add, status=404)


def test_wrong_method_pages(story):
    """Opening a form's address (a GET of a POST-only URL) answers the readable 405 page."""
    client = _client(story.owner)
    add = _waiting_for_owner(story)
    for url in (
        reverse("ui:version-tag-set", kwargs={"name": MODEL, "version": 2}),
        reverse("ui:webhook-create"),
        reverse("ui:logout"),
    ):
        _same_count(client, url, add, status=405)


def test_webhook_pages_with_mlflow_hooks(story, django_user_model):
    """MLflow-style hooks (registry-wide, an admin's): the list with many, and one hook's page
    with its events as MLflow names them and many deliveries."""
    admin = django_user_model.objects.create_superuser("root", password="root-password-1")

    def mlflow_hook():
        return webhook_services.webhook_create(
            actor=admin,
            flavor=WebhookFlavor.MLFLOW,
            name=f"hook-{next(numbers)}",
            events=[
                {"entity": "model_version_tag", "action": "set"},
                {"entity": "model_version", "action": "created"},
            ],
            url=f"https://hooks.example.com/{next(numbers)}",
        )

    _same_count(
        _client(admin), reverse("ui:webhook-list"), lambda n: [mlflow_hook() for _ in range(n)]
    )
    hook = mlflow_hook()

    def add_deliveries(count: int) -> None:
        for _ in range(count):
            services.model_version_tag_set(
                actor=story.owner, name=MODEL, version=1, key="k", value=str(next(numbers))
            )
        for delivery in WebhookDelivery.objects.filter(webhook=hook, attempts__isnull=True):
            WebhookDeliveryAttempt.objects.create(
                delivery=delivery, number=1, outcome=AttemptOutcome.RETRY, response_status=500
            )

    url = reverse("ui:webhook-detail", kwargs={"code": hook.code})
    _same_count(_client(admin), url, add_deliveries)
    assert WebhookDelivery.objects.filter(webhook=hook).count() == 10
