"""Compose tests: `docker compose up` on a fresh copy of the repository, on a real Docker Engine.

tests/compose/run starts a Docker Engine of its own and fills its image store with stand-ins for the
registry images (engine.sh, standins.sh); conftest.py copies the repository as a fresh clone would
have it (no secrets) and runs docker-compose there, and every scenario talks to the stack as a user
would, through the published port on 127.0.0.1, or to a container on the project's own network
(one file per scenario, test_NN_<name>.py, its docstring says what it asserts):

  01. `docker-compose up -d --build` with nothing before it: the init log's demo login works,
      non-root images on a read-only root file system, every health check passes;
  02. the guarded app: 401 without a token, 200 with one (X-Auth-User), the sample app's own login
      view through the service API, which the published port does not reach;
  03. the session's keys in Redis (redis-cli --scan, TTLs); logout refused on every replica and the
      keys gone; /auth/close gone within CLOSE_GRACE + 1 s;
  04. --scale tokengate=5 reaches all five without restarting nginx; a replica killed under load
      gives no wrong answer;
  05. a replica stopped under load: every answer right, exit 0 within the grace period; `down`
      then `up`: the same secrets (the old token verifies, the demo password logs in), Redis data
      kept (append-only file);
  06. the Cluster override file: login, use, logout through it;
  07. the Sentinel override file: login, use, logout; a failover (the primary stopped): a logout
      answered before it stays in force, logins work again on every replica;
  08. your own signing key and users file put into the volume (the runbook's steps): kept by init;
  09. everything the suite created is removed.

The TokenGate containers run as the image's non-root user (10001): this suite runs TokenGate
unprivileged, so a failure that only a non-root process sees (as SO_DEBUG was) cannot hide.
"""
import json
import os
import re
import socket
import subprocess
import threading
import time

from harness.checks import require, wait_until
from harness.http import Conn

PROJECT = "tgcomposetest"   # every container, network and volume the suite creates carries this name
DOCKER = "/usr/bin/docker"
COMPOSE = "docker-compose"
TEST_OVERRIDE = "docker-compose.test-build.yml"   # build networking only (see that file)
CLOSE_GRACE = 2                                    # TokenGate's default, which docker-compose.yml keeps
DEMO_LINE = re.compile(r"demo login: user=(\S+) password=(\S+)")


