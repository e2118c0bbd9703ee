"""The MLflow Model Registry REST protocol (``/api/2.0/mlflow/...``).

One view per operation. Each parses its input with a nested ``InputSerializer`` (shapes and
types only), calls one service or selector, and renders with the output serializers below; the
hot reads get their JSON from one statement instead (``OneStatementRead``,
docs/decisions/0019-hot-reads-in-one-statement.md), and the serializers still declare it.
Domain rules live in the services; errors become ``{"error_code", "message"}`` in
``config.exception_handlers``. Every success is exactly HTTP 200, as the client requires.
"""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import permissions
from accounts.authentication import folded_token
from accounts.requests import SignedInRequest
from accounts.services import Caller
from kernel.api import (
    EMPTY,
    DirectRepresentation,
    MillisecondsField,
    PageInputSerializer,
    RegistryApi,
    milliseconds,
    page_schema,
)
from registry import selectors, services
from registry.artifacts import selectors as artifact_selectors
from registry.artifacts.conf import artifact_settings
from registry.models import ModelVersion
from registry.selectors import documents

# --- Output -----------------------------------------------------------------------------------


class TagSerializer(DirectRepresentation):
    key = serializers.CharField()
    value = serializers.CharField()

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        return {"key": instance.key, "value": instance.value}


def _tags(rows: list[Any]) -> list[dict[str, Any]]:
    return [{"key": tag.key, "value": tag.value} for tag in rows]


class RegisteredModelAliasSerializer(DirectRepresentation):
    alias = serializers.CharField()
    version = serializers.CharField(source="model_version.version")

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        return {"alias": instance.alias, "version": str(instance.model_version.version)}


class ModelVersionSummarySerializer(DirectRepresentation):
    """A model version as the protocol nests it in ``latest_versions`` (no aliases)."""

    name = serializers.CharField(source="registered_model.name")
    version = serializers.CharField()  # a JSON string: the client fails on a number
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="updated_at")
    current_stage = serializers.CharField()
    description = serializers.CharField()
    # A field named like Field.source: DRF takes declared fields off the class, the stubs
    # do not know (docs/decisions/0014).
    source = serializers.CharField()  # type: ignore[assignment]
    run_id = serializers.CharField()
    run_link = serializers.CharField()
    status = serializers.CharField()
    status_message = serializers.CharField()
    tags = TagSerializer(many=True, source="tag_list")
    model_id = serializers.CharField()
    artifact_digest = serializers.CharField(
        help_text="sha256:<hex> of the managed copy's manifest (an extension of the protocol); "
        "empty until READY and for versions registered in reference mode."
    )

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        return {
            "name": instance.registered_model.name,
            "version": str(instance.version),
            "creation_timestamp": milliseconds(instance.created_at),
            "last_updated_timestamp": milliseconds(instance.updated_at),
            # str(): a service may just have set a TextChoices member.
            "current_stage": str(instance.current_stage),
            "description": instance.description,
            "source": instance.source,
            "run_id": instance.run_id,
            "run_link": instance.run_link,
            "status": str(instance.status),
            "status_message": instance.status_message,
            "tags": _tags(instance.tag_list),
            "model_id": instance.model_id,
            # Not in MLflow's protocol (both clients skip fields they do not know): the digest
            # of the managed copy, "" for references and until READY.
            "artifact_digest": instance.artifact_digest,
        }


class ModelVersionSerializer(ModelVersionSummarySerializer):
    aliases = serializers.SerializerMethodField()

    def get_aliases(self, obj: ModelVersion) -> list[str]:
        return [alias.alias for alias in obj.alias_list]

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        data = super().represent(instance)
        data["aliases"] = [alias.alias for alias in instance.alias_list]
        return data


class RegisteredModelSerializer(DirectRepresentation):
    name = serializers.CharField()
    creation_timestamp = MillisecondsField(source="created_at")
    last_updated_timestamp = MillisecondsField(source="updated_at")
    description = serializers.CharField()
    latest_versions = ModelVersionSummarySerializer(many=True)
    tags = TagSerializer(many=True, source="tag_list")
    aliases = RegisteredModelAliasSerializer(many=True, source="alias_list")

    @classmethod
    def represent(cls, instance: Any) -> dict[str, Any]:
        return {
            "name": instance.name,
            "creation_timestamp": milliseconds(instance.created_at),
            "last_updated_timestamp": milliseconds(instance.updated_at),
            "description": instance.description,
            "latest_versions": [
                ModelVersionSummarySerializer.represent(model_version)
                for model_version in instance.latest_versions
            ],
            "tags": _tags(instance.tag_list),
            "aliases": [
                RegisteredModelAliasSerializer.represent(alias) for alias in instance.alias_list
            ],
        }


