"""The accounts API: API tokens (``/api/2.0/registry/tokens/...``) and the Databricks
permissions API on registered models (``/api/2.0/permissions/registered-models/...``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.models import ApiToken
from kernel.api import (
    MillisecondsField,
    PageInputSerializer,
    RegistryApi,
    page_schema,
    paged_response,
)

MAX_TOKENS_PER_PAGE = 1000


class ApiTokenSerializer(serializers.Serializer):
    token_id = serializers.UUIDField(source="code")
    name = serializers.CharField()
    prefix = serializers.CharField()
    creation_timestamp = MillisecondsField(source="created_at")
    expiry_timestamp = MillisecondsField(source="expires_at", allow_null=True)
    last_used_timestamp = MillisecondsField(source="last_used_at", allow_null=True)
    revoked_timestamp = MillisecondsField(source="revoked_at", allow_null=True)


_TOKEN_RESPONSE = inline_serializer(name="ApiTokenResponse", fields={"token": ApiTokenSerializer()})


class ApiTokenCreateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=services.TOKEN_NAME_MAX_LENGTH)
        expires_in_days = serializers.IntegerField(
            required=False, min_value=1, max_value=services.MAX_TOKEN_LIFETIME_DAYS
        )

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            name="CreateApiTokenResponse",
            fields={"token": ApiTokenSerializer(), "token_value": serializers.CharField()},
        ),
    )
    def post(self, request: Request) -> Response:
        # Signed in with a token (HTTP Basic or Bearer): what it creates cannot outlive it.
        credential = request.auth if isinstance(request.auth, ApiToken) else None
        created = services.api_token_create(
            actor=request.user, credential=credential, **self.input(request)
        )
        # The only time the secret is ever shown.
        return Response(
            {"token": ApiTokenSerializer(created.token).data, "token_value": created.secret}
        )


class ApiTokenListApi(RegistryApi):
    InputSerializer = PageInputSerializer

    @page_schema("ListApiTokensResponse", "tokens", ApiTokenSerializer(many=True))
    def get(self, request: Request) -> Response:
        return paged_response(
            selectors.api_token_list(actor=request.user),
            self.input(request),
            result_key="tokens",
            serializer_class=ApiTokenSerializer,
            default=100,
            maximum=MAX_TOKENS_PER_PAGE,
        )


class ApiTokenRevokeApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        token_id = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=_TOKEN_RESPONSE)
    def post(self, request: Request) -> Response:
        token = services.api_token_revoke(actor=request.user, **self.input(request))
        return Response({"token": ApiTokenSerializer(token).data})


# --- Databricks permissions API -------------------------------------------------------------


class AccessControlRequestSerializer(serializers.Serializer):
    user_name = serializers.CharField(required=False)
    group_name = serializers.CharField(required=False)
    service_principal_name = serializers.CharField(required=False)
    permission_level = serializers.CharField()


class PermissionSerializer(serializers.Serializer):
    permission_level = serializers.CharField()
    inherited = serializers.BooleanField()
    inherited_from_object = serializers.ListField(child=serializers.CharField(), required=False)


class AccessControlResponseSerializer(serializers.Serializer):
    user_name = serializers.CharField(required=False)
    group_name = serializers.CharField(required=False)
    display_name = serializers.CharField(required=False)
    all_permissions = PermissionSerializer(many=True)


_PERMISSIONS_RESPONSE = inline_serializer(
    name="RegisteredModelPermissions",
    fields={
        "object_id": serializers.CharField(),
        "object_type": serializers.CharField(),
        "access_control_list": AccessControlResponseSerializer(many=True),
    },
)


def _permissions_body(registered_model: Any, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object_id": f"{selectors.REGISTRY_ROOT}{registered_model.code.hex}",
        "object_type": "registered-model",
        "access_control_list": entries,
    }


class RegisteredModelPermissionLevelsApi(RegistryApi):
    @extend_schema(
        responses=inline_serializer(
            name="PermissionLevelsResponse",
            fields={
                "permission_levels": inline_serializer(
                    name="PermissionLevelDescription",
                    fields={
                        "permission_level": serializers.CharField(),
                        "description": serializers.CharField(),
                    },
                    many=True,
                )
            },
        )
    )
    def get(self, request: Request, model_id: str) -> Response:
        registered_model = selectors.registered_model_by_id(model_id)
        levels = selectors.permission_levels(actor=request.user, registered_model=registered_model)
        return Response({"permission_levels": levels})


class RegisteredModelPermissionsApi(RegistryApi):
    """GET the grants; PATCH adds or changes the listed grants; PUT replaces all direct grants."""

    class InputSerializer(serializers.Serializer):
        access_control_list = AccessControlRequestSerializer(many=True)

    @extend_schema(responses=_PERMISSIONS_RESPONSE)
    def get(self, request: Request, model_id: str) -> Response:
        registered_model = selectors.registered_model_by_id(model_id)
        entries = selectors.registered_model_access_control_list(
            actor=request.user, registered_model=registered_model
        )
        return Response(_permissions_body(registered_model, entries))

    def _update(self, request: Request, model_id: str, *, replace: bool) -> Response:
        registered_model = selectors.registered_model_by_id(model_id)
        data = self.input(request)
        entries = services.registered_model_permissions_update(
            actor=request.user,
            registered_model=registered_model,
            access_control_list=[dict(entry) for entry in data["access_control_list"]],
            replace=replace,
        )
        return Response(_permissions_body(registered_model, entries))

    @extend_schema(request=InputSerializer, responses=_PERMISSIONS_RESPONSE)
    def patch(self, request: Request, model_id: str) -> Response:
        return self._update(request, model_id, replace=False)

    @extend_schema(request=InputSerializer, responses=_PERMISSIONS_RESPONSE)
    def put(self, request: Request, model_id: str) -> Response:
        return self._update(request, model_id, replace=True)
