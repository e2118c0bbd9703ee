"""The dict settings groups (``ARTIFACTS``, ``REGISTRY``, ``WEBHOOKS``) are read through typed
objects (kernel/conf.py): every key has a field, a missing key or a value of another type
stops the read with a message, and a replaced dict is read afresh."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from accounts.conf import AccountSettings, account_settings
from kernel.conf import SettingsGroup
from registry.artifacts.conf import ArtifactSettings, artifact_settings
from registry.conf import RegistrySettings, registry_settings
from registry.provenance.conf import ProvenanceSettings
from webhooks.conf import WebhookSettings, webhook_settings

ROOT = Path(__file__).resolve().parent.parent


def _keys(*schemas: type) -> list[str]:
    return sorted(field.name.upper() for schema in schemas for field in dataclasses.fields(schema))


@pytest.mark.parametrize(
    ("group", "schemas"),
    [
        ("ARTIFACTS", (ArtifactSettings,)),
        ("REGISTRY", (RegistrySettings, AccountSettings)),
        ("WEBHOOKS", (WebhookSettings,)),
        ("PROVENANCE", (ProvenanceSettings,)),
    ],
)
def test_every_key_of_a_group_has_exactly_one_typed_field(group, schemas):
    """A key config/settings.py writes but no object reads would be read raw, or not at all."""
    assert _keys(*schemas) == sorted(getattr(django_settings, group))


def test_the_objects_hold_the_settings_values():
    raw = django_settings.ARTIFACTS
    artifacts = artifact_settings()
    assert artifacts.mode == raw["MODE"]
    assert artifacts.file_source_roots == tuple(raw["FILE_SOURCE_ROOTS"])
    assert artifacts.upload_ttl == raw["UPLOAD_TTL"]
    assert artifacts.server_side_copy is raw["SERVER_SIDE_COPY"]
    accounts = account_settings()
    assert accounts.default_permission_level == django_settings.REGISTRY["DEFAULT_PERMISSION_LEVEL"]
    assert accounts.login_failure_limit == django_settings.REGISTRY["LOGIN_FAILURE_LIMIT"]
    limits = registry_settings()
    assert limits.max_results_model_versions == 200_000
    assert webhook_settings().max_attempts == django_settings.WEBHOOKS["MAX_ATTEMPTS"]


def test_a_replaced_dict_is_read_afresh_and_the_original_again_after(settings):
    original = artifact_settings()
    assert artifact_settings() is original  # parsed once per dict
    with override_settings(ARTIFACTS={**settings.ARTIFACTS, "UPLOAD_TTL": 60}):
        assert artifact_settings().upload_ttl == 60
    assert artifact_settings() == original
    settings.REGISTRY = {**settings.REGISTRY, "TRUSTED_PROXY_COUNT": 3}
    assert account_settings().trusted_proxy_count == 3
    assert registry_settings().max_results_registered_models == 1000


def test_a_missing_key_is_named(settings):
    settings.REGISTRY = {
        key: value for key, value in settings.REGISTRY.items() if key != "TOKEN_CREATE_LIMIT"
    }
    with pytest.raises(ImproperlyConfigured, match=r"settings\.REGISTRY lacks TOKEN_CREATE_LIMIT"):
        account_settings()
    # The registry's own keys are all there: its object still reads.
    assert registry_settings().max_results_registered_models == 1000


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("SERVER_SIDE_COPY", "false", "a boolean"),
        ("UPLOAD_TTL", 3600.5, "an integer"),
        ("UPLOAD_TTL", True, "an integer"),
        ("REGISTRATION_WAIT", "2", "a number"),
        ("MLFLOW_TRACKING_SERVER_URL", None, "a string"),
        ("MODE", "mirror", "one of copy, reference"),
        ("S3_ADDRESSING_STYLE", "host", "one of path, virtual, auto"),
        ("FILE_SOURCE_ROOTS", "/srv/models", "a list"),
        ("FILE_SOURCE_ROOTS", ["/srv/models", 7], "a list whose every item is a string"),
    ],
)
def test_a_value_of_another_type_is_refused(settings, key, value, expected):
    settings.ARTIFACTS = {**settings.ARTIFACTS, key: value}
    with pytest.raises(ImproperlyConfigured) as refused:
        artifact_settings()
    assert str(refused.value) == (
        f"settings.ARTIFACTS[{key!r}] is {value!r}, which is not {expected}."
    )


def test_an_integer_is_taken_where_a_number_is_expected(settings):
    settings.ARTIFACTS = {**settings.ARTIFACTS, "REGISTRATION_WAIT": 0}
    assert artifact_settings().registration_wait == 0.0
    assert isinstance(artifact_settings().registration_wait, float)


def test_the_webhook_fields_keep_their_own_parsing(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_SCHEMES": [" HTTPS "]}
    assert webhook_settings().allowed_schemes == ("https",)
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_SCHEMES": ["ftp"]}
    with pytest.raises(ImproperlyConfigured, match="WEBHOOKS_ALLOWED_SCHEMES: ftp not supported"):
        webhook_settings()
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_SCHEMES": ["https"]}
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_NETWORKS": ["10.0.0.0/8", "nope"]}
    with pytest.raises(ImproperlyConfigured, match="'nope' is not a CIDR network"):
        webhook_settings()
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_NETWORKS": "10.0.0.0/8"}
    with pytest.raises(ImproperlyConfigured, match="which is not a list"):
        webhook_settings()


def test_a_group_is_declared_with_a_frozen_dataclass_of_known_types():
    @dataclasses.dataclass
    class Mutable:
        limit: int

    @dataclasses.dataclass(frozen=True)
    class Odd:
        limit: dict[str, int]

    with pytest.raises(TypeError, match="not a frozen dataclass"):
        SettingsGroup("REGISTRY", Mutable)
    with pytest.raises(TypeError, match="no converter"):
        SettingsGroup("REGISTRY", Odd)
    with pytest.raises(TypeError, match="has no field other"):
        SettingsGroup("REGISTRY", Odd, convert={"limit": dict, "other": int})
    group = SettingsGroup("REGISTRY", Odd, convert={"limit": lambda value: {"n": value}})
    assert group.parse({"LIMIT": 3}) == Odd(limit={"n": 3})


SUBSCRIPT = re.compile(r"settings\s*\.\s*(ARTIFACTS|REGISTRY|WEBHOOKS)\b|\"(ARTIFACTS|WEBHOOKS)\"")


def test_no_app_reads_a_group_by_subscript():
    """The typed objects are the only readers: a raw read would skip the checks above."""
    offenders = []
    for app in ("accounts", "kernel", "registry", "ui", "webhooks"):
        for path in sorted((ROOT / app).rglob("*.py")):
            if path.name == "conf.py" or "migrations" in path.parts:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if SUBSCRIPT.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []
