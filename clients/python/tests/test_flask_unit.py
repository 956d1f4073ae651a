"""The Flask guard's decisions with a stand-in Client (no tokengate needed): what is guarded, what
is answered on each failure, what is passed on, and the settings."""

from __future__ import annotations

import json
import pickle
import socket
from typing import Any

import pytest
from flask import Blueprint, Flask, Response, g, request
from flask.views import MethodView

import tokengate_client as tokengate
from tokengate_client import (
    Client,
    ConfigurationError,
    CSRFFailed,
    HeadersTooLarge,
    Identity,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    RateLimited,
    Session,
    StoreUnavailable,
    TokenGateError,
    TokenRevoked,
    Unavailable,
)
from tokengate_client import flask as tgflask
from tokengate_client.flask import TokenGate, public

WWW = 'Bearer realm="tokengate"'


def dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class StandIn(Client):
    """A Client whose verify answers what the test says, and which records what it was given."""

    def __init__(self, outcome: Any = None) -> None:
        super().__init__(dead_url(), admin_url=dead_url(), admin_key="tgsk_" + "x" * 43)
        self.outcome = outcome if outcome is not None else MissingToken("missing_token", "a bearer token is required", 401,
                                                                        {"www-authenticate": WWW})
        self.verified: list[dict[str, str]] = []
        self.started: list[tuple[str, str | None, str | None]] = []
        self.ended: list[str] = []

    def verify(self, headers: Any) -> Identity:
        self.verified.append(dict(headers))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def start_session(self, user: str, user_agent: str | None = None, ip: str | None = None) -> Session:
        self.started.append((user, user_agent, ip))
        return Session("tok", "Bearer", 30, "sid", ("__Host-tg_token=tok; Path=/", "__Host-tg_csrf=c; Path=/"))

    def end_sessions(self, user: str) -> None:
        self.ended.append(user)


def make(client: StandIn | None = None, **options: Any) -> tuple[Flask, StandIn, list[str]]:
    client = client or StandIn()
    app = Flask(__name__, static_folder="static")
    ran: list[str] = []

    @app.before_request
    def apps_own_hook() -> None:
        ran.append("app before_request")

    ext = TokenGate(app, client=client, **options)

    @app.get("/page")
    def page() -> str:
        ran.append("page")
        return f"<p>{g.tokengate.user}</p>"

    @app.post("/api/items")
    def add() -> Any:
        ran.append("add")
        return {"user": g.tokengate.user, "x_auth_user": request.headers.get("X-Auth-User")}

    @app.get("/echo")
    def echo() -> Any:
        ran.append("echo")
        return {"user": g.tokengate.user, "session": g.tokengate.session_id,
                "x_auth_user": request.headers.get("X-Auth-User")}

    @app.get("/open")
    @public
    def open_view() -> Any:
        ran.append("open")
        return {"identity": g.tokengate is not None, "x_auth_user": request.headers.get("X-Auth-User")}

    @app.route("/login", methods=["GET", "POST"])
    @public
    def login() -> Any:
        if request.method == "POST":
            response = Response("signed in")
            session = ext.start_session("carol", response)
            assert tgflask.start_session("dave").session_id == session.session_id
            return response
        return "the login form"

    @public
    class Things(MethodView):
        def get(self) -> str:
            return "public things"

    class Secrets(MethodView):
        def get(self) -> str:
            return "secret"

        def delete(self) -> tuple[str, int]:
            return "", 204

    app.add_url_rule("/things", view_func=Things.as_view("things"))
    app.add_url_rule("/secrets", view_func=Secrets.as_view("secrets"))
    panel = Blueprint("panel", __name__, url_prefix="/panel")

    @panel.get("/")
    def panel_index() -> str:
        return "panel"

    app.register_blueprint(panel)
    return app, client, ran


ALICE = Identity("alice", "sid-a")


def test_a_refused_request_runs_nothing_of_the_app() -> None:
    app, client, ran = make()
    answer = app.test_client().get("/page")
    assert answer.status_code == 401 and answer.json == {"error": "missing_token", "message": "a bearer token is required"}
    assert answer.headers["WWW-Authenticate"] == WWW and answer.headers["Cache-Control"] == "no-store"
    assert ran == []  # not even the app's own before_request, registered before the extension


