"""Guard every route of an ASGI app (Starlette, FastAPI) with TokenGate: deny by default.

    from fastapi import Depends, FastAPI
    from tokengate_client import Identity
    from tokengate_client.asgi import TokenGateMiddleware, public, require_identity

    app = FastAPI()
    app.add_middleware(TokenGateMiddleware, public_paths=["/docs", "/openapi.json"])   # TOKENGATE_URL etc. from the environment

    @app.get("/api/notes")
    async def notes(identity: Identity = Depends(require_identity)):
        return {"user": identity.user}

    @app.get("/healthz")
    @public
    async def health():
        return "ok"

:class:`TokenGateMiddleware` is a pure ASGI middleware: every HTTP request and WebSocket
handshake is checked with TokenGate's ``/auth/verify`` (:class:`tokengate_client.aio.AsyncClient`)
before the app sees it, except routes marked :func:`public`, paths under ``public_paths`` and CORS
preflights. The identity is ``request.state.tokengate`` (``scope["state"]["tokengate"]``); a
refusal is TokenGate's own JSON error; TokenGate or its Redis unavailable is a 503, never the
route (fail closed). :func:`require_identity` is the FastAPI dependency that yields the identity,
with or without the middleware.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Iterable, Mapping, MutableMapping
from typing import Any, Callable, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.routing import Match

from . import _guard
from ._core import ConfigurationError, Identity, StoreUnavailable, TokenGateError, Unavailable
from ._guard import Settings
from .aio import AsyncClient

__all__ = ["Refused", "TokenGateMiddleware", "Guard", "public", "refused_handler", "require_identity"]

log = logging.getLogger("tokengate_client.asgi")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Marked = TypeVar("Marked")

_STATE_KEY = "tokengate"
_GUARD_KEY = "tokengate.guard"  # in the scope: the middleware's Guard, for require_identity
_STRIPPED = frozenset((b"x-auth-user", b"x-auth-session", b"x-tokengate-proxy-secret"))
_REPLACED = frozenset((b"cache-control", b"x-next-token"))
_MARK = "_tokengate_public"


def public(target: Marked) -> Marked:
    """Marks a route as reachable without a token: an endpoint (function or ``HTTPEndpoint``
    class; above or below ``@app.get``), or a Starlette ``Route``/``Mount`` object (a whole mounted
    app or static folder). There ``request.state.tokengate`` is None and ``X-Auth-User`` /
    ``X-Auth-Session`` are removed from the request, whoever sent them. For a whole ``APIRouter``,
    give its prefix in ``public_paths``."""
    setattr(target, _MARK, True)
    return target


def _marked(thing: object) -> bool:
    return thing is not None and getattr(thing, _MARK, False) is True


class Guard:
    """What the middleware and :func:`require_identity` decide for a request, given its ASGI
    scope: public or not, and then the :class:`tokengate_client.Identity` or the answer to give
    instead. Settings as for :class:`TokenGateMiddleware`."""

    def __init__(
        self,
        *,
        url: str | None = None,
        admin_url: str | None = None,
        admin_key: str | None = None,
        client: AsyncClient | None = None,
        trusted_proxies: str | Iterable[str] | None = None,
        proxy_secret: str | None = None,
        public_paths: Iterable[str] = (),
        timeout: float | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = Settings.read(
            os.environ if environ is None else environ,
            url=url, admin_url=admin_url, admin_key=admin_key, timeout=timeout,
            trusted_proxies=trusted_proxies, proxy_secret=proxy_secret,
        )
        self.client = client if client is not None else (AsyncClient.from_settings(self.settings) if self.settings.url else None)
        self.public_paths = tuple(path.rstrip("/") or "/" for path in public_paths)
        for path in self.public_paths:
            if not path.startswith("/"):
                raise ConfigurationError(f"public_paths: {path!r} is not a path (it must start with /)")

    def client_for(self, scope: Scope, app: Any = None) -> AsyncClient:
        """The client that answers for this request's app (``scope["app"]``, else ``app``):
        ``app.state.tokengate_client`` when set (what ``FakeTokenGate.install(app)`` sets), else
        the guard's own."""
        installed = getattr(getattr(scope.get("app") or app, "state", None), "tokengate_client", None)
        if isinstance(installed, AsyncClient):
            return installed
        if self.client is None:
            raise ConfigurationError("TokenGate needs TOKENGATE_URL (the TokenGate service's URL), or url=... / client=...")
        return self.client

    # -- which requests are public -------------------------------------------------------------------

    def is_public(self, scope: Scope, router: Any = None) -> bool:
        """Whether the request goes to a :func:`public` route or under ``public_paths``. A path
        with a dot or empty segment is never public (it names no public route)."""
        path = scope.get("path") or "/"
        if any(segment in (".", "..") or "\\" in segment for segment in path.split("/")):
            return False
        for prefix in self.public_paths:
            if path == prefix or prefix == "/" or path.startswith(prefix + "/"):
                return True
        routes = getattr(getattr(scope.get("app"), "router", None) or router, "routes", None)
        return routes is not None and _public_route(routes, scope, 0)

    # -- the check -----------------------------------------------------------------------------------

    async def identify(
        self, scope: Scope, headers: Iterable[tuple[str, str]], vouched: Identity | None, app: Any = None
    ) -> Identity:
        """The request's identity (the proxy's, when vouched for, else TokenGate's verify answer);
        raises the contract's error, ``Unavailable``/``StoreUnavailable`` when it cannot be known."""
        if vouched is not None:
            return vouched
        method = "GET" if scope["type"] == "websocket" else str(scope.get("method", "GET"))
        lowered = {name.lower(): value for name, value in headers}
        target = _guard.target(scope.get("path") or "/", scope.get("query_string") or b"")
        peer = _peer(scope)
        address = _guard.client_address(peer, lowered.get("x-forwarded-for"), self.settings.trusted_proxies)
        sent = _guard.verify_headers(lowered.items(), method, target, lowered.get("host") or _server_host(scope), address)
        return await self.client_for(scope, app).verify(sent)


