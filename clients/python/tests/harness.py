"""Real processes for the tests: redis-server on a free port, the tokengate binary with
its service API, and Flask apps served by waitress on free ports of 127.0.0.1."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Callable
from urllib.parse import urlsplit

import pytest
import urllib3
import waitress

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
BINARY = os.environ.get("TOKENGATE_BINARY") or os.path.join(ROOT, ".build", "debug", "tokengate")
TTL = 3
http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))


def free_port() -> int:
    """A free port below the ephemeral range, never 6379-6399 (other Redis servers live there)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def call(base: str, method: str, path: str, token: str | None = None, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> urllib3.BaseHTTPResponse:
    """One request to an app under test (no redirects followed), with a bearer token when given."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    return http.request(method, base + path, headers=all_headers, body=body, redirect=False)


def error_code(response: urllib3.BaseHTTPResponse) -> str | None:
    """The contract's error code of a JSON refusal, or None."""
    try:
        return str(json.loads(response.data).get("error"))
    except (ValueError, AttributeError):
        return None


def raw_request(base: str, head: bytes) -> int:
    """Sends ``head`` (a request line and headers, as bytes) as it is and returns the status."""
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port), timeout=5) as connection:
        connection.sendall(head + b"\r\n")
        answer = b""
        while b"\r\n" not in answer:
            chunk = connection.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])



# What TokenGate's refusals carry in WWW-Authenticate (the realm; the token errors add the error).
REALM = 'Bearer realm="tokengate"'
INVALID = 'Bearer realm="tokengate", error="invalid_token"'


def dead_url() -> str:
    """A URL where nothing listens (a port just free in the ephemeral range)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class Redis:
    def __init__(self, work: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", work, "--maxmemory-policy", "noeviction"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        if not wait_until(lambda: self.cli("PING") == "PONG", 10):
            raise RuntimeError("redis-server did not start")

    def cli(self, *args: str) -> str:
        done = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True, text=True)
        return done.stdout.strip()

    def keys(self, pattern: str) -> list[str]:
        return sorted(line for line in self.cli("--scan", "--pattern", pattern).splitlines() if line)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


class TokenGate:
    """One tokengate process with its public listener and its service API."""

    def __init__(self, work: str, redis: Redis, extra: dict[str, str] | None = None) -> None:
        self.prefix = "t" + uuid.uuid4().hex[:8] + ":"
        self.redis = redis
        directory = tempfile.mkdtemp(dir=work)
        key_file = os.path.join(directory, "signing.key")
        with open(key_file, "w") as handle:
            handle.write(subprocess.run([BINARY, "key", "generate"], capture_output=True, text=True, check=True).stdout)
        users = os.path.join(directory, "users")
        subprocess.run([BINARY, "user", "add", "alice", "--users-file", users, "--cost", "4"],
                       input="alice-password\n", capture_output=True, text=True, check=True)
        keys = os.path.join(directory, "service-keys")
        self.admin_key = subprocess.run([BINARY, "admin-key", "generate", "tests", "--keys-file", keys],
                                        capture_output=True, text=True, check=True).stdout.strip()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENGATE_")}
        env.update({
            "TOKENGATE_LISTEN": "127.0.0.1:0", "TOKENGATE_ADMIN_LISTEN": "127.0.0.1:0",
            "TOKENGATE_ADMIN_KEYS_FILE": keys, "TOKENGATE_SIGNING_KEY_FILE": key_file, "TOKENGATE_USERS_FILE": users,
            "TOKENGATE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", "TOKENGATE_KEY_PREFIX": self.prefix,
            "TOKENGATE_TOKEN_TTL": str(TTL), "TOKENGATE_CLOSE_GRACE": "1", "TOKENGATE_REUSE_GRACE": "1",
            "TOKENGATE_REDIS_TIMEOUT": "0.5",
        })
        env.update(extra or {})
        self.log = open(os.path.join(directory, "tokengate.log"), "w")
        self.process = subprocess.Popen([BINARY, "serve", "--log-level", "warning"], env=env,
                                        stdout=subprocess.PIPE, stderr=self.log, text=True)
        self.url = self.admin_url = ""
        deadline = time.monotonic() + 30
        while (not self.url or not self.admin_url) and time.monotonic() < deadline:
            line = self.process.stdout.readline() if self.process.stdout else ""
            if not line:
                break
            if line.startswith("tokengate listening on "):
                self.url = line.split()[-1]
            elif line.startswith("tokengate admin listening on "):
                self.admin_url = line.split()[-1]
        if not self.url or not self.admin_url:
            self.stop()
            with open(self.log.name) as handle:
                raise RuntimeError("tokengate did not start:\n" + handle.read()[-2000:])
        # Keep reading stdout, so that the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        stream = self.process.stdout
        if stream is None:
            return
        try:
            for _ in stream:
                pass
        except (OSError, ValueError):
            pass

    def metric(self, route: str, status: str) -> int:
        """tokengate_http_requests_total{route,status} from /metrics (0 when absent)."""
        wanted = f'tokengate_http_requests_total{{route="{route}",status="{status}"}} '
        for line in http.request("GET", self.url + "/metrics").data.decode().splitlines():
            if line.startswith(wanted):
                return int(float(line[len(wanted):]))
        return 0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="session")
def work() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="tokengate-python-tests.")
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis(work: str) -> Iterator[Redis]:
    server = Redis(work)
    yield server
    server.stop()


@pytest.fixture
def start_tokengate(work: str, redis: Redis) -> Iterator[Callable[..., TokenGate]]:
    started: list[TokenGate] = []

    def start(extra: dict[str, str] | None = None, on: Redis | None = None) -> TokenGate:
        instance = TokenGate(work, on or redis, extra)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()


@pytest.fixture
def tokengate(start_tokengate: Callable[..., TokenGate]) -> TokenGate:
    return start_tokengate()


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Serves a WSGI app with waitress on a free port; returns its base URL."""
    servers = []

    def start(app) -> str:  # noqa: ANN001
        server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8, clear_untrusted_proxy_headers=False)
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for server in servers:
        stop_waitress(server)


