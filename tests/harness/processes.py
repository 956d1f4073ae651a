"""Ports, process stopping, log tails.

Ports are picked at random below the ephemeral range (32768 and up, where the kernel picks the
client side of outgoing connections) and above 20000 (6379-6399 belong to other Redis servers).
Every process started through this package is recorded in STARTED, so that whatever a fixture
finalizer missed is still stopped when pytest ends (tests/conftest.py: stop_all()).
"""
import os
import random
import signal
import socket
import subprocess

LOW, HIGH = 20000, 32000
STARTED = []   # every Popen started through the harness


def free_port():
    """A port nothing listens on now, in LOW..HIGH (the caller's process binds it soon after)."""
    for _ in range(500):
        port = random.randint(LOW, HIGH)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")


def listening_socket(backlog=512):
    """A TCP socket of our own listening on 127.0.0.1 at a port in LOW..HIGH (no race: bound here)."""
    for _ in range(500):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", random.randint(LOW, HIGH)))
        except OSError:
            sock.close()
            continue
        sock.listen(backlog)
        return sock
    raise RuntimeError(f"no free port in {LOW}-{HIGH}")


def refuses_connections(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1):
            return False
    except OSError:
        return True


def popen(argv, **kwargs):
    """subprocess.Popen, recorded in STARTED."""
    proc = subprocess.Popen(argv, **kwargs)
    STARTED.append(proc)
    return proc


def stop_process(proc, sig=signal.SIGTERM, timeout=10, group=False):
    """sig (SIGTERM), then SIGKILL after timeout seconds (to its process group when group: a process
    started with start_new_session=True leads its own), by id; returns the exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                if group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    return proc.returncode


def stop_all():
    """Stops every process the harness started that is still running (last started first)."""
    for proc in reversed(STARTED):
        try:
            stop_process(proc, timeout=5)
        except Exception:
            pass


def tail(path, lines=25, skip=None):
    """The last lines of a log file ("" when it cannot be read), without those containing skip."""
    try:
        with open(path, errors="replace") as handle:
            return "".join([line for line in handle if not skip or skip not in line][-lines:])
    except OSError:
        return ""