def _registered_model(actor: Any, name: str) -> dict[str, Any]:
    return {
        "registered_model": RegisteredModelSerializer(
            selectors.registered_model_detail(actor=actor, name=name)
        ).data
    }


def _model_version(model_version: ModelVersion) -> dict[str, Any]:
    return {"model_version": ModelVersionSerializer(model_version).data}


def written_model_version(actor: Any, model_version: ModelVersion) -> dict[str, Any]:
    """A version a service just wrote, read again with its tags and aliases for output."""
    return _model_version(
        selectors.model_version_get(
            actor=actor, name=model_version.registered_model.name, version=model_version.version
        )
    )


# --- Reads in one statement -------------------------------------------------------------------


class OneStatementRead(RegistryApi):
    """A hot read answered by one statement of ``registry.selectors.documents``, which builds
    the response's JSON and, for a call signed with an API token, checks the token too
    (docs/decisions/0019-hot-reads-in-one-statement.md).

    A token call skips DRF's authentication and permission steps: the statement does both. Any
    other call (password, session, no credentials), a token the statement refuses, and bad
    input go through them first as usual, so the answers and their order (401 before 400,
    ``WWW-Authenticate``, the password throttle) stay the same.
    """

    _caller: Caller | None = None
    #: The methods that read in one statement (a view may also write, as the alias view does).
    one_statement_methods: tuple[str, ...] = ("GET",)

    def perform_authentication(self, request: Request) -> None:
        if request.method in self.one_statement_methods:
            self._caller = folded_token(request)
        if self._caller is None:
            super().perform_authentication(request)

    def check_permissions(self, request: Request) -> None:
        if self._caller is None:
            super().check_permissions(request)

    def _authenticate_as_usual(self, request: Request) -> Caller:
        self._caller = None
        super().perform_authentication(request)
        super().check_permissions(request)
        return Caller(user=request.user)

    def answer(self, request: Request, read: Any) -> Response:
        """``read(caller, data)`` (a ``documents`` read) with the validated input ``data``."""
        try:
            data = self.input(request)
            answer = read(self._caller or Caller(user=request.user), data)
        except documents.TokenRefused:
            answer = read(self._authenticate_as_usual(request), data)
        except Exception:
            # Refused before the statement ran (bad input): a bad token answers 401 first.
            if self._caller is not None:
                self._authenticate_as_usual(request)
            raise
        if self._caller is not None:
            request.user = answer.user
            request.auth = answer.token
        if answer.error is not None:
            raise answer.error
        return Response(answer.body)


class TagInputSerializer(serializers.Serializer):
    key = serializers.CharField(trim_whitespace=False)
    value = serializers.CharField(trim_whitespace=False, allow_blank=True, required=False)


