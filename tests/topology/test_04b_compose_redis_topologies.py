"""d2. docker-compose.sentinel.yml and docker-compose.cluster.yml over docker-compose.yml

Each override passes `docker-compose config -q` together with the base file, and the merged
configuration (read as YAML) holds: Sentinel: `redis` and two replicas of it on fixed addresses,
the replicas and three sentinels naming it by that address (no name for a sentinel to look up while
the container is stopped), the sentinels monitoring it as "tokengate" (quorum 2), and the instances
on redis+sentinel:// naming all three, with TOKENGATE_REDIS_WAIT=1, waiting for healthy sentinels.
Cluster: six cluster-enabled nodes on fixed addresses, a one-shot cluster-init joining all six with
a replica each, and the instances on redis+cluster:// naming nodes of it, started only after
cluster-init succeeded. With each override
and without, every fixed address lies in the network's subnet but outside its ip_range, the range
Docker takes the other containers' addresses from (one of those took nginx's 172.28.0.10 once the
Sentinel override added five containers, and nginx could not start).
"""
import ipaddress
import os
import shutil
import subprocess

import yaml

from harness.checks import check
from harness.topology import ROOT


def configuration(compose, override=None):
    """docker-compose.yml's configuration, with `override` over it when given (read as YAML)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and not k.startswith("DOCKER_")}
    files = ["-f", "docker-compose.yml"] + (["-f", override] if override else [])
    out = subprocess.run([compose, *files, "config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    return yaml.safe_load(out) or {}


def merged(compose, override):
    """The services of docker-compose.yml with `override` over it (empty when config fails)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and not k.startswith("DOCKER_")}
    files = ["-f", "docker-compose.yml", "-f", override]
    quiet = subprocess.run([compose, *files, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    check(f"docker-compose config -q passes with {override}", quiet.returncode == 0, quiet.stderr.strip()[-300:])
    return configuration(compose, override).get("services", {})


def fixed_addresses_outside_range(compose, override):
    """Checks that every fixed address on the backend network is in its subnet, outside its
    ip_range, and held by one service only."""
    config = configuration(compose, override)
    ipam = ((config.get("networks", {}).get("backend") or {}).get("ipam") or {}).get("config") or [{}]
    subnet, pool = ipam[0].get("subnet"), ipam[0].get("ip_range")
    fixed = {name: ((service.get("networks") or {}).get("backend") or {}).get("ipv4_address")
             for name, service in config.get("services", {}).items()}
    fixed = {name: address for name, address in fixed.items() if address}
    inside = subnet and pool and all(ipaddress.ip_address(a) in ipaddress.ip_network(subnet)
                                     and ipaddress.ip_address(a) not in ipaddress.ip_network(pool) for a in fixed.values())
    check(f"{override or 'docker-compose.yml alone'}: the fixed addresses are in the subnet, outside ip_range "
          "(the other containers' addresses), one service each",
          bool(fixed) and bool(inside) and len(set(fixed.values())) == len(fixed), f"subnet {subnet}, ip_range {pool}, {fixed}")


def text(service):
    """A service's command or entrypoint as one string."""
    parts = service.get("entrypoint") or service.get("command") or []
    return " ".join(parts) if isinstance(parts, list) else str(parts)


def test_compose_redis_topologies():
    compose = shutil.which("docker-compose")
    if not check("docker-compose is installed (Debian package docker-compose)", compose is not None):
        return
    services = merged(compose, "docker-compose.sentinel.yml")
    tokengate = services.get("tokengate", {})
    environment = tokengate.get("environment", {})
    check("sentinel: the instances use redis+sentinel:// with the three sentinels and the name tokengate",
          environment.get("TOKENGATE_REDIS_URL") == "redis+sentinel://sentinel-1:26379,sentinel-2:26379,sentinel-3:26379/tokengate/0",
          environment.get("TOKENGATE_REDIS_URL"))
    check("sentinel: TOKENGATE_REDIS_WAIT=1", str(environment.get("TOKENGATE_REDIS_WAIT")) == "1")
    depends = tokengate.get("depends_on", {})
    check("sentinel: the instances wait for healthy sentinels",
          all(depends.get(f"sentinel-{i}", {}).get("condition") == "service_healthy" for i in (1, 2, 3)), str(depends))
    replicas = [services.get(f"redis-replica-{i}", {}) for i in (1, 2)]
    nodes = [services.get("redis", {})] + replicas
    addresses = [((n.get("networks") or {}).get("backend") or {}).get("ipv4_address") for n in nodes]
    primary = addresses[0]
    check("sentinel: redis and its replicas on fixed addresses", all(addresses) and len(set(addresses)) == 3, str(addresses))
    check("sentinel: two replicas of redis, by its address",
          all(f"--replicaof {primary} 6379" in text(r) for r in replicas), str([text(r) for r in replicas]))
    sentinels = [services.get(f"sentinel-{i}", {}) for i in (1, 2, 3)]
    check("sentinel: three sentinels monitor redis by its address as tokengate with quorum 2",
          all(f"sentinel monitor tokengate {primary} 6379 2" in text(s) and "--sentinel" in text(s) for s in sentinels),
          str([text(s) for s in sentinels]))

    services = merged(compose, "docker-compose.cluster.yml")
    nodes = [services.get(f"redis-node-{i}", {}) for i in range(1, 7)]
    addresses = [n.get("networks", {}).get("backend", {}).get("ipv4_address") for n in nodes]
    check("cluster: six cluster-enabled nodes on fixed addresses",
          all("--cluster-enabled yes" in text(n) for n in nodes) and all(addresses) and len(set(addresses)) == 6, str(addresses))
    init = text(services.get("cluster-init", {}))
    check("cluster: cluster-init joins all six, a replica each",
          all(f"{address}:6379" in init for address in addresses) and "--cluster-replicas 1" in init, init)
    tokengate = services.get("tokengate", {})
    url = tokengate.get("environment", {}).get("TOKENGATE_REDIS_URL", "")
    seeds = [part.rsplit(":", 1)[0] for part in url.removeprefix("redis+cluster://").rstrip("/").split(",")]
    check("cluster: the instances use redis+cluster:// naming nodes of the cluster",
          url.startswith("redis+cluster://") and set(seeds) <= set(addresses), url)
    check("cluster: the instances start after cluster-init succeeded",
          tokengate.get("depends_on", {}).get("cluster-init", {}).get("condition") == "service_completed_successfully")

    for override in (None, "docker-compose.sentinel.yml", "docker-compose.cluster.yml"):
        fixed_addresses_outside_range(compose, override)