def test_guarded_by_default_public_by_mark() -> None:
    app, client, ran = make()
    web = app.test_client()
    for method, path in (("GET", "/page"), ("POST", "/api/items"), ("GET", "/secrets"), ("DELETE", "/secrets"),
                         ("GET", "/panel/"), ("GET", "/no/such/path"), ("POST", "/page"), ("GET", "/static/missing.css")):
        assert web.open(path, method=method).status_code == (404 if "static" in path else 401), (method, path)
    assert len(client.verified) == 7  # the static file was not verified
    assert web.get("/open").json == {"identity": False, "x_auth_user": None}
    assert web.get("/things").data == b"public things"
    assert web.get("/login").data == b"the login form"
    assert len(client.verified) == 7
    client.outcome = ALICE
    assert web.get("/no/such/path").status_code == 404  # Flask's 404 only with a valid token
    assert web.post("/page").status_code == 405
    assert web.get("/page").data == b"<p>alice</p>"


def test_what_verify_is_told() -> None:
    app, client, _ = make(StandIn(ALICE))
    web = app.test_client()
    web.set_cookie("a", "b", domain="shop.test")
    web.post("/api/items?draft=1", headers={"Authorization": "Bearer t", "Origin": "http://shop.test",
                                             "X-CSRF-Token": "c", "Sec-Fetch-Site": "same-origin", "Host": "shop.test"},
             environ_overrides={"REMOTE_ADDR": "198.51.100.7"})
    sent = {name.lower(): value for name, value in client.verified[0].items()}
    assert sent["authorization"] == "Bearer t" and sent["cookie"] == "a=b" and sent["x-csrf-token"] == "c"
    assert sent["origin"] == "http://shop.test" and sent["sec-fetch-site"] == "same-origin"
    assert sent["x-original-method"] == "POST" and sent["x-original-uri"] == "/api/items?draft=1"
    assert sent["host"] == "shop.test" and sent["x-forwarded-for"] == "198.51.100.7"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (MissingToken("missing_token", "no", 401, {"www-authenticate": WWW}), 401, "missing_token"),
        (InvalidToken("invalid_token", "bad", 401, {"www-authenticate": WWW + ', error="invalid_token"'}), 401, "invalid_token"),
        (TokenRevoked("token_revoked", "gone", 401, {}), 401, "token_revoked"),
        (CSRFFailed("csrf_failed", "csrf", 403, {}), 403, "csrf_failed"),
        (StoreUnavailable("store_unavailable", "redis", 503, {"retry-after": "1"}), 503, "store_unavailable"),
        (Unavailable("refused"), 503, "store_unavailable"),
        (TokenGateError("something_new", "?", 500, {}), 503, "store_unavailable"),
    ],
)
def test_failure_answers(error: TokenGateError, status: int, code: str) -> None:
    app, _, ran = make(StandIn(error))
    answer = app.test_client().post("/api/items")
    assert answer.status_code == status and answer.json["error"] == code
    assert answer.headers["Cache-Control"] == "no-store"
    if status == 401:
        assert answer.headers["WWW-Authenticate"].startswith(WWW)
    if status == 503:
        assert answer.headers["Retry-After"] == "1"
    assert ran == []


def test_browsers_are_sent_to_the_login_view() -> None:
    app, _, ran = make(login_view="login")
    web = app.test_client()
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    page = web.get("/page?tab=2", headers={"Accept": html})
    assert page.status_code == 302 and page.headers["Location"] == "/login?next=/page?tab%3D2"
    assert web.get("/page", headers={"Accept": "*/*"}).status_code == 401  # fetch() and curl
    assert web.get("/page").status_code == 401
    assert web.get("/page", headers={"Accept": "application/json"}).status_code == 401
    assert web.post("/api/items", headers={"Accept": html}).status_code == 401  # never a redirect for a POST
    app2, _, _ = make(StandIn(Unavailable("down")), login_view="login")
    assert app2.test_client().get("/page", headers={"Accept": html}).status_code == 503
    assert ran == []


def test_the_login_view_is_public_without_a_mark() -> None:
    app = Flask(__name__)
    TokenGate(app, client=StandIn(), login_view="sign_in")

    @app.get("/sign-in")
    def sign_in() -> str:
        return "form"

    @app.get("/account")
    def account() -> str:
        return "account"

    web = app.test_client()
    assert web.get("/sign-in", headers={"Accept": "text/html"}).data == b"form"
    assert web.get("/account", headers={"Accept": "text/html"}).headers["Location"] == "/sign-in?next=/account"


