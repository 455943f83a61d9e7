"""A front for Azurite's Blob endpoint: a small reverse proxy that answers as real Blob Storage does where
Azurite is kinder, and injects faults (service ``storage``).

Every request is forwarded as it came (method, path and query, headers, body) to Azurite with
``http.client``; Shared Key signatures do not cover the ``Host`` header, so the client's signature still
verifies there. Azurite's answer goes back as it is (status line, headers, body).

Correction (Azure/Azurite issue 2637): real Blob Storage refuses a Put Blob on a blob that has an active
lease, when the request carries no ``x-ms-lease-id``, with ``412 LeaseIdMissing``, even with
``If-None-Match: *``; Azurite 3.37 answers ``409 BlobAlreadyExists`` when ``If-None-Match: *`` is sent. So
before forwarding such a Put Blob the front reads the blob's lease status from Azurite (Get Blob Properties,
with azure-storage-blob and Azurite's public development key) and, when the blob is locked, answers itself,
in Blob Storage's error format. Put Blob and the lease operations on the same blob are serialized in the
front, so no lease can be taken between the look and the upload.

Fault operations: ``putBlob`` (PUT of a blob with ``x-ms-blob-type`` and no ``comp``), ``getBlobProperties``
(HEAD of a blob), ``acquireLease``, ``renewLease``, ``releaseLease``, ``breakLease`` (``PUT ?comp=lease``
by ``x-ms-lease-action``, blob or container; ``change`` is ``other``), ``createContainer``
(``PUT ?restype=container``) and ``other``. A rule's ``account`` (alias ``container``) matches the container.
"""

from __future__ import annotations

import datetime
import http.client
import threading
import uuid
import zlib
from typing import Any
from xml.sax.saxutils import escape

from .faults import FaultRegistry, answer
from .http import Request, Response

LEASE_ID_MISSING = "There is currently a lease on the blob and no lease ID was specified in the request."
# Blob Storage's codes for a status when a fault rule names none ("Common REST API error codes" and "Blob
# Storage error codes" in the Azure Storage REST reference).
_ERROR_CODES = {
    400: "InvalidInput", 403: "AuthenticationFailed", 404: "ResourceNotFound", 405: "UnsupportedHttpVerb",
    409: "ResourceAlreadyExists", 411: "MissingContentLengthHeader", 412: "ConditionNotMet",
    413: "RequestBodyTooLarge", 416: "InvalidRange", 500: "InternalError", 503: "ServerBusy",
}
_LEASE_OPERATIONS = {
    "acquire": "acquireLease", "renew": "renewLease", "release": "releaseLease", "break": "breakLease",
}
# Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the front sets itself.
_REQUEST_SKIP = frozenset({
    "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
    "content-length", "expect",
})
_RESPONSE_SKIP = frozenset({"connection", "keep-alive", "proxy-connection", "trailer", "transfer-encoding", "upgrade"})
_LOCK_STRIPES = 64


def _time_7() -> str:
    """Blob Storage's error time: seven fractional digits and a ``Z``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _header_text(text: str) -> str:
    """A status line and headers carry Latin-1 only: a fault rule's own code or message may not."""
    return text.encode("latin-1", "replace").decode("latin-1")


def blob_error(status: int, code: str | None, message: str, request: Request | None = None) -> Response:
    """An error as Blob Storage sends it: XML body, ``x-ms-error-code``, ``x-ms-request-id``, and the message
    as the status line's reason phrase."""
    code = code or _ERROR_CODES.get(status, "InternalError" if status >= 500 else "InvalidInput")
    request_id = str(uuid.uuid4())
    body = (f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}\nRequestId:{request_id}\nTime:{_time_7()}</Message></Error>")
    headers = {"x-ms-error-code": _header_text(code), "x-ms-request-id": request_id}
    if request is not None:
        for echoed in ("x-ms-version", "x-ms-client-request-id"):
            value = request.header(echoed)
            if value:
                headers[echoed] = value
    reason = _header_text(message.splitlines()[0]) if message else None
    return Response(status, body.encode("utf-8"), headers, content_type="application/xml", reason=reason)


def _parts(path: str) -> list[str]:
    """``/account/container/blob/name`` -> ``[account, container, blob/name]`` (path-style, as Azurite)."""
    segments = [p for p in path.split("/") if p]
    return segments[:2] + (["/".join(segments[2:])] if len(segments) > 2 else [])


