"""The verify call's transport: one kept-alive HTTP/1.1 connection to TokenGate per thread.

A guarded request costs one ``GET /auth/verify``, so this is the package's hot path. It sends the
request as one ``sendall`` of bytes built in one go and reads the answer with (usually) one
``recv``, parsing only what a verify answer has: a status line, header fields and a body sized by
``Content-Length`` (chunked and read-to-close are handled too, for a proxy in between). A pooled
general-purpose client (urllib3, http.client) spends several times the CPU per call on checks,
header objects and pool bookkeeping that this one call does not need (``bench/flask``).

Every connection belongs to one thread (``threading.local``) and one process (a fork drops the
parent's), so no answer can ever reach a request it is not for. Connecting and each read are
bounded by ``timeout``. Retries: a verify is sent once more only when (a) connecting was refused
(nothing was sent) or (b) a connection kept from an earlier call was closed by TokenGate before any
byte of the answer came back (its idle timeout, ``TOKENGATE_CLIENT_TIMEOUT``); a connection that
TokenGate has already closed is noticed before sending and replaced. Anything else is a
:class:`TransportError`, which the client turns into ``Unavailable`` (fail closed).
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Mapping
from urllib.parse import urlsplit

__all__ = ["Answer", "KeepAliveTransport", "TransportError"]

# (status, header fields as (name, value) in the order sent, body)
Answer = tuple[int, list[tuple[str, str]], bytes]

_MAX_HEAD = 64 * 1024  # status line and header fields of an answer
_MAX_BODY = 1024 * 1024  # a verify answer's body is a small JSON error at most
_RECV = 8 * 1024
# A connection idle this long (seconds) is checked for TokenGate's having closed it before reuse.
_CHECK_AFTER = 1.0

# Bumped in a forked child: connections made before the fork are the parent's and are never used.
_generation = 0


def _forked() -> None:
    global _generation
    _generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


class TransportError(Exception):
    """TokenGate could not be reached or gave no well-formed HTTP answer. ``reason`` names what
    happened (an exception's class name or a short phrase); it never holds request bytes."""

    def __init__(self, reason: str, refused: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.refused = refused


class _Closed(TransportError):
    """The connection ended before any byte of the answer came back."""


class _Connection:
    __slots__ = ("sock", "generation", "used")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.generation = _generation
        self.used = 0.0

    def usable(self) -> bool:
        """False when it is another process's, or when it was idle and TokenGate has closed it (or
        sent something unasked) since the last answer. (One closed in the last second is noticed
        when it answers nothing: ``_Closed``.)"""
        if self.generation != _generation:
            return False
        if time.monotonic() - self.used < _CHECK_AFTER:
            return True
        try:
            if hasattr(select, "poll"):
                poller = select.poll()
                poller.register(self.sock, select.POLLIN)
                return not poller.poll(0)
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class KeepAliveTransport:
    """GET requests to one TokenGate (``url``: ``http://`` or ``https://``, with an optional
    path prefix) over one kept-alive connection per thread. Thread-safe; fork-safe."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http(s) URL")
        self._host = parts.hostname
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._prefix = parts.path.rstrip("/")
        self._host_header = parts.netloc.rpartition("@")[2]
        self._timeout = timeout
        self._tls = ssl.create_default_context() if parts.scheme == "https" else None
        self._local = threading.local()

    def get(self, target: str, headers: Mapping[str, str]) -> Answer:
        """Sends ``GET <prefix><target>`` with ``headers`` (str names and values; ``Host`` is
        TokenGate's own unless given) and returns the answer. Raises ``ValueError`` for a header
        value that HTTP cannot carry (CR, LF, NUL, beyond Latin-1), before anything is sent, and
        :class:`TransportError` when no answer comes."""
        request = self._request(target, headers)
        local = self._local
        connection: _Connection | None = getattr(local, "connection", None)
        local.connection = None
        if connection is not None and not connection.usable():
            connection.close()
            connection = None
        if connection is not None:
            try:
                return self._exchange(connection, request)
            except _Closed:
                pass  # closed by TokenGate while idle, before it read this request: once more, anew
        return self._exchange(self._connect(), request)

    def close(self) -> None:
        """Closes this thread's connection (others close when their thread ends)."""
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    def _request(self, target: str, headers: Mapping[str, str]) -> bytes:
        lines = [f"GET {self._prefix}{target} HTTP/1.1\r\n"]
        has_host = False
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\0" in value:
                raise ValueError("a header value with CR, LF or NUL")
            lines.append(f"{name}: {value}\r\n")
            if not has_host and name.lower() == "host":
                has_host = True
        if not has_host:
            lines.append(f"Host: {self._host_header}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")  # UnicodeEncodeError (a ValueError) beyond Latin-1

    def _connect(self) -> _Connection:
        for attempt in range(2):
            try:
                sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
            except ConnectionRefusedError:
                if attempt == 0:
                    continue  # never reached anyone: once more (an instance restarting)
                raise TransportError("ConnectionRefusedError", refused=True) from None
            except OSError as error:
                raise TransportError(type(error).__name__) from None
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_hostname=self._host)
                else:
                    _kernel_timeouts(sock, self._timeout)
            except OSError as error:
                sock.close()
                raise TransportError(type(error).__name__) from None
            return _Connection(sock)
        raise TransportError("ConnectionRefusedError", refused=True)  # not reached

    def _exchange(self, connection: _Connection, request: bytes) -> Answer:
        try:
            try:
                connection.sock.sendall(request)
            except (ConnectionResetError, BrokenPipeError) as error:
                raise _Closed(type(error).__name__) from None
            answer, keep = _read_answer(connection.sock)
        except TransportError:
            connection.close()
            raise
        except (OSError, ValueError) as error:  # timeouts, resets mid-answer, TLS errors, a bad number
            connection.close()
            timed_out = isinstance(error, (TimeoutError, BlockingIOError))  # BlockingIOError: SO_RCVTIMEO ran out
            raise TransportError("TimeoutError" if timed_out else type(error).__name__) from None
        if keep:
            connection.used = time.monotonic()
            self._local.connection = connection
        else:
            connection.close()
        return answer


def _kernel_timeouts(sock: socket.socket, timeout: float) -> None:
    """Bounds each send and receive on ``sock`` with the kernel's own timers (SO_SNDTIMEO,
    SO_RCVTIMEO) and makes it blocking: Python's own timeout costs a poll() before every call. Where
    the kernel's timers cannot be set, Python's timeout stays."""
    if sys.platform == "win32":
        value = struct.pack("@L", max(1, int(timeout * 1000)))
    else:
        seconds = int(timeout)
        value = struct.pack("@ll", seconds, max(1 if seconds == 0 else 0, int((timeout - seconds) * 1_000_000)))
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, value)
    except (OSError, AttributeError, struct.error):
        return
    sock.settimeout(None)


def _read_answer(sock: socket.socket) -> tuple[Answer, bool]:
    """One HTTP/1.x answer from ``sock``: the answer, and whether the connection may be reused."""
    recv = sock.recv
    try:
        data = recv(_RECV)
    except (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError) as error:
        raise _Closed(type(error).__name__) from None
    if not data:
        raise _Closed("closed before answering")
    while True:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head, data = data[:end], data[end + 4:]
            status, pairs, version_11 = _parse_head(head)
            if status >= 200:
                break
            continue  # 1xx (100 Continue): an interim answer, the real one follows
        if len(data) > _MAX_HEAD:
            raise TransportError("answer head too large")
        more = recv(_RECV)
        if not more:
            raise TransportError("closed in the middle of an answer")
        data += more
    length = None
    chunked = False
    keep = version_11
    for name, value in pairs:
        lowered = name.lower()
        if lowered == "content-length":
            if not value.isdigit() or (length is not None and int(value) != length):
                raise TransportError("bad Content-Length")
            length = int(value)
        elif lowered == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
        elif lowered == "connection":
            tokens = {token.strip().lower() for token in value.split(",")}
            if "close" in tokens:
                keep = False
            elif "keep-alive" in tokens and not version_11:
                keep = True
    if status in (204, 304):
        body = b""
        keep = keep and not data
    elif chunked:
        body, data = _read_chunked(recv, data)
        keep = keep and not data
    elif length is not None:
        if length > _MAX_BODY:
            raise TransportError("answer body too large")
        while len(data) < length:
            more = recv(_RECV)
            if not more:
                raise TransportError("closed in the middle of an answer")
            data += more
        body, data = data[:length], data[length:]
        keep = keep and not data  # bytes nobody asked for: never reuse the connection
    else:  # until TokenGate closes
        chunks = [data]
        size = len(data)
        while True:
            more = recv(_RECV)
            if not more:
                break
            size += len(more)
            if size > _MAX_BODY:
                raise TransportError("answer body too large")
            chunks.append(more)
        body = b"".join(chunks)
        keep = False
    return (status, pairs, body), keep


def _parse_head(head: bytes) -> tuple[int, list[tuple[str, str]], bool]:
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0]
    version, _, rest = status_line.partition(" ")
    code = rest[:3]
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit() or rest[3:4] not in ("", " "):
        raise TransportError("not an HTTP/1.x answer")
    pairs = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or "\n" in line:
            raise TransportError("malformed header field")  # obs-fold and bare LF included
        pairs.append((name, value.strip(" \t")))
    if len(pairs) > 100:
        raise TransportError("too many header fields")
    return int(code), pairs, version == "HTTP/1.1"


