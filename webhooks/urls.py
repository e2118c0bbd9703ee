"""Routes of the webhook APIs.

``urlpatterns`` is mounted under the three MLflow prefixes (``/api/2.0/mlflow/``,
``/ajax-api/2.0/mlflow/``, ``/api/2.0/preview/mlflow/``); ``registry_urlpatterns`` (the
delivery log) under ``/api/2.0/registry/``.
"""

from django.urls import path

from webhooks import apis

urlpatterns = [
    path("registry-webhooks/create", apis.RegistryWebhookCreateApi.as_view()),
    path("registry-webhooks/list", apis.RegistryWebhookListApi.as_view()),
    path("registry-webhooks/update", apis.RegistryWebhookUpdateApi.as_view()),
    path("registry-webhooks/delete", apis.RegistryWebhookDeleteApi.as_view()),
    path("registry-webhooks/test", apis.RegistryWebhookTestApi.as_view()),
    path("webhooks", apis.MlflowWebhookCollectionApi.as_view()),
    path("webhooks/<str:webhook_id>", apis.MlflowWebhookDetailApi.as_view()),
    path("webhooks/<str:webhook_id>/test", apis.MlflowWebhookTestApi.as_view()),
]

registry_urlpatterns = [
    path("webhooks/<str:webhook_id>/deliveries", apis.WebhookDeliveryListApi.as_view()),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>",
        apis.WebhookDeliveryGetApi.as_view(),
    ),
    path(
        "webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver",
        apis.WebhookDeliveryRedeliverApi.as_view(),
    ),
]
