"""schemathesis fuzzes both listeners of the real binary from docs/openapi.yaml, on a real
redis-server: examples, coverage (the document's boundaries, and values just outside them) and
random positive and negative data for every operation, API_FUZZ_EXAMPLES per operation and mode;
with the defaults (tokens in the Authorization header), in cookie mode (tokens in the cookie, with
the CSRF token echoed) and with per-request rotation (every protected answer carries X-Next-Token).

Each request is authenticated as its operation needs: the service API's with the service key, the
public listener's protected and auth routes with a live token made for that request (a fresh session
from the service API, so that a fuzzed logout cannot starve the next request), sent in the header or,
for the beacon routes now and then, in the body; one fuzzed login in four carries alice's right
password. Every answer must be one the document allows (status, content type, body schema, headers
such as `WWW-Authenticate`, `Retry-After`, `X-Auth-User`), and none a 5xx: Redis is up, so the
document's 503 must not happen either. Afterwards every key in Redis must be one the README's key
layout allows, by name, type and TTL, and the server's log must hold no unexpected error."""
import json
import os
import re
import urllib.request
import zlib

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import conftest
from conftest import DOCUMENT, PASSWORD, TOKEN_TTL

EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "20"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]
BEACONS = ("/auth/logout", "/auth/close")
ROTATING = ("/api/me", "/auth/verify", "/auth/sessions", "/auth/sessions/{sid}")
PUBLIC = ("/healthz", "/readyz", "/metrics", "/.well-known/jwks.json", "/", "/tokengate.js", "/demo.js", "/auth/login")

config = SchemathesisConfig.from_dict({
    "generation": {"mode": "all", "max-examples": EXAMPLES},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True},
               "stateful": {"enabled": False}},
})
schema = schemathesis.openapi.from_path(DOCUMENT, config=config)


