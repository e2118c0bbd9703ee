from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import checks  # noqa: F401  (registers the deployment checks)
        from accounts.conf import account_settings

        # A settings module without one of its keys, or with a value of another type, stops
        # the start with a message.
        account_settings()
