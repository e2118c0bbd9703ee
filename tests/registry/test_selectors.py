"""What the read selectors attach to the objects they return, and the alias lookup."""

from __future__ import annotations

import pytest

from kernel.errors import RegistryError
from registry import selectors, services

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_models(user):
    """Models ``a`` and ``b`` with three versions each; both have an alias ``champion``
    (a → 2, b → 3), every version has its own tags, ``a`` a model tag."""
    for name in ("a", "b"):
        services.registered_model_create(
            actor=user, name=name, tags=[{"key": "owner", "value": f"team-{name}"}]
        )
        for number in range(1, 4):
            services.model_version_create(
                actor=user,
                name=name,
                source=f"s3://b/{name}/{number}",
                tags=[
                    {"key": "n", "value": str(number)},
                    {"key": "model", "value": name},
                ],
            )
    services.registered_model_alias_set(actor=user, name="a", alias="champion", version="2")
    services.registered_model_alias_set(actor=user, name="b", alias="champion", version="3")
    services.registered_model_alias_set(actor=user, name="b", alias="beta", version="3")


def test_each_version_gets_its_own_tags_and_aliases(user, two_models, django_assert_num_queries):
    page, _ = selectors.model_version_search(actor=user, order_by=["name", "version_number"])
    with django_assert_num_queries(0):
        got = [
            (
                version.registered_model.name,
                version.version,
                [(tag.key, tag.value) for tag in version.tag_list],
                [alias.alias for alias in version.alias_list],
            )
            for version in page
        ]
    assert got == [
        ("a", 1, [("n", "1"), ("model", "a")], []),
        ("a", 2, [("n", "2"), ("model", "a")], ["champion"]),
        ("a", 3, [("n", "3"), ("model", "a")], []),
        ("b", 1, [("n", "1"), ("model", "b")], []),
        ("b", 2, [("n", "2"), ("model", "b")], []),
        ("b", 3, [("n", "3"), ("model", "b")], ["beta", "champion"]),
    ]
    assert page[0].tags.count() == 2
    assert page[0].tags.exists()
    assert not page[0].aliases.exists()


def test_the_relations_stay_django_s_own(user, two_models):
    """The selectors attach plain lists beside the relations: a query on a relation reads the
    database, limited to its owner, as on any object."""
    page, _ = selectors.model_version_search(actor=user, filter_string="name = 'b'")
    version_3 = next(version for version in page if version.version == 3)
    assert dict(version_3.tags.values_list("key", "value")) == {"n": "3", "model": "b"}
    assert [tag.value for tag in version_3.tags.filter(key="n")] == ["3"]
    assert [alias.alias for alias in version_3.aliases.all()] == ["beta", "champion"]
    assert list(version_3.aliases.order_by("-alias").values_list("alias", flat=True)) == [
        "champion",
        "beta",
    ]
    models, _ = selectors.registered_model_search(actor=user, filter_string="name = 'a'")
    assert list(models[0].aliases.values_list("alias", flat=True)) == ["champion"]
    assert models[0].tags.get(key="owner").value == "team-a"


def test_registered_models_get_their_own_tags_aliases_and_latest_versions(
    user, two_models, django_assert_num_queries
):
    page, _ = selectors.registered_model_search(actor=user)
    with django_assert_num_queries(0):
        got = [
            (
                model.name,
                [(tag.key, tag.value) for tag in model.tag_list],
                [(alias.alias, alias.model_version.version) for alias in model.alias_list],
                [(mv.version, [tag.value for tag in mv.tag_list]) for mv in model.latest_versions],
            )
            for model in page
        ]
    assert got == [
        ("a", [("owner", "team-a")], [("champion", 2)], [(3, ["3", "a"])]),
        ("b", [("owner", "team-b")], [("beta", 3), ("champion", 3)], [(3, ["3", "b"])]),
    ]


def test_an_alias_is_looked_up_in_its_own_model(user, two_models):
    for name, alias, number in (("a", "champion", 2), ("b", "champion", 3), ("b", "beta", 3)):
        version = selectors.model_version_get_by_alias(actor=user, name=name, alias=alias)
        assert (version.registered_model.name, version.version) == (name, number)
    # "beta" exists on b only.
    with pytest.raises(RegistryError, match="Registered model alias beta not found."):
        selectors.model_version_get_by_alias(actor=user, name="a", alias="beta")
    latest = selectors.model_version_get_by_alias(actor=user, name="a", alias="latest")
    assert (latest.version, [tag.value for tag in latest.tag_list]) == (3, ["3", "a"])
