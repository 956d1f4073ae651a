"""scripts/topology as a fixture: its own redis-server, N tokengate instances, the Flask sample app
and nginx rendered from deploy/nginx/tokengate.conf.template (the template docker-compose.yml uses).

    topology = Topology(binary, work, "topology", env={"TOKENGATE_COOKIE": "on"}, instances=2)
    topology.start()         # True once scripts/topology wrote topology.env (read into .env)
    topology.env["NGINX_URL"], topology.instance_urls(), topology.instance_pids()
    topology.stop()          # SIGTERM: it stops everything it started; its exit status
"""
import os
import signal
import subprocess

from .checks import wait_until
from .processes import popen, tail

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class Topology:
    def __init__(self, binary, work, name="topology", env=None, instances=3, timeout=1500):
        self.binary = binary
        self.work = work
        self.dir = os.path.join(work, name)
        self.log_path = os.path.join(work, f"{name}.log")
        self.extra_env = dict(env or {})
        self.instances = instances
        self.timeout = timeout     # scripts/topology stops by itself after this many seconds
        self.proc = None
        self.env = {}

    def start(self, wait=180):
        env = dict(os.environ, TOKENGATE_BINARY=self.binary, **self.extra_env)
        with open(self.log_path, "w") as log:
            self.proc = popen(
                [os.path.join(ROOT, "scripts", "topology"), "--instances", str(self.instances), "--dir", self.dir,
                 "--timeout", str(self.timeout), "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        env_file = os.path.join(self.dir, "topology.env")
        if not wait_until(lambda: os.path.exists(env_file) or self.proc.poll() is not None, wait, 0.1) \
                or not os.path.exists(env_file):
            return False
        with open(env_file) as handle:
            for line in handle:
                key, _, value = line.strip().partition("=")
                self.env[key] = value.strip("'")
        return True

    def instance_urls(self):
        return [self.env[f"TOKENGATE_{i}_URL"] for i in range(1, int(self.env["TOKENGATE_COUNT"]) + 1)]

    def instance_pids(self):
        return [int(self.env[f"TOKENGATE_{i}_PID"]) for i in range(1, int(self.env["TOKENGATE_COUNT"]) + 1)]

    def stop(self, timeout=45):
        """SIGTERM to scripts/topology (it stops its children); returns its exit status, or None if it
        had to be SIGKILLed (its own process group, by id)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
                return None
        return self.proc.returncode

    def tail(self, path=None, lines=30):
        return tail(path or self.log_path, lines)
