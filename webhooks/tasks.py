"""Celery tasks of the webhooks app: thin adapters around the services
(docs/decisions/0006-tasks-are-thin-and-take-one-id.md)."""

from __future__ import annotations

from celery import shared_task


# acks_late: a worker killed during a try leaves the message to be delivered again; the
# service is idempotent (the claim), and the sweep covers brokers that do not redeliver.
@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def webhook_delivery_send_task(delivery_id: int) -> str:
    from webhooks.services import webhook_delivery_send

    return webhook_delivery_send(delivery_id=delivery_id)


@shared_task(ignore_result=True)
def webhook_deliveries_sweep_task() -> dict[str, int]:
    from webhooks.services import webhook_deliveries_sweep

    return webhook_deliveries_sweep()
