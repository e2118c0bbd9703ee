"""Local network helpers: a free port, and an HTTP server that takes POSTs (a webhook receiver)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: What the receiver answers to every POST, with the status its callback chose.
REPLY = b'{"ok": true}'


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_posts(on_post: Callable[[str, Message, bytes], int]) -> ThreadingHTTPServer:
    """Start an HTTP/1.1 server on 127.0.0.1 (a free port: ``server.server_address[1]``) in a
    daemon thread. Each POST calls ``on_post(path, headers, body)`` in the request's thread
    and is answered with the status it returns and :data:`REPLY` as JSON. Stop it with
    ``shutdown()`` and ``server_close()``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # TCP_NODELAY, as production HTTP servers set it. The head and the body go out in two
        # writes; without it the body waits for the client's acknowledgement of the head, which
        # a kept-alive client delays by up to 40 ms: every answer would take that long and cost
        # the client extra CPU (docs/performance.md, "Webhook delivery").
        disable_nagle_algorithm = True

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status = on_post(self.path, self.headers, body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(REPLY)))
            self.end_headers()
            self.wfile.write(REPLY)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="receiver", daemon=True).start()
    return server
