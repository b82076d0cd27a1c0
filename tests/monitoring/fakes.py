"""Local stand-ins for Slack, PagerDuty and an SMTP server, speaking their wire formats.

`VendorServer` is a real HTTP server on 127.0.0.1 that records every request and
answers what the test queued (default: the vendor's success answer). An answer can
also "hang" until the test ends, to make the client's timeout fire. `SmtpSink` is an
aiosmtpd server that keeps every message and can require AUTH LOGIN/PLAIN.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

HANG = object()


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict | None


@dataclass
class VendorServer:
    success: tuple[int, str, str]  # status, body, content type
    requests: list[Recorded] = field(default_factory=list)
    answers: deque = field(default_factory=deque)
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> VendorServer:
        vendor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                vendor.requests.append(Recorded(self.path, dict(self.headers), body))
                answer = vendor.answers.popleft() if vendor.answers else vendor.success
                if answer is HANG:
                    vendor.release.wait(10)
                    return
                status, text, content_type = answer
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def answer(self, status: int, body: str, content_type: str = "text/plain") -> None:
        self.answers.append((status, body, content_type))

    def hang(self) -> None:
        self.answers.append(HANG)

    def bodies(self) -> list[dict]:
        return [r.body for r in self.requests]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def slack_server() -> VendorServer:
    # Slack's incoming webhooks answer 200 with the plain text "ok".
    return VendorServer(success=(200, "ok", "text/plain")).start()


def pagerduty_server() -> VendorServer:
    # Events API v2 answers 202 with a JSON status.
    return VendorServer(success=(202, json.dumps({"status": "success", "message": "Event processed",
                                                  "dedup_key": "from-request"}), "application/json")).start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpSink:
    """aiosmtpd on a free port; `messages` are parsed `EmailMessage`s, `logins` the
    (user, password) pairs that authenticated."""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        self.messages = []
        self.envelopes = []
        self.logins: list[tuple[str, str]] = []
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                sink.messages.append(message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        def authenticator(server, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword):
                user, secret = auth_data.login.decode(), auth_data.password.decode()
                if (user, secret) == (username, password):
                    sink.logins.append((user, secret))
                    return AuthResult(success=True)
            return AuthResult(success=False, handled=False)

        kwargs = {}
        if username is not None:
            # Test-only: plain-text AUTH on localhost (the real server uses STARTTLS/TLS).
            kwargs = {"authenticator": authenticator, "auth_require_tls": False}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
