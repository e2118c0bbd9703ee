"""Routes of the web UI (namespace ``ui``), mounted at the site's root."""

from django.contrib.auth import views as auth_views
from django.urls import path

from ui import alias_views, views

app_name = "ui"

urlpatterns = [
    path("", views.home, name="home"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("models/", views.model_list, name="model-list"),
    path("models/<str:name>/", views.model_detail, name="model-detail"),
    path("models/<str:name>/permissions", views.model_grant, name="model-grant"),
    path("models/<str:name>/policies", views.model_policy, name="model-policy"),
    path("models/<str:name>/aliases", alias_views.alias_move, name="alias-move"),
    path(
        "models/<str:name>/aliases/<str:alias>/rollback",
        alias_views.alias_rollback,
        name="alias-rollback",
    ),
    path(
        "models/<str:name>/aliases/<str:alias>/requests/<int:version>/<str:code>/<str:decision>",
        alias_views.alias_request_decide,
        name="alias-request-decide",
    ),
    path("models/<str:name>/versions/<int:version>/", views.version_detail, name="version-detail"),
    path(
        "models/<str:name>/versions/<int:version>/transition",
        views.version_transition,
        name="version-transition",
    ),
    path(
        "models/<str:name>/versions/<int:version>/retry-registration",
        views.version_registration_retry,
        name="version-registration-retry",
    ),
    path(
        "models/<str:name>/versions/<int:version>/requests/<str:code>/<str:decision>",
        views.request_decide,
        name="request-decide",
    ),
    path(
        "models/<str:name>/versions/<int:version>/comments",
        views.comment_create,
        name="comment-create",
    ),
    path(
        "models/<str:name>/versions/<int:version>/comments/<str:code>/edit",
        views.comment_edit,
        name="comment-edit",
    ),
    path(
        "models/<str:name>/versions/<int:version>/comments/<str:code>/delete",
        views.comment_delete,
        name="comment-delete",
    ),
    path("waiting/", views.waiting, name="waiting"),
    path("webhooks/", views.webhook_list, name="webhook-list"),
    path("webhooks/<str:code>/", views.webhook_detail, name="webhook-detail"),
    path(
        "webhooks/<str:code>/deliveries/<str:delivery_code>/redeliver",
        views.delivery_redeliver,
        name="delivery-redeliver",
    ),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<str:code>/revoke", views.token_revoke, name="token-revoke"),
]