def test_rotation_and_cookies_are_passed_on_uncacheable() -> None:
    app, client, _ = make(StandIn(Identity("alice", "sid-a", "next-token", ("__Host-tg_token=n; Path=/",))))
    web = app.test_client()
    for path, status in (("/page", 200), ("/no/such/path", 404)):
        answer = web.get(path)
        assert answer.status_code == status
        assert answer.headers["X-Next-Token"] == "next-token"
        assert answer.headers.getlist("Set-Cookie") == ["__Host-tg_token=n; Path=/"]
        assert answer.headers["Cache-Control"] == "no-store"
        assert {"Authorization", "Cookie"} <= {v.strip() for v in answer.headers["Vary"].split(",")}
    client.outcome = ALICE
    assert "X-Next-Token" not in web.get("/page").headers


def test_identity_headers_only_from_trusted_proxies() -> None:
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "s-m"}
    app, client, _ = make(trusted_proxies="10.0.0.0/8, 192.0.2.1")
    web = app.test_client()
    # Not trusted: ignored, and removed, so that no view can read them.
    assert web.get("/echo", headers=forged, environ_base={"REMOTE_ADDR": "198.51.100.7"}).status_code == 401
    assert web.get("/open", headers=forged).json == {"identity": False, "x_auth_user": None}
    client.outcome = ALICE
    assert web.get("/echo", headers=forged).json == {"user": "alice", "session": "sid-a", "x_auth_user": None}
    calls = len(client.verified)
    for address in ("10.1.2.3", "192.0.2.1", "::ffff:10.9.9.9"):
        answer = web.get("/echo", headers=forged, environ_base={"REMOTE_ADDR": address})
        assert answer.json == {"user": "mallory", "session": "s-m", "x_auth_user": "mallory"}, address
    assert len(client.verified) == calls  # TokenGate was not asked again
    # A trusted proxy without the headers: verified as usual.
    assert web.get("/echo", environ_base={"REMOTE_ADDR": "10.1.2.3"}).json["user"] == "alice"


def test_proxy_secret_one_host() -> None:
    """With TOKENGATE_PROXY_SECRET, a trusted address is not enough (one host: any local process has
    it): the identity is believed only with the secret, which no view sees; the request's
    X-Next-Token (Traefik's way with per-request rotation) goes on to the client."""
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "s-m"}
    app, client, _ = make(trusted_proxies="127.0.0.1", proxy_secret="s3cret")
    web = app.test_client()
    local = {"REMOTE_ADDR": "127.0.0.1"}
    assert web.get("/echo", headers=forged, environ_base=local).status_code == 401
    wrong = {**forged, "X-TokenGate-Proxy-Secret": "guess"}
    assert web.get("/echo", headers=wrong, environ_base=local).status_code == 401
    right = {**forged, "X-TokenGate-Proxy-Secret": "s3cret", "X-Next-Token": "next"}
    answer = web.get("/echo", headers=right, environ_base=local)
    assert answer.json == {"user": "mallory", "session": "s-m", "x_auth_user": "mallory"}
    assert answer.headers["X-Next-Token"] == "next" and answer.headers["Cache-Control"] == "no-store"
    seen = {}
    app.view_functions["echo"] = lambda: seen.update(secret=request.headers.get("X-TokenGate-Proxy-Secret")) or "ok"
    web.get("/echo", headers=right, environ_base=local)
    assert seen == {"secret": None}


