"""The package end to end: Client and the Flask guard against the real tokengate, a real Redis and
Flask apps served by waitress."""

from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest
import urllib3
from flask import Blueprint, Flask, g, jsonify, redirect
from flask.views import MethodView
from harness import TTL, TokenGate, call, error_code, http, raw_request, wait_until

from tokengate_client import Client, InvalidRequest, InvalidToken, NotFound, StoreUnavailable, Unavailable
from tokengate_client.flask import TokenGate as FlaskTokenGate
from tokengate_client.flask import public


def make_app(tg: TokenGate, **options) -> Flask:  # noqa: ANN003
    """A small app like the ones users have: pages, a JSON API, a form POST, public views."""
    app = Flask(__name__)
    app.config.update(TOKENGATE_URL=tg.url, TOKENGATE_ADMIN_URL=tg.admin_url, TOKENGATE_ADMIN_KEY=tg.admin_key)
    ext = FlaskTokenGate(app, **options)

    @app.get("/")
    def index():
        return f"<h1>hello {g.tokengate.user}</h1>"

    @app.get("/report")
    def report():
        return f"report for {g.tokengate.user}", 200, {"Cache-Control": "public, max-age=3600"}

    @app.get("/api/notes")
    def notes():
        return jsonify(user=g.tokengate.user, session=g.tokengate.session_id)

    @app.post("/api/notes")
    def add_note():
        return jsonify(saved=True), 201

    @app.get("/items/<int:item>")
    def item(item: int):
        return jsonify(item=item)

    @app.route("/login", methods=["GET", "POST"])
    @public
    def login():
        if app.config.get("LOGIN_AS"):
            response = redirect("/")
            ext.start_session(app.config["LOGIN_AS"], response)
            return response
        return "<form>log in</form>"

    @app.get("/healthz")
    @public
    def health():
        return "ok"

    panel = Blueprint("panel", __name__, url_prefix="/panel")

    @panel.get("/")
    def panel_home():
        return f"panel of {g.tokengate.user}"

    app.register_blueprint(panel)

    class Things(MethodView):
        def get(self):
            return jsonify(user=g.tokengate.user, things=[])

        def delete(self):
            return "", 204

    app.add_url_rule("/things", view_func=Things.as_view("things"))
    return app


PUBLIC_ENDPOINTS = {"static", "login", "health", "_tokengate.auth", "_tokengate.js"}




PROTECTED_SAMPLES = {"/items/<int:item>": "/items/7"}


def protected_paths(app: Flask, with_endpoint: bool = False) -> list:
    """Every (method, path) of the app's rules, except public views, static files and the
    passed-through TokenGate routes ((endpoint, method, path) with ``with_endpoint``)."""
    found: list = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or rule.endpoint.startswith("_tokengate.") or getattr(view, "_tokengate_public", False):
            continue
        path = PROTECTED_SAMPLES.get(rule.rule, rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, path) if with_endpoint else (method, path))
    return found


