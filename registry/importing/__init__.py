"""Importing another registry that speaks the MLflow registry REST protocol (an ``mlflow
server``, a Databricks workspace registry): the reader of the source (``source``) and the run
that walks it (``run``); the writes are ``registry.services.importing``'s. See
docs/migrating.md."""
