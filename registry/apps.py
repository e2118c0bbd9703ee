from django.apps import AppConfig


class RegistryConfig(AppConfig):
    name = "registry"
    verbose_name = "Model registry"

    def ready(self) -> None:
        from registry import lookups  # noqa: F401  (registers the LIKE / ILIKE lookups)
