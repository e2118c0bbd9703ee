"""The output serializers render their declared fields in plain Python (``represent``) for
speed; each must give exactly what DRF's generic rendering of the same declared fields gives,
so the OpenAPI schema (built from the declarations) stays the truth."""

from __future__ import annotations

import pytest
from rest_framework import serializers

from kernel.api import DirectRepresentation
from registry import apis, selectors, services
from registry.models import Stage
from registry.workflow_apis import ModelVersionDatabricksSerializer

pytestmark = pytest.mark.django_db


def generic(serializer_class: type[serializers.Serializer], instance, **kwargs) -> dict:
    """What DRF renders for the declared fields, without ``represent``."""
    return serializers.Serializer.to_representation(serializer_class(**kwargs), instance)


@pytest.fixture
def model(user):
    services.registered_model_create(
        actor=user,
        name="fraud",
        description="Finds fraud",
        tags=[{"key": "team", "value": "risk"}, {"key": "empty", "value": ""}],
    )
    for number in (1, 2, 3):
        services.model_version_create(
            actor=user,
            name="fraud",
            source=f"s3://bucket/fraud/{number}",
            run_id=f"run-{number}",
            description=f"v{number}",
            tags=[{"key": "dataset", "value": f"ds-{number}"}],
        )
    services.model_version_stage_transition(
        actor=user, name="fraud", version=2, stage="staging", archive_existing_versions=False
    )
    services.registered_model_alias_set(actor=user, name="fraud", alias="champion", version=2)
    services.registered_model_alias_set(actor=user, name="fraud", alias="beta", version=3)
    return selectors.registered_model_detail(actor=user, name="fraud")


def test_registered_model(model):
    assert len(model.latest_versions) == 2
    rendered = apis.RegisteredModelSerializer(model).data
    assert rendered == generic(apis.RegisteredModelSerializer, model)
    assert [alias["alias"] for alias in rendered["aliases"]] == ["beta", "champion"]
    assert {tag["key"] for tag in rendered["tags"]} == {"team", "empty"}
    assert rendered["latest_versions"][0]["version"] == "2"


def test_model_version(user, model):
    version = selectors.model_version_get(actor=user, name="fraud", version=2)
    rendered = apis.ModelVersionSerializer(version).data
    assert rendered == generic(apis.ModelVersionSerializer, version)
    assert rendered["aliases"] == ["champion"]
    assert rendered["current_stage"] == Stage.STAGING
    assert rendered["tags"] == [{"key": "dataset", "value": "ds-2"}]


def test_just_written_version_renders_choice_values_as_strings(user, model):
    version = services.model_version_create(actor=user, name="fraud", source="s3://bucket/f/4")
    version = selectors.model_version_get(actor=user, name="fraud", version=version.version)
    version.current_stage = Stage.PRODUCTION  # a TextChoices member, as a service leaves it
    rendered = apis.ModelVersionSerializer(version).data
    assert rendered == generic(apis.ModelVersionSerializer, version)
    assert type(rendered["current_stage"]) is str


def test_latest_versions_list(user, model):
    versions = selectors.model_version_latest(actor=user, name="fraud")
    assert [v.version for v in versions] == [2, 3]
    rendered = apis.ModelVersionSerializer(versions, many=True).data
    assert rendered == [generic(apis.ModelVersionSerializer, v) for v in versions]


def test_subclass_fields_still_render(user, model):
    """The Databricks variants add fields on top; those render through DRF as before."""
    version = selectors.model_version_get(actor=user, name="fraud", version=3)
    context = {"actor": user}
    rendered = ModelVersionDatabricksSerializer(version, context=context).data
    assert rendered == generic(ModelVersionDatabricksSerializer, version, context=context)
    assert rendered["permission_level"] == "CAN_MANAGE"
    databricks = apis.DatabricksRegisteredModelSerializer(model, context=context).data
    assert databricks == generic(apis.DatabricksRegisteredModelSerializer, model, context=context)
    assert databricks["id"] == model.code.hex


def _all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_direct_serializer_is_checked_here():
    """A new serializer with a ``represent`` must get a parity check in this file."""
    checked = {
        apis.TagSerializer,  # inside every model and version above
        apis.RegisteredModelAliasSerializer,  # inside the registered model
        apis.ModelVersionSummarySerializer,  # its latest_versions
        apis.ModelVersionSerializer,
        apis.RegisteredModelSerializer,
        apis.DatabricksRegisteredModelSerializer,
        ModelVersionDatabricksSerializer,
    }
    assert _all_subclasses(DirectRepresentation) == checked
