"""Shared HTTP(S) server plumbing for every emulated Azure endpoint.

Each emulated service (identity, Resource Manager, one per Key Vault, one per
Cosmos DB data plane, the storage front before Azurite) is a small object with a
``handle(Request) -> Response`` method, served by its own :class:`Listener` on its
own port.
"""

from __future__ import annotations

import contextlib
import json
import logging
import selectors
import socket
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

LOGGER = logging.getLogger("local_azure")

# A TLS handshake or an idle keep-alive connection must not pin a thread forever.
_CONNECTION_TIMEOUT_SECONDS = 30.0
# socketserver's default listen backlog is 5: a burst of new connections (hundreds of rotations starting at once)
# overflows it, and each refused SYN costs the client a 1 s, then 3 s, retransmission. The kernel caps it at
# net.core.somaxconn.
_LISTEN_BACKLOG = 1024
_MAX_BODY_BYTES = 4 * 1024 * 1024


class BadRequestBody(ValueError):
    """The request body is not the JSON the endpoint expects."""


class DropConnection(Exception):
    """Raised by a service: close the connection without writing any answer (a fault rule's ``drop``)."""


@dataclass
class Request:
    """One parsed HTTP request, independent of the server machinery."""

    method: str
    target: str
    headers: Message
    body: bytes = b""
    client_ip: str = ""
    path: str = field(init=False)
    query: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        # Not urlsplit: it would read the "secrets" of "//secrets" as a host name.
        raw_path, _, query = self.target.split("#", 1)[0].partition("?")
        # Collapse accidental double slashes ("https://host//secrets"); keep a trailing slash.
        segments = [s for s in raw_path.split("/") if s]
        path = "/" + "/".join(segments)
        if raw_path.endswith("/") and segments:
            path += "/"
        self.path = unquote(path)
        self.query = dict(parse_qsl(query, keep_blank_values=True))

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def param(self, name: str) -> str | None:
        """Query parameter, matched case-insensitively like Azure front ends do."""
        wanted = name.lower()
        for key, value in self.query.items():
            if key.lower() == wanted:
                return value
        return None

    def json(self) -> Any:
        if not self.body.strip():
            raise BadRequestBody("The request body is empty; a JSON document is required.")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise BadRequestBody("The request body is not valid JSON.") from None

    def json_object(self) -> dict[str, Any]:
        payload = self.json()
        if not isinstance(payload, dict):
            raise BadRequestBody("The request body must be a JSON object.")
        return payload


