"""The API suite's processes: a private redis-server and one `tokengate serve` with its service API,
both on free ports of 127.0.0.1 (the shared harness in tests/harness starts them), for the whole run.

The instance runs with the README's defaults, 127.0.0.1 as a trusted proxy, a users file with
`alice` (bcrypt cost 4, so that fuzzed logins stay quick) and one service key (`fuzz`). `api` hands
the tests the two listeners' URLs, the service key, a Redis client and the fuzzer's request count.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from harness.processes import free_port, stop_all  # noqa: E402
from harness.redis import RedisServer  # noqa: E402
from harness.tokengate import Credentials, TokenGate  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOCUMENT = os.path.join(ROOT, "docs", "openapi.yaml")
PASSWORD = "alice-Pa55word"
TOKEN_TTL = 30


class Api:
    """What a test needs of the running instance."""

    def __init__(self, mode, public, admin, service_key, redis, gate):
        self.mode = mode           # "bearer"; "cookie": cookie mode, requests authenticated by the cookie; "rotation"
        self.public = public
        self.admin = admin
        self.service_key = service_key
        self.redis = redis
        self.gate = gate
        self.requests = 0          # requests the fuzzer sent (each case's call, and the set-up calls it made)
        self.statuses = {}         # (operation, status) -> count


@pytest.fixture(scope="session", params=["bearer", "cookie", "rotation"])
def api(request):
    """The instance: with the defaults ("bearer"), in cookie mode ("cookie"), or with per-request
    rotation ("rotation", tokens in the header as with the defaults)."""
    mode = request.param
    binary = os.environ.get("TOKENGATE_BINARY", os.path.join(ROOT, ".build", "debug", "tokengate"))
    work = tempfile.mkdtemp(prefix=f"tokengate-api-{mode}-")
    redis = RedisServer(work, "api")
    assert redis.start(), "redis-server did not start"
    gate = None
    try:
        credentials = Credentials.make(binary, work, {"alice": PASSWORD})
        keys_file = os.path.join(work, "service-keys")
        service_key = subprocess.run([binary, "admin-key", "generate", "fuzz", "--keys-file", keys_file],
                                     capture_output=True, text=True, check=True).stdout.strip()
        admin_port = free_port()
        gate = TokenGate(binary, work, "api", credentials, redis.url, log_level="info", env={
            "TOKENGATE_ADMIN_LISTEN": f"127.0.0.1:{admin_port}", "TOKENGATE_ADMIN_KEYS_FILE": keys_file,
            "TOKENGATE_TOKEN_TTL": str(TOKEN_TTL),
            # The fuzzer's X-Forwarded-For is believed, so that its values reach the address parsing
            # and the per-address keys.
            "TOKENGATE_TRUSTED_PROXIES": "127.0.0.1", "TOKENGATE_COOKIE": "on" if mode == "cookie" else "off",
            "TOKENGATE_ROTATION": "per-request" if mode == "rotation" else "off"})
        assert gate.start(), f"tokengate did not start: {gate.tail()}"
        admin = f"http://127.0.0.1:{admin_port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(admin + "/", timeout=1)
            except urllib.error.HTTPError:
                break      # it answers (401 without a key)
            except OSError:
                assert time.monotonic() < deadline, f"the service API does not answer: {gate.tail()}"
                time.sleep(0.05)
        yield Api(mode, gate.origin, admin, service_key, redis, gate)
        shutil.rmtree(work, ignore_errors=True)
    finally:
        if gate is not None:
            gate.stop()
        redis.stop()
        stop_all()


SENT = {}   # mode -> requests the fuzzer sent


def pytest_terminal_summary(terminalreporter):
    for mode, count in SENT.items():
        terminalreporter.write_line(f"api: the fuzzer sent {count} requests to the {mode} instance")
