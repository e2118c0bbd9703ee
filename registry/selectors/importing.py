"""Reads of the import runs started from the API (docs/migrating.md): admins only."""

from __future__ import annotations

import uuid
from typing import Any

from accounts import permissions
from kernel.errors import RegistryError
from registry.models import ImportRun


def import_run_get(*, actor: Any, run_id: Any) -> ImportRun:
    permissions.require_can_import(actor)
    try:
        code = uuid.UUID(str(run_id))
    except ValueError:
        raise RegistryError.invalid(f"'{run_id}' is not an import run id.") from None
    try:
        return ImportRun.objects.get(code=code)
    except ImportRun.DoesNotExist:
        raise RegistryError.not_found(f"Import run '{run_id}' not found.") from None
