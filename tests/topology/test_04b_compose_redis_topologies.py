"""d2. docker-compose.sentinel.yml and docker-compose.cluster.yml over docker-compose.yml

Each override passes `docker-compose config -q` together with the base file, and the merged
configuration (read as YAML) holds: Sentinel: two replicas of `redis`, three sentinels monitoring it
as "tokengate" (quorum 2), and the instances on redis+sentinel:// naming all three, with
TOKENGATE_REDIS_WAIT=1, waiting for healthy sentinels. Cluster: six cluster-enabled nodes on fixed
addresses, a one-shot cluster-init joining all six with a replica each, and the instances on
redis+cluster:// naming nodes of it, started only after cluster-init succeeded.
"""
import os
import shutil
import subprocess

import yaml

from harness.checks import check
from harness.topology import ROOT


def merged(compose, override):
    """The services of docker-compose.yml with `override` over it (None when config fails)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and not k.startswith("DOCKER_")}
    files = ["-f", "docker-compose.yml", "-f", override]
    quiet = subprocess.run([compose, *files, "config", "-q"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    check(f"docker-compose config -q passes with {override}", quiet.returncode == 0, quiet.stderr.strip()[-300:])
    out = subprocess.run([compose, *files, "config"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60).stdout
    return (yaml.safe_load(out) or {}).get("services", {})


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
    check("sentinel: two replicas of redis", all("--replicaof redis 6379" in text(r) for r in replicas), str([text(r) for r in replicas]))
    sentinels = [services.get(f"sentinel-{i}", {}) for i in (1, 2, 3)]
    check("sentinel: three sentinels monitor redis as tokengate with quorum 2",
          all("sentinel monitor tokengate redis 6379 2" in text(s) and "--sentinel" in text(s) for s in sentinels))

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
