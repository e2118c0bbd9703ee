"""Every change to the registry goes through one of these functions (docs/architecture.md,
"Layers").

Each takes the acting user first (``actor=``) and keyword-only arguments, validates its input,
and does its writes in one transaction. Changes of stage for one registered model serialise on
that model's row lock, and write the activity trail in the same transaction. Every function
asks ``accounts.permissions`` first, so the API, the UI, the admin and Celery tasks all obey the
same rules. Lookups answer 404 for a model that does not exist and 403 for one the actor may not
act on, before looking any further.

One module per part of the registry; this package gives their public functions one name
space, so callers write ``services.model_version_create(...)``:

- ``registered_models``: create, rename, describe, tag, delete a registered model.
- ``aliases``: set and delete aliases; the one place an alias moves; the deletion guard.
- ``alias_requests``: alias requests, their approvals, expiry, and rollbacks.
- ``alias_policies``: setting and deleting alias policies.
- ``history``: the history of aliases and stages.
- ``versions``: model versions and their tags.
- ``stages``: the stage engine (direct moves, archiving, the stage policies' refusals).
- ``transition_requests``: requests, approvals, rejections, cancellations, expiry.
- ``comments``: comments on versions.
- ``policies``: setting and deleting stage policies.
- ``common``: the row locks, the activity trail and the acting user, shared by the others.
- ``importing`` and ``import_run``: imports from another registry (docs/migrating.md); not
  re-exported, as only ``manage.py import_registry``, the import API and its task call them.
"""

from registry.services.alias_policies import alias_policy_delete, alias_policy_set
from registry.services.alias_requests import (
    alias_request_approve,
    alias_request_cancel,
    alias_request_create,
    alias_request_reject,
    alias_requests_expire,
    registered_model_alias_rollback,
)
from registry.services.aliases import registered_model_alias_delete, registered_model_alias_set
from registry.services.comments import comment_create, comment_delete, comment_update
from registry.services.policies import stage_policy_delete, stage_policy_set
from registry.services.registered_models import (
    registered_model_create,
    registered_model_delete,
    registered_model_rename,
    registered_model_tag_delete,
    registered_model_tag_set,
    registered_model_update,
)
from registry.services.stages import model_version_stage_transition
from registry.services.transition_requests import (
    transition_request_approve,
    transition_request_cancel,
    transition_request_create,
    transition_request_reject,
    transition_requests_expire,
)
from registry.services.versions import (
    model_version_create,
    model_version_delete,
    model_version_registration_retry,
    model_version_tag_delete,
    model_version_tag_set,
    model_version_update,
)

__all__ = [
    "alias_policy_delete",
    "alias_policy_set",
    "alias_request_approve",
    "alias_request_cancel",
    "alias_request_create",
    "alias_request_reject",
    "alias_requests_expire",
    "comment_create",
    "comment_delete",
    "comment_update",
    "model_version_create",
    "model_version_delete",
    "model_version_registration_retry",
    "model_version_stage_transition",
    "model_version_tag_delete",
    "model_version_tag_set",
    "model_version_update",
    "registered_model_alias_delete",
    "registered_model_alias_rollback",
    "registered_model_alias_set",
    "registered_model_create",
    "registered_model_delete",
    "registered_model_rename",
    "registered_model_tag_delete",
    "registered_model_tag_set",
    "registered_model_update",
    "stage_policy_delete",
    "stage_policy_set",
    "transition_request_approve",
    "transition_request_cancel",
    "transition_request_create",
    "transition_request_reject",
    "transition_requests_expire",
]
