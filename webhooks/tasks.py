"""Celery tasks of the webhooks app: thin adapters around the services
(docs/decisions/0006-tasks-are-thin-and-take-one-id.md)."""

from __future__ import annotations

from celery import shared_task

from webhooks.services.delivery import webhook_delivery_send
from webhooks.services.outbox import SEND_TASK
from webhooks.services.sweep import webhook_deliveries_sweep


# acks_late: a worker killed during a try leaves the message to be delivered again; the
# service is idempotent (the claim), and the sweep covers brokers that do not redeliver.
# The outbox queues it by this name (it does not import this module).
@shared_task(name=SEND_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def webhook_delivery_send_task(delivery_id: int) -> str:
    return webhook_delivery_send(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def webhook_deliveries_sweep_task() -> dict[str, int]:
    return webhook_deliveries_sweep()
