"""The webhook APIs, over one store:

- Databricks registry webhooks (``registry-webhooks/{create,list,update,delete,test}``, also
  under ``/api/2.0/preview/mlflow/`` where the older ``databricks-registry-webhooks`` client
  calls them, with its JSON-bodied DELETE).
- MLflow 3.x webhooks (``webhooks``, ``webhooks/{id}``, ``webhooks/{id}/test``).
- The registry's delivery log (``/api/2.0/registry/webhooks/{id}/deliveries...``).

Each hook belongs to the API it was made through: that API lists and manages it, in its own
vocabulary, and its deliveries use that API's payloads and signature. Secrets and
authorization values are accepted and never rendered.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.requests import SignedInRequest
from kernel.api import (
    EMPTY,
    MillisecondsField,
    PageInputSerializer,
    RegistryApi,
    page_schema,
    paged_response,
)
from kernel.errors import RegistryError
from webhooks import payloads, selectors
from webhooks.models import (
    EventType,
    Webhook,
    WebhookDelivery,
    WebhookFlavor,
)
from webhooks.services import management
from webhooks.services.validation import mlflow_event_pair

DBX = WebhookFlavor.DATABRICKS
MLF = WebhookFlavor.MLFLOW


MAX_PER_PAGE = 1000


def _event_types(webhook: Webhook) -> list[str]:
    return [subscription.event_type for subscription in webhook.subscriptions.all()]


# --- Databricks -------------------------------------------------------------------------------


class HttpUrlSpecOutputSerializer(serializers.Serializer):
    """Databricks' HttpUrlSpecWithoutSecret, plus whether a secret and an authorization value
    are set (they are dropped when the URL changes; the values themselves are write-only)."""

    url = serializers.CharField()
    enable_ssl_verification = serializers.BooleanField()
    has_secret = serializers.SerializerMethodField()
    has_authorization = serializers.SerializerMethodField()

    def get_has_secret(self, obj: Webhook) -> bool:
        return bool(obj.secret)

    def get_has_authorization(self, obj: Webhook) -> bool:
        return bool(obj.authorization)


class RegistryWebhookOutputSerializer(serializers.Serializer):
    """Databricks' RegistryWebhook. No secret, no authorization: they are write-only."""

    id = serializers.SerializerMethodField()
    model_name = serializers.CharField(source="registered_model.name", required=False)
    events = serializers.SerializerMethodField()
    description = serializers.CharField()
    status = serializers.CharField()
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="updated_at")
    http_url_spec = serializers.SerializerMethodField()
    payload_template = serializers.CharField(required=False)

    def get_id(self, obj: Webhook) -> str:
        return payloads.webhook_public_id(obj)

    def get_events(self, obj: Webhook) -> list[str]:
        return _event_types(obj)

    def get_http_url_spec(self, obj: Webhook) -> dict[str, Any]:
        return HttpUrlSpecOutputSerializer(obj).data

    def to_representation(self, instance: Webhook) -> dict[str, Any]:
        data = super().to_representation(instance)
        if instance.registered_model is None:
            data.pop("model_name", None)
        if not instance.payload_template:
            data.pop("payload_template", None)
        return data


def _registry_webhook(webhook: Webhook) -> dict[str, Any]:
    return {"webhook": RegistryWebhookOutputSerializer(webhook).data}


class HttpUrlSpecInputSerializer(serializers.Serializer):
    url = serializers.CharField(trim_whitespace=False)
    secret = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    authorization = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    enable_ssl_verification = serializers.BooleanField(required=False, allow_null=True)


def _http_url_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    if not spec:
        return {}
    return {
        "url": spec.get("url"),
        "secret": spec.get("secret"),
        "authorization": spec.get("authorization"),
        "enable_ssl_verification": spec.get("enable_ssl_verification"),
    }


def _refuse_job_spec(data: dict[str, Any]) -> None:
    if data.get("job_spec"):
        raise RegistryError.invalid(
            "Job registry webhooks (job_spec) are not supported here; use http_url_spec, "
            "with a payload_template to start a job through its REST API."
        )


_DBX_RESPONSE = inline_serializer(
    name="RegistryWebhookResponse", fields={"webhook": RegistryWebhookOutputSerializer()}
)


class RegistryWebhookCreateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        events = serializers.ListField(child=serializers.CharField())
        description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
        http_url_spec = HttpUrlSpecInputSerializer(required=False)
        job_spec = serializers.DictField(required=False)
        model_name = serializers.CharField(required=False, allow_blank=True, allow_null=True)
        status = serializers.CharField(required=False)
        payload_template = serializers.CharField(
            required=False, allow_blank=True, trim_whitespace=False
        )

    @extend_schema(request=InputSerializer, responses=_DBX_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        data = self.input(request)
        _refuse_job_spec(data)
        if not data.get("http_url_spec"):
            raise RegistryError.invalid("Missing value for required parameter 'http_url_spec'.")
        webhook = management.webhook_create(
            actor=request.user,
            flavor=DBX,
            events=data["events"],
            model_name=data.get("model_name"),
            description=data.get("description"),
            status=data.get("status"),
            payload_template=data.get("payload_template"),
            **_http_url_spec(data["http_url_spec"]),
        )
        return Response(_registry_webhook(webhook))


class RegistryWebhookListApi(RegistryApi):
    class InputSerializer(PageInputSerializer):
        events = serializers.ListField(child=serializers.CharField(), required=False)
        model_name = serializers.CharField(required=False, allow_blank=True)

    @page_schema(
        "RegistryWebhookListResponse",
        "webhooks",
        RegistryWebhookOutputSerializer(many=True),
        parameters=InputSerializer,
    )
    def get(self, request: Request) -> Response:
        data = self.input(request)
        return paged_response(
            selectors.webhook_list(
                actor=request.user,
                flavor=DBX,
                events=data.get("events"),
                model_name=data.get("model_name"),
            ),
            data,
            result_key="webhooks",
            serializer_class=RegistryWebhookOutputSerializer,
            default=1000,
            maximum=MAX_PER_PAGE,
        )


class RegistryWebhookUpdateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()
        events = serializers.ListField(child=serializers.CharField(), required=False)
        description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
        http_url_spec = HttpUrlSpecInputSerializer(required=False)
        job_spec = serializers.DictField(required=False)
        status = serializers.CharField(required=False)
        payload_template = serializers.CharField(
            required=False, allow_blank=True, trim_whitespace=False
        )

    @extend_schema(request=InputSerializer, responses=_DBX_RESPONSE)
    def patch(self, request: SignedInRequest) -> Response:
        data = self.input(request)
        _refuse_job_spec(data)
        webhook = selectors.webhook_get(actor=request.user, flavor=DBX, webhook_id=data["id"])
        webhook = management.webhook_update(
            actor=request.user,
            webhook=webhook,
            events=data.get("events"),
            description=data.get("description"),
            status=data.get("status"),
            payload_template=data.get("payload_template"),
            **_http_url_spec(data.get("http_url_spec")),
        )
        return Response(_registry_webhook(webhook))


class RegistryWebhookDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        webhook_id = self.input(request)["id"]
        webhook = selectors.webhook_get(actor=request.user, flavor=DBX, webhook_id=webhook_id)
        management.webhook_delete(actor=request.user, webhook=webhook)
        return Response({})


class RegistryWebhookTestApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()
        event = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            name="RegistryWebhookTestResponse",
            fields={
                "status_code": serializers.IntegerField(required=False),
                "body": serializers.CharField(),
            },
        ),
    )
    def post(self, request: SignedInRequest) -> Response:
        data = self.input(request)
        webhook = selectors.webhook_get(actor=request.user, flavor=DBX, webhook_id=data["id"])
        event = data.get("event") or None
        if event is not None and event not in EventType.values:
            raise RegistryError.invalid(f"Invalid webhook event '{event}'.")
        _, result = management.webhook_test(actor=request.user, webhook=webhook, event_type=event)
        outcome: dict[str, Any] = {"body": result.body_excerpt if result.status else result.error}
        if result.status is not None:
            outcome["status_code"] = result.status
        # SDK >= 0.58 reads the top level, <= 0.57 reads "webhook": send both.
        return Response({**outcome, "webhook": outcome})


# --- MLflow 3.x -------------------------------------------------------------------------------


