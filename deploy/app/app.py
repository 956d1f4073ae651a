#!/usr/bin/env python3
"""The sample app: a Flask app with its own users, every view guarded by TokenGate.

Its users live in its own SQLite table (passwords hashed with werkzeug.security); its login view
checks them and starts the session through TokenGate's service API. Every view is protected by
`tokengate_client.flask.TokenGate` unless marked `@public`:

    /app/            a page that uses /tokengate.js: each operation gets its token, a closed tab
                     clears the backend
    /app/api/notes   a JSON API (GET lists, POST adds)
    /app/report      a server-rendered view showing g.tokengate.user
    /app/login       public: the login form, checked against the app's own users
    /healthz         public
    anything else    a JSON echo of the request (what the deployment tests look at): method, path,
                     the X-Auth-User/X-Auth-Session identity, whether an Authorization header came;
                     `Cache-Control: no-store`, except under /cached/, which answers as a page a
                     shared cache may keep (`public, max-age=3600`)

Two ways to run it (APP_MODE):
    forward-auth  behind nginx auth_request: the identity nginx passes (X-Auth-User) is believed
                  from TOKENGATE_TRUSTED_PROXIES only; nginx routes /auth/* to TokenGate
    in-process    standalone: the extension asks TokenGate for every request and passes /auth/*
                  and /tokengate.js through to it (the default)

    app.py serve [--listen HOST:PORT] [--port-file FILE]     (waitress; port 0 picks a free one)
    app.py add-user NAME                                     (the password from standard input)

Settings from the environment: APP_DATABASE (SQLite file, default ./app-users.sqlite3), APP_MODE,
TOKENGATE_URL, TOKENGATE_ADMIN_URL, TOKENGATE_ADMIN_KEY or TOKENGATE_ADMIN_KEY_FILE,
TOKENGATE_TRUSTED_PROXIES, APP_LISTEN.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, g, jsonify, render_template, request
from werkzeug.security import check_password_hash, generate_password_hash

from tokengate_client import TokenGateError, Unavailable
from tokengate_client.flask import TokenGate, public

HERE = os.path.dirname(os.path.abspath(__file__))
FAILED_LOGIN_LIMIT = 10  # per username, in FAILED_LOGIN_WINDOW seconds
FAILED_LOGIN_WINDOW = 300
FAILED_LOGIN_NAMES = 10_000  # usernames whose failures are kept at once
ECHO_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def settings_from_environment() -> dict[str, Any]:
    key = os.environ.get("TOKENGATE_ADMIN_KEY")
    key_file = os.environ.get("TOKENGATE_ADMIN_KEY_FILE")
    if not key and key_file:
        with open(key_file) as handle:
            key = handle.read().strip()
    mode = os.environ.get("APP_MODE", "in-process")
    return {
        "DATABASE": os.environ.get("APP_DATABASE", os.path.abspath("app-users.sqlite3")),
        "APP_MODE": mode,
        "TOKENGATE_URL": os.environ.get("TOKENGATE_URL", "http://127.0.0.1:8080"),
        "TOKENGATE_ADMIN_URL": os.environ.get("TOKENGATE_ADMIN_URL", "http://127.0.0.1:9090"),
        "TOKENGATE_ADMIN_KEY": key,
        "TOKENGATE_TRUSTED_PROXIES": os.environ.get("TOKENGATE_TRUSTED_PROXIES", ""),
        # Behind nginx, /auth/* and /tokengate.js are routed to TokenGate by nginx itself.
        "TOKENGATE_PROXY_AUTH_ROUTES": mode != "forward-auth",
    }


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__, static_url_path="/app/static", static_folder="static", template_folder="templates")
    app.config.update(settings_from_environment())
    app.config.update(config or {})
    app.config["TOKENGATE_LOGIN_VIEW"] = "login"
    tokengate = TokenGate(app)
    users = UserTable(app.config["DATABASE"])
    failures = FailedLogins()
    notes: dict[str, list[str]] = {}
    notes_lock = threading.Lock()

    @app.get("/app/")
    def page():
        return render_template("page.html", user=g.tokengate.user)

    @app.get("/app/api/notes")
    def list_notes():
        with notes_lock:
            return jsonify(user=g.tokengate.user, notes=list(notes.get(g.tokengate.user, [])))

    @app.post("/app/api/notes")
    def add_note():
        text = (request.get_json(silent=True) or {}).get("text")
        if not isinstance(text, str) or not 0 < len(text) <= 500:
            return jsonify(error="invalid_request", message="send {\"text\": \"...\"}"), 400
        with notes_lock:
            notes.setdefault(g.tokengate.user, []).append(text)
        return jsonify(saved=True), 201

    @app.get("/app/report")
    def report():
        with notes_lock:
            count = len(notes.get(g.tokengate.user, []))
        return render_template("report.html", user=g.tokengate.user, session_id=g.tokengate.session_id, notes=count)

    @app.route("/app/login", methods=["GET", "POST"])
    @public
    def login():
        target = safe_next(request.values.get("next"))
        if request.method == "GET":
            return render_template("login.html", next=target, error=None)
        if not same_origin():
            abort(403)
        name = (request.form.get("username") or "").strip().lower()
        password = request.form.get("password") or ""
        if failures.blocked(name):
            return render_template("login.html", next=target, error="Too many failed logins; try again later."), 429
        if not users.check(name, password):
            failures.count(name)
            return render_template("login.html", next=target, error="Unknown user or wrong password."), 401
        failures.clear(name)
        response = app.make_response("")
        try:
            session = tokengate.start_session(name, response)
        except (Unavailable, TokenGateError):
            return render_template("login.html", next=target, error="Sign-in is unavailable; try again."), 503
        response.set_data(render_template("signed_in.html", next=target, user=name, grant=session.to_dict()))
        return response

    @app.get("/healthz")
    @public
    def health():
        return jsonify(status="ok")

    @app.route("/", defaults={"path": ""}, methods=ECHO_METHODS)
    @app.route("/<path:path>", methods=ECHO_METHODS)
    def echo(path: str):
        # What the deployment tests look at: the request as it reached the app.
        return jsonify(
            app="sample",
            method=request.method,
            path=request.full_path if request.query_string else request.path,
            x_auth_user=request.headers.get("X-Auth-User"),
            x_auth_session=request.headers.get("X-Auth-Session"),
            authorization_seen="Authorization" in request.headers,
            user=g.tokengate.user,
        ), 200, {"Cache-Control": "public, max-age=3600" if path.startswith("cached/") else "no-store"}

    app.json.compact = False  # the echo's "app": "sample" as the deployment tests read it
    return app


def safe_next(value: str | None) -> str:
    """Only a path of this site: never an open redirect. Browsers drop tabs and newlines from a URL
    and read a backslash as a slash (``/<TAB>/evil.example`` becomes ``//evil.example``), so only
    printable ASCII without a backslash is taken, and then only a path starting with one slash."""
    if (not value or len(value) > 2048 or not value.startswith("/") or value.startswith("//")
            or any(not "!" <= c <= "~" or c == "\\" for c in value)):
        return "/app/"
    return value


def same_origin() -> bool:
    """The login form must come from this site (SameSite cookies do the rest)."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


class UserTable:
    """The app's own users: SQLite, passwords hashed by werkzeug.security (scrypt)."""

    def __init__(self, path: str) -> None:
        self.path = path
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS users (name TEXT PRIMARY KEY, password_hash TEXT NOT NULL)")
        # An unknown name is checked against a hash too, so both failures take as long.
        self._dummy = generate_password_hash(os.urandom(16).hex())

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5)

    def add(self, name: str, password: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO users VALUES (?, ?)", (name.lower(), generate_password_hash(password)))

    def check(self, name: str, password: str) -> bool:
        with self._connect() as db:
            row = db.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()
        matched = check_password_hash(row[0] if row else self._dummy, password)
        return bool(row) and matched


class FailedLogins:
    """A simple per-username failure counter for the app's own passwords (one process). Bounded
    whatever names are tried: a name is kept by its first 64 characters with at most
    FAILED_LOGIN_LIMIT times, only once it failed, and of at most ``names`` names the one that
    failed least recently is forgotten first."""

    def __init__(self, names: int = FAILED_LOGIN_NAMES) -> None:
        self._lock = threading.Lock()
        self._names = names
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def _recent(self, key: str) -> list[float]:
        cutoff = time.monotonic() - FAILED_LOGIN_WINDOW
        return [at for at in self._failures.get(key, ()) if at > cutoff]

    def blocked(self, name: str) -> bool:
        with self._lock:
            return len(self._recent(name[:64])) >= FAILED_LOGIN_LIMIT

    def count(self, name: str) -> None:
        key = name[:64]
        with self._lock:
            recent = self._recent(key)[-(FAILED_LOGIN_LIMIT - 1):] + [time.monotonic()]
            self._failures.pop(key, None)
            self._failures[key] = recent
            while len(self._failures) > self._names:
                self._failures.popitem(last=False)

    def clear(self, name: str) -> None:
        with self._lock:
            self._failures.pop(name[:64], None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._failures)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the app with waitress")
    serve.add_argument("--listen", default=os.environ.get("APP_LISTEN", "127.0.0.1:8000"))
    serve.add_argument("--port-file", help="write the bound port here once listening")
    add = commands.add_parser("add-user", help="add or replace a user (password from standard input)")
    add.add_argument("name")
    args = parser.parse_args()
    if args.command == "add-user":
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            sys.exit("app.py: no password on standard input")
        UserTable(settings_from_environment()["DATABASE"]).add(args.name, password)
        print(f"user {args.name.lower()} written")
        return
    import waitress

    host, _, port = args.listen.rpartition(":")
    server = waitress.create_server(create_app(), host=host or "0.0.0.0", port=int(port), threads=8)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as handle:
            handle.write(f"{server.effective_port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"sample app listening on http://{host}:{server.effective_port}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: server.close() or sys.exit(0))
    try:
        server.run()
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
