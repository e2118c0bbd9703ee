"""Twenty callers at once, each on its own connection, move ``@champion`` of one model: half by
approving a request to point it at their version, half by setting it directly. The model's row
lock serialises them: afterwards the alias names exactly one version, the history replays to
it, and no call got a 500."""

from __future__ import annotations

import threading

import pytest
import requests

from accounts import services as account_services
from registry import services
from registry.models import AliasRequest, PointerMove, RegisteredModelAlias

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = 20


def test_concurrent_moves_of_an_alias(live_server, user, django_user_model):
    services.registered_model_create(actor=user, name="hot")
    for n in range(1, CALLERS + 1):
        services.model_version_create(actor=user, name="hot", source=f"s3://b/hot/{n}")
    requester = django_user_model.objects.create_user("requester", password="requester-pass-1")
    for n in range(1, CALLERS // 2 + 1):
        services.alias_request_create(actor=requester, name="hot", alias="champion", version=n)
    token = account_services.api_token_create(actor=user, name="load").secret
    barrier = threading.Barrier(CALLERS)
    statuses: dict[int, int] = {}

    def move(n: int) -> None:
        body = {"name": "hot", "alias": "champion", "version": str(n)}
        path = (
            "/api/2.0/registry/alias-requests/approve"
            if n <= CALLERS // 2
            else "/api/2.0/mlflow/registered-models/alias"
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
    named = list(RegisteredModelAlias.objects.values_list("alias", "model_version__version"))
    assert len(named) == 1
    # Every call moved it once (a request can be made moot only by a move to its own version,
    # which no other caller makes), in the order of the lock: each move left the version the
    # previous one reached.
    moves = list(
        PointerMove.objects.filter(kind="ALIAS", pointer="champion").order_by("created_at", "id")
    )
    assert len(moves) == CALLERS
    assert moves[0].from_version is None
    assert all(a.to_version == b.from_version for a, b in zip(moves, moves[1:], strict=False))
    assert sorted(m.to_version for m in moves) == list(range(1, CALLERS + 1))
    assert moves[-1].to_version == named[0][1]
    assert set(AliasRequest.objects.values_list("status", flat=True)) == {"APPROVED"}
