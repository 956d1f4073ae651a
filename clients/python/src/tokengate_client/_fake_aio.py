"""``FakeTokenGate.aio``: the in-process fake as an :class:`tokengate_client.aio.AsyncClient`
(kept apart so that ``tokengate_client.testing`` imports without httpx)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ._core import Forwarded, Identity, Session, SessionInfo
from .aio import AsyncClient

if TYPE_CHECKING:
    from .testing import FakeTokenGate


class AsyncFakeTokenGate(AsyncClient):
    """The async face of a :class:`tokengate_client.testing.FakeTokenGate`: every call is the
    fake's own (same state, same refusals, ``Unavailable`` while it is down), nothing is sent."""

    def __init__(self, fake: FakeTokenGate) -> None:
        super().__init__(fake.url, admin_url=fake.admin_url, admin_key="tgsk_fake")
        self.fake = fake

    def __repr__(self) -> str:
        return f"AsyncFakeTokenGate({self.fake!r})"

    async def verify(self, headers: Mapping[str, str]) -> Identity:
        return self.fake.verify(headers)

    async def forward(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None = None) -> Forwarded:
        return self.fake.forward(method, target, headers, body)

    async def start_session(self, user: str, user_agent: str | None = None, ip: str | None = None) -> Session:
        return self.fake.start_session(user, user_agent=user_agent, ip=ip)

    async def sessions(self, user: str) -> list[SessionInfo]:
        return self.fake.sessions(user)

    async def end_sessions(self, user: str) -> None:
        self.fake.end_sessions(user)

    async def end_session(self, user: str, session_id: str) -> None:
        self.fake.end_session(user, session_id)

    async def aclose(self) -> None:
        return None
