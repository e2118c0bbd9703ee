"""The governed aliases' endpoints, under ``/api/2.0/registry/`` (docs/api.md, "Governed
aliases"): alias policies, alias requests, the history of an alias, what an alias or a stage
named at a time T, and rollback. MLflow's own alias calls stay in ``registry/apis.py``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import permissions
from accounts.requests import SignedInRequest
from kernel.api import EMPTY, MillisecondsField, PageInputSerializer, RegistryApi, page_body
from registry import services
from registry.apis import name_field, optional_text
from registry.selectors import aliases as alias_selectors
from registry.workflow_apis import PolicyTermsInput, PolicyTermsSerializer, RequestIdInput

# --- Output -----------------------------------------------------------------------------------


class AliasPolicySerializer(PolicyTermsSerializer):
    alias = serializers.CharField()
    protected = serializers.BooleanField()
    direct_users = serializers.ListField(child=serializers.CharField())
    direct_groups = serializers.ListField(child=serializers.CharField())
    allowed_stages = serializers.ListField(child=serializers.CharField())


class AliasApprovalSerializer(serializers.Serializer):
    user_id = serializers.CharField(source="approver_username")
    comment = serializers.CharField()
    artifact_digest = serializers.CharField()
    creation_timestamp = MillisecondsField(source="created_at")


class AliasRequestSerializer(serializers.Serializer):
    id = serializers.CharField(source="code")
    name = serializers.CharField(source="registered_model.name")
    alias = serializers.CharField()
    version = serializers.SerializerMethodField()
    from_version = serializers.SerializerMethodField()
    rollback = serializers.BooleanField()
    artifact_digest = serializers.CharField()
    status = serializers.CharField()
    comment = serializers.CharField()
    user_id = serializers.CharField(source="requested_by_username")
    creation_timestamp = MillisecondsField(source="created_at")
    expiration_timestamp = MillisecondsField(source="expires_at", allow_null=True)
    closed_by = serializers.CharField(source="closed_by_username")
    closing_comment = serializers.CharField()
    approvals = AliasApprovalSerializer(many=True, source="approvals.all")
    available_actions = serializers.SerializerMethodField()

    def get_version(self, obj: Any) -> str:
        return str(obj.model_version.version)

    def get_from_version(self, obj: Any) -> str | None:
        return str(obj.from_version) if obj.from_version is not None else None

    def get_available_actions(self, obj: Any) -> list[str]:
        if obj.status != "OPEN":
            return []
        # The actor's level and groups, and each policy, are read once for the whole list.
        actor = self.context["actor"]
        registered_model = obj.registered_model
        levels = self.context.setdefault("levels", {})
        if registered_model.pk not in levels:
            levels[registered_model.pk] = permissions.effective_level(actor, registered_model)
        if "groups" not in self.context:
            self.context["groups"] = permissions.group_names(actor)
        policies = self.context.setdefault("policies", {})
        key = (registered_model.pk, obj.alias)
        if key not in policies:
            policies[key] = alias_selectors.alias_policy_effective(
                registered_model=registered_model, alias=obj.alias
            )
        return alias_selectors.alias_request_available_actions(
            actor,
            obj,
            level=levels[registered_model.pk],
            policy=policies[key],
            groups=self.context["groups"],
        )


class PointerMoveSerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    kind = serializers.CharField()
    pointer = serializers.CharField()
    from_version = serializers.SerializerMethodField()
    to_version = serializers.SerializerMethodField()
    cause = serializers.CharField()
    request_id = serializers.SerializerMethodField()
    artifact_digest = serializers.CharField()
    comment = serializers.CharField()
    user_id = serializers.CharField(source="actor_username")
    timestamp = MillisecondsField(source="created_at")

    def get_from_version(self, obj: Any) -> str | None:
        return str(obj.from_version) if obj.from_version is not None else None

    def get_to_version(self, obj: Any) -> str | None:
        return str(obj.to_version) if obj.to_version is not None else None

    def get_request_id(self, obj: Any) -> str | None:
        return str(obj.request_code) if obj.request_code else None


_POLICY_RESPONSE = inline_serializer(
    name="AliasPolicyResponse", fields={"policy": AliasPolicySerializer()}
)
_REQUEST_RESPONSE = inline_serializer(
    name="AliasRequestResponse", fields={"request": AliasRequestSerializer()}
)


def _request(request: Request, alias_request: Any) -> dict[str, Any]:
    return AliasRequestSerializer(alias_request, context={"actor": request.user}).data


# --- Policies ---------------------------------------------------------------------------------


class AliasPolicyListApi(RegistryApi):
    """The alias policies in force: of model ``name``, or the registry-wide ones."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="ListAliasPoliciesResponse", fields={"policies": AliasPolicySerializer(many=True)}
        ),
    )
    def get(self, request: Request) -> Response:
        name = self.input(request).get("name")
        policies = alias_selectors.alias_policies_in_force(actor=request.user, name=name or None)
        return Response({"policies": AliasPolicySerializer(policies, many=True).data})


