"""verify's transport (tokengate_client._transport) against small raw-socket servers of the test's
own: one kept-alive connection per thread, a connection TokenGate closed replaced (and the one
resend that allows), answers that are not well-formed HTTP failing closed, and no connection shared
across threads or a fork."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Callable

import pytest

import tokengate_client as tokengate
from tokengate_client import InvalidRequest, TokenRevoked, Unavailable

OK = b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: sid-1\r\nContent-Length: 0\r\n\r\n"
BEARER = {"Authorization": "Bearer x.y.z"}

# What a connection's handler does with each request: an answer's bytes, or None to close it.
Script = Callable[[int, bytes], "bytes | None"]


class Raw:
    """A TCP server that reads each request (up to its empty line) and answers what ``script``
    returns for (connection number, request); records every connection and request."""

    def __init__(self, script: Script, tls: ssl.SSLContext | None = None) -> None:
        self.script = script
        self.tls = tls
        self.close_after_answer = False
        self.connections = 0
        self.requests: list[tuple[int, bytes]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.listener.getsockname()[1]}"
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            self.open.append(conn)
            threading.Thread(target=self._serve, args=(conn, self.connections), daemon=True).start()

    def _serve(self, conn: socket.socket, number: int) -> None:
        data = b""
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    try:
                        more = conn.recv(65536)
                    except OSError:
                        return
                    if not more:
                        return
                    data += more
                request, data = data.split(b"\r\n\r\n", 1)
                self.requests.append((number, request))
                answer = self.script(number, request)
                if answer is None:
                    return
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                if self.close_after_answer:
                    return

    def close(self) -> None:
        self.listener.close()
        for conn in self.open:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def raw() -> Iterator[Callable[[Script], Raw]]:
    made: list[Raw] = []

    def make(script: Script) -> Raw:
        server = Raw(script)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def test_one_connection_serves_every_call_of_a_thread(raw) -> None:  # noqa: ANN001
    server = raw(lambda number, request: OK)
    client = tokengate.Client(server.url)
    for _ in range(50):
        assert client.verify(BEARER).user == "alice"
    assert server.connections == 1 and len(server.requests) == 50
    first = server.requests[0][1].decode("latin-1").split("\r\n")
    assert first[0] == "GET /auth/verify HTTP/1.1"
    assert f"Host: {server.url[len('http://'):]}" in first and "Authorization: Bearer x.y.z" in first


def test_each_thread_has_its_own_connection(raw) -> None:  # noqa: ANN001
    server = raw(lambda number, request: OK)
    client = tokengate.Client(server.url)
    users: list[str] = []

    def work() -> None:
        for _ in range(10):
            users.append(client.verify(BEARER).user)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert users == ["alice"] * 40
    assert server.connections == 4


def test_a_connection_closed_while_idle_is_replaced_without_a_resend(raw, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    # TokenGate answers and closes (its idle timeout, seen before the next call): the next call
    # notices before sending and sends once, on a new connection.
    from tokengate_client import _transport

    monkeypatch.setattr(_transport, "_CHECK_AFTER", 0.0)
    server = raw(lambda number, request: OK[:-2] + b"Connection: close\r\n\r\n" if number == 1 else OK)
    client = tokengate.Client(server.url)
    assert client.verify(BEARER).user == "alice"
    assert client.verify(BEARER).user == "alice"
    assert [number for number, _ in server.requests] == [1, 2]

    closing = raw(lambda number, request: OK)
    client = tokengate.Client(closing.url)
    assert client.verify(BEARER).user == "alice"
    for conn in closing.open:
        conn.shutdown(socket.SHUT_RDWR)  # closed by the server while idle, without a word
    time.sleep(0.05)
    assert client.verify(BEARER).user == "alice"
    assert [number for number, _ in closing.requests] == [1, 2]


def test_a_kept_connection_closed_before_answering_is_tried_once_more(raw) -> None:  # noqa: ANN001
    # The race of TokenGate's idle timeout: the connection was fine when checked, and closed
    # without a byte of answer. Once more on a new connection; a new connection that does the same
    # is Unavailable, not retried.
    server = raw(lambda number, request: OK)
    client = tokengate.Client(server.url)
    assert client.verify(BEARER).user == "alice"
    server.script = lambda number, request: None if number == 1 else OK
    assert client.verify(BEARER).user == "alice"
    assert [number for number, _ in server.requests] == [1, 1, 2]
    server.script = lambda number, request: None
    with pytest.raises(Unavailable):
        client.verify(BEARER)
    # Connection 2 closed without answering, then one new connection (3) did the same: no more.
    assert [number for number, _ in server.requests] == [1, 1, 2, 2, 3]


def test_a_connection_is_never_used_after_a_fork(raw) -> None:  # noqa: ANN001
    if not hasattr(os, "fork"):
        pytest.skip("no fork here")
    server = raw(lambda number, request: OK)
    client = tokengate.Client(server.url)
    assert client.verify(BEARER).user == "alice"
    pid = os.fork()
    if pid == 0:  # the child: its own connection, never the parent's
        code = 0
        try:
            client.verify(BEARER)
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client.verify(BEARER).user == "alice"
    assert [number for number, _ in server.requests] == [1, 2, 1]


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: sid-1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n" + OK,
    b"HTTP/1.0 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: sid-1\r\n\r\n",
])
def test_other_well_formed_answers_are_read(raw, answer: bytes) -> None:  # noqa: ANN001
    server = raw(lambda number, request: answer)
    server.close_after_answer = answer.startswith(b"HTTP/1.0")  # no length: the body ends with the connection
    client = tokengate.Client(server.url)
    for _ in range(2):
        identity = client.verify(BEARER)
        assert (identity.user, identity.session_id) == ("alice", "sid-1")


def test_a_chunked_error_is_the_contracts_error(raw) -> None:  # noqa: ANN001
    body = b'{"error":"token_revoked","message":"the token is revoked"}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    answer = b"HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked
    server = raw(lambda number, request: answer)
    with pytest.raises(TokenRevoked):
        tokengate.Client(server.url).verify(BEARER)


@pytest.mark.parametrize("answer", [
    b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    b"HTTP/1.1 2OO OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\n folded: on\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: s\r\nContent-Length: 10\r\n\r\nshort",
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: s\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: s\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: s\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nX-Auth-User: alice\r\nX-Auth-Session: s\r\nContent-Length: 1048577\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 70000 + b"\r\n\r\n",
])
def test_an_answer_that_is_not_well_formed_http_is_unavailable(raw, answer: bytes) -> None:  # noqa: ANN001
    server = raw(lambda number, request: answer)
    server.close_after_answer = True
    with pytest.raises(Unavailable) as raised:
        tokengate.Client(server.url, timeout=1).verify(BEARER)
    assert raised.value.status == 503


def test_bytes_after_the_answer_are_never_read_as_the_next_answer(raw) -> None:  # noqa: ANN001
    forged = b"HTTP/1.1 200 OK\r\nX-Auth-User: mallory\r\nX-Auth-Session: sid-9\r\nContent-Length: 0\r\n\r\n"
    server = raw(lambda number, request: (OK + forged) if number == 1 else OK)
    client = tokengate.Client(server.url)
    assert client.verify(BEARER).user == "alice"
    assert client.verify(BEARER).user == "alice"  # a new connection: the extra answer went with the old one
    assert server.connections == 2


@pytest.mark.parametrize("value", ["Bearer a\r\nX-Auth-User: mallory", "Bearer a\nb", "Bearer a\0", "Bearer \u0100"])
def test_a_header_http_cannot_carry_is_invalid_request_and_nothing_is_sent(raw, value: str) -> None:  # noqa: ANN001
    server = raw(lambda number, request: OK)
    with pytest.raises(InvalidRequest):
        tokengate.Client(server.url).verify({"Authorization": value})
    time.sleep(0.05)
    assert server.requests == []


def test_latin1_header_values_pass_as_they_are(raw) -> None:  # noqa: ANN001
    server = raw(lambda number, request: OK)
    tokengate.Client(server.url).verify({"Cookie": "name=caf\u00e9"})
    assert b"Cookie: name=caf\xe9" in server.requests[0][1]


def test_a_path_prefix_in_the_url_is_kept(raw) -> None:  # noqa: ANN001
    server = raw(lambda number, request: OK)
    tokengate.Client(server.url + "/tokengate/").verify(BEARER)
    assert server.requests[0][1].startswith(b"GET /tokengate/auth/verify HTTP/1.1\r\n")


def test_https_is_the_same_transport_over_tls(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Raw(lambda number, request: OK, tls=context)
    try:
        # Not trusted: the certificate is checked (Unavailable, fail closed).
        with pytest.raises(Unavailable):
            tokengate.Client(server.url).verify(BEARER)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trusted from here on
        client = tokengate.Client(server.url)
        for _ in range(3):
            assert client.verify(BEARER).user == "alice"
        assert server.connections == 2  # the refused handshake, then one kept-alive connection
    finally:
        server.close()
