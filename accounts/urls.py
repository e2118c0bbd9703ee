"""Routes of the accounts API, relative to ``/api/2.0/``."""

from django.urls import path

from accounts import apis

urlpatterns = [
    path("registry/tokens/create", apis.ApiTokenCreateApi.as_view()),
    path("registry/tokens/list", apis.ApiTokenListApi.as_view()),
    path("registry/tokens/revoke", apis.ApiTokenRevokeApi.as_view()),
    path(
        "permissions/registered-models/<str:model_id>/permissionLevels",
        apis.RegisteredModelPermissionLevelsApi.as_view(),
    ),
    path(
        "permissions/registered-models/<str:model_id>",
        apis.RegisteredModelPermissionsApi.as_view(),
    ),
]
