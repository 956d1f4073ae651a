"""The Client on its own, against small fake servers of the test's own (no tokengate, no Redis):
error mapping, what is forwarded, what is never re-sent, what never leaks."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest
import urllib3
from werkzeug.datastructures import Headers

import tokengate_client as tokengate
from tokengate_client import (
    ConfigurationError,
    CSRFFailed,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Session,
    SessionExpired,
    StoreUnavailable,
    TokenExpired,
    TokenGateError,
    TokenRevoked,
    Unavailable,
)

KEY = "tgsk_" + "k" * 43
TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"

CONTRACT = [
    ("invalid_request", 400, InvalidRequest),
    ("payload_too_large", 413, PayloadTooLarge),
    ("invalid_credentials", 401, InvalidCredentials),
    ("missing_token", 401, MissingToken),
    ("invalid_token", 401, InvalidToken),
    ("token_expired", 401, TokenExpired),
    ("token_revoked", 401, TokenRevoked),
    ("session_expired", 401, SessionExpired),
    ("csrf_failed", 403, CSRFFailed),
    ("not_found", 404, NotFound),
    ("rate_limited", 429, RateLimited),
    ("store_unavailable", 503, StoreUnavailable),
]


class Fake:
    """A fake TokenGate: records every request; ``answer(method, path, headers, body)`` returns
    (status, headers, body) or one of "reset" (close without answering) and "hang"."""

    def __init__(self, answer: Callable[..., Any]) -> None:
        self.answer = answer
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fake.requests.append({"method": self.command, "path": self.path, "headers": self.headers, "body": body})
                outcome = fake.answer(self.command, self.path, self.headers, body)
                if outcome == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                    return
                if outcome == "hang":
                    time.sleep(1.5)
                    self.close_connection = True
                    return
                status, headers, data = outcome
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = handle_one

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[Callable[..., Fake]]:
    made: list[Fake] = []

    def make(answer: Callable[..., Any]) -> Fake:
        server = Fake(answer)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def json_answer(status: int, body: Any, *headers: tuple[str, str]) -> Callable[..., Any]:
    return lambda *_: (status, [("Content-Type", "application/json"), *headers], json.dumps(body).encode())


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("code", "status", "cls"), CONTRACT)
def test_every_contract_code_has_its_class(fake, code: str, status: int, cls: type) -> None:  # noqa: ANN001
    server = fake(json_answer(status, {"error": code, "message": "the text"}, ("Retry-After", "7")))
    with pytest.raises(cls) as raised:
        tokengate.Client(server.url).verify({"Authorization": f"Bearer {TOKEN}"})
    error = raised.value
    assert type(error) is cls and isinstance(error, TokenGateError)
    assert (error.code, error.message, error.status) == (code, "the text", status)
    if cls is RateLimited:
        assert error.retry_after == 7


def test_an_unknown_code_is_the_base_class(fake) -> None:  # noqa: ANN001
    server = fake(json_answer(418, {"error": "teapot", "message": "short and stout"}))
    with pytest.raises(TokenGateError) as raised:
        tokengate.Client(server.url).verify({})
    assert type(raised.value) is TokenGateError
    assert (raised.value.code, raised.value.status) == ("teapot", 418)


def test_the_same_table_serves_the_service_api(fake) -> None:  # noqa: ANN001
    server = fake(json_answer(404, {"error": "not_found", "message": "not found"}))
    client = tokengate.Client(server.url, admin_url=server.url, admin_key=KEY)
    with pytest.raises(NotFound):
        client.end_session("alice", "sid")
    server.answer = json_answer(400, {"error": "invalid_request", "message": "bad user"})
    with pytest.raises(InvalidRequest):
        client.start_session("Not A User!")


@pytest.mark.parametrize("status", [502, 503, 504, 500])
def test_a_proxys_error_page_is_unavailable(fake, status: int) -> None:  # noqa: ANN001
    server = fake(lambda *_: (status, [("Content-Type", "text/html")], b"<html><h1>Bad Gateway</h1></html>"))
    client = tokengate.Client(server.url, admin_url=server.url, admin_key=KEY)
    for call in (lambda: client.verify({}), lambda: client.start_session("alice"), lambda: client.sessions("alice")):
        with pytest.raises(Unavailable) as raised:
            call()
        assert (raised.value.code, raised.value.status) == ("unavailable", 503)
        assert isinstance(raised.value, TokenGateError)


def test_refused_is_unavailable_and_only_a_verify_is_tried_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    client = tokengate.Client(url, admin_url=url, admin_key=KEY, timeout=1)
    sent: list[str] = []
    original = client._pool.request

    def counting(method: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(method)
        return original(method, *args, **kwargs)

    monkeypatch.setattr(client._pool, "request", counting)
    connecting = socket.create_connection

    def connect(*args: Any, **kwargs: Any) -> socket.socket:
        sent.append("GET")
        return connecting(*args, **kwargs)

    # verify's own transport (tokengate_client._transport) connects with socket.create_connection.
    monkeypatch.setattr(socket, "create_connection", connect)
    with pytest.raises(Unavailable):
        client.verify({"Authorization": f"Bearer {TOKEN}"})
    assert sent == ["GET", "GET"]
    monkeypatch.setattr(socket, "create_connection", connecting)
    for call, method in ((lambda: client.start_session("alice"), "POST"), (lambda: client.end_sessions("alice"), "DELETE"),
                         (lambda: client.end_session("alice", "s"), "DELETE")):
        sent.clear()
        with pytest.raises(Unavailable):
            call()
        assert sent == [method]


def test_a_reset_is_unavailable_and_a_post_is_never_sent_twice(fake) -> None:  # noqa: ANN001
    server = fake(lambda *_: "reset")
    client = tokengate.Client(server.url, admin_url=server.url, admin_key=KEY)
    with pytest.raises(Unavailable):
        client.start_session("alice")
    with pytest.raises(Unavailable):
        client.end_sessions("alice")
    with pytest.raises(Unavailable):
        client.verify({})
    # One request each: a reset after the request was sent is never retried (it may have been done).
    assert [r["method"] for r in server.requests] == ["POST", "DELETE", "GET"]


def test_a_silent_tokengate_is_unavailable_after_the_timeout(fake) -> None:  # noqa: ANN001
    server = fake(lambda *_: "hang")
    client = tokengate.Client(server.url, admin_url=server.url, admin_key=KEY, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        client.verify({})
    with pytest.raises(Unavailable):
        client.start_session("alice")
    assert time.monotonic() - started < 2.5
    assert len(server.requests) == 2


def test_verify_forwards_exactly_the_headers_tokengate_reads(fake) -> None:  # noqa: ANN001
    server = fake(lambda *_: (200, [("X-Auth-User", "alice"), ("X-Auth-Session", "sid-1"), ("X-Next-Token", "next"),
                                    ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")], b""))
    incoming = {
        "authorization": f"Bearer {TOKEN}", "COOKIE": "__Host-tg_csrf=c", "Origin": "https://app.example",
        "sec-fetch-site": "same-origin", "X-Csrf-Token": "c", "X-Original-Method": "POST",
        "X-Original-URI": "/reports?x=1", "X-Forwarded-For": "203.0.113.9", "Host": "app.example",
        "X-Secret": "do not forward", "Content-Type": "application/json", "X-Auth-User": "mallory",
    }
    identity = tokengate.Client(server.url).verify(incoming)
    assert identity == tokengate.Identity("alice", "sid-1", "next", ("a=1; Path=/", "b=2; Path=/"))
    assert list(identity.set_cookie) == ["a=1; Path=/", "b=2; Path=/"]
    (request,) = server.requests
    assert (request["method"], request["path"]) == ("GET", "/auth/verify")
    got = {name.lower(): value for name, value in request["headers"].items()}
    for name in tokengate.VERIFY_HEADERS:
        assert got[name.lower()] == next(v for k, v in incoming.items() if k.lower() == name.lower()), name
    for name in ("x-secret", "content-type", "x-auth-user"):
        assert name not in got
    assert TOKEN not in repr(identity) and "next" not in repr(identity)


def test_verify_takes_any_headers_mapping(fake) -> None:  # noqa: ANN001
    server = fake(lambda *_: (200, [("X-Auth-User", "bob"), ("X-Auth-Session", "s")], b""))
    headers = Headers([("Authorization", f"Bearer {TOKEN}"), ("Host", "example.test")])
    assert tokengate.Client(server.url).verify(headers).user == "bob"
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert tokengate.Client(server.url + "/").verify(urllib3.HTTPHeaderDict({"authorization": "Bearer x"})).next_token is None


def test_a_200_without_an_identity_is_not_trusted(fake) -> None:  # noqa: ANN001
    server = fake(lambda *_: (200, [("Content-Type", "text/html")], b"<html>a captive portal</html>"))
    with pytest.raises(Unavailable):
        tokengate.Client(server.url).verify({"Authorization": f"Bearer {TOKEN}"})


def test_service_api_requests(fake) -> None:  # noqa: ANN001
    def answer(method: str, path: str, headers: Any, body: bytes) -> Any:
        if method == "POST":
            return json_answer(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 30,
                                     "session_id": "sid/1", "set_cookie": ["__Host-tg_token=x; Path=/", "__Host-tg_csrf=y"]})()
        if method == "GET":
            return json_answer(200, [{"session_id": "sid/1", "created_at": "2026-01-01T00:00:00Z",
                                      "last_seen": "2026-01-01T00:00:01Z", "expires_in": 29,
                                      "user_agent": "Firefox/140", "ip": "203.0.113.9", "current": False}])()
        return (204, [], b"")

    server = fake(answer)
    client = tokengate.Client("http://127.0.0.1:1", admin_url=server.url + "/", admin_key=KEY)
    session = client.start_session("carol", user_agent="Firefox/140", ip="203.0.113.9")
    client.start_session("dave")
    assert client.sessions("a/b c@x") == [tokengate.SessionInfo("sid/1", "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z",
                                                                 29, "Firefox/140", "203.0.113.9", False)]
    assert client.end_sessions("a/b c@x") is None
    assert client.end_session("a/b c@x", session.session_id) is None
    assert [(r["method"], r["path"]) for r in server.requests] == [
        ("POST", "/admin/v1/sessions"),
        ("POST", "/admin/v1/sessions"),
        ("GET", "/admin/v1/users/a%2Fb%20c%40x/sessions"),
        ("DELETE", "/admin/v1/users/a%2Fb%20c%40x/sessions"),
        ("DELETE", "/admin/v1/users/a%2Fb%20c%40x/sessions/sid%2F1"),
    ]
    assert json.loads(server.requests[0]["body"]) == {"user": "carol", "user_agent": "Firefox/140", "ip": "203.0.113.9"}
    assert json.loads(server.requests[1]["body"]) == {"user": "dave"}
    assert server.requests[0]["headers"]["Content-Type"] == "application/json"
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.requests)
    assert session.set_cookie == ("__Host-tg_token=x; Path=/", "__Host-tg_csrf=y")


def test_a_session_reads_as_attributes_and_as_a_read_only_mapping() -> None:
    session = Session(TOKEN, "Bearer", 30, "sid-1", ("__Host-tg_token=x",))
    assert session["access_token"] == session.access_token == TOKEN
    assert session["expires_in"] == 30 and session["session_id"] == "sid-1" and session["token_type"] == "Bearer"
    assert dict(session) == session.to_dict() == {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 30,
                                                  "session_id": "sid-1"}
    assert json.loads(json.dumps(session.to_dict()))["access_token"] == TOKEN
    with pytest.raises(TypeError):
        session["access_token"] = "x"  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.access_token = "x"  # type: ignore[misc]
    with pytest.raises(KeyError):
        session["password"]
    assert TOKEN not in repr(session) and TOKEN not in str(session)


def test_missing_settings_are_clear_errors_before_any_request() -> None:
    client = tokengate.Client(f"http://127.0.0.1:{closed_port()}")
    assert not client.has_admin
    for call in (lambda: client.start_session("a"), lambda: client.sessions("a"), lambda: client.end_sessions("a"),
                 lambda: client.end_session("a", "s")):
        with pytest.raises(ConfigurationError, match="admin_url"):
            call()
    assert issubclass(ConfigurationError, ValueError)
    for url in ("", "127.0.0.1:8080", "ftp://x", None):
        with pytest.raises(ConfigurationError):
            tokengate.Client(url)  # type: ignore[arg-type]


def test_no_key_or_token_in_errors_reprs_or_logs(fake, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    caplog.set_level(logging.DEBUG)
    server = fake(json_answer(401, {"error": "invalid_token", "message": "the token is invalid: not a service key"},
                              ("WWW-Authenticate", 'Bearer realm="tokengate", error="invalid_token"')))
    client = tokengate.Client(server.url, admin_url=server.url, admin_key=KEY)
    seen = [repr(client), str(client)]
    for call in (lambda: client.start_session("alice"), lambda: client.verify({"Authorization": f"Bearer {TOKEN}"})):
        with pytest.raises(InvalidToken) as raised:
            call()
        seen += [str(raised.value), repr(raised.value), str(raised.value.args)]
    assert raised.value.headers["www-authenticate"].endswith('error="invalid_token"')
    dead = tokengate.Client(f"http://127.0.0.1:{closed_port()}", admin_url=server.url, admin_key=KEY)
    server.close()
    for call in (lambda: dead.verify({"Authorization": f"Bearer {TOKEN}"}), lambda: dead.start_session("alice")):
        with pytest.raises(Unavailable) as unreachable:
            call()
        seen += [str(unreachable.value), repr(unreachable.value.__cause__), repr(unreachable.value.__context__)]
    seen += [record.getMessage() for record in caplog.records]
    for text in seen:
        assert KEY not in text and TOKEN not in text


@pytest.mark.parametrize(("user", "header"), [
    ("alice", "alice"),
    ("Carol Smith", "Carol Smith"),
    ("dave+tag@example.com", "dave+tag@example.com"),
    ("{x}", "{x}"),
    ("100%", "100%"),
    ("Zo\u00eb", "UTF-8''Zo%C3%AB"),
    ("\u212aate", "UTF-8''%E2%84%AAate"),
    (" padded ", "UTF-8''%20padded%20"),
    ("UTF-8''x", "UTF-8''UTF-8%27%27x"),
    ("utf-8''x", "UTF-8''utf-8%27%27x"),
])
def test_x_auth_user_encoding_round_trips(user: str, header: str) -> None:
    assert tokengate.encode_user_header(user) == header
    assert tokengate.decode_user_header(header) == user


@pytest.mark.parametrize("value", ["UTF-8''%", "UTF-8''%zz", "UTF-8''%FF", "UTF-8''a b", "UTF-8''%C3"])
def test_x_auth_user_that_does_not_decode_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        tokengate.decode_user_header(value)
