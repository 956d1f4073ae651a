"""tokengate processes: the signing key and users file they share, and `tokengate serve` on a free port.

    credentials = Credentials.make(binary, work, {"alice": "alice-Pa55word"})
    tg = TokenGate(binary, work, "a", credentials, redis.url, env={"TOKENGATE_TOKEN_TTL": "3"})
    tg.start()        # True once it logs "tokengate listening on http://127.0.0.1:<port>"
    tg.port, tg.pid, tg.alive(), tg.stats(), tg.tail(), tg.stop()

host= listens elsewhere than 127.0.0.1 (tg.host; pass it to Conn and http_call), prefix= runs it
through a command (harness.netns's ["ip", "netns", "exec", NAME]: inside a network namespace).
"""
import os
import re
import resource
import subprocess

from .checks import wait_until
from .http import http_call
from .processes import free_port, popen, stop_process, tail


class Credentials:
    """A signing key (key_file, and the key itself as bytes) and an htpasswd users file."""

    def __init__(self, key_file, users_file, key, users):
        self.key_file = key_file
        self.users_file = users_file
        self.key = key
        self.users = dict(users)

    @classmethod
    def make(cls, binary, work, users):
        key_file = os.path.join(work, "signing.key")
        users_file = os.path.join(work, "users.htpasswd")
        key = subprocess.run([binary, "key", "generate"], capture_output=True, text=True, check=True).stdout.strip()
        with open(key_file, "w") as handle:
            os.chmod(key_file, 0o600)
            handle.write(key + "\n")
        for user, password in users.items():
            subprocess.run([binary, "user", "add", user, "--users-file", users_file, "--cost", "4"],
                           input=password + "\n", capture_output=True, text=True, check=True, timeout=30)
        return cls(key_file, users_file, key.encode(), users)


class TokenGate:
    """One `tokengate serve` on a free port of 127.0.0.1, logging to work/tokengate-<name>.log. Its
    environment is this process's without any TOKENGATE_* variable, then the key, users file and
    Redis URL, then `env`."""

    def __init__(self, binary, work, name, credentials, redis_url, env=None, nofile=None, log_level="warning",
                 host="127.0.0.1", prefix=()):
        self.binary = binary
        self.name = name
        self.host = host
        self.prefix = list(prefix)
        self.url = redis_url
        port = re.search(r":(\d+)(?:/|$)", redis_url)   # the (last) Redis port: what stats() counts connections to
        self.redis_port = int(port.group(1)) if port else None
        self.nofile = nofile
        self.log_level = log_level
        self.log_path = os.path.join(work, f"tokengate-{name}.log")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENGATE_")}
        self.env.update(TOKENGATE_SIGNING_KEY_FILE=credentials.key_file, TOKENGATE_USERS_FILE=credentials.users_file,
                        TOKENGATE_REDIS_URL=redis_url, **(env or {}))
        self.proc = None
        self.port = None
        self.stopped = False   # stopped on purpose (not a crash)

    @property
    def origin(self):
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self):
        return self.proc.pid

    def start(self, wait=30):
        """Starts it (on another free port if the first is taken meanwhile); True once it listens."""
        limit = None
        if self.nofile:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))
        for _ in range(3):
            port = free_port()
            with open(self.log_path, "ab") as log:
                self.proc = popen(self.prefix + [self.binary, "serve", "--listen", f"{self.host}:{port}", "--log-level", self.log_level],
                                  env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  preexec_fn=limit, start_new_session=True)
            line = re.compile(rf"^tokengate listening on http://{re.escape(self.host)}:{port}$", re.M)

            def listening(line=line):
                if self.proc.poll() is not None:
                    return "exited"
                with open(self.log_path, errors="replace") as handle:
                    return line.search(handle.read()) is not None
            found = wait_until(listening, wait, 0.05)
            if found is True:
                self.port = port
                return True
            stop_process(self.proc)
            if found != "exited" or "in use" not in self.tail(5):
                return False
        return False

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        self.stopped = True
        return stop_process(self.proc)

    def tail(self, lines=20):
        return tail(self.log_path, lines)

    def counter(self, route, status):
        """tokengate_http_requests_total{route=...,status=...} from /metrics (0 when absent, None when
        /metrics does not answer)."""
        code, _, body = http_call(self.port, "GET", "/metrics", host=self.host)
        if code != 200:
            return None
        wanted = f'tokengate_http_requests_total{{route="{route}",status="{status}"}} '
        for line in body.decode(errors="replace").splitlines():
            if line.startswith(wanted):
                return int(float(line[len(wanted):]))
        return 0

    def stats(self, redis_port=None):
        """fds, VmRSS (KiB), threads, and this process's TCP sockets to redis_port by state."""
        pid = self.pid
        port = redis_port or self.redis_port
        inodes = set()
        fds = os.listdir(f"/proc/{pid}/fd")
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        rss = threads = 0
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
        established = other = 0
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                with open(table) as handle:
                    next(handle)
                    for line in handle:
                        parts = line.split()
                        if parts[9] not in inodes:
                            continue
                        if int(parts[2].rsplit(":", 1)[1], 16) != port:
                            continue
                        if parts[3] == "01":
                            established += 1
                        else:
                            other += 1
            except OSError:
                pass
        return {"fds": len(fds), "rss_kb": rss, "threads": threads, "redis_established": established,
                "redis_other": other}


def fmt_stats(s):
    return (f"fds {s['fds']}, RSS {s['rss_kb'] / 1024:.1f} MiB, threads {s['threads']}, "
            f"ESTABLISHED to Redis {s['redis_established']}")
