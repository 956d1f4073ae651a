"""Fixtures of the deployment tests: the suite's users, and the topology (scripts/topology with 3
instances) that every scenario shares, started once."""
import os
import shutil

import pytest

from harness import checks
from harness.checks import precondition, require, say

from . import REDIS_TIMEOUT, USERS, topology_env


@pytest.fixture(scope="session")
def users():
    return USERS


@pytest.fixture(scope="session", autouse=True)
def suite(binary):
    say(f"topology tests: binary {binary}, instances' Redis timeout {REDIS_TIMEOUT:g} s")
    for tool in ("redis-server", "redis-cli", "nginx", "envsubst", "curl"):
        precondition(f"{tool} is installed", shutil.which(tool) is not None or os.path.exists(f"/usr/sbin/{tool}"))


@pytest.fixture(scope="session")
def topology(session_lab, credentials):
    """scripts/topology: redis-server, 3 tokengate instances, the sample app and nginx (topology.env)."""
    topology = session_lab.topology("topology", topology_env(credentials), instances=3, timeout=1500)
    up = topology.start(wait=120)
    require("scripts/topology starts redis, 3 instances, the app and nginx", up, topology.tail())
    say(f"   nginx {topology.env['NGINX_URL']}, instances {' '.join(topology.instance_urls())}, "
        f"app {topology.env['APP_URL']}, {topology.env['REDIS_URL']}")
    yield topology
    if any(tally.failed for tally in checks.TALLIES.values()):
        say(f"--- topology log ---\n{topology.tail()}")
        say(f"--- nginx error log ---\n{topology.tail(os.path.join(topology.dir, 'nginx', 'logs', 'error.log'))}")
