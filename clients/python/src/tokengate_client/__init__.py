"""Python client for TokenGate.

``Client.verify`` asks TokenGate's ``/auth/verify`` whether a request's token (header or cookie) is
live; ``start_session``, ``sessions``, ``end_sessions`` and ``end_session`` use the service API
(``TOKENGATE_ADMIN_LISTEN``) for apps that authenticate their users themselves. Every failure is a
``TokenGateError`` carrying the contract's error code; TokenGate being unreachable is
``Unavailable``, which callers must treat as "deny" (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import urllib3

from . import _core, _guard
from ._core import (
    ERRORS,
    VERIFY_HEADERS,
    Call,
    ConfigurationError,
    CSRFFailed,
    Forwarded,
    HeadersTooLarge,
    Identity,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    MissingToken,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Session,
    SessionExpired,
    SessionInfo,
    StoreUnavailable,
    TokenExpired,
    TokenGateError,
    TokenRevoked,
    Unavailable,
    decode_user_header,
    encode_user_header,
)
from ._transport import KeepAliveTransport, TransportError

__all__ = [
    "Client",
    "Identity",
    "Session",
    "SessionInfo",
    "TokenGateError",
    "InvalidRequest",
    "PayloadTooLarge",
    "HeadersTooLarge",
    "InvalidCredentials",
    "MissingToken",
    "InvalidToken",
    "TokenExpired",
    "TokenRevoked",
    "SessionExpired",
    "CSRFFailed",
    "NotFound",
    "RateLimited",
    "StoreUnavailable",
    "Unavailable",
    "ConfigurationError",
    "Forwarded",
    "VERIFY_HEADERS",
    "decode_user_header",
    "encode_user_header",
    "__version__",
]

__version__ = "0.1.0"
_ERRORS = ERRORS  # the contract's codes and their classes (the name the package's tests use)

# The shared types are documented (and pickled) under the package's own name.
for _public in (TokenGateError, *ERRORS.values(), Unavailable, ConfigurationError, Identity, Forwarded, Session, SessionInfo):
    _public.__module__ = __name__
del _public


class Client(_guard.ClientSettings):
    """TokenGate's public API (``url``) and, with ``admin_url`` and ``admin_key``, its service API.

    ``verify`` (the call made for every guarded request) goes over a kept-alive connection of each
    thread's own (``_transport.KeepAliveTransport``); the other calls share one pooled, keep-alive
    ``urllib3.PoolManager``. The client is thread-safe.
    ``timeout`` (seconds) bounds connecting and each read.
    """

    def __init__(
        self,
        url: str,
        admin_url: str | None = None,
        admin_key: str | None = None,
        timeout: float = _guard.DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(url, admin_url=admin_url, admin_key=admin_key, timeout=timeout)
        # No automatic retries: a request that may have reached TokenGate is never sent twice.
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=32, retries=False, timeout=urllib3.Timeout(connect=self.timeout, read=self.timeout)
        )
        # verify, the per-request call: a kept-alive connection of each thread's own (_transport.py).
        self._verifier = KeepAliveTransport(self.url, self.timeout)

    # -- the public API ----------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str]) -> Identity:
        """Whether the request with ``headers`` carries a live token (``GET /auth/verify``).

        ``headers`` is the incoming request's headers (any case); the ones TokenGate reads are
        passed on. Raises the contract's error (e.g. ``MissingToken``, ``TokenRevoked``,
        ``CSRFFailed``), ``StoreUnavailable`` or ``Unavailable``."""
        call = _core.verify_call(self.url, headers)
        try:
            status, pairs, body = self._verifier.get("/auth/verify", call.headers)
        except TransportError as error:
            raise Unavailable(f"TokenGate at {self.url} did not answer: {error.reason}") from None
        return _core.verify_answer(status, pairs, body)

    def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None) -> Forwarded:
        """Passes a request on to TokenGate's public listener as it is (``target``: an origin-form
        path and query, e.g. ``/auth/refresh``) and returns the answer, whatever its status; for
        serving ``/auth/*`` from the app's own origin. Raises ``Unavailable`` when TokenGate does
        not answer, ``InvalidRequest`` for a header HTTP cannot carry."""
        call = _core.forward_call(self.url, method, target, headers, body)
        try:
            response = self._send(call)
        except urllib3.exceptions.HTTPError as error:
            raise Unavailable(f"TokenGate at {self.url} did not answer: {type(error).__name__}") from None
        return _core.forward_answer(response.status, response.headers.items(), response.data)

    # -- the service API ---------------------------------------------------------------------------

    def start_session(self, user: str, user_agent: str | None = None, ip: str | None = None) -> Session:
        """Starts a session for ``user``, whom the app has authenticated (``POST /admin/v1/sessions``).
        ``user`` is the app's own id, kept exactly as given (case and Unicode untouched): 1-255
        bytes of UTF-8 without control characters, else ``InvalidRequest``. ``user_agent`` and
        ``ip`` are the browser's, shown in the session list."""
        call = _core.start_session_call(self.admin_url, self._admin_key, user, user_agent, ip)
        return _core.session_from(self._admin(call))

    def sessions(self, user: str) -> list[SessionInfo]:
        """The user's live sessions (``GET /admin/v1/users/{user}/sessions``)."""
        return _core.sessions_from(self._admin(_core.sessions_call(self.admin_url, self._admin_key, user)))

    def end_sessions(self, user: str) -> None:
        """Ends every session of the user at once: password changed, account disabled."""
        self._admin(_core.end_sessions_call(self.admin_url, self._admin_key, user))

    def end_session(self, user: str, session_id: str) -> None:
        """Ends one session of the user; ``NotFound`` when it is not one of theirs. An empty or dot
        id is refused here: a URL would turn it into the path that ends every session."""
        self._admin(_core.end_session_call(self.admin_url, self._admin_key, user, session_id))

    # -- I/O: the only urllib3 calls ---------------------------------------------------------------

    def _send(self, call: Call) -> urllib3.BaseHTTPResponse:
        try:
            return self._pool.request(call.method, call.url, body=call.body, headers=call.headers, redirect=False)
        except urllib3.exceptions.HTTPError:
            raise
        except (ValueError, UnicodeError):
            # A header value HTTP cannot carry that the core's check let through: the request's own fault.
            raise InvalidRequest("invalid_request", "the request's headers cannot be passed on", 400) from None

    def _admin(self, call: Call) -> Any:
        try:
            response = self._send(call)
        except urllib3.exceptions.HTTPError as error:
            raise Unavailable(f"TokenGate's service API at {self.admin_url} did not answer: {type(error).__name__}") from None
        return _core.admin_answer(response.status, response.headers.items(), response.data)
