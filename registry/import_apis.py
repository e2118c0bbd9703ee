"""Imports from another registry started over HTTP, for installations without shell access
(``/api/2.0/registry/imports/...``, docs/migrating.md): admins only. The run is a Celery task;
its progress and report are read with ``imports/get``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.api import RegistryApi
from registry.models import ImportRun
from registry.selectors.importing import import_run_get
from registry.services.import_run import import_run_start


class ImportRunSerializer(serializers.Serializer):
    id = serializers.CharField(source="code")
    source_url = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField(), source="model_names")
    artifacts = serializers.CharField()
    concurrency = serializers.IntegerField()
    dry_run = serializers.BooleanField()
    status = serializers.CharField()
    progress = serializers.JSONField(
        help_text="models_total, models_done, versions_total, versions_done and counts by kind "
        "and result, written as the run goes."
    )
    report = serializers.JSONField(help_text="The final report, as the command's --report.")
    error = serializers.CharField()
    requested_by = serializers.CharField(source="requested_by_username")
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)


_RESPONSE = inline_serializer(
    name="ImportRunResponse", fields={"import_run": ImportRunSerializer()}
)


def _body(run: ImportRun) -> dict[str, Any]:
    return {"import_run": ImportRunSerializer(run).data}


class ImportStartApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        source_url = serializers.CharField(trim_whitespace=False)
        token = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        username = serializers.CharField(required=False, allow_blank=True)
        password = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False)
        models = serializers.ListField(child=serializers.CharField(), required=False)
        artifacts = serializers.CharField(required=False)
        concurrency = serializers.CharField(required=False)
        dry_run = serializers.CharField(required=False)

    @extend_schema(request=InputSerializer, responses=_RESPONSE)
    def post(self, request: Request) -> Response:
        run = import_run_start(actor=request.user, **self.input(request))
        return Response(_body(run))


class ImportGetApi(RegistryApi):
    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()

    @extend_schema(parameters=[InputSerializer], responses=_RESPONSE)
    def get(self, request: Request) -> Response:
        return Response(_body(import_run_get(actor=request.user, run_id=self.input(request)["id"])))