def classify(request: Request) -> str:
    """The fault operation name of a Blob request."""
    parts = _parts(request.path)
    comp = (request.param("comp") or "").lower()
    method = request.method
    if method == "PUT" and comp == "lease":
        return _LEASE_OPERATIONS.get((request.header("x-ms-lease-action") or "").lower(), "other")
    if len(parts) == 3 and not comp:
        if method == "PUT" and request.header("x-ms-blob-type"):
            return "putBlob"
        if method == "HEAD":
            return "getBlobProperties"
    if len(parts) == 2 and method == "PUT" and not comp and (request.param("restype") or "").lower() == "container":
        return "createContainer"
    return "other"


class StorageFront:
    """The service behind the front's :class:`~local_azure.http.Listener` (plain HTTP, like Azurite)."""

    name = "storage"
    # A Put Blob of up to 64 MiB is one request (azure-storage-blob's max_single_put_size); the body is held whole.
    max_body_bytes = 256 * 1024 * 1024

    def __init__(self, upstream_host: str, upstream_port: int, faults: FaultRegistry, account: str,
                 account_key: str, timeout: float = 60.0) -> None:
        self._host, self._port = upstream_host, upstream_port
        self._faults = faults
        self._account, self._account_key = account, account_key
        self._timeout = timeout
        self._locks = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._probe_client: Any = None
        self._probe_lock = threading.Lock()

    def internal_error(self) -> Response:
        return blob_error(500, "InternalError", "Server encountered an internal error. Please try again after "
                                                "some time.")

    def handle(self, request: Request) -> Response:
        operation = classify(request)
        parts = _parts(request.path)
        container = parts[1] if len(parts) > 1 else None
        rule = self._faults.take("storage", operation, container)

        def make_error(status: int, code: str | None, message: str) -> Response:
            return blob_error(status, code, message, request)

        return answer(rule, make_error, lambda: self._serve(request, operation))

    # ----- corrections ----------------------------------------------------------

    def _serve(self, request: Request, operation: str) -> Response:
        if operation == "putBlob" or operation.endswith("Lease"):
            with self._lock_for(request.path):
                if operation == "putBlob" and not request.header("x-ms-lease-id") and self._leased(request.path):
                    return blob_error(412, "LeaseIdMissing", LEASE_ID_MISSING, request)
                return self._forward(request)
        return self._forward(request)

    def _lock_for(self, path: str) -> threading.Lock:
        return self._locks[zlib.crc32(path.encode("utf-8")) % _LOCK_STRIPES]

    def _leased(self, path: str) -> bool:
        """Whether the blob exists and is locked by a lease (leased or breaking), as Azurite sees it now."""
        from azure.core.exceptions import ResourceNotFoundError

        _, container, blob = _parts(path)
        try:
            properties = self._probe().get_blob_client(container, blob).get_blob_properties()
        except ResourceNotFoundError:
            return False
        return str(properties.lease.status).lower() == "locked"

    def _probe(self) -> Any:
        """A Blob client straight to Azurite (never through the front), made on first use."""
        with self._probe_lock:
            if self._probe_client is None:
                from azure.storage.blob import BlobServiceClient

                self._probe_client = BlobServiceClient(
                    f"http://{self._host}:{self._port}/{self._account}",
                    credential={"account_name": self._account, "account_key": self._account_key},
                    retry_total=0,
                )
            return self._probe_client

    # ----- forwarding -------------------------------------------------------------

    def _forward(self, request: Request) -> Response:
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"{self._host}:{self._port}")
            for name, value in request.headers.items():
                if name.lower() not in _REQUEST_SKIP:
                    connection.putheader(name, value)
            if request.body or request.header("Content-Length") is not None or request.method in ("PUT", "POST"):
                connection.putheader("Content-Length", str(len(request.body)))
            connection.endheaders(request.body or None)
            upstream = connection.getresponse()
            payload = upstream.read()  # nothing for HEAD; a chunked body is read whole
            headers = [(n, v) for n, v in upstream.getheaders() if n.lower() not in _RESPONSE_SKIP]
            return Response(upstream.status, payload, reason=upstream.reason, raw_headers=headers)
        finally:
            connection.close()

    def close(self) -> None:
        with self._probe_lock:
            if self._probe_client is not None:
                self._probe_client.close()
                self._probe_client = None
