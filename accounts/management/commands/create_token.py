"""``manage.py create_token USERNAME [--name N] [--expires-in-days D]``: print a new API token.

The token is printed alone on the last line, so scripts can capture it with ``tail -n 1``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import services
from kernel.errors import RegistryError


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli", help="a label to tell the token apart")
        parser.add_argument(
            "--expires-in-days",
            type=int,
            default=None,
            help="days until it expires (default: never)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model()
        try:
            user = users.objects.get_by_natural_key(options["username"])
        except users.DoesNotExist:
            raise CommandError(f"User '{options['username']}' does not exist.") from None
        try:
            created = services.api_token_create(
                actor=None,  # the operator at the console acts as the registry itself
                user=user,
                name=options["name"],
                expires_in_days=options["expires_in_days"],
            )
        except RegistryError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(
            f"Token '{created.token.name}' for {user.get_username()} ({created.token.prefix}…); "
            "store it now, it cannot be shown again:"
        )
        self.stdout.write(created.secret)
