"""``s3://`` sources: any bucket the service's own credentials can read, never the registry's
store; also the store's own folders when the store is S3 (:mod:`.store`)."""

from __future__ import annotations

from typing import IO

from kernel.errors import RegistryError
from registry.artifacts import paths
from registry.artifacts.errors import SourceError
from registry.artifacts.sources.base import (
    STORE_REFUSAL,
    ListedSource,
    SourceFile,
    clean_member,
    invalid_source,
    overlaps_store,
)
from registry.artifacts.storage import ClassifiedStreamingBody, s3_client, storage_error


def validate_s3_source(source: str, bucket: str, key: str) -> None:
    if not bucket:
        raise invalid_source(source, "it names no bucket.")
    if key.strip("/"):
        try:
            paths.clean_relative_path(key.lstrip("/").rstrip("/"), what="source path")
        except RegistryError as exc:
            raise invalid_source(source, exc.message) from None
    if overlaps_store(bucket, key):
        raise invalid_source(source, STORE_REFUSAL)


class S3Source(ListedSource):
    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.description = f"s3://{bucket}/{self.prefix}"
        self._single_object = False  # the source names one object, not a folder

    def _list_files(self) -> list[SourceFile]:
        client = s3_client()
        found: list[SourceFile] = []
        list_prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            for page in client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=list_prefix
            ):
                for item in page.get("Contents", []):
                    if item["Key"].endswith("/"):
                        continue
                    relative = clean_member(self.description, item["Key"][len(list_prefix) :])
                    found.append(SourceFile(relative, int(item["Size"]), item["ETag"]))
            if not found and self.prefix:
                head = client.head_object(Bucket=self.bucket, Key=self.prefix)
                name = self.prefix.rsplit("/", 1)[-1]
                found.append(SourceFile(name, int(head["ContentLength"]), head["ETag"]))
                self._single_object = True
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            error = storage_error(exc, f"Source {self.description}")
            if isinstance(error, SourceError) and "does not exist" in error.message:
                raise SourceError(
                    f"Source {self.description} does not exist or holds no files."
                ) from exc
            raise error from exc
        return found

    def key(self, file: SourceFile) -> str:
        if self._single_object:
            return self.prefix
        return "/".join(part for part in (self.prefix, file.path) if part)

    def open(self, file: SourceFile) -> IO[bytes]:
        key = self.key(file)
        what = f"Source file s3://{self.bucket}/{key}"
        extra = {"IfMatch": file.etag} if file.etag else {}
        try:
            response = s3_client().get_object(Bucket=self.bucket, Key=key, **extra)
        except Exception as exc:  # noqa: BLE001 - classified, re-raised
            raise storage_error(exc, what) from exc
        # Only read: IO's other methods are never called (docs/decisions/0014).
        return ClassifiedStreamingBody(response["Body"], what)  # type: ignore[abstract]
