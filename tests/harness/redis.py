"""redis-server processes on free ports, and a small RESP2 client.

    server = RedisServer(work, "primary")                  # a port is picked now; nothing runs yet
    server.start()                                         # True once it answers PING
    replica = RedisServer(work, "replica", replicaof=server.port)
    client = server.client(); client("SET", "k", "v"); client.close()

`extra` adds redis-server arguments (later ones win: extra=["--port", "0", "--tls-port", ...] makes
a TLS-only server). A server may be killed and started again on the same port (same object).
Elsewhere than 127.0.0.1: `host` (the address clients use), `bind` (every address it listens on,
default [host]), `prefix` (a command to run it through, e.g. harness.netns's ["ip", "netns", "exec",
NAME]), and replicaof=(host, port).
"""
import os
import signal
import socket
import subprocess
import threading

from .checks import wait_until
from .processes import free_port, popen, refuses_connections, stop_process

PREFIX = "tg:"   # TokenGate's key prefix (README: tg:{user}:s:<sid>, tg:{user}:t:<jti>, tg:{user}:sessions)


class RedisError(Exception):
    pass


class Resp:
    """One connection speaking RESP2; client(*args) sends one command and returns its reply (simple
    and bulk strings as str, integers as int, arrays as lists, nil as None; an error reply raises
    RedisError). Thread-safe: one command at a time."""

    def __init__(self, port, timeout=10, host="127.0.0.1"):
        self.port = port
        self.lock = threading.Lock()
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")

    def __call__(self, *args):
        parts = [a if isinstance(a, bytes) else str(a).encode() for a in args]
        wire = b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)
        with self.lock:
            self.sock.sendall(wire)
            return self._read()

    def _read(self):
        line = self.file.readline()
        if not line:
            raise RedisError("connection closed")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self.file.read(size + 2)[:-2].decode(errors="replace")
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [self._read() for _ in range(size)]
        raise RedisError(f"unexpected reply {line!r}")

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def keys(self, pattern):
        """Every key matching pattern (SCAN), sorted, each once."""
        cursor, found = "0", []
        while True:
            cursor, batch = self("SCAN", cursor, "MATCH", pattern, "COUNT", 1000)
            found.extend(batch)
            if cursor == "0":
                return sorted(set(found))

    def info(self, section=""):
        """INFO [section] as a dict of its key:value lines."""
        text = self("INFO", section) if section else self("INFO")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line and not line.startswith("#"))

    # TokenGate's key layout.
    def user_keys(self, user):
        return self.keys(f"{PREFIX}{{{user}}}:*")

    def session_keys(self, user, sid):
        """The session hash and every token key that may be the session's: a token key holds no
        session id, so every token key of the user that no *other* live session lists (fields
        t:<jti> of its hash) counts (the index is per user)."""
        found = []
        session = f"{PREFIX}{{{user}}}:s:{sid}"
        if self("EXISTS", session):
            found.append(session)
        token_keys = self.keys(f"{PREFIX}{{{user}}}:t:*")
        others = set()
        for other in self.keys(f"{PREFIX}{{{user}}}:s:*"):
            if other != session:
                others.update(f[2:] for f in self("HKEYS", other) or [] if f.startswith("t:"))
        found.extend(key for key in token_keys if key.rsplit(":", 1)[1] not in others)
        return found

    def session_alive(self, user, sid):
        return self("EXISTS", f"{PREFIX}{{{user}}}:s:{sid}") == 1


class RedisServer:
    """A private redis-server on 127.0.0.1 (no persistence, noeviction), logging to
    work/redis-<name>.log; restartable on the same port."""

    def __init__(self, work, name, port=None, extra=(), replicaof=None, host="127.0.0.1", bind=None, prefix=()):
        self.work = work
        self.name = name
        self.port = port or free_port()
        self.host = host
        self.bind = list(bind or [host])
        self.prefix = list(prefix)
        self.extra = list(extra)
        if replicaof is not None:
            primary_host, primary_port = replicaof if isinstance(replicaof, tuple) else ("127.0.0.1", replicaof)
            self.extra += ["--replicaof", primary_host, str(primary_port)]
        self.proc = None
        self.log_path = os.path.join(work, f"redis-{name}.log")

    @property
    def url(self):
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout=15):
        """Starts it; True once it answers PING (a TLS-only one: once its port accepts TCP)."""
        # Protected mode refuses every client but loopback ones (no password here): off on other addresses.
        exposed = ["--protected-mode", "no"] if any(not a.startswith("127.") for a in self.bind) else []
        self.proc = popen(
            self.prefix + ["redis-server", "--port", str(self.port), "--bind", " ".join(self.bind)] + exposed
            + ["--save", "", "--appendonly", "no", "--dir", self.work, "--dbfilename", f"dump-{self.name}.rdb", "--logfile", self.log_path,
               "--maxmemory-policy", "noeviction", "--daemonize", "no"] + self.extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if "--tls-port" in self.extra:   # PING would need a TLS client
            up = wait_until(lambda: self.proc.poll() is not None or not refuses_connections(self.port, self.host), timeout, 0.02)
        else:
            up = wait_until(lambda: self.proc.poll() is not None or self.ping(), timeout, 0.02)
        return bool(up) and self.proc.poll() is None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ping(self):
        try:
            client = Resp(self.port, timeout=1, host=self.host)
            try:
                return client("PING") == "PONG"
            finally:
                client.close()
        except (OSError, RedisError):
            return False

    def client(self, timeout=10):
        return Resp(self.port, timeout=timeout, host=self.host)

    def scan(self, pattern):
        client = self.client()
        try:
            return client.keys(pattern)
        finally:
            client.close()

    def kill(self):
        """SIGKILL: no shutdown, no save (what a crash or the OOM killer does)."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        return stop_process(self.proc)
