"""The approval workflow over the Databricks registry API: transition requests, comments, the
direct ``databricks/model-versions/transition-stage``, a version's activities, and the
registry's own stage policies (``/api/2.0/registry/stage-policies/...``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import permissions
from accounts.requests import SignedInRequest
from kernel.api import EMPTY, MillisecondsField, RegistryApi
from registry import selectors, services
from registry.apis import ModelVersionSummarySerializer, name_field, optional_text

# --- Output -----------------------------------------------------------------------------------


class ActivitySerializer(serializers.Serializer):
    id = serializers.CharField(source="pk")
    activity_type = serializers.CharField()
    from_stage = serializers.CharField()
    to_stage = serializers.CharField()
    comment = serializers.CharField()
    system_comment = serializers.CharField()
    user_id = serializers.CharField(source="actor_username")
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="created_at")


class TransitionRequestSerializer(serializers.Serializer):
    """An open request, in the Activity shape the SDK reads, with what the caller may do."""

    id = serializers.CharField(source="code")
    activity_type = serializers.SerializerMethodField()
    from_stage = serializers.CharField()
    to_stage = serializers.CharField()
    comment = serializers.CharField()
    user_id = serializers.CharField(source="requested_by_username")
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="created_at")
    available_actions = serializers.SerializerMethodField()
    approvals = serializers.SerializerMethodField()

    def get_activity_type(self, obj: Any) -> str:
        return "REQUESTED_TRANSITION"

    def get_available_actions(self, obj: Any) -> list[str]:
        # The actor's level and the stage policies are looked up once per model (and stage)
        # for the whole list, not once per request.
        actor = self.context["actor"]
        registered_model = obj.model_version.registered_model
        levels = self.context.setdefault("levels", {})
        if registered_model.pk not in levels:
            levels[registered_model.pk] = permissions.effective_level(actor, registered_model)
        level = levels[registered_model.pk]
        policy = None
        if permissions.can_decide_request(obj, level):
            policies = self.context.setdefault("policies", {})
            if registered_model.pk not in policies:
                policies[registered_model.pk] = selectors.stage_policies_effective(
                    registered_model=registered_model
                )
            policy = policies[registered_model.pk][obj.to_stage]
        return selectors.request_available_actions(actor, obj, level=level, policy=policy)

    def get_approvals(self, obj: Any) -> list[str]:
        return [approval.approver_username for approval in obj.approvals.all()]


class CommentSerializer(serializers.Serializer):
    id = serializers.CharField(source="code")
    activity_type = serializers.SerializerMethodField()
    comment = serializers.CharField(source="text")
    user_id = serializers.CharField(source="author_username")
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="updated_at")
    available_actions = serializers.SerializerMethodField()

    def get_activity_type(self, obj: Any) -> str:
        return "NEW_COMMENT"

    def get_available_actions(self, obj: Any) -> list[str]:
        return selectors.comment_available_actions(self.context["actor"], obj)


class ModelVersionDatabricksSerializer(ModelVersionSummarySerializer):
    user_id = serializers.SerializerMethodField()
    permission_level = serializers.SerializerMethodField()
    open_requests = serializers.SerializerMethodField()

    def get_user_id(self, obj: Any) -> str:
        return obj.created_by.get_username() if obj.created_by_id else ""

    def get_permission_level(self, obj: Any) -> str:
        return permissions.effective_level(self.context["actor"], obj.registered_model).name

    def get_open_requests(self, obj: Any) -> list[dict[str, Any]]:
        requests = selectors.transition_requests_open(
            actor=self.context["actor"], name=obj.registered_model.name, version=obj.version
        )
        # many=True gives a list; the stubs type every serializer's data as a dict.
        return TransitionRequestSerializer(  # type: ignore[return-value]
            requests, many=True, context=self.context
        ).data


_ACTIVITY_RESPONSE = inline_serializer(
    name="ActivityResponse", fields={"activity": ActivitySerializer()}
)
_COMMENT_RESPONSE = inline_serializer(
    name="CommentResponse", fields={"comment": CommentSerializer()}
)


def _activity(activity: Any) -> Response:
    return Response({"activity": ActivitySerializer(activity).data})


class RequestIdInput(serializers.Serializer):
    """Names a request by what it moves, as Databricks' API does; ``request_id`` (the ``id`` the
    request list gives, optional) makes sure it is the one the caller read, after a rename for
    instance: another request is refused and nothing changes."""

    request_id = serializers.CharField(required=False, allow_blank=True)


class _RequestInput(serializers.Serializer):
    name = name_field()
    version = serializers.CharField()
    stage = serializers.CharField()
    comment = optional_text()


class _DecisionInput(_RequestInput, RequestIdInput):
    """Model, version and stage name the request (:class:`RequestIdInput`)."""


# --- Transition requests ----------------------------------------------------------------------


class TransitionRequestCreateApi(RegistryApi):
    InputSerializer = _RequestInput

    @extend_schema(
        request=_RequestInput,
        responses=inline_serializer(
            name="CreateTransitionRequestResponse",
            fields={"request": TransitionRequestSerializer()},
        ),
    )
    def post(self, request: SignedInRequest) -> Response:
        created = services.transition_request_create(actor=request.user, **self.input(request))
        serializer = TransitionRequestSerializer(created, context={"actor": request.user})
        return Response({"request": serializer.data})


class TransitionRequestApproveApi(RegistryApi):
    class InputSerializer(_DecisionInput):
        archive_existing_versions = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=_ACTIVITY_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        return _activity(
            services.transition_request_approve(actor=request.user, **self.input(request))
        )


class TransitionRequestRejectApi(RegistryApi):
    InputSerializer = _DecisionInput

    @extend_schema(request=_DecisionInput, responses=_ACTIVITY_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        return _activity(
            services.transition_request_reject(actor=request.user, **self.input(request))
        )


class TransitionRequestDeleteApi(RegistryApi):
    """Cancel a request; ``creator`` names whose request (arguments in the query string)."""

    class InputSerializer(_DecisionInput):
        creator = serializers.CharField()

    @extend_schema(parameters=[InputSerializer], responses=_ACTIVITY_RESPONSE)
    def delete(self, request: SignedInRequest) -> Response:
        return _activity(
            services.transition_request_cancel(actor=request.user, **self.input(request))
        )


class TransitionRequestListApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="ListTransitionRequestsResponse",
            fields={"requests": TransitionRequestSerializer(many=True)},
        ),
    )
    def get(self, request: Request) -> Response:
        requests = selectors.transition_requests_open(actor=request.user, **self.input(request))
        serializer = TransitionRequestSerializer(
            requests, many=True, context={"actor": request.user}
        )
        return Response({"requests": serializer.data})


# --- Comments ---------------------------------------------------------------------------------


class CommentCreateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()
        comment = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=_COMMENT_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        comment = services.comment_create(actor=request.user, **self.input(request))
        return Response(
            {"comment": CommentSerializer(comment, context={"actor": request.user}).data}
        )


class CommentUpdateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()
        comment = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=_COMMENT_RESPONSE)
    def patch(self, request: SignedInRequest) -> Response:
        comment = services.comment_update(actor=request.user, **self.input(request))
        return Response(
            {"comment": CommentSerializer(comment, context={"actor": request.user}).data}
        )


class CommentDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()

    @extend_schema(parameters=[InputSerializer], responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.comment_delete(actor=request.user, **self.input(request))
        return Response({})


# --- Direct transition and activities ---------------------------------------------------------


class DatabricksTransitionStageApi(RegistryApi):
    class InputSerializer(_RequestInput):
        archive_existing_versions = serializers.BooleanField()

    @extend_schema(
        request=InputSerializer,
        responses=inline_serializer(
            name="TransitionStageDatabricksResponse",
            fields={
                "model_version_databricks": ModelVersionDatabricksSerializer(),
                "model_version": ModelVersionDatabricksSerializer(),
            },
        ),
    )
    def post(self, request: SignedInRequest) -> Response:
        # The service answers with the version as moved, its tags and aliases set: no second
        # read (docs/decisions/0021-writes-in-fewer-statements.md).
        moved = services.model_version_stage_transition(actor=request.user, **self.input(request))
        body = ModelVersionDatabricksSerializer(moved, context={"actor": request.user}).data
        # SDK 0.58 and later read the first key, older ones the second.
        return Response({"model_version_databricks": body, "model_version": body})


class ModelVersionActivitiesApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="GetActivitiesResponse", fields={"activities": ActivitySerializer(many=True)}
        ),
    )
    def get(self, request: Request) -> Response:
        activities = selectors.model_version_activities(actor=request.user, **self.input(request))
        return Response({"activities": ActivitySerializer(activities, many=True).data})


# --- Stage policies ---------------------------------------------------------------------------


class PolicyTermsSerializer(serializers.Serializer):
    """The terms stage policies and alias policies share (registry/policy_terms.py)."""

    name = serializers.SerializerMethodField()
    required_approvals = serializers.IntegerField()
    allow_self_approval = serializers.BooleanField()
    required_version_tags = serializers.SerializerMethodField()
    request_ttl_seconds = serializers.SerializerMethodField()
    # A field named like Field.source (docs/decisions/0014).
    source = serializers.SerializerMethodField()  # type: ignore[assignment]
    registry_floor = serializers.SerializerMethodField()

    def get_name(self, obj: Any) -> str | None:
        return obj.registered_model.name if obj.registered_model_id else None

    def get_required_version_tags(self, obj: Any) -> list[dict[str, str]]:
        return [{"key": key, "value": value} for key, value in obj.required_version_tags.items()]

    def get_request_ttl_seconds(self, obj: Any) -> int:
        return int(obj.request_ttl.total_seconds()) if obj.request_ttl else 0

    def get_source(self, obj: Any) -> str:
        """Where the policy comes from: MODEL, REGISTRY_DEFAULT or (stages only) BUILT_IN."""
        if obj.pk is None:
            return "BUILT_IN"
        return "MODEL" if obj.registered_model_id else "REGISTRY_DEFAULT"

    def get_registry_floor(self, obj: Any) -> bool:
        """True when a model's own policy was tightened by the registry-wide one, a floor it
        cannot relax: the terms shown are then the stricter of the two, term by term."""
        return getattr(obj, "floor", None) is not None


class PolicyTermsInput(serializers.Serializer):
    """The shared terms of a policy being set; ``name`` empty or absent: the registry-wide one."""

    name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    required_approvals = serializers.IntegerField(required=False, min_value=1, max_value=10)
    allow_self_approval = serializers.BooleanField(required=False)
    required_version_tags = serializers.ListField(
        child=serializers.DictField(child=serializers.CharField(allow_blank=True)),
        required=False,
    )
    request_ttl_seconds = serializers.IntegerField(required=False, min_value=0)


class StagePolicySerializer(PolicyTermsSerializer):
    stage = serializers.CharField()
    allow_direct_transition = serializers.BooleanField()
    gate_tag_groups = serializers.ListField(child=serializers.CharField())


_POLICY_RESPONSE = inline_serializer(
    name="StagePolicyResponse", fields={"policy": StagePolicySerializer()}
)


class StagePolicyListApi(RegistryApi):
    """The policy in force for each stage: of model ``name``, or the registry defaults."""

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="ListStagePoliciesResponse", fields={"policies": StagePolicySerializer(many=True)}
        ),
    )
    def get(self, request: Request) -> Response:
        name = self.input(request).get("name")
        policies = selectors.stage_policies_in_force(actor=request.user, name=name or None)
        return Response({"policies": StagePolicySerializer(policies, many=True).data})


class StagePolicySetApi(RegistryApi):
    class InputSerializer(PolicyTermsInput):
        stage = serializers.CharField()
        allow_direct_transition = serializers.BooleanField(required=False)
        gate_tag_groups = serializers.ListField(
            child=serializers.CharField(trim_whitespace=False), required=False, max_length=20
        )

    @extend_schema(request=InputSerializer, responses=_POLICY_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        policy = services.stage_policy_set(actor=request.user, **self.input(request))
        return Response({"policy": StagePolicySerializer(policy).data})


class StagePolicyDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        stage = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.stage_policy_delete(actor=request.user, **self.input(request))
        return Response({})