def name_field(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(trim_whitespace=False, **kwargs)


def optional_text() -> serializers.CharField:
    return serializers.CharField(
        trim_whitespace=False, allow_blank=True, required=False, allow_null=True
    )


# --- Registered models ------------------------------------------------------------------------

_RM_RESPONSE = inline_serializer(
    name="RegisteredModelResponse", fields={"registered_model": RegisteredModelSerializer()}
)
MODEL_VERSION_RESPONSE = inline_serializer(
    name="ModelVersionResponse", fields={"model_version": ModelVersionSerializer()}
)


class RegisteredModelCreateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        tags = TagInputSerializer(many=True, required=False)
        description = optional_text()

    @extend_schema(request=InputSerializer, responses=_RM_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        registered_model = services.registered_model_create(
            actor=request.user, **self.input(request)
        )
        # Rendered from what the service wrote: no second read (docs/decisions/0021).
        return Response({"registered_model": RegisteredModelSerializer(registered_model).data})


class RegisteredModelGetApi(OneStatementRead):
    class InputSerializer(serializers.Serializer):
        name = name_field()

    @extend_schema(parameters=[InputSerializer], responses=_RM_RESPONSE)
    def get(self, request: Request) -> Response:
        return self.answer(
            request,
            lambda caller, data: documents.registered_model_document(caller=caller, **data),
        )


class RegisteredModelRenameApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        new_name = name_field()

    @extend_schema(request=InputSerializer, responses=_RM_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        registered_model = services.registered_model_rename(
            actor=request.user, **self.input(request)
        )
        return Response(_registered_model(request.user, registered_model.name))


class RegisteredModelUpdateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        description = optional_text()

    @extend_schema(request=InputSerializer, responses=_RM_RESPONSE)
    def patch(self, request: SignedInRequest) -> Response:
        registered_model = services.registered_model_update(
            actor=request.user, **self.input(request)
        )
        return Response(_registered_model(request.user, registered_model.name))


class RegisteredModelDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        # The registry's addition: delete even versions in Production or named by protected
        # aliases (docs/api.md, "Governed aliases"); clients that do not send it are refused.
        force = serializers.BooleanField(required=False)

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.registered_model_delete(actor=request.user, **self.input(request))
        return Response({})


class SearchInputSerializer(PageInputSerializer):
    """The paging and filtering parameters both searches share."""

    filter = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
    order_by = serializers.ListField(child=serializers.CharField(), required=False)


class SearchApi(RegistryApi):
    """A search: one selector call giving the page as the protocol's JSON (one statement,
    docs/decisions/0019-hot-reads-in-one-statement.md) under ``result_key``, and the next
    token if any."""

    InputSerializer = SearchInputSerializer
    result_key: str

    def search(self, **kwargs: Any) -> tuple[list[Any], str]:
        raise NotImplementedError

    def get(self, request: Request) -> Response:
        data = self.input(request)
        page, next_token = self.search(
            actor=request.user,
            filter_string=data.get("filter"),
            max_results=data.get("max_results"),
            order_by=data.get("order_by"),
            page_token=data.get("page_token"),
        )
        body: dict[str, Any] = {self.result_key: page}
        if next_token:
            body["next_page_token"] = next_token  # absent on the last page: the client loops
        return Response(body)


def _search_schema(name: str, result_key: str, serializer: serializers.Serializer) -> Any:
    return page_schema(name, result_key, serializer, parameters=SearchInputSerializer)


@extend_schema_view(
    get=_search_schema(
        "SearchRegisteredModelsResponse",
        "registered_models",
        RegisteredModelSerializer(many=True),
    )
)
class RegisteredModelSearchApi(SearchApi):
    result_key = "registered_models"

    def search(self, **kwargs: Any) -> tuple[list[Any], str]:
        return selectors.registered_model_search_documents(**kwargs)


class RegisteredModelLatestVersionsApi(OneStatementRead):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        stages = serializers.ListField(child=serializers.CharField(), required=False)

    _response = inline_serializer(
        name="GetLatestVersionsResponse",
        fields={"model_versions": ModelVersionSerializer(many=True)},
    )

    one_statement_methods = ("GET", "POST")

    def _latest(self, request: Request) -> Response:
        return self.answer(
            request,
            lambda caller, data: documents.latest_versions_document(caller=caller, **data),
        )

    @extend_schema(request=InputSerializer, responses=_response)
    def post(self, request: Request) -> Response:
        return self._latest(request)

    @extend_schema(parameters=[InputSerializer], responses=_response)
    def get(self, request: Request) -> Response:
        return self._latest(request)


class RegisteredModelTagSetApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        key = serializers.CharField(trim_whitespace=False)
        value = serializers.CharField(trim_whitespace=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def post(self, request: SignedInRequest) -> Response:
        services.registered_model_tag_set(actor=request.user, **self.input(request))
        return Response({})


class RegisteredModelTagDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        key = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.registered_model_tag_delete(actor=request.user, **self.input(request))
        return Response({})


class RegisteredModelAliasApi(OneStatementRead):
    """Set (POST), get the version of (GET) and delete (DELETE) an alias."""

    class SetInputSerializer(serializers.Serializer):
        name = name_field()
        alias = serializers.CharField(trim_whitespace=False)
        version = serializers.CharField()

    class InputSerializer(serializers.Serializer):
        name = name_field()
        alias = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=SetInputSerializer, responses=EMPTY)
    def post(self, request: SignedInRequest) -> Response:
        data = self.input(request, self.SetInputSerializer)
        services.registered_model_alias_set(actor=request.user, **data)
        return Response({})

    @extend_schema(parameters=[InputSerializer], responses=MODEL_VERSION_RESPONSE)
    def get(self, request: Request) -> Response:
        return self.answer(
            request,
            lambda caller, data: documents.model_version_by_alias_document(caller=caller, **data),
        )

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.registered_model_alias_delete(actor=request.user, **self.input(request))
        return Response({})


# --- Model versions ---------------------------------------------------------------------------


class ModelVersionCreateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        # A field named like Field.source (docs/decisions/0014).
        source = serializers.CharField(trim_whitespace=False)  # type: ignore[assignment]
        run_id = optional_text()
        run_link = optional_text()
        description = optional_text()
        tags = TagInputSerializer(many=True, required=False)
        model_id = optional_text()

    @extend_schema(request=InputSerializer, responses=MODEL_VERSION_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        model_version = services.model_version_create(actor=request.user, **self.input(request))
        # A quick copy answers READY (ARTIFACT_REGISTRATION_WAIT_SECONDS; docs/architecture.md).
        artifact_selectors.model_version_registration_wait(
            model_version=model_version, timeout=artifact_settings().registration_wait
        )
        # Rendered from what the service wrote, its tags and aliases included: no second read
        # (docs/decisions/0021-writes-in-fewer-statements.md).
        return Response(_model_version(model_version))


class ModelVersionGetApi(OneStatementRead):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(parameters=[InputSerializer], responses=MODEL_VERSION_RESPONSE)
    def get(self, request: Request) -> Response:
        return self.answer(
            request,
            lambda caller, data: documents.model_version_document(caller=caller, **data),
        )


class ModelVersionUpdateApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()
        description = optional_text()

    @extend_schema(request=InputSerializer, responses=MODEL_VERSION_RESPONSE)
    def patch(self, request: SignedInRequest) -> Response:
        model_version = services.model_version_update(actor=request.user, **self.input(request))
        # The service sets the version's tags and aliases (docs/decisions/0021).
        return Response(_model_version(model_version))


class ModelVersionDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.model_version_delete(actor=request.user, **self.input(request))
        return Response({})


class ModelVersionTransitionStageApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()
        stage = serializers.CharField()
        archive_existing_versions = serializers.BooleanField(required=False, default=False)
        comment = optional_text()

    @extend_schema(request=InputSerializer, responses=MODEL_VERSION_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        model_version = services.model_version_stage_transition(
            actor=request.user, **self.input(request)
        )
        # The service sets the version's tags and aliases (docs/decisions/0021).
        return Response(_model_version(model_version))


@extend_schema_view(
    get=_search_schema(
        "SearchModelVersionsResponse", "model_versions", ModelVersionSerializer(many=True)
    )
)
class ModelVersionSearchApi(SearchApi):
    result_key = "model_versions"

    def search(self, **kwargs: Any) -> tuple[list[Any], str]:
        return selectors.model_version_search_documents(**kwargs)


class ModelVersionDownloadUriApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="GetDownloadUriResponse", fields={"artifact_uri": serializers.CharField()}
        ),
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "artifact_uri": selectors.model_version_download_uri(
                    actor=request.user,
                    artifacts_base_url=request.build_absolute_uri(reverse("artifacts-root")),
                    **self.input(request),
                )
            }
        )


class ModelVersionTagSetApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()
        key = serializers.CharField(trim_whitespace=False)
        value = serializers.CharField(trim_whitespace=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def post(self, request: SignedInRequest) -> Response:
        services.model_version_tag_set(actor=request.user, **self.input(request))
        return Response({})


class ModelVersionTagDeleteApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()
        key = serializers.CharField(trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses=EMPTY)
    def delete(self, request: SignedInRequest) -> Response:
        services.model_version_tag_delete(actor=request.user, **self.input(request))
        return Response({})


# --- Databricks variants ----------------------------------------------------------------------


class DatabricksRegisteredModelSerializer(RegisteredModelSerializer):
    """``ModelDatabricks``: the model with its public ``id`` (for the permissions API) and the
    caller's ``permission_level`` on it."""

    id = serializers.CharField(source="code.hex")
    user_id = serializers.SerializerMethodField()
    permission_level = serializers.SerializerMethodField()

    def get_user_id(self, obj: Any) -> str:
        # An imported model's creator with no user here is kept as text (docs/migrating.md).
        return obj.created_by.get_username() if obj.created_by else obj.created_by_name

    def get_permission_level(self, obj: Any) -> str:
        return permissions.effective_level(self.context["actor"], obj).name


class DatabricksRegisteredModelGetApi(OneStatementRead):
    class InputSerializer(serializers.Serializer):
        name = name_field()

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="GetRegisteredModelDatabricksResponse",
            fields={"registered_model_databricks": DatabricksRegisteredModelSerializer()},
        ),
    )
    def get(self, request: Request) -> Response:
        return self.answer(
            request,
            lambda caller, data: documents.registered_model_document(
                caller=caller, databricks=True, **data
            ),
        )
