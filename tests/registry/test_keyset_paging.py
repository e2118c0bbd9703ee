"""Search pages that continue after the last row of the page before (keyset paging).

A search's next_page_token carries the sort values of the page's last row as well as the
offset; the next page starts after that row. Tokens with only an offset (older ones, the
reference server's) still page by offset.
"""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from kernel.errors import RegistryError
from kernel.paging import encode_page_token
from registry import selectors
from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

START = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def versions(db):
    """Three models with four versions each; many versions share an update time, so the pages
    are decided by the tie-breakers (name, then version)."""
    for index, name in enumerate(["c", "a", "b"]):
        model = RegisteredModel.objects.create(
            name=name, updated_at=START + dt.timedelta(minutes=index % 2)
        )
        for number in range(1, 5):
            ModelVersion.objects.create(
                registered_model=model,
                version=number,
                source=f"s3://b/{name}/{number}",
                updated_at=START + dt.timedelta(minutes=number % 2),
                created_at=START + dt.timedelta(minutes=number),
            )


def walk(search, page_size, between_pages=None, **kwargs):
    """Every page of a search; ``between_pages(n)`` runs after page ``n`` is read."""
    pages, token = [], None
    while True:
        page, token = search(max_results=page_size, page_token=token, **kwargs)
        pages.append(page)
        if between_pages:
            between_pages(len(pages))
        if not token:
            return pages


def keys(rows):
    return [(row.registered_model.name, row.version) for row in rows]


def search_versions(admin, **kwargs):
    return selectors.model_version_search(actor=admin, **kwargs)


@pytest.fixture
def admin(django_user_model):
    return django_user_model.objects.create_superuser(username="root", password="x" * 20)


@pytest.mark.parametrize(
    "order_by",
    [
        None,
        ["name"],
        ["name DESC", "version_number"],
        ["version_number DESC"],
        ["creation_timestamp"],
        ["last_updated_timestamp", "version_number DESC"],
    ],
)
@pytest.mark.parametrize("page_size", [1, 2, 5, 12, 13])
def test_pages_walk_the_whole_order_once(admin, versions, order_by, page_size):
    everything, token = search_versions(admin, order_by=order_by, max_results=100)
    assert token == ""
    assert len(everything) == 12
    pages = walk(lambda **kw: search_versions(admin, **kw), page_size, order_by=order_by)
    assert [keys(page) for page in pages if page] == [
        keys(everything[i : i + page_size]) for i in range(0, 12, page_size)
    ]


def test_registered_model_pages_with_equal_update_times(admin, versions):
    def search(**kwargs):
        return selectors.registered_model_search(actor=admin, **kwargs)

    for order_by, expected in (
        (None, ["a", "b", "c"]),
        # c and b share an update time: the name decides, ascending either way.
        (["last_updated_timestamp"], ["b", "c", "a"]),
        (["last_updated_timestamp DESC"], ["a", "b", "c"]),
    ):
        pages = walk(search, 1, order_by=order_by)
        assert [model.name for page in pages for model in page] == expected


def test_a_row_deleted_before_the_position_skips_nothing(admin, versions):
    """Offsets would shift by one and skip a row; the position does not."""
    everything, _ = search_versions(admin, order_by=["name", "version_number"])

    def delete_first_row(page_number):
        if page_number == 1:
            ModelVersion.objects.filter(pk=everything[0].pk).delete()

    pages = walk(
        lambda **kw: search_versions(admin, **kw),
        3,
        delete_first_row,
        order_by=["name", "version_number"],
    )
    assert [row.pk for page in pages for row in page] == [row.pk for row in everything]


def test_a_row_added_before_the_position_repeats_nothing(admin, versions):
    everything, _ = search_versions(admin, order_by=["name", "version_number"])

    def add_a_row_before(page_number):
        if page_number == 1:
            model = RegisteredModel.objects.create(name="0-first")
            ModelVersion.objects.create(registered_model=model, version=1, source="s3://b/0")

    pages = walk(
        lambda **kw: search_versions(admin, **kw),
        5,
        add_a_row_before,
        order_by=["name", "version_number"],
    )
    assert [row.pk for page in pages for row in page] == [row.pk for row in everything]