def stop_waitress(server) -> None:  # noqa: ANN001
    """Stops a waitress server started in a thread: its listener, open connections and workers.
    The sockets are closed by the server's own loop thread (through its trigger), so that the loop
    never selects on a socket another thread has just closed (EBADF in that thread)."""
    closed = threading.Event()

    def close_all() -> None:
        try:
            server.close()
        except OSError:  # already closed
            pass
        for channel in list(server._map.values()):
            try:
                channel.handle_close()
            except Exception:  # already closed
                pass
        closed.set()

    try:
        server.trigger.pull_trigger(close_all)
    except OSError:  # the trigger's pipe is closed already (seen once in CI: EBADF): close from here
        close_all()
    if not closed.wait(30):  # the loop is gone already (a loaded machine may take seconds): close from here
        close_all()
    server.task_dispatcher.shutdown(timeout=5)


@pytest.fixture
def serve_asgi() -> Iterator[Callable[..., str]]:
    """Serves an ASGI app with uvicorn (h11, lifespan on) in a thread on a free port of 127.0.0.1;
    returns its base URL. The peer address is the socket's (no proxy-header rewriting), and a
    header block may be up to 64 KiB (uvicorn's h11 default, 16 KiB, would answer 400 itself
    before the guard's 431)."""
    import uvicorn

    started: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app, **options) -> str:  # noqa: ANN001, ANN003
        config = uvicorn.Config(app, host="127.0.0.1", port=0, http="h11", lifespan="on", log_level="warning",
                                proxy_headers=False, h11_max_incomplete_event_size=64 * 1024, **options)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        started.append((server, thread))
        if not wait_until(lambda: server.started, 10):
            raise RuntimeError("uvicorn did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in started:
        server.should_exit = True
        thread.join(10)
