from django.apps import AppConfig


class ServiceConfig(AppConfig):
    """The service-wide wiring that belongs to no app: the system checks of config/checks.py.

    An app of its own, so that the apps need not import ``config`` (docs/architecture.md,
    "The kernel"): ``config`` sits above them and may import them, never the reverse.
    """

    name = "config"
    label = "service"
    verbose_name = "Service"

    def ready(self) -> None:
        from config import checks  # noqa: F401  (registers the service's system checks)
