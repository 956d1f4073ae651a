"""AsyncClient on its own against the small fake servers of test_client_unit (no tokengate, no
Redis): the same error table, forwarding, retries, timeouts and secrecy as the sync Client, since
both are the one core; and the ASGI middleware's own answers, driven without a server."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from test_client_unit import CONTRACT, KEY, TOKEN, closed_port, fake, json_answer  # noqa: F401  (fake: the fixture)

import tokengate_client as tokengate
from tokengate_client import ConfigurationError, InvalidRequest, InvalidToken, RateLimited, TokenGateError, Unavailable
from tokengate_client.aio import AsyncClient
from tokengate_client.asgi import TokenGateMiddleware
from tokengate_client.testing import FakeTokenGate


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


@pytest.mark.parametrize(("code", "status", "cls"), CONTRACT)
def test_every_contract_code_has_its_class(fake, code: str, status: int, cls: type) -> None:  # noqa: ANN001, F811
    server = fake(json_answer(status, {"error": code, "message": "the text"}, ("Retry-After", "7")))
    with pytest.raises(cls) as raised:
        run(AsyncClient(server.url).verify({"Authorization": f"Bearer {TOKEN}"}))
    error = raised.value
    assert type(error) is cls and isinstance(error, TokenGateError)
    assert (error.code, error.message, error.status) == (code, "the text", status)
    if cls is RateLimited:
        assert error.retry_after == 7


@pytest.mark.parametrize("status", [502, 503, 500])
def test_a_proxys_error_page_is_unavailable(fake, status: int) -> None:  # noqa: ANN001, F811
    server = fake(lambda *_: (status, [("Content-Type", "text/html")], b"<html><h1>Bad Gateway</h1></html>"))
    client = AsyncClient(server.url, admin_url=server.url, admin_key=KEY)
    for call in (lambda: client.verify({}), lambda: client.start_session("alice"), lambda: client.sessions("alice")):
        with pytest.raises(Unavailable):
            run(call())


def test_refused_is_unavailable_and_only_a_verify_is_tried_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    client = AsyncClient(url, admin_url=url, admin_key=KEY, timeout=1)
    sent: list[str] = []
    original = client._send

    async def counting(call: Any) -> Any:
        sent.append(call.method)
        return await original(call)

    monkeypatch.setattr(client, "_send", counting)
    with pytest.raises(Unavailable):
        run(client.verify({"Authorization": f"Bearer {TOKEN}"}))
    assert sent == ["GET", "GET"]
    for call, method in ((lambda: client.start_session("alice"), "POST"), (lambda: client.end_sessions("alice"), "DELETE")):
        sent.clear()
        with pytest.raises(Unavailable):
            run(call())
        assert sent == [method]


def test_a_reset_or_silence_is_unavailable_and_never_sent_twice(fake) -> None:  # noqa: ANN001, F811
    server = fake(lambda *_: "reset")
    client = AsyncClient(server.url, admin_url=server.url, admin_key=KEY)
    for call in (lambda: client.start_session("alice"), lambda: client.end_sessions("alice"), lambda: client.verify({})):
        with pytest.raises(Unavailable):
            run(call())
    assert [r["method"] for r in server.requests] == ["POST", "DELETE", "GET"]
    server.answer = lambda *_: "hang"
    slow = AsyncClient(server.url, timeout=0.3)
    started = time.monotonic()
    with pytest.raises(Unavailable):
        run(slow.verify({}))
    assert time.monotonic() - started < 1.5


def test_verify_forwards_exactly_the_headers_tokengate_reads(fake) -> None:  # noqa: ANN001, F811
    server = fake(lambda *_: (200, [("X-Auth-User", "UTF-8''Zo%C3%AB"), ("X-Auth-Session", "sid-1"), ("X-Next-Token", "next"),
                                    ("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/")], b""))
    incoming = {"authorization": f"Bearer {TOKEN}", "COOKIE": "c=1", "Host": "app.example", "X-Secret": "no",
                "X-Auth-User": "mallory", "X-Original-URI": "/caf%C3%A9"}
    identity = run(AsyncClient(server.url).verify(incoming))
    assert identity == tokengate.Identity("Zo\u00eb", "sid-1", "next", ("a=1; Path=/", "b=2; Path=/"))
    got = {name.lower(): value for name, value in server.requests[0]["headers"].items()}
    assert got["authorization"] == f"Bearer {TOKEN}" and got["cookie"] == "c=1" and got["x-original-uri"] == "/caf%C3%A9"
    assert "x-secret" not in got and "x-auth-user" not in got
    for bad in ("a\r\nX-Injected: 1", "caf\u20ac"):
        with pytest.raises(InvalidRequest):
            run(AsyncClient(server.url).verify({"Cookie": bad}))
    assert len(server.requests) == 1  # never sent


def test_service_api_requests_and_secrecy(fake) -> None:  # noqa: ANN001, F811
    def answer(method: str, path: str, headers: Any, body: bytes) -> Any:
        if method == "POST":
            return json_answer(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 30, "session_id": "sid/1"})()
        if method == "GET":
            return json_answer(401, {"error": "invalid_token", "message": "not a service key"})()
        return (204, [], b"")

    server = fake(answer)
    client = AsyncClient("http://127.0.0.1:1", admin_url=server.url + "/", admin_key=KEY)
    session = run(client.start_session("carol", user_agent="Firefox/140"))
    assert session.access_token == TOKEN and session.session_id == "sid/1"
    assert run(client.end_session("a/b c@x", "sid/1")) is None
    with pytest.raises(InvalidToken) as raised:
        run(client.sessions("carol"))
    assert [(r["method"], r["path"]) for r in server.requests] == [
        ("POST", "/admin/v1/sessions"), ("DELETE", "/admin/v1/users/a%2Fb%20c%40x/sessions/sid%2F1"),
        ("GET", "/admin/v1/users/carol/sessions")]
    assert json.loads(server.requests[0]["body"]) == {"user": "carol", "user_agent": "Firefox/140"}
    assert all(r["headers"]["Authorization"] == f"Bearer {KEY}" for r in server.requests)
    for text in (repr(client), str(raised.value), repr(session)):
        assert KEY not in text and TOKEN not in text
    with pytest.raises(InvalidRequest):
        run(client.end_session("carol", ".."))


def test_settings_come_from_the_same_environment_names() -> None:
    environ = {"TOKENGATE_URL": "http://127.0.0.1:8080/", "TOKENGATE_ADMIN_URL": "http://127.0.0.1:9090",
               "TOKENGATE_ADMIN_KEY": KEY, "TOKENGATE_TIMEOUT": "0.5"}
    for client in (AsyncClient.from_env(environ), tokengate.Client.from_env(environ)):
        assert (client.url, client.admin_url, client.timeout, client.has_admin) == ("http://127.0.0.1:8080", "http://127.0.0.1:9090",
                                                                                      0.5, True)
    for bad in ({}, {"TOKENGATE_URL": "127.0.0.1:8080"}, {"TOKENGATE_URL": "http://x", "TOKENGATE_TIMEOUT": "soon"},
                {"TOKENGATE_URL": "http://x", "TOKENGATE_TRUSTED_PROXIES": "nginx"}):
        with pytest.raises(ConfigurationError):
            AsyncClient.from_env(bad)
        with pytest.raises(ConfigurationError):
            tokengate.Client.from_env(bad)


# -- the middleware's own decisions, driven as an ASGI server would ------------------------------------


async def drive(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if scope["type"] == "http":
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str = "/x", method: str = "GET", headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
            "headers": headers or [], "client": ("203.0.113.9", 5000), "server": ("app.example", 80)}


def test_websockets_are_guarded_and_non_http_scopes_pass() -> None:
    tg = FakeTokenGate()
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append((scope["type"], scope.get("state", {}).get("tokengate")))
        if scope["type"] == "http":
            headers = [(b"vary", b"Accept"), (b"cache-control", b"max-age=60")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b"hi"})

    guarded = TokenGateMiddleware(app, client=tg.aio)
    refused = run(drive(guarded, {**http_scope(), "type": "websocket"}))
    assert refused == [{"type": "websocket.close", "code": 1008, "reason": ""}] and seen == []
    session = tg.mint("carol")
    token = [(b"authorization", f"Bearer {session.access_token}".encode())]
    run(drive(guarded, {**http_scope(headers=token), "type": "websocket"}))
    assert seen[-1][0] == "websocket" and seen[-1][1].user == "carol"
    run(drive(guarded, {"type": "lifespan"}))
    assert seen[-1] == ("lifespan", None)
    with tg.down():
        assert run(drive(guarded, {**http_scope(headers=token), "type": "websocket"}))[0]["code"] == 1013
    # HEAD refusals have no body; rotation keeps the app's Vary and replaces its Cache-Control.
    head = run(drive(guarded, http_scope(method="HEAD")))
    assert head[0]["status"] == 401 and head[1]["body"] == b""
    rotated = TokenGateMiddleware(app, client=RotatingFake(tg).aio)
    answer = run(drive(rotated, http_scope(headers=token)))
    headers = dict(answer[0]["headers"])
    assert (headers[b"x-next-token"], headers[b"cache-control"]) == (b"next", b"no-store")
    assert headers[b"vary"] == b"Accept, Authorization, Cookie"


class RotatingFake(FakeTokenGate):
    """A fake whose verify hands over a successor token, as per-request rotation does."""

    def __init__(self, inner: FakeTokenGate) -> None:
        super().__init__()
        self.inner = inner

    def verify(self, headers: Any) -> tokengate.Identity:
        identity = self.inner.verify(headers)
        return tokengate.Identity(identity.user, identity.session_id, next_token="next")


def test_a_middleware_without_any_tokengate_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover - must never run
        raise AssertionError("the app ran")

    answer = run(drive(TokenGateMiddleware(app, environ={}), http_scope()))
    assert answer[0]["status"] == 503 and json.loads(answer[1]["body"])["error"] == "store_unavailable"
    assert "TOKENGATE_URL" in caplog.text


def test_a_middleware_wrapped_around_a_starlette_app_sees_its_routes_and_its_fake() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from tokengate_client.asgi import public

    async def page(request: Any) -> PlainTextResponse:
        identity = request.state.tokengate
        return PlainTextResponse(identity.user if identity else "anyone")

    inner = Starlette(routes=[Route("/me", page), public(Route("/open", page))])
    wrapped = TokenGateMiddleware(inner, environ={})  # outside the app: no scope["app"] yet
    tg = FakeTokenGate()
    tg.install(inner)
    carol = [(b"authorization", f"Bearer {tg.mint('Carol Smith').access_token}".encode())]
    assert run(drive(wrapped, http_scope("/open")))[1]["body"] == b"anyone"
    assert run(drive(wrapped, http_scope("/me")))[0]["status"] == 401
    assert run(drive(wrapped, http_scope("/me", headers=carol)))[1]["body"] == b"Carol Smith"
