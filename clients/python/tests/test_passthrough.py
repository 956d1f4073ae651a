"""proxy_auth_routes: a Flask app the browser reaches directly (no nginx) serves /tokengate.js and
passes /auth/* through to TokenGate, with the browser's host, and TokenGate's answer headers back."""

from __future__ import annotations

import json

from harness import TokenGate, http
from test_flask import call, error_code, make_app, tokengate_client


def cookie_jar(lines: list[str]) -> str:
    return "; ".join(line.split(";", 1)[0] for line in lines)


def cookie(lines: list[str], name: str) -> str:
    return next(line.split(";", 1)[0].split("=", 1)[1] for line in lines if line.startswith(name + "="))


def test_the_browser_client_and_the_auth_routes_through_the_app(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    base = serve(make_app(tokengate))
    direct = http.request("GET", tokengate.url + "/tokengate.js")
    script = call(base, "GET", "/tokengate.js")
    assert script.status == 200 and script.data == direct.data and b"TokenGate" in script.data
    for name in ("Content-Type", "Content-Security-Policy", "X-Content-Type-Options", "Cache-Control"):
        assert script.headers.get(name) == direct.headers.get(name), name
    assert script.headers["X-Content-Type-Options"] == "nosniff"

    # A password login (a user of TokenGate's users file) and everything a page does after it.
    login = call(base, "POST", "/auth/login", headers={"Content-Type": "application/json"},
                 body=json.dumps({"username": "alice", "password": "alice-password"}).encode())
    assert login.status == 200 and login.headers["Cache-Control"] == "no-store"
    grant = json.loads(login.data)
    refreshed = call(base, "POST", "/auth/refresh", grant["access_token"])
    assert refreshed.status == 200 and refreshed.headers["Cache-Control"] == "no-store"
    token = json.loads(refreshed.data)["access_token"]
    assert json.loads(refreshed.data)["session_id"] == grant["session_id"] and token != grant["access_token"]
    assert json.loads(call(base, "GET", "/api/notes", token).data)["user"] == "alice"
    other = tokengate_client(tokengate).start_session("alice")
    listed = call(base, "GET", "/auth/sessions", token)
    assert {s["session_id"] for s in json.loads(listed.data)} == {grant["session_id"], other.session_id}
    assert call(base, "DELETE", f"/auth/sessions/{other.session_id}", token).status == 204
    assert error_code(call(base, "GET", "/api/notes", other.access_token)) == "token_revoked"

    # TokenGate's refusals come back as they are, WWW-Authenticate included.
    refused = call(base, "POST", "/auth/refresh")
    assert refused.status == 401 and refused.headers["WWW-Authenticate"] == 'Bearer realm="tokengate"'
    wrong = call(base, "POST", "/auth/login", headers={"Content-Type": "application/json"},
                 body=b'{"username": "alice", "password": "nope"}')
    assert wrong.status == 401 and error_code(wrong) == "invalid_credentials"

    assert call(base, "POST", "/auth/logout", token).status == 204
    assert call(base, "GET", "/api/notes", token).status == 401

    # Bounded bodies, and a TokenGate that is gone answers 503, never a hang or a 500.
    big = call(base, "POST", "/auth/login", headers={"Content-Type": "application/json"}, body=b" " * (64 * 1024 + 1))
    assert big.status == 413
    tokengate.stop()
    for method, path in (("GET", "/tokengate.js"), ("POST", "/auth/refresh")):
        down = call(base, method, path, token)
        assert down.status == 503 and error_code(down) == "store_unavailable" and down.headers["Retry-After"] == "1"


def test_cookie_mode_through_the_app(start_tokengate, serve) -> None:  # noqa: ANN001
    instance = start_tokengate({"TOKENGATE_COOKIE": "on"})
    base = serve(make_app(instance))
    origin = {"Origin": base}
    login = call(base, "POST", "/auth/login", headers={"Content-Type": "application/json", **origin},
                 body=json.dumps({"username": "alice", "password": "alice-password"}).encode())
    assert login.status == 200
    lines = login.headers.getlist("Set-Cookie")
    assert sorted(line.split("=", 1)[0] for line in lines) == ["__Host-tg_csrf", "__Host-tg_token"]
    jar, csrf = cookie_jar(lines), cookie(lines, "__Host-tg_csrf")
    # The cookie alone authenticates a page; a refresh on the cookie needs the CSRF token, and its
    # Origin is checked against the browser's host (the app's, passed on as Host).
    assert call(base, "GET", "/report", headers={"Cookie": jar}).status == 200
    assert error_code(call(base, "POST", "/auth/refresh", headers={"Cookie": jar, **origin})) == "csrf_failed"
    assert call(base, "POST", "/auth/refresh", headers={"Cookie": jar, "X-CSRF-Token": csrf,
                                                       "Origin": "http://127.0.0.1:1"}).status == 403
    refreshed = call(base, "POST", "/auth/refresh", headers={"Cookie": jar, "X-CSRF-Token": csrf, **origin})
    assert refreshed.status == 200
    renewed = refreshed.headers.getlist("Set-Cookie")
    assert any(line.startswith("__Host-tg_token=") and "HttpOnly" in line for line in renewed), renewed
    jar = cookie_jar(renewed)  # the refresh sets both cookies again
    assert call(base, "GET", "/report", headers={"Cookie": jar}).status == 200
    out = call(base, "POST", "/auth/logout", headers={"Cookie": jar, "X-CSRF-Token": csrf, **origin})
    assert out.status == 204 and out.headers.get("Clear-Site-Data") == '"cookies"'
    assert len(out.headers.getlist("Set-Cookie")) == 2
    assert call(base, "GET", "/report", headers={"Cookie": jar}).status == 401
