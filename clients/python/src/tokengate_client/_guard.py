"""What every framework's guard decides the same way, without a framework: the settings (one set
of names, ``TOKENGATE_*``, from a Flask config, the environment or keywords), trusted proxies and
the client's address, the guarded request's target and the headers sent to ``/auth/verify`` (431
over 16 KiB), the identity a trusted proxy vouches for, CORS preflights, and the answers the guard
gives itself (TokenGate's refusal, 503 when it is unavailable, the rotation headers)."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union
from urllib.parse import quote, quote_from_bytes

from ._core import VERIFY_HEADERS, ConfigurationError, HeadersTooLarge, Identity, TokenGateError, base_url, decode_user_header

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# What TokenGate reads of a request at most (README: 431 headers_too_large over 16 KiB).
MAX_HEADER_BYTES = 16 * 1024
# What passes between the browser and TokenGate when an app passes /auth/* on (Flask's
# proxy_auth_routes, Django's auth_urls()), each way, and the largest body passed.
PROXIED_REQUEST_HEADERS = (
    "Content-Type",
    "Authorization",
    "Cookie",
    "Origin",
    "Sec-Fetch-Site",
    "X-CSRF-Token",
    "User-Agent",
    "Accept",
)
PROXIED_RESPONSE_HEADERS = (
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
MAX_PROXIED_BODY = 64 * 1024
# Path characters passed on as they are in X-Original-URI and pass-through targets (RFC 3986 pchar).
PATH_SAFE = "/!$&'()*+,;=:@-._~"
QUERY_SAFE = PATH_SAFE + "?%"
_CANONICAL = {name.lower(): name for name in VERIFY_HEADERS}
IDENTITY_HEADERS = ("x-auth-user", "x-auth-session")
PROXY_SECRET_HEADER = "x-tokengate-proxy-secret"
DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Settings:
    """A guard's settings, each named as in the environment and a Flask config: ``url``
    (``TOKENGATE_URL``), ``admin_url`` and ``admin_key`` (``TOKENGATE_ADMIN_URL``,
    ``TOKENGATE_ADMIN_KEY``), ``timeout`` (``TOKENGATE_TIMEOUT``, seconds, default 2),
    ``trusted_proxies`` (``TOKENGATE_TRUSTED_PROXIES``: addresses or CIDR ranges, a list or a
    comma-separated string) and ``proxy_secret`` (``TOKENGATE_PROXY_SECRET``)."""

    url: str | None = None
    admin_url: str | None = None
    admin_key: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT
    trusted_proxies: tuple[Network, ...] = ()
    proxy_secret: str | None = field(default=None, repr=False)

    @classmethod
    def read(cls, source: Mapping[str, Any], **keywords: Any) -> Settings:
        """The settings from ``source`` (``os.environ``, ``app.config``), a keyword that is not
        None winning over its ``TOKENGATE_*`` name. Raises ``ConfigurationError`` for a value that
        cannot be one."""

        def get(name: str) -> Any:
            value = keywords.get(name)
            return value if value is not None else source.get("TOKENGATE_" + name.upper())

        timeout = get("timeout")
        try:
            seconds = float(timeout) if timeout not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            raise ConfigurationError(f"TOKENGATE_TIMEOUT: {timeout!r} is not a number of seconds") from None
        if not seconds > 0:
            raise ConfigurationError(f"TOKENGATE_TIMEOUT: {timeout!r} is not a number of seconds")
        return cls(
            url=get("url") or None,
            admin_url=get("admin_url") or None,
            admin_key=get("admin_key") or None,
            timeout=seconds,
            trusted_proxies=networks(get("trusted_proxies")),
            proxy_secret=get("proxy_secret") or None,
        )


_Client = TypeVar("_Client", bound="ClientSettings")


class ClientSettings:
    """What the sync and the async client are made of, normalised in one place: ``url`` and
    ``admin_url`` without a trailing slash (``ConfigurationError`` unless http(s)), the admin key
    (never shown), ``timeout`` in seconds; and how each is made from the environment."""

    def __init__(
        self, url: str, admin_url: str | None = None, admin_key: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.url = base_url(url, "url")
        self.admin_url = base_url(admin_url, "admin_url") if admin_url else None
        self._admin_key = admin_key or None
        self.timeout = float(timeout)

    @classmethod
    def from_settings(cls: type[_Client], settings: Settings) -> _Client:
        """The client of a guard's :class:`Settings`."""
        if not settings.url:
            raise ConfigurationError("TokenGate needs TOKENGATE_URL (the TokenGate service's URL), or url=...")
        return cls(settings.url, admin_url=settings.admin_url, admin_key=settings.admin_key, timeout=settings.timeout)

    @classmethod
    def from_env(cls: type[_Client], environ: Mapping[str, str] | None = None) -> _Client:
        """The client the environment describes: ``TOKENGATE_URL``, ``TOKENGATE_ADMIN_URL``,
        ``TOKENGATE_ADMIN_KEY``, ``TOKENGATE_TIMEOUT`` (the names the Flask extension reads from
        ``app.config`` and the ASGI middleware and Django's settings use)."""
        return cls.from_settings(Settings.read(os.environ if environ is None else environ))

    def __repr__(self) -> str:  # never the key
        return f"{type(self).__name__}(url={self.url!r}, admin_url={self.admin_url!r})"

    @property
    def has_admin(self) -> bool:
        """Whether the service API is configured (``admin_url`` and ``admin_key``)."""
        return bool(self.admin_url and self._admin_key)


