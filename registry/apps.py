from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from registry import (
            checks,  # noqa: F401  (registers the checks)
            lookups,  # noqa: F401  (registers the LIKE / ILIKE lookups)
            notifications,
        )
        from registry.artifacts.conf import artifact_settings
        from registry.conf import registry_settings
        from registry.provenance.keys import keys

        # A settings module without one of their keys, or with a value of another type, stops
        # the start with a message.
        artifact_settings()
        registry_settings()
        keys()  # a signing key that cannot be read stops the start too
        notifications.notification_settings()
        notifications.connect()
