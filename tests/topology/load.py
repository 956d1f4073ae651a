"""The load of scenarios a and c: many login/use/refresh/logout/replay sequences from concurrent clients."""
import concurrent.futures
import threading
import time

from harness.http import Conn, parse_json

from . import USERS


class Load:
    """Runs `total` sequences from `concurrency` threads, each with its own keep-alive connection to
    nginx. A wrong answer is a 2xx after a logout completed, a 401 for a live token, or a 2xx naming
    the wrong user or session. Anything else unexpected (5xx, a reset) is an error; the sequence
    stops there (and, for a logout whose answer was lost, asks again until it is sure it happened)."""

    def __init__(self, port, total, concurrency, time_limit):
        self.port = port
        self.total = total
        self.concurrency = concurrency
        self.time_limit = time_limit
        self.lock = threading.Lock()
        self.next_index = 0
        self.completed = 0
        self.requests = 0
        self.wrong = []
        self.errors = []  # (monotonic time, step, status, detail)
        self.elapsed = 0.0

    def _take(self):
        with self.lock:
            if self.next_index >= self.total or time.monotonic() > self.deadline:
                return None
            self.next_index += 1
            return self.next_index - 1

    def _wrong(self, i, step, status, data):
        with self.lock:
            self.wrong.append((i, step, status, data[:160]))

    def _error(self, i, step, status, data):
        with self.lock:
            self.errors.append((time.monotonic(), i, step, status, data[:160]))

    def _send(self, conn, counter, *args, **kwargs):
        counter[0] += 1
        return conn.request(*args, **kwargs)

    def _live(self, i, step, answer, expect, user=None, sid=None):
        """A request with a live token: `expect` status wanted; 401 is a wrong answer."""
        status, headers, data = answer
        if status == expect:
            if user is not None and headers.get("x-auth-user", user) != user:
                self._wrong(i, step + " (other user)", status, data)
                return False
            if sid is not None and headers.get("x-auth-session", sid) != sid:
                self._wrong(i, step + " (other session)", status, data)
                return False
            return True
        if status == 401:
            self._wrong(i, step + " (live token refused)", status, data)
        else:
            self._error(i, step, status, data)
        return False

    def _dead(self, i, step, answer):
        """A request with a token whose session was logged out: only 401 is right."""
        status, _, data = answer
        if status == 401:
            return True
        if status is not None and 200 <= status < 300:
            self._wrong(i, step + " (admitted after logout)", status, data)
        else:
            self._error(i, step, status, data)
        return False

    def sequence(self, conn, i):
        user = list(USERS)[i % len(USERS)]
        n = [0]
        try:
            status, _, data = self._send(conn, n, "POST", "/auth/login",
                                         json_body={"username": user, "password": USERS[user]})
            body = parse_json(data) if status == 200 else None
            if not body or "access_token" not in body:
                self._error(i, "login", status, data)
                return False
            t1, sid = body["access_token"], body["session_id"]
            t2 = None
            ok = False
            # use (through forward-auth to the app), refresh, use both tokens
            answer = self._send(conn, n, "GET", f"/app/{i}/page", token=t1)
            if self._live(i, "app page", answer, 200):
                app = parse_json(answer[2]) or {}
                if app.get("x_auth_user") != user or app.get("x_auth_session") != sid:
                    self._wrong(i, "app page (wrong X-Auth-User/Session)", answer[0], answer[2])
                else:
                    answer = self._send(conn, n, "POST", "/auth/refresh", token=t1)
                    if self._live(i, "refresh", answer, 200):
                        fresh = parse_json(answer[2]) or {}
                        t2 = fresh.get("access_token")
                        if not t2 or fresh.get("session_id") != sid:
                            self._wrong(i, "refresh (other session)", answer[0], answer[2])
                        elif self._live(i, "verify new token", self._send(conn, n, "GET", "/auth/verify", token=t2), 200, user, sid) \
                                and self._live(i, "verify old token", self._send(conn, n, "GET", "/auth/verify", token=t1), 200, user, sid):
                            ok = True
            # logout, and make sure we know that it happened
            logged_out = False
            for attempt in range(4):
                answer = self._send(conn, n, "POST", "/auth/logout", token=t2 or t1)
                if answer[0] == 204:
                    logged_out = True
                    break
                if answer[0] == 401 and attempt > 0:  # the lost attempt did it
                    logged_out = True
                    break
                if attempt == 0:
                    if answer[0] == 401:
                        self._wrong(i, "logout (live token refused)", answer[0], answer[2])
                    else:
                        self._error(i, "logout", answer[0], answer[2])
                    ok = False
            if not logged_out:
                return False
            # replay after the logout completed: every token, every kind of request, refused at once
            dead = [
                self._dead(i, "replay old token (verify)", self._send(conn, n, "GET", "/auth/verify", token=t1)),
                self._dead(i, "replay old token (refresh)", self._send(conn, n, "POST", "/auth/refresh", token=t1)),
            ]
            if t2:
                dead.append(self._dead(i, "replay new token (app page)", self._send(conn, n, "GET", f"/app/{i}/after", token=t2)))
            return ok and all(dead)
        finally:
            with self.lock:
                self.requests += n[0]

    def _worker(self):
        conn = Conn(self.port)
        try:
            while True:
                i = self._take()
                if i is None:
                    return
                if self.sequence(conn, i):
                    with self.lock:
                        self.completed += 1
        finally:
            conn.close()

    def run(self):
        self.deadline = time.monotonic() + self.time_limit
        self.started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            try:
                for future in [pool.submit(self._worker) for _ in range(self.concurrency)]:
                    future.result()
            except BaseException:   # interrupted (SIGTERM, Ctrl-C): the workers end after their sequence
                self.deadline = 0
                raise
        self.elapsed = time.monotonic() - self.started
        return self

    def summary(self):
        rate = self.requests / self.elapsed if self.elapsed else 0
        return (f"{self.next_index} sequences started, {self.completed} fully right, {self.requests} requests "
                f"from {self.concurrency} clients in {self.elapsed:.1f} s ({rate:.0f} req/s): "
                f"{len(self.wrong)} wrong answers, {len(self.errors)} errors")
