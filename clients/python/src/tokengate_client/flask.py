"""Guard every view of a Flask app with TokenGate: deny by default, ``@public`` to opt out.

    from tokengate_client.flask import TokenGate, public

    app = Flask(__name__)
    app.config["TOKENGATE_URL"] = "http://127.0.0.1:8080"
    tokengate = TokenGate(app)

    @app.get("/report")
    def report():
        return f"hello {g.tokengate.user}"

    @app.get("/healthz")
    @public
    def health():
        return "ok"

Every request to a view not marked ``@public`` (and to every unknown path) is checked with
TokenGate's ``/auth/verify`` before the view runs: a live token (``Authorization: Bearer`` or, in
cookie mode, the session cookie) puts the user in ``g.tokengate``; anything else is answered with
TokenGate's 401/403, or a redirect to the login view for a browser page; TokenGate or Redis being
unavailable is a 503, never the view (fail closed).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar
from urllib.parse import quote

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    has_app_context,
    has_request_context,
    jsonify,
    redirect,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from werkzeug.local import LocalProxy
from werkzeug.wrappers import Response as BaseResponse

from . import (
    Client,
    ConfigurationError,
    CSRFFailed,
    Identity,
    Session,
    StoreUnavailable,
    TokenGateError,
    Unavailable,
)
from . import _guard as _shared
from ._core import VERIFY_HEADERS

__all__ = ["TokenGate", "TokenGateState", "current_user", "end_sessions", "public", "start_session"]

log = logging.getLogger("tokengate_client.flask")
Marked = TypeVar("Marked")
Handler = TypeVar("Handler", bound=Callable[..., Any])
_PUBLIC_BLUEPRINTS: weakref.WeakSet[Blueprint] = weakref.WeakSet()

_PROXIED_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]  # HEAD comes with GET
_IDENTITY_HEADERS = ("HTTP_X_AUTH_USER", "HTTP_X_AUTH_SESSION")
# The headers of VERIFY_HEADERS passed on as the client sent them, with their WSGI environ keys (the
# guard sets X-Original-Method, X-Original-URI, Host and X-Forwarded-For itself): read straight from
# the environ, without a copy of every header of the request.
_PASSED_HEADERS = tuple(
    (name, "HTTP_" + name.upper().replace("-", "_"))
    for name in VERIFY_HEADERS
    if name not in ("X-Original-Method", "X-Original-URI", "Host", "X-Forwarded-For")
)
_PROXY_SECRET_HEADER = "HTTP_X_TOKENGATE_PROXY_SECRET"


def public(target: Marked) -> Marked:
    """Marks a view (a function, or a class-based ``View`` class) or a whole ``Blueprint`` as
    reachable without a token: a login page, health checks, a public API. ``g.tokengate`` is None
    there and identity headers are removed from the request. Above or below ``@app.route``; for a
    blueprint, ``public(Blueprint(...))`` (its nested blueprints included)."""
    if isinstance(target, Blueprint):
        _PUBLIC_BLUEPRINTS.add(target)
    else:
        target._tokengate_public = True  # type: ignore[attr-defined]
    return target


def _is_public_view(view: Any) -> bool:
    cls = getattr(view, "view_class", None)
    return bool(getattr(view, "_tokengate_public", False) or getattr(cls, "_tokengate_public", False))


@dataclass(frozen=True)
class TokenGateState:
    """One app's TokenGate, in ``app.extensions["tokengate"]`` (``init_app`` puts it there): the
    extension that installed it, the app's :class:`tokengate_client.Client`, its login view and trusted
    proxies."""

    extension: TokenGate
    client: Client
    login_view: str | None
    proxies: tuple[_shared.Network, ...] = field(repr=False)
    proxy_secret: str | None = field(default=None, repr=False)

    def start_session(self, user: str, response: Response | None = None) -> Session:
        """:meth:`TokenGate.start_session` for this app."""
        user_agent = ip = None
        if has_request_context():
            user_agent = request.headers.get("User-Agent")
            ip = _client_address(self)
        session = self.client.start_session(user, user_agent=user_agent, ip=ip)
        if response is not None:
            for cookie in session.set_cookie:
                response.headers.add("Set-Cookie", cookie)
            response.headers["Cache-Control"] = "no-store"
        return session

    def end_sessions(self, user: str) -> None:
        """:meth:`TokenGate.end_sessions` for this app."""
        self.client.end_sessions(user)


class TokenGate:
    """The Flask extension: every view is guarded unless marked :func:`public`.

    ``TokenGate(app)``, or ``TokenGate()`` then ``init_app(app)`` in an app factory (one extension
    may serve several apps, each with its own settings). Settings come from keywords or
    ``app.config``; a keyword wins:

    - ``url`` / ``TOKENGATE_URL``: TokenGate's public URL (needed unless ``client`` is given);
    - ``admin_url`` / ``TOKENGATE_ADMIN_URL`` and ``admin_key`` / ``TOKENGATE_ADMIN_KEY``: the
      service API, for :meth:`start_session` and :meth:`end_sessions`;
    - ``client``: a ready :class:`tokengate_client.Client` instead of the three above;
    - ``login_view`` / ``TOKENGATE_LOGIN_VIEW``: an endpoint name; a browser's GET (``Accept``
      prefers ``text/html``) without a valid token is redirected there (``?next=<path>``)
      instead of answered 401. That endpoint is public (no redirect loop);
    - ``trusted_proxies`` / ``TOKENGATE_TRUSTED_PROXIES``: addresses or CIDR ranges (a list, or
      a comma-separated string) of an nginx that already asked TokenGate (``auth_request``): from
      them, ``X-Auth-User``/``X-Auth-Session`` are taken as the identity and TokenGate is not
      asked again. From anywhere else those headers are removed from the request;
    - ``proxy_secret`` / ``TOKENGATE_PROXY_SECRET``: a per-deployment secret the proxy adds as
      ``X-TokenGate-Proxy-Secret`` (docs/forward-auth.md). When set, a request from a trusted proxy
      is believed only when it carries it (compared in constant time), so another process on the
      same host cannot name a user by calling the app's port. The header never reaches a view.
      A believed request's ``X-Next-Token`` (put there by a proxy that cannot pass it to the client
      itself: Traefik) goes on to the client with the answer;
    - ``proxy_auth_routes`` / ``TOKENGATE_PROXY_AUTH_ROUTES`` (default on): serve ``/auth/*`` and
      ``/tokengate.js`` by passing them to TokenGate, so that a browser that only sees this app's
      origin can log out, refresh and close its session. Turn it off when a balancer routes those
      paths to TokenGate itself;
    - ``timeout`` / ``TOKENGATE_TIMEOUT``: seconds per call to TokenGate (default 2).

    In a guarded view ``g.tokengate`` is the :class:`tokengate_client.Identity` (``.user``,
    ``.session_id``); it is None in public views. A refused request gets TokenGate's JSON error
    (401 with ``WWW-Authenticate``, 403 ``csrf_failed``); TokenGate or its Redis unavailable gets
    503 ``store_unavailable`` with ``Retry-After: 1``, never the view. Each app's state is a
    :class:`TokenGateState` in ``app.extensions["tokengate"]``; ``init_app`` twice on one app
    installs nothing twice. :meth:`unauthorized_handler` changes how refusals are answered,
    :meth:`user_loader` what :data:`current_user` is.
    """

    def __init__(
        self,
        app: Flask | None = None,
        *,
        url: str | None = None,
        admin_url: str | None = None,
        admin_key: str | None = None,
        client: Client | None = None,
        login_view: str | None = None,
        trusted_proxies: str | Iterable[str] | None = None,
        proxy_secret: str | None = None,
        proxy_auth_routes: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        self._settings: dict[str, Any] = {
            "TOKENGATE_URL": url,
            "TOKENGATE_ADMIN_URL": admin_url,
            "TOKENGATE_ADMIN_KEY": admin_key,
            "TOKENGATE_LOGIN_VIEW": login_view,
            "TOKENGATE_TRUSTED_PROXIES": trusted_proxies,
            "TOKENGATE_PROXY_SECRET": proxy_secret,
            "TOKENGATE_PROXY_AUTH_ROUTES": proxy_auth_routes,
        }
        self._timeout = timeout
        self._client = client
        self._unauthorized: Callable[[TokenGateError], ResponseReturnValue] | None = None
        self._user_loader: Callable[[Identity], Any] | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Installs the guard on ``app`` (the app-factory pattern). Calling it again for the same
        app does nothing; another extension already installed on the app is an error."""
        installed = app.extensions.get("tokengate")
        if isinstance(installed, TokenGateState):
            if installed.extension is self:
                return
            raise RuntimeError("another TokenGate extension is already installed on this app")
        settings = {name: value if value is not None else app.config.get(name) for name, value in self._settings.items()}
        client = self._client
        if client is None:
            if not settings["TOKENGATE_URL"]:
                raise ConfigurationError("TokenGate needs TOKENGATE_URL (the TokenGate service's URL), or url=...")
            timeout = self._timeout if self._timeout is not None else app.config.get("TOKENGATE_TIMEOUT", 2.0)
            client = Client(
                settings["TOKENGATE_URL"],
                admin_url=settings["TOKENGATE_ADMIN_URL"],
                admin_key=settings["TOKENGATE_ADMIN_KEY"],
                timeout=float(timeout),
            )
        state = TokenGateState(
            extension=self,
            client=client,
            login_view=settings["TOKENGATE_LOGIN_VIEW"] or None,
            proxies=_shared.networks(settings["TOKENGATE_TRUSTED_PROXIES"]),
            proxy_secret=settings["TOKENGATE_PROXY_SECRET"] or None,
        )
        proxy_routes = _shared.flag(settings["TOKENGATE_PROXY_AUTH_ROUTES"], "TOKENGATE_PROXY_AUTH_ROUTES")
        app.extensions["tokengate"] = state
        if proxy_routes:
            app.add_url_rule("/auth/<path:rest>", "_tokengate.auth", _proxy, methods=_PROXIED_METHODS)
            app.add_url_rule("/tokengate.js", "_tokengate.js", _proxy, defaults={"rest": None})
        # The first before_request function: nothing of the app runs for a request that is refused.
        app.before_request_funcs.setdefault(None, []).insert(0, _guard)
        app.after_request(_pass_on)

    @property
    def client(self) -> Client:
        """The current app's :class:`tokengate_client.Client`; outside an app context, the one given as
        ``client=`` (there is no "last app" to fall back to)."""
        if has_app_context():
            state = current_app.extensions.get("tokengate")
            if isinstance(state, TokenGateState) and state.extension is self:
                return state.client
        if self._client is not None:
            return self._client
        raise RuntimeError("no app context: the client is the app's, app.extensions['tokengate'].client")

    @property
    def login_view(self) -> str | None:
        """The current app's login view's endpoint name, or None."""
        return _state().login_view

    def unauthorized_handler(self, handler: Handler) -> Handler:
        """Decorates the function that answers a refused request instead of the built-in answer
        (TokenGate's JSON error, or the redirect to the login view). It is called with the
        :class:`tokengate_client.TokenGateError` (``.status``, ``.code``, ``.headers``) and returns any
        Flask response value; the view never runs. TokenGate unavailable stays a 503."""
        self._unauthorized = handler
        return handler

    def user_loader(self, loader: Handler) -> Handler:
        """Decorates the function that turns a verified :class:`tokengate_client.Identity` into the app's
        own user object, e.g. ``lambda identity: User.query.get(identity.user)``; read it as
        ``tokengate_client.flask.current_user`` (None on public views, loaded once per request)."""
        self._user_loader = loader
        return loader

    # -- sessions for the app's own users ----------------------------------------------------------

    def start_session(self, user: str, response: Response | None = None) -> Session:
        """Starts a session for ``user``, whom the app has just authenticated, with this request's
        User-Agent and client address; in cookie mode the session's cookies are set on
        ``response``."""
        return _state().start_session(user, response)

    def end_sessions(self, user: str) -> None:
        """Ends every session of ``user`` (password changed, account disabled)."""
        _state().end_sessions(user)


def _state() -> TokenGateState:
    state = current_app.extensions.get("tokengate")
    if not isinstance(state, TokenGateState):
        raise RuntimeError("TokenGate is not installed on this app: TokenGate(app) or init_app(app)")
    return state


# -- the guard -------------------------------------------------------------------------------------


def _guard() -> ResponseReturnValue | None:
    state = _state()
    g.tokengate = None
    # The proxy's secret is for this check only: no view ever sees it.
    sent = request.environ.pop(_PROXY_SECRET_HEADER, None)
    if _is_public(state) or _is_preflight():
        # No identity here, and none a client could put in: the identity headers go.
        _drop_identity_headers()
        return None
    trusted = _shared.vouched(request.remote_addr, sent, state.proxies, state.proxy_secret)
    identity = _trusted_identity() if trusted else None
    if identity is None:
        _drop_identity_headers()
        try:
            identity = state.client.verify(_verify_headers(state))
        except (Unavailable, StoreUnavailable) as error:
            log.warning("TokenGate could not check %s %s (%s): answering 503", request.method, _loggable_path(), error.code)
            return _unavailable()
        except TokenGateError as error:
            return _refusal(error, state)
    g.tokengate = identity
    return None


def _is_public(state: TokenGateState) -> bool:
    endpoint = request.endpoint
    if endpoint is None:
        return False  # an unknown path: denied like any other without a token
    if endpoint == "static" or endpoint.startswith("_tokengate.") or endpoint == state.login_view:
        return True
    if _is_public_view(current_app.view_functions.get(endpoint)):
        return True
    return any(current_app.blueprints.get(name) in _PUBLIC_BLUEPRINTS for name in request.blueprints)


def _is_preflight() -> bool:
    """A CORS preflight: the browser asks before the real request and never sends credentials with
    it; it goes on to the app's own CORS handling (flask-cors, or Flask's automatic OPTIONS)."""
    headers = request.headers
    return _shared.is_preflight(request.method, headers.get("Origin"), headers.get("Access-Control-Request-Method"))


def _drop_identity_headers() -> None:
    for name in _IDENTITY_HEADERS:
        request.environ.pop(name, None)


def _trusted_identity() -> Identity | None:
    headers = request.headers
    return _shared.vouched_identity(headers.get("X-Auth-User"), headers.get("X-Auth-Session"), headers.get("X-Next-Token"))


def _client_address(state: TokenGateState) -> str | None:
    """The browser's address: the peer, or behind trusted proxies the nearest address in
    X-Forwarded-For that is not one of them."""
    return _shared.client_address(request.remote_addr, request.headers.get("X-Forwarded-For"), state.proxies)


def _target() -> str:
    """The request's path and query as an origin-form target of ASCII only (percent-encoded), so
    that no path a client can send (non-Latin-1, CR/LF) breaks a header or a request line."""
    return _shared.target(request.path, request.query_string)


def _loggable_path() -> str:
    return quote(request.path, safe=_shared.PATH_SAFE, errors="surrogatepass")[:200]


def _verify_headers(state: TokenGateState) -> dict[str, str]:
    # The method and path of the request being guarded (cookie-mode CSRF needs the method); over
    # 16 KiB of what TokenGate reads (a 17 KB cookie) is its 431 without asking it.
    environ = request.environ
    passed = [(name, environ[key]) for name, key in _PASSED_HEADERS if key in environ]
    return _shared.verify_headers(passed, request.method, _target(), request.host, _client_address(state))


def _refusal(error: TokenGateError, state: TokenGateState) -> ResponseReturnValue:
    if not 400 <= error.status < 500:
        log.warning("TokenGate answered %s %s with %s: answering 503", request.method, _loggable_path(), error.code)
        return _unavailable()
    handler = state.extension._unauthorized
    if handler is not None:
        return handler(error)
    if (
        state.login_view
        and error.status == 401
        and request.method in ("GET", "HEAD")
        and not isinstance(error, CSRFFailed)
        and _wants_html()
    ):
        answer: BaseResponse = redirect(url_for(state.login_view, next=_target()))
        answer.headers["Cache-Control"] = "no-store"
        return answer
    answer = jsonify(error=error.code, message=error.message)
    answer.status_code = error.status
    answer.headers["Cache-Control"] = "no-store"
    for name in ("WWW-Authenticate", "Retry-After"):
        if name.lower() in error.headers:
            answer.headers[name] = error.headers[name.lower()]
    if error.status == 401 and "WWW-Authenticate" not in answer.headers:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="tokengate"'
    return answer


def _pass_on(response: Response) -> Response:
    identity = g.get("tokengate")
    if isinstance(identity, Identity):
        for cookie in identity.set_cookie:
            response.headers.add("Set-Cookie", cookie)
        if identity.next_token:
            response.headers["X-Next-Token"] = identity.next_token
        if identity.next_token or identity.set_cookie:
            # A live token must never be stored by a cache, whatever the view said.
            response.headers["Cache-Control"] = "no-store"
            response.vary.update(("Authorization", "Cookie"))
    return response


def _load_user() -> Any:
    identity = g.get("tokengate")
    if not isinstance(identity, Identity):
        return None
    if "_tokengate_user" not in g:
        loader = _state().extension._user_loader
        g._tokengate_user = loader(identity) if loader is not None else identity
    return g._tokengate_user


current_user: Any = LocalProxy(_load_user)
"""The current request's user: what the ``user_loader`` returns for ``g.tokengate`` (the
:class:`tokengate_client.Identity` itself without a loader), None in public views."""


# -- /auth/* and /tokengate.js passed through ------------------------------------------------------


def _proxy(rest: str | None) -> ResponseReturnValue:
    state = _state()
    # Only /auth/<something> below /auth/: no dot segments, no empty ones (a client's /auth/../metrics).
    if rest is not None and any(part in ("", ".", "..") or "\\" in part for part in rest.split("/")):
        answer = jsonify(error="not_found", message="no such route")
        answer.status_code = 404
        answer.headers["Cache-Control"] = "no-store"
        return answer
    headers = {name: request.headers[name] for name in _shared.PROXIED_REQUEST_HEADERS if name in request.headers}
    headers["Host"] = request.host
    address = _client_address(state)
    if address:
        headers["X-Forwarded-For"] = address
    # Bounded: never more than the limit (+1 byte, to tell) is read, whatever the client declares.
    if (request.content_length or 0) > _shared.MAX_PROXIED_BODY:
        return _too_large()
    body = request.stream.read(_shared.MAX_PROXIED_BODY + 1)
    if len(body) > _shared.MAX_PROXIED_BODY:
        return _too_large()
    try:
        upstream = state.client.forward(request.method, _target(), headers, body or None)
    except Unavailable as error:
        log.warning("TokenGate did not answer %s %s (%s): answering 503", request.method, _loggable_path(), error.message)
        return _unavailable()
    except TokenGateError as error:
        return _refusal(error, state)
    answer = Response(upstream.body, status=upstream.status)
    if upstream.header("Content-Type") is None:
        del answer.headers["Content-Type"]
    length = upstream.header("Content-Length")
    if request.method == "HEAD" and length is not None:
        answer.headers["Content-Length"] = length
    for name in _shared.PROXIED_RESPONSE_HEADERS:
        value = upstream.header(name)
        if value is not None:
            answer.headers[name] = value
    for cookie in upstream.header_list("Set-Cookie"):
        answer.headers.add("Set-Cookie", cookie)
    return answer


def start_session(user: str, response: Response | None = None) -> Session:
    """:meth:`TokenGate.start_session` of the current app's extension."""
    return _state().start_session(user, response)


def end_sessions(user: str) -> None:
    """:meth:`TokenGate.end_sessions` of the current app's extension."""
    _state().end_sessions(user)


def _unavailable() -> Response:
    """Fail closed: 503 store_unavailable with Retry-After: 1, never the view."""
    answer = jsonify(error="store_unavailable", message="authentication is unavailable; try again")
    answer.status_code = 503
    answer.headers["Retry-After"] = "1"
    answer.headers["Cache-Control"] = "no-store"
    return answer


def _too_large() -> Response:
    answer = jsonify(error="payload_too_large", message="the request body is larger than allowed")
    answer.status_code = 413
    answer.headers["Cache-Control"] = "no-store"
    return answer


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]
