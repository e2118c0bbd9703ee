"""Routes of the MLflow Model Registry protocol, relative to ``/api/2.0/mlflow/``."""

from django.urls import path

from registry import apis

urlpatterns = [
    path("registered-models/create", apis.RegisteredModelCreateApi.as_view()),
    path("registered-models/get", apis.RegisteredModelGetApi.as_view()),
    path("registered-models/rename", apis.RegisteredModelRenameApi.as_view()),
    path("registered-models/update", apis.RegisteredModelUpdateApi.as_view()),
    path("registered-models/delete", apis.RegisteredModelDeleteApi.as_view()),
    path("registered-models/search", apis.RegisteredModelSearchApi.as_view()),
    path("registered-models/list", apis.RegisteredModelSearchApi.as_view()),
    path(
        "registered-models/get-latest-versions",
        apis.RegisteredModelLatestVersionsApi.as_view(),
    ),
    path("registered-models/set-tag", apis.RegisteredModelTagSetApi.as_view()),
    path("registered-models/delete-tag", apis.RegisteredModelTagDeleteApi.as_view()),
    path("registered-models/alias", apis.RegisteredModelAliasApi.as_view()),
    path("model-versions/create", apis.ModelVersionCreateApi.as_view()),
    path("model-versions/get", apis.ModelVersionGetApi.as_view()),
    path("model-versions/update", apis.ModelVersionUpdateApi.as_view()),
    path("model-versions/delete", apis.ModelVersionDeleteApi.as_view()),
    path("model-versions/transition-stage", apis.ModelVersionTransitionStageApi.as_view()),
    path("model-versions/search", apis.ModelVersionSearchApi.as_view()),
    path("model-versions/get-download-uri", apis.ModelVersionDownloadUriApi.as_view()),
    path("model-versions/set-tag", apis.ModelVersionTagSetApi.as_view()),
    path("model-versions/delete-tag", apis.ModelVersionTagDeleteApi.as_view()),
]
