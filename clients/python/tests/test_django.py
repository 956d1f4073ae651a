"""The Django middleware end to end: the tests' Django project (django_site/) served by waitress,
against the real tokengate and a real Redis; settings through pytest-django's ``settings``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from django.core.handlers.wsgi import WSGIHandler
from harness import Redis, TokenGate, call, error_code, raw_request

from tokengate_client import Client, StoreUnavailable, Unavailable

GUARDED = [("GET", "/api/me"), ("GET", "/api/notes"), ("POST", "/api/notes"), ("GET", "/report"), ("GET", "/items/7"),
           ("GET", "/things"), ("GET", "/echo"), ("GET", "/no/such/page"), ("GET", "/public")]


@pytest.fixture
def site(settings: Any, serve: Callable[..., str]) -> Callable[..., str]:
    """Points the project at a TokenGate (and any other settings) and serves it; returns its URL."""

    def start(tg: TokenGate, **more: Any) -> str:
        settings.TOKENGATE_URL = tg.url
        settings.TOKENGATE_ADMIN_URL = tg.admin_url
        settings.TOKENGATE_ADMIN_KEY = tg.admin_key
        for name, value in more.items():
            setattr(settings, name, value)
        return serve(WSGIHandler())

    return start


def admin(tg: TokenGate) -> Client:
    return Client(tg.url, admin_url=tg.admin_url, admin_key=tg.admin_key)


def test_every_view_and_unknown_path_is_refused_without_a_token(tokengate: TokenGate, site: Callable[..., str]) -> None:
    base = site(tokengate)
    for method, path in GUARDED:
        for token in (None, "not.a.token"):
            answer = call(base, method, path, token)
            assert answer.status == 401, (method, path, token, answer.status)
            assert error_code(answer) in ("missing_token", "invalid_token")
            assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="tokengate"')
            assert answer.headers["Cache-Control"] == "no-store"
    assert call(base, "GET", "/healthz").data == b"ok"
    assert json.loads(call(base, "GET", "/open").data) == {"identity": False, "x_auth_user": None}
    assert json.loads(call(base, "GET", "/public/ping").data) == {"identity": False, "x_auth_user": None}


def test_a_session_started_through_the_app_reaches_the_views_with_the_id_as_given(
    tokengate: TokenGate, site: Callable[..., str]
) -> None:
    base = site(tokengate)
    for user in ("carol", "Carol Smith", "dave+tag@example.com", "Zo\u00eb \u00dcnal", "\u212aate", "{x}"):
        login = call(base, "POST", "/login", headers={"Content-Type": "application/json", "User-Agent": "Firefox/140"},
                     body=json.dumps({"user": user}).encode())
        assert login.status == 200 and login.headers["Cache-Control"] == "no-store"
        grant = json.loads(login.data)
        assert set(grant) == {"access_token", "token_type", "expires_in", "session_id"}
        me = call(base, "GET", "/api/me", grant["access_token"])
        assert (me.status, json.loads(me.data)) == (200, {"user": user, "session": grant["session_id"]}), repr(user)
        listed = admin(tokengate).sessions(user)
        assert [(s.session_id, s.user_agent, s.ip) for s in listed] == [(grant["session_id"], "Firefox/140", "127.0.0.1")]
    token = json.loads(call(base, "POST", "/login", body=b'{"user": "erin"}').data)["access_token"]
    for method, path in GUARDED[:-2]:
        assert call(base, method, path, token).status in (200, 201), (method, path)
    # With a valid token an unknown path is Django's own 404.
    assert call(base, "GET", "/no/such/page", token).status == 404


def test_revoked_sessions_are_refused_at_once(tokengate: TokenGate, site: Callable[..., str]) -> None:
    base = site(tokengate)
    client = admin(tokengate)
    first, second = client.start_session("Carol Smith"), client.start_session("Carol Smith")
    assert call(base, "GET", "/api/me", first.access_token).status == 200
    client.end_session("Carol Smith", first.session_id)
    refused = call(base, "GET", "/api/me", first.access_token)
    assert (refused.status, error_code(refused)) == (401, "token_revoked")
    assert call(base, "GET", "/api/me", second.access_token).status == 200
    # Logout through the app (auth_urls(): /auth/* passed to TokenGate).
    assert call(base, "POST", "/auth/logout", second.access_token).status == 204
    assert error_code(call(base, "GET", "/api/me", second.access_token)) == "token_revoked"


def test_tokengate_or_redis_down_is_503_never_the_view(start_tokengate: Callable[..., TokenGate], work: str,
                                                        site: Callable[..., str]) -> None:
    own_redis = Redis(work)
    try:
        instance = start_tokengate(on=own_redis)
        base = site(instance)
        session = admin(instance).start_session("grace")
        assert call(base, "GET", "/report", session.access_token).status == 200
        own_redis.stop()
        answer = call(base, "GET", "/report", session.access_token)
        assert (answer.status, error_code(answer), answer.headers["Retry-After"]) == (503, "store_unavailable", "1")
        assert b"report for" not in answer.data
        with pytest.raises(StoreUnavailable):
            admin(instance).start_session("grace")
        instance.stop()
        for method, path in (("GET", "/report"), ("POST", "/api/notes"), ("GET", "/no/such/page")):
            answer = call(base, method, path, session.access_token)
            assert (answer.status, error_code(answer), answer.headers["Retry-After"]) == (503, "store_unavailable", "1")
        # The app's login view, whose start_session raised Unavailable: the same 503, not a 500.
        login = call(base, "POST", "/login", body=b'{"user": "grace"}')
        assert (login.status, error_code(login), login.headers["Retry-After"]) == (503, "store_unavailable", "1")
        with pytest.raises(Unavailable):
            admin(instance).start_session("grace")
        assert call(base, "GET", "/healthz").data == b"ok"  # public views need no TokenGate
    finally:
        own_redis.stop()


def test_rotation_successors_are_copied_onto_the_answer(start_tokengate: Callable[..., TokenGate],
                                                       site: Callable[..., str]) -> None:
    instance = start_tokengate({"TOKENGATE_ROTATION": "per-request"})
    base = site(instance)
    token = admin(instance).start_session("heidi").access_token
    for method, path, status in (("GET", "/report", 200), ("POST", "/api/notes", 201), ("GET", "/no/such/page", 404)):
        answer = call(base, method, path, token)
        assert answer.status == status, (method, path)
        successor = answer.headers.get("X-Next-Token")
        assert successor and successor != token
        # The report said "public, max-age=3600": an answer carrying a live token is never cached.
        assert answer.headers["Cache-Control"] == "no-store"
        assert {"Authorization", "Cookie"} <= {v.strip() for v in answer.headers["Vary"].split(",")}
        token = successor
    assert call(base, "GET", "/report", token).status == 200


def test_cors_preflights_pass_to_the_app(tokengate: TokenGate, site: Callable[..., str]) -> None:
    base = site(tokengate)
    asking = {"Origin": "https://spa.example", "Access-Control-Request-Method": "GET"}
    preflight = call(base, "OPTIONS", "/things", headers=asking)
    assert preflight.status == 200 and "GET" in preflight.headers["Allow"]  # the class-based view's own answer
    assert call(base, "OPTIONS", "/things", headers={"Origin": "https://spa.example"}).status == 401  # no preflight
    assert call(base, "GET", "/things", headers={"Origin": "https://spa.example"}).status == 401


def test_forged_identity_headers_are_believed_only_from_trusted_proxies(tokengate: TokenGate,
                                                                       site: Callable[..., str]) -> None:
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "x" * 22}
    untrusted = site(tokengate)
    assert call(untrusted, "GET", "/echo", headers=forged).status == 401
    assert json.loads(call(untrusted, "GET", "/healthz/../open", headers=forged).data)["x_auth_user"] is None
    assert json.loads(call(untrusted, "GET", "/open", headers=forged).data) == {"identity": False, "x_auth_user": None}
    session = admin(tokengate).start_session("oscar")
    mine = json.loads(call(untrusted, "GET", "/echo", session.access_token, headers=forged).data)
    assert mine == {"user": "oscar", "x_auth_user": None, "secret": None}
    trusted = site(tokengate, TOKENGATE_TRUSTED_PROXIES="127.0.0.1", TOKENGATE_PROXY_SECRET="s3cret")
    believed = json.loads(call(trusted, "GET", "/echo", headers={**forged, "X-TokenGate-Proxy-Secret": "s3cret"}).data)
    assert believed == {"user": "mallory", "x_auth_user": "mallory", "secret": None}
    assert call(trusted, "GET", "/echo", headers={**forged, "X-TokenGate-Proxy-Secret": "guess"}).status == 401
    assert call(trusted, "GET", "/echo", headers=forged).status == 401
    # The same server, reached from another address (127.0.0.2): the headers are ignored.
    port = int(trusted.rsplit(":", 1)[1])
    other = urllib3.HTTPConnectionPool("127.0.0.1", port, source_address=("127.0.0.2", 0), retries=False)
    assert other.request("GET", "/echo", headers={**forged, "X-TokenGate-Proxy-Secret": "s3cret"}).status == 401
    other.close()


def test_no_request_a_client_can_send_makes_the_middleware_fail(tokengate: TokenGate, site: Callable[..., str]) -> None:
    base = site(tokengate)
    host = b"Host: " + urlsplit(base).netloc.encode()
    for target, status in ((b"/caf%C3%A9", 401), (b"/%E2%82%AC/%F0%9F%98%80", 401), (b"/a%0D%0AX-Injected:%201", 401),
                           (b"/%FF%FE", 401), (b"/api/me?q=%0D%0A&x=%E2%82%AC", 401), (b"/%C3%28", 401),
                           (b"/public/../api/me", 401), (b"/public/%2e%2e/api/me", 401),
                           (b"/auth/%2e%2e/metrics", 404), (b"/auth/..%2Fmetrics", 404), (b"/auth/x/%2E%2E/%2E%2E/healthz", 404)):
        assert raw_request(base, b"GET " + target + b" HTTP/1.1\r\n" + host + b"\r\n") == status, target
    assert raw_request(base, b"GET /api/me HTTP/1.1\r\n" + host + b"\r\nX-Auth-User: \xc3\xa9\xff\r\n") == 401
    cookies = "; ".join(f"c{n}={'x' * 3500}" for n in range(5))
    big = call(base, "GET", "/api/me", headers={"Cookie": cookies})
    assert (big.status, error_code(big)) == (431, "headers_too_large")
    assert call(base, "GET", "/api/me", headers={"X-Trace": "x" * 17000}).status == 401  # not TokenGate's business
    assert call(base, "GET", "/tokengate.js").status == 200


def test_cookie_mode_sessions_started_by_the_project(start_tokengate: Callable[..., TokenGate],
                                                    site: Callable[..., str]) -> None:
    instance = start_tokengate({"TOKENGATE_COOKIE": "on"})
    base = site(instance)
    login = call(base, "POST", "/login", body=b'{"user": "ivan"}')
    assert login.status == 200 and login.headers["Cache-Control"] == "no-store"
    cookies = login.headers.getlist("Set-Cookie")
    token_cookie = next(c for c in cookies if c.startswith("__Host-tg_token="))
    attributes = {part.strip().split("=", 1)[0].lower() for part in token_cookie.split(";")[1:]}
    assert {"path", "secure", "httponly", "samesite"} <= attributes, token_cookie
    jar = "; ".join(c.split(";", 1)[0] for c in cookies)
    page = call(base, "GET", "/report", headers={"Cookie": jar})
    assert page.status == 200 and b"ivan" in page.data
    # A state-changing request on the cookie alone needs TokenGate's double-submit token.
    refused = call(base, "POST", "/api/notes", headers={"Cookie": jar, "Origin": base})
    assert (refused.status, error_code(refused)) == (403, "csrf_failed")
    csrf = next(c.split(";", 1)[0].split("=", 1)[1] for c in cookies if c.startswith("__Host-tg_csrf="))
    assert call(base, "POST", "/api/notes", headers={"Cookie": jar, "Origin": base, "X-CSRF-Token": csrf}).status == 201