def test_a_deleted_last_row_still_marks_the_position(admin, versions):
    first, token = search_versions(admin, max_results=4)
    ModelVersion.objects.filter(pk=first[-1].pk).delete()
    second, _ = search_versions(admin, max_results=4, page_token=token)
    everything, _ = search_versions(admin, max_results=100)
    assert keys(second) == keys(everything[3:7])


def test_offset_tokens_still_page_by_offset(admin, versions):
    everything, _ = search_versions(admin, max_results=100)
    page, token = search_versions(admin, max_results=4, page_token=encode_page_token(5))
    assert keys(page) == keys(everything[5:9])
    # The reference server's own token text for offset 1.
    page, _ = search_versions(admin, max_results=2, page_token="eyJvZmZzZXQiOiAxfQ==")
    assert keys(page) == keys(everything[1:3])
    # The next token carries both: the offset for anyone who reads only that.
    assert json.loads(base64.b64decode(token))["offset"] == 9


def test_a_token_written_for_another_order_is_read_as_an_offset(admin, versions):
    _, token = search_versions(admin, max_results=3, order_by=["name"])
    by_version, _ = search_versions(admin, max_results=100, order_by=["version_number"])
    page, _ = search_versions(admin, max_results=3, order_by=["version_number"], page_token=token)
    assert keys(page) == keys(by_version[3:6])


def _token(payload) -> str:
    return base64.b64encode(json.dumps(payload).encode()).decode()


DEFAULT_ORDER = ["-updated_at", "registered_model__name", "-version", "pk"]


@pytest.mark.parametrize(
    "after",
    [
        ["2024-01-01T00:01:00+00:00", "a", 1],  # one value missing
        ["not a time", "a", 1, 1],
        ["2024-01-01T00:01:00+00:00", "a", "one", 1],
        ["2024-01-01T00:01:00+00:00", "a", 1, 1.5],
        ["2024-01-01T00:01:00+00:00", "a", True, 1],
        ["2024-01-01T00:01:00+00:00", None, 1, 1],
        ["2024-01-01T00:01:00+00:00", ["a"], 1, 1],
        ["2024-01-01T00:01:00+00:00", "a\x00", 1, 1],
        "a",
    ],
)
def test_tampered_positions_are_refused(admin, versions, after):
    token = _token({"offset": 3, "order": DEFAULT_ORDER, "after": after})
    with pytest.raises(RegistryError, match="Invalid page token"):
        search_versions(admin, max_results=3, page_token=token)


@pytest.mark.parametrize("huge", [2**40, 2**70, -(2**70)])
def test_out_of_range_numbers_in_a_position_are_answered(admin, versions, huge):
    token = _token(
        {"offset": 3, "order": DEFAULT_ORDER, "after": ["2024-01-01T00:01:00+00:00", "a", huge, 1]}
    )
    page, _ = search_versions(admin, max_results=3, page_token=token)
    assert all(isinstance(row, ModelVersion) for row in page)


def test_tokens_through_the_api(api, user, versions):
    """The token round-trips through the HTTP API and a name with any characters fits in it."""
    model = RegisteredModel.objects.create(name="é" * 200 + "😀" * 56)
    for number in (1, 2):
        ModelVersion.objects.create(registered_model=model, version=number, source="s3://b/x")
    seen, token = [], None
    while True:
        params = {"max_results": 1, "order_by": ["name DESC"]}
        if token:
            params["page_token"] = token
        response = api.get("/api/2.0/mlflow/model-versions/search", params)
        assert response.status_code == 200, response.content
        body = response.json()
        seen += [(mv["name"], mv["version"]) for mv in body["model_versions"]]
        token = body.get("next_page_token")
        if not token:
            break
    assert len(seen) == 14
    assert seen[:2] == [(model.name, "2"), (model.name, "1")]
    assert len(set(seen)) == 14
