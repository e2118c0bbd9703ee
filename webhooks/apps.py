from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from webhooks.conf import webhook_settings

        webhook_settings()  # a malformed WEBHOOKS_* value stops the start with a message