def _read_chunked(recv: Callable[[int], bytes], data: bytes) -> tuple[bytes, bytes]:
    """A chunked body from ``data`` and what ``recv`` brings; returns it and the bytes after it."""
    chunks: list[bytes] = []
    size = 0

    def fill(data: bytes, needed: int) -> bytes:
        while len(data) < needed:
            more = recv(_RECV)
            if not more:
                raise TransportError("closed in the middle of an answer")
            data += more
            if len(data) > _MAX_BODY + _MAX_HEAD:
                raise TransportError("answer body too large")
        return data

    while True:
        while b"\r\n" not in data:
            data = fill(data, len(data) + 1)
        line, data = data.split(b"\r\n", 1)
        digits = line.split(b";", 1)[0].strip()
        try:
            chunk = int(digits, 16)
        except ValueError:
            raise TransportError("bad chunk size") from None
        if chunk < 0:
            raise TransportError("bad chunk size")
        if chunk == 0:
            while True:  # trailer fields, up to the empty line
                while b"\r\n" not in data:
                    data = fill(data, len(data) + 1)
                trailer, data = data.split(b"\r\n", 1)
                if not trailer:
                    return b"".join(chunks), data
        size += chunk
        if size > _MAX_BODY:
            raise TransportError("answer body too large")
        data = fill(data, chunk + 2)
        if data[chunk:chunk + 2] != b"\r\n":
            raise TransportError("bad chunk")
        chunks.append(data[:chunk])
        data = data[chunk + 2:]
