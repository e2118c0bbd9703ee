"""Routes of the artifact endpoints (``/api/2.0/mlflow-artifacts/``) and of the managed-copy
extensions (``/api/2.0/registry/``): the manifest and the retry of a failed registration."""

from django.urls import path

from registry import artifact_apis

mlflow_artifacts_urlpatterns = [
    path("artifacts", artifact_apis.ArtifactListApi.as_view(), name="artifacts-root"),
    path("artifacts/<path:path>", artifact_apis.ArtifactApi.as_view(), name="artifact"),
]

registry_urlpatterns = [
    path("model-versions/manifest", artifact_apis.ModelVersionManifestApi.as_view()),
    path(
        "model-versions/retry-registration",
        artifact_apis.ModelVersionRegistrationRetryApi.as_view(),
    ),
]
