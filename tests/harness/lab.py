"""What one fixture scope started, stopped together at its end (last started first).

    lab = Lab(binary, work, credentials, env={"TOKENGATE_REDIS_TIMEOUT": "0.5"})
    redis = lab.redis("primary")                       # RedisServer; call .start()
    replica = lab.redis("replica", replicaof=redis.port)
    proxy = lab.proxy(redis.port)                      # Proxy, already listening
    tg = lab.tokengate("a", proxy.port)                # TokenGate on Redis at that port; call .start()
    lab.stop()

tests/conftest.py gives every test a `lab` (stopped when the test ends) and `session_lab` (stopped
when the run ends, for fixtures that share processes between scenario files).
"""
from .checks import check, say
from .processes import stop_process
from .proxy import Proxy
from .redis import RedisServer
from .tokengate import TokenGate
from .topology import Topology


class Lab:
    def __init__(self, binary, work, credentials=None, env=None, log_level="warning"):
        self.binary = binary
        self.work = work
        self.credentials = credentials
        self.env = dict(env or {})      # TOKENGATE_* settings of every tokengate started here
        self.log_level = log_level
        self.things = []                # (kind, object), in the order they were made

    def redis(self, name, port=None, extra=(), replicaof=None, **where):
        """A RedisServer (not started yet); `where`: its host, bind and prefix (harness.redis)."""
        server = RedisServer(self.work, name, port, extra, replicaof, **where)
        self.things.append(("redis", server))
        return server

    def proxy(self, upstream_port):
        proxy = Proxy(upstream_port)
        self.things.append(("proxy", proxy))
        return proxy

    def tokengate(self, name, redis_port=None, url=None, env=None, nofile=None, **where):
        """A tokengate (not started yet) on redis://127.0.0.1:<redis_port>/0, or on `url`; `where`: its
        host and prefix (harness.tokengate)."""
        tg = TokenGate(self.binary, self.work, name, self.credentials, url or f"redis://127.0.0.1:{redis_port}/0",
                       env={**self.env, **(env or {})}, nofile=nofile, log_level=self.log_level, **where)
        self.things.append(("tokengate", tg))
        return tg

    def topology(self, name="topology", env=None, instances=3, timeout=1500):
        topology = Topology(self.binary, self.work, name, env, instances, timeout)
        self.things.append(("topology", topology))
        return topology

    def add(self, thing):
        """Anything else to end with the scope: its close() (or stop()) is called."""
        self.things.append(("other", thing))
        return thing

    def tokengates(self):
        return [thing for kind, thing in self.things if kind == "tokengate"]

    def stop(self, show_logs=False):
        """Stops everything, last made first. A tokengate that exited on its own (not stopped here or by
        its stop()) after it had started is a failed check; with show_logs, every tokengate's log tail is printed."""
        for tg in self.tokengates():
            if tg.port is not None and not tg.stopped and tg.proc.poll() is not None:
                check(f"tokengate {tg.name} is still running at the end", False, f"exit {tg.proc.returncode}\n{tg.tail()}")
                show_logs = True
        if show_logs:
            for tg in self.tokengates():
                if tg.proc is not None:
                    say(f"--- tokengate {tg.name} log (tail) ---\n{tg.tail(15)}")
        for kind, thing in reversed(self.things):
            try:
                if kind in ("redis", "tokengate"):
                    stop_process(thing.proc)
                elif kind == "topology":
                    thing.stop()
                elif hasattr(thing, "close"):
                    thing.close()
                else:
                    thing.stop()
            except Exception as error:   # the rest still get stopped
                say(f"   stopping {kind} {getattr(thing, 'name', '')}: {error!r}")
        self.things.clear()
