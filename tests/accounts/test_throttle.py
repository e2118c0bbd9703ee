"""Repeated failed sign-ins from one client are locked out for a while, not forever."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db

SEARCH = "/api/2.0/mlflow/registered-models/search"


@pytest.fixture(autouse=True)
def short_window(settings):
    cache.clear()
    settings.REGISTRY = {**settings.REGISTRY, "LOGIN_FAILURE_LIMIT": 3, "LOGIN_LOCKOUT_SECONDS": 2}
    yield
    cache.clear()


def call(username: str, password: str, address: str = "10.0.0.1"):
    client = APIClient(REMOTE_ADDR=address)
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username, password))
    return client.get(SEARCH)


def test_lockout_after_repeated_failures_then_release(user):
    for _ in range(3):
        assert call(user.username, "wrong").status_code == 401
    locked = call(user.username, PASSWORD)  # even the right password waits
    assert locked.status_code == 401
    assert locked.json()["error_code"] == "UNAUTHENTICATED"
    assert "Too many failed sign-ins" in locked.json()["message"]

    # Another client is not affected: the real user keeps working from their own machine.
    assert call(user.username, PASSWORD, address="10.0.0.2").status_code == 200

    time.sleep(2.1)  # the window passes
    assert call(user.username, PASSWORD).status_code == 200


def test_a_success_clears_the_count(user):
    for _ in range(2):
        call(user.username, "wrong")
    assert call(user.username, PASSWORD).status_code == 200
    for _ in range(2):
        call(user.username, "wrong")
    assert call(user.username, PASSWORD).status_code == 200


def test_the_admin_sign_in_form_is_throttled_too(client, django_user_model):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    for _ in range(3):
        response = client.post(
            "/admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR="10.0.0.9"
        )
        assert response.status_code == 200  # the form again, with an error
    response = client.post(
        "/admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR="10.0.0.9"
    )
    assert response.status_code == 200  # refused: still the form
    assert "_auth_user_id" not in client.session


# --- Which address a request comes from ---------------------------------------------------------


def forwarded_call(username: str, password: str, forwarded_for: str, remote: str = "10.9.9.9"):
    client = APIClient(REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded_for)
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username, password))
    return client.get(SEARCH)


def test_rotating_the_client_chosen_x_forwarded_for_entry_does_not_reset_the_count(user, settings):
    """Behind one proxy, only the entry that proxy appended (the right-most) is the client's
    address; whatever the client put before it is its own choice."""
    settings.REGISTRY = {**settings.REGISTRY, "TRUST_X_FORWARDED_FOR": True}
    for n in range(3):
        response = forwarded_call(user.username, "wrong", f"198.51.100.{n}, 203.0.113.7")
        assert response.status_code == 401
    locked = forwarded_call(user.username, PASSWORD, "198.51.100.99, 203.0.113.7")
    assert locked.status_code == 401
    assert locked.json()["error_code"] == "UNAUTHENTICATED"
    assert "Too many failed sign-ins" in locked.json()["message"]
    # The real user, whose requests the proxy tags with their own address, is not affected.
    assert forwarded_call(user.username, PASSWORD, "203.0.113.8").status_code == 200


def test_with_two_proxies_the_second_entry_from_the_right_is_the_client(user, settings):
    settings.REGISTRY = {
        **settings.REGISTRY,
        "TRUST_X_FORWARDED_FOR": True,
        "TRUSTED_PROXY_COUNT": 2,
    }
    for n in range(3):
        forwarded_call(user.username, "wrong", f"198.51.100.{n}, 203.0.113.7, 10.0.0.2")
    # Same client behind the same two proxies: locked, whatever it puts on the left.
    locked = forwarded_call(user.username, PASSWORD, "203.0.113.7, 10.0.0.2")
    assert locked.status_code == 401
    assert "Too many failed sign-ins" in locked.json()["message"]
    # Another client through the same outer proxy is a different address.
    assert forwarded_call(user.username, PASSWORD, "203.0.113.8, 10.0.0.2").status_code == 200
    # Too few entries (the request skipped a proxy): the connection's own address counts, and
    # a header the client wrote itself cannot pick one.
    for n in range(3):
        forwarded_call(user.username, "wrong", f"198.51.100.{n}", remote="10.9.9.10")
    assert forwarded_call(user.username, PASSWORD, "192.0.2.1", remote="10.9.9.10").status_code == (
        401
    )


def test_x_forwarded_for_is_ignored_unless_trusted(user):
    for n in range(3):
        forwarded_call(user.username, "wrong", f"203.0.113.{n}")
    assert forwarded_call(user.username, PASSWORD, "203.0.113.77").status_code == 401


def test_ipv6_clients_are_counted_by_their_64_bit_network(user):
    """One IPv6 host usually holds a whole /64: counting single addresses would give it
    2**64 fresh budgets."""
    for n in range(3):
        assert call(user.username, "wrong", address=f"2001:db8:1:2::{n + 1:x}").status_code == 401
    assert call(user.username, PASSWORD, address="2001:db8:1:2::ffff").status_code == 401
    assert call(user.username, PASSWORD, address="2001:db8:1:3::1").status_code == 200


# --- Who a lockout can hit ------------------------------------------------------------------


def test_an_attacker_cannot_lock_a_user_out_of_their_own_address(user):
    for _ in range(10):
        call(user.username, "wrong", address="192.0.2.66")
    assert call(user.username, PASSWORD, address="192.0.2.66").status_code == 401
    # Per (address, user name): the victim, from wherever they are, still signs in, and so
    # does everyone else from the attacker's address for a name it did not guess.
    assert call(user.username, PASSWORD, address="10.0.0.5").status_code == 200
    assert call(user.username, PASSWORD, address="10.0.0.5").status_code == 200


def test_password_spraying_from_one_address_runs_out_of_its_own_budget(
    user, settings, django_user_model
):
    """One password tried on many user names stays under every per-name limit; the address
    has a larger budget of its own, across all names."""
    settings.REGISTRY = {**settings.REGISTRY, "LOGIN_ADDRESS_FAILURE_LIMIT": 5}
    for n in range(5):
        assert call(f"user{n}", "Summer2024!", address="192.0.2.50").status_code == 401
    refused = call(user.username, PASSWORD, address="192.0.2.50")
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "UNAUTHENTICATED"
    assert "from this address" in refused.json()["message"]
    # Only that address waits.
    assert call(user.username, PASSWORD, address="192.0.2.51").status_code == 200
    time.sleep(2.1)
    assert call(user.username, PASSWORD, address="192.0.2.50").status_code == 200


def test_a_success_does_not_refill_the_address_budget(user, settings):
    """An attacker with an account of their own cannot reset the spraying budget by signing
    in between guesses."""
    settings.REGISTRY = {**settings.REGISTRY, "LOGIN_ADDRESS_FAILURE_LIMIT": 4}
    for n in range(2):
        call(f"victim{n}", "guess", address="192.0.2.60")
        assert call(user.username, PASSWORD, address="192.0.2.60").status_code == 200
    call("victim2", "guess", address="192.0.2.60")
    call("victim3", "guess", address="192.0.2.60")
    assert call(user.username, PASSWORD, address="192.0.2.60").status_code == 401


@pytest.mark.django_db(transaction=True)
def test_concurrent_guesses_cannot_overrun_the_limit(live_server, user):
    """Guesses sent at once are each counted before the password is checked, so a burst
    gets no more than the limit of answers that say the password was wrong."""
    import base64
    import urllib.error
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    header = "Basic " + base64.b64encode(f"{user.username}:wrong".encode()).decode()

    def guess(_: int) -> str:
        request = urllib.request.Request(
            live_server.url + SEARCH, headers={"Authorization": header}
        )
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as exc:
            return exc.read().decode()
        return "signed in"

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(guess, range(32)))
    checked = [a for a in answers if "Invalid username, password or token" in a]
    assert len(checked) <= 3, f"{len(checked)} guesses were checked"
    assert len(answers) - len(checked) == sum("Too many failed sign-ins" in a for a in answers)


def test_right_passwords_sent_at_once_are_all_served(live_server, user):
    """A client that signs every call with its password and runs many at once (the mlflow
    client downloads with up to 20 threads) is never refused: checks beyond the budget wait
    for a slot instead of counting as failures."""
    import base64
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    header = "Basic " + base64.b64encode(f"{user.username}:{PASSWORD}".encode()).decode()

    def call_once(_: int) -> int:
        request = urllib.request.Request(
            live_server.url + SEARCH, headers={"Authorization": header}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(call_once, range(32)))
    assert statuses == [200] * 32


# --- The cache the counts live in -------------------------------------------------------------


LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
DUMMY = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
REDIS = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6379/1",
    }
}


def _deploy_messages(settings, caches, debug=False) -> dict[str, str]:
    from django.core import checks

    settings.CACHES = caches
    settings.DEBUG = debug
    found = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])
    return {message.id: message.level for message in found if message.id.startswith("accounts.")}


def test_check_deploy_flags_a_cache_of_each_process(settings):
    from django.core import checks

    assert _deploy_messages(settings, LOCMEM) == {"accounts.W001": checks.WARNING}
    # No cache at all turns the throttle off: an error, not a warning.
    assert _deploy_messages(settings, DUMMY) == {"accounts.E001": checks.ERROR}
    assert _deploy_messages(settings, REDIS) == {}
    # Development (and the embedded default, which runs with DEBUG) is one process.
    assert _deploy_messages(settings, LOCMEM, debug=True) == {}


def test_check_deploy_without_a_shared_cache_warns_in_production(tmp_path):
    """What an operator runs: ``manage.py check --deploy`` on production settings."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from cryptography.fernet import Fernet

    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "REGISTRY_", "WEBHOOKS_", "ARTIFACT"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-real-production-key-" + "x7Q!r9" * 10,
        DJANGO_ALLOWED_HOSTS="registry.example.com",
        REGISTRY_DATA_DIR=str(tmp_path),
        REGISTRY_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "accounts.W001" in output
    assert "DJANGO_CACHE_URL" in output


def test_the_counts_work_in_a_shared_redis_cache(user, settings):
    """What production runs: the same budgets through Redis's atomic increments."""
    import os
    import uuid

    from django.test import override_settings

    redis_url = os.environ.get("WEBHOOKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
    shared = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"throttle-test-{uuid.uuid4().hex}",  # expires with the window
        }
    }
    settings.REGISTRY = {**settings.REGISTRY, "LOGIN_ADDRESS_FAILURE_LIMIT": 2}
    with override_settings(CACHES=shared):
        for _ in range(3):
            assert call(user.username, "wrong", address="192.0.2.70").status_code == 401
        assert "Too many" in call(user.username, PASSWORD, address="192.0.2.70").json()["message"]
        assert call(user.username, PASSWORD, address="192.0.2.71").status_code == 200
        call("someone", "wrong", address="192.0.2.71")
        call("someone-else", "wrong", address="192.0.2.71")
        refused = call(user.username, PASSWORD, address="192.0.2.71")
        assert "from this address" in refused.json()["message"]
        time.sleep(2.1)
        assert call(user.username, PASSWORD, address="192.0.2.70").status_code == 200
