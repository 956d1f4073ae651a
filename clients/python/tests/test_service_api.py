"""The service API and Client.verify against the real tokengate and Redis: refused calls change
nothing in Redis, the rate limit on wrong keys, the admin routes absent from the public listener,
and each verify failure as its own exception."""

from __future__ import annotations

import json

import pytest
from harness import TokenGate, http

from tokengate_client import Client, InvalidRequest, InvalidToken, MissingToken, RateLimited, TokenRevoked

WRONG_KEY = "tgsk_" + "W" * 43


def client_of(instance: TokenGate, key: str | None = None) -> Client:
    return Client(instance.url, admin_url=instance.admin_url, admin_key=key or instance.admin_key)


def state(redis, instance: TokenGate) -> dict[str, str]:  # noqa: ANN001
    """Every key of the instance but its rate-limit counters, with its type and value."""
    found = {}
    for key in redis.keys(f"{instance.prefix}*"):
        if key.startswith(f"{instance.prefix}rl:"):
            continue
        kind = redis.cli("TYPE", key)
        command = {"hash": "HGETALL", "string": "GET", "zset": "ZRANGE"}[kind]
        found[key] = kind + " " + redis.cli(command, key, *(["0", "-1", "WITHSCORES"] if kind == "zset" else []))
    return found


def admin(instance: TokenGate, method: str, path: str, key: str | None, body: bytes | None = None,
          content_type: str | None = "application/json"):  # noqa: ANN201
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if content_type and body is not None:
        headers["Content-Type"] = content_type
    return http.request(method, instance.admin_url + path, headers=headers, body=body, redirect=False)


def test_refused_service_calls_change_nothing(start_tokengate, redis) -> None:  # noqa: ANN001
    # Keys that outlive the test (the tests' 3 s TTL ran out under load, between SCAN and TYPE).
    tokengate = start_tokengate({"TOKENGATE_TOKEN_TTL": "60"})
    live = client_of(tokengate).start_session("kim", user_agent="Firefox/140", ip="203.0.113.9")
    before = state(redis, tokengate)
    assert any(":s:" in key for key in before)
    key = tokengate.admin_key
    user_body = json.dumps({"user": "lena"}).encode()
    cases = [
        ("no key", "POST", "/admin/v1/sessions", None, user_body, "application/json", 401, "missing_token"),
        ("no key, DELETE", "DELETE", "/admin/v1/users/kim/sessions", None, None, None, 401, "missing_token"),
        ("wrong key", "POST", "/admin/v1/sessions", WRONG_KEY, user_body, "application/json", 401, "invalid_token"),
        ("wrong key, DELETE", "DELETE", "/admin/v1/users/kim/sessions", WRONG_KEY, None, None, 401, "invalid_token"),
        ("a user token", "POST", "/admin/v1/sessions", live.access_token, user_body, "application/json", 401,
         "invalid_token"),
        ("a user token, DELETE", "DELETE", f"/admin/v1/users/kim/sessions/{live.session_id}", live.access_token,
         None, None, 401, "invalid_token"),
        ("not JSON", "POST", "/admin/v1/sessions", key, b"user=lena", "application/x-www-form-urlencoded", 400,
         "invalid_request"),
        ("broken JSON", "POST", "/admin/v1/sessions", key, b'{"user": "lena"', "application/json", 400,
         "invalid_request"),
        ("no user", "POST", "/admin/v1/sessions", key, b'{"user_agent": "x"}', "application/json", 400,
         "invalid_request"),
        ("user not a string", "POST", "/admin/v1/sessions", key, b'{"user": 42}', "application/json", 400,
         "invalid_request"),
        ("empty user", "POST", "/admin/v1/sessions", key, b'{"user": ""}', "application/json", 400,
         "invalid_request"),
        ("a control character", "POST", "/admin/v1/sessions", key, b'{"user": "Lena\\nSmith"}', "application/json",
         400, "invalid_request"),
        ("a C1 control character", "POST", "/admin/v1/sessions", key, b'{"user": "Lena\\u0085"}', "application/json",
         400, "invalid_request"),
        ("user too long", "POST", "/admin/v1/sessions", key, json.dumps({"user": "l" * 256}).encode(),
         "application/json", 400, "invalid_request"),
        ("user too long in bytes", "POST", "/admin/v1/sessions", key, json.dumps({"user": "\u00e9" * 128}).encode(),
         "application/json", 400, "invalid_request"),
        ("a control character in the path", "GET", "/admin/v1/users/kim%0A/sessions", key, None, None, 400,
         "invalid_request"),
        ("not UTF-8 in the path", "DELETE", "/admin/v1/users/%FF/sessions", key, None, None, 400, "invalid_request"),
        ("a JSON array", "POST", "/admin/v1/sessions", key, b'["lena"]', "application/json", 400, "invalid_request"),
        ("an unknown session", "DELETE", "/admin/v1/users/kim/sessions/AAAAAAAAAAAAAAAAAAAAAA", key, None, None, 404,
         "not_found"),
        ("an unknown path", "GET", "/admin/v1/nothing", key, None, None, 404, "not_found"),
        # An empty or dot session id must not become the path that ends every session.
        ("an empty session id", "DELETE", "/admin/v1/users/kim/sessions/", key, None, None, 400, "invalid_request"),
        ("a dot session id", "DELETE", "/admin/v1/users/kim/sessions/.", key, None, None, 400, "invalid_request"),
        ("a dot-dot session id", "DELETE", "/admin/v1/users/kim/sessions/..", key, None, None, 400, "invalid_request"),
        ("an empty user", "DELETE", "/admin/v1/users//sessions", key, None, None, 400, "invalid_request"),
    ]
    for name, method, path, sent_key, body, content_type, status, code in cases:
        answer = admin(tokengate, method, path, sent_key, body, content_type)
        assert (answer.status, json.loads(answer.data)["error"]) == (status, code), name
        if status == 401:
            assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="tokengate"'), name
        assert state(redis, tokengate) == before, name
    # The only key a refused call writes is the wrong-key counter of the caller's address.
    assert [k for k in redis.keys(f"{tokengate.prefix}*") if k.startswith(f"{tokengate.prefix}rl:")] == [
        f"{tokengate.prefix}rl:sk:127.0.0.1"
    ]
    assert client_of(tokengate).verify({"Authorization": f"Bearer {live.access_token}"}).user == "kim"


