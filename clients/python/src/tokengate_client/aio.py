"""The async client: TokenGate's API for asyncio apps (Starlette, FastAPI, any ASGI server), on
httpx's pooled keep-alive ``AsyncClient``. It shares everything but the sending with the sync
:class:`tokengate_client.Client` (``tokengate_client._core``): the same calls, the same exceptions
from the same table, the same ``Identity``/``Session`` types.

    from tokengate_client.aio import AsyncClient

    client = AsyncClient.from_env()                 # TOKENGATE_URL, TOKENGATE_ADMIN_URL, ...
    identity = await client.verify(request_headers)
    session = await client.start_session("Carol Smith")

Needs ``httpx`` (``pip install "tokengate-client[asgi]"``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx

from . import _core
from ._core import Call, Forwarded, Identity, InvalidRequest, Session, SessionInfo, Unavailable
from ._guard import DEFAULT_TIMEOUT, ClientSettings

__all__ = ["AsyncClient"]


class AsyncClient(ClientSettings):
    """TokenGate's public API (``url``) and, with ``admin_url`` and ``admin_key``, its service
    API, for asyncio code: the same methods as :class:`tokengate_client.Client`, as coroutines.

    One pooled keep-alive ``httpx.AsyncClient`` per event loop serves every call (a connection
    belongs to the loop that opened it, so a client made at import time works under any loop);
    ``timeout`` (seconds) bounds connecting and each read. Keep one per process; ``aclose()``
    closes the current loop's connections. No environment proxies (``trust_env=False``), no
    redirects followed, nothing sent twice that may have reached TokenGate.
    """

    def __init__(
        self,
        url: str,
        admin_url: str | None = None,
        admin_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        super().__init__(url, admin_url=admin_url, admin_key=admin_key, timeout=timeout)
        self._pools: dict[asyncio.AbstractEventLoop | None, httpx.AsyncClient] = {}

    # -- the public API ----------------------------------------------------------------------------

    async def verify(self, headers: Mapping[str, str]) -> Identity:
        """Whether the request with ``headers`` carries a live token (``GET /auth/verify``); see
        :meth:`tokengate_client.Client.verify`."""
        call = _core.verify_call(self.url, headers)
        # A connect-refused verify never reached TokenGate: one retry, on another connection.
        for attempt in range(2):
            try:
                response = await self._send(call)
                break
            except httpx.HTTPError as error:
                if attempt == 0 and _refused(error):
                    continue
                raise Unavailable(f"TokenGate at {self.url} did not answer: {type(error).__name__}") from None
        return _core.verify_answer(response.status_code, response.headers.multi_items(), response.content)

    async def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None) -> Forwarded:
        """Passes a request on to TokenGate's public listener as it is; see
        :meth:`tokengate_client.Client.forward`."""
        call = _core.forward_call(self.url, method, target, headers, body)
        try:
            response = await self._send(call)
        except httpx.HTTPError as error:
            raise Unavailable(f"TokenGate at {self.url} did not answer: {type(error).__name__}") from None
        return _core.forward_answer(response.status_code, response.headers.multi_items(), response.content)

    # -- the service API ---------------------------------------------------------------------------

    async def start_session(self, user: str, user_agent: str | None = None, ip: str | None = None) -> Session:
        """Starts a session for ``user``, whom the app has authenticated; see
        :meth:`tokengate_client.Client.start_session`."""
        call = _core.start_session_call(self.admin_url, self._admin_key, user, user_agent, ip)
        return _core.session_from(await self._admin(call))

    async def sessions(self, user: str) -> list[SessionInfo]:
        """The user's live sessions."""
        return _core.sessions_from(await self._admin(_core.sessions_call(self.admin_url, self._admin_key, user)))

    async def end_sessions(self, user: str) -> None:
        """Ends every session of the user at once: password changed, account disabled."""
        await self._admin(_core.end_sessions_call(self.admin_url, self._admin_key, user))

    async def end_session(self, user: str, session_id: str) -> None:
        """Ends one session of the user; ``NotFound`` when it is not one of theirs."""
        await self._admin(_core.end_session_call(self.admin_url, self._admin_key, user, session_id))

    async def aclose(self) -> None:
        """Closes the current event loop's pooled connections."""
        pool = self._pools.pop(_loop(), None)
        if pool is not None:
            await pool.aclose()

    # -- I/O: the only httpx calls -----------------------------------------------------------------

    def _pool(self) -> httpx.AsyncClient:
        loop = _loop()
        pool = self._pools.get(loop)
        if pool is None:
            # Loops that have ended leave their (dead) pools: drop them, never reuse one.
            for old in [key for key in self._pools if key is not None and key.is_closed()]:
                del self._pools[old]
            pool = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                follow_redirects=False,
                trust_env=False,
            )
            self._pools[loop] = pool
        return pool

    async def _send(self, call: Call) -> httpx.Response:
        # Latin-1 bytes: the header values exactly as the incoming request had them.
        headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in call.headers.items()]
        try:
            return await self._pool().request(call.method, call.url, headers=headers, content=call.body)
        except httpx.LocalProtocolError:
            raise InvalidRequest("invalid_request", "the request's headers cannot be passed on", 400) from None

    async def _admin(self, call: Call) -> Any:
        try:
            response = await self._send(call)
        except httpx.HTTPError as error:
            raise Unavailable(f"TokenGate's service API at {self.admin_url} did not answer: {type(error).__name__}") from None
        return _core.admin_answer(response.status_code, response.headers.multi_items(), response.content)


def _loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # not asyncio (trio through anyio): one pool
        return None


def _refused(error: BaseException) -> bool:
    """True when the connection was refused outright: the request never reached anyone."""
    if not isinstance(error, httpx.ConnectError):
        return False
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
