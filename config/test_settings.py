"""Settings for the test suite: the real settings, pointed at PostgreSQL, with a fast hasher.

The environment still wins, so ``DATABASE_URL`` can point the suite at another server.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/registry")
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
# Test receivers listen on plain HTTP on loopback; the SSRF tests turn the allow-list off.
os.environ.setdefault("WEBHOOKS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")
os.environ.setdefault("WEBHOOKS_ALLOWED_SCHEMES", "https,http")
# The test client and the live server speak plain HTTP.
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")

from config.settings import *  # noqa: E402,F403

# Hashing a password with the production hasher takes a large part of a second by design;
# the suite authenticates thousands of requests.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The live server's thread must not keep a connection open past a test, or the test database
# cannot be dropped at the end of the run.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Serve static files from the apps' folders; the suite does not run collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
STORAGES = {  # noqa: F405
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
