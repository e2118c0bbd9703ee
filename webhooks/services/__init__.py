"""Every write of the webhooks app: managing hooks, emitting events, delivering them.

Delivery is a transactional outbox (docs/architecture.md, "Webhooks"):

- ``management``: create, update, delete and test hooks, redeliver a delivery (checked by
  ``validation``, refused by accounts/permissions.py).
- ``outbox``: :func:`~webhooks.services.outbox.webhook_event_emit`, called by registry services
  inside their transaction, and the queueing of the send task on commit.
- ``delivery``: the worker's try of one delivery (claim, send, record), with ``sending``
  building the body and headers and making the POST.
- ``sweep``: re-queues late deliveries and takes back claims whose worker died.
- ``matching``: ``RegisteredModel.hooks_may_match``, kept by every change of hooks
  (``hooks_changing``), with which a registry write holding the model's row lock skips the
  subscription lookup (docs/decisions/0021-writes-in-fewer-statements.md).

Import the module that holds a function; this package re-exports nothing.
"""