def run(args, cwd=None, timeout=600, stdin=None, env=None, check=False):
    """(returncode, stdout, stderr) of a command."""
    result = subprocess.run(args, cwd=cwd, input=stdin, capture_output=True, text=True, timeout=timeout,
                            env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {result.returncode}: {result.stderr[-2000:]}")
    return result.returncode, result.stdout, result.stderr


# Every override file, for the `down` that must catch whatever services a scenario left up.
ALL_FILES = ["docker-compose.yml", "docker-compose.cluster.yml", "docker-compose.sentinel.yml"]


class Stack:
    """docker-compose in one fresh copy of the repository, as project PROJECT."""

    def __init__(self, directory, port, files=("docker-compose.yml",)):
        self.dir = directory
        self.port = port
        self.files = list(files)
        self.demo = None
        self.env = dict(os.environ, TOKENGATE_PORT=str(port), COMPOSE_PROJECT_NAME=PROJECT)

    def compose(self, *args, files=None, timeout=900, stdin=None, check=False):
        command = [COMPOSE]
        for name in (files or self.files) + [TEST_OVERRIDE]:
            command += ["-f", name]
        return run(command + list(args), cwd=self.dir, timeout=timeout, stdin=stdin, env=self.env, check=check)

    def remove_override_services(self, override):
        """Stops and removes the services that the override file adds (and their anonymous
        volumes, such as redis:7's /data), so that a later `down` without --volumes leaves none
        of them behind; the base file's services and the named volumes stay."""
        base = set(self.compose("config", "--services", files=["docker-compose.yml"])[1].split())
        added = sorted(set(self.compose("config", "--services", files=["docker-compose.yml", override])[1].split()) - base)
        return self.compose("rm", "--force", "--stop", "-v", *added, files=["docker-compose.yml", override], timeout=300)

    def switch_to(self, files):
        """`down` (the named volumes kept: the same secrets), then `up -d` with `files`; requires
        both to exit 0. Returns when `up` began (time.monotonic())."""
        code, out, err = self.compose("down", "--timeout", "15", timeout=300)
        require("docker-compose down exits 0", code == 0, (out + err)[-1000:])
        self.files = list(files)
        started = time.monotonic()
        code, out, err = self.compose("up", "-d", timeout=900)
        require(f"docker-compose {' '.join('-f ' + name for name in files)} up -d exits 0", code == 0, (out + err)[-3000:])
        return started

    def docker(self, *args, timeout=120, check=False):
        return run([DOCKER, *args], timeout=timeout, env=self.env, check=check)

    def containers(self, service, all_states=False):
        """Container ids of a service of the project."""
        args = ["ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}",
                "--filter", f"label=com.docker.compose.service={service}"]
        if all_states:
            args.append("-a")
        return self.docker(*args)[1].split()

    def inspect(self, container):
        code, out, _ = self.docker("inspect", container)
        return json.loads(out)[0] if code == 0 else {}

    def address(self, container):
        """The container's address on the project's network."""
        networks = self.inspect(container).get("NetworkSettings", {}).get("Networks", {})
        for name, network in networks.items():
            if name.startswith(PROJECT) and network.get("IPAddress"):
                return network["IPAddress"]
        return None

    def health(self, container):
        return self.inspect(container).get("State", {}).get("Health", {}).get("Status")

    def all_healthy(self, service, count):
        ids = self.containers(service)
        return len(ids) == count and all(self.health(c) == "healthy" for c in ids)

    def logs(self, service):
        return self.compose("logs", "--no-color", service)[1]

    def demo_login(self):
        """(user, password) from the init service's log line now, or None."""
        match = DEMO_LINE.search(self.logs("init"))
        return (match.group(1), match.group(2)) if match else None

    def credentials(self):
        """The demo login the first start printed (kept: a later init prints none)."""
        if self.demo is None:
            self.demo = self.demo_login()
        if self.demo is None:
            raise AssertionError("no demo login line in the init log")
        return self.demo

    def redis_cli(self, *args):
        return self.compose("exec", "-T", "redis", "redis-cli", *args, timeout=60)

    def redis_command(self, *args):
        """One command straight to the redis container on the project's network (milliseconds, where
        `docker-compose exec` takes about a second): its reply line, e.g. ":0"."""
        with socket.create_connection((self.address(self.containers("redis")[0]), 6379), timeout=5) as conn:
            conn.sendall(("*%d\r\n" % len(args) + "".join("$%d\r\n%s\r\n" % (len(a.encode()), a) for a in args)).encode())
            return conn.makefile("rb").readline().decode().strip()


def wait_for(condition, timeout, interval=0.25):
    """The harness's poll (harness.checks.wait_until), at the pace a container's start allows."""
    return wait_until(condition, timeout, interval)


class VerifyLoad:
    """Clients verifying a live token (200 expected) and a logged-out one (401) through nginx in a
    loop, counting every answer and keeping the wrong ones: what users of a scaled stack rely on
    while replicas come and go."""

    def __init__(self, port, live, revoked, clients=8):
        self.port, self.live, self.revoked = port, live, revoked
        self.counts = {"live": 0, "revoked": 0}
        self.wrong = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client) for _ in range(clients)]

    def _client(self):
        conn = Conn(self.port)
        while not self._stop.is_set():
            for kind, token, expected in (("live", self.live, 200), ("revoked", self.revoked, 401)):
                try:
                    status = conn.request("GET", "/auth/verify", token=token)[0]
                except OSError as error:
                    status = repr(error)
                    conn = Conn(self.port)
                with self._lock:
                    self.counts[kind] += 1
                    if status != expected:
                        self.wrong.append((kind, status))

    @property
    def total(self):
        with self._lock:
            return self.counts["live"] + self.counts["revoked"]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def answered(self, more, timeout=60):
        """Waits until `more` further answers have come (the load ran on meanwhile)."""
        target = self.total + more
        return wait_until(lambda: self.total >= target, timeout, 0.05)

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
