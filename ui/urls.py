"""Routes of the web UI (namespace ``ui``), mounted at the site's root."""

from django.contrib.auth import views as auth_views
from django.urls import path

from ui.views import aliases, editing, models, tokens, transition_requests, versions, webhooks
from ui.views.base import SignOutView

app_name = "ui"

urlpatterns = [
    path("", models.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", SignOutView.as_view(), name="logout"),
    path("models/", models.model_list, name="model-list"),
    path("models/<str:name>/", models.model_detail, name="model-detail"),
    path("models/<str:name>/permissions", models.model_grant, name="model-grant"),
    path("models/<str:name>/policies", models.model_policy, name="model-policy"),
    path(
        "models/<str:name>/permissions/remove", models.model_grant_remove, name="model-grant-remove"
    ),
    path("models/<str:name>/description", editing.model_description, name="model-description"),
    path("models/<str:name>/tags", editing.model_tag_set, name="model-tag-set"),
    path("models/<str:name>/tags/delete", editing.model_tag_delete, name="model-tag-delete"),
    path("models/<str:name>/rename", editing.model_rename, name="model-rename"),
    path("models/<str:name>/delete", editing.model_delete, name="model-delete"),
    path("models/<str:name>/compare", versions.version_compare, name="version-compare"),
    path("models/<str:name>/aliases", aliases.alias_move, name="alias-move"),
    path("models/<str:name>/aliases/<str:alias>/delete", editing.alias_delete, name="alias-delete"),
    path(
        "models/<str:name>/aliases/<str:alias>/rollback",
        aliases.alias_rollback,
        name="alias-rollback",
    ),
    path(
        "models/<str:name>/aliases/<str:alias>/requests/<int:version>/<str:code>/<str:decision>",
        aliases.alias_request_decide,
        name="alias-request-decide",
    ),
    path(
        "models/<str:name>/versions/<int:version>/", versions.version_detail, name="version-detail"
    ),
    path(
        "models/<str:name>/versions/<int:version>/transition",
        versions.version_transition,
        name="version-transition",
    ),
    path(
        "models/<str:name>/versions/<int:version>/description",
        editing.version_description,
        name="version-description",
    ),
    path(
        "models/<str:name>/versions/<int:version>/tags",
        editing.version_tag_set,
        name="version-tag-set",
    ),
    path(
        "models/<str:name>/versions/<int:version>/tags/delete",
        editing.version_tag_delete,
        name="version-tag-delete",
    ),
    path(
        "models/<str:name>/versions/<int:version>/delete",
        editing.version_delete,
        name="version-delete",
    ),
    path(
        "models/<str:name>/versions/<int:version>/retry-registration",
        versions.version_registration_retry,
        name="version-registration-retry",
    ),
    path(
        "models/<str:name>/versions/<int:version>/requests/<str:code>/<str:decision>",
        transition_requests.request_decide,
        name="request-decide",
    ),
    path(
        "models/<str:name>/versions/<int:version>/comments",
        versions.comment_create,
        name="comment-create",
    ),
    path(
        "models/<str:name>/versions/<int:version>/comments/<str:code>/edit",
        versions.comment_edit,
        name="comment-edit",
    ),
    path(
        "models/<str:name>/versions/<int:version>/comments/<str:code>/delete",
        versions.comment_delete,
        name="comment-delete",
    ),
    path("waiting/", transition_requests.waiting, name="waiting"),
    path("my-requests/", transition_requests.my_requests, name="my-requests"),
    path(
        "my-requests/notifications",
        transition_requests.email_notifications,
        name="email-notifications",
    ),
    path("webhooks/", webhooks.webhook_list, name="webhook-list"),
    path("webhooks/new/", webhooks.webhook_new, name="webhook-new"),
    path("webhooks/create", webhooks.webhook_create, name="webhook-create"),
    path("webhooks/<str:code>/", webhooks.webhook_detail, name="webhook-detail"),
    path("webhooks/<str:code>/edit", webhooks.webhook_edit, name="webhook-edit"),
    path("webhooks/<str:code>/test", webhooks.webhook_test, name="webhook-test"),
    path("webhooks/<str:code>/status", webhooks.webhook_status, name="webhook-status"),
    path(
        "webhooks/<str:code>/deliveries/<str:delivery_code>/redeliver",
        webhooks.delivery_redeliver,
        name="delivery-redeliver",
    ),
    path("tokens/", tokens.tokens, name="tokens"),
    path("tokens/<str:code>/revoke", tokens.token_revoke, name="token-revoke"),
]
