"""Fixtures of the compose tests: a fresh copy of the repository and its compose project, shared
by every scenario (they run in file order) and taken down at the end of the run."""
import os
import shutil
import subprocess

import pytest

from harness import checks
from harness.checks import precondition, say
from harness.processes import free_port

from . import ALL_FILES, PROJECT, TEST_OVERRIDE, Stack, run

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def fresh_copy(destination):
    """The repository's files as a clone of this work tree would have them: tracked and untracked
    files that git does not ignore (so no secrets, no build folders)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (entry.decode() for entry in listed)):
        source = os.path.join(ROOT, name)
        if not os.path.lexists(source):
            continue   # deleted in the work tree, not yet in the index
        target = os.path.join(destination, name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    shutil.copy2(os.path.join(ROOT, "tests", "compose", TEST_OVERRIDE), os.path.join(destination, TEST_OVERRIDE))



@pytest.fixture(scope="session", autouse=True)
def suite():
    precondition("DOCKER_HOST names the suite's own engine (tests/compose/run starts it)",
                 os.environ.get("DOCKER_HOST", "").startswith("unix://"), os.environ.get("DOCKER_HOST"))
    precondition("docker-compose is installed", shutil.which("docker-compose") is not None)


@pytest.fixture(scope="session")
def stack(work):
    directory = os.path.join(work, "tokengate")
    os.makedirs(directory)
    fresh_copy(directory)
    precondition("the fresh copy has no secrets", not [name for name in os.listdir(os.path.join(directory, "deploy", "secrets"))
                                                        if name != ".gitignore"])
    # The harness's free port is below the ephemeral range: a port of that range can be taken
    # meanwhile as the local end of any outgoing connection, and docker then cannot publish it.
    stack = Stack(directory, free_port())
    # Whatever an interrupted earlier run left in the engine's cache.
    stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "5",
                  files=ALL_FILES, timeout=300)
    say(f"   fresh copy {directory}, published port 127.0.0.1:{stack.port}, project {PROJECT}")
    yield stack
    if any(tally.failed for tally in checks.TALLIES.values()):
        for service in ("init", "tokengate", "app", "nginx", "redis"):
            say(f"--- {service} log ---\n{stack.logs(service)[-4000:]}")
    # Whatever a scenario left up (also with the Cluster override's services).
    stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "20",
                  files=ALL_FILES, timeout=300)


def build_images(stack):
    """`docker-compose build`, under TOKENGATE_BUILD_LOCK when set (a machine that shares its cores
    takes turns at the ~10 minute release build). `up --build` afterwards finds every layer built."""
    lock = os.environ.get("TOKENGATE_BUILD_LOCK")
    command = ["flock", lock] if lock else []
    return run(command + ["docker-compose", "-f", "docker-compose.yml", "-f", TEST_OVERRIDE, "build"],
               cwd=stack.dir, env=stack.env, timeout=3600)
