from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from registry import (
            lookups,  # noqa: F401  (registers the LIKE / ILIKE lookups)
            notifications,
        )
        from registry.artifacts.conf import artifact_settings
        from registry.conf import registry_settings

        # A settings module without one of their keys, or with a value of another type, stops
        # the start with a message.
        artifact_settings()
        registry_settings()
        notifications.notification_settings()
        notifications.connect()