def fresh_session(api, user="fuzz"):
    """A new session of `user` from the service API: (token, CSRF token or None, session id)."""
    request = urllib.request.Request(api.admin + "/admin/v1/sessions", method="POST",
                                     headers={"Authorization": f"Bearer {api.service_key}",
                                              "Content-Type": "application/json"},
                                     data=json.dumps({"user": user}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        api.requests += 1
        grant = json.loads(response.read())
    cookies = dict(value.split(";")[0].split("=", 1) for value in grant.get("set_cookie", []))
    return grant["access_token"], cookies.get("__Host-tg_csrf"), grant["session_id"]


def pick(value, one_in):
    """True for one value in `one_in`, the same in every run (hypothesis is derandomized too)."""
    return zlib.crc32(repr(value).encode()) % one_in == 0


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_every_answer_is_as_documented(case, api):
    path = case.operation.path
    headers = {}
    if path.startswith("/admin/"):
        base = api.admin
        headers["Authorization"] = f"Bearer {api.service_key}"
        user = (case.path_parameters or {}).get("user")
        if "sid" in (case.path_parameters or {}) and is_user_id(user) and pick(case.path_parameters, 2):
            case.path_parameters["sid"] = fresh_session(api, user)[2]   # one that exists: 204
    else:
        base = api.public
        if path not in PUBLIC:
            token, csrf, sid = fresh_session(api)
            if "sid" in (case.path_parameters or {}) and pick(case.path_parameters, 2):
                case.path_parameters["sid"] = sid   # the token's own session: 204
            in_body = path in BEACONS and case.body is not None and pick(case.body, 3)
            if in_body and isinstance(case.body, dict) and "token" in case.body:
                case.body["token"] = token
            elif in_body and isinstance(case.body, str) and case.media_type == "text/plain":
                case.body = token
            elif api.mode == "cookie":
                # The cookie alone, with the CSRF token echoed (the fuzzer's Origin and
                # Sec-Fetch-Site may still fail the origin check: 403, as documented).
                headers["Cookie"] = f"__Host-tg_token={token}; __Host-tg_csrf={csrf}"
                # The fuzzer's own Authorization header (it would win over the cookie) and token
                # cookie (a second one: 401) are kept in one case in four.
                if case.headers and "Authorization" in case.headers and not pick(case.headers, 4):
                    del case.headers["Authorization"]
                if case.cookies and not pick(case.cookies, 4):
                    case.cookies = {}
                headers["X-CSRF-Token"] = csrf
            else:
                headers["Authorization"] = f"Bearer {token}"
        elif path == "/auth/login" and isinstance(case.body, dict) and pick(case.body, 4):
            case.body.update(username="alice", password=PASSWORD)
    api.requests += 1
    response = case.call_and_validate(base_url=base, headers=headers, checks=CHECKS, timeout=30)
    if api.mode == "rotation" and path in ROTATING and response.status_code < 300:
        assert response.headers.get("x-next-token"), "per-request rotation: a successor on every protected answer"
    key = (f"{case.method} {path}", response.status_code)
    api.statuses[key] = api.statuses.get(key, 0) + 1


def is_user_id(user):
    """The README's "User ids": 1-255 bytes of UTF-8 without control characters, taken as given."""
    if not isinstance(user, str) or re.search("[\x00-\x1f\x7f-\x9f\ud800-\udfff]", user):
        return False
    return 1 <= len(user.encode()) <= 255


USER = r"\{(?:[A-Za-z0-9._@+-]|%[0-9A-F]{2}){1,255}\}"   # the id in the hash tag, other bytes %XX-encoded
ID = r"[A-Za-z0-9_-]{22,64}"
LAYOUT = [   # the README's "Redis key layout": name, type, longest TTL (seconds)
    (rf"tg:{USER}:s:{ID}", "hash", TOKEN_TTL),
    (rf"tg:{USER}:t:{ID}", "string", TOKEN_TTL),
    (rf"tg:{USER}:sessions", "zset", TOKEN_TTL + 1),
    (rf"tg:{USER}:ended:{ID}", "zset", TOKEN_TTL + 1),
    (r"tg:rl:ua:[0-9a-f]{20}", "hash", 300),
    (r"tg:rl:u:[0-9a-f]{20}", "hash", 300),
    (r"tg:rl:ip:[0-9a-fA-F.:/]{1,64}", "hash", 300),
    (r"tg:rl:sk:[0-9a-fA-F.:/]{1,64}", "string", 300),
]
SESSION_FIELDS = re.compile(rf"created|seen|ua|ip|n|via|cred|t:{ID}")
LIMIT_FIELDS = re.compile(r"f|i|iat")
TOKEN_VALUE = re.compile(r"1|\d{13} [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")   # live, or rotated: "<ms> <successor>"


def test_the_keyspace_holds_only_what_the_key_layout_allows(api):
    """After the fuzzing: every key matches a row of the key layout, with its type and a TTL no
    longer than the row allows (never none); a session hash holds only the documented fields, a
    failed-login counter only `f`, `i` and `iat`, a token key `1` or `<rotated-at ms> <successor>`."""
    client = api.redis.client()
    try:
        keys = client.keys("*")
        assert keys, "the fuzzing left no session at all: the authenticated routes were not reached"
        wrong = []
        for key in keys:
            name = key.decode() if isinstance(key, bytes) else key
            kind = client("TYPE", name)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            ttl = client("PTTL", name)
            if kind == "none":
                continue   # expired meanwhile
            row = next((row for row in LAYOUT if re.fullmatch(row[0], name)), None)
            if row is None:
                wrong.append(f"{name!r}: not in the key layout")
            elif kind != row[1]:
                wrong.append(f"{name!r}: a {kind}, not a {row[1]}")
            elif not 0 < ttl <= row[2] * 1000:
                wrong.append(f"{name!r}: PTTL {ttl}, not within (0, {row[2]} s]")
            elif row[1] == "hash":
                allowed = SESSION_FIELDS if ":s:" in name else LIMIT_FIELDS
                wrong += [f"{name!r}: field {field!r}" for field in client("HKEYS", name) if not allowed.fullmatch(field)]
            elif ":t:" in name:
                value = client("GET", name)
                if value is not None and not TOKEN_VALUE.fullmatch(value):
                    wrong.append(f"{name!r}: value {value[:40]!r}")
        assert not wrong, "\n".join(wrong[:20])
    finally:
        client.close()


def test_the_server_logged_no_unexpected_error(api):
    with open(api.gate.log_path, errors="replace") as handle:
        log = handle.read()
    assert "unexpected error" not in log
    assert api.gate.alive()
    conftest.SENT[api.mode] = api.requests
    print(f"\napi ({api.mode}): the fuzzer sent {api.requests} requests; answers by operation and status:")
    for (operation, status), count in sorted(api.statuses.items()):
        print(f"  {operation} {status}: {count}")
