"""tokengate_client.asgi end to end: FastAPI and Starlette apps guarded by TokenGateMiddleware (and
the require_identity dependency), served by a real ASGI server (uvicorn) against the real tokengate
binary and a real Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

import pytest
import urllib3
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from harness import TTL, TokenGate, call, error_code, http, raw_request
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Mount, Route

from tokengate_client import Identity, StoreUnavailable, Unavailable
from tokengate_client.aio import AsyncClient
from tokengate_client.asgi import TokenGateMiddleware, public, require_identity


def client_of(tg: TokenGate) -> AsyncClient:
    return AsyncClient(tg.url, admin_url=tg.admin_url, admin_key=tg.admin_key)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def make_app(tg: TokenGate, **options: Any) -> FastAPI:
    """A FastAPI app as users write them: a JSON API (dependency and request.state), a page that
    says it is cacheable, a login that starts sessions through the service API, public routes."""
    app = FastAPI()
    client = client_of(tg)
    app.add_middleware(CORSMiddleware, allow_origins=["https://spa.example"], allow_methods=["*"], allow_headers=["*"])
    settings = {"url": tg.url, "admin_url": tg.admin_url, "admin_key": tg.admin_key, "public_paths": ["/public"], **options}
    app.add_middleware(TokenGateMiddleware, **settings)

    @app.get("/api/notes")
    async def notes(request: Request, identity: Identity = Depends(require_identity)) -> dict[str, Any]:
        assert request.state.tokengate is identity
        return {"user": identity.user, "session": identity.session_id,
                "seen": [request.headers.get(name) for name in ("x-auth-user", "x-auth-session", "x-tokengate-proxy-secret")]}

    @app.post("/api/notes", status_code=201)
    async def add_note(identity: Identity = Depends(require_identity)) -> dict[str, Any]:
        return {"saved": True}

    @app.get("/report")
    async def report(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"report for {request.state.tokengate.user}", headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/items/{item}")
    async def item(item: int) -> dict[str, int]:
        return {"item": item}

    @app.post("/login")
    @public
    async def login(request: Request) -> JSONResponse:
        body = await request.json()
        session = await client.start_session(body["user"], user_agent=request.headers.get("user-agent"))
        return JSONResponse(session.to_dict(), headers={"Cache-Control": "no-store"})

    @app.get("/healthz")
    @public
    async def health(request: Request) -> dict[str, Any]:
        return {"ok": True, "identity": request.state.tokengate, "seen": request.headers.get("x-auth-user")}

    @app.get("/public/about")
    async def about() -> str:
        return "about"

    return app





def login(base: str, user: str) -> dict[str, Any]:
    answer = call(base, "POST", "/login", headers={"Content-Type": "application/json", "User-Agent": "Firefox/140"},
                  body=json.dumps({"user": user}).encode())
    assert answer.status == 200, answer.data
    return dict(json.loads(answer.data))


def test_every_route_is_guarded_and_a_session_reaches_it(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    base = serve_asgi(make_app(tokengate))
    for method, path in (("GET", "/api/notes"), ("POST", "/api/notes"), ("GET", "/report"), ("GET", "/items/7"),
                         ("GET", "/no/such/route"), ("GET", "/docs"), ("GET", "/openapi.json"), ("DELETE", "/healthz")):
        for token in (None, "garbage"):
            answer = call(base, method, path, token)
            assert answer.status == 401, (method, path, token)
            assert error_code(answer) == ("missing_token" if token is None else "invalid_token")
            assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="tokengate"')
            assert answer.headers["Cache-Control"] == "no-store"
    assert json.loads(call(base, "GET", "/healthz").data) == {"ok": True, "identity": None, "seen": None}
    assert call(base, "GET", "/public/about").status == 200
    assert call(base, "GET", "/publicity").status == 401  # a prefix is a path segment, not a string prefix
    grant = login(base, "carol")
    token = grant["access_token"]
    assert grant["token_type"] == "Bearer" and grant["expires_in"] == TTL
    notes = call(base, "GET", "/api/notes", token)
    assert (notes.status, json.loads(notes.data)) == (200, {"user": "carol", "session": grant["session_id"], "seen": [None] * 3})
    assert call(base, "POST", "/api/notes", token).status == 201
    assert call(base, "GET", "/report", token).data == b"report for carol"
    assert json.loads(call(base, "GET", "/items/7", token).data) == {"item": 7}
    assert call(base, "GET", "/no/such/route", token).status == 404  # the app's own 404, once verified
    assert call(base, "GET", "/docs", token).status == 200
    # Refreshed at TokenGate, the new token reaches the app; the old one is replaced.
    refreshed = http.request("POST", tokengate.url + "/auth/refresh", headers={"Authorization": f"Bearer {token}"})
    assert refreshed.status == 200
    fresh = json.loads(refreshed.data)["access_token"]
    assert json.loads(call(base, "GET", "/api/notes", fresh).data)["user"] == "carol"


def test_the_apps_own_ids_round_trip(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    base = serve_asgi(make_app(tokengate))
    client = client_of(tokengate)

    async def start(user: str) -> Any:
        return await client.start_session(user, user_agent="Firefox/140", ip="203.0.113.9")

    for user in ("Carol Smith", "dave+tag@example.com", "Zo\u00eb \u00dcnal", "\u212aate", "{x}", " padded "):
        session = run(start(user))
        notes = json.loads(call(base, "GET", "/api/notes", session.access_token).data)
        assert (notes["user"], notes["session"]) == (user, session.session_id), repr(user)
        identity = run(client.verify({"Authorization": f"Bearer {session.access_token}"}))
        assert (identity.user, identity.session_id) == (user, session.session_id)
        listed = run(client.sessions(user))
        assert [(s.session_id, s.user_agent, s.ip) for s in listed] == [(session.session_id, "Firefox/140", "203.0.113.9")]
    # Carol Smith and carol smith are two people.
    assert run(client.sessions("carol smith")) == []


def test_revoked_sessions_are_refused_at_once(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    base = serve_asgi(make_app(tokengate))
    client = client_of(tokengate)
    first, second = login(base, "dave")["access_token"], login(base, "dave")["access_token"]
    assert http.request("POST", tokengate.url + "/auth/logout", headers={"Authorization": f"Bearer {first}"}).status == 204
    refused = call(base, "GET", "/api/notes", first)
    assert (refused.status, error_code(refused)) == (401, "token_revoked")
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="tokengate", error="invalid_token"'
    assert call(base, "GET", "/api/notes", second).status == 200
    run(client.end_sessions("dave"))
    assert error_code(call(base, "GET", "/api/notes", second)) == "token_revoked"


def test_tokengate_or_redis_down_is_503_never_the_route(start_tokengate, work, serve_asgi) -> None:  # noqa: ANN001
    from harness import Redis

    own_redis = Redis(work)
    try:
        instance = start_tokengate(on=own_redis)
        base = serve_asgi(make_app(instance))
        token = login(base, "grace")["access_token"]
        assert call(base, "GET", "/report", token).status == 200
        own_redis.stop()
        answer = call(base, "GET", "/report", token)
        assert (answer.status, error_code(answer), answer.headers["Retry-After"]) == (503, "store_unavailable", "1")
        assert b"report for" not in answer.data
        with pytest.raises(StoreUnavailable):
            run(client_of(instance).verify({"Authorization": f"Bearer {token}"}))
        instance.stop()
        for method, path in (("GET", "/report"), ("POST", "/api/notes"), ("GET", "/no/such/route")):
            answer = call(base, method, path, token)
            assert (answer.status, error_code(answer), answer.headers["Retry-After"]) == (503, "store_unavailable", "1")
        with pytest.raises(Unavailable):
            run(client_of(instance).verify({"Authorization": f"Bearer {token}"}))
        assert call(base, "GET", "/healthz").status == 200  # public routes need no TokenGate
    finally:
        own_redis.stop()


def test_rotation_successors_reach_the_browser_uncacheable(start_tokengate, serve_asgi) -> None:  # noqa: ANN001
    instance = start_tokengate({"TOKENGATE_ROTATION": "per-request"})
    base = serve_asgi(make_app(instance))
    token = login(base, "heidi")["access_token"]
    answer = call(base, "GET", "/report", token)
    successor = answer.headers.get("X-Next-Token")
    assert answer.status == 200 and successor and successor != token
    # The route said "public, max-age=3600": an answer carrying a live token must not be cached.
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Authorization" in answer.headers["Vary"] and "Cookie" in answer.headers["Vary"]
    token = successor
    for method, path, status in (("POST", "/api/notes", 201), ("GET", "/no/such/page", 404), ("GET", "/api/notes", 200)):
        first, again = (call(base, method, path, token) for _ in range(2))
        assert (first.status, again.status) == (status, status), (method, path)
        assert first.headers["X-Next-Token"] == again.headers["X-Next-Token"] != token
        assert first.headers["Cache-Control"] == "no-store"
        token = first.headers["X-Next-Token"]
    assert call(base, "GET", "/report", token).status == 200


def test_cookie_mode_cookies_and_csrf(start_tokengate, serve_asgi) -> None:  # noqa: ANN001
    instance = start_tokengate({"TOKENGATE_COOKIE": "on"})
    base = serve_asgi(make_app(instance))
    session = run(client_of(instance).start_session("ivan"))
    jar = "; ".join(cookie.split(";", 1)[0] for cookie in session.set_cookie)
    assert call(base, "GET", "/report", headers={"Cookie": jar}).data == b"report for ivan"
    refused = call(base, "POST", "/api/notes", headers={"Cookie": jar, "Origin": base})
    assert (refused.status, error_code(refused)) == (403, "csrf_failed")
    csrf = next(c.split(";", 1)[0].split("=", 1)[1] for c in session.set_cookie if c.startswith("__Host-tg_csrf="))
    assert call(base, "POST", "/api/notes", headers={"Cookie": jar, "Origin": base, "X-CSRF-Token": csrf}).status == 201


def test_forged_identity_headers_are_ignored_and_believed_only_from_trusted_proxies(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "x" * 22}
    base = serve_asgi(make_app(tokengate))
    assert call(base, "GET", "/api/notes", headers=forged).status == 401
    oscar = login(base, "oscar")["access_token"]
    mine = json.loads(call(base, "GET", "/api/notes", oscar, headers={**forged, "X-TokenGate-Proxy-Secret": "s"}).data)
    assert (mine["user"], mine["seen"]) == ("oscar", [None, None, None])
    assert json.loads(call(base, "GET", "/healthz", headers=forged).data)["seen"] is None
    # From a trusted proxy (127.0.0.1) its headers are the identity, without asking TokenGate again.
    trusted = serve_asgi(make_app(tokengate, trusted_proxies="127.0.0.1"))
    verifies = tokengate.metric("/auth/verify", "200") + tokengate.metric("/auth/verify", "401")
    answer = call(trusted, "GET", "/api/notes", headers=forged)
    assert answer.status == 200 and json.loads(answer.data)["user"] == "mallory"
    assert tokengate.metric("/auth/verify", "200") + tokengate.metric("/auth/verify", "401") == verifies
    # The same app from another address (127.0.0.2): the headers are ignored.
    port = int(trusted.rsplit(":", 1)[1])
    other = urllib3.HTTPConnectionPool("127.0.0.1", port, source_address=("127.0.0.2", 0), retries=False)
    assert other.request("GET", "/api/notes", headers=forged).status == 401
    mine_there = other.request("GET", "/api/notes", headers={**forged, "Authorization": f"Bearer {oscar}"})
    assert json.loads(mine_there.data)["user"] == "oscar"
    other.close()
    # With a proxy secret, a trusted address alone is not enough; no route sees the secret.
    guarded = serve_asgi(make_app(tokengate, trusted_proxies="127.0.0.1", proxy_secret="s3cret"))
    assert call(guarded, "GET", "/api/notes", headers=forged).status == 401
    assert call(guarded, "GET", "/api/notes", headers={**forged, "X-TokenGate-Proxy-Secret": "wrong"}).status == 401
    believed = json.loads(call(guarded, "GET", "/api/notes", headers={**forged, "X-TokenGate-Proxy-Secret": "s3cret"}).data)
    assert (believed["user"], believed["seen"][2]) == ("mallory", None)
    # An id behind nginx arrives RFC 8187-encoded: decoded.
    encoded = {"X-Auth-User": "UTF-8''Zo%C3%AB", "X-Auth-Session": "s" * 22}
    assert json.loads(call(trusted, "GET", "/api/notes", headers=encoded).data)["user"] == "Zo\u00eb"


def test_cors_preflights_reach_the_apps_cors_handling(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    base = serve_asgi(make_app(tokengate))
    asking = {"Origin": "https://spa.example", "Access-Control-Request-Method": "POST",
              "Access-Control-Request-Headers": "authorization"}
    preflight = call(base, "OPTIONS", "/api/notes", headers=asking)
    assert preflight.status == 200 and preflight.headers["Access-Control-Allow-Origin"] == "https://spa.example"
    # The real request after it is guarded as ever; a bare OPTIONS is no preflight.
    assert call(base, "POST", "/api/notes", headers={"Origin": "https://spa.example"}).status == 401
    assert call(base, "OPTIONS", "/api/notes").status == 401


def test_no_request_a_client_can_send_makes_the_guard_fail(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    """Odd paths, CR/LF, non-ASCII, dot segments, 17 KB of cookies: the contract's answer, never a 500
    of the guard's own, never a 503 (TokenGate is up)."""
    base = serve_asgi(make_app(tokengate))
    host = b"Host: " + urlsplit(base).netloc.encode()
    for target in (b"/caf%C3%A9", b"/%E2%82%AC/%F0%9F%98%80", b"/a%0D%0AX-Injected:%201", b"/%FF%FE", b"/%C3%28",
                   b"/api/notes?q=%0D%0A&x=%E2%82%AC", b"/public/../api/notes", b"/public/%2e%2e/api/notes", b"//api/notes",
                   b"/api/notes/"):
        assert raw_request(base, b"GET " + target + b" HTTP/1.1\r\n" + host + b"\r\n") == 401, target
    cookies = "; ".join(f"c{n}={'x' * 3500}" for n in range(5))
    big = call(base, "GET", "/api/notes", headers={"Cookie": cookies})
    assert (big.status, error_code(big)) == (431, "headers_too_large")
    token = login(base, "judy")["access_token"]
    big = call(base, "GET", "/api/notes", token, headers={"Cookie": cookies})
    assert (big.status, error_code(big)) == (431, "headers_too_large")
    weird = call(base, "GET", "/api/notes", token, headers={"X-Note": "caf\u00e9".encode().decode("latin-1")})
    assert weird.status == 200


