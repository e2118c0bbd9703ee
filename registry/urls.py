"""Routes of the MLflow Model Registry protocol, relative to ``/api/2.0/mlflow/``."""

from django.urls import path

from registry import alias_apis, apis, import_apis, provenance_apis, workflow_apis

urlpatterns = [
    path("registered-models/create", apis.RegisteredModelCreateApi.as_view()),
    path("registered-models/get", apis.RegisteredModelGetApi.as_view()),
    path("registered-models/rename", apis.RegisteredModelRenameApi.as_view()),
    path("registered-models/update", apis.RegisteredModelUpdateApi.as_view()),
    path("registered-models/delete", apis.RegisteredModelDeleteApi.as_view()),
    path("registered-models/search", apis.RegisteredModelSearchApi.as_view()),
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
    # Databricks variants and the approval workflow
    path("databricks/registered-models/get", apis.DatabricksRegisteredModelGetApi.as_view()),
    path(
        "databricks/model-versions/transition-stage",
        workflow_apis.DatabricksTransitionStageApi.as_view(),
    ),
    path("transition-requests/create", workflow_apis.TransitionRequestCreateApi.as_view()),
    path("transition-requests/approve", workflow_apis.TransitionRequestApproveApi.as_view()),
    path("transition-requests/reject", workflow_apis.TransitionRequestRejectApi.as_view()),
    path("transition-requests/delete", workflow_apis.TransitionRequestDeleteApi.as_view()),
    path("transition-requests/list", workflow_apis.TransitionRequestListApi.as_view()),
    path("comments/create", workflow_apis.CommentCreateApi.as_view()),
    path("comments/update", workflow_apis.CommentUpdateApi.as_view()),
    path("comments/delete", workflow_apis.CommentDeleteApi.as_view()),
    path("model-versions/get-activities", workflow_apis.ModelVersionActivitiesApi.as_view()),
]

# The registry's own extensions, relative to /api/2.0/registry/.
registry_urlpatterns = [
    path("model-versions/activities", workflow_apis.ModelVersionActivitiesApi.as_view()),
    path("stage-policies/list", workflow_apis.StagePolicyListApi.as_view()),
    path("stage-policies/set", workflow_apis.StagePolicySetApi.as_view()),
    path("stage-policies/delete", workflow_apis.StagePolicyDeleteApi.as_view()),
    # Governed aliases (docs/api.md, "Governed aliases")
    path("alias-policies/list", alias_apis.AliasPolicyListApi.as_view()),
    path("alias-policies/set", alias_apis.AliasPolicySetApi.as_view()),
    path("alias-policies/delete", alias_apis.AliasPolicyDeleteApi.as_view()),
    path("alias-requests/create", alias_apis.AliasRequestCreateApi.as_view()),
    path("alias-requests/approve", alias_apis.AliasRequestApproveApi.as_view()),
    path("alias-requests/reject", alias_apis.AliasRequestRejectApi.as_view()),
    path("alias-requests/delete", alias_apis.AliasRequestDeleteApi.as_view()),
    path("alias-requests/list", alias_apis.AliasRequestListApi.as_view()),
    path("aliases/history", alias_apis.AliasHistoryApi.as_view()),
    path("aliases/rollback", alias_apis.AliasRollbackApi.as_view()),
    path("registered-models/as-of", alias_apis.AsOfApi.as_view()),
    # Imports from another registry (docs/migrating.md, "Without shell access")
    path("imports/start", import_apis.ImportStartApi.as_view()),
    path("imports/get", import_apis.ImportGetApi.as_view()),
    # Provenance (docs/api.md, "Provenance")
    path("signing-keys", provenance_apis.SigningKeysApi.as_view()),
    path("model-versions/promotion-records", provenance_apis.PromotionRecordListApi.as_view()),
    path("promotion-records/get", provenance_apis.PromotionRecordGetApi.as_view()),
]