def test_start_session_and_end_sessions_helpers() -> None:
    app, client, _ = make(trusted_proxies=["127.0.0.1"])
    web = app.test_client()
    answer = web.post("/login", headers={"User-Agent": "Firefox/140", "X-Forwarded-For": "203.0.113.9, 127.0.0.1"})
    assert answer.status_code == 200
    assert answer.headers.getlist("Set-Cookie") == ["__Host-tg_token=tok; Path=/", "__Host-tg_csrf=c; Path=/"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert client.started == [("carol", "Firefox/140", "203.0.113.9"), ("dave", "Firefox/140", "203.0.113.9")]
    with app.app_context():
        tgflask.end_sessions("carol")
        app.extensions["tokengate"].end_sessions("dave")
    assert client.ended == ["carol", "dave"]


def test_settings_keyword_wins_over_config_and_factories_keep_apps_apart() -> None:
    ext = TokenGate(url="http://127.0.0.1:7001", proxy_auth_routes=False)
    first, second = Flask("first"), Flask("second")
    first.config.update(TOKENGATE_URL="http://127.0.0.1:9999", TOKENGATE_TRUSTED_PROXIES="10.0.0.1",
                        TOKENGATE_LOGIN_VIEW="login")
    second.config.update(TOKENGATE_PROXY_AUTH_ROUTES=True, TOKENGATE_ADMIN_URL="http://127.0.0.1:7002")
    ext.init_app(first)
    ext.init_app(second)
    for app in (first, second):
        with app.app_context():
            assert app.extensions["tokengate"].extension is ext
            assert ext.client.url == "http://127.0.0.1:7001"
        assert not any(rule.rule.startswith("/auth/") for rule in app.url_map.iter_rules())
    with first.app_context():
        assert ext.login_view == "login" and not ext.client.has_admin
    with second.app_context():
        assert ext.login_view is None and ext.client.admin_url == "http://127.0.0.1:7002"
    other = TokenGate()
    third = Flask("third")
    third.config.update(TOKENGATE_URL="http://127.0.0.1:7003", TOKENGATE_PROXY_AUTH_ROUTES="off")
    other.init_app(third)
    with third.app_context():
        assert other.client.url == "http://127.0.0.1:7003"
    assert not any(rule.rule.startswith("/auth/") for rule in third.url_map.iter_rules())
    fourth = Flask("fourth")
    TokenGate(fourth, url="http://127.0.0.1:7004")
    assert {"/auth/<path:rest>", "/tokengate.js"} <= {rule.rule for rule in fourth.url_map.iter_rules()}


def test_bad_settings_stop_start_up() -> None:
    with pytest.raises(ConfigurationError, match="TOKENGATE_URL"):
        TokenGate(Flask("a"))
    with pytest.raises(ConfigurationError, match="not-an-address"):
        TokenGate(Flask("b"), url="http://127.0.0.1:1", trusted_proxies="127.0.0.1,not-an-address")
    with pytest.raises(ConfigurationError):
        TokenGate(Flask("c"), url="http://127.0.0.1:1", proxy_auth_routes="maybe")  # type: ignore[arg-type]


def test_passthrough_limits_and_fails_closed() -> None:
    app, _, _ = make()
    web = app.test_client()
    big = web.post("/auth/login", data=b"x" * (64 * 1024 + 1), content_type="application/json")
    assert big.status_code == 413 and big.json["error"] == "payload_too_large"
    for method, path in (("GET", "/tokengate.js"), ("POST", "/auth/refresh"), ("POST", "/auth/logout"),
                         ("DELETE", "/auth/sessions/x"), ("PUT", "/auth/x"), ("PATCH", "/auth/x")):
        answer = web.open(path, method=method, headers={"Authorization": "Bearer t"})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "1", (method, path)
        assert json.loads(answer.data)["error"] == "store_unavailable"


def test_init_app_twice_installs_the_guard_once_and_a_second_extension_is_refused() -> None:
    app, client, _ = make()
    ext = app.extensions["tokengate"].extension
    ext.init_app(app)
    guards = [f for f in app.before_request_funcs[None] if f is tgflask._guard]
    assert len(guards) == 1 and len(app.after_request_funcs[None]) == 1
    app.test_client().get("/page")
    assert len(client.verified) == 1
    with pytest.raises(RuntimeError, match="already installed"):
        TokenGate(app, client=StandIn())


def test_state_lives_on_the_app_not_on_the_extension() -> None:
    ext = TokenGate()
    first, second = Flask("first"), Flask("second")
    first.config["TOKENGATE_URL"] = "http://127.0.0.1:7001"
    second.config["TOKENGATE_URL"] = "http://127.0.0.1:7002"
    ext.init_app(first)
    ext.init_app(second)
    with first.app_context():
        assert ext.client.url == "http://127.0.0.1:7001"
    with second.app_context():
        assert ext.client.url == "http://127.0.0.1:7002"
    # Outside any app there is no "last app" to fall back to.
    with pytest.raises(RuntimeError):
        _ = ext.client.url


def test_the_unauthorized_handler_answers_refusals_but_not_outages() -> None:
    app, client, ran = make()
    ext = app.extensions["tokengate"].extension
    seen: list[tuple[str, int]] = []

    @ext.unauthorized_handler
    def refused(error: TokenGateError) -> Any:
        seen.append((error.code, error.status))
        return {"please": "sign in", "why": error.code}, 401, {"X-Custom": "1"}

    web = app.test_client()
    answer = web.get("/page")
    assert (answer.status_code, answer.headers["X-Custom"]) == (401, "1")
    assert answer.json == {"please": "sign in", "why": "missing_token"}
    client.outcome = CSRFFailed("csrf_failed", "csrf", 403, {})
    assert web.post("/api/items").status_code == 401
    assert seen == [("missing_token", 401), ("csrf_failed", 403)]
    client.outcome = Unavailable("down")
    assert web.get("/page").status_code == 503 and len(seen) == 2
    assert ran == []


def test_the_user_loader_gives_current_user_once_per_request() -> None:
    app, client, _ = make(StandIn(ALICE))
    ext = app.extensions["tokengate"].extension
    loads: list[str] = []

    @ext.user_loader
    def load(identity: Identity) -> dict[str, str]:
        loads.append(identity.user)
        return {"name": identity.user.title()}

    @app.get("/whoami")
    def whoami() -> Any:
        return {"first": tgflask.current_user["name"], "again": tgflask.current_user["name"]}

    @app.get("/anonymous")
    @public
    def anonymous() -> Any:
        return {"user": tgflask.current_user.__repr__()}

    web = app.test_client()
    assert web.get("/whoami").json == {"first": "Alice", "again": "Alice"}
    assert loads == ["alice"]
    assert web.get("/anonymous").json == {"user": "None"}
    assert loads == ["alice"]


def test_public_blueprints_and_their_nested_blueprints() -> None:
    app = Flask(__name__)
    client = StandIn()
    TokenGate(app, client=client)
    docs = public(Blueprint("docs", __name__, url_prefix="/docs"))
    nested = Blueprint("nested", __name__, url_prefix="/more")
    private = Blueprint("private", __name__, url_prefix="/private")

    @docs.get("/")
    def docs_index() -> Any:
        return {"identity": g.tokengate is not None, "x_auth_user": request.headers.get("X-Auth-User")}

    @nested.get("/")
    def nested_index() -> str:
        return "nested"

    @private.get("/")
    def private_index() -> str:
        return "private"

    docs.register_blueprint(nested)
    app.register_blueprint(docs)
    app.register_blueprint(private)
    web = app.test_client()
    assert web.get("/docs/", headers={"X-Auth-User": "mallory", "X-Auth-Session": "s"}).json == {
        "identity": False, "x_auth_user": None}
    assert web.get("/docs/more/").data == b"nested"
    assert web.get("/private/").status_code == 401
    assert len(client.verified) == 1


def test_cors_preflights_reach_the_apps_own_cors_handling() -> None:
    app, client, _ = make()

    @app.after_request
    def cors(response: Response) -> Response:  # what flask-cors does, in short
        if request.headers.get("Origin") == "https://spa.example":
            response.headers["Access-Control-Allow-Origin"] = "https://spa.example"
            response.headers["Access-Control-Allow-Headers"] = "Authorization"
        return response

    web = app.test_client()
    preflight = web.options("/api/items", headers={"Origin": "https://spa.example", "Access-Control-Request-Method": "POST",
                                                   "Access-Control-Request-Headers": "authorization"})
    assert preflight.status_code == 200 and preflight.headers["Access-Control-Allow-Origin"] == "https://spa.example"
    assert client.verified == []
    # Not a preflight: an OPTIONS without Origin and Access-Control-Request-Method is guarded.
    assert web.options("/api/items").status_code == 401
    assert web.options("/api/items", headers={"Origin": "https://spa.example"}).status_code == 401
    # The real request after the preflight is guarded as ever.
    assert web.post("/api/items", headers={"Origin": "https://spa.example"}).status_code == 401


def test_public_views_never_get_an_identity_from_headers_even_from_a_trusted_proxy() -> None:
    app, client, _ = make(trusted_proxies="10.0.0.0/8")
    forged = {"X-Auth-User": "mallory", "X-Auth-Session": "s-m"}
    answer = app.test_client().get("/open", headers=forged, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert answer.json == {"identity": False, "x_auth_user": None}


def test_an_encoded_x_auth_user_from_a_trusted_proxy_is_decoded() -> None:
    app, client, _ = make(trusted_proxies="10.0.0.0/8")
    web = app.test_client()
    answer = web.get("/echo", headers={"X-Auth-User": "UTF-8''Zo%C3%AB", "X-Auth-Session": "s-z"},
                     environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert answer.json["user"] == "Zo\u00eb" and client.verified == []
    # One that does not decode is no identity: verified as usual.
    assert web.get("/echo", headers={"X-Auth-User": "UTF-8''%FF", "X-Auth-Session": "s-z"},
                   environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401


@pytest.mark.parametrize("path", ["/caf\u00e9", "/\u20ac/\U0001f600", "/a\r\nX-Injected: 1", "/a%0d%0ab", "/page\x00"])
def test_odd_paths_are_passed_on_percent_encoded_never_a_500(path: str) -> None:
    app, client, _ = make()
    answer = app.test_client().get(path, environ_overrides={"QUERY_STRING": "q=\xe2\x82\xac&x=%0D%0A"})
    assert answer.status_code == 401
    uri = client.verified[-1]["X-Original-URI"]
    assert uri.isascii() and uri.isprintable() and "\r" not in uri and "\n" not in uri
    assert uri.endswith("?q=%E2%82%AC&x=%0D%0A")


def test_a_header_too_large_for_tokengate_is_431_without_asking() -> None:
    app, client, _ = make()
    web = app.test_client()
    for n in range(5):  # 17.5 KB of cookies, each one a browser would keep
        web.set_cookie(f"big{n}", "x" * 3500)
    answer = web.get("/page")
    assert answer.status_code == 431 and answer.json["error"] == "headers_too_large" and client.verified == []
    # An unrelated big header is not TokenGate's business.
    for n in range(5):
        web.delete_cookie(f"big{n}")
    assert web.get("/page", headers={"X-Trace": "x" * (17 * 1024)}).status_code == 401


def test_the_passthrough_stays_below_auth() -> None:
    app, _, _ = make()
    web = app.test_client()
    # The stand-in's TokenGate is unreachable: anything passed on would be a 503.
    for path in ("/auth/../metrics", "/auth/x/../../metrics", "/auth/./verify", "/auth/a\\..\\metrics", "/auth/x/.."):
        answer = web.get(path)
        assert answer.status_code == 404 and answer.json["error"] == "not_found", path
    assert web.get("/auth//verify").status_code in (308, 401)  # Flask's own: never passed on
    assert web.get("/auth/refresh").status_code == 503


def test_errors_pickle_and_every_contract_code_has_its_class() -> None:
    for error in (tokengate.TokenRevoked("token_revoked", "gone", 401, {"www-authenticate": WWW}),
                  tokengate.RateLimited("rate_limited", "slow", 429, {"retry-after": "7"}),
                  tokengate.HeadersTooLarge("headers_too_large", "big", 431),
                  tokengate.Unavailable("down")):
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
        assert (copy.code, copy.message, copy.status, dict(copy.headers)) == (
            error.code, error.message, error.status, dict(error.headers))
    assert pickle.loads(pickle.dumps(tokengate.RateLimited("rate_limited", "slow", 429, {"retry-after": "7"}))).retry_after == 7
    codes = {"invalid_request": 400, "payload_too_large": 413, "headers_too_large": 431, "invalid_credentials": 401,
             "missing_token": 401, "invalid_token": 401, "token_expired": 401, "token_revoked": 401,
             "session_expired": 401, "csrf_failed": 403, "not_found": 404, "rate_limited": 429,
             "store_unavailable": 503}
    for code in codes:
        assert tokengate._ERRORS[code] is not TokenGateError, code


@pytest.mark.parametrize(("error", "status"), [
    (HeadersTooLarge("headers_too_large", "big", 431), 431),
    (RateLimited("rate_limited", "slow", 429, {"retry-after": "3"}), 429),
    (InvalidRequest("invalid_request", "bad", 400), 400),
])
def test_every_client_error_is_passed_on_with_its_status(error: TokenGateError, status: int) -> None:
    app, _, ran = make(StandIn(error))
    answer = app.test_client().get("/page")
    assert answer.status_code == status and answer.json["error"] == error.code and ran == []