class MlflowWebhookOutputSerializer(serializers.Serializer):
    webhook_id = serializers.SerializerMethodField()
    name = serializers.CharField()
    description = serializers.CharField()
    url = serializers.CharField()
    events = serializers.SerializerMethodField()
    status = serializers.CharField()
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="updated_at")
    # Not in MLflow's Webhook (its clients ignore it): whether a secret is set, since a URL
    # change drops it.
    has_secret = serializers.SerializerMethodField()

    def get_webhook_id(self, obj: Webhook) -> str:
        return payloads.webhook_public_id(obj)

    def get_has_secret(self, obj: Webhook) -> bool:
        return bool(obj.secret)

    def get_events(self, obj: Webhook) -> list[dict[str, str]]:
        pairs = sorted(
            payloads.MLFLOW_PAIRS[event]
            for event in _event_types(obj)
            if event in payloads.MLFLOW_PAIRS
        )
        return [{"entity": entity, "action": action} for entity, action in pairs]


def _mlflow_webhook(webhook: Webhook) -> dict[str, Any]:
    return {"webhook": MlflowWebhookOutputSerializer(webhook).data}


class MlflowEventSerializer(serializers.Serializer):
    entity = serializers.CharField()
    action = serializers.CharField()


_MLF_RESPONSE = inline_serializer(
    name="MlflowWebhookResponse", fields={"webhook": MlflowWebhookOutputSerializer()}
)


