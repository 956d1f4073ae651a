"""d. docker-compose.yml, Dockerfile and the shared nginx template

docker-compose config -q passes; compose's nginx mounts the template the native script renders, its
placeholders are exactly compose's nginx environment, and the native config is the template with
only the addresses filled in; compose runs 3 replicas with the key and users from secrets files,
Redis 7 with noeviction, appendonly and a health check, trusts exactly nginx's address as a proxy,
and nginx waits for healthy replicas; the Dockerfile builds a release binary into
debian:bookworm-slim, non-root, with a HEALTHCHECK and STOPSIGNAL SIGTERM, and no signing key; the
image's health check script tells a live instance from a dead one.
"""
import os
import re
import shutil
import socket
import subprocess

from harness.checks import check
from harness.topology import ROOT


def service_block(config, name):
    """The lines of one service in `docker-compose config` output (2-space YAML indentation)."""
    match = re.search(rf"^  {re.escape(name)}:\n((?:    .*\n|\s*\n)*)", config, re.M)
    return match.group(1) if match else ""


def render_template(template, servers, app, listen):
    out = []
    for line in template.splitlines(keepends=True):
        if "${TG_UPSTREAM_SERVER}" in line and not line.lstrip().startswith("#"):
            out.extend(line.replace("${TG_UPSTREAM_SERVER}", server) for server in servers)
        else:
            out.append(line)
    text = "".join(out)
    text = text.replace("${APP_UPSTREAM_SERVER}", app).replace("${LISTEN_ADDRESS}", listen)
    return text.replace("${TG_BACKEND}", "tokengate")


def test_compose_and_docker(topology):
    compose = shutil.which("docker-compose")
    if not check("docker-compose is installed (Debian package docker-compose)", compose is not None):
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and not k.startswith("DOCKER_")}
    quiet = subprocess.run([compose, "-f", "docker-compose.yml", "config", "-q"], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=60)
    check("docker-compose config -q passes", quiet.returncode == 0, quiet.stderr.strip()[-300:])
    full = subprocess.run([compose, "-f", "docker-compose.yml", "config"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60).stdout
    template_path = os.path.join(ROOT, "deploy", "nginx", "tokengate.conf.template")
    nginx = service_block(full, "nginx")
    tokengate = service_block(full, "tokengate")
    redis = service_block(full, "redis")
    check("native script renders deploy/nginx/tokengate.conf.template",
          os.path.realpath(topology.env["NGINX_TEMPLATE"]) == os.path.realpath(template_path),
          topology.env["NGINX_TEMPLATE"])
    check("compose nginx mounts that same file as an nginx template",
          f"- {template_path}:/etc/nginx/templates/tokengate.conf.template:ro" in nginx, nginx[:400])
    with open(template_path) as handle:
        template = handle.read()
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    check("the template's placeholders are exactly the compose nginx environment",
          placeholders == {"TG_UPSTREAM_SERVER", "APP_UPSTREAM_SERVER", "LISTEN_ADDRESS", "TG_BACKEND"}
          and all(re.search(rf"^      {p}: \S", nginx, re.M) for p in placeholders), str(sorted(placeholders)))
    with open(topology.env["NGINX_RENDERED"]) as handle:
        rendered = handle.read()
    servers = [url.replace("http://", "") for url in topology.instance_urls()]
    expected = render_template(template, servers, topology.env["APP_URL"].replace("http://", ""),
                               topology.env["NGINX_URL"].replace("http://", ""))
    check("the native config is the template with only the addresses filled in", rendered == expected)
    check("compose: 3 tokengate replicas", re.search(r"^      replicas: 3$", tokengate, re.M) is not None)
    check("compose: signing key and users file come from the secrets volume init writes, not the image",
          "TOKENGATE_SIGNING_KEY_FILE: /var/lib/tokengate/secrets/signing.key" in tokengate
          and "TOKENGATE_USERS_FILE: /var/lib/tokengate/secrets/users.htpasswd" in tokengate
          and "TOKENGATE_SIGNING_KEY:" not in tokengate
          and "- secrets:/var/lib/tokengate/secrets:ro" in tokengate
          and "    - init\n    - --dir\n    - /var/lib/tokengate/secrets\n" in service_block(full, "init"))
    check("compose: TOKENGATE_LISTEN=0.0.0.0:8080, Redis at redis:6379",
          "TOKENGATE_LISTEN: 0.0.0.0:8080" in tokengate and "redis://redis:6379" in tokengate)
    check("compose: redis 7 with noeviction, appendonly yes and a health check",
          "image: redis:7" in redis and "- noeviction" in redis and '- "yes"' in redis and "healthcheck:" in redis
          and re.search(r"--appendonly\n\s+- \"yes\"", redis) is not None)
    app = service_block(full, "app")
    nginx_address = re.search(r"ipv4_address: (\S+)", nginx)
    trusted = {name: re.search(r"TOKENGATE_TRUSTED_PROXIES: (\S+)", block) for name, block in (("tokengate", tokengate), ("app", app))}
    check("compose: TokenGate and the app trust exactly nginx's fixed address as a proxy (no private ranges)",
          nginx_address is not None and all(m is not None and m.group(1) == nginx_address.group(1) for m in trusted.values()),
          f"nginx {nginx_address and nginx_address.group(1)}, trusted {[m and m.group(1) for m in trusted.values()]}")
    check("compose: nginx waits for healthy tokengate replicas",
          re.search(r"tokengate:\n\s+condition: service_healthy", nginx) is not None)
    with open(os.path.join(ROOT, "Dockerfile")) as handle:
        dockerfile = handle.read()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    check("Dockerfile: swift build stage, then debian:bookworm-slim",
          len(stages) == 2 and stages[0].startswith("swift:") and stages[1] == "debian:bookworm-slim", str(stages))
    check("Dockerfile: release build of tokengate, libhiredis0.14, non-root USER, HEALTHCHECK, STOPSIGNAL SIGTERM",
          "swift build -c release --product tokengate" in dockerfile and "libhiredis0.14" in dockerfile
          and re.search(r"^USER (?!root|0\b)\S+", dockerfile, re.M) is not None
          and re.search(r"^HEALTHCHECK .*tokengate-healthcheck", dockerfile, re.M) is not None
          and re.search(r"^STOPSIGNAL SIGTERM$", dockerfile, re.M) is not None)
    check("no signing key in the Dockerfile or the image context",
          "TOKENGATE_SIGNING_KEY=" not in dockerfile
          and "deploy/secrets" in open(os.path.join(ROOT, ".dockerignore")).read())
    healthcheck = os.path.join(ROOT, "deploy", "docker", "healthcheck")
    live = topology.instance_urls()[0].replace("http://", "")
    ok = subprocess.run([healthcheck], env=dict(os.environ, TOKENGATE_LISTEN=live), timeout=10).returncode
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        unused = probe.getsockname()[1]
    closed = subprocess.run([healthcheck], env=dict(os.environ, TOKENGATE_LISTEN=f"127.0.0.1:{unused}"),
                            timeout=10, capture_output=True).returncode
    check("the image's health check script: 0 for a live instance, non-zero for a dead one", ok == 0 and closed != 0,
          f"live={ok} dead={closed}")
