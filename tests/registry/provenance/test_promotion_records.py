"""Signed promotion records (docs/decisions/0016-provenance.md): every applied stage change and
alias move produces an in-toto Statement in a DSSE envelope signed with the registry's key; the
documented verifier (``python -m registry.provenance.verify``) checks it against a public key and
a digest, and refuses forgeries."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import ModelVersion, PromotionRecord
from registry.provenance import dsse
from registry.provenance.verify import verify_record
from tests.conftest import basic_auth
from tests.registry.conftest import private_pem, public_pem

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[3]
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def team(django_user_model):
    users = {
        name: django_user_model.objects.create_user(name, password="pass-" + name * 3)
        for name in ("owner", "bob", "carol")
    }
    services.registered_model_create(actor=users["owner"], name="churn")
    services.model_version_create(actor=users["owner"], name="churn", source="s3://b/churn/1")
    ModelVersion.objects.update(artifact_digest=DIGEST)
    root = django_user_model.objects.create_superuser("root", password="root-pass-1")
    services.stage_policy_set(actor=root, name="churn", stage="Production", required_approvals=2)
    for name in ("bob", "carol"):
        RegisteredModelGrant.objects.create(
            registered_model=ModelVersion.objects.get().registered_model,
            user=users[name],
            level="CAN_MANAGE_PRODUCTION_VERSIONS",
        )
    users["root"] = root
    return users


def _promote_with_two_approvals(team) -> PromotionRecord:
    services.transition_request_create(
        actor=team["owner"], name="churn", version=1, stage="Production", comment="ship it"
    )
    for name in ("bob", "carol"):
        services.transition_request_approve(
            actor=team[name], name="churn", version=1, stage="Production"
        )
    assert ModelVersion.objects.get().current_stage == "Production"
    return PromotionRecord.objects.get(kind="STAGE", pointer="Production")


def _run_verifier(tmp_path: Path, envelope: bytes, pem: str, *extra: str):
    record = tmp_path / "record.json"
    record.write_bytes(envelope)
    key = tmp_path / "registry.pem"
    key.write_text(pem)
    return subprocess.run(  # noqa: S603
        [sys.executable, "-m", "registry.provenance.verify", str(record), "--public-key", str(key)]
        + list(extra),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_two_approver_promotion_verifies_with_the_documented_verifier(
    team, signing, tmp_path, client
):
    record = _promote_with_two_approvals(team)

    # Served per version, and the envelope byte for byte, its digest as listed.
    client.defaults["HTTP_AUTHORIZATION"] = basic_auth("owner", "pass-" + "owner" * 3)
    listed = client.get(
        "/api/2.0/registry/model-versions/promotion-records?name=churn&version=1"
    ).json()["records"]
    assert [(item["kind"], item["to"], item["moved_from"]) for item in listed] == [
        ("STAGE", "Production", "None")
    ]
    response = client.get(listed[0]["url"])
    assert response.status_code == 200
    envelope = response.content
    assert dsse.envelope_digest(envelope) == listed[0]["envelope_digest"] == record.envelope_digest

    result = _run_verifier(
        tmp_path,
        envelope,
        public_pem(signing),
        "--digest",
        DIGEST,
        "--expect-to",
        "Production",
        "--expect-approver",
        "bob",
        "--expect-approver",
        "carol",
    )
    assert result.returncode == 0, result.stderr
    assert "verified: churn version 1 (None -> Production)" in result.stdout

    predicate = verify_record(envelope, public_pem(signing).encode(), digest=DIGEST)
    assert predicate["artifact_digest"] == DIGEST
    assert [a["approver"] for a in predicate["approvals"]] == ["bob", "carol"]
    assert all(a["artifact_digest"] == DIGEST for a in predicate["approvals"])
    assert predicate["request"]["requested_by"] == "owner"
    assert predicate["policy"]["required_approvals"] == 2
    assert predicate["registry"] == "https://registry.example.com"
    assert predicate["applied_by"] == "carol"
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
    assert statement["subject"] == [{"name": "models:/churn/1", "digest": {"sha256": "ab" * 32}}]

    # Another digest (another copy of the files) is refused.
    other = _run_verifier(tmp_path, envelope, public_pem(signing), "--digest", "sha256:" + "0" * 64)
    assert other.returncode == 1
    assert "not sha256:" in other.stderr
    missing = _run_verifier(tmp_path, envelope, public_pem(signing), "--expect-approver", "mallory")
    assert missing.returncode == 1
    assert "not approved by mallory" in missing.stderr


def test_forged_envelopes_fail(team, signing, tmp_path):
    envelope = _promote_with_two_approvals(team).envelope.encode()
    statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))

    # The same statement signed with another key: not the registry's.
    impostor = ec.generate_private_key(ec.SECP256R1())
    forged = dsse.sign(statement, impostor)
    result = _run_verifier(tmp_path, forged, public_pem(signing), "--digest", DIGEST)
    assert result.returncode == 1
    assert "no signature of the envelope verifies" in result.stderr
    # ... which verifies with the impostor's own key, so the check is the key, not the form.
    assert _run_verifier(tmp_path, forged, public_pem(impostor)).returncode == 0

    # The registry's signature over an altered predicate: an approver added.
    altered = json.loads(envelope)
    statement["predicate"]["approvals"].append(
        {"approver": "mallory", "approved_at": "2026-01-01T00:00:00.000000Z"}
    )
    altered["payload"] = base64.b64encode(dsse.canonical_json(statement)).decode()
    result = _run_verifier(
        tmp_path, json.dumps(altered).encode(), public_pem(signing), "--expect-approver", "mallory"
    )
    assert result.returncode == 1
    assert "no signature of the envelope verifies" in result.stderr

    # The payload type swapped: DSSE signs it too.
    swapped = json.loads(envelope)
    swapped["payloadType"] = "application/json"
    with pytest.raises(dsse.VerificationError):
        verify_record(json.dumps(swapped).encode(), public_pem(signing).encode())


def test_records_signed_before_a_rotation_verify_with_the_old_public_key(
    team, signing, settings, client
):
    old = signing
    first = _promote_with_two_approvals(team)
    new = ec.generate_private_key(ec.SECP256R1())
    settings.PROVENANCE = {
        **settings.PROVENANCE,
        "SIGNING_KEY": private_pem(new),
        "RETIRED_PUBLIC_KEYS": public_pem(old),
    }
    services.registered_model_alias_set(
        actor=team["owner"], name="churn", alias="champion", version=1
    )
    second = PromotionRecord.objects.get(kind="ALIAS")
    assert first.key_id == dsse.key_id(old.public_key()) != second.key_id

    # The old record still verifies with the old public key, not with the new one alone.
    verify_record(first.envelope.encode(), public_pem(old).encode(), digest=DIGEST)
    with pytest.raises(dsse.VerificationError):
        verify_record(first.envelope.encode(), public_pem(new).encode())
    predicate = verify_record(second.envelope.encode(), public_pem(new).encode(), digest=DIGEST)
    assert (predicate["kind"], predicate["alias"], predicate["to_version"]) == (
        "ALIAS",
        "champion",
        "1",
    )

    # Both are served, the current one first; anyone may read them.
    body = client.get("/api/2.0/registry/signing-keys").json()
    assert body["signing_enabled"] is True
    assert [(k["key_id"], k["current"]) for k in body["keys"]] == [
        (dsse.key_id(new.public_key()), True),
        (dsse.key_id(old.public_key()), False),
    ]
    served = "".join(k["public_key"] for k in body["keys"]).encode()
    verify_record(first.envelope.encode(), served, digest=DIGEST)
    verify_record(second.envelope.encode(), served, digest=DIGEST)


def test_alias_moves_are_signed_and_linked_from_the_webhook_payload(team, signing):
    from webhooks.models import WebhookEvent, WebhookFlavor
    from webhooks.services.management import webhook_create

    webhook_create(
        actor=team["owner"],
        flavor=WebhookFlavor.DATABRICKS,
        events=["MODEL_VERSION_ALIAS_MOVED", "MODEL_VERSION_TRANSITIONED_STAGE"],
        url="https://hooks.example.com/deploy",
        model_name="churn",
    )
    services.model_version_create(actor=team["owner"], name="churn", source="s3://b/churn/2")
    ModelVersion.objects.update(artifact_digest=DIGEST)
    services.registered_model_alias_set(
        actor=team["owner"], name="churn", alias="champion", version=1
    )
    services.registered_model_alias_set(
        actor=team["owner"], name="churn", alias="champion", version=2
    )
    records = list(PromotionRecord.objects.filter(kind="ALIAS").order_by("id"))
    assert [(r.pointer, r.moved_from, r.version) for r in records] == [
        ("champion", "", 1),
        ("champion", "1", 2),
    ]
    moved = [
        event.data
        for event in WebhookEvent.objects.filter(event_type="MODEL_VERSION_ALIAS_MOVED").order_by(
            "id"
        )
    ]
    assert [p["promotion_record"] for p in moved] == [
        {
            "url": f"/api/2.0/registry/promotion-records/get?id={r.code}",
            "digest": r.envelope_digest,
        }
        for r in records
    ]
    # A stage change links its record too.
    services.model_version_stage_transition(
        actor=team["root"], name="churn", version=2, stage="Staging"
    )
    staged = PromotionRecord.objects.get(kind="STAGE", pointer="Staging")
    (event,) = WebhookEvent.objects.filter(event_type="MODEL_VERSION_TRANSITIONED_STAGE")
    assert event.data["promotion_record"]["digest"] == staged.envelope_digest


def test_without_a_key_nothing_is_signed_and_check_deploy_says_so(team, settings, client):
    from django.core import checks

    settings.PROVENANCE = {**settings.PROVENANCE, "SIGNING_KEY": ""}
    with pytest.raises(PromotionRecord.DoesNotExist):
        _promote_with_two_approvals(team)  # promoted, unsigned
    assert ModelVersion.objects.get().current_stage == "Production"
    assert not PromotionRecord.objects.exists()
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    assert "registry.W002" in [message.id for message in found]
    assert client.get("/api/2.0/registry/signing-keys").json() == {
        "signing_enabled": False,
        "keys": [],
    }


def test_records_are_read_with_the_model_and_bad_ids_are_clear_errors(
    team, signing, django_user_model, client, settings
):
    record = _promote_with_two_approvals(team)
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    django_user_model.objects.create_user("eve", password="pass-evepass")
    client.defaults["HTTP_AUTHORIZATION"] = basic_auth("eve", "pass-evepass")
    hidden = client.get(f"/api/2.0/registry/promotion-records/get?id={record.code}")
    assert hidden.status_code in (403, 404)
    listed = client.get("/api/2.0/registry/model-versions/promotion-records?name=churn&version=1")
    assert listed.status_code in (403, 404)
    bad = client.get("/api/2.0/registry/promotion-records/get?id=not-a-uuid")
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    missing = client.get(
        "/api/2.0/registry/promotion-records/get?id=00000000-0000-0000-0000-000000000000"
    )
    assert missing.status_code == 404


def test_the_version_page_lists_the_signed_records(team, signing):
    from django.test import Client
    from django.urls import reverse

    record = _promote_with_two_approvals(team)
    page = Client()
    page.force_login(team["owner"])
    html = page.get(reverse("ui:version-detail", kwargs={"name": "churn", "version": 1})).content
    text = html.decode()
    assert 'data-testid="promotion-records"' in text
    assert f"/api/2.0/registry/promotion-records/get?id={record.code}" in text
    assert "None → Production" in text


def test_a_key_the_registry_cannot_use_stops_it_with_a_message(settings):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from django.core.exceptions import ImproperlyConfigured

    from registry.provenance.keys import keys

    settings.PROVENANCE = {**settings.PROVENANCE, "SIGNING_KEY": "not a key"}
    with pytest.raises(ImproperlyConfigured, match="not an unencrypted PEM private key"):
        keys()
    # Ed25519 is not among the keys model-signing verifies.
    edwards = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    settings.PROVENANCE = {**settings.PROVENANCE, "SIGNING_KEY": edwards.decode()}
    with pytest.raises(ImproperlyConfigured, match="P-256, P-384 or P-521"):
        keys()
    settings.PROVENANCE = {
        **settings.PROVENANCE,
        "SIGNING_KEY": "",
        "RETIRED_PUBLIC_KEYS": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    }
    with pytest.raises(ImproperlyConfigured, match="REGISTRY_SIGNING_RETIRED_PUBLIC_KEYS"):
        keys()


def test_records_are_append_only_in_the_database(team, signing):
    from django.db import DatabaseError, transaction

    record = _promote_with_two_approvals(team)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        PromotionRecord.objects.filter(pk=record.pk).update(envelope="{}")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        PromotionRecord.objects.filter(pk=record.pk).delete()


@pytest.mark.parametrize(
    "envelope",
    [
        b"not json",
        b"[]",
        b'{"payload": "", "payloadType": "application/vnd.in-toto+json", "signatures": ["x"]}',
        b'{"payload": "%%%", "payloadType": "application/vnd.in-toto+json", "signatures": []}',
    ],
)
def test_malformed_envelopes_are_refused_with_a_reason(envelope, signing_key, tmp_path):
    with pytest.raises(dsse.VerificationError):
        verify_record(envelope, public_pem(signing_key).encode())
    result = _run_verifier(tmp_path, envelope, public_pem(signing_key))
    assert result.returncode == 1
    assert result.stderr.startswith("FAILED: ")
    assert "Traceback" not in result.stderr


def test_a_signed_statement_of_another_shape_is_refused(signing_key):
    envelope = dsse.sign(
        {
            "_type": dsse.STATEMENT_TYPE,
            "subject": ["not an object"],
            "predicateType": dsse.PROMOTION_PREDICATE_TYPE,
            "predicate": {"approvals": "none"},
        },
        signing_key,
    )
    with pytest.raises(dsse.VerificationError):
        verify_record(envelope, public_pem(signing_key).encode())
