"""The core both clients share, without any I/O (sans-IO): the exceptions and their table, the
data types, how ``X-Auth-User`` carries an id, what each call sends (:class:`Call`) and how
TokenGate's answers are read (status and JSON error code to exception, identity and rotation
headers). :class:`tokengate_client.Client` sends the calls with urllib3,
:class:`tokengate_client.aio.AsyncClient` with httpx; neither interprets an answer itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote_to_bytes, urlsplit


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
ERRORS: dict[str, type[TokenGateError]] = {
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


# -- what is sent, and how the answers are read (both clients) --------------------------------------

# An answer's headers as (name, value) pairs, repeated names kept (urllib3's items(), httpx's multi_items()).
HeaderPairs = Iterable[tuple[str, str]]


@dataclass(frozen=True)
class Call:
    """One request to TokenGate, built here and sent by a client: method, absolute URL, headers
    (str values of Latin-1 at most, checked) and body."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)
    body: bytes | None = field(default=None, repr=False)


def base_url(url: object, name: str) -> str:
    """``url`` without a trailing slash; ``ConfigurationError`` when it is not an http(s) URL."""
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
        raise ConfigurationError(f"{name} must be an http(s) URL of TokenGate, e.g. http://127.0.0.1:8080")
    return url.rstrip("/")


def _sendable(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` as they can go on the wire; ``InvalidRequest`` for a value HTTP cannot carry
    (CR, LF, NUL, beyond Latin-1): the incoming request's own fault, never an outage."""
    for value in headers.values():
        if not isinstance(value, str) or "\r" in value or "\n" in value or "\0" in value or not _latin1(value):
            raise InvalidRequest("invalid_request", "the request's headers cannot be passed on", 400)
    return dict(headers)


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def verify_call(url: str, headers: Mapping[str, str]) -> Call:
    """``GET /auth/verify`` with the headers of ``headers`` (any mapping, names in any case) that
    TokenGate reads (:data:`VERIFY_HEADERS`), nothing else."""
    lowered = {name.lower(): value for name, value in headers.items()}
    forwarded = {name: lowered[name.lower()] for name in VERIFY_HEADERS if name.lower() in lowered}
    return Call("GET", url + "/auth/verify", _sendable(forwarded))


def verify_answer(status: int, headers: HeaderPairs, body: bytes) -> Identity:
    """The :class:`Identity` of a verify answer, or the contract's error for it."""
    pairs = list(headers)
    if status != 200:
        raise error_from(status, pairs, body)
    user = _first(pairs, "x-auth-user")
    session_id = _first(pairs, "x-auth-session")
    if not user or not session_id:
        raise Unavailable("TokenGate's verify answer has no X-Auth-User/X-Auth-Session")
    try:
        user = decode_user_header(user)
    except ValueError:
        raise Unavailable("TokenGate's verify answer has an X-Auth-User that does not decode") from None
    return Identity(
        user=user,
        session_id=session_id,
        next_token=_first(pairs, "x-next-token") or None,
        set_cookie=tuple(value for name, value in pairs if name.lower() == "set-cookie"),
    )


def forward_call(url: str, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> Call:
    """A request passed on to TokenGate's public listener as it is (``target``: origin-form)."""
    if not target.startswith("/"):
        raise ValueError("target must be an origin-form path")
    return Call(method, url + target, _sendable(headers), body)


def forward_answer(status: int, headers: HeaderPairs, body: bytes) -> Forwarded:
    """TokenGate's answer to a passed-on request, whatever its status."""
    return Forwarded(status, tuple(headers), body)


def start_session_call(admin_url: str | None, admin_key: str | None, user: str, user_agent: str | None, ip: str | None) -> Call:
    """``POST /admin/v1/sessions``."""
    body: dict[str, str] = {"user": user}
    if user_agent is not None:
        body["user_agent"] = user_agent[:256]
    if ip is not None:
        body["ip"] = ip
    return _admin_call(admin_url, admin_key, "POST", "/admin/v1/sessions", body)


def sessions_call(admin_url: str | None, admin_key: str | None, user: str) -> Call:
    """``GET /admin/v1/users/{user}/sessions``."""
    return _admin_call(admin_url, admin_key, "GET", f"/admin/v1/users/{_segment(user)}/sessions")


def end_sessions_call(admin_url: str | None, admin_key: str | None, user: str) -> Call:
    """``DELETE /admin/v1/users/{user}/sessions``: every session of the user."""
    return _admin_call(admin_url, admin_key, "DELETE", f"/admin/v1/users/{_segment(user)}/sessions")


def end_session_call(admin_url: str | None, admin_key: str | None, user: str, session_id: str) -> Call:
    """``DELETE /admin/v1/users/{user}/sessions/{id}``. An empty or dot id is refused here: a URL
    would turn it into the path that ends every session."""
    if session_id in ("", ".", ".."):
        raise InvalidRequest("invalid_request", "session_id must be a session id", 400)
    path = f"/admin/v1/users/{_segment(user)}/sessions/{quote(session_id, safe='')}"
    return _admin_call(admin_url, admin_key, "DELETE", path)


def _admin_call(
    admin_url: str | None, admin_key: str | None, method: str, path: str, body: Mapping[str, str] | None = None
) -> Call:
    if not admin_url or not admin_key:
        raise ConfigurationError(
            "this call needs TokenGate's service API: Client(url, admin_url=..., admin_key=...) "
            "(TOKENGATE_ADMIN_URL and TOKENGATE_ADMIN_KEY for the framework guards)"
        )
    headers = {"Authorization": f"Bearer {admin_key}"}
    payload = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        payload = json.dumps(body).encode()
    return Call(method, admin_url + path, headers, payload)


def admin_answer(status: int, headers: HeaderPairs, body: bytes) -> Any:
    """The JSON of a service-API answer (None for 204), or the contract's error for it."""
    if status == 204:
        return None
    if status != 200:
        raise error_from(status, headers, body)
    try:
        return json.loads(body)
    except ValueError:
        raise Unavailable("TokenGate's service API answered something that is not JSON") from None


def session_from(answer: Any) -> Session:
    """The :class:`Session` of a start-session answer's JSON."""
    try:
        return Session(
            access_token=str(answer["access_token"]),
            token_type=str(answer["token_type"]),
            expires_in=int(answer["expires_in"]),
            session_id=str(answer["session_id"]),
            set_cookie=tuple(str(value) for value in answer.get("set_cookie", [])),
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unavailable("TokenGate's answer to start_session is not a login answer") from None


def sessions_from(answer: Any) -> list[SessionInfo]:
    """The :class:`SessionInfo` list of a session-listing answer's JSON."""
    try:
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
    except (KeyError, TypeError, ValueError, AttributeError):
        raise Unavailable("TokenGate's answer to sessions is not a session list") from None


def error_from(status: int, headers: HeaderPairs, body: bytes) -> TokenGateError:
    """The contract's error for a failed answer; ``Unavailable`` when the answer is not TokenGate's."""
    try:
        parsed = json.loads(body)
        code, message = parsed["error"], parsed["message"]
    except (ValueError, KeyError, TypeError):
        return Unavailable(f"an answer that is not TokenGate's: HTTP {status}")
    lowered = {name.lower(): value for name, value in headers}
    return ERRORS.get(code, TokenGateError)(code, message, status, lowered)


def _first(pairs: list[tuple[str, str]], lowered_name: str) -> str | None:
    return next((value for name, value in pairs if name.lower() == lowered_name), None)