class TokenGateMiddleware:
    """The ASGI middleware: every route guarded unless :func:`public` (or under
    ``public_paths``). ``app.add_middleware(TokenGateMiddleware, ...)`` (Starlette, FastAPI) or
    ``TokenGateMiddleware(app, ...)`` around any ASGI app. Keywords, each falling back to its
    environment variable (the names the Flask extension reads from ``app.config``):

    - ``url`` / ``TOKENGATE_URL``: TokenGate's public URL (needed unless ``client`` is given or a
      ``FakeTokenGate`` is installed);
    - ``admin_url`` / ``TOKENGATE_ADMIN_URL``, ``admin_key`` / ``TOKENGATE_ADMIN_KEY``: the
      service API (``guard.client.start_session``);
    - ``client``: a ready :class:`tokengate_client.aio.AsyncClient`;
    - ``trusted_proxies`` / ``TOKENGATE_TRUSTED_PROXIES``, ``proxy_secret`` /
      ``TOKENGATE_PROXY_SECRET``: an nginx ``auth_request`` in front whose ``X-Auth-User`` /
      ``X-Auth-Session`` are believed (only from those addresses, and only with the secret when it
      is set); from anywhere else they are removed from the request;
    - ``public_paths``: paths whose requests pass without a token, each with everything below
      it (``"/docs"`` covers ``/docs`` and ``/docs/...``, not ``/docsx``);
    - ``timeout`` / ``TOKENGATE_TIMEOUT``: seconds per call to TokenGate (default 2).

    The peer address is ``scope["client"]``: behind a proxy, run uvicorn with
    ``--no-proxy-headers`` (or ``--forwarded-allow-ips`` naming only that proxy) so that it is
    the proxy's own.
    """

    def __init__(self, app: ASGIApp, **settings: Any) -> None:
        self.app = app
        self.guard = Guard(**settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send) -> None:
        guard = self.guard
        # Identity headers and the proxy's secret leave the request here, whoever sent them.
        kept: list[tuple[bytes, bytes]] = []
        stripped: dict[bytes, bytes] = {}
        for name, value in scope.get("headers") or ():
            lowered = name.lower()
            if lowered in _STRIPPED:
                stripped.setdefault(lowered, value)
            else:
                kept.append((name, value))
        text = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in kept]
        lowered_text = {name.lower(): value for name, value in text}
        scope = dict(scope)
        scope["headers"] = kept
        scope["state"] = state = dict(scope.get("state") or {})
        scope[_GUARD_KEY] = guard
        state[_STATE_KEY] = None
        method = scope.get("method", "GET")
        preflight = _guard.is_preflight(method, lowered_text.get("origin"), lowered_text.get("access-control-request-method"))
        if preflight or guard.is_public(scope, getattr(self.app, "router", None)):
            await self.app(scope, receive, send)
            return
        vouched = None
        secret = stripped.get(b"x-tokengate-proxy-secret")
        sent = secret.decode("latin-1") if secret is not None else None
        if _guard.vouched(_peer(scope), sent, guard.settings.trusted_proxies, guard.settings.proxy_secret):
            user, sid = stripped.get(b"x-auth-user"), stripped.get(b"x-auth-session")
            vouched = _guard.vouched_identity(
                user.decode("latin-1") if user else None, sid.decode("latin-1") if sid else None, lowered_text.get("x-next-token")
            )
            if vouched is not None:  # a believed proxy's headers stay, as it sent them
                scope["headers"] = [*kept, (b"x-auth-user", user or b""), (b"x-auth-session", sid or b"")]
        try:
            identity = await guard.identify(scope, text, vouched, self.app)
        except ConfigurationError as error:
            log.error("TokenGate is not configured (%s): answering 503", error)
            await _answer(scope, send, _guard.unavailable())
            return
        except (Unavailable, StoreUnavailable) as error:
            log.warning("TokenGate could not check %s %s (%s): answering 503", method, _loggable(scope), _code(error))
            await _answer(scope, send, _guard.unavailable())
            return
        except TokenGateError as error:
            if not 400 <= error.status < 500:
                log.warning("TokenGate answered %s %s with %s: answering 503", method, _loggable(scope), error.code)
            await _answer(scope, send, _guard.refusal(error))
            return
        state[_STATE_KEY] = identity
        extra = _guard.rotation_headers(identity)
        if not extra:
            await self.app(scope, receive, send)
            return
        encoded = [(name.encode("latin-1"), value.encode("latin-1", "replace")) for name, value in extra]

        async def send_with_rotation(message: Message) -> None:
            if message.get("type") == "http.response.start":
                message = dict(message)
                message["headers"] = _with_rotation(message.get("headers") or [], encoded)
            await send(message)

        await self.app(scope, receive, send_with_rotation)


