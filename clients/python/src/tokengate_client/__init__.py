"""Python client for TokenGate.

``Client.verify`` asks TokenGate's ``/auth/verify`` whether a request's token (header or cookie) is
live; ``start_session``, ``sessions``, ``end_sessions`` and ``end_session`` use the service API
(``TOKENGATE_ADMIN_LISTEN``) for apps that authenticate their users themselves. Every failure is a
``TokenGateError`` carrying the contract's error code; TokenGate being unreachable is
``Unavailable``, which callers must treat as "deny" (fail closed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit

import urllib3

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


class TokenGateError(Exception):
    """An answer of TokenGate's that is not a success: the contract's ``code``, its ``message``
    and the HTTP ``status``. Never carries a token or a key."""

    def __init__(self, code: str, message: str, status: int, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.headers: Mapping[str, str] = dict(headers or {})

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable (multiprocessing, Celery, caches) whatever a subclass's __init__ takes.
        return (_restore_error, (type(self), self.args, dict(self.__dict__)))


def _restore_error(cls: type[TokenGateError], args: tuple[Any, ...], state: dict[str, Any]) -> TokenGateError:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class InvalidRequest(TokenGateError):
    """400 ``invalid_request``."""


class PayloadTooLarge(TokenGateError):
    """413 ``payload_too_large``."""


class HeadersTooLarge(TokenGateError):
    """431 ``headers_too_large``: the request's header fields (cookies, mostly) are over 16 KiB."""


class InvalidCredentials(TokenGateError):
    """401 ``invalid_credentials``."""


class MissingToken(TokenGateError):
    """401 ``missing_token``: no token (or no service key) was sent."""


class InvalidToken(TokenGateError):
    """401 ``invalid_token``: a bad token, or a wrong service key."""


class TokenExpired(TokenGateError):
    """401 ``token_expired``."""


class TokenRevoked(TokenGateError):
    """401 ``token_revoked``: logged out, closed, idle or replaced."""


class SessionExpired(TokenGateError):
    """401 ``session_expired``: the session reached its maximum age."""


class CSRFFailed(TokenGateError):
    """403 ``csrf_failed`` (cookie mode)."""


class NotFound(TokenGateError):
    """404 ``not_found``."""


class RateLimited(TokenGateError):
    """429 ``rate_limited``; ``retry_after`` is in seconds."""

    @property
    def retry_after(self) -> int | None:
        value = self.headers.get("retry-after")
        return int(value) if value and value.isdigit() else None


class StoreUnavailable(TokenGateError):
    """503 ``store_unavailable``: TokenGate could not ask Redis. Deny the request."""


class Unavailable(TokenGateError):
    """TokenGate itself could not be reached or gave no answer of its own (refused, timed out,
    reset, a proxy's error page). Deny the request: fail closed."""

    def __init__(self, message: str) -> None:
        super().__init__("unavailable", message, 503)


class ConfigurationError(ValueError):
    """A call needs a setting that was not given (the service API's ``admin_url``/``admin_key``,
    or TokenGate's URL). A programming error, not an answer of TokenGate's."""


# The contract's error codes and their classes; a code not listed maps to TokenGateError itself.
_ERRORS: dict[str, type[TokenGateError]] = {
    "invalid_request": InvalidRequest,
    "payload_too_large": PayloadTooLarge,
    "headers_too_large": HeadersTooLarge,
    "invalid_credentials": InvalidCredentials,
    "missing_token": MissingToken,
    "invalid_token": InvalidToken,
    "token_expired": TokenExpired,
    "token_revoked": TokenRevoked,
    "session_expired": SessionExpired,
    "csrf_failed": CSRFFailed,
    "not_found": NotFound,
    "rate_limited": RateLimited,
    "store_unavailable": StoreUnavailable,
}

# Request headers /auth/verify reads: the token (header or cookie), the guarded request's method and
# URI, what the cookie-mode CSRF check compares, and the client's address.
VERIFY_HEADERS = (
    "Authorization",
    "Cookie",
    "Origin",
    "Sec-Fetch-Site",
    "X-CSRF-Token",
    "X-Original-Method",
    "X-Original-URI",
    "X-Forwarded-For",
    "Host",
)
_VERIFY_NAMES = {name.lower(): name for name in VERIFY_HEADERS}


