"""An in-process stand-in for TokenGate, for an app's own unit tests (no server, no Redis).

    from tokengate_client.testing import FakeTokenGate

    fake = FakeTokenGate()
    fake.install(app)                      # after TokenGate(app) / init_app(app), e.g. in a fixture
    web = app.test_client()
    assert web.get("/api/notes", headers=fake.auth_headers("carol")).status_code == 200
    assert web.get("/api/notes").status_code == 401           # missing_token, as TokenGate says it
    fake.end_sessions("carol")                                 # revoked: 401 token_revoked
    fake.unavailable = True                                    # TokenGate down: 503, never the view

``FakeTokenGate`` is a :class:`tokengate_client.Client`: it can also be given as ``client=`` to the Flask
extension, as ``TOKENGATE_CLIENT`` in a Django project's settings (``override_settings``, or
pytest-django's ``settings`` fixture), or used wherever a Client is. It answers as TokenGate does for the same calls (the
package's own tests run the same scenarios against the real service and this fake): the same
exceptions with the same codes, statuses and ``WWW-Authenticate`` headers, the same user-id rules
(README "User ids"), and ``Unavailable`` for every call while ``unavailable`` is set. Its tokens are
opaque strings that only the fake accepts; they do not expire unless :meth:`expire` is called.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from . import (
    Client,
    Forwarded,
    Identity,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    NotFound,
    Session,
    SessionInfo,
    TokenExpired,
    TokenRevoked,
    Unavailable,
)

if TYPE_CHECKING:
    from .aio import AsyncClient

__all__ = ["FakeTokenGate"]

_REALM = 'Bearer realm="tokengate"'
_MAX_USER_BYTES = 255


@dataclass
class _FakeSession:
    user: str
    session_id: str
    created: float
    user_agent: str | None
    ip: str | None
    tokens: set[str] = field(default_factory=set)


class FakeTokenGate(Client):
    """TokenGate in memory: :meth:`mint` or :meth:`start_session` make identities, :meth:`revoke`,
    :meth:`end_session` and :meth:`end_sessions` end them, ``unavailable = True`` (or
    ``with fake.down():``) makes every call fail as an unreachable TokenGate does. Thread-safe."""

    def __init__(self, token_ttl: int = 30) -> None:
        super().__init__("http://tokengate.invalid", admin_url="http://tokengate.invalid", admin_key="tgsk_fake")
        self.token_ttl = token_ttl
        self.unavailable = False
        self._lock = threading.Lock()
        self._sessions: dict[str, _FakeSession] = {}
        self._tokens: dict[str, str] = {}  # token -> session id, live tokens only
        self._expired: set[str] = set()
        self._aio: AsyncClient | None = None

    def __repr__(self) -> str:
        return f"FakeTokenGate(sessions={len(self._sessions)}, unavailable={self.unavailable})"

    # -- set-up for tests --------------------------------------------------------------------------

    def install(self, app: Any) -> None:
        """Makes ``app``'s TokenGate ask this fake: a Flask app's extension (already
        ``init_app``-ed), or a Starlette/FastAPI app's ``TokenGateMiddleware`` and
        ``require_identity`` (through ``app.state.tokengate_client``, set to :attr:`aio`)."""
        extensions = getattr(app, "extensions", None)
        if isinstance(extensions, dict):
            from .flask import TokenGateState

            state = extensions.get("tokengate")
            if not isinstance(state, TokenGateState):
                raise RuntimeError("install the TokenGate extension on the app first: TokenGate(app) or init_app(app)")
            extensions["tokengate"] = replace(state, client=self)
            return
        app_state = getattr(app, "state", None)
        if app_state is None:
            raise RuntimeError("not a Flask app (with the TokenGate extension) nor a Starlette/FastAPI app")
        app_state.tokengate_client = self.aio

    @property
    def aio(self) -> AsyncClient:
        """This fake as a :class:`tokengate_client.aio.AsyncClient` (same sessions, same
        answers, nothing sent anywhere): ``TokenGateMiddleware(app, client=fake.aio)``. Needs
        httpx installed (``tokengate-client[asgi]``), as the ASGI side does anyway."""
        if self._aio is None:
            from ._fake_aio import AsyncFakeTokenGate

            self._aio = AsyncFakeTokenGate(self)
        return self._aio

    def mint(self, user: str) -> Session:
        """A new session of ``user`` (as the service API starts one); its token verifies."""
        return self.start_session(user)

    def auth_headers(self, user_or_session: str | Session) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for a session, or for a new session of a user."""
        session = user_or_session if isinstance(user_or_session, Session) else self.mint(user_or_session)
        return {"Authorization": f"Bearer {session.access_token}"}

    def revoke(self, session: Session | str) -> None:
        """Ends the session of a ``Session`` or a token, as a logout does: its tokens fail with
        ``token_revoked``."""
        token = session.access_token if isinstance(session, Session) else session
        with self._lock:
            sid = self._tokens.get(token)
            if sid is not None:
                self._drop(sid)

    def expire(self, session: Session | str) -> None:
        """Makes a session's current token fail with ``token_expired`` (its 30 s are up)."""
        token = session.access_token if isinstance(session, Session) else session
        with self._lock:
            if self._tokens.pop(token, None) is not None:
                self._expired.add(token)

    @contextmanager
    def down(self) -> Iterator[None]:
        """TokenGate unreachable for the duration of the block."""
        self.unavailable = True
        try:
            yield
        finally:
            self.unavailable = False

    # -- what a Client does ------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str]) -> Identity:
        self._check_up()
        lowered = {name.lower(): value for name, value in headers.items()}
        authorization = lowered.get("authorization", "")
        if not authorization.startswith("Bearer "):
            raise MissingToken("missing_token", "a bearer token is required", 401, {"www-authenticate": _REALM})
        token = authorization[len("Bearer "):]
        invalid = {"www-authenticate": _REALM + ', error="invalid_token"'}
        with self._lock:
            if token in self._expired:
                raise TokenExpired("token_expired", "the token has expired", 401, invalid)
            if not token.startswith("tgfake."):
                raise InvalidToken("invalid_token", "the token is invalid: not a token of the fake", 401, invalid)
            sid = self._tokens.get(token)
            if sid is None:
                raise TokenRevoked("token_revoked", "the token is no longer valid (logged out, replaced or idle)", 401, invalid)
            session = self._sessions[sid]
            return Identity(user=session.user, session_id=session.session_id)

    def start_session(self, user: str, user_agent: str | None = None, ip: str | None = None) -> Session:
        self._check_up()
        _check_user(user)
        sid = secrets.token_urlsafe(16)
        token = "tgfake." + secrets.token_urlsafe(24)
        with self._lock:
            agent = user_agent[:256] if user_agent else None
            self._sessions[sid] = _FakeSession(user, sid, time.time(), agent, ip or None, {token})
            self._tokens[token] = sid
        return Session(access_token=token, token_type="Bearer", expires_in=self.token_ttl, session_id=sid)

    def sessions(self, user: str) -> list[SessionInfo]:
        self._check_up()
        _check_user(user)
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        with self._lock:
            return [
                SessionInfo(s.session_id, _rfc3339(s.created), stamp, self.token_ttl, s.user_agent, s.ip)
                for s in self._sessions.values()
                if s.user == user
            ]

    def end_sessions(self, user: str) -> None:
        self._check_up()
        _check_user(user)
        with self._lock:
            for sid in [s.session_id for s in self._sessions.values() if s.user == user]:
                self._drop(sid)

    def end_session(self, user: str, session_id: str) -> None:
        self._check_up()
        _check_user(user)
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None or session.user != user:
                raise NotFound("not_found", "no such session", 404)
            self._drop(session_id)

    def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None) -> Forwarded:
        """The pass-through: ``POST /auth/logout`` ends the token's session (204); anything else is
        answered 404 ``not_found`` (the fake serves no browser client)."""
        self._check_up()
        if method == "POST" and target.split("?", 1)[0] == "/auth/logout":
            self.verify(headers)  # the same refusals as TokenGate's logout
            authorization = {k.lower(): v for k, v in headers.items()}["authorization"]
            self.revoke(authorization[len("Bearer "):])
            return Forwarded(204, (("Cache-Control", "no-store"),), b"")
        body_bytes = b'{"error":"not_found","message":"the fake TokenGate serves only /auth/logout"}'
        return Forwarded(404, (("Content-Type", "application/json"), ("Cache-Control", "no-store")), body_bytes)

    # -- inside ------------------------------------------------------------------------------------

    def _check_up(self) -> None:
        if self.unavailable:
            raise Unavailable("TokenGate at http://tokengate.invalid did not answer: the fake is unavailable")

    def _drop(self, sid: str) -> None:
        session = self._sessions.pop(sid, None)
        if session is not None:
            for token in session.tokens:
                self._tokens.pop(token, None)


def _check_user(user: Any) -> None:
    """The service API's rule for ids (README "User ids")."""
    if not isinstance(user, str):
        raise InvalidRequest("invalid_request", "the body needs a string field user", 400)
    encoded = user.encode("utf-8", "surrogatepass")
    controls = any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in user)
    if not 1 <= len(encoded) <= _MAX_USER_BYTES or controls or any(0xD800 <= ord(c) <= 0xDFFF for c in user):
        raise InvalidRequest("invalid_request", "user must be 1-255 bytes of UTF-8 without control characters", 400)


def _rfc3339(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
