"""Guard every view of a Flask app with TokenGate: deny by default, ``@public`` to opt out.

    from tokengate.flask import TokenGate, public

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

import ipaddress
from collections.abc import Iterable
from typing import Any, Callable, TypeVar

import urllib3
from flask import Flask, Response, current_app, g, jsonify, redirect, request, url_for

from . import Client, CSRFFailed, Identity, Session, StoreUnavailable, TokenGateError, Unavailable

__all__ = ["TokenGate", "public"]

View = TypeVar("View", bound=Callable[..., Any])

# What passes between the browser and TokenGate through `proxy_auth_routes`, each way.
_PROXIED_REQUEST_HEADERS = (
    "Content-Type",
    "Authorization",
    "Cookie",
    "Origin",
    "Sec-Fetch-Site",
    "X-CSRF-Token",
    "User-Agent",
    "Accept",
)
_PROXIED_RESPONSE_HEADERS = (
    "Content-Type",
    "Cache-Control",
    "WWW-Authenticate",
    "Retry-After",
    "X-Next-Token",
    "Clear-Site-Data",
    "Pragma",
    "Content-Security-Policy",
    "X-Content-Type-Options",
)
_MAX_PROXIED_BODY = 64 * 1024


def public(view: View) -> View:
    """Marks a view as reachable without a token (a login page, health checks)."""
    view._tokengate_public = True  # type: ignore[attr-defined]
    return view


class TokenGate:
    """The Flask extension. Settings come from keywords or ``app.config`` (``TOKENGATE_URL``,
    ``TOKENGATE_ADMIN_URL``, ``TOKENGATE_ADMIN_KEY``, ``TOKENGATE_LOGIN_VIEW``,
    ``TOKENGATE_TRUSTED_PROXIES``, ``TOKENGATE_PROXY_AUTH_ROUTES``); a keyword wins.

    - ``login_view``: an endpoint name; a browser's page request without a valid token is
      redirected there (``?next=<path>``) instead of answered 401.
    - ``trusted_proxies``: addresses or CIDR ranges of an nginx that already asked TokenGate
      (``auth_request``): from them, ``X-Auth-User``/``X-Auth-Session`` are taken as the identity
      and TokenGate is not asked again. From anywhere else those headers are ignored.
    - ``proxy_auth_routes`` (default on): serve ``/auth/*`` and ``/tokengate.js`` by passing them
      to TokenGate, so that a browser that only sees this app's origin can log out, refresh and
      close its session. Turn it off when a balancer routes those paths to TokenGate itself.
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
        proxy_auth_routes: bool | None = None,
        timeout: float | None = None,
    ) -> None:
        self._settings: dict[str, Any] = {
            "TOKENGATE_URL": url,
            "TOKENGATE_ADMIN_URL": admin_url,
            "TOKENGATE_ADMIN_KEY": admin_key,
            "TOKENGATE_LOGIN_VIEW": login_view,
            "TOKENGATE_TRUSTED_PROXIES": trusted_proxies,
            "TOKENGATE_PROXY_AUTH_ROUTES": proxy_auth_routes,
        }
        self._timeout = timeout
        self.client: Client | None = client
        self.login_view: str | None = None
        self._proxies: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Installs the guard on ``app`` (the app-factory pattern)."""
        settings = {name: value if value is not None else app.config.get(name) for name, value in self._settings.items()}
        if self.client is None:
            if not settings["TOKENGATE_URL"]:
                raise ValueError("TokenGate needs TOKENGATE_URL (the TokenGate service's URL)")
            self.client = Client(
                settings["TOKENGATE_URL"],
                admin_url=settings["TOKENGATE_ADMIN_URL"],
                admin_key=settings["TOKENGATE_ADMIN_KEY"],
                timeout=self._timeout if self._timeout is not None else 2.0,
            )
        self.login_view = settings["TOKENGATE_LOGIN_VIEW"]
        proxies = settings["TOKENGATE_TRUSTED_PROXIES"] or ()
        if isinstance(proxies, str):
            proxies = [entry for entry in (part.strip() for part in proxies.split(",")) if entry]
        self._proxies = [ipaddress.ip_network(entry, strict=False) for entry in proxies]
        app.extensions["tokengate"] = self
        if settings["TOKENGATE_PROXY_AUTH_ROUTES"] is not False:
            self._add_auth_routes(app)
        app.before_request(self._guard)
        app.after_request(self._pass_on)

    # -- the guard ---------------------------------------------------------------------------------

    def _guard(self) -> Response | None:
        if self._is_public():
            return None
        try:
            identity = self._trusted_identity() or self._client().verify(self._verify_headers())
        except (Unavailable, StoreUnavailable):
            answer = jsonify(error="store_unavailable", message="authentication is unavailable; try again")
            answer.status_code = 503
            answer.headers["Retry-After"] = "1"
            answer.headers["Cache-Control"] = "no-store"
            return answer
        except TokenGateError as error:
            return self._refusal(error)
        g.tokengate = identity
        return None

    def _is_public(self) -> bool:
        endpoint = request.endpoint
        if endpoint is None:
            return False  # an unknown path: denied like any other without a token
        if endpoint == "static" or endpoint.startswith("_tokengate."):
            return True
        view = current_app.view_functions.get(endpoint)
        return bool(getattr(view, "_tokengate_public", False))

    def _trusted_identity(self) -> Identity | None:
        user = request.headers.get("X-Auth-User")
        session_id = request.headers.get("X-Auth-Session")
        if not user or not session_id or not self._proxies or not self._from_trusted_proxy():
            return None
        return Identity(user=user, session_id=session_id)

    def _from_trusted_proxy(self) -> bool:
        try:
            peer = ipaddress.ip_address(request.remote_addr or "")
        except ValueError:
            return False
        return any(peer in network for network in self._proxies)

    def _verify_headers(self) -> dict[str, str]:
        headers = {name: value for name, value in request.headers.items()}
        # The method and path of the request being guarded (cookie-mode CSRF needs the method).
        headers["X-Original-Method"] = request.method
        headers["X-Original-URI"] = request.full_path if request.query_string else request.path
        headers["Host"] = request.host
        if request.remote_addr:
            headers["X-Forwarded-For"] = request.remote_addr
        return headers

    def _refusal(self, error: TokenGateError) -> Response:
        if self.login_view and request.method == "GET" and not isinstance(error, CSRFFailed) and _wants_html():
            return redirect(url_for(self.login_view, next=request.full_path if request.query_string else request.path))
        answer = jsonify(error=error.code, message=error.message)
        answer.status_code = error.status
        answer.headers["Cache-Control"] = "no-store"
        for name in ("WWW-Authenticate", "Retry-After"):
            if name.lower() in error.headers:
                answer.headers[name] = error.headers[name.lower()]
        return answer

    def _pass_on(self, response: Response) -> Response:
        identity = g.get("tokengate")
        if isinstance(identity, Identity):
            for cookie in identity.set_cookie:
                response.headers.add("Set-Cookie", cookie)
            if identity.next_token:
                # A live token must never be stored by a cache, whatever the view said.
                response.headers["X-Next-Token"] = identity.next_token
                response.headers["Cache-Control"] = "no-store"
                response.vary.update(("Authorization", "Cookie"))
        return response

    # -- sessions for the app's own users ----------------------------------------------------------

    def start_session(self, user: str, response: Response | None = None) -> Session:
        """Starts a session for ``user``, whom the app has just authenticated, with this request's
        User-Agent and client address; in cookie mode the session's cookies are set on
        ``response``."""
        session = self._client().start_session(
            user, user_agent=request.headers.get("User-Agent", ""), ip=request.remote_addr or None
        )
        if response is not None:
            for cookie in session.set_cookie:
                response.headers.add("Set-Cookie", cookie)
            response.headers["Cache-Control"] = "no-store"
        return session

    def end_sessions(self, user: str) -> None:
        """Ends every session of ``user`` (password changed, account disabled)."""
        self._client().end_sessions(user)

    def _client(self) -> Client:
        if self.client is None:
            raise RuntimeError("TokenGate.init_app(app) has not been called")
        return self.client

    # -- /auth/* and /tokengate.js passed through --------------------------------------------------

    def _add_auth_routes(self, app: Flask) -> None:
        methods = ["GET", "POST", "DELETE"]
        app.add_url_rule("/auth/<path:rest>", "_tokengate.auth", self._proxy, methods=methods)
        app.add_url_rule("/tokengate.js", "_tokengate.js", self._proxy, defaults={"rest": None})

    def _proxy(self, rest: str | None) -> Response:
        client = self._client()
        headers = {name: request.headers[name] for name in _PROXIED_REQUEST_HEADERS if name in request.headers}
        headers["Host"] = request.host
        if request.remote_addr:
            headers["X-Forwarded-For"] = request.remote_addr
        body = request.get_data(cache=False)[: _MAX_PROXIED_BODY + 1]
        if len(body) > _MAX_PROXIED_BODY:
            answer = jsonify(error="payload_too_large", message="the request body is larger than allowed")
            answer.status_code = 413
            return answer
        target = client.url + (request.full_path if request.query_string else request.path)
        try:
            upstream = client._pool.request(request.method, target, body=body or None, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError:
            answer = jsonify(error="store_unavailable", message="authentication is unavailable; try again")
            answer.status_code = 503
            answer.headers["Retry-After"] = "1"
            return answer
        answer = Response(upstream.data, status=upstream.status)
        for name in _PROXIED_RESPONSE_HEADERS:
            if name in upstream.headers:
                answer.headers[name] = upstream.headers[name]
        for cookie in upstream.headers.getlist("Set-Cookie"):
            answer.headers.add("Set-Cookie", cookie)
        return answer


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and request.accept_mimetypes[best] > request.accept_mimetypes["application/json"]
