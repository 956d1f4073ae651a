"""The recipes of docs/forward-auth.md, run as they are: each proxy started from the repository's own
file (deploy/nginx, deploy/caddy, deploy/traefik, deploy/envoy, deploy/haproxy) on a free port of
127.0.0.1, in front of one TokenGate and the suite's app.

    proxy = start("caddy", work, name, tg_port, app_port, secret)   # a Proxied, listening
    proxy.port, proxy.tail(), proxy.stop()
"""
import os
import re
import shutil
import string
import subprocess
import sys

from harness.checks import wait_until
from harness.http import http_call
from harness.processes import free_port, popen, refuses_connections, stop_process, tail

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
PROXIES = ("nginx", "caddy", "traefik", "envoy", "haproxy")


def tool(name):
    """A proxy's program: Debian's (nginx, caddy, haproxy) or the venv's (traefik, envoy from PyPI)."""
    here = os.path.join(os.path.dirname(sys.executable), name)
    return here if os.path.exists(here) else shutil.which(name) or f"/usr/sbin/{name}"


class Proxied:
    def __init__(self, kind, proc, port, log_path, directory):
        self.kind = kind
        self.proc = proc
        self.port = port
        self.log_path = log_path
        self.dir = directory

    def tail(self, lines=20):
        return tail(self.log_path, lines)

    def stop(self):
        # nginx's master ends its workers on SIGTERM/SIGQUIT; the others are one process.
        return stop_process(self.proc)

    close = stop


def _render(path, values):
    with open(path) as handle:
        return string.Template(handle.read()).substitute(values)


def _nginx(directory, tg, app, listen, secret, env):
    """The template rendered with envsubst's four names (TokenGate's requests to its upstream block), a main nginx.conf around it (the one in
    docs/forward-auth.md), and tokengate-proxy-secret.conf beside it."""
    listed = " ".join("${%s}" % name for name in ("TG_UPSTREAM_SERVER", "TG_BACKEND", "APP_UPSTREAM_SERVER", "LISTEN_ADDRESS"))
    with open(os.path.join(DEPLOY, "nginx", "tokengate.conf.template")) as template:
        rendered = subprocess.run(["envsubst", listed], stdin=template, capture_output=True, text=True, check=True,
                                  env={**os.environ, "TG_UPSTREAM_SERVER": tg, "TG_BACKEND": "tokengate", "APP_UPSTREAM_SERVER": app,
                                       "LISTEN_ADDRESS": listen}).stdout
    with open(os.path.join(directory, "tokengate.conf"), "w") as handle:
        handle.write(rendered)
    with open(os.path.join(directory, "tokengate-proxy-secret.conf"), "w") as handle:
        os.chmod(handle.name, 0o600)
        handle.write(f'proxy_set_header X-TokenGate-Proxy-Secret "{secret}";\n')
    os.makedirs(os.path.join(directory, "tmp"), exist_ok=True)
    user = "user nobody nogroup;" if os.getuid() == 0 else ""
    with open(os.path.join(directory, "nginx.conf"), "w") as handle:
        handle.write(f"""{user}
worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/proxy.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {directory}/tmp/client_body;
    proxy_temp_path {directory}/tmp/proxy;
    fastcgi_temp_path {directory}/tmp/fastcgi;
    uwsgi_temp_path {directory}/tmp/uwsgi;
    scgi_temp_path {directory}/tmp/scgi;
    include tokengate.conf;
}}
""")
    return [tool("nginx"), "-p", directory, "-e", f"{directory}/proxy.log", "-c", f"{directory}/nginx.conf",
            "-g", "daemon off;"], env


def _caddy(directory, tg, app, listen, secret, env):
    return [tool("caddy"), "run", "--config", os.path.join(DEPLOY, "caddy", "Caddyfile"), "--adapter", "caddyfile"], \
        {**env, "XDG_DATA_HOME": directory, "XDG_CONFIG_HOME": directory, "HOME": directory}


def _traefik(directory, tg, app, listen, secret, env):
    return [tool("traefik"), f"--entryPoints.web.address={listen}",
            f"--providers.file.filename={os.path.join(DEPLOY, 'traefik', 'dynamic.yml')}",
            "--global.checkNewVersion=false", "--global.sendAnonymousUsage=false", "--log.level=ERROR"], env


def _envoy(directory, tg, app, listen, secret, env):
    host_port = {}
    for name, address in (("TG", tg), ("APP", app), ("LISTEN", listen)):
        host_port[f"{name}_HOST"], host_port[f"{name}_PORT"] = address.rsplit(":", 1)
    path = os.path.join(directory, "envoy.yaml")
    with open(path, "w") as handle:
        handle.write(_render(os.path.join(DEPLOY, "envoy", "envoy.yaml"), {**host_port, "PROXY_SECRET": secret}))
    return [tool("envoy"), "-c", path, "--base-id", str(free_port()), "--log-level", "error",
            "--disable-hot-restart"], env


def _haproxy(directory, tg, app, listen, secret, env):
    return [tool("haproxy"), "-db", "-f", os.path.join(DEPLOY, "haproxy", "haproxy.cfg")], \
        {**env, "TG_AUTH_LUA": os.path.join(DEPLOY, "haproxy", "tokengate-auth.lua")}


def _reaches_app(port):
    if refuses_connections(port):
        return False
    status, headers, _ = http_call(port, "GET", "/app/static/ready", timeout=2)
    return status == 200 and headers.get("x-from-app") == "1"


STARTERS = {"nginx": _nginx, "caddy": _caddy, "traefik": _traefik, "envoy": _envoy, "haproxy": _haproxy}


def start(kind, work, name, tg_port, app_port, secret, wait=30):
    """Starts proxy `kind` on a free port (another one if that is taken meanwhile); None if it does not
    come up (its log tail says why)."""
    directory = os.path.join(work, f"{kind}-{name}")
    os.makedirs(directory, exist_ok=True)
    os.chmod(directory, 0o711)
    for _ in range(3):
        port = free_port()
        listen = f"127.0.0.1:{port}"
        env = {**os.environ, "TG_UPSTREAM_SERVER": f"127.0.0.1:{tg_port}", "APP_UPSTREAM_SERVER": f"127.0.0.1:{app_port}",
               "LISTEN_ADDRESS": listen, "PROXY_SECRET": secret}
        argv, env = STARTERS[kind](directory, f"127.0.0.1:{tg_port}", f"127.0.0.1:{app_port}", listen, secret, env)
        log_path = os.path.join(directory, "proxy.out")
        with open(log_path, "ab") as log:
            proc = popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=directory,
                         start_new_session=True)
        # Up once a public path reaches the app (Traefik listens before its routes are loaded).
        up = wait_until(lambda p=proc, n=port: p.poll() is not None or _reaches_app(n), wait, 0.05)
        if up and proc.poll() is None:
            return Proxied(kind, proc, port, log_path, directory)
        stop_process(proc)
        if not re.search(r"in use|bind", tail(log_path, 10) + tail(os.path.join(directory, "proxy.log"), 10), re.I):
            return None
    return None
