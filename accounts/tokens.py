"""The format of API tokens and how they are recognised.

A token is ``mrt_`` + 43 URL-safe characters (256 random bits). Only its SHA-256 is stored;
the first 12 characters are kept as a visible prefix so a user can tell tokens apart.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "mrt_"
VISIBLE_PREFIX_LENGTH = 12


def generate() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX) and 40 <= len(value) <= 100
