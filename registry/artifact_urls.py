"""Routes of the artifact endpoints (``/api/2.0/mlflow-artifacts/``) and of the manifest
extension (``/api/2.0/registry/``)."""

from django.urls import path

from registry import artifact_apis

mlflow_artifacts_urlpatterns = [
    path("artifacts", artifact_apis.ArtifactListApi.as_view(), name="artifacts-root"),
    path("artifacts/<path:path>", artifact_apis.ArtifactApi.as_view(), name="artifact"),
]

registry_urlpatterns = [
    path("model-versions/manifest", artifact_apis.ModelVersionManifestApi.as_view()),
]