class MlflowWebhookCollectionApi(RegistryApi):
    """Create (POST) and list (GET) MLflow webhooks."""

    class CreateInputSerializer(serializers.Serializer):
        name = serializers.CharField(trim_whitespace=False)
        url = serializers.CharField(trim_whitespace=False)
        events = MlflowEventSerializer(many=True)
        description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
        secret = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        status = serializers.CharField(required=False)
        payload_template = serializers.CharField(
            required=False, allow_blank=True, trim_whitespace=False
        )

    InputSerializer = PageInputSerializer

    @extend_schema(request=CreateInputSerializer, responses=_MLF_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        data = self.input(request, self.CreateInputSerializer)
        webhook = management.webhook_create(actor=request.user, flavor=MLF, **data)
        return Response(_mlflow_webhook(webhook))

    @page_schema("MlflowWebhookListResponse", "webhooks", MlflowWebhookOutputSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paged_response(
            selectors.webhook_list(actor=request.user, flavor=MLF),
            self.input(request),
            result_key="webhooks",
            serializer_class=MlflowWebhookOutputSerializer,
            default=100,
            maximum=MAX_PER_PAGE,
        )


class MlflowWebhookDetailApi(RegistryApi):
    """Get (GET), update (PATCH) and delete (DELETE) one MLflow webhook."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, trim_whitespace=False)
        url = serializers.CharField(required=False, trim_whitespace=False)
        events = MlflowEventSerializer(many=True, required=False)
        description = serializers.CharField(required=False, allow_blank=True, allow_null=True)
        secret = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        status = serializers.CharField(required=False)
        payload_template = serializers.CharField(
            required=False, allow_blank=True, trim_whitespace=False
        )

    @extend_schema(responses=_MLF_RESPONSE)
    def get(self, request: Request, webhook_id: str) -> Response:
        return Response(
            _mlflow_webhook(
                selectors.webhook_get(actor=request.user, flavor=MLF, webhook_id=webhook_id)
            )
        )

    @extend_schema(request=InputSerializer, responses=_MLF_RESPONSE)
    def patch(self, request: SignedInRequest, webhook_id: str) -> Response:
        data = self.input(request)
        data.pop("webhook_id", None)
        webhook = selectors.webhook_get(actor=request.user, flavor=MLF, webhook_id=webhook_id)
        webhook = management.webhook_update(actor=request.user, webhook=webhook, **data)
        return Response(_mlflow_webhook(webhook))

    @extend_schema(responses=EMPTY)
    def delete(self, request: SignedInRequest, webhook_id: str) -> Response:
        webhook = selectors.webhook_get(actor=request.user, flavor=MLF, webhook_id=webhook_id)
        management.webhook_delete(actor=request.user, webhook=webhook)
        return Response({})


class MlflowWebhookTestApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        event = MlflowEventSerializer(required=False)

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            name="MlflowWebhookTestResponse",
            fields={
                "result": inline_serializer(
                    name="MlflowWebhookTestResult",
                    fields={
                        "success": serializers.BooleanField(),
                        "response_status": serializers.IntegerField(),
                        "response_body": serializers.CharField(),
                        "error_message": serializers.CharField(),
                    },
                )
            },
        ),
    )
    def post(self, request: SignedInRequest, webhook_id: str) -> Response:
        data = self.input(request)
        webhook = selectors.webhook_get(actor=request.user, flavor=MLF, webhook_id=webhook_id)
        event_type = None
        if data.get("event"):
            pair = mlflow_event_pair(dict(data["event"]))
            event_type = payloads.MLFLOW_EVENTS.get(pair)
            if event_type is None:
                raise RegistryError.invalid(
                    f"Invalid webhook event: entity {pair[0]} with action {pair[1]}."
                )
        _, result = management.webhook_test(
            actor=request.user, webhook=webhook, event_type=event_type
        )
        outcome: dict[str, Any] = {"success": result.status is not None and result.status < 400}
        if result.status is not None:
            outcome["response_status"] = result.status
            outcome["response_body"] = result.body_excerpt
        if result.error:
            outcome["error_message"] = f"Failed to test webhook: {result.error}"
        return Response({"result": outcome})


# --- Delivery log -----------------------------------------------------------------------------


class AttemptOutputSerializer(serializers.Serializer):
    number = serializers.IntegerField()
    outcome = serializers.CharField()
    response_status = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    response_excerpt = serializers.CharField()
    duration_ms = serializers.IntegerField()
    start_timestamp = MillisecondsField(source="started_at")


class DeliveryOutputSerializer(serializers.Serializer):
    delivery_id = serializers.CharField(source="code")
    webhook_id = serializers.SerializerMethodField()
    event = serializers.CharField(source="event.event_type")
    event_id = serializers.CharField(source="event.code")
    model_name = serializers.CharField(source="event.model_name")
    version = serializers.CharField(source="event.version")
    status = serializers.CharField()
    is_test = serializers.BooleanField()
    attempt_count = serializers.SerializerMethodField()
    last_response_status = serializers.IntegerField(allow_null=True)
    last_error = serializers.CharField()
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="updated_at")
    next_attempt_timestamp = MillisecondsField(source="next_attempt_at")

    def get_webhook_id(self, obj: WebhookDelivery) -> str:
        return payloads.webhook_public_id(obj.webhook)

    def get_attempt_count(self, obj: WebhookDelivery) -> int:
        return obj.attempts_before + obj.attempt_count


class DeliveryDetailOutputSerializer(DeliveryOutputSerializer):
    body = serializers.CharField()
    attempts = AttemptOutputSerializer(many=True, source="attempts.all")


class WebhookDeliveryListApi(RegistryApi):
    InputSerializer = PageInputSerializer

    @page_schema("WebhookDeliveryListResponse", "deliveries", DeliveryOutputSerializer(many=True))
    def get(self, request: Request, webhook_id: str) -> Response:
        data = self.input(request)
        webhook = selectors.webhook_get_any(actor=request.user, webhook_id=webhook_id)
        return paged_response(
            selectors.delivery_list(webhook=webhook),
            data,
            result_key="deliveries",
            serializer_class=DeliveryOutputSerializer,
            default=100,
            maximum=MAX_PER_PAGE,
        )


_DELIVERY_RESPONSE = inline_serializer(
    name="WebhookDeliveryResponse", fields={"delivery": DeliveryDetailOutputSerializer()}
)


class WebhookDeliveryGetApi(RegistryApi):
    @extend_schema(responses=_DELIVERY_RESPONSE)
    def get(self, request: Request, webhook_id: str, delivery_id: str) -> Response:
        webhook = selectors.webhook_get_any(actor=request.user, webhook_id=webhook_id)
        delivery = selectors.delivery_get(webhook=webhook, delivery_id=delivery_id)
        return Response({"delivery": DeliveryDetailOutputSerializer(delivery).data})


class WebhookDeliveryRedeliverApi(RegistryApi):
    @extend_schema(request=None, responses=_DELIVERY_RESPONSE)
    def post(self, request: SignedInRequest, webhook_id: str, delivery_id: str) -> Response:
        webhook = selectors.webhook_get_any(actor=request.user, webhook_id=webhook_id)
        delivery = selectors.delivery_get(webhook=webhook, delivery_id=delivery_id)
        management.webhook_delivery_redeliver(actor=request.user, delivery=delivery)
        delivery = selectors.delivery_get(webhook=webhook, delivery_id=delivery_id)
        return Response({"delivery": DeliveryDetailOutputSerializer(delivery).data})
