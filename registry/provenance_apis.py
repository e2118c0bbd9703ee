"""The provenance endpoints under ``/api/2.0/registry/`` (docs/api.md, "Provenance"): the public
keys a deployment verifies with, and the signed promotion records of a version."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from kernel.api import PageInputSerializer, RegistryApi, page_body
from registry.apis import name_field
from registry.models import PromotionRecord
from registry.selectors import provenance as selectors
from registry.services.provenance import RECORD_PATH


class SigningKeysApi(RegistryApi):
    """The registry's public keys: the current signing key first, then retired ones. No sign-in
    needed: they are public, and a deployment pipeline pins them (docs/security.md)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    class KeySerializer(serializers.Serializer):
        key_id = serializers.CharField()
        public_key = serializers.CharField(source="pem")
        current = serializers.BooleanField()

    @extend_schema(
        responses=inline_serializer(
            name="SigningKeysResponse",
            fields={
                "signing_enabled": serializers.BooleanField(),
                "keys": KeySerializer(many=True),
            },
        )
    )
    def get(self, request: Request) -> Response:
        enabled, public = selectors.signing_public_keys()
        return Response(
            {"signing_enabled": enabled, "keys": self.KeySerializer(public, many=True).data}
        )


class PromotionRecordSerializer(serializers.Serializer):
    id = serializers.CharField(source="code")
    name = serializers.CharField(source="model_name")
    version = serializers.CharField()
    kind = serializers.CharField()
    to = serializers.CharField(source="pointer")
    moved_from = serializers.CharField()
    artifact_digest = serializers.CharField()
    envelope_digest = serializers.CharField()
    key_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    url = serializers.SerializerMethodField()

    def get_url(self, record: PromotionRecord) -> str:
        return f"{RECORD_PATH}?id={record.code}"


class PromotionRecordListApi(RegistryApi):
    class InputSerializer(PageInputSerializer):
        name = name_field()
        version = serializers.CharField()

    @extend_schema(
        parameters=[InputSerializer],
        responses=inline_serializer(
            name="PromotionRecordListResponse",
            fields={
                "records": PromotionRecordSerializer(many=True),
                "next_page_token": serializers.CharField(required=False),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        rows, next_token = selectors.promotion_records_of(actor=request.user, **self.input(request))
        return Response(page_body("records", rows, PromotionRecordSerializer, next_token))


class PromotionRecordGetApi(RegistryApi):
    """One record's DSSE envelope, byte for byte as signed (its sha256 is the record's
    ``envelope_digest``)."""

    class InputSerializer(serializers.Serializer):
        id = serializers.CharField()

    @extend_schema(parameters=[InputSerializer], responses={(200, "application/json"): dict})
    def get(self, request: Request) -> HttpResponse:
        record = selectors.promotion_record_get(
            actor=request.user, record_id=self.input(request)["id"]
        )
        response = HttpResponse(record.envelope.encode("utf-8"), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="{record.code}.dsse.json"'
        return response
