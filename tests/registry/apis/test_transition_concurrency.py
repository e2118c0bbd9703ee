"""Twenty callers at once, each moving a different version of one model into Production with
``archive_existing_versions``: half by approving a request, half directly. The model's row lock
serialises them: afterwards exactly one version is in Production and the trail holds exactly
one entry per change."""

from __future__ import annotations

import threading

import pytest
import requests

from accounts import services as account_services
from registry import services
from registry.models import Activity, ModelVersion

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = 20


def test_concurrent_moves_into_production(live_server, user, django_user_model):
    services.registered_model_create(actor=user, name="hot")
    for n in range(1, CALLERS + 1):
        services.model_version_create(actor=user, name="hot", source=f"s3://b/hot/{n}")
    requester = django_user_model.objects.create_user("requester", password="requester-pass-1")
    for n in range(1, CALLERS // 2 + 1):
        services.transition_request_create(
            actor=requester, name="hot", version=str(n), stage="Production"
        )
    token = account_services.api_token_create(actor=user, name="load").secret
    barrier = threading.Barrier(CALLERS)
    statuses: dict[int, int] = {}

    def move(n: int) -> None:
        body = {
            "name": "hot",
            "version": str(n),
            "stage": "Production",
            "archive_existing_versions": True,
        }
        path = (
            "/api/2.0/mlflow/transition-requests/approve"
            if n <= CALLERS // 2
            else "/api/2.0/mlflow/model-versions/transition-stage"
        )
        barrier.wait()
        response = requests.post(
            live_server.url + path,
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        statuses[n] = response.status_code

    threads = [threading.Thread(target=move, args=(n,)) for n in range(1, CALLERS + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == dict.fromkeys(range(1, CALLERS + 1), 200)
    stages = list(ModelVersion.objects.values_list("current_stage", flat=True))
    assert stages.count("Production") == 1
    assert stages.count("Archived") == CALLERS - 1
    moves = Activity.objects.filter(model_name="hot")
    assert moves.filter(activity_type__in=["APPROVED_REQUEST", "APPLIED_TRANSITION"]).count() == (
        CALLERS
    )
    assert moves.filter(activity_type="SYSTEM_TRANSITION").count() == CALLERS - 1
    # Replaying the trail gives the stages the table holds.
    replayed: dict[int, str] = {}
    for version, to_stage in moves.exclude(activity_type="REQUESTED_TRANSITION").values_list(
        "version", "to_stage"
    ):
        replayed[version] = to_stage
    assert replayed == dict(ModelVersion.objects.values_list("version", "current_stage"))