# X-Auth-User: a printable-ASCII id as it is; any other id as RFC 8187's UTF-8''<percent-encoded bytes>.
_USER_MARKER = "UTF-8''"
_ATTR_CHARS = frozenset(b"!#$&+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_ENCODED = re.compile(r"(?:[!#$&+\-.^_`|~0-9A-Za-z]|%[0-9A-Fa-f]{2})*")


def encode_user_header(user: str) -> str:
    """The ``X-Auth-User`` value TokenGate writes for ``user``: the id itself when it is printable
    ASCII that neither starts nor ends with a space nor starts with ``UTF-8''`` (in any case),
    otherwise ``UTF-8''`` and the id's UTF-8 bytes percent-encoded (RFC 8187)."""
    plain = (
        user.isascii() and user.isprintable() and not user.startswith(" ") and not user.endswith(" ")
        and not user.lower().startswith(_USER_MARKER.lower())
    )
    if plain:
        return user
    return _USER_MARKER + "".join(chr(b) if b in _ATTR_CHARS else f"%{b:02X}" for b in user.encode())


def _segment(user: str) -> str:
    """The user id as one percent-encoded path segment. The ids ``.`` and ``..`` are sent as
    ``%2E`` and ``%2E%2E``: as they are, a URL would drop them as dot segments (and the service
    refuses a dot segment)."""
    encoded = quote(user, safe="")
    return encoded.replace(".", "%2E") if encoded in (".", "..") else encoded


def decode_user_header(value: str) -> str:
    """The user id an ``X-Auth-User`` value carries (``encode_user_header`` reversed). Raises
    ``ValueError`` for an encoded value that is not percent-encoded UTF-8."""
    if not value.startswith(_USER_MARKER):
        return value
    encoded = value[len(_USER_MARKER):]
    if not _ENCODED.fullmatch(encoded):
        raise ValueError("X-Auth-User is not RFC 8187-encoded")
    return unquote_to_bytes(encoded).decode("utf-8")


@dataclass(frozen=True)
class Identity:
    """A verified request: its user (the id exactly as the session was started with) and session,
    and what TokenGate asked to pass on to the browser (the successor token under per-request
    rotation, cookies in cookie mode)."""

    user: str
    session_id: str
    next_token: str | None = field(default=None, repr=False)  # a live token: kept out of logs
    set_cookie: tuple[str, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class Forwarded:
    """TokenGate's answer to a request passed through (:meth:`Client.forward`): status, headers
    (names as sent, repeated ones kept) and body."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes = field(repr=False)

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (any case), or None."""
        lowered = name.lower()
        return next((value for key, value in self.headers if key.lower() == lowered), None)

    def header_list(self, name: str) -> list[str]:
        """Every value of the header ``name`` (any case)."""
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]


@dataclass(frozen=True)
class Session(Mapping[str, Any]):
    """A started session: the body of ``/auth/login`` (``access_token``, ``token_type``,
    ``expires_in``, ``session_id``), readable as attributes or as a mapping, and in cookie mode
    the ``Set-Cookie`` values to pass on to the browser."""

    access_token: str
    token_type: str
    expires_in: int
    session_id: str
    set_cookie: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The login answer's JSON shape (what the browser's ``TokenGate.adopt`` takes)."""
        return {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
            "session_id": self.session_id,
        }

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return 4

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"Session(session_id={self.session_id!r}, expires_in={self.expires_in})"


@dataclass(frozen=True)
class SessionInfo:
    """One live session of a user, as ``GET /auth/sessions`` lists it: ``created_at`` and
    ``last_seen`` are RFC 3339 UTC strings, ``expires_in`` seconds, ``user_agent`` and ``ip`` what
    the session was started with (None when not given); ``current`` is always False on the service
    API."""

    session_id: str
    created_at: str
    last_seen: str
    expires_in: int
    user_agent: str | None
    ip: str | None
    current: bool = False


class Client:
    """TokenGate's public API (``url``) and, with ``admin_url`` and ``admin_key``, its service API.

    ``verify`` (the hot call) goes over one kept-alive connection per thread
    (``tokengate_client._transport``); every other call over one pooled ``urllib3.PoolManager``.
    The client is thread-safe. ``timeout`` (seconds) bounds connecting and each read.
    """

    def __init__(
        self,
        url: str,
        admin_url: str | None = None,
        admin_key: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.url = _base_url(url, "url")
        self.admin_url = _base_url(admin_url, "admin_url") if admin_url else None
        self._admin_key = admin_key or None
        self.timeout = float(timeout)
        # No automatic retries: a request that may have reached TokenGate is never sent twice.
        self._pool = urllib3.PoolManager(
            num_pools=4, maxsize=32, retries=False, timeout=urllib3.Timeout(connect=timeout, read=timeout)
        )
        self._verifier = KeepAliveTransport(self.url, self.timeout)

    def __repr__(self) -> str:  # never the key
        return f"Client(url={self.url!r}, admin_url={self.admin_url!r})"

    @property
    def has_admin(self) -> bool:
        """Whether the service API is configured (``admin_url`` and ``admin_key``)."""
        return bool(self.admin_url and self._admin_key)

    # -- the public API ----------------------------------------------------------------------------

    def verify(self, headers: Mapping[str, str]) -> Identity:
        """Whether the request with ``headers`` carries a live token (``GET /auth/verify``).

        ``headers`` is the incoming request's headers (any case); the ones TokenGate reads are
        passed on. Raises the contract's error (e.g. ``MissingToken``, ``TokenRevoked``,
        ``CSRFFailed``), ``StoreUnavailable`` or ``Unavailable``."""
        names = _VERIFY_NAMES
        forwarded: dict[str, str] = {}
        for name, value in headers.items():
            canonical = names.get(name.lower())
            if canonical is not None:
                forwarded[canonical] = value
        try:
            status, pairs, body = self._verifier.get("/auth/verify", forwarded)
        except TransportError as error:
            raise Unavailable(f"TokenGate at {self.url} did not answer: {error.reason}") from None
        except ValueError:
            # A header value HTTP cannot carry (CR/LF, beyond Latin-1): the request's own fault.
            raise InvalidRequest("invalid_request", "the request's headers cannot be passed on", 400) from None
        if status != 200:
            raise _error_from(status, pairs, body)
        user: str | None = None
        session_id: str | None = None
        next_token: str | None = None
        set_cookie: list[str] = []
        for name, value in pairs:
            lowered = name.lower()
            if lowered == "x-auth-user":
                user = value if user is None else user
            elif lowered == "x-auth-session":
                session_id = value if session_id is None else session_id
            elif lowered == "x-next-token":
                next_token = value if next_token is None else next_token
            elif lowered == "set-cookie":
                set_cookie.append(value)
        if not user or not session_id:
            raise Unavailable("TokenGate's verify answer has no X-Auth-User/X-Auth-Session")
        try:
            user = decode_user_header(user)
        except ValueError:
            raise Unavailable("TokenGate's verify answer has an X-Auth-User that does not decode") from None
        return Identity(user=user, session_id=session_id, next_token=next_token or None, set_cookie=tuple(set_cookie))

    def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None) -> Forwarded:
        """Passes a request on to TokenGate's public listener as it is (``target``: an origin-form
        path and query, e.g. ``/auth/refresh``) and returns the answer, whatever its status; for
        serving ``/auth/*`` from the app's own origin. Raises ``Unavailable`` when TokenGate does
        not answer, ``InvalidRequest`` for a header HTTP cannot carry."""
        if not target.startswith("/"):
            raise ValueError("target must be an origin-form path")
        try:
            response = self._pool.request(method, self.url + target, body=body, headers=dict(headers), redirect=False)
        except urllib3.exceptions.HTTPError as error:
            raise Unavailable(f"TokenGate at {self.url} did not answer: {type(error).__name__}") from None
        except (ValueError, UnicodeError):
            raise InvalidRequest("invalid_request", "the request's headers cannot be passed on", 400) from None
        return Forwarded(response.status, tuple(response.headers.items()), response.data)

    # -- the service API ---------------------------------------------------------------------------

    def start_session(self, user: str, user_agent: str | None = None, ip: str | None = None) -> Session:
        """Starts a session for ``user``, whom the app has authenticated (``POST /admin/v1/sessions``).
        ``user`` is the app's own id, kept exactly as given (case and Unicode untouched): 1-255
        bytes of UTF-8 without control characters, else ``InvalidRequest``. ``user_agent`` and
        ``ip`` are the browser's, shown in the session list."""
        body: dict[str, str] = {"user": user}
        if user_agent is not None:
            body["user_agent"] = user_agent[:256]
        if ip is not None:
            body["ip"] = ip
        answer = self._admin("POST", "/admin/v1/sessions", body)
        try:
            return Session(
                access_token=str(answer["access_token"]),
                token_type=str(answer["token_type"]),
                expires_in=int(answer["expires_in"]),
                session_id=str(answer["session_id"]),
                set_cookie=tuple(str(value) for value in answer.get("set_cookie", [])),
            )
        except (KeyError, TypeError, ValueError):
            raise Unavailable("TokenGate's answer to start_session is not a login answer") from None

    def sessions(self, user: str) -> list[SessionInfo]:
        """The user's live sessions (``GET /admin/v1/users/{user}/sessions``)."""
        answer = self._admin("GET", f"/admin/v1/users/{_segment(user)}/sessions")
        return [
            SessionInfo(
                session_id=item["session_id"],
                created_at=item["created_at"],
                last_seen=item["last_seen"],
                expires_in=int(item["expires_in"]),
                user_agent=item.get("user_agent"),
                ip=item.get("ip"),
                current=bool(item.get("current", False)),
            )
            for item in answer
        ]

    def end_sessions(self, user: str) -> None:
        """Ends every session of the user at once: password changed, account disabled."""
        self._admin("DELETE", f"/admin/v1/users/{_segment(user)}/sessions")

    def end_session(self, user: str, session_id: str) -> None:
        """Ends one session of the user; ``NotFound`` when it is not one of theirs. An empty or dot
        id is refused here: a URL would turn it into the path that ends every session."""
        if session_id in ("", ".", ".."):
            raise InvalidRequest("invalid_request", "session_id must be a session id", 400)
        self._admin("DELETE", f"/admin/v1/users/{_segment(user)}/sessions/{quote(session_id, safe='')}")

    def _admin(self, method: str, path: str, body: Mapping[str, str] | None = None) -> Any:
        if not self.admin_url or not self._admin_key:
            raise ConfigurationError(
                "this call needs TokenGate's service API: Client(url, admin_url=..., admin_key=...) "
                "(TOKENGATE_ADMIN_URL and TOKENGATE_ADMIN_KEY for tokengate_client.flask)"
            )
        headers = {"Authorization": f"Bearer {self._admin_key}"}
        payload = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body).encode()
        try:
            response = self._pool.request(method, self.admin_url + path, body=payload, headers=headers, redirect=False)
        except urllib3.exceptions.HTTPError as error:
            raise Unavailable(f"TokenGate's service API at {self.admin_url} did not answer: {type(error).__name__}") from None
        if response.status == 204:
            return None
        if response.status != 200:
            raise _error(response)
        try:
            return json.loads(response.data)
        except ValueError:
            raise Unavailable("TokenGate's service API answered something that is not JSON") from None


def _base_url(url: object, name: str) -> str:
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigurationError(f"{name} must be an http(s) URL of TokenGate, e.g. http://127.0.0.1:8080")
    return url.rstrip("/")


def _error(response: urllib3.BaseHTTPResponse) -> TokenGateError:
    """The contract's error for a failed answer; `Unavailable` when the answer is not TokenGate's."""
    return _error_from(response.status, response.headers.items(), response.data)


def _error_from(status: int, headers: Iterable[tuple[str, str]], data: bytes) -> TokenGateError:
    """The contract's error for a failed answer (status, header fields, body); `Unavailable` when
    the answer is not TokenGate's."""
    try:
        body = json.loads(data)
        code, message = body["error"], body["message"]
    except (ValueError, KeyError, TypeError):
        return Unavailable(f"an answer that is not TokenGate's: HTTP {status}")
    lowered = {name.lower(): value for name, value in headers}
    return _ERRORS.get(code, TokenGateError)(code, message, status, lowered)
