"""Where a hook may listen is the service's rule, so the API, the web UI and the admin refuse
the same hooks: an MLflow-style hook is for all models, never one model's."""

from __future__ import annotations

import pytest

from kernel.errors import RegistryError
from registry import services as registry_services
from webhooks.models import Webhook, WebhookFlavor
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db


def test_an_mlflow_style_hook_cannot_be_limited_to_one_model(admin):
    registry_services.registered_model_create(actor=admin, name="m")
    with pytest.raises(RegistryError, match="MLflow-style hooks are for all models"):
        webhook_create(
            actor=admin,
            flavor=WebhookFlavor.MLFLOW,
            name="one-model",
            events=[{"entity": "model_version", "action": "created"}],
            url="https://example.com/hook",
            model_name="m",
        )
    assert not Webhook.objects.exists()


def test_a_databricks_style_hook_may_be(admin):
    registry_services.registered_model_create(actor=admin, name="m")
    hook = webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=["MODEL_VERSION_CREATED"],
        url="https://example.com/hook",
        model_name="m",
    )
    assert hook.registered_model is not None