def test_wrong_keys_are_rate_limited_but_the_right_key_is_not(tokengate: TokenGate) -> None:
    wrong = client_of(tokengate, WRONG_KEY)
    for _ in range(10):
        with pytest.raises(InvalidToken):
            wrong.sessions("kim")
    with pytest.raises(RateLimited) as limited:
        wrong.start_session("kim")
    assert limited.value.status == 429 and limited.value.retry_after and limited.value.retry_after > 0
    assert client_of(tokengate).sessions("kim") == []  # a right key is never refused for others' failures


def test_the_public_listener_has_no_admin_routes(tokengate: TokenGate) -> None:
    user = client_of(tokengate).start_session("max")
    for method, path in (("POST", "/admin/v1/sessions"), ("GET", "/admin/v1/users/max/sessions"),
                         ("DELETE", "/admin/v1/users/max/sessions")):
        for sent, status, code in ((None, 401, "missing_token"), (tokengate.admin_key, 401, "invalid_token"),
                                   (user.access_token, 404, "not_found")):
            headers = {"Authorization": f"Bearer {sent}"} if sent else {}
            answer = http.request(method, tokengate.url + path, headers=headers, body=b'{"user":"max"}' if method == "POST"
                                  else None)
            assert (answer.status, json.loads(answer.data)["error"]) == (status, code), (method, path, status)
    assert [s.session_id for s in client_of(tokengate).sessions("max")] == [user.session_id]


def test_verify_names_each_failure(tokengate: TokenGate) -> None:
    client = client_of(tokengate)
    with pytest.raises(MissingToken) as missing:
        client.verify({})
    assert missing.value.headers["www-authenticate"] == 'Bearer realm="tokengate"'
    with pytest.raises(InvalidToken) as invalid:
        client.verify({"authorization": "Bearer not.a.token"})
    assert 'error="invalid_token"' in invalid.value.headers["www-authenticate"]
    session = client.start_session("Nina")
    identity = client.verify({"AUTHORIZATION": f"Bearer {session.access_token}"})
    assert (identity.user, identity.session_id, identity.next_token, identity.set_cookie) == (
        "Nina", session.session_id, None, ())
    assert http.request("POST", tokengate.url + "/auth/logout",
                        headers={"Authorization": f"Bearer {session.access_token}"}).status == 204
    with pytest.raises(TokenRevoked):
        client.verify({"Authorization": f"Bearer {session.access_token}"})