def test_every_view_is_protected_by_default(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    app = make_app(tokengate)
    base = serve(app)
    paths = protected_paths(app)
    assert len(paths) >= 5
    for method, path in paths + [("GET", "/no/such/page")]:
        for token in (None, "not.a.token"):
            response = call(base, method, path, token)
            assert response.status == 401, (method, path, token, response.status)
            assert response.headers["WWW-Authenticate"].startswith('Bearer realm="tokengate"')
            assert error_code(response) in ("missing_token", "invalid_token")
    # Exactly these are public, and they answer without a token.
    walked = {endpoint for endpoint, _, _ in protected_paths(app, with_endpoint=True)}
    assert {rule.endpoint for rule in app.url_map.iter_rules()} - walked == PUBLIC_ENDPOINTS
    assert call(base, "GET", "/healthz").status == 200
    assert call(base, "GET", "/login").status == 200
    assert call(base, "GET", "/static/app.css").data.startswith(b"body")
    assert call(base, "GET", "/tokengate.js").status == 200
    # /auth/* reaches TokenGate itself: its own answer to an empty login, not the guard's 401.
    login = call(base, "POST", "/auth/login", headers={"Content-Type": "application/json"}, body=b"{}")
    assert login.status == 400 and error_code(login) == "invalid_request"


def test_a_session_the_app_started_reaches_every_view_and_refreshes(tokengate: TokenGate, serve, redis) -> None:  # noqa: ANN001
    app = make_app(tokengate)
    base = serve(app)
    client = tokengate_client(tokengate)
    session = client.start_session("Carol", user_agent="Firefox/140", ip="203.0.113.9")  # kept as given
    assert session["token_type"] == "Bearer" and session.expires_in == TTL
    assert set(session.to_dict()) == {"access_token", "token_type", "expires_in", "session_id"}
    assert session.access_token not in repr(session)
    for method, path in protected_paths(app):
        assert call(base, method, path, session.access_token).status in (200, 201, 204), (method, path)
    assert b"panel of Carol" in call(base, "GET", "/panel/", session.access_token).data
    # With a valid token an unknown path or method is Flask's own answer.
    assert call(base, "GET", "/no/such/page", session.access_token).status == 404
    assert call(base, "PUT", "/api/notes", session.access_token).status == 405
    notes = json.loads(call(base, "GET", "/api/notes", session.access_token).data)
    assert notes == {"user": "Carol", "session": session.session_id}
    refreshed = call(base, "POST", "/auth/refresh", session.access_token)
    assert refreshed.status == 200
    successor = json.loads(refreshed.data)["access_token"]
    assert call(base, "GET", "/api/notes", successor).status == 200
    listed = client.sessions("Carol")
    assert [(s.session_id, s.user_agent, s.ip) for s in listed] == [(session.session_id, "Firefox/140", "203.0.113.9")]
    assert client.sessions("carol") == []
    assert redis.cli("HGET", f"{tokengate.prefix}{{Carol}}:s:{session.session_id}", "via") == "tests"


def test_logout_refuses_the_token_on_every_view(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    app = make_app(tokengate)
    base = serve(app)
    session = tokengate_client(tokengate).start_session("dave")
    assert call(base, "GET", "/report", session.access_token).status == 200
    assert call(base, "POST", "/auth/logout", session.access_token).status == 204
    for method, path in protected_paths(app):
        response = call(base, method, path, session.access_token)
        assert response.status == 401 and error_code(response) == "token_revoked", (method, path)


def test_ending_a_users_sessions_from_the_app(tokengate: TokenGate, serve, redis) -> None:  # noqa: ANN001
    base = serve(make_app(tokengate))
    client = tokengate_client(tokengate)
    first, second, third = (client.start_session("erin") for _ in range(3))
    client.end_session("erin", first.session_id)
    assert call(base, "GET", "/report", first.access_token).status == 401
    assert call(base, "GET", "/report", second.access_token).status == 200
    with pytest.raises(NotFound):
        client.end_session("erin", first.session_id)
    client.end_sessions("ERIN")  # ids are case-sensitive: another user
    assert call(base, "GET", "/report", second.access_token).status == 200
    client.end_sessions("erin")
    for session in (second, third):
        assert error_code(call(base, "GET", "/report", session.access_token)) == "token_revoked"
    assert redis.keys(f"{tokengate.prefix}{{erin}}*") == []
    assert client.sessions("erin") == []


def test_a_token_lives_token_ttl_without_refresh(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    base = serve(make_app(tokengate))
    session = tokengate_client(tokengate).start_session("frank")
    started = time.monotonic()
    assert call(base, "GET", "/report", session.access_token).status == 200
    assert wait_until(lambda: call(base, "GET", "/report", session.access_token).status == 401, TTL + 4)
    lived = time.monotonic() - started
    assert TTL - 1.5 <= lived <= TTL + 3.5, lived


def test_tokengate_or_redis_down_is_503_never_the_view(start_tokengate, work, serve) -> None:  # noqa: ANN001
    from harness import Redis

    own_redis = Redis(work)
    try:
        instance = start_tokengate(on=own_redis)
        base = serve(make_app(instance))
        session = tokengate_client(instance).start_session("grace")
        assert call(base, "GET", "/report", session.access_token).status == 200
        own_redis.stop()
        response = call(base, "GET", "/report", session.access_token)
        assert response.status == 503 and error_code(response) == "store_unavailable"
        assert response.headers.get("Retry-After") == "1" and b"report for" not in response.data
        with pytest.raises(StoreUnavailable):
            tokengate_client(instance).verify({"Authorization": f"Bearer {session.access_token}"})
        with pytest.raises(StoreUnavailable):
            tokengate_client(instance).start_session("grace")
        instance.stop()
        for method, path in (("GET", "/report"), ("POST", "/api/notes"), ("GET", "/")):
            response = call(base, method, path, session.access_token)
            assert response.status == 503 and response.headers.get("Retry-After") == "1", (method, path)
        with pytest.raises(Unavailable):
            tokengate_client(instance).start_session("grace")
        with pytest.raises(Unavailable):
            tokengate_client(instance).verify({"Authorization": f"Bearer {session.access_token}"})
        assert call(base, "GET", "/healthz").status == 200  # public views need no TokenGate
    finally:
        own_redis.stop()


def test_rotation_successors_reach_the_browser_uncacheable(start_tokengate, serve) -> None:  # noqa: ANN001
    instance = start_tokengate({"TOKENGATE_ROTATION": "per-request"})
    base = serve(make_app(instance))
    session = tokengate_client(instance).start_session("heidi")
    response = call(base, "GET", "/report", session.access_token)
    assert response.status == 200
    successor = response.headers.get("X-Next-Token")
    assert successor and successor != session.access_token
    # The view said "public, max-age=3600": an answer carrying a live token must not be cached.
    assert response.headers["Cache-Control"] == "no-store"
    assert "Authorization" in response.headers["Vary"]
    # Each answer hands over the next token, whatever its status; parallel requests made with one
    # token inside REUSE_GRACE get the same successor.
    token = successor
    for method, path, status in (("POST", "/api/notes", 201), ("GET", "/no/such/page", 404), ("GET", "/api/notes", 200)):
        first, again = (call(base, method, path, token) for _ in range(2))
        assert (first.status, again.status) == (status, status), (method, path)
        assert first.headers["X-Next-Token"] == again.headers["X-Next-Token"] != token
        assert first.headers["Cache-Control"] == "no-store"
        token = first.headers["X-Next-Token"]
    assert call(base, "GET", "/report", token).status == 200


def test_cookie_mode_sessions_started_by_the_app(start_tokengate, serve) -> None:  # noqa: ANN001
    instance = start_tokengate({"TOKENGATE_COOKIE": "on"})
    app = make_app(instance)
    app.config["LOGIN_AS"] = "ivan"
    base = serve(app)
    login = call(base, "POST", "/login")
    assert login.status == 302
    cookies = login.headers.getlist("Set-Cookie")
    assert any(c.startswith("__Host-tg_token=") and "HttpOnly" in c for c in cookies), cookies
    jar = "; ".join(c.split(";", 1)[0] for c in cookies)
    page = call(base, "GET", "/report", headers={"Cookie": jar})
    assert page.status == 200 and b"ivan" in page.data
    # A state-changing request on the cookie alone needs the double-submit token.
    refused = call(base, "POST", "/api/notes", headers={"Cookie": jar, "Origin": base})
    assert refused.status == 403 and error_code(refused) == "csrf_failed"
    csrf = next(c.split(";", 1)[0].split("=", 1)[1] for c in cookies if c.startswith("__Host-tg_csrf="))
    allowed = call(base, "POST", "/api/notes", headers={"Cookie": jar, "Origin": base, "X-CSRF-Token": csrf})
    assert allowed.status == 201


def test_identity_headers_are_believed_only_from_trusted_proxies(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "x" * 22}
    untrusted = serve(make_app(tokengate))
    assert call(untrusted, "GET", "/api/notes", headers=forged).status == 401
    trusted = serve(make_app(tokengate, trusted_proxies="127.0.0.1"))
    verifies = tokengate.metric("/auth/verify", "200") + tokengate.metric("/auth/verify", "401")
    response = call(trusted, "GET", "/api/notes", headers=forged)
    assert response.status == 200 and json.loads(response.data)["user"] == "mallory"
    assert tokengate.metric("/auth/verify", "200") + tokengate.metric("/auth/verify", "401") == verifies
    # The same app, reached from another address (127.0.0.2): the headers are ignored.
    port = int(trusted.rsplit(":", 1)[1])
    other = urllib3.HTTPConnectionPool("127.0.0.1", port, source_address=("127.0.0.2", 0), retries=False)
    assert other.request("GET", "/api/notes", headers=forged).status == 401
    session = tokengate_client(tokengate).start_session("oscar")
    mine = other.request("GET", "/api/notes", headers={**forged, "Authorization": f"Bearer {session.access_token}"})
    assert mine.status == 200 and json.loads(mine.data)["user"] == "oscar"
    other.close()


def test_browser_pages_go_to_the_login_view(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    base = serve(make_app(tokengate, login_view="login"))
    page = call(base, "GET", "/report?x=1", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status == 302 and page.headers["Location"].endswith("/login?next=/report?x%3D1")
    api = call(base, "GET", "/api/notes", headers={"Accept": "application/json"})
    assert api.status == 401


def test_service_api_errors_write_nothing(tokengate: TokenGate, redis) -> None:  # noqa: ANN001
    before = redis.keys(f"{tokengate.prefix}{{*")
    wrong = tokengate_client(tokengate, key="tgsk_" + "A" * 43)
    with pytest.raises(InvalidToken) as refused:
        wrong.start_session("judy")
    assert refused.value.status == 401 and "tgsk_" not in str(refused.value)
    with pytest.raises(InvalidRequest):
        tokengate_client(tokengate).start_session("not\na user")
    with pytest.raises(ValueError):
        Client(tokengate.url).start_session("judy")
    # A user token is no service key.
    user = tokengate_client(tokengate).start_session("judy")
    with pytest.raises(InvalidToken):
        tokengate_client(tokengate, key=user.access_token).sessions("judy")
    assert [k for k in redis.keys(f"{tokengate.prefix}{{*") if "{judy}" not in k] == before


def tokengate_client(instance: TokenGate, key: str | None = None) -> Client:
    return Client(instance.url, admin_url=instance.admin_url, admin_key=key or instance.admin_key)



def test_the_apps_own_ids_reach_the_view_as_they_are(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    app = make_app(tokengate)
    base = serve(app)
    client = tokengate_client(tokengate)
    for user in ("Carol Smith", "dave+tag@example.com", "Zo\u00eb \u00dcnal", "\u212aate", "{x}", " padded "):
        session = client.start_session(user)
        notes = json.loads(call(base, "GET", "/api/notes", session.access_token).data)
        assert notes == {"user": user, "session": session.session_id}, repr(user)
    # Behind nginx the id arrives encoded in X-Auth-User: the guard decodes it.
    trusted = serve(make_app(tokengate, trusted_proxies="127.0.0.1"))
    session = client.start_session("Zo\u00eb")
    verified = http.request("GET", tokengate.url + "/auth/verify", headers={"Authorization": f"Bearer {session.access_token}"})
    assert verified.headers["X-Auth-User"] == "UTF-8''Zo%C3%AB"
    notes = call(trusted, "GET", "/api/notes", headers={"X-Auth-User": verified.headers["X-Auth-User"],
                                                        "X-Auth-Session": session.session_id})
    assert json.loads(notes.data)["user"] == "Zo\u00eb"


def test_no_request_a_client_can_send_makes_the_guard_fail(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    """Odd paths, CR/LF, 17 KB of cookies, dot segments into TokenGate: the contract's answer, never a 500
    of the guard's own, never a 503 (TokenGate is up), never a TokenGate route outside /auth/."""
    base = serve(make_app(tokengate))
    host = b"Host: " + urlsplit(base).netloc.encode()
    for target, status in ((b"/caf%C3%A9", 401), (b"/%E2%82%AC/%F0%9F%98%80", 401), (b"/a%0D%0AX-Injected:%201", 401),
                           (b"/%FF%FE", 401), (b"/api/notes?q=%0D%0A&x=%E2%82%AC", 401), (b"/%C3%28", 401),
                           (b"/auth/%2e%2e/metrics", 404), (b"/auth/..%2Fmetrics", 404), (b"/auth/x/%2E%2E/%2E%2E/healthz", 404)):
        assert raw_request(base, b"GET " + target + b" HTTP/1.1\r\n" + host + b"\r\n") == status, target
    cookies = "; ".join(f"c{n}={'x' * 3500}" for n in range(5))
    big = call(base, "GET", "/api/notes", headers={"Cookie": cookies})
    assert (big.status, error_code(big)) == (431, "headers_too_large")
    # TokenGate's own answers through the pass-through are what TokenGate says.
    assert call(base, "GET", "/auth/verify").status == 401


def test_cors_preflights_are_the_apps_to_answer(tokengate: TokenGate, serve) -> None:  # noqa: ANN001
    app = make_app(tokengate)

    @app.after_request
    def cors(response):  # noqa: ANN001, ANN202  (what flask-cors does, in short)
        response.headers["Access-Control-Allow-Origin"] = "https://spa.example"
        response.headers["Access-Control-Allow-Headers"] = "Authorization"
        return response

    base = serve(app)
    asking = {"Origin": "https://spa.example", "Access-Control-Request-Method": "POST",
              "Access-Control-Request-Headers": "authorization"}
    preflight = call(base, "OPTIONS", "/api/notes", headers=asking)
    assert preflight.status == 200 and preflight.headers["Access-Control-Allow-Origin"] == "https://spa.example"
    assert "POST" in preflight.headers["Allow"]
    assert call(base, "POST", "/api/notes", headers={"Origin": "https://spa.example"}).status == 401
