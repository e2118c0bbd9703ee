"""The ``ARTIFACTS`` settings, read through one typed object (``artifact_settings()``).

Every default, environment variable and check is in config/settings.py (``ARTIFACT_*`` and
``MLFLOW_TRACKING_SERVER_*``, listed in docs/configuration.md); this module only declares the
types (kernel/conf.py). Sizes are in bytes, times in seconds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from kernel.conf import SettingsGroup


@dataclass(frozen=True)
class ArtifactSettings:
    mode: Literal["copy", "reference"]
    file_source_roots: tuple[str, ...]
    mlflow_tracking_server_url: str
    mlflow_tracking_server_token: str
    registration_wait: float
    copy_max_retries: int
    copy_retry_backoff: float
    copy_retry_backoff_max: float
    copy_concurrency: int
    multipart_chunk_size: int
    multipart_concurrency: int
    server_side_copy: bool
    s3_addressing_style: Literal["path", "virtual", "auto"]
    sweep_interval: float
    upload_ttl: int


_ARTIFACTS = SettingsGroup("ARTIFACTS", ArtifactSettings)


def artifact_settings() -> ArtifactSettings:
    """The current settings. Parsed again whenever ``settings.ARTIFACTS`` is another object
    (``override_settings`` and the ``settings`` fixture replace it)."""
    return _ARTIFACTS.get()