def test_a_starlette_app_with_public_mounts_and_the_dependency_without_middleware(tokengate: TokenGate, serve_asgi) -> None:  # noqa: ANN001
    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.state.tokengate.user}")

    async def open_page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("open")

    inner = Starlette(routes=[Route("/page", open_page)])
    app = Starlette(
        routes=[Route("/", home), public(Route("/open", open_page)), public(Mount("/docs", app=inner)),
                Mount("/inner", app=inner)],
        middleware=[Middleware(TokenGateMiddleware, url=tokengate.url)],
    )
    base = serve_asgi(app)
    assert call(base, "GET", "/open").data == b"open"
    assert call(base, "GET", "/docs/page").data == b"open"
    assert call(base, "GET", "/inner/page").status == 401
    session = run(client_of(tokengate).start_session("kim"))
    assert call(base, "GET", "/", session.access_token).data == b"hello kim"
    assert call(base, "GET", "/inner/page", session.access_token).data == b"open"

    # FastAPI without the middleware: the dependency alone guards a route (TOKENGATE_URL from app state's guard).
    bare = FastAPI()

    @bare.get("/me")
    async def me(identity: Identity = Depends(require_identity)) -> dict[str, str]:
        return {"user": identity.user}

    @bare.get("/free")
    async def free() -> str:
        return "free"

    from tokengate_client.asgi import Guard

    bare.state.tokengate_guard = Guard(url=tokengate.url)
    served = serve_asgi(bare)
    refused = call(served, "GET", "/me")
    assert (refused.status, json.loads(refused.data), refused.headers["WWW-Authenticate"]) == (
        401, {"detail": "a bearer token is required"}, 'Bearer realm="tokengate"')
    assert json.loads(call(served, "GET", "/me", session.access_token).data) == {"user": "kim"}
    assert call(served, "GET", "/free").status == 200
