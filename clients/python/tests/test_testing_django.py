"""tokengate_client.testing.FakeTokenGate and the real service agree through the Django middleware:
every scenario runs twice, against the real tokengate (and Redis) and against the fake, with the
same assertions, through Django's test client as a project's own tests would use it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as WebClient
from django.test import override_settings
from test_testing import INVALID, REALM, Backend, backend, bearer  # noqa: F401  (backend: the real-or-fake fixture)

from tokengate_client import Unavailable
from tokengate_client import django as tgdjango
from tokengate_client.testing import FakeTokenGate


@pytest.fixture
def web(backend: Backend, settings: Any) -> WebClient:  # noqa: F811
    settings.TOKENGATE_CLIENT = backend.client
    return WebClient()


def test_a_started_session_reaches_the_view_with_the_id_as_given(backend: Backend, web: WebClient) -> None:  # noqa: F811
    for user in ("carol", "Carol Smith", "Zo\u00eb", "\u212aate", "{x}"):
        login = web.post("/login", json.dumps({"user": user}), content_type="application/json", HTTP_USER_AGENT="Firefox/140",
                         REMOTE_ADDR="203.0.113.9")
        grant = login.json()
        assert login.status_code == 200 and set(grant) == {"access_token", "token_type", "expires_in", "session_id"}
        answer = web.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {grant['access_token']}")
        assert (answer.status_code, answer.json()) == (200, {"user": user, "session": grant["session_id"]}), user
        listed = backend.client.sessions(user)
        assert [(s.session_id, s.user_agent, s.ip) for s in listed] == [(grant["session_id"], "Firefox/140", "203.0.113.9")]
    assert backend.client.sessions("kate") == []


def test_refusals_have_the_same_code_status_and_challenge(web: WebClient) -> None:
    for headers, code, challenge in (
        ({}, "missing_token", REALM),
        ({"HTTP_AUTHORIZATION": "Basic abc"}, "missing_token", REALM),
        ({"HTTP_AUTHORIZATION": "Bearer not-a-token"}, "invalid_token", INVALID),
    ):
        for path in ("/api/me", "/no/such/page"):
            answer = web.get(path, **headers)
            assert (answer.status_code, answer.json()["error"], answer["WWW-Authenticate"]) == (401, code, challenge)
    assert web.get("/healthz").content == b"ok"


def test_ending_sessions_and_logout_revoke_at_once(backend: Backend, web: WebClient) -> None:  # noqa: F811
    first, second, third = (backend.client.start_session("Carol Smith") for _ in range(3))
    backend.client.end_session("Carol Smith", first.session_id)
    answer = web.get("/api/me", HTTP_AUTHORIZATION=bearer(first)["Authorization"])
    assert (answer.status_code, answer.json()["error"], answer["WWW-Authenticate"]) == (401, "token_revoked", INVALID)
    assert web.get("/api/me", HTTP_AUTHORIZATION=bearer(second)["Authorization"]).status_code == 200
    assert web.post("/auth/logout", HTTP_AUTHORIZATION=bearer(second)["Authorization"]).status_code == 204
    assert web.get("/api/me", HTTP_AUTHORIZATION=bearer(second)["Authorization"]).json()["error"] == "token_revoked"
    tgdjango.end_sessions("Carol Smith")
    assert web.get("/api/me", HTTP_AUTHORIZATION=bearer(third)["Authorization"]).json()["error"] == "token_revoked"
    assert backend.client.sessions("Carol Smith") == []


def test_unavailable_is_503_never_the_view(backend: Backend, settings: Any) -> None:  # noqa: F811
    session = backend.client.start_session("grace")
    settings.TOKENGATE_CLIENT = backend.take_down()
    web = WebClient()
    answer = web.get("/api/me", HTTP_AUTHORIZATION=bearer(session)["Authorization"])
    assert (answer.status_code, answer.json()["error"], answer["Retry-After"]) == (503, "store_unavailable", "1")
    login = web.post("/login", b'{"user": "grace"}', content_type="application/json")
    assert (login.status_code, login.json()["error"]) == (503, "store_unavailable")
    assert web.get("/healthz").content == b"ok"
    with pytest.raises(Unavailable):
        tgdjango.client().start_session("grace")


def test_the_fake_replaces_the_real_service_in_a_projects_settings() -> None:
    fake = FakeTokenGate()
    with override_settings(TOKENGATE_CLIENT=fake):
        web = WebClient()
        assert web.get("/api/me", HTTP_AUTHORIZATION=fake.auth_headers("carol")["Authorization"]).json()["user"] == "carol"
        session = fake.mint("dave")
        fake.expire(session)
        assert web.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {session.access_token}").json()["error"] == "token_expired"
        session = fake.mint("dave")
        fake.revoke(session)
        assert web.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {session.access_token}").json()["error"] == "token_revoked"
        erin = fake.auth_headers("erin")["Authorization"]
        with fake.down():
            assert web.get("/api/me", HTTP_AUTHORIZATION=erin).status_code == 503
        assert web.get("/api/me", HTTP_AUTHORIZATION=erin).status_code == 200
    assert tgdjango.client() is not fake  # back to the settings' own TokenGate
