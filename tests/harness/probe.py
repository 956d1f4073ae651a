"""A request looped without pause while something fails: every answer is kept for the invariants.

    probe = Probe(tg, "/api/me", token).start()     # GET with the token on one keep-alive connection
    ...
    probe.stop()                                    # True when its thread ended (no request hung)
    probe.answers                                   # [(start, end, status, error code)], monotonic times
    probe.last_is(200, after=killed_at)             # its latest answer began after `after` and was 200
"""
import threading
import time

from .http import Conn, error_code


class Probe:
    def __init__(self, tg, path, token=None):
        self.host, self.port, self.path, self.token = getattr(tg, "host", "127.0.0.1"), tg.port, path, token
        self.answers = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        conn = Conn(self.port, timeout=10, host=self.host)
        while not self.stop_flag.is_set():
            started = time.monotonic()
            status, _, data = conn.request("GET", self.path, token=self.token)
            self.answers.append((started, time.monotonic(), status, error_code(data)))
            time.sleep(0.02)
        conn.close()

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=15)
        return not self.thread.is_alive()

    def last_is(self, status, after):
        return bool(self.answers) and self.answers[-1][0] > after and self.answers[-1][2] == status
