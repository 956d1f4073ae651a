"""09. Teardown: everything the suite created is removed

`docker-compose down --volumes --remove-orphans` (with both override files' services) leaves no
container, network or volume of the project; the built images stay in the suite's engine as a
cache for the next run (tests/compose/run stops that engine afterwards).
"""
from harness.checks import check

from . import ALL_FILES, PROJECT


def test_teardown(stack):
    code, out, err = stack.compose("down", "--volumes", "--remove-orphans", "--timeout", "15",
                                   files=ALL_FILES, timeout=300)
    check("docker-compose down --volumes --remove-orphans exits 0", code == 0, (out + err)[-1000:])
    label = f"label=com.docker.compose.project={PROJECT}"
    left = {
        "containers": stack.docker("ps", "-aq", "--filter", label)[1].split(),
        "networks": stack.docker("network", "ls", "-q", "--filter", label)[1].split(),
        "volumes": stack.docker("volume", "ls", "-q", "--filter", label)[1].split(),
        "unnamed volumes": stack.docker("volume", "ls", "-q", "--filter", "dangling=true")[1].split(),
    }
    check("no container, network or volume of the project is left (nor an unnamed volume, as redis:7's /data)",
          not any(left.values()), left)
