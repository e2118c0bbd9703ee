"""Managed artifacts (docs/architecture.md, "Artifacts"): every model version's files copied into
the registry's store.

- ``paths``: the one check for user-given artifact paths (no traversal in any form), and
  where each version's copy lives in the store.
- ``storage``: the store behind one interface, S3-compatible (boto3) or a local folder.
- ``sources``: what a new version may name as ``source``, and how each kind is read (a
  package, one module per kind).
- ``copy``: the streaming, verifying copy of a source into the store.
- ``mlmodel``: the copy's MLflow ``MLmodel`` file, kept bounded with the manifest and parsed
  safely for the version page (docs/decisions/0020-mlmodel-preview.md).
- ``services`` / ``selectors``: the writes and reads the APIs and the Celery tasks call.
"""
