"""A stdlib-only fault-injecting HTTP reverse proxy to put in front of moto's S3 server in tests.

Tests point the S3 client at ``proxy.url``; every request is forwarded to moto unchanged unless a
pending fault matches it, in which case the proxy answers with an S3 error or drops the connection.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Connection-scoped headers: they describe one hop and must not be copied to the next one.
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "expect", "proxy-connection"}
ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
)


class _Fault:
    def __init__(self, kind, times, method, path_regex, status=0, code=""):
        self.kind, self.remaining, self.status, self.code = kind, times, status, code
        self.method = method.upper() if method else None
        self.pattern = re.compile(path_regex) if path_regex else None

    def matches(self, method, path):
        return (self.method is None or self.method == method) and (self.pattern is None or self.pattern.search(path))


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 gives keep-alive (aiohttp and urllib3 reuse connections) and makes the base class
    # answer "Expect: 100-continue" itself before the handler reads the body.
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_any(self):
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        body = self._read_body()  # always drain the body so a kept-alive connection stays in sync
        fault = proxy._record(self.command, self.path)
        if fault is None:
            self._forward(proxy, body)
        elif fault.kind == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)  # no response at all, like a peer that went away
        else:
            self._send_error(fault.status, fault.code)

    do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = do_any

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after each chunk
            while self.rfile.readline().strip():  # optional trailers, then the final empty line
                pass
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _forward(self, proxy: FaultProxy, body: bytes) -> None:
        # The client's Host header is kept: it is what the request was signed with, and URLs moto
        # builds from it then point back at the proxy.
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"content-length"}}
        if body or self.command in ("PUT", "POST"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(proxy._upstream_host, proxy._upstream_port, timeout=60)
        try:
            conn.request(self.command, self.path, body=body or None, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()  # http.client de-chunks upstream bodies; HEAD reads as b""
            self.send_response_only(resp.status, resp.reason)
            for name, value in resp.getheaders():
                lower = name.lower()
                if lower in HOP_BY_HOP or (lower == "content-length" and self.command != "HEAD"):
                    continue  # HEAD keeps upstream's Content-Length: it is the object's size
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            conn.close()

    def _send_error(self, status: int, code: str) -> None:
        request_id = uuid.uuid4().hex.upper()[:16]
        message = f"Injected fault {code} by the test proxy."
        payload = ERROR_XML.format(code=code, message=message, request_id=request_id).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amz-request-id", request_id)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class FaultProxy:
    """Reverse proxy to ``upstream`` with faults that tests arm via fail() and drop()."""

    def __init__(self, upstream: str):
        parts = urllib.parse.urlsplit(upstream)
        self._upstream_host, self._upstream_port = parts.hostname, parts.port or 80
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []
        self._seen: list[tuple[str, str]] = []
        self.faults_served = 0
        self._server: ThreadingHTTPServer | None = None
        self.url = ""

    def start(self) -> FaultProxy:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True  # kept-alive client connections must not block exit
        self._server.proxy = self  # type: ignore[attr-defined]
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def fail(self, status: int, code: str, times: int = 1, method: str | None = None, path_regex: str | None = None):
        """Answer the next ``times`` matching requests with an S3 XML error, without forwarding them."""
        with self._lock:
            self._faults.append(_Fault("error", times, method, path_regex, status, code))

    def drop(self, times: int = 1, method: str | None = None, path_regex: str | None = None):
        """Close the connection of the next ``times`` matching requests after reading their body."""
        with self._lock:
            self._faults.append(_Fault("drop", times, method, path_regex))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, method: str | None = None, path_regex: str | None = None) -> int:
        """How many requests matching were seen so far, forwarded or faulted."""
        probe = _Fault("count", 0, method, path_regex)
        with self._lock:
            return sum(1 for m, p in self._seen if probe.matches(m, p))

    def _record(self, method: str, path: str) -> _Fault | None:
        """Log the request and consume one use of the first pending fault matching it."""
        with self._lock:
            self._seen.append((method, path))
            for fault in self._faults:
                if fault.remaining > 0 and fault.matches(method, path):
                    fault.remaining -= 1
                    self.faults_served += 1
                    return fault
            return None
