"""The artifact endpoints the ``mlflow`` client uses (``/api/2.0/mlflow-artifacts/...``) and the
registry's extensions for managed copies: the manifest
(``/api/2.0/registry/model-versions/manifest``) and the retry of a failed registration
(``/api/2.0/registry/model-versions/retry-registration``).

The client's ``HttpArtifactRepository`` lists ``GET artifacts?path=<dir>``, downloads
``GET artifacts/<path>`` and uploads ``PUT artifacts/<path>`` with the raw file as body. Bodies
stream both ways: downloads are read from the store in chunks, uploads are passed to the store
as a stream, so neither the web process nor the worker holds a whole file in memory.
"""

from __future__ import annotations

import mimetypes
from typing import IO, Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.requests import SignedInRequest
from kernel.api import EMPTY, RegistryApi
from registry import services as registry_services
from registry.apis import MODEL_VERSION_RESPONSE, name_field, written_model_version
from registry.artifacts import selectors, services
from registry.artifacts.storage import READ_CHUNK_SIZE
from registry.provenance import SIGNATURE_NAME


class _FileSerializer(serializers.Serializer):
    path = serializers.CharField()
    is_dir = serializers.BooleanField()
    file_size = serializers.IntegerField(required=False)


class ArtifactListApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        path = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="ListArtifactsResponse",
            fields={"files": _FileSerializer(many=True, required=False)},
        ),
    )
    def get(self, request: Request) -> Response:
        entries = selectors.artifact_list(
            actor=request.user, path=self.input(request).get("path", "")
        )
        if not entries:
            return Response({})  # the protocol's answer for a file or a missing path
        files = [
            {"path": entry.name, "is_dir": True}
            if entry.is_dir
            else {"path": entry.name, "is_dir": False, "file_size": entry.size}
            for entry in entries
        ]
        return Response({"files": files})


class _RequestBody(IO[bytes]):
    """The raw request body as a read-only stream (never parsed, never buffered whole)."""

    def __init__(self, request: Request) -> None:
        # Django's HttpRequest.read, which DRF's Request passes through: the WSGI input.
        self._read = request.read

    def read(self, size: int = -1) -> bytes:
        return self._read(size if size is not None and size >= 0 else None)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def _chunks(stream: IO[bytes]) -> Any:
    try:
        while chunk := stream.read(READ_CHUNK_SIZE):
            yield chunk
    finally:
        stream.close()


_PATH = OpenApiParameter("path", OpenApiTypes.STR, OpenApiParameter.PATH)


class ArtifactApi(RegistryApi):
    @extend_schema(parameters=[_PATH], responses={(200, "application/octet-stream"): bytes})
    def get(self, request: Request, path: str) -> StreamingHttpResponse:
        download = selectors.artifact_open(actor=request.user, path=path)
        response = StreamingHttpResponse(
            _chunks(download.stream),
            content_type=mimetypes.guess_type(download.name)[0] or "application/octet-stream",
        )
        response["Content-Length"] = str(download.size)
        response["Content-Disposition"] = f'attachment; filename="{download.name}"'
        return response

    @extend_schema(parameters=[_PATH], request={"application/octet-stream": bytes}, responses=EMPTY)
    def put(self, request: Request, path: str) -> Response:
        # Only read: IO's other methods are never called (docs/decisions/0014).
        services.artifact_upload(actor=request.user, path=path, stream=_RequestBody(request))  # type: ignore[abstract]
        return Response({})

    @extend_schema(parameters=[_PATH], responses=EMPTY)
    def delete(self, request: Request, path: str) -> Response:
        services.artifact_upload_delete(actor=request.user, path=path)
        return Response({})


class ModelVersionManifestApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    class ManifestFileSerializer(serializers.Serializer):
        path = serializers.CharField()
        size = serializers.IntegerField()
        sha256 = serializers.CharField()

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="ModelVersionManifestResponse",
            fields={
                "name": serializers.CharField(),
                "version": serializers.CharField(),
                "status": serializers.CharField(),
                "status_message": serializers.CharField(),
                "artifact_path": serializers.CharField(required=False),
                "storage_location": serializers.CharField(required=False),
                "manifest": inline_serializer(
                    name="Manifest",
                    required=False,
                    fields={
                        "digest": serializers.CharField(),
                        "total_size": serializers.IntegerField(),
                        "file_count": serializers.IntegerField(),
                        "files": ManifestFileSerializer(many=True),
                        "signature": inline_serializer(
                            name="ManifestSignature",
                            required=False,
                            fields={
                                "path": serializers.CharField(),
                                "key_id": serializers.CharField(),
                            },
                        ),
                    },
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        model_version = selectors.model_version_manifest(actor=request.user, **self.input(request))
        body: dict[str, Any] = {
            "name": model_version.registered_model.name,
            "version": str(model_version.version),
            "status": model_version.status,
            "status_message": model_version.status_message,
        }
        if model_version.is_reference:
            # Reference mode: the registry holds no copy, hence no manifest (docs/architecture.md).
            body["storage_location"] = model_version.storage_location
        else:
            body["artifact_path"] = selectors.model_version_artifacts_path(
                model_version=model_version
            )
        manifest = model_version.manifest_or_none
        if manifest is not None:
            body["manifest"] = {
                "digest": model_version.artifact_digest,
                "total_size": manifest.total_size,
                "file_count": manifest.file_count,
                "files": manifest.files,
            }
            if manifest.signature_key_id:
                # The copy's model-signing signature, beside the files (not one of them).
                body["manifest"]["signature"] = {
                    "path": SIGNATURE_NAME,
                    "key_id": manifest.signature_key_id,
                }
        return Response(body)


class ModelVersionRegistrationRetryApi(RegistryApi):
    """A FAILED_REGISTRATION version back to PENDING_REGISTRATION, its copy queued again."""

    class InputSerializer(serializers.Serializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(request=InputSerializer, responses=MODEL_VERSION_RESPONSE)
    def post(self, request: SignedInRequest) -> Response:
        model_version = registry_services.model_version_registration_retry(
            actor=request.user, **self.input(request)
        )
        return Response(written_model_version(request.user, model_version))
