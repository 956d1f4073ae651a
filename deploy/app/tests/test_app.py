"""The sample Flask app, standalone (in-process guard), against the real tokengate and Redis."""

from __future__ import annotations

import json
import os
import re
import sqlite3

from harness import TokenGate, http

import app as sample
from tokengate_client import Client

PASSWORD = "carol-Pa55word"


def start(tokengate: TokenGate, serve, tmp_path) -> tuple[str, str]:  # noqa: ANN001
    database = os.path.join(tmp_path, "users.sqlite3")
    sample.UserTable(database).add("Carol", PASSWORD)
    app = sample.create_app({
        "DATABASE": database, "TOKENGATE_URL": tokengate.url, "TOKENGATE_ADMIN_URL": tokengate.admin_url,
        "TOKENGATE_ADMIN_KEY": tokengate.admin_key, "TOKENGATE_PROXY_AUTH_ROUTES": True,
    })
    return serve(app), database


def login(base: str, user: str, password: str):
    return http.request("POST", base + "/app/login", fields={"username": user, "password": password, "next": "/app/report"},
                        encode_multipart=False, headers={"User-Agent": "pytest-browser/1", "Origin": base}, redirect=False)


def grant_of(page: bytes) -> dict:
    block = re.search(rb'<script type="application/json" id="grant"[^>]*>(.*?)</script>', page, re.S)
    assert block, page[:500]
    return json.loads(block.group(1))


def test_every_view_is_protected_by_default(tokengate: TokenGate, serve, tmp_path) -> None:  # noqa: ANN001
    base, _ = start(tokengate, serve, tmp_path)
    app = sample.create_app({"DATABASE": os.path.join(tmp_path, "x.sqlite3"), "TOKENGATE_URL": tokengate.url})
    checked = 0
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or rule.endpoint.startswith("_tokengate.") or getattr(view, "_tokengate_public", False):
            continue
        path = rule.rule.replace("<path:path>", "some/page")
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            response = http.request(method, base + path, redirect=False)
            assert response.status == 401, (method, path, response.status)
            checked += 1
    assert checked >= 8
    # A browser without a session is sent to the login page instead.
    page = http.request("GET", base + "/app/report", headers={"Accept": "text/html"}, redirect=False)
    assert page.status == 302 and "/app/login?next=/app/report" in page.headers["Location"]
    assert http.request("GET", base + "/app/login").status == 200
    assert http.request("GET", base + "/healthz").status == 200


def test_login_with_the_apps_own_users(tokengate: TokenGate, serve, redis, tmp_path) -> None:  # noqa: ANN001
    base, database = start(tokengate, serve, tmp_path)
    wrong = login(base, "carol", "wrong")
    assert wrong.status == 401 and b"wrong password" in wrong.data
    assert login(base, "nobody", PASSWORD).status == 401
    assert redis.keys(f"{tokengate.prefix}{{carol}}*") == [] and redis.keys(f"{tokengate.prefix}{{nobody}}*") == []

    signed_in = login(base, "CAROL", PASSWORD)
    assert signed_in.status == 200 and signed_in.headers["Cache-Control"] == "no-store"
    grant = grant_of(signed_in.data)
    token = grant["access_token"]
    sessions = Client(tokengate.url, tokengate.admin_url, tokengate.admin_key).sessions("carol")
    assert [(s.session_id, s.user_agent, s.ip) for s in sessions] == [(grant["session_id"], "pytest-browser/1", "127.0.0.1")]

    report = http.request("GET", base + "/app/report", headers={"Authorization": f"Bearer {token}"})
    assert report.status == 200 and b'<strong id="report-user">carol</strong>' in report.data
    notes = http.request("POST", base + "/app/api/notes", body=b'{"text":"hello"}',
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert notes.status == 201
    listed = json.loads(http.request("GET", base + "/app/api/notes", headers={"Authorization": f"Bearer {token}"}).data)
    assert listed == {"user": "carol", "notes": ["hello"]}

    assert http.request("POST", base + "/auth/logout", headers={"Authorization": f"Bearer {token}"}).status == 204
    assert http.request("GET", base + "/app/report", headers={"Authorization": f"Bearer {token}"}).status == 401
    assert redis.keys(f"{tokengate.prefix}{{carol}}*") == []

    # The app's table holds hashes, never the password.
    with sqlite3.connect(database) as db:
        (stored,) = db.execute("SELECT password_hash FROM users WHERE name = 'carol'").fetchone()
    assert PASSWORD not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_login_from_another_site_is_refused(tokengate: TokenGate, serve, tmp_path) -> None:  # noqa: ANN001
    base, _ = start(tokengate, serve, tmp_path)
    response = http.request("POST", base + "/app/login", fields={"username": "carol", "password": PASSWORD},
                            encode_multipart=False, headers={"Origin": "https://evil.example"}, redirect=False)
    assert response.status == 403


def test_next_is_never_an_open_redirect() -> None:
    assert sample.safe_next("//evil.example/x") == "/app/"
    assert sample.safe_next("https://evil.example/") == "/app/"
    assert sample.safe_next("/\\evil.example") == "/app/"
    assert sample.safe_next("/app/report?x=1") == "/app/report?x=1"
    # Browsers drop tabs and newlines from a URL and read a backslash as a slash.
    for trick in ("/\t/evil.example/", "/\n/evil.example/", "/\r\n/evil.example", "\t//evil.example", "/ /evil.example",
                  "/\\/evil.example", "/\x00/evil.example", "/\u3000/evil.example", "/" + "a" * 5000):
        assert sample.safe_next(trick) == "/app/", repr(trick)


def test_next_with_a_tab_never_leaves_the_site(tokengate: TokenGate, serve, tmp_path) -> None:  # noqa: ANN001
    base, _ = start(tokengate, serve, tmp_path)
    for query in ("next=/%09/evil.example/", "next=/%0a/evil.example/", "next=/%5C/evil.example/"):
        response = http.request("GET", base + "/app/login?" + query, redirect=False)
        assert response.status == 200
        assert b"evil.example" not in response.data, query


def test_failed_logins_with_ever_new_names_stay_bounded() -> None:
    failures = sample.FailedLogins(names=100)
    for index in range(300):  # 400 KB names: the old table kept every one whole (120 MB here)
        name = f"{index:05d}" + "x" * 400_000
        assert not failures.blocked(name)
        failures.count(name)
    assert len(failures) == 100
    assert sum(len(key) for key in failures._failures) <= 100 * 64
    # Asking about a name keeps nothing; the limit still holds for a name under attack.
    failures.blocked("never-failed")
    assert len(failures) == 100
    for _ in range(sample.FAILED_LOGIN_LIMIT):
        assert not failures.blocked("carol")
        failures.count("carol")
    assert failures.blocked("carol")
    assert len(failures._failures["carol"]) == sample.FAILED_LOGIN_LIMIT
    failures.clear("carol")
    assert not failures.blocked("carol")
