"""The hardened outbound client refuses internal targets at connect time
(docs/decisions/0010-one-hardened-outbound-http-client.md)."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks import http
from webhooks.conf import webhook_settings


@pytest.fixture
def no_allow_list(settings):
    settings.WEBHOOKS = {
        **settings.WEBHOOKS,
        "ALLOWED_NETWORKS": [],
        "ALLOWED_SCHEMES": ["http", "https"],
    }


def _name_resolving_to_loopback() -> str:
    """A host name other than ``localhost`` that resolves to loopback on this machine."""
    for name in (socket.gethostname(), "localhost.localdomain", "ip6-localhost"):
        try:
            infos = socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        except OSError:
            continue
        if infos and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos):
            return name
    return "localhost"


def _targets(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/",
        f"http://localhost:{port}/",
        f"http://{_name_resolving_to_loopback()}:{port}/",
        f"http://2130706433:{port}/",  # decimal 127.0.0.1
        f"http://0177.0.0.1:{port}/",  # octal
        f"http://0x7f.0.0.1:{port}/",  # hexadecimal
        f"http://127.1:{port}/",  # short form
        f"http://0.0.0.0:{port}/",  # unspecified: reaches loopback on Linux
        f"http://[::1]:{port}/",
        f"http://[::]:{port}/",
        f"http://[::ffff:127.0.0.1]:{port}/",  # IPv4-mapped
        f"http://[::ffff:7f00:1]:{port}/",
        f"http://[64:ff9b::7f00:1]:{port}/",  # NAT64
        f"http://[2002:7f00:1::1]:{port}/",  # 6to4
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6 (unique-local)
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://[fd12:3456::1]/",  # unique-local
        "http://[fe80::1]/",  # link-local
        "http://224.0.0.1/",  # multicast
        "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
    ]


@pytest.mark.usefixtures("no_allow_list")
def test_internal_targets_are_refused_before_connecting(receiver):
    port = int(receiver.url.split(":")[2].split("/")[0])
    targets = _targets(port)
    assert len(targets) >= 15
    for url in targets:
        result = http.post(url, body=b"{}", headers={})
        assert result.status is None, url
        assert result.error.startswith("Refused to connect"), (url, result.error)
        assert result.retryable is False, url
    assert receiver.received == []


@pytest.mark.usefixtures("no_allow_list")
def test_allow_list_lets_a_network_through(settings, receiver):
    refused = http.post(receiver.url, body=b"{}", headers={})
    assert refused.error.startswith("Refused")
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_NETWORKS": ["127.0.0.1/32"]}
    allowed = http.post(receiver.url, body=b"{}", headers={})
    assert (allowed.status, allowed.ok) == (200, True)
    # ::ffff:127.0.0.1 is 127.0.0.1: the same allow-list entry covers it.
    http.check_address("::ffff:127.0.0.1", webhook_settings().allowed_networks)
    with pytest.raises(http.AddressRefused):
        http.check_address("127.0.0.2", webhook_settings().allowed_networks)


def test_public_addresses_pass_the_check():
    for address in (
        "93.184.215.14",
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
        "64:ff9b::5db8:d70e",
    ):
        http.check_address(address, ())


def test_a_redirect_to_loopback_is_not_followed(settings, receiver):
    """The allow-list admits the redirector; its redirect to another loopback port (which the
    allow-list would admit too) must not be followed."""
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_NETWORKS": ["127.0.0.0/8"]}

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.send_response(302)
            self.send_header("Location", receiver.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = http.post(f"http://127.0.0.1:{server.server_address[1]}/", body=b"{}", headers={})
    finally:
        server.shutdown()
        server.server_close()
    assert result.status == 302
    assert result.error == "HTTP 302: redirects are not followed"
    assert result.retryable is False
    assert receiver.received == []


def test_scheme_timeouts_and_sanitized_urls(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "ALLOWED_SCHEMES": ["https"]}
    result = http.post("http://example.com/", body=b"{}", headers={})
    assert result.error == "URL scheme 'http' is not allowed"
    assert http.sanitize_url("https://u:p@example.com:8443/a/b?token=x#f") == (
        "https://example.com:8443/a/b"
    )


def test_a_silent_receiver_times_out(settings):
    settings.WEBHOOKS = {**settings.WEBHOOKS, "READ_TIMEOUT": 0.3}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        result = http.post(f"http://127.0.0.1:{listener.getsockname()[1]}/", body=b"{}", headers={})
    finally:
        listener.close()
    assert result.status is None
    assert result.retryable is True
    assert "ReadTimeoutError" in result.error
    assert result.duration_ms < 2000
