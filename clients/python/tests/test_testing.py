"""tokengate_client.testing.FakeTokenGate and the real service agree: every scenario here runs twice, once
against the real tokengate (and Redis), once against the fake, with the same assertions, through the
Flask guard as an app's tests would use it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask, g, jsonify
from harness import INVALID, REALM, TTL, TokenGate, dead_url

from tokengate_client import Client, InvalidRequest, MissingToken, NotFound, Session, TokenRevoked, Unavailable
from tokengate_client.flask import TokenGate as FlaskTokenGate
from tokengate_client.flask import public
from tokengate_client.testing import FakeTokenGate


@dataclass
class Backend:
    """One TokenGate, real or fake: the client an app is given, and how to make it unreachable."""

    name: str
    client: Client
    take_down: Callable[[], Client]


@pytest.fixture(params=["real", "fake"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "real":
        instance: TokenGate = request.getfixturevalue("tokengate")
        client = Client(instance.url, admin_url=instance.admin_url, admin_key=instance.admin_key)
        yield Backend("real", client, lambda: Client(dead_url(), admin_url=dead_url(), admin_key=instance.admin_key))
    else:
        fake = FakeTokenGate(token_ttl=TTL)  # the tests' TokenGate runs with TOKEN_TTL=3

        def take_down() -> Client:
            fake.unavailable = True
            return fake

        yield Backend("fake", fake, take_down)


def app_for(client: Client) -> Flask:
    app = Flask(__name__)
    FlaskTokenGate(app, client=client)

    @app.get("/api/me")
    def me() -> Any:
        return jsonify(user=g.tokengate.user, session=g.tokengate.session_id)

    @app.get("/healthz")
    @public
    def health() -> str:
        return "ok"

    return app


def bearer(session: Session) -> dict[str, str]:
    return {"Authorization": f"Bearer {session.access_token}"}


def test_a_started_session_reaches_the_view_with_the_id_as_given(backend: Backend) -> None:
    web = app_for(backend.client).test_client()
    for user in ("carol", "Carol Smith", "Zo\u00eb", "\u212aate", "{x}"):
        session = backend.client.start_session(user, user_agent="Firefox/140", ip="203.0.113.9")
        assert session.token_type == "Bearer" and session.expires_in == TTL and session.session_id
        answer = web.get("/api/me", headers=bearer(session))
        assert (answer.status_code, answer.json) == (200, {"user": user, "session": session.session_id}), user
        identity = backend.client.verify(bearer(session))
        assert (identity.user, identity.session_id, identity.next_token) == (user, session.session_id, None)
        listed = backend.client.sessions(user)
        assert [(s.session_id, s.user_agent, s.ip, s.current) for s in listed] == [
            (session.session_id, "Firefox/140", "203.0.113.9", False)]
    assert backend.client.sessions("nobody") == []
    assert backend.client.sessions("kate") == []


def test_refusals_have_the_same_code_status_and_challenge(backend: Backend) -> None:
    web = app_for(backend.client).test_client()
    for headers, code, challenge in (
        ({}, "missing_token", REALM),
        ({"Authorization": "Basic abc"}, "missing_token", REALM),
        ({"Authorization": "Bearer not-a-token"}, "invalid_token", INVALID),
    ):
        answer = web.get("/api/me", headers=headers)
        assert (answer.status_code, answer.json["error"], answer.headers["WWW-Authenticate"]) == (401, code, challenge)
        assert answer.headers["Cache-Control"] == "no-store"
    assert web.get("/healthz").data == b"ok"
    with pytest.raises(MissingToken):
        backend.client.verify({})


def test_ending_sessions_revokes_their_tokens_at_once(backend: Backend) -> None:
    web = app_for(backend.client).test_client()
    first, second = backend.client.start_session("dave"), backend.client.start_session("dave")
    other = backend.client.start_session("erin")
    backend.client.end_session("dave", first.session_id)
    answer = web.get("/api/me", headers=bearer(first))
    assert (answer.status_code, answer.json["error"], answer.headers["WWW-Authenticate"]) == (401, "token_revoked", INVALID)
    assert web.get("/api/me", headers=bearer(second)).status_code == 200
    with pytest.raises(NotFound):
        backend.client.end_session("dave", first.session_id)
    with pytest.raises(NotFound):
        backend.client.end_session("erin", second.session_id)  # not one of erin's
    backend.client.end_sessions("dave")
    with pytest.raises(TokenRevoked):
        backend.client.verify(bearer(second))
    assert backend.client.sessions("dave") == []
    assert web.get("/api/me", headers=bearer(other)).status_code == 200


def test_logout_through_the_app_ends_the_session(backend: Backend) -> None:
    web = app_for(backend.client).test_client()
    session = backend.client.start_session("frank")
    assert web.post("/auth/logout", headers=bearer(session)).status_code == 204
    assert web.get("/api/me", headers=bearer(session)).json["error"] == "token_revoked"


def test_ids_that_can_never_be_ids_are_refused(backend: Backend) -> None:
    for user in ("", "a\nb", "a\u0085", "x" * 256, "\u00e9" * 128):
        with pytest.raises(InvalidRequest) as refused:
            backend.client.start_session(user)
        assert (refused.value.status, refused.value.code) == (400, "invalid_request")
    backend.client.start_session("x" * 255)
    backend.client.start_session("\u00e9" * 127 + "x")


def test_unavailable_is_503_never_the_view(backend: Backend) -> None:
    session = backend.client.start_session("grace")
    web = app_for(backend.take_down()).test_client()
    answer = web.get("/api/me", headers=bearer(session))
    assert (answer.status_code, answer.json["error"], answer.headers["Retry-After"]) == (503, "store_unavailable", "1")
    assert web.get("/healthz").data == b"ok"
    with pytest.raises(Unavailable):
        app_for(backend.take_down()).extensions["tokengate"].client.start_session("grace")


def test_the_fake_installs_into_an_app_made_for_the_real_service() -> None:
    app = Flask(__name__)
    app.config["TOKENGATE_URL"] = "http://127.0.0.1:1"  # never asked
    FlaskTokenGate(app)

    @app.get("/api/me")
    def me() -> Any:
        return jsonify(user=g.tokengate.user)

    fake = FakeTokenGate()
    fake.install(app)
    web = app.test_client()
    assert web.get("/api/me", headers=fake.auth_headers("carol")).json == {"user": "carol"}
    session = fake.mint("dave")
    fake.expire(session)
    assert web.get("/api/me", headers=fake.auth_headers(session)).json["error"] == "token_expired"
    session = fake.mint("dave")
    fake.revoke(session)
    assert web.get("/api/me", headers=fake.auth_headers(session)).json["error"] == "token_revoked"
    erin = fake.auth_headers("erin")
    with fake.down():
        assert web.get("/api/me", headers=erin).status_code == 503
    assert web.get("/api/me", headers=erin).status_code == 200
    with pytest.raises(RuntimeError):
        fake.install(Flask("bare"))
