"""A Redis Cluster on loopback: primaries with a replica each, every node on free ports.

    cluster = ClusterSet(lab, work, primaries=3)
    cluster.start()                   # True once every node says cluster_state:ok, replicas in sync
    cluster.url                       # redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3/
    cluster.owner(key)                # the port of the primary serving key's slot now
    cluster.server(port)              # the RedisServer on that port (kill it for a failover)
    cluster.replica_of(port)          # the port of that primary's replica
    cluster.primary_ports()           # the ports of the nodes that are primaries now

With proxied=True every node announces the port of a fault proxy of its own (harness/proxy.py) in
front of it, so tokengate and the node's replica reach it only through that proxy:
`cluster.proxy(port).set_mode("stall")` freezes a node's link (its clients and its replication) while
the cluster bus (not proxied) still sees it alive. With replication_proxied=True only replication
goes through such a proxy: every node announces the address 127.0.0.2 (where a proxy listens on
its port, and a pass-through one on its bus port), which replicas and the cluster bus use, and the
hostname 127.0.0.1 as its endpoint, which clients use; `cluster.proxy(port).set_mode("stall")` then
keeps a primary's writes from its replica while it serves its clients.

Every node is made through `lab`, so it is stopped with the lab's scope. cluster-node-timeout is
2 s: a shard whose primary died has a new one 3-5 s later; cluster-require-full-coverage is off, so
the other shards keep serving meanwhile.
"""
import subprocess

from .checks import wait_until
from .processes import free_port
from .proxy import Proxy
from .redis import RedisError, Resp


class ClusterSet:
    def __init__(self, lab, work, primaries=3, name="cluster", proxied=False, replication_proxied=False):
        self.lab = lab
        self.work = work
        self.servers = []
        self.proxies = {}   # a node's port -> the proxy in front of it (proxied=True)
        ports = set()
        while len(ports) < primaries * 4:   # a client port and a bus port for each node, all distinct
            ports.add(free_port())
        ports = sorted(ports)
        for i in range(primaries * 2):
            port, bus = ports[2 * i], ports[2 * i + 1]
            announce = []
            if proxied:
                self.proxies[port] = lab.proxy(port)
                announce = ["--cluster-announce-port", str(self.proxies[port].port), "--cluster-announce-bus-port", str(bus)]
            elif replication_proxied:
                self.proxies[port] = lab.add(Proxy(port, listen=("127.0.0.2", port)))
                lab.add(Proxy(bus, listen=("127.0.0.2", bus)))
                announce = ["--cluster-announce-ip", "127.0.0.2", "--cluster-announce-hostname", "127.0.0.1",
                            "--cluster-preferred-endpoint-type", "hostname"]
            self.servers.append(lab.redis(f"{name}-{i + 1}", port=port, extra=[
                "--cluster-enabled", "yes", "--cluster-port", str(bus), "--cluster-node-timeout", "2000",
                "--cluster-require-full-coverage", "no",
                "--cluster-config-file", f"{name}-nodes-{i + 1}.conf", *announce]))
        self.primaries = primaries
        self.created = ""   # what redis-cli --cluster create said (for a failed start's detail)

    @property
    def url(self):
        return "redis+cluster://" + ",".join(f"127.0.0.1:{self._announced(s.port)}" for s in self.servers[:self.primaries]) + "/"

    def server(self, port):
        return next(server for server in self.servers if server.port == port)

    def proxy(self, port):
        return self.proxies[port]

    def _announced(self, port):
        """The port a node's replicas connect to (its own, unless proxied=True)."""
        return self.proxies[port].port if port in self.proxies else port

    def replica_of(self, port):
        """The port of a live replica of the primary on `port` (None when it has none)."""
        for server in self.servers:
            role = server.alive() and self.ask(server.port, "ROLE")
            if role and role[0] == "slave" and int(role[2]) == self._announced(port):
                return server.port
        return None

    def primary_ports(self):
        return [s.port for s in self.servers if s.alive() and (self.ask(s.port, "ROLE") or [""])[0] == "master"]

    def start(self, timeout=60):
        for server in self.servers:
            if not server.start():
                return False
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *[f"127.0.0.1:{s.port}" for s in self.servers], "--cluster-replicas", "1",
             "--cluster-yes"], capture_output=True, text=True, timeout=60)
        self.created = created.stdout[-600:] + created.stderr[-600:]
        return created.returncode == 0 and bool(wait_until(self.whole, timeout, 0.1))

    def ask(self, port, *command):
        try:
            client = Resp(port, timeout=2)
            try:
                return client(*command)
            finally:
                client.close()
        except (OSError, RedisError):
            return None

    def owner(self, key):
        """The port of the primary that serves key's slot, as the live nodes see it."""
        slot = None
        for server in self.servers:
            if server.alive():
                slot = self.ask(server.port, "CLUSTER", "KEYSLOT", key)
                if slot is not None:
                    break
        for server in self.servers:
            if not server.alive():
                continue
            role = self.ask(server.port, "ROLE")
            if role and role[0] == "master":
                for line in (self.ask(server.port, "CLUSTER", "NODES") or "").splitlines():
                    fields = line.split()
                    if "myself" in fields[2] and any(_covers(r, slot) for r in fields[8:]):
                        return server.port
        return None

    def whole(self):
        """Every live node says cluster_state:ok, and every primary has a replica in sync."""
        alive = [s for s in self.servers if s.alive()]
        masters = 0
        for server in alive:
            if "cluster_state:ok" not in (self.ask(server.port, "CLUSTER", "INFO") or ""):
                return False
            role = self.ask(server.port, "ROLE")
            if not role:
                return False
            if role[0] == "master":
                masters += 1
                if len(role[2]) < 1:
                    return False
            elif role[3] != "connected":
                return False
        return masters == self.primaries


def _covers(text, slot):
    if slot is None or text.startswith("["):
        return False
    first, _, last = text.partition("-")
    return int(first) <= slot <= int(last or first)