def test_end_session_refuses_empty_and_dot_ids(tokengate: TokenGate, redis) -> None:  # noqa: ANN001
    client = client_of(tokengate)
    live = client.start_session("nora")
    before = state(redis, tokengate)
    for session_id in ("", ".", ".."):
        with pytest.raises(InvalidRequest) as refused:
            client.end_session("nora", session_id)
        assert refused.value.status == 400, repr(session_id)
        assert state(redis, tokengate) == before, repr(session_id)
    assert [s.session_id for s in client.sessions("nora")] == [live.session_id]


def test_the_user_agent_is_capped_in_bytes(tokengate: TokenGate) -> None:
    # One grapheme cluster of 2,000 combining marks is "one character", and 4 KB.
    agent = "e" + "\u0301" * 2000
    body = json.dumps({"user": "uma", "user_agent": agent}, ensure_ascii=False).encode()
    assert admin(tokengate, "POST", "/admin/v1/sessions", tokengate.admin_key, body).status == 200
    [listed] = client_of(tokengate).sessions("uma")
    stored = listed.user_agent.encode()
    assert len(stored) <= 256 and agent.encode().startswith(stored) and len(stored) >= 255, len(stored)


def test_sessions_lists_what_they_were_started_with(tokengate: TokenGate) -> None:
    client = client_of(tokengate)
    plain = client.start_session("olga")
    described = client.start_session("olga", user_agent="Mozilla/5.0 (X11) Firefox/140", ip="2001:db8::7")
    assert client.sessions("Olga") == [] and client.sessions("OLGA") == []  # ids are case-sensitive
    listed = {s.session_id: s for s in client.sessions("olga")}
    assert set(listed) == {plain.session_id, described.session_id}
    assert (listed[described.session_id].user_agent, listed[described.session_id].ip) == (
        "Mozilla/5.0 (X11) Firefox/140", "2001:db8::7")
    assert not listed[plain.session_id].user_agent and not listed[plain.session_id].ip
    for info in listed.values():
        assert 0 < info.expires_in <= 3 and info.created_at.endswith("Z") and info.current is False
    client.end_session("olga", plain.session_id)
    assert [s.session_id for s in client.sessions("olga")] == [described.session_id]


APP_IDS = [
    "Carol Smith", "dave+tag@example.com", "Kate", "\u212aate", "kate", "a" * 65, "Zo\u00eb", "\u540d\u524d", "{x}", "x",
    "a/b", " padded ", "UTF-8''x", "e\u0301", "\u00e9", "100%", "\u00e9" * 127 + "x",
    ".", "..",   # ids, not dot segments: the client sends them as %2E (a URL would drop them, or the service refuse them)
]


def test_app_ids_round_trip_exactly(tokengate: TokenGate, redis) -> None:  # noqa: ANN001
    """Every id as the app gave it: the identity verify returns, the listing, ending; byte-distinct ids (Kate and
    Kelvin-sign Kate, NFC and NFD) are distinct users; an id's keys share one hash tag, the encoded id."""
    client = client_of(tokengate)
    started = {user: client.start_session(user) for user in APP_IDS}
    for user, session in started.items():
        identity = client.verify({"Authorization": f"Bearer {session.access_token}"})
        assert (identity.user, identity.session_id) == (user, session.session_id), repr(user)
        assert [s.session_id for s in client.sessions(user)] == [session.session_id], repr(user)
        # Its keys sit under the encoded id, the one {...} of each key: Redis Cluster hashes the whole id.
        keys = [key for key in redis.keys(f"{tokengate.prefix}*") if key.startswith(f"{tokengate.prefix}{{{_key_tag(user)}}}:")]
        assert keys and all(key.count("{") == 1 and key.count("}") == 1 for key in keys), repr(user)
    client.end_sessions("Kate")
    assert client.sessions("Kate") == []
    assert [s.session_id for s in client.sessions("\u212aate")] == [started["\u212aate"].session_id]
    assert [s.session_id for s in client.sessions("kate")] == [started["kate"].session_id]
    client.end_session("{x}", started["{x}"].session_id)
    assert client.sessions("{x}") == [] and len(client.sessions("x")) == 1


def _key_tag(user: str) -> str:
    """README's key encoding: bytes of [A-Za-z0-9._@+-] verbatim, every other byte %XX."""
    keep = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@+-"
    return "".join(chr(b) if b in keep else f"%{b:02X}" for b in user.encode())
