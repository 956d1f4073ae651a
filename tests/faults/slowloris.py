"""Slowloris clients for scenarios 5 and 5b."""
import select
import socket
import threading
import time


class SlowLoris:
    """`count` connections to port: three quarters send a request line and then trickle header bytes
    (one every 0.5 s), a quarter send a complete POST /auth/login head with Content-Length: 4096 and
    then trickle the body. Notes when the server closes each one, and what it said first."""

    HEADER_LINE = b"X-Slow: abcdefghijklmnopqrstuvwxyz\r\n"

    def __init__(self, port, count):
        self.port = port
        self.entries = []  # [socket, kind, opened, closed_at, what the server said]
        self.bodies = max(1, count // 4)
        self.refused = 0
        for i in range(count):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                self.refused += 1
                continue
            try:
                if i < count - self.bodies:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    kind = "headers"
                else:
                    s.sendall(b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                              b"Content-Length: 4096\r\n\r\n{\"username\":\"user05\",")
                    kind = "body"
            except OSError:
                self.refused += 1
                continue
            s.setblocking(False)
            self.entries.append([s, kind, time.monotonic(), None, b""])
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._trickle, daemon=True)
        self.thread.start()

    def _trickle(self):
        tick = 0
        line = self.HEADER_LINE
        while not self.stop_flag.is_set():
            for entry in self.entries:
                s, kind, _, closed_at, _ = entry
                if closed_at is not None:
                    continue
                try:
                    readable, _, _ = select.select([s], [], [], 0)
                    if readable:
                        data = s.recv(4096)
                        entry[4] += data
                        entry[3] = time.monotonic()  # closed, or answered: either way no longer held
                        continue
                    s.send(line[tick % len(line):][:1] if kind == "headers" else b" ")
                except (BlockingIOError, InterruptedError):
                    pass
                except (OSError, ValueError):
                    entry[3] = time.monotonic()
            tick += 1
            self.stop_flag.wait(0.5)

    @property
    def opened(self):
        return len(self.entries)

    def open_now(self):
        return sum(1 for e in self.entries if e[3] is None)

    def stop(self):
        self.stop_flag.set()
        self.thread.join(timeout=10)

    def summary(self):
        now = time.monotonic()
        closed = [e for e in self.entries if e[3] is not None]
        still = [e for e in self.entries if e[3] is None]
        said = sorted({(e[1], e[4].split(b"\r\n", 1)[0].decode(errors="replace") or "closed") for e in closed})
        text = f"server closed {len(closed)} of {self.opened}"
        if closed:
            text += f" after {min(e[3] - e[2] for e in closed):.1f}-{max(e[3] - e[2] for e in closed):.1f} s {said}"
        if still:
            text += f"; {len(still)} still open after {max(now - e[2] for e in still):.1f} s of trickling"
        return text

    def close(self):
        self.stop()
        for entry in self.entries:
            try:
                entry[0].close()
            except OSError:
                pass
