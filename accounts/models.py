from __future__ import annotations

from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The registry's user. Custom from the first migration so later fields need no swap."""

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
