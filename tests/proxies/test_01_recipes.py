"""Each proxy's recipe, the same checks for every proxy

valid: a valid token (GET, and a POST, whose method Envoy keeps) reaches the app with X-Auth-User and
X-Auth-Session, and the app believes them (the proxy secret came along); the app's port called
directly with a forged identity is not believed. refusals: no token, a garbage one, an expired one
and a revoked one are 401 with TokenGate's JSON body (its "error" code) and WWW-Authenticate, never
the app. forged/guarded, forged/public: a client's X-Auth-User never reaches the app, on a guarded
path (the app sees the verified user) or a public one (the app sees none). dot-segments: a public
path with ../ (plain or %2e-encoded) in it that leads elsewhere is guarded. rotation: with per-request
rotation the successor token reaches the client (from the proxy; behind Traefik, from the app, the
way docs/forward-auth.md gives) and works, and a public path spends nothing. cookie CSRF: in cookie
mode a page load with the cookie passes, a same-origin POST with the CSRF token passes, a cross-site
POST is 403 and never reaches the app. logout: a logout through the proxy makes the next request 401.
"""
import hashlib
import hmac
import http.client
import json
import time

import pytest

from harness.checks import precondition
from harness.http import b64u, error_code, http_call, parse_json, random_id

from . import USERS
from .conftest import mark
from .recipes import PROXIES

USER, PASSWORD = next(iter(USERS.items()))
LOGIN = json.dumps({"username": USER, "password": PASSWORD}).encode()
JSON = {"Content-Type": "application/json"}


def login(port):
    status, headers, data = http_call(port, "POST", "/auth/login", headers=JSON, body=LOGIN)
    body = parse_json(data) or {}
    precondition(f"login through :{port} answers 200", status == 200 and "access_token" in body, f"{status} {data[:200]!r}")
    return body["access_token"], body["session_id"], headers


def from_app(headers, data):
    return headers.get("x-from-app") == "1" and parse_json(data) is not None


def refused(status, headers, data, code, wanted_codes):
    """A refusal as TokenGate makes it: status, JSON body with one of wanted_codes, and for 401 a
    Bearer WWW-Authenticate; never the app."""
    return (status == code and error_code(data) in wanted_codes and not from_app(headers, data)
            and (code != 401 or headers.get("www-authenticate", "").startswith("Bearer")))


