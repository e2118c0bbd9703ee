"""The two signature schemes (docs/architecture.md, "Webhooks").

- Hooks made through the Databricks API: ``X-Databricks-Signature``, the lowercase hex
  HMAC-SHA256 of the exact body bytes keyed with the hook's secret (as Databricks sends it).
- Hooks made through MLflow's API: the Standard Webhooks headers MLflow 3.x sends,
  ``X-MLflow-Delivery-Id``, ``X-MLflow-Timestamp`` (Unix seconds) and
  ``X-MLflow-Signature: v1,<base64 HMAC-SHA256 of "<delivery id>.<timestamp>.<body>">``.

Receivers check them as docs/webhooks.md shows (``verify_databricks``, ``verify_mlflow``); the
tests check deliveries with :func:`databricks_verify` and the captured MLflow signatures.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def databricks_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def mlflow_signature(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def databricks_verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(databricks_signature(secret, body), header)
