"""f. the app's Cache-Control behind the template, with and without a live successor token

Without rotation an app answer's own Cache-Control (public, max-age=3600) passes through the
template unchanged; with rotation (a second topology, TOKENGATE_ROTATION=per-request) an app answer
carries a live X-Next-Token, so it goes out as no-store, and so does the next answer, to the successor.
"""
import http.client

from harness.checks import check
from harness.http import Conn, port_of

from . import login, topology_env


def cache_controls(port, path, token):
    """GET through nginx: (status, every Cache-Control value, X-Next-Token or None)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        return (response.status, [v for k, v in response.getheaders() if k.lower() == "cache-control"],
                response.getheader("X-Next-Token"))
    finally:
        conn.close()


def test_cache_control(topology, lab, credentials):
    port = port_of(topology.env["NGINX_URL"])
    token, _ = login(Conn(port), "alice")
    status, values, successor = cache_controls(port, "/cached/page", token)
    check("without rotation the app's own Cache-Control passes unchanged (public, max-age=3600)",
          status == 200 and values == ["public, max-age=3600"] and successor is None, f"{status} {values} {successor}")

    # A second topology whose one instance rotates per request: every app answer through nginx
    # carries a live X-Next-Token, so a shared cache must never store it.
    rotating = lab.topology("rotating", topology_env(credentials, TOKENGATE_ROTATION="per-request"), instances=1)
    try:
        up = rotating.start(wait=120)
        if not check("a second topology with TOKENGATE_ROTATION=per-request starts", up, rotating.tail()):
            return
        port = port_of(rotating.env["NGINX_URL"])
        token, _ = login(Conn(port), "alice")
        status, values, successor = cache_controls(port, "/cached/page", token)
        check("with rotation an app answer that says public, max-age=3600 goes out as no-store with its X-Next-Token",
              status == 200 and values == ["no-store"] and bool(successor), f"{status} {values} {successor}")
        status, values, _ = cache_controls(port, "/cached/page", successor or "")
        check("... and so does the next answer, to the successor", status == 200 and values == ["no-store"], f"{status} {values}")
    finally:
        rotating.stop()