@pytest.mark.parametrize("kind", PROXIES)
def test_recipe(stack, credentials, kind):
    proxies = stack["proxies"]
    precondition(f"{kind} runs in front of every TokenGate", all((kind, m) in proxies for m in ("plain", "rotate", "cookie")))
    plain, rotate, cookie = (proxies[(kind, m)].port for m in ("plain", "rotate", "cookie"))
    tg_plain = stack["tokengates"]["plain"]

    # valid
    token, sid, _ = login(plain)
    status, headers, data = http_call(plain, "GET", "/api/notes?page=2", token=token)
    seen = parse_json(data) or {}
    mark(kind, "valid", "a valid token reaches the app, with the identity it believes",
         status == 200 and from_app(headers, data) and seen.get("user") == USER and seen.get("session") == sid
         and seen.get("trusted"), f"{status} {data[:300]!r}")
    status, headers, data = http_call(plain, "POST", "/api/notes", token=token, headers=JSON, body=b'{"note":1}')
    seen = parse_json(data) or {}
    mark(kind, "valid", "a POST with a valid token reaches the app as a POST",
         status == 200 and seen.get("method") == "POST" and seen.get("user") == USER, f"{status} {data[:300]!r}")
    if kind == PROXIES[0]:
        status, headers, data = http_call(stack["app"].port, "GET", "/api/notes", headers={"X-Auth-User": USER})
        seen = parse_json(data) or {}
        mark(kind, "valid", "the app's own port, called directly with a forged X-Auth-User: not believed",
             status == 200 and seen.get("user") is None and not seen.get("trusted"), data[:200])

    # refusals
    other, other_sid, _ = login(plain)
    status, _, _ = http_call(tg_plain.port, "POST", "/auth/logout", token=other)
    precondition("a logout straight at TokenGate answers 204", status == 204, str(status))
    cases = [
        ("no token", None, {"missing_token"}),
        ("a garbage token", "not.a.token", {"invalid_token"}),
        ("an expired token", expired_token(credentials.key), {"token_expired"}),
        ("a revoked token", other, {"token_revoked", "session_expired"}),
    ]
    for name, bad, codes in cases:
        status, headers, data = http_call(plain, "GET", "/api/notes", token=bad)
        mark(kind, "refusals", f"{name}: 401 with TokenGate's JSON ({'/'.join(sorted(codes))}) and WWW-Authenticate",
             refused(status, headers, data, 401, codes), f"{status} {headers.get('www-authenticate')} {data[:200]!r}")

    # forged identity headers
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "forged"}
    status, headers, data = http_call(plain, "GET", "/api/notes", token=token, headers=forged)
    seen = parse_json(data) or {}
    mark(kind, "forged/guarded", "a forged X-Auth-User with a valid token: the app sees only the verified user",
         status == 200 and seen.get("x_auth_user") == USER and seen.get("session") == sid, data[:300])
    status, headers, data = http_call(plain, "GET", "/api/notes", token="not.a.token", headers=forged)
    mark(kind, "forged/guarded", "a forged X-Auth-User with a bad token: 401, not the app",
         status == 401 and not from_app(headers, data), f"{status} {data[:200]!r}")
    for path in ("/app/login", "/app/static/app.css"):
        status, headers, data = http_call(plain, "GET", path, headers=forged)
        seen = parse_json(data) or {}
        mark(kind, "forged/public", f"public {path} reaches the app without a token and without the forged X-Auth-User",
             status == 200 and from_app(headers, data) and seen.get("x_auth_user") is None, f"{status} {data[:300]!r}")

    for path in ("/app/static/../api/notes", "/app/static/%2e%2e/api/notes", "/app/static//../api/notes"):
        status, headers, data = http_call(plain, "GET", path)
        seen = parse_json(data) or {}
        mark(kind, "dot-segments", f"{path} without a token: 401, or the app gets a public path (never /api/notes)",
             (status in (400, 401) and not from_app(headers, data))
             or (from_app(headers, data) and is_public(seen.get("path", ""))), f"{status} {data[:200]!r}")

    # per-request rotation
    first, _, _ = login(rotate)
    status, headers, data = http_call(rotate, "GET", "/app/login", token=first)
    mark(kind, "rotation", "a public path spends nothing (no successor)", status == 200 and "x-next-token" not in headers,
         str(headers.get("x-next-token")))
    status, headers, data = http_call(rotate, "GET", "/api/notes", token=first)
    second = headers.get("x-next-token")
    seen = parse_json(data) or {}
    passed_by_app = kind == "traefik"   # forwardAuth cannot copy an auth-answer header to the client
    mark(kind, "rotation", "the successor token reaches the client with the app's answer"
         + (" (passed on by the app)" if passed_by_app else " (from the proxy)"),
         status == 200 and seen.get("user") == USER and second and second != first
         and headers.get("cache-control") == "no-store", f"{status} {second!r} {headers.get('cache-control')}")
    status, headers, data = http_call(rotate, "POST", "/api/notes", token=second, headers=JSON, body=b"{}")
    third = headers.get("x-next-token")
    mark(kind, "rotation", "the successor works, and has a successor of its own",
         status == 200 and third and third not in (first, second), f"{status} {data[:200]!r}")

    # cookie mode
    jar, csrf = cookie_login(cookie)
    precondition("a cookie-mode login through the proxy sets both cookies", jar and csrf)
    status, headers, data = http_call(cookie, "GET", "/app/report", headers={"Cookie": jar, "Sec-Fetch-Site": "none"})
    seen = parse_json(data) or {}
    mark(kind, "cookie CSRF", "a page load with the cookie alone reaches the app", status == 200 and seen.get("user") == USER,
         f"{status} {data[:200]!r}")
    status, headers, data = http_call(cookie, "POST", "/api/notes", body=b"{}",
                                      headers={**JSON, "Cookie": jar, "X-CSRF-Token": csrf, "Sec-Fetch-Site": "same-origin"})
    seen = parse_json(data) or {}
    mark(kind, "cookie CSRF", "a same-origin POST with the CSRF token reaches the app",
         status == 200 and seen.get("method") == "POST" and seen.get("user") == USER, f"{status} {data[:200]!r}")
    status, headers, data = http_call(cookie, "POST", "/api/notes", body=b"{}",
                                      headers={**JSON, "Cookie": jar, "Sec-Fetch-Site": "cross-site"})
    mark(kind, "cookie CSRF", "a cross-site POST with the cookie: 403 csrf_failed, not the app",
         refused(status, headers, data, 403, {"csrf_failed"}), f"{status} {data[:200]!r}")

    # logout through the proxy
    status, _, _ = http_call(plain, "POST", "/auth/logout", token=token)
    mark(kind, "logout", "POST /auth/logout through the proxy: 204", status == 204, str(status))
    status, headers, data = http_call(plain, "GET", "/api/notes", token=token)
    mark(kind, "logout", "the next request with the token: 401 with TokenGate's JSON",
         refused(status, headers, data, 401, {"token_revoked", "session_expired"}), f"{status} {data[:200]!r}")


def is_public(path):
    return path == "/app/login" or path.startswith("/app/static/")


def expired_token(key):
    """A token signed with the service's key, with the usual 30 s lifetime, that expired a minute ago."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": hashlib.sha256(key).hexdigest()[:12]}
    claims = {"iss": "tokengate", "sub": USER, "sid": random_id(), "jti": random_id(), "iat": now - 90, "exp": now - 60}
    signing_input = ".".join(b64u(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims))
    return signing_input + "." + b64u(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())


def cookie_login(port):
    """A cookie-mode login: (Cookie header value, CSRF token) from its Set-Cookie lines, or (None, None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/auth/login", body=LOGIN, headers=JSON)
        response = conn.getresponse()
        response.read()
        lines = [v for k, v in response.getheaders() if k.lower() == "set-cookie"] if response.status == 200 else []
    finally:
        conn.close()
    found = {}
    for line in lines:
        name, _, rest = line.strip().partition("=")
        if name in ("__Host-tg_token", "__Host-tg_csrf"):
            found[name] = rest.split(";", 1)[0]
    if len(found) != 2:
        return None, None
    return "; ".join(f"{k}={v}" for k, v in found.items()), found["__Host-tg_csrf"]
