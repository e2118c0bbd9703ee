"""Create a first registry admin when there is none, and say how to sign in.

Uses DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD / DJANGO_SUPERUSER_EMAIL when set
(the variables of Django's ``createsuperuser --noinput``); otherwise creates ``admin`` with a
random password, printed once and written to a file readable only by its owner.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser if the registry has none, and print how to sign in."

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()  # noqa: N806
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("A registry admin already exists; sign in with that account.")
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME") or "admin"
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL") or ""
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        generated = not password
        if generated:
            password = secrets.token_urlsafe(16)
        User.objects.create_superuser(username=username, email=email, password=password)
        if generated:
            path = Path(settings.DATA_DIR) / "admin-password.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{username}\n{password}\n", encoding="utf-8")
            path.chmod(0o600)
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created registry admin '{username}' with password: {password}\n"
                    f"(also saved in {path}; change it at /admin/password_change/)"
                )
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Created registry admin '{username}' with DJANGO_SUPERUSER_PASSWORD."
                )
            )
