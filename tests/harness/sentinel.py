"""A Redis Sentinel set on loopback: a primary, replicas and sentinels watching it, each on a free port.

    sentinels = SentinelSet(lab, work, name="tokengate", replicas=2, sentinels=3)
    sentinels.start()               # True once the replicas are in sync and every sentinel knows them
    sentinels.url                   # redis+sentinel://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/tokengate/0
    sentinels.primary_port()        # what the sentinels name now
    sentinels.server(port)          # the RedisServer on that port (kill it for a failover)

With proxied=True each replica replicates through a Proxy of its own (sentinels.proxies), so a test
can stall replication (proxy.set_mode("stall")) while the primary keeps answering clients.

Across a network namespace (harness.netns; tests/faults/test_12): primary_host and primary_prefix put
the primary elsewhere (e.g. inside a namespace, on its veth address), bind lists every address the
replicas and sentinels listen on (add the root side of the link, so that the namespace reaches them),
url_at(host) names the sentinels at one of those, and extra adds redis-server arguments to every data
node (e.g. min-replicas-to-write).

Every process is made through `lab`, so it is stopped with the lab's scope. Sentinels decide a primary
is down after 2 s (`down-after-milliseconds 2000`, quorum 2): a failover takes 3-5 s on this machine.
"""
import os
import subprocess

from .checks import wait_until
from .processes import free_port, popen, stop_process
from .redis import RedisError, Resp


class SentinelSet:
    def __init__(self, lab, work, name="tokengate", replicas=2, sentinels=3, proxied=False, extra=(),
                 primary_host="127.0.0.1", primary_prefix=(), bind=("127.0.0.1",)):
        self.lab = lab
        self.work = work
        self.name = name
        self.bind = list(bind)
        self.primary = lab.redis(f"{name}-primary", extra=extra, host=primary_host, prefix=primary_prefix)
        self.proxies = [lab.proxy(self.primary.port) for _ in range(replicas)] if proxied else []
        self.replicas = [lab.redis(f"{name}-replica{i + 1}", extra=extra, bind=self.bind,
                                   replicaof=self.proxies[i].port if proxied else (primary_host, self.primary.port))
                         for i in range(replicas)]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.sentinel_procs = []

    @property
    def servers(self):
        return [self.primary] + self.replicas

    @property
    def url(self):
        return self.url_at("127.0.0.1")

    def url_at(self, host):
        hosts = ",".join(f"{host}:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.name}/0"

    def server(self, port):
        return next(server for server in self.servers if server.port == port)

    def start(self, timeout=30):
        for server in self.servers:
            if not server.start():
                return False
        for port in self.sentinel_ports:
            config = os.path.join(self.work, f"sentinel-{port}.conf")
            with open(config, "w") as handle:
                handle.write(
                    f"port {port}\nbind {' '.join(self.bind)}\ndir {self.work}\nlogfile {self.work}/sentinel-{port}.log\n"
                    + ("protected-mode no\n" if any(not a.startswith("127.") for a in self.bind) else "") +
                    f"sentinel monitor {self.name} {self.primary.host} {self.primary.port} 2\n"
                    f"sentinel down-after-milliseconds {self.name} 2000\n"
                    f"sentinel failover-timeout {self.name} 10000\n"
                    f"sentinel parallel-syncs {self.name} 1\n")
            proc = popen(["redis-server", config, "--sentinel"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.sentinel_procs.append(proc)
            self.lab.add(_Process(proc))
        return bool(wait_until(self.whole, timeout, 0.1))

    def sentinel(self, port=None):
        return Resp(port or self.sentinel_ports[0], timeout=5)

    def ask(self, *command):
        """A command to the first sentinel that answers."""
        for port in self.sentinel_ports:
            try:
                client = self.sentinel(port)
                try:
                    return client(*command)
                finally:
                    client.close()
            except (OSError, RedisError):
                continue
        raise RedisError("no sentinel answers")

    def primary_port(self):
        host, port = self.ask("SENTINEL", "get-master-addr-by-name", self.name)
        return int(port)

    def role(self, port, timeout=2):
        """ROLE of the data node on that port (None when it does not answer within timeout)."""
        host = next((server.host for server in self.servers if server.port == port), "127.0.0.1")
        try:
            client = Resp(port, timeout=timeout, host=host)
            try:
                return client("ROLE")
            finally:
                client.close()
        except (OSError, RedisError):
            return None

    def whole(self):
        """The named primary is one, with every replica in sync, and every sentinel knows them all."""
        try:
            primary = self.primary_port()
        except (OSError, RedisError, ValueError, TypeError):
            return False
        role = self.role(primary)
        if not role or role[0] != "master" or len(role[2]) != len(self.replicas):
            return False
        for server in self.servers:
            if server.port == primary:
                continue
            replica = self.role(server.port)
            if not replica or replica[0] != "slave" or replica[3] != "connected":
                return False
        for port in self.sentinel_ports:
            try:
                client = self.sentinel(port)
                try:
                    if len(client("SENTINEL", "replicas", self.name)) != len(self.replicas):
                        return False
                finally:
                    client.close()
            except (OSError, RedisError):
                return False
        return True


class _Process:
    """A bare process for Lab.add: stopped with the lab."""

    def __init__(self, proc):
        self.proc = proc

    def stop(self):
        return stop_process(self.proc)
