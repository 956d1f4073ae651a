"""The fault proxy: a TCP proxy of the tests' own, put between tokengate and Redis.

    proxy = Proxy(redis.port)          # listens on 127.0.0.1:proxy.port at once
    proxy.set_mode("delay", 0.8)       # every chunk held 0.8 s before it is forwarded
    proxy.set_mode("stall")            # nothing read or forwarded, the sockets stay open
    proxy.reset_all()                  # RST both ways on every connection (SO_LINGER 0, then close)
    proxy.set_mode("pass")
    proxy.close()
    Proxy(redis.port, listen=("127.0.0.2", redis.port))   # on another loopback address, the same port
"""
import select
import socket
import struct
import threading
import time

from .processes import listening_socket


class Proxy:
    """Accepts on 127.0.0.1:<port>, opens one upstream connection per client connection and pumps
    bytes both ways (one thread per direction). Modes: "pass"; "delay" (every chunk is held
    `delay` seconds before it is forwarded); "stall" (nothing is read or forwarded, sockets stay
    open). reset_all() sends an RST both ways on every connection (SO_LINGER 0, then close)."""

    def __init__(self, upstream_port, listen=None):
        self.upstream_port = upstream_port
        if listen is None:
            self.listener = listening_socket()
        else:
            self.listener = socket.socket()
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind(listen)
            self.listener.listen(512)
        self.port = self.listener.getsockname()[1]
        self.mode = "pass"
        self.delay = 0.0
        self.lock = threading.Lock()
        self.pairs = set()
        self.accepted = 0
        self.closed = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def set_mode(self, mode, delay=0.0):
        self.delay = delay
        self.mode = mode

    def open_pairs(self):
        with self.lock:
            return len(self.pairs)

    def reset_all(self):
        with self.lock:
            pairs = list(self.pairs)
        for pair in pairs:
            pair.close(reset=True)
        return len(pairs)

    def close(self):
        self.closed = True
        try:
            self.listener.close()
        except OSError:
            pass
        self.reset_all()

    def _accept_loop(self):
        while not self.closed:
            try:
                ready, _, _ = select.select([self.listener], [], [], 0.2)
                if not ready:
                    continue
                client, _ = self.listener.accept()
            except (OSError, ValueError):
                if self.closed:
                    return
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            for s in (client, upstream):
                s.settimeout(None)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(self, client, upstream)
            with self.lock:
                self.pairs.add(pair)
                self.accepted += 1
            threading.Thread(target=pair.pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pair.pump, args=(upstream, client), daemon=True).start()


class _Pair:
    def __init__(self, proxy, a, b):
        self.proxy = proxy
        self.socks = (a, b)
        self.closed = False
        self.lock = threading.Lock()

    def close(self, reset=False):
        with self.lock:
            if self.closed:
                return
            self.closed = True
        for s in self.socks:
            try:
                if reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass
        with self.proxy.lock:
            self.proxy.pairs.discard(self)

    def pump(self, src, dst):
        proxy = self.proxy
        try:
            while not self.closed:
                if proxy.mode == "stall":
                    time.sleep(0.02)
                    continue
                ready, _, _ = select.select([src], [], [], 0.05)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                if proxy.mode == "delay" and proxy.delay > 0:
                    time.sleep(proxy.delay)
                while proxy.mode == "stall" and not self.closed:
                    time.sleep(0.02)
                if self.closed:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass
        self.close()
