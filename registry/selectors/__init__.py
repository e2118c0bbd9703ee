"""Reads of the registry. Every list is paged and runs a fixed number of queries.

Objects returned for output carry what the serializers need, as plain lists: ``tag_list``,
``alias_list`` and, on registered models, ``latest_versions`` (the highest version in each
stage). The public functions take the reader as ``actor`` and show only what
``accounts.permissions`` lets them read; ``registered_model_by_name`` and
``model_version_by_number`` are the unchecked lookups the services use before their own,
stricter checks.

One module per part of the registry; this package gives their public functions one name
space, so callers write ``selectors.model_version_get(...)``:

- ``registered_models``: registered models by name, for output, and their search.
- ``versions``: versions by number and by alias, the latest per stage, their search, the
  download URI, the activity trail, a model's newest versions.
- ``policies``: the stage policies in force (a model's own under the registry-wide floor).
- ``transition_requests``: open requests and what the caller may do with one.
- ``comments``: a version's comments and what the caller may do with one.
- ``documents``: the hot reads of the protocol as their JSON, each in one statement.
- ``common``: what the others share (the plain lists for output, the read check, a search
  page).
"""

from registry.selectors.comments import comment_available_actions, model_version_comments
from registry.selectors.common import with_tags_and_aliases_of
from registry.selectors.policies import (
    gate_tag_keepers,
    stage_policies_effective,
    stage_policies_effective_many,
    stage_policies_in_force,
    stage_policy_effective,
)
from registry.selectors.registered_models import (
    registered_model_by_name,
    registered_model_detail,
    registered_model_get,
    registered_model_search,
    registered_model_search_documents,
)
from registry.selectors.transition_requests import (
    request_available_actions,
    transition_request_by_code,
    transition_requests_by,
    transition_requests_closed_as_approved,
    transition_requests_open,
    transition_requests_open_readable,
)
from registry.selectors.versions import (
    model_version_activities,
    model_version_by_number,
    model_version_download_uri,
    model_version_get,
    model_version_get_by_alias,
    model_version_latest,
    model_version_neighbours,
    model_version_pair,
    model_version_search,
    model_version_search_documents,
    model_version_tag_changes,
    model_versions_newest,
)

__all__ = [
    "comment_available_actions",
    "gate_tag_keepers",
    "model_version_activities",
    "model_version_tag_changes",
    "model_version_by_number",
    "model_version_comments",
    "model_version_download_uri",
    "model_version_get",
    "model_version_get_by_alias",
    "model_version_latest",
    "model_version_neighbours",
    "model_version_pair",
    "model_version_search",
    "model_version_search_documents",
    "model_versions_newest",
    "registered_model_by_name",
    "registered_model_detail",
    "registered_model_get",
    "registered_model_search",
    "registered_model_search_documents",
    "request_available_actions",
    "stage_policies_effective",
    "stage_policies_effective_many",
    "stage_policies_in_force",
    "stage_policy_effective",
    "transition_request_by_code",
    "transition_requests_by",
    "transition_requests_closed_as_approved",
    "transition_requests_open",
    "transition_requests_open_readable",
    "with_tags_and_aliases_of",
]