@dataclass
class Response:
    """What a service answers; ``body`` dicts and lists are sent as JSON.

    ``raw_headers`` (a proxied answer): the upstream's headers, sent as they are and in their order, instead
    of the ``Content-Type`` and ``Content-Length`` the listener would add (``headers`` still follow them).
    ``reason``: the status line's reason phrase, when the service has its own.
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"
    reason: str | None = None
    raw_headers: list[tuple[str, str]] | None = None

    def encoded_body(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, separators=(",", ":")).encode("utf-8")


class Service(Protocol):
    """An emulated endpoint: turns requests into responses. ``handle`` may raise :class:`DropConnection`; a
    service may set ``max_body_bytes`` (default 4 MiB) to accept larger request bodies."""

    name: str

    def handle(self, request: Request) -> Response: ...

    def internal_error(self) -> Response: ...


def url_host(host: str) -> str:
    """Host as it appears in a URL: IPv6 literals need brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the SDKs reuse connections
    timeout = _CONNECTION_TIMEOUT_SECONDS
    # Headers and body go out in two writes; with Nagle on, the body waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    def log_message(self, format: str, *args: Any) -> None:
        # The default logger prints the full request line, query string included: never do that.
        return

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length = int(self.headers.get("Content-Length") or 0)
        if length > getattr(self.server.service, "max_body_bytes", _MAX_BODY_BYTES):
            raise BadRequestBody("The request body is too large.")
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():
                    pass  # discard trailers
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _dispatch(self) -> None:
        started = time.monotonic()
        service = self.server.service
        try:
            request = Request(self.command, self.path, self.headers, self._read_body(), self.client_address[0])
        except (ValueError, OSError):
            self.close_connection = True
            self.send_error(400)
            return
        try:
            response = service.handle(request)
        except DropConnection:
            # A fault rule's "drop": the client sees the connection close with no answer at all.
            self.close_connection = True
            elapsed_ms = (time.monotonic() - started) * 1000
            LOGGER.info("%s %s %s dropped %.1fms", service.name, request.method, request.path, elapsed_ms)
            return
        except Exception as exc:
            # Type only: a message could in principle carry request data.
            LOGGER.error("%s %s %s failed: %s", service.name, request.method, request.path, type(exc).__name__)
            LOGGER.debug("handler failure", exc_info=True)
            response = service.internal_error()
        self._write(request, response)
        elapsed_ms = (time.monotonic() - started) * 1000
        LOGGER.info("%s %s %s %d %.1fms", service.name, request.method, request.path, response.status, elapsed_ms)

    def _write(self, request: Request, response: Response) -> None:
        if response.raw_headers is not None:
            self._write_raw(request, response)
            return
        payload = response.encoded_body()
        self.send_response(response.status, response.reason)
        if payload or response.body is not None:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if request.method != "HEAD" and payload:
            self.wfile.write(payload)

    def _write_raw(self, request: Request, response: Response) -> None:
        """A proxied answer: the upstream's status line and headers (its own Date and Server too)."""
        payload = response.encoded_body()
        self.send_response_only(response.status, response.reason)
        sent = set()
        for name, value in [*(response.raw_headers or []), *response.headers.items()]:
            self.send_header(name, value)
            sent.add(name.lower())
        if "content-length" not in sent and request.method != "HEAD" and response.status not in (204, 304):
            # The upstream body came chunked and was read whole: say how long it is.
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if request.method != "HEAD" and payload:
            self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    """One thread per connection (daemon, so none is kept on the server: a finished connection leaves nothing
    behind); a keep-alive connection holds its thread until the client closes it or stays idle for
    ``_CONNECTION_TIMEOUT_SECONDS``."""

    daemon_threads = True
    request_queue_size = _LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], service: Service, ssl_context: ssl.SSLContext | None) -> None:
        self.service = service
        self.ssl_context = ssl_context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self.peak_open = 0
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can hang offline.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # TLS is negotiated here, in the connection's own thread, so a slow client never blocks accept().
        if self.ssl_context is None:
            self.RequestHandlerClass(request, client_address, self)
            return
        request.settimeout(_CONNECTION_TIMEOUT_SECONDS)
        tls_socket = self.ssl_context.wrap_socket(request, server_side=True)
        try:
            self.RequestHandlerClass(tls_socket, client_address, self)
        finally:
            tls_socket.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up or reject the certificate are normal; no traceback on stderr.
        LOGGER.debug("connection error from %s", client_address, exc_info=True)

    def track(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.add(connection)
            self.peak_open = max(self.peak_open, len(self._open))

    def connection_counts(self, reset_peak: bool = False) -> tuple[int, int]:
        with self._open_lock:
            counts = len(self._open), self.peak_open
            if reset_peak:
                self.peak_open = len(self._open)
            return counts

    def untrack(self, connection: socket.socket) -> None:
        with self._open_lock:
            self._open.discard(connection)

    def close_connections(self) -> None:
        with self._open_lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Server6(_Server):
    address_family = socket.AF_INET6


class Listener:
    """One service on one port, HTTP or HTTPS, served from a background thread."""

    def __init__(self, service: Service, host: str, port: int = 0, ssl_context: ssl.SSLContext | None = None) -> None:
        server_class = _Server6 if ":" in host else _Server
        self._server = server_class((host.strip("[]"), port), service, ssl_context)
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self.host = host
        self.scheme = "https" if ssl_context else "http"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` without a trailing slash."""
        return f"{self.scheme}://{url_host(self.host)}:{self.port}"

    def connection_counts(self) -> tuple[int, int]:
        """(open connections now, most open at once since start or the last ``reset_peak``)."""
        return self._server.connection_counts()

    def reset_peak(self) -> None:
        self._server.connection_counts(reset_peak=True)

    def start(self) -> Listener:
        name = f"local_azure-{self._server.service.name}-{self.port}"
        self._wake = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_loop, args=(self._wake[0],), name=name, daemon=True)
        self._thread.start()
        return self

    def _accept_loop(self, wake: socket.socket) -> None:
        """Sleep until a connection arrives or stop() writes to ``wake``. (socketserver's serve_forever polls
        every interval instead: with a listener per account, hundreds of idle loops took CPU and the GIL.)"""
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                ready = selector.select()
                if any(key.fileobj is wake for key, _ in ready):
                    return
                # Accepts one connection and hands it to a new thread (ThreadingMixIn.process_request).
                self._server.handle_request()

    def stop(self) -> None:
        if self._thread is not None and self._wake is not None:
            with contextlib.suppress(OSError):
                self._wake[1].send(b"x")
            self._thread.join(timeout=5)
            self._thread = None
        if self._wake is not None:
            for end in self._wake:
                end.close()
            self._wake = None
        self._server.close_connections()
        self._server.server_close()


def stop_all(listeners: list[Listener]) -> None:
    """Stop listeners in parallel (each joins its accept thread and closes its connections)."""
    threads = [threading.Thread(target=listener.stop, daemon=True) for listener in listeners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)


class ServiceError(Exception):
    """Raised by a service's handler; the service renders it in its own error format."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None,
                 inner_code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.inner_code = inner_code


def error_envelope(status: int, code: str | None, message: str, codes: dict[int, str],
                   inner_code: str | None = None) -> Response:
    """The ``{"error": {"code", "message"}}`` answer Resource Manager and Key Vault share; `codes` are the
    service's default codes by status. Key Vault adds ``"innererror": {"code": ...}`` to some answers
    (azure-core reads it as ``HttpResponseError.error.innererror``)."""
    error: dict[str, Any] = {"code": code or codes.get(status, "Error"), "message": message}
    if inner_code:
        error["innererror"] = {"code": inner_code}
    return Response(status, {"error": error})