def networks(value: Any) -> tuple[Network, ...]:
    """``TOKENGATE_TRUSTED_PROXIES``: a list, or a comma-separated string, of addresses and ranges."""
    if not value:
        return ()
    if isinstance(value, str):
        value = value.split(",")
    found = []
    for entry in value:
        text = str(entry).strip()
        if not text:
            continue
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ConfigurationError(f"TOKENGATE_TRUSTED_PROXIES: {text!r} is not an address or CIDR range") from None
    return tuple(found)


def flag(value: Any, name: str) -> bool:
    """An on/off setting (None: on)."""
    if value is None or isinstance(value, bool):
        return value is not False
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}: {value!r} is not on or off")


def within(address: str | None, ranges: tuple[Network, ...]) -> bool:
    """Whether ``address`` (an IPv4-mapped IPv6 one too) is in one of ``ranges``."""
    if not address or not ranges:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return any(ip in network or (mapped is not None and mapped in network) for network in ranges)


def vouched(peer: str | None, sent_secret: str | None, proxies: tuple[Network, ...], proxy_secret: str | None) -> bool:
    """Whether the request comes from a trusted proxy (and, with a proxy secret, carries it;
    compared in constant time): only then are its identity headers believed."""
    if not within(peer, proxies):
        return False
    if proxy_secret is None:
        return True
    return sent_secret is not None and hmac.compare_digest(sent_secret.encode(), proxy_secret.encode())


def client_address(peer: str | None, forwarded_for: str | None, ranges: tuple[Network, ...]) -> str | None:
    """The browser's address: the peer, or behind trusted proxies the nearest address in
    X-Forwarded-For that is not one of them."""
    if not within(peer, ranges):
        return peer
    for hop in reversed((forwarded_for or "").split(",")):
        hop = hop.strip()
        if hop and not within(hop, ranges):
            return hop
    return peer


def target(path: str, query: bytes) -> str:
    """The request's path and query as an origin-form target of ASCII only (percent-encoded), so
    that no path a client can send (non-Latin-1, CR/LF) breaks a header or a request line."""
    encoded = quote(path, safe=PATH_SAFE, errors="surrogatepass")
    if query:
        encoded += "?" + quote_from_bytes(query, safe=QUERY_SAFE)
    return encoded


def verify_headers(headers: Iterable[tuple[str, str]], method: str, uri: str, host: str, address: str | None) -> dict[str, str]:
    """The headers ``/auth/verify`` gets for a guarded request: the request's own (the ones it
    reads, any case), its method and target, the browser's host and address. Raises
    ``HeadersTooLarge`` (431) for what TokenGate would refuse anyway, without asking it."""
    sent = {_CANONICAL[name.lower()]: value for name, value in headers if name.lower() in _CANONICAL}
    sent["X-Original-Method"] = method
    sent["X-Original-URI"] = uri
    sent["Host"] = host
    if address:
        sent["X-Forwarded-For"] = address
    else:
        sent.pop("X-Forwarded-For", None)
    if sum(len(name) + len(value) + 4 for name, value in sent.items()) > MAX_HEADER_BYTES:
        raise HeadersTooLarge("headers_too_large", "the request's header fields are too large", 431)
    return sent


def vouched_identity(user: str | None, session_id: str | None, next_token: str | None) -> Identity | None:
    """The identity a trusted proxy put in ``X-Auth-User``/``X-Auth-Session``, or None."""
    if not user or not session_id:
        return None
    try:
        user = decode_user_header(user)
    except ValueError:
        return None
    return Identity(user=user, session_id=session_id, next_token=next_token or None)


def is_preflight(method: str, origin: str | None, request_method: str | None) -> bool:
    """A CORS preflight: the browser asks before the real request and never sends credentials
    with it; it goes on to the app's own CORS handling."""
    return method == "OPTIONS" and origin is not None and request_method is not None


Answer = tuple[int, list[tuple[str, str]], bytes]


def refusal(error: TokenGateError) -> Answer:
    """TokenGate's refusal as the guard answers it: the contract's JSON error, its status,
    ``WWW-Authenticate`` (always on a 401) and ``Retry-After``, never cached. A status that is
    not a refusal (5xx) is :func:`unavailable`."""
    if not 400 <= error.status < 500:
        return unavailable()
    headers = [("content-type", "application/json"), ("cache-control", "no-store")]
    for name in ("www-authenticate", "retry-after"):
        if name in error.headers:
            headers.append((name, error.headers[name]))
    if error.status == 401 and "www-authenticate" not in error.headers:
        headers.append(("www-authenticate", 'Bearer realm="tokengate"'))
    return error.status, headers, _json(error.code, error.message)


def unavailable() -> Answer:
    """Fail closed: 503 ``store_unavailable`` with ``Retry-After: 1``, never the view."""
    headers = [("content-type", "application/json"), ("cache-control", "no-store"), ("retry-after", "1")]
    return 503, headers, _json("store_unavailable", "authentication is unavailable; try again")


def rotation_headers(identity: Identity) -> list[tuple[str, str]]:
    """What a verified request's answer carries on to the browser: the successor token
    (``X-Next-Token``, per-request rotation) and cookie mode's ``Set-Cookie`` lines; with either,
    the answer must never be cached (``Cache-Control: no-store``, ``Vary: Authorization, Cookie``)."""
    headers = [("set-cookie", cookie) for cookie in identity.set_cookie]
    if identity.next_token:
        headers.append(("x-next-token", identity.next_token))
    return headers


def _json(code: str, message: str) -> bytes:
    return json.dumps({"error": code, "message": message}, separators=(",", ":")).encode()
