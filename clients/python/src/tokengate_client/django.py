"""Guard every view of a Django project with TokenGate: deny by default, ``@public`` to opt out.

    # settings.py
    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "tokengate_client.django.TokenGateMiddleware",      # before anything that does work for a user
        ...
    ]
    TOKENGATE_URL = "http://127.0.0.1:8080"

    # views.py
    from tokengate_client.django import public

    def report(request):
        return HttpResponse(f"hello {request.tokengate.user}")

    @public
    def health(request):
        return HttpResponse("ok")

Every request (unknown paths included) is checked with TokenGate's ``/auth/verify`` before any
view runs, except views marked ``@public``, paths under ``TOKENGATE_PUBLIC_PATHS`` and CORS
preflights: a live token puts the :class:`tokengate_client.Identity` in ``request.tokengate``;
anything else is answered with TokenGate's 401/403/431 JSON error; TokenGate or its Redis being
unavailable is a 503, never the view (fail closed). The settings have the Flask extension's names
(``TOKENGATE_URL``, ``TOKENGATE_ADMIN_URL``, ...), read from ``django.conf.settings``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar
from urllib.parse import quote

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.urls import Resolver404, URLPattern, get_resolver, path, re_path
from django.utils.cache import patch_vary_headers
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt

from . import (
    Client,
    ConfigurationError,
    Identity,
    Session,
    StoreUnavailable,
    TokenGateError,
    Unavailable,
)
from . import _guard as _shared

__all__ = [
    "TokenGateMiddleware",
    "auth_urls",
    "client",
    "end_sessions",
    "identity",
    "public",
    "start_session",
]

log = logging.getLogger("tokengate_client.django")
Marked = TypeVar("Marked")
UnauthorizedHandler = Callable[[HttpRequest, TokenGateError], HttpResponseBase]

_IDENTITY_META = ("HTTP_X_AUTH_USER", "HTTP_X_AUTH_SESSION")
_PROXY_SECRET_META = "HTTP_X_TOKENGATE_PROXY_SECRET"
# The settings this module reads; a change of any of them (override_settings) is seen at once.
_SETTINGS = (
    "TOKENGATE_URL",
    "TOKENGATE_ADMIN_URL",
    "TOKENGATE_ADMIN_KEY",
    "TOKENGATE_CLIENT",
    "TOKENGATE_TIMEOUT",
    "TOKENGATE_TRUSTED_PROXIES",
    "TOKENGATE_PROXY_SECRET",
    "TOKENGATE_PUBLIC_PATHS",
    "TOKENGATE_UNAUTHORIZED_HANDLER",
)

_PROXIED_METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"))


def public(view: Marked) -> Marked:
    """Marks a view (a function, or a class-based view's class) as reachable without a token: a
    login view, health checks, a public API. ``request.tokengate`` is None there and
    ``X-Auth-User``/``X-Auth-Session`` are removed from the request. Whole URL prefixes are
    public through ``TOKENGATE_PUBLIC_PATHS``."""
    view._tokengate_public = True  # type: ignore[attr-defined]
    return view


def _is_public_view(view: Any) -> bool:
    if getattr(view, "_tokengate_public", False):
        return True
    # Django's as_view() sets view_class; Django REST framework's viewsets set cls.
    return any(getattr(getattr(view, name, None), "_tokengate_public", False) for name in ("view_class", "cls"))


@dataclass(frozen=True)
class _State:
    """The settings, read once (and again after a change): the client, trusted proxies, public
    paths and the unauthorized handler."""

    client: Client
    proxies: tuple[_shared.Network, ...] = field(repr=False)
    proxy_secret: str | None = field(repr=False)
    public_paths: tuple[str, ...]
    unauthorized: UnauthorizedHandler | None


_lock = threading.Lock()
_cached: _State | None = None


def _state() -> _State:
    global _cached
    state = _cached
    if state is None:
        with _lock:
            state = _cached
            if state is None:
                state = _cached = _read_settings()
    return state


def _forget_settings(*, setting: str, **_: Any) -> None:
    global _cached
    if setting in _SETTINGS:
        with _lock:
            _cached = None


setting_changed.connect(_forget_settings, dispatch_uid="tokengate_client.django")


def _setting(name: str) -> Any:
    return getattr(settings, name, None)


def _read_settings() -> _State:
    # The shared reading of the TOKENGATE_* names (the Flask config's and the environment's).
    read = _shared.Settings.read({name: _setting(name) for name in _SETTINGS})
    given = _setting("TOKENGATE_CLIENT")
    if given is not None:
        if not isinstance(given, Client):
            raise ConfigurationError("TOKENGATE_CLIENT must be a tokengate_client.Client (or a FakeTokenGate)")
        ready: Client = given
    else:
        if not read.url:
            raise ConfigurationError("tokengate_client.django needs TOKENGATE_URL (the TokenGate service's URL) in settings")
        ready = Client(read.url, admin_url=read.admin_url, admin_key=read.admin_key, timeout=read.timeout)
    handler = _setting("TOKENGATE_UNAUTHORIZED_HANDLER")
    if isinstance(handler, str):
        handler = import_string(handler)
    if handler is not None and not callable(handler):
        raise ConfigurationError("TOKENGATE_UNAUTHORIZED_HANDLER must be a function (request, error) or its dotted path")
    return _State(
        client=ready,
        proxies=read.trusted_proxies,
        proxy_secret=read.proxy_secret,
        public_paths=_public_paths(_setting("TOKENGATE_PUBLIC_PATHS")),
        unauthorized=handler,
    )


def _public_paths(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, str):
        value = [value]
    paths = []
    for entry in value:
        text = str(entry)
        if not text.startswith("/"):
            raise ConfigurationError(f"TOKENGATE_PUBLIC_PATHS: {text!r} must start with /")
        paths.append(text)
    return tuple(paths)


# -- the middleware --------------------------------------------------------------------------------


class TokenGateMiddleware:
    """Checks every request with TokenGate before any view runs (put it in ``MIDDLEWARE`` right
    after ``SecurityMiddleware``; a CORS middleware may come before it).

    Not checked: views marked :func:`public`, paths under ``TOKENGATE_PUBLIC_PATHS`` and CORS
    preflights; there ``request.tokengate`` is None. Elsewhere it is the verified
    :class:`tokengate_client.Identity`, or the request is answered with TokenGate's refusal
    (``TOKENGATE_UNAUTHORIZED_HANDLER`` may answer it instead), or 503 when TokenGate cannot be
    asked. A view whose own call to TokenGate raises ``Unavailable`` or ``StoreUnavailable`` is
    answered 503 too. The settings are read at start-up (a missing ``TOKENGATE_URL`` stops it) and
    again after any change of them."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response
        _state()  # bad settings stop start-up, not the first request

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        answer = _guard(request, _state())
        if answer is not None:
            return answer
        return _pass_on(request, self.get_response(request))

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponseBase | None:
        """A view's own call to TokenGate (``start_session``, ``end_sessions``) that found it
        unavailable is answered like the guard's: 503 ``store_unavailable``, not a 500."""
        if isinstance(exception, (Unavailable, StoreUnavailable)):
            log.warning("TokenGate was unavailable to %s %s (%s): answering 503",
                        request.method, _loggable_path(request), exception.code)
            return _unavailable()
        return None


def _guard(request: HttpRequest, state: _State) -> HttpResponseBase | None:
    request.tokengate = None  # type: ignore[attr-defined]
    # The proxy's secret is for this check only: no view ever sees it.
    sent = request.META.pop(_PROXY_SECRET_META, None)
    if _is_preflight(request) or _is_public(request, state):
        # No identity here, and none a client could put in: the identity headers go.
        _drop_identity_headers(request)
        return None
    peer = request.META.get("REMOTE_ADDR")
    # WSGI hands header bytes over as Latin-1 characters: compare the bytes that were sent.
    secret = sent.encode("latin-1", "replace").decode("utf-8", "replace") if isinstance(sent, str) else None
    trusted = _shared.vouched(peer, secret, state.proxies, state.proxy_secret)
    found = _trusted_identity(request) if trusted else None
    if found is None:
        _drop_identity_headers(request)
        try:
            found = state.client.verify(_verify_headers(request, state))
        except (Unavailable, StoreUnavailable) as error:
            log.warning("TokenGate could not check %s %s (%s): answering 503",
                        request.method, _loggable_path(request), error.code)
            return _unavailable()
        except TokenGateError as error:
            return _refusal(request, error, state)
    request.tokengate = found  # type: ignore[attr-defined]
    return None


def _is_preflight(request: HttpRequest) -> bool:
    """A CORS preflight: the browser asks before the real request and never sends credentials with
    it; it goes on to the app's own CORS handling (django-cors-headers, or the view's own)."""
    meta = request.META
    return _shared.is_preflight(str(request.method), meta.get("HTTP_ORIGIN"), meta.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"))


def _is_public(request: HttpRequest, state: _State) -> bool:
    path_info = request.path_info
    if state.public_paths and _under(path_info, state.public_paths):
        return True
    try:
        match = get_resolver(getattr(request, "urlconf", None)).resolve(path_info)
    except Resolver404:
        return False  # an unknown path: denied like any other without a token
    return _is_public_view(match.func)


def _under(path_info: str, prefixes: tuple[str, ...]) -> bool:
    """Whether a path is below one of the public prefixes: ``/static/`` covers what starts with it,
    ``/healthz`` covers ``/healthz`` and ``/healthz/...`` but not ``/healthzx``. A path with a ``.``,
    ``..`` or empty segment is never public this way (``/static/../admin/``)."""
    segments = path_info.split("/")[1:]
    if any(part in (".", "..") for part in segments) or "//" in path_info or "\\" in path_info:
        return False
    for prefix in prefixes:
        if prefix.endswith("/"):
            if path_info.startswith(prefix):
                return True
        elif path_info == prefix or path_info.startswith(prefix + "/"):
            return True
    return False


def _drop_identity_headers(request: HttpRequest) -> None:
    for name in _IDENTITY_META:
        request.META.pop(name, None)
    # request.headers is computed once from META: forget a copy made before this point.
    request.__dict__.pop("headers", None)


def _trusted_identity(request: HttpRequest) -> Identity | None:
    meta = request.META
    return _shared.vouched_identity(meta.get("HTTP_X_AUTH_USER"), meta.get("HTTP_X_AUTH_SESSION"), meta.get("HTTP_X_NEXT_TOKEN"))


def _client_address(request: HttpRequest, state: _State) -> str | None:
    """The browser's address: the peer, or behind trusted proxies the nearest address in
    X-Forwarded-For that is not one of them."""
    meta = request.META
    return _shared.client_address(meta.get("REMOTE_ADDR") or None, meta.get("HTTP_X_FORWARDED_FOR"), state.proxies)


def _target(request: HttpRequest) -> str:
    """The request's path and query as an origin-form target of ASCII only (percent-encoded), so
    that no path a client can send (non-Latin-1, CR/LF) breaks a header or a request line."""
    # WSGI hands the query's bytes over as Latin-1 characters.
    return _shared.target(request.path, str(request.META.get("QUERY_STRING", "")).encode("latin-1", "replace"))


def _loggable_path(request: HttpRequest) -> str:
    return quote(request.path, safe=_shared.PATH_SAFE, errors="surrogatepass")[:200]


def _raw_host(request: HttpRequest) -> str:
    """The Host the browser sent (not checked against ALLOWED_HOSTS: that is Django's own answer,
    and TokenGate only compares it with Origin in cookie mode)."""
    host = request.META.get("HTTP_HOST")
    if host:
        return str(host)
    name, port = str(request.META.get("SERVER_NAME", "")), str(request.META.get("SERVER_PORT", ""))
    secure = request.META.get("wsgi.url_scheme") == "https"
    return name if port in ("", "443" if secure else "80") else f"{name}:{port}"


def _verify_headers(request: HttpRequest, state: _State) -> dict[str, str]:
    """What ``/auth/verify`` is told (``HeadersTooLarge`` over 16 KiB, without asking)."""
    sent = [(name, str(value)) for name, value in request.headers.items() if value]
    address = _client_address(request, state)
    return _shared.verify_headers(sent, str(request.method), _target(request), _raw_host(request), address)


def _refusal(request: HttpRequest, error: TokenGateError, state: _State) -> HttpResponseBase:
    if not 400 <= error.status < 500:
        log.warning("TokenGate answered %s %s with %s: answering 503", request.method, _loggable_path(request), error.code)
    elif state.unauthorized is not None:
        return state.unauthorized(request, error)
    return _answer(_shared.refusal(error))


def _answer(answer: _shared.Answer) -> HttpResponse:
    """One of the shared answers (a refusal, 503) as a Django response."""
    status, headers, body = answer
    response = HttpResponse(body, status=status)
    for name, value in headers:
        response[name] = value
    return response


def _json_error(code: str, message: str, status: int) -> HttpResponse:
    answer = JsonResponse({"error": code, "message": message}, status=status, json_dumps_params={"separators": (",", ":")})
    answer["Cache-Control"] = "no-store"
    return answer


def _unavailable() -> HttpResponse:
    """Fail closed: 503 store_unavailable with Retry-After: 1, never the view."""
    return _answer(_shared.unavailable())


def _add_cookies(response: HttpResponseBase, lines: Iterable[str]) -> None:
    """Sets TokenGate's Set-Cookie lines on a Django response (Django writes one header per cookie
    from ``response.cookies``)."""
    for line in lines:
        response.cookies.load(line)


def _pass_on(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
    found = getattr(request, "tokengate", None)
    if isinstance(found, Identity):
        passed = _shared.rotation_headers(found)
        _add_cookies(response, [value for name, value in passed if name == "set-cookie"])
        for name, value in passed:
            if name != "set-cookie":
                response[name] = value
        if passed:
            # A live token must never be stored by a cache, whatever the view said.
            response["Cache-Control"] = "no-store"
            patch_vary_headers(response, ("Authorization", "Cookie"))
    return response


# -- for views -------------------------------------------------------------------------------------


def identity(request: HttpRequest) -> Identity | None:
    """``request.tokengate``, typed: the verified identity, or None (public views, preflights)."""
    found = getattr(request, "tokengate", None)
    return found if isinstance(found, Identity) else None


def client() -> Client:
    """The :class:`tokengate_client.Client` the middleware uses (``TOKENGATE_CLIENT``, or the one
    made from ``TOKENGATE_URL``, ``TOKENGATE_ADMIN_URL`` and ``TOKENGATE_ADMIN_KEY``)."""
    return _state().client


def start_session(request: HttpRequest, user: str, response: HttpResponseBase | None = None) -> Session:
    """Starts a session through the service API for ``user``, whom the app has just authenticated,
    with this request's User-Agent and client address. With ``response``, the session's cookies
    (cookie mode) are set on it and it is marked ``Cache-Control: no-store``. Hand
    ``session.to_dict()`` to the page's ``TokenGate.adopt(grant, user)``."""
    state = _state()
    agent = request.META.get("HTTP_USER_AGENT")
    session = state.client.start_session(user, user_agent=str(agent) if agent else None, ip=_client_address(request, state))
    if response is not None:
        _add_cookies(response, session.set_cookie)
        response["Cache-Control"] = "no-store"
    return session


def end_sessions(user: str) -> None:
    """Ends every session of ``user`` at once (password changed, account disabled)."""
    _state().client.end_sessions(user)


# -- /auth/* and /tokengate.js passed through (optional) -------------------------------------------


@public
@csrf_exempt  # TokenGate does its own CSRF check (cookie mode); Django's token is not sent there
def _proxy(request: HttpRequest, rest: str | None = None) -> HttpResponseBase:
    state = _state()
    if request.method not in _PROXIED_METHODS or (rest is None and request.method not in ("GET", "HEAD")):
        answer = _json_error("method_not_allowed", "method not allowed", 405)
        answer["Allow"] = "GET, HEAD" if rest is None else ", ".join(sorted(_PROXIED_METHODS))
        return answer
    # Only /auth/<something> below /auth/: no dot segments, no empty ones (a client's /auth/../metrics).
    if rest is not None and any(part in ("", ".", "..") or "\\" in part for part in rest.split("/")):
        return _json_error("not_found", "no such route", 404)
    headers: dict[str, str] = {}
    for name in _shared.PROXIED_REQUEST_HEADERS:
        key = "CONTENT_TYPE" if name == "Content-Type" else "HTTP_" + name.upper().replace("-", "_")
        value = request.META.get(key)
        if value:
            headers[name] = str(value)
    headers["Host"] = _raw_host(request)
    address = _client_address(request, state)
    if address:
        headers["X-Forwarded-For"] = address
    # Bounded: never more than the limit (+1 byte, to tell) is read, whatever the client declares.
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > _shared.MAX_PROXIED_BODY:
        return _json_error("payload_too_large", "the request body is larger than allowed", 413)
    body = request.read(_shared.MAX_PROXIED_BODY + 1)
    if len(body) > _shared.MAX_PROXIED_BODY:
        return _json_error("payload_too_large", "the request body is larger than allowed", 413)
    try:
        upstream = state.client.forward(str(request.method), _target(request), headers, body or None)
    except Unavailable as error:
        log.warning("TokenGate did not answer %s %s (%s): answering 503", request.method, _loggable_path(request), error.message)
        return _unavailable()
    except TokenGateError as error:
        return _refusal(request, error, state)
    answer = HttpResponse(upstream.body, status=upstream.status)
    if upstream.header("Content-Type") is None:
        del answer["Content-Type"]
    for name in _shared.PROXIED_RESPONSE_HEADERS:
        value = upstream.header(name)
        if value is not None:
            answer[name] = value
    _add_cookies(answer, upstream.header_list("Set-Cookie"))
    return answer


def auth_urls() -> list[URLPattern]:
    """URL patterns that serve ``/auth/*`` and ``/tokengate.js`` by passing them to TokenGate, for a
    project the browser reaches directly (``urlpatterns = [..., *auth_urls()]`` in the root
    URLconf): the page's ``tokengate.js`` can then refresh and end its session on the app's own
    origin. Leave them out when a balancer routes those paths to TokenGate itself."""
    return [
        re_path(r"^auth/(?P<rest>.+)\Z", _proxy, name="tokengate-auth"),
        path("tokengate.js", _proxy, name="tokengate-js"),
    ]
