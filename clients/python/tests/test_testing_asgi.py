"""FakeTokenGate as the async client: the same scenarios as test_testing.py, through a FastAPI app
guarded by TokenGateMiddleware and require_identity, run twice with the same assertions: once
against the real tokengate (AsyncClient, Redis), once against the fake (fake.aio, in process, no
server), as an app's own tests use it (Starlette's TestClient)."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import Depends, FastAPI, Request
from harness import INVALID, REALM, TTL, TokenGate, dead_url

from tokengate_client import Identity, InvalidRequest, MissingToken, NotFound, Session, TokenRevoked, Unavailable
from tokengate_client.aio import AsyncClient
from tokengate_client.asgi import Refused, TokenGateMiddleware, public, refused_handler, require_identity
from tokengate_client.testing import FakeTokenGate

with warnings.catch_warnings():
    # Starlette >= 1.x prefers httpx2 for its TestClient and warns about httpx; the client works the same.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

@dataclass
class Backend:
    """One TokenGate, real or fake, as an async client, and how to make it unreachable."""

    name: str
    client: AsyncClient
    take_down: Callable[[], AsyncClient]

    def run(self, coroutine: Any) -> Any:
        return asyncio.run(coroutine)


@pytest.fixture(params=["real", "fake"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "real":
        instance: TokenGate = request.getfixturevalue("tokengate")
        client = AsyncClient(instance.url, admin_url=instance.admin_url, admin_key=instance.admin_key)
        yield Backend("real", client, lambda: AsyncClient(dead_url(), admin_url=dead_url(), admin_key=instance.admin_key))
    else:
        fake = FakeTokenGate(token_ttl=TTL)  # the tests' TokenGate runs with TOKEN_TTL=3

        def take_down() -> AsyncClient:
            fake.unavailable = True
            return fake.aio

        yield Backend("fake", fake.aio, take_down)


def app_for(client: AsyncClient) -> TestClient:
    app = FastAPI()
    app.add_middleware(TokenGateMiddleware, client=client)

    @app.get("/api/me")
    async def me(identity: Identity = Depends(require_identity)) -> dict[str, str]:
        return {"user": identity.user, "session": identity.session_id}

    @app.get("/healthz")
    @public
    async def health(request: Request) -> str:
        assert request.state.tokengate is None
        return "ok"

    return TestClient(app)


def bearer(session: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {session.access_token}"}


def test_a_started_session_reaches_the_route_with_the_id_as_given(backend: Backend) -> None:
    web = app_for(backend.client)
    for user in ("carol", "Carol Smith", "Zo\u00eb", "\u212aate", "{x}"):
        session = backend.run(backend.client.start_session(user, user_agent="Firefox/140", ip="203.0.113.9"))
        assert session.token_type == "Bearer" and session.expires_in == TTL and session.session_id
        answer = web.get("/api/me", headers=bearer(session))
        assert (answer.status_code, answer.json()) == (200, {"user": user, "session": session.session_id}), user
        identity = backend.run(backend.client.verify(bearer(session)))
        assert (identity.user, identity.session_id, identity.next_token) == (user, session.session_id, None)
        listed = backend.run(backend.client.sessions(user))
        assert [(s.session_id, s.user_agent, s.ip, s.current) for s in listed] == [
            (session.session_id, "Firefox/140", "203.0.113.9", False)]
    assert backend.run(backend.client.sessions("nobody")) == []
    assert backend.run(backend.client.sessions("kate")) == []


def test_refusals_have_the_same_code_status_and_challenge(backend: Backend) -> None:
    web = app_for(backend.client)
    for headers, code, challenge in (
        ({}, "missing_token", REALM),
        ({"Authorization": "Basic abc"}, "missing_token", REALM),
        ({"Authorization": "Bearer not-a-token"}, "invalid_token", INVALID),
    ):
        answer = web.get("/api/me", headers=headers)
        assert (answer.status_code, answer.json()["error"], answer.headers["WWW-Authenticate"]) == (401, code, challenge)
        assert answer.headers["Cache-Control"] == "no-store"
    assert web.get("/healthz").json() == "ok"
    with pytest.raises(MissingToken):
        backend.run(backend.client.verify({}))


def test_ending_sessions_revokes_their_tokens_at_once(backend: Backend) -> None:
    web = app_for(backend.client)
    run, client = backend.run, backend.client
    first, second = run(client.start_session("dave")), run(client.start_session("dave"))
    run(client.end_session("dave", first.session_id))
    answer = web.get("/api/me", headers=bearer(first))
    assert (answer.status_code, answer.json()["error"], answer.headers["WWW-Authenticate"]) == (401, "token_revoked", INVALID)
    assert web.get("/api/me", headers=bearer(second)).status_code == 200
    with pytest.raises(NotFound):
        run(client.end_session("dave", first.session_id))
    with pytest.raises(NotFound):
        run(client.end_session("erin", second.session_id))  # not one of erin's
    other = run(client.start_session("erin"))  # started late: the tests' tokens live 3 s
    run(client.end_sessions("dave"))
    with pytest.raises(TokenRevoked):
        run(client.verify(bearer(second)))
    assert run(client.sessions("dave")) == []
    assert web.get("/api/me", headers=bearer(other)).status_code == 200


def test_ids_that_can_never_be_ids_are_refused(backend: Backend) -> None:
    for user in ("", "a\nb", "a\u0085", "x" * 256, "\u00e9" * 128):
        with pytest.raises(InvalidRequest) as refused:
            backend.run(backend.client.start_session(user))
        assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    backend.run(backend.client.start_session("x" * 255))
    backend.run(backend.client.start_session("\u00e9" * 127 + "x"))


def test_unavailable_is_503_never_the_route(backend: Backend) -> None:
    session = backend.run(backend.client.start_session("grace"))
    down = backend.take_down()
    web = app_for(down)
    answer = web.get("/api/me", headers=bearer(session))
    assert (answer.status_code, answer.json()["error"], answer.headers["Retry-After"]) == (503, "store_unavailable", "1")
    assert web.get("/healthz").json() == "ok"
    with pytest.raises(Unavailable):
        backend.run(down.start_session("grace"))


def test_the_fake_installs_into_an_app_made_for_the_real_service() -> None:
    app = FastAPI()
    app.add_middleware(TokenGateMiddleware, url="http://127.0.0.1:1")  # never asked

    @app.get("/api/me")
    async def me(identity: Identity = Depends(require_identity)) -> dict[str, str]:
        return {"user": identity.user}

    bare = FastAPI()  # no middleware: the dependency alone

    @bare.get("/api/me")
    async def bare_me(identity: Identity = Depends(require_identity)) -> dict[str, str]:
        return {"user": identity.user}

    fake = FakeTokenGate()
    for target in (app, bare):
        fake.install(target)
    web, alone = TestClient(app), TestClient(bare)
    assert web.get("/api/me", headers=fake.auth_headers("carol")).json() == {"user": "carol"}
    assert alone.get("/api/me", headers=fake.auth_headers("Carol Smith")).json() == {"user": "Carol Smith"}
    session = fake.mint("dave")
    fake.expire(session)
    assert web.get("/api/me", headers=fake.auth_headers(session)).json()["error"] == "token_expired"
    assert alone.get("/api/me", headers=fake.auth_headers(session)).status_code == 401
    session = fake.mint("dave")
    fake.revoke(session)
    assert web.get("/api/me", headers=fake.auth_headers(session)).json()["error"] == "token_revoked"
    erin = fake.auth_headers("erin")
    with fake.down():
        assert web.get("/api/me", headers=erin).status_code == 503
        assert alone.get("/api/me", headers=erin).status_code == 503
    assert web.get("/api/me", headers=erin).status_code == 200
    with pytest.raises(RuntimeError):
        fake.install(object())
    # The dependency alone answers FastAPI's way ({"detail": ...}); refused_handler gives the contract's body.
    assert alone.get("/api/me").json() == {"detail": "a bearer token is required"}
    contract = FastAPI(exception_handlers={Refused: refused_handler})
    contract.get("/api/me")(bare_me)
    fake.install(contract)
    refused = TestClient(contract).get("/api/me")
    assert (refused.status_code, refused.json(), refused.headers["WWW-Authenticate"]) == (
        401, {"error": "missing_token", "message": "a bearer token is required"}, REALM)
