"""The S3 → S3 copy itself (``copy_tree``), in this process, against the moto server: the
server-side path's guarantees (sha256 and sizes checked, the listed ETag pinned) and the
requests it sends."""

from __future__ import annotations

import hashlib
import os

import pytest

from registry.artifacts.copy import copy_tree
from registry.artifacts.errors import TransientError
from registry.artifacts.sources import S3Source
from registry.artifacts.storage import S3Store, s3_client
from tests.registry.artifacts.conftest import MIB, SOURCE_BUCKET, STORE_BUCKET

pytestmark = pytest.mark.real_artifact_copy


@pytest.fixture
def model(s3):
    """A source folder: one file above the 5 MiB chunk size (multipart) and small ones."""
    files = {
        "weights.bin": os.urandom(11 * MIB + 7),
        "config.json": b'{"a": 1}',
        "shards/a.bin": os.urandom(300_000),
        "shards/b.bin": b"",
    }
    for path, body in files.items():
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"m/{path}", Body=body)
    return files


def _requests(client) -> list[str]:
    calls: list[str] = []
    client.meta.events.register(
        "before-call.s3.*", lambda model, **kwargs: calls.append(model.name)
    )
    return calls


def test_server_side_copy_is_verified_and_sends_no_extra_requests(s3, model):
    calls = _requests(s3_client())
    manifest = copy_tree(S3Source(SOURCE_BUCKET, "m"), S3Store(STORE_BUCKET, "store"), "v/1")

    assert {entry.path: (entry.size, entry.sha256) for entry in manifest.files} == {
        path: (len(body), hashlib.sha256(body).hexdigest()) for path, body in model.items()
    }
    assert [entry.path for entry in manifest.files] == sorted(model)
    for path, body in model.items():
        assert s3.get_object(Bucket=STORE_BUCKET, Key=f"store/v/1/{path}")["Body"].read() == body
    # Per file one copy (the large one: a HeadObject for its metadata, then parts) and one
    # read to hash it; the stored sizes come from one listing, not a HeadObject per file.
    assert calls.count("GetObject") == len(model)
    assert calls.count("CopyObject") == len(model) - 1
    assert calls.count("UploadPartCopy") == 3
    assert calls.count("HeadObject") == 1
    assert calls.count("ListObjectsV2") == 2  # the source's listing and the copy's


def test_the_largest_file_starts_first(s3, model, monkeypatch):
    started: list[str] = []
    original = S3Store.copy_from

    def copy_from(self, **kwargs):
        started.append(kwargs["target"])
        return original(self, **kwargs)

    monkeypatch.setattr(S3Store, "copy_from", copy_from)
    copy_tree(S3Source(SOURCE_BUCKET, "m"), S3Store(STORE_BUCKET, "store"), "v/1")
    assert started[0] == "v/1/weights.bin"


def test_a_source_changed_after_listing_is_a_transient_failure(s3, model, monkeypatch):
    source = S3Source(SOURCE_BUCKET, "m")
    listed = source.files()
    for path in ("weights.bin", "config.json"):
        s3.put_object(Bucket=SOURCE_BUCKET, Key=f"m/{path}", Body=b"changed")
    monkeypatch.setattr(source, "files", lambda: listed)
    with pytest.raises(TransientError):
        copy_tree(source, S3Store(STORE_BUCKET, "store"), "v/1")


@pytest.mark.parametrize(
    ("listing", "head", "fails"),
    [
        ("missing", "right", False),  # a listing that lags: the object itself decides
        ("wrong", "right", False),
        ("wrong", "wrong", True),
        ("missing", "missing", True),
    ],
)
def test_stored_sizes_are_checked(s3, model, monkeypatch, listing, head, fails):
    store = S3Store(STORE_BUCKET, "store")
    walk, size = S3Store.walk, S3Store.size

    def changed(value, how):
        return None if how == "missing" else value + 1 if how == "wrong" else value

    def fake_walk(self, key):
        for path, stored in walk(self, key):
            if path != "weights.bin":
                yield path, stored
            elif listing != "missing":
                yield path, changed(stored, listing)

    def fake_size(self, key):
        stored = size(self, key)
        return changed(stored, head) if key.endswith("weights.bin") else stored

    monkeypatch.setattr(S3Store, "walk", fake_walk)
    monkeypatch.setattr(S3Store, "size", fake_size)
    if fails:
        with pytest.raises(TransientError, match="weights.bin: the store holds"):
            copy_tree(S3Source(SOURCE_BUCKET, "m"), store, "v/1")
    else:
        copy_tree(S3Source(SOURCE_BUCKET, "m"), store, "v/1")


def test_delete_prefix_aborts_multipart_uploads_left_under_it(s3):
    """A worker killed mid-transfer leaves a multipart upload: no listing of objects shows it,
    and S3 keeps (and bills) its parts until it is aborted. Clearing the folder aborts it,
    and only under that folder."""
    store = S3Store(STORE_BUCKET, "/store")
    s3.put_object(Bucket=STORE_BUCKET, Key="store/models/m/1/MLmodel", Body=b"x")
    left = {}
    for key in ("store/models/m/1/weights.bin", "store/models/m/10/weights.bin"):
        upload = s3.create_multipart_upload(Bucket=STORE_BUCKET, Key=key)
        s3.upload_part(
            Bucket=STORE_BUCKET, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"p" * 10
        )
        left[key] = upload["UploadId"]

    store.delete_prefix("models/m/1")

    uploads = s3.list_multipart_uploads(Bucket=STORE_BUCKET).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [
        ("store/models/m/10/weights.bin", left["store/models/m/10/weights.bin"])
    ]
    assert s3.list_objects_v2(Bucket=STORE_BUCKET, Prefix="store/").get("KeyCount") == 0
