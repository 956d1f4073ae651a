"""The Django middleware's decisions with a stand-in Client (no tokengate needed): what is guarded,
what is answered on each failure, what is passed on, and the settings."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import Client as WebClient
from django.test import RequestFactory
from test_flask_unit import WWW, StandIn

from tokengate_client import (
    ConfigurationError,
    CSRFFailed,
    HeadersTooLarge,
    Identity,
    InvalidRequest,
    InvalidToken,
    RateLimited,
    StoreUnavailable,
    TokenExpired,
    TokenGateError,
    Unavailable,
)
from tokengate_client import django as tgdjango

ALICE = Identity("alice", "sid-a")
INVALID = WWW + ', error="invalid_token"'


@pytest.fixture
def stand_in(settings: Any) -> StandIn:
    client = StandIn()
    settings.TOKENGATE_CLIENT = client
    return client


def web(**extra: Any) -> WebClient:
    return WebClient(**extra)


def test_guarded_by_default_public_by_mark_or_prefix(stand_in: StandIn) -> None:
    browser = web()
    for path in ("/api/me", "/report", "/things", "/items/3", "/echo", "/no/such/page", "/public", "/publicx", "/healthzx"):
        answer = browser.get(path)
        assert (answer.status_code, answer.json()["error"]) == (401, "missing_token"), path
        assert answer["WWW-Authenticate"] == WWW and answer["Cache-Control"] == "no-store"
    assert len(stand_in.verified) == 9
    assert browser.get("/healthz").content == b"ok"
    assert browser.get("/open").json() == {"identity": False, "x_auth_user": None}
    assert browser.get("/public/ping").json() == {"identity": False, "x_auth_user": None}
    assert len(stand_in.verified) == 9
    stand_in.outcome = ALICE
    assert browser.get("/api/me").json() == {"user": "alice", "session": "sid-a"}
    assert browser.get("/no/such/page").status_code == 404


def test_what_verify_is_told(stand_in: StandIn) -> None:
    web().post("/api/notes?a=1&b=%E2%82%AC", HTTP_AUTHORIZATION="Bearer t", HTTP_COOKIE="a=b", HTTP_ORIGIN="https://x",
               HTTP_X_CSRF_TOKEN="c", HTTP_SEC_FETCH_SITE="same-origin", HTTP_X_FORWARDED_FOR="6.6.6.6",
               HTTP_HOST="app.example:8000", HTTP_X_UNRELATED="u", REMOTE_ADDR="203.0.113.5")
    assert stand_in.verified == [{
        "Authorization": "Bearer t", "Cookie": "a=b", "Origin": "https://x", "Sec-Fetch-Site": "same-origin",
        "X-CSRF-Token": "c", "X-Original-Method": "POST", "X-Original-URI": "/api/notes?a=1&b=%E2%82%AC",
        "X-Forwarded-For": "203.0.113.5", "Host": "app.example:8000",
    }]


@pytest.mark.parametrize(("error", "status", "code"), [
    (InvalidToken("invalid_token", "bad", 401, {"www-authenticate": INVALID}), 401, "invalid_token"),
    (TokenExpired("token_expired", "old", 401, {"www-authenticate": INVALID}), 401, "token_expired"),
    (CSRFFailed("csrf_failed", "csrf", 403), 403, "csrf_failed"),
    (InvalidRequest("invalid_request", "bad", 400), 400, "invalid_request"),
    (HeadersTooLarge("headers_too_large", "big", 431), 431, "headers_too_large"),
    (RateLimited("rate_limited", "slow", 429, {"retry-after": "3"}), 429, "rate_limited"),
    (StoreUnavailable("store_unavailable", "redis", 503), 503, "store_unavailable"),
    (Unavailable("down"), 503, "store_unavailable"),
    (TokenGateError("something_new", "?", 502), 503, "store_unavailable"),
])
def test_every_failure_is_answered_with_its_code(stand_in: StandIn, error: TokenGateError, status: int, code: str) -> None:
    stand_in.outcome = error
    answer = web().get("/report")
    assert (answer.status_code, answer.json()["error"], answer["Cache-Control"]) == (status, code, "no-store")
    if status == 401:
        assert answer["WWW-Authenticate"] == INVALID
    if status == 429:
        assert answer["Retry-After"] == "3"
    if status == 503:
        assert answer["Retry-After"] == "1"


def test_rotation_and_cookies_are_passed_on_uncacheable(stand_in: StandIn) -> None:
    stand_in.outcome = Identity("alice", "sid-a", next_token="next", set_cookie=(
        "__Host-tg_token=next; Path=/; Max-Age=30; Secure; HttpOnly; SameSite=Strict",
        "__Host-tg_csrf=c1; Path=/; Max-Age=30; Secure; SameSite=Strict"))
    answer = web().get("/report")
    assert answer.status_code == 200 and answer["X-Next-Token"] == "next" and answer["Cache-Control"] == "no-store"
    assert {"Authorization", "Cookie"} <= {v.strip() for v in answer["Vary"].split(",")}
    token = answer.cookies["__Host-tg_token"]
    assert (token.value, token["path"], token["max-age"], token["secure"], token["httponly"], token["samesite"]) == (
        "next", "/", "30", True, True, "Strict")
    assert answer.cookies["__Host-tg_csrf"].value == "c1" and not answer.cookies["__Host-tg_csrf"]["httponly"]
    stand_in.outcome = ALICE
    plain = web().get("/report")
    assert plain["Cache-Control"] == "public, max-age=3600" and "X-Next-Token" not in plain


def test_identity_headers_only_from_trusted_proxies_with_the_secret(stand_in: StandIn, settings: Any) -> None:
    forged = {"HTTP_X_AUTH_USER": "mallory", "HTTP_X_AUTH_SESSION": "s-m"}
    assert web().get("/echo", **forged).status_code == 401
    stand_in.outcome = ALICE
    assert web().get("/echo", **forged).json() == {"user": "alice", "x_auth_user": None, "secret": None}
    stand_in.outcome, stand_in.verified = StandIn().outcome, []  # missing_token again
    settings.TOKENGATE_TRUSTED_PROXIES = "10.0.0.0/8, 192.0.2.1"
    from_proxy = web(REMOTE_ADDR="10.1.2.3")
    assert from_proxy.get("/echo", **forged).json() == {"user": "mallory", "x_auth_user": "mallory", "secret": None}
    encoded = {"HTTP_X_AUTH_USER": "UTF-8''Zo%C3%AB", "HTTP_X_AUTH_SESSION": "s-z"}
    assert from_proxy.get("/echo", **encoded).json()["user"] == "Zo\u00eb"
    assert stand_in.verified == []
    assert from_proxy.get("/echo", HTTP_X_AUTH_USER="UTF-8''%FF", HTTP_X_AUTH_SESSION="s").status_code == 401
    assert web(REMOTE_ADDR="10.1.2.3").get("/open", **forged).json() == {"identity": False, "x_auth_user": None}
    assert web(REMOTE_ADDR="198.51.100.1").get("/echo", **forged).status_code == 401
    settings.TOKENGATE_PROXY_SECRET = "s3cret"
    assert from_proxy.get("/echo", **forged).status_code == 401
    assert from_proxy.get("/echo", HTTP_X_TOKENGATE_PROXY_SECRET="nope", **forged).status_code == 401
    assert from_proxy.get("/echo", HTTP_X_TOKENGATE_PROXY_SECRET="s3cret\u00ff", **forged).status_code == 401
    believed = from_proxy.get("/echo", HTTP_X_TOKENGATE_PROXY_SECRET="s3cret", **forged).json()
    assert believed == {"user": "mallory", "x_auth_user": "mallory", "secret": None}  # no view sees the secret
    # Behind the proxy the client's address is the nearest untrusted X-Forwarded-For hop.
    stand_in.verified = []
    from_proxy.get("/echo", HTTP_X_FORWARDED_FOR="203.0.113.7, 192.0.2.1", HTTP_AUTHORIZATION="Bearer t")
    assert stand_in.verified[-1]["X-Forwarded-For"] == "203.0.113.7"


def test_cors_preflights_reach_the_app(stand_in: StandIn) -> None:
    preflight = web().options("/things", HTTP_ORIGIN="https://spa.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
                              HTTP_X_AUTH_USER="mallory")
    assert preflight.status_code == 200 and "GET" in preflight["Allow"] and stand_in.verified == []
    assert web().options("/things", HTTP_ORIGIN="https://spa.example").status_code == 401


@pytest.mark.parametrize("path", ["/caf\u00e9", "/\u20ac/\U0001f600", "/a\r\nX-Injected: 1", "/a%0d%0ab", "/report\x00"])
def test_odd_paths_are_passed_on_percent_encoded_never_a_500(stand_in: StandIn, path: str) -> None:
    answer = web().get(path, QUERY_STRING="q=\xe2\x82\xac&x=%0D%0A")
    assert answer.status_code == 401
    uri = stand_in.verified[-1]["X-Original-URI"]
    assert uri.isascii() and uri.isprintable() and "\r" not in uri and "\n" not in uri
    assert uri.endswith("?q=%E2%82%AC&x=%0D%0A")


def test_public_prefixes_never_cover_dot_segments(stand_in: StandIn, settings: Any) -> None:
    settings.TOKENGATE_PUBLIC_PATHS = ["/public/", "/healthz2"]
    for path in ("/public/../api/me", "/public/./x", "/public//x", "/healthz2x", "/public\\..\\api/me"):
        assert web().get(path).status_code == 401, path
    assert web().get("/public/ping").status_code == 200


def test_a_header_too_large_for_tokengate_is_431_without_asking(stand_in: StandIn) -> None:
    cookies = "; ".join(f"c{n}={'x' * 3500}" for n in range(5))
    answer = web().get("/report", HTTP_COOKIE=cookies)
    assert (answer.status_code, answer.json()["error"]) == (431, "headers_too_large") and stand_in.verified == []


def unauthorized(request: HttpRequest, error: TokenGateError) -> HttpResponse:
    return JsonResponse({"mine": error.code, "path": request.path}, status=error.status)


def test_the_unauthorized_handler_answers_refusals_but_not_outages(stand_in: StandIn, settings: Any) -> None:
    settings.TOKENGATE_UNAUTHORIZED_HANDLER = "test_django_unit.unauthorized"
    answer = web().get("/report")
    assert (answer.status_code, answer.json()) == (401, {"mine": "missing_token", "path": "/report"})
    settings.TOKENGATE_UNAUTHORIZED_HANDLER = lambda request, error: HttpResponse("login first", status=302,
                                                                                  headers={"Location": "/login"})
    assert web().get("/report")["Location"] == "/login"
    stand_in.outcome = Unavailable("down")
    assert web().get("/report").status_code == 503


def test_start_session_and_the_login_view(stand_in: StandIn) -> None:
    answer = web().post("/login", b'{"user": "Carol Smith"}', content_type="application/json", HTTP_USER_AGENT="Firefox/140",
                        REMOTE_ADDR="203.0.113.9")
    assert answer.status_code == 200 and answer.json()["access_token"] == "tok" and answer["Cache-Control"] == "no-store"
    assert stand_in.started == [("Carol Smith", "Firefox/140", "203.0.113.9")]
    assert answer.cookies["__Host-tg_token"].value == "tok"
    tgdjango.end_sessions("Carol Smith")
    assert stand_in.ended == ["Carol Smith"] and tgdjango.client() is stand_in
    request = RequestFactory().get("/")
    assert tgdjango.identity(request) is None


def test_settings_are_checked_and_rechecked(settings: Any) -> None:
    settings.TOKENGATE_CLIENT = None
    settings.TOKENGATE_URL = None
    with pytest.raises(ConfigurationError):
        tgdjango.TokenGateMiddleware(lambda request: HttpResponse())
    settings.TOKENGATE_URL = "http://127.0.0.1:1"
    settings.TOKENGATE_TIMEOUT = "0.5"
    assert tgdjango.client().url == "http://127.0.0.1:1" and tgdjango.client().timeout == 0.5
    for name, value in (("TOKENGATE_TRUSTED_PROXIES", "not-an-address"), ("TOKENGATE_PUBLIC_PATHS", ["static/"]),
                        ("TOKENGATE_CLIENT", "http://x"), ("TOKENGATE_URL", "127.0.0.1:8080")):
        setattr(settings, name, value)
        with pytest.raises(ConfigurationError):
            tgdjango.client()
        setattr(settings, name, None if name != "TOKENGATE_URL" else "http://127.0.0.1:1")
    # TokenGate unreachable (a dead port): 503, never the view.
    assert web().get("/report", HTTP_AUTHORIZATION="Bearer t").status_code == 503


def test_the_passthrough_stays_below_auth(stand_in: StandIn) -> None:
    # The stand-in's TokenGate is unreachable: anything passed on would be a 503.
    for path in ("/auth/../metrics", "/auth/x/../../metrics", "/auth/./verify", "/auth/a\\..\\metrics", "/auth/x/..",
                 "/auth//verify"):
        answer = web().get(path)
        assert (answer.status_code, answer.json()["error"]) == (404, "not_found"), path
    assert web().get("/auth/refresh").status_code == 503
    assert web().post("/tokengate.js").status_code == 405
    assert web().options("/auth/refresh").status_code == 405
    big = web().post("/auth/login", b"x" * (64 * 1024 + 1), content_type="application/json")
    assert big.status_code == 413