def _with_rotation(headers: Iterable[tuple[bytes, bytes]], extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The view's headers with the rotation headers added: a live token is never cacheable
    (``Cache-Control: no-store`` replaces the view's, ``Vary`` gains ``Authorization, Cookie``)."""
    out: list[tuple[bytes, bytes]] = []
    vary: list[bytes] = []
    for name, value in headers:
        lowered = name.lower()
        if lowered in _REPLACED:
            continue
        if lowered == b"vary":
            vary.extend(part.strip() for part in value.split(b",") if part.strip())
            continue
        out.append((name, value))
    for wanted in (b"Authorization", b"Cookie"):
        if wanted.lower() not in (part.lower() for part in vary) and b"*" not in vary:
            vary.append(wanted)
    out.extend(extra)
    out.append((b"cache-control", b"no-store"))
    out.append((b"vary", b", ".join(vary)))
    return out


async def _answer(scope: Scope, send: Send, answer: _guard.Answer) -> None:
    status, headers, body = answer
    if scope["type"] == "websocket":
        # Before the handshake is accepted: the server refuses it (HTTP 403). 1013: try again later.
        await send({"type": "websocket.close", "code": 1013 if status == 503 else 1008, "reason": ""})
        return
    raw = [(name.encode("latin-1"), value.encode("latin-1", "replace")) for name, value in headers]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": b"" if scope.get("method") == "HEAD" else body})


def _public_route(routes: Iterable[Any], scope: Scope, depth: int) -> bool:
    """Whether the route the router would take for ``scope`` is marked :func:`public`: a route,
    its endpoint, or a mount (then what the mount routes to, recursively)."""
    for route in routes:
        try:
            match, child = route.matches(scope)
        except Exception:  # a route that cannot judge this request routes nothing public
            continue
        if match is not Match.FULL:
            continue
        if _marked(route) or _marked(getattr(route, "endpoint", None)) or _marked(getattr(route, "app", None)):
            return True
        inner = getattr(route, "routes", None)
        if inner and depth < 8:
            return _public_route(inner, {**scope, **child}, depth + 1)
        return False
    return False


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return ""
    host, port = server[0], server[1]
    return str(host) if port is None else f"{host}:{port}"


def _loggable(scope: Scope) -> str:
    return _guard.target(scope.get("path") or "/", b"")[:200]


def _code(error: Exception) -> str:
    return error.code if isinstance(error, TokenGateError) else type(error).__name__


# -- the FastAPI dependency ----------------------------------------------------------------------------


class Refused(HTTPException):
    """What :func:`require_identity` raises when it checked the request itself (no middleware)
    and TokenGate refused it: FastAPI answers ``{"detail": message}`` with the status and
    TokenGate's headers; ``refused_handler`` answers the contract's ``{"error", "message"}``
    instead. ``.error`` is the :class:`tokengate_client.TokenGateError`."""

    def __init__(self, error: TokenGateError) -> None:
        status, headers, _ = _guard.refusal(error) if 400 <= error.status < 500 else _guard.unavailable()
        kept = {name: value for name, value in headers if name != "content-type"}
        super().__init__(status, error.message if status != 503 else "authentication is unavailable; try again", kept)
        self.error = error


async def refused_handler(request: Request, exc: Exception) -> Response:
    """``app.add_exception_handler(Refused, refused_handler)``: :class:`Refused` answered with
    the contract's JSON body, as the middleware answers."""
    if not isinstance(exc, Refused):  # pragma: no cover - registered for Refused only
        raise exc
    error = exc.error
    status, headers, body = _guard.refusal(error) if 400 <= error.status < 500 else _guard.unavailable()
    return Response(body, status_code=status, headers=dict(headers), media_type="application/json")


async def require_identity(request: HTTPConnection, response: Response) -> Identity:
    """The FastAPI dependency: ``identity: Identity = Depends(require_identity)``.

    Behind :class:`TokenGateMiddleware` it is the identity the middleware verified (on a public
    route, the route's request is verified here, so a public route that asks for an identity
    gets one or a refusal). Without the middleware it verifies the request itself, with the
    client in ``app.state.tokengate_client`` (``FakeTokenGate.install(app)``) or one from the
    environment (``TOKENGATE_URL``, ...), made once per app; a refusal raises :class:`Refused`,
    TokenGate unavailable a 503 :class:`Refused`; the rotation headers go onto the answer."""
    identity = request.scope.get("state", {}).get(_STATE_KEY)
    if isinstance(identity, Identity):
        return identity
    guard = request.scope.get(_GUARD_KEY)
    if not isinstance(guard, Guard):
        guard = _app_guard(request)
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.scope.get("headers") or ()
               if name.lower() not in _STRIPPED]
    try:
        identity = await guard.identify(request.scope, headers, None)
    except (ConfigurationError, Unavailable, StoreUnavailable) as error:
        log.warning("TokenGate could not check %s (%s): answering 503", _loggable(request.scope), _code(error))
        raise Refused(Unavailable("TokenGate could not be asked")) from None
    except TokenGateError as error:
        raise Refused(error) from None
    request.state.tokengate = identity
    for name, value in _guard.rotation_headers(identity):
        response.headers.append(name, value)
    if identity.next_token or identity.set_cookie:
        response.headers["cache-control"] = "no-store"
        response.headers["vary"] = "Authorization, Cookie"
    return identity


def _app_guard(request: HTTPConnection) -> Guard:
    state = request.app.state
    guard = getattr(state, "tokengate_guard", None)
    if not isinstance(guard, Guard):
        guard = Guard()
        state.tokengate_guard = guard
    return guard