class AliasPolicySetApi(RegistryApi):
    class InputSerializer(PolicyTermsInput):
        alias = serializers.CharField(trim_whitespace=False)
        protected = serializers.BooleanField(required=False)
        direct_users = serializers.ListField(
            child=serializers.CharField(trim_whitespace=False), required=False, max_length=20
        )
        direct_groups = serializers.ListField(
            child=serializers.CharField(trim_whitespace=False), required=False, max_length=20
        )
        allowed_stages = serializers.ListField(
            child=serializers.CharField(), required=False, max_length=4
        )

    @extend_schema(request=InputSerializer, responses=_POLICY_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        policy = services.alias_policy_set(actor=request.user, **self.input(request))
        return Response({"policy": AliasPolicySerializer(policy).data})


class AliasPolicyDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        alias = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.alias_policy_delete(actor=request.user, **self.input(request))
        return Response({})


# --- Requests ---------------------------------------------------------------------------------


class _RequestInput(serializers.Serializer):
    name = name_field()
    alias = serializers.CharField(trim_whitespace=False)
    version = serializers.CharField()
    comment = optional_text()


class _DecisionInput(_RequestInput, RequestIdInput):
    """Model, alias and version name the open request (:class:`RequestIdInput`)."""


class AliasRequestCreateApi(RegistryApi):
    InputSerializer = _RequestInput

    @extend_schema(request=_RequestInput, responses=_REQUEST_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        created = services.alias_request_create(actor=request.user, **self.input(request))
        return Response({"request": _request(request, created)})


class AliasRequestApproveApi(RegistryApi):
    InputSerializer = _DecisionInput

    @extend_schema(
        request=_DecisionInput,
        responses=inline_serializer(
            name="ApproveAliasRequestResponse",
            fields={
                "request": AliasRequestSerializer(),
                "moved": serializers.BooleanField(),
                "note": serializers.CharField(),
            },
        ),
    )
    def post(self, request: SignedInRequest) -> Response:
        decision = services.alias_request_approve(actor=request.user, **self.input(request))
        return Response(
            {
                "request": _request(request, decision.request),
                "moved": decision.request.status == "APPROVED",
                "note": decision.note,
            }
        )


class AliasRequestRejectApi(RegistryApi):
    InputSerializer = _DecisionInput

    @extend_schema(request=_DecisionInput, responses=_REQUEST_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        rejected = services.alias_request_reject(actor=request.user, **self.input(request))
        return Response({"request": _request(request, rejected)})


class AliasRequestDeleteApi(RegistryApi):
    """Cancel a request (arguments in the body or the query string)."""

    InputSerializer = _DecisionInput

    @extend_schema(parameters=[_DecisionInput], responses=_REQUEST_RESPONSE)
    def delete(self, request: SignedInRequest) -> Response:
        cancelled = services.alias_request_cancel(actor=request.user, **self.input(request))
        return Response({"request": _request(request, cancelled)})


class AliasRequestListApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        alias = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="ListAliasRequestsResponse",
            fields={"requests": AliasRequestSerializer(many=True)},
        ),
    )
    def get(self, request: Request) -> Response:
        requests = alias_selectors.alias_requests_open(actor=request.user, **self.input(request))
        serializer = AliasRequestSerializer(requests, many=True, context={"actor": request.user})
        return Response({"requests": serializer.data})


# --- History, as of T, rollback ---------------------------------------------------------------


class AliasHistoryApi(RegistryApi):
    class InputSerializer(PageInputSerializer):
        name = name_field()
        alias = serializers.CharField(trim_whitespace=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="AliasHistoryResponse",
            fields={
                "history": PointerMoveSerializer(many=True),
                "next_page_token": serializers.CharField(required=False),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        rows, next_token = alias_selectors.alias_history(actor=request.user, **self.input(request))
        return Response(page_body("history", rows, PointerMoveSerializer, next_token))


class AsOfApi(RegistryApi):
    """Which versions an alias (at most one) or a stage named at ``timestamp`` (ms)."""

    class InputSerializer(serializers.Serializer):
        name = name_field()
        timestamp = serializers.CharField()
        alias = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        stage = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="AsOfResponse",
            fields={"versions": serializers.ListField(child=serializers.CharField())},
        ),
    )
    def get(self, request: Request) -> Response:
        versions = alias_selectors.pointer_as_of(actor=request.user, **self.input(request))
        return Response({"versions": [str(number) for number in versions]})


class AliasRollbackApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        alias = serializers.CharField(trim_whitespace=False)
        comment = optional_text()

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            name="AliasRollbackResponse",
            fields={
                "alias": serializers.CharField(),
                "version": serializers.CharField(),
                "moved": serializers.BooleanField(),
                "request": AliasRequestSerializer(required=False),
            },
        ),
    )
    def post(self, request: SignedInRequest) -> Response:
        rollback = services.registered_model_alias_rollback(
            actor=request.user, **self.input(request)
        )
        body: dict[str, Any] = {
            "alias": rollback.alias,
            "version": str(rollback.to_version),
            "moved": rollback.request is None,
        }
        if rollback.request is not None:
            body["request"] = _request(request, rollback.request)
        return Response(body)
