"""Network namespaces of the tests' own, linked to the root namespace, and a partition that is a black hole.

    ns = Namespace.create("m")       # `ip netns add tgp<pid>m`, its loopback up
    link = ns.link()                 # a /30 of 10.213.0.0/16: link.root (root side), link.inside (namespace side)
    ns.prefix                        # ["ip", "netns", "exec", <name>]: put before a command to run it inside
    link.cut(); link.heal()          # packets vanish both ways (nothing is refused), then flow again
    ns.close()                       # every link and the namespace; idempotent (a fixture finalizer, Lab.add)

A link: the root side's address sits on a bridge of the link's own whose one port is the root end of
a veth pair; the other end, in the namespace, holds link.inside. cut() sets that bridge port down:
both ends keep their address and route (the bridge loses its carrier, the namespace's end its peer),
so every packet either way is dropped in silence, as in a real partition: connections hang until a
timeout, connects time out, established ones resume by retransmission after heal(). Permanent
neighbour entries on both sides keep an ARP failure from turning the black hole into "host
unreachable". Needs root, `ip` (iproute2) and a kernel with network namespaces, veth and bridges:
available() says whether they work here, and why not.

Names carry the test run's pid (tgp<pid>...): create() first removes namespaces and links left by
runs whose process is gone (a SIGKILLed run cannot clean up), and whatever this process made and did
not close is closed when it exits (atexit: after an interrupted run, whose fixtures may not be torn
down).
"""
import atexit
import os
import random
import re
import subprocess

PREFIX = "tgp"
_NAME = re.compile(rf"^{PREFIX}(\d+)")
MADE = []   # every Namespace this process created


@atexit.register
def close_all():
    for ns in MADE:
        try:
            ns.close()
        except Exception:
            pass


def _ip(*args, netns=None, check=True):
    argv = ["ip"] + (["netns", "exec", netns, "ip"] if netns else []) + list(args)
    result = subprocess.run(argv, capture_output=True, text=True, timeout=20)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {result.stderr.strip() or result.returncode}")
    return result


def available():
    """(True, "") when a namespace with a veth pair and a bridge can be made here, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not root"
    ns = None
    try:
        ns = Namespace.create("t")
        ns.link()
        return True, ""
    except (OSError, RuntimeError, subprocess.SubprocessError) as error:
        return False, str(error)
    finally:
        if ns is not None:
            ns.close()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale():
    """Deletes the namespaces and links (tgp<pid>...) of test runs whose process is gone."""
    for line in _ip("-o", "link", "show", check=False).stdout.splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        found = _NAME.match(name)
        if found and not _alive(int(found.group(1))):
            _ip("link", "del", name, check=False)
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        found = _NAME.match(name)
        if found and not _alive(int(found.group(1))):
            _ip("netns", "del", name, check=False)


def _used_addresses():
    return set(re.findall(r"inet (\d+\.\d+\.\d+\.\d+)", _ip("-4", "-o", "addr", "show", check=False).stdout))


class Link:
    """A /30 between the root namespace (`root`, on bridge `bridge`) and a namespace (`inside`)."""

    def __init__(self, ns, index):
        self.ns = ns
        stem = f"{ns.name}{index}"
        self.bridge, self.port, self.peer = stem + "b", stem + "r", stem + "m"
        used = _used_addresses()
        for _ in range(100):
            base = (10 << 24) | (213 << 16) | (random.randrange(256) << 8) | (random.randrange(64) * 4)
            root, inside = _dotted(base + 1), _dotted(base + 2)
            if root not in used and inside not in used:
                break
        self.root, self.inside = root, inside
        self.made = []   # root-namespace links to delete at close (deleting a veth end deletes its peer)
        self.is_cut = False

    def make(self):
        ns = self.ns
        _ip("link", "add", self.bridge, "type", "bridge", "forward_delay", "0", "stp_state", "0")
        self.made.append(self.bridge)
        _ip("link", "add", self.port, "type", "veth", "peer", "name", self.peer)
        self.made.append(self.port)
        _ip("link", "set", self.peer, "netns", ns.name)
        _ip("link", "set", self.port, "master", self.bridge)
        _ip("addr", "add", f"{self.root}/30", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        _ip("link", "set", self.port, "up")
        _ip("addr", "add", f"{self.inside}/30", "dev", self.peer, netns=ns.name)
        _ip("link", "set", self.peer, "up", netns=ns.name)
        inside_mac = ns.run(["cat", f"/sys/class/net/{self.peer}/address"]).stdout.strip()
        with open(f"/sys/class/net/{self.bridge}/address") as handle:
            bridge_mac = handle.read().strip()
        _ip("neigh", "replace", self.inside, "lladdr", inside_mac, "dev", self.bridge, "nud", "permanent")
        _ip("neigh", "replace", self.root, "lladdr", bridge_mac, "dev", self.peer, "nud", "permanent", netns=ns.name)
        return self

    def cut(self):
        """A black hole both ways: the bridge's one port down."""
        _ip("link", "set", self.port, "down")
        self.is_cut = True

    def heal(self):
        _ip("link", "set", self.port, "up")
        self.is_cut = False

    def close(self):
        for name in reversed(self.made):
            _ip("link", "del", name, check=False)
        self.made.clear()


def _dotted(value):
    return ".".join(str((value >> shift) & 255) for shift in (24, 16, 8, 0))


class Namespace:
    """A network namespace named tgp<pid><tag> (tag: one character, unique within the run)."""

    def __init__(self, name):
        self.name = name
        self.links = []
        self.closed = False

    @classmethod
    def create(cls, tag):
        remove_stale()
        name = f"{PREFIX}{os.getpid()}{tag}"
        _ip("netns", "del", name, check=False)   # left by an earlier scenario of this run that failed to close it
        _ip("netns", "add", name)
        ns = cls(name)
        MADE.append(ns)
        try:
            _ip("link", "set", "lo", "up", netns=name)
        except RuntimeError:
            ns.close()
            raise
        return ns

    @property
    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def run(self, argv, timeout=20):
        return subprocess.run(self.prefix + list(argv), capture_output=True, text=True, timeout=timeout, check=True)

    def link(self):
        link = Link(self, len(self.links))
        self.links.append(link)   # before anything is made: close() deletes what make() got to
        return link.make()

    def close(self):
        if self.closed:
            return
        self.closed = True
        for link in self.links:
            link.close()
        _ip("netns", "del", self.name, check=False)
