"""01. `docker-compose up -d --build` on a fresh copy, with nothing before it

The images build from the unchanged Dockerfile and deploy/app/Dockerfile; `up` starts init (which
writes the secrets and prints the demo login once), Redis, 3 TokenGate replicas, the app and nginx;
every health check passes (TokenGate's looks at Redis: /readyz); the demo login from the init log
works through the published port; TokenGate runs as 10001 on a read-only root file system; image
sizes and the time from `up` to a working login and to every container healthy are reported.
"""
import time

from harness.checks import check, note, require
from harness.http import Conn, login

from . import wait_for
from .conftest import build_images


def test_fresh_up(stack):
    started = time.monotonic()
    code, out, err = build_images(stack)
    require("docker-compose build: both images build from the unchanged Dockerfiles", code == 0, (out + err)[-3000:])
    note(f"image build: {time.monotonic() - started:.0f} s (cached layers count as built)")
    for image in ("tokengate:latest", "tokengate-sample-app:latest"):
        size = stack.docker("image", "inspect", "-f", "{{.Size}}", image)[1].strip()
        note(f"image {image}: {int(size or 0) / 1e6:.0f} MB")

    started = time.monotonic()
    code, out, err = stack.compose("up", "-d", "--build", timeout=1800)
    up_seconds = time.monotonic() - started
    require("docker-compose up -d --build exits 0", code == 0, (out + err)[-3000:])
    note(f"`up -d --build` returned after {up_seconds:.1f} s")

    demo = stack.demo_login()
    stack.demo = demo
    require("`docker-compose logs init` has the line `demo login: user=<name> password=<password>`", demo,
            "" if demo else stack.logs("init")[-1000:])
    check("init printed the password once, in that one line", stack.logs("init").count(demo[1]) == 1)
    init = stack.containers("init", all_states=True)
    check("init exited 0", init and stack.inspect(init[0])["State"]["ExitCode"] == 0)

    conn = Conn(stack.port)

    def logged_in():
        status, _, data = conn.request("POST", "/auth/login", json_body={"username": demo[0], "password": demo[1]})
        return status == 200

    check("the demo login works through 127.0.0.1 (published port)", wait_for(logged_in, 120))
    note(f"from `up` to a working login: {time.monotonic() - started:.1f} s")
    healthy = wait_for(lambda: stack.all_healthy("tokengate", 3) and stack.all_healthy("app", 1), 120)
    check("3 TokenGate replicas and the app report healthy (TokenGate's check: /readyz, which asks Redis)", healthy,
          [(c[:12], stack.health(c)) for c in stack.containers("tokengate") + stack.containers("app")])
    note(f"from `up` to every container healthy: {time.monotonic() - started:.1f} s")
    token, _ = login(conn, *demo)
    status, _, _ = conn.request("GET", "/auth/verify", token=token)
    check("its token verifies", status == 200, status)

    for container in stack.containers("tokengate"):
        info = stack.inspect(container)
        top = stack.docker("top", container, "-o", "pid,uid,args")[1]
        check(f"replica {container[:12]}: user 10001, read-only root file system, the process runs as uid 10001",
              info["Config"]["User"] == "10001:10001" and info["HostConfig"]["ReadonlyRootfs"]
              and any(line.split()[1] == "10001" and "tokengate" in line for line in top.splitlines()[1:]),
              f"{info['Config']['User']} ro={info['HostConfig']['ReadonlyRootfs']} {top}")
    app = stack.containers("app")
    check("the app runs as its own non-root user on a read-only root file system",
          app and stack.inspect(app[0])["HostConfig"]["ReadonlyRootfs"]
          and stack.inspect(app[0])["Config"]["User"] not in ("", "root", "0"))
