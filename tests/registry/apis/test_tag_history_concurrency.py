"""Twelve callers at once, each on its own connection, set the same new tag of one version
through MLflow's set-tag: the first creates the row, the rest wait on it and change it (a
caller that lost the race to create takes the row instead, as update_or_create does). The
history of the tag (docs/decisions/0022-version-tag-history.md) then replays to the value
left: each change's old value is the previous change's new one, and no call got a 500."""

from __future__ import annotations

import threading

import pytest
import requests

from accounts import services as account_services
from registry import services
from registry.models import ModelVersionTag, VersionTagChange

pytestmark = pytest.mark.django_db(transaction=True)

CALLERS = 12


def test_concurrent_sets_of_one_tag_chain_their_old_values(live_server, user):
    services.registered_model_create(actor=user, name="hot")
    services.model_version_create(actor=user, name="hot", source="s3://b/hot/1")
    token = account_services.api_token_create(actor=user, name="load").secret
    barrier = threading.Barrier(CALLERS)
    statuses: dict[int, int] = {}

    def set_tag(n: int) -> None:
        barrier.wait()
        response = requests.post(
            live_server.url + "/api/2.0/mlflow/model-versions/set-tag",
            json={"name": "hot", "version": "1", "key": "validation_status", "value": f"v{n}"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        statuses[n] = response.status_code

    threads = [threading.Thread(target=set_tag, args=(n,)) for n in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == dict.fromkeys(range(CALLERS), 200)
    changes = list(VersionTagChange.objects.order_by("id").values_list("old_value", "new_value"))
    assert len(changes) == CALLERS
    assert changes[0][0] is None
    for before, after in zip(changes, changes[1:], strict=False):
        assert after[0] == before[1]
    assert sorted(new for _, new in changes) == sorted(f"v{n}" for n in range(CALLERS))
    assert ModelVersionTag.objects.get().value == changes[-1][1]
