"""The one outbound HTTP client of the registry: everything that calls a user-supplied URL goes
through :func:`post` (docs/decisions/0010-one-hardened-outbound-http-client.md).

- Connect and read timeouts on every request; no retries here (the delivery task retries).
- Redirects are never followed: a 3xx is returned as the answer and counts as a failure.
- Internal addresses are refused **at connect time**, after name resolution, on the address
  actually connected to, so a name that resolves to loopback, or that changes its answer between
  a check and the connection (DNS rebinding), gets nowhere. Refused: loopback, private,
  link-local (incl. the 169.254.169.254 metadata service), unique-local, CGNAT, multicast,
  reserved and unspecified addresses, and IPv6 forms that embed one of those IPv4 addresses
  (IPv4-mapped ``::ffff:a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``), plus the local
  NAT64 prefix ``64:ff9b:1::/48`` and Teredo. ``WEBHOOKS_ALLOWED_NETWORKS`` lets chosen
  networks through.
- TLS certificates are verified unless the hook turned it off.
- Header values that HTTP cannot carry (line breaks, control characters, characters outside
  Latin-1) are not sent; the result says which header, never its value.
- Proxies from the environment are not used; the User-Agent is fixed.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import HTTPError as Urllib3Error

from webhooks.conf import Network, WebhookSettings, webhook_settings

USER_AGENT = "model-registry-webhooks/1.0"
EXCERPT_BYTES = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class AddressRefused(Exception):
    """The target resolves only to addresses a webhook may not reach."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return None


def _is_internal(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return _is_internal(embedded)
        if address in _NAT64_LOCAL or address.teredo is not None:
            return True
    return not address.is_global or address.is_multicast


def _allowed(address: IPAddress, networks: tuple[Network, ...]) -> bool:
    candidates: list[IPAddress] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            candidates.append(embedded)
    return any(
        candidate.version == network.version and candidate in network
        for candidate in candidates
        for network in networks
    )


def check_address(address: str, networks: tuple[Network, ...]) -> None:
    """Raise :class:`AddressRefused` unless ``address`` (an IP literal) may be connected to."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if _is_internal(ip) and not _allowed(ip, networks):
        raise AddressRefused(f"address {ip} is internal and not in WEBHOOKS_ALLOWED_NETWORKS")


def _guarded_connect(conn: HTTPConnection) -> socket.socket:
    """Resolve, drop every refused address, connect to the first allowed one that answers."""
    networks = conn._webhook_networks  # type: ignore[attr-defined]
    host = conn._dns_host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, conn.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    refused: list[str] = []
    last_error: OSError | None = None
    for family, socktype, proto, _, sockaddr in infos:
        try:
            check_address(str(sockaddr[0]), networks)
        except AddressRefused as exc:
            refused.append(str(exc))
            continue
        sock = socket.socket(family, socktype, proto)
        try:
            sock.settimeout(conn.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            last_error = exc
    if last_error is not None:
        if isinstance(last_error, TimeoutError | socket.timeout):
            raise urllib3.exceptions.ConnectTimeoutError(
                conn, f"Connection to {conn.host} timed out."
            ) from last_error
        raise urllib3.exceptions.NewConnectionError(
            conn, f"Failed to establish a new connection: {last_error}"
        ) from last_error
    raise AddressRefused(
        f"Refused to connect to {conn.host}: " + "; ".join(refused or ["no address"])
    )


class _GuardedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_connect(self)


class _GuardedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_connect(self)


def _pool_classes(networks: tuple[Network, ...]) -> dict[str, type[HTTPConnectionPool]]:
    http_conn = type(
        "WebhookHTTPConnection", (_GuardedHTTPConnection,), {"_webhook_networks": networks}
    )
    https_conn = type(
        "WebhookHTTPSConnection", (_GuardedHTTPSConnection,), {"_webhook_networks": networks}
    )
    return {
        "http": type("WebhookHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("WebhookHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


@dataclass(frozen=True)
class HttpResult:
    """What a POST got: a status and an excerpt of the body, or an error (status None)."""

    status: int | None
    body_excerpt: str
    error: str
    duration_ms: int
    # Network errors, timeouts, 5xx, 408 and 429 may succeed later; the rest will not.
    retryable: bool

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


# Idle keep-alive connections kept per receiver (host and port): enough for every thread of a
# worker (16 recommended, up to 32; docs/performance.md) to reuse one, so a busy receiver is
# not reconnected to (and re-checked) for every delivery. More threads still work: the extra
# connections are opened, checked and closed after use.
POOL_MAXSIZE = 32

_managers: dict[tuple[Any, ...], urllib3.PoolManager] = {}
_managers_lock = threading.Lock()


def _manager(config: WebhookSettings, verify: bool) -> urllib3.PoolManager:
    """One keep-alive pool per configuration, so a changed allow-list never reuses a socket
    opened under the old one."""
    key = (config.allowed_networks, verify)
    with _managers_lock:
        manager = _managers.get(key)
        if manager is None:
            manager = urllib3.PoolManager(
                num_pools=64,
                maxsize=POOL_MAXSIZE,
                retries=False,
                cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                headers={"User-Agent": USER_AGENT},
            )
            manager.pool_classes_by_scheme = _pool_classes(config.allowed_networks)
            _managers[key] = manager
    return manager


def sanitize_url(url: str) -> str:
    """The URL without credentials, query or fragment: what may appear in a log line."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


# A character a header value may not hold: anything but the tab, printable ASCII and the
# printable half of Latin-1.
_NOT_HEADER_CHAR = re.compile(r"[^\t -~\xa0-\xff]")


def is_header_value(value: str) -> bool:
    """Whether ``value`` can be sent as an HTTP header value as it is: Latin-1, with no
    control characters but the tab (RFC 9110 field-value; a CR or LF would start a new header
    or end the head, and ``http.client`` refuses them and anything outside Latin-1)."""
    return _NOT_HEADER_CHAR.search(value) is None


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 429)


def post(
    url: str,
    *,
    body: bytes,
    headers: dict[str, str],
    verify_tls: bool = True,
    config: WebhookSettings | None = None,
) -> HttpResult:
    """POST ``body`` to ``url`` and report what happened; never raises for network trouble."""
    config = config or webhook_settings()
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    scheme = urlsplit(url).scheme.lower()
    if scheme not in config.allowed_schemes:
        return HttpResult(None, "", f"URL scheme {scheme!r} is not allowed", elapsed(), False)
    for name, value in headers.items():
        if not is_header_value(value):
            return HttpResult(
                None,
                "",
                f"Not sent: the {name} header value holds a line break, another control "
                "character or a character outside Latin-1; set it again.",
                elapsed(),
                False,
            )
    try:
        response = _manager(config, verify_tls).request(
            "POST",
            url,
            body=body,
            headers={"User-Agent": USER_AGENT, **headers},
            timeout=urllib3.Timeout(connect=config.connect_timeout, read=config.read_timeout),
            redirect=False,
            retries=False,
            preload_content=False,
        )
    except AddressRefused as exc:
        return HttpResult(None, "", str(exc), elapsed(), False)
    except urllib3.exceptions.LocationValueError as exc:  # a URL urllib3 cannot use: never will
        return HttpResult(None, "", _describe(exc), elapsed(), False)
    except (Urllib3Error, OSError) as exc:
        return HttpResult(None, "", _describe(exc), elapsed(), True)
    try:
        excerpt = response.read(EXCERPT_BYTES, decode_content=True)
    except (Urllib3Error, OSError) as exc:
        response.release_conn()
        return HttpResult(
            response.status, "", f"Reading the response failed: {_describe(exc)}", elapsed(), True
        )
    # Keep the connection for the next delivery only if the rest of the body is small; a
    # receiver that streams without end must not hold the worker.
    remaining = response.length_remaining
    if remaining is not None and remaining <= 65536:
        response.drain_conn()
    else:
        response.close()
    response.release_conn()
    text = excerpt.decode("utf-8", errors="replace")
    status = response.status
    if 200 <= status < 300:
        return HttpResult(status, text, "", elapsed(), False)
    if 300 <= status < 400:
        error = f"HTTP {status}: redirects are not followed"
    else:
        error = f"HTTP {status}"
    return HttpResult(status, text, error, elapsed(), _retryable_status(status))


def _describe(exc: BaseException) -> str:
    """A short message for the delivery log; urllib3 repeats the URL, which may hold secrets."""
    reason = getattr(exc, "reason", None) or exc
    text = f"{type(exc).__name__}: {reason}"
    return text[:500]
