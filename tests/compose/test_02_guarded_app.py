"""02. The guarded app through nginx, and the sample app's own login view

Through the published port: an app page is 401 without a token and 200 with the demo user's (the
app sees X-Auth-User); the Flask sample app's own user (added with `docker-compose exec app ...
add-user`) signs in at /app/login, which starts the session through TokenGate's service API, and
that token opens the app as that user; a user added with `docker compose run --rm -T init user
add alice` and a `SIGHUP` (`docker compose kill -s HUP tokengate`) logs in on every replica, with no
restart (the README's steps); the service API (/admin/v1/ on port 9090) is not reachable
from the published port: nginx guards /admin/ like any app path, and port 9090 is not published.
"""
import http.client
import re
from urllib.parse import urlencode

from harness.checks import check, require
from harness.http import Conn, http_call, login, parse_json

from . import PROJECT, wait_for


def test_guarded_app(stack):
    demo = stack.credentials()
    conn = Conn(stack.port)
    token, _ = login(conn, *demo)
    status, _, _ = conn.request("GET", "/reports/42")
    check("an app page without a token: 401", status == 401, status)
    status, _, data = conn.request("GET", "/reports/42", token=token)
    body = parse_json(data) or {}
    check("with the demo user's token: 200 from the app, which sees X-Auth-User", status == 200
          and body.get("app") == "sample" and body.get("x_auth_user") == demo[0], (status, data[:300]))

    code, out, err = stack.compose("exec", "-T", "app", "python3", "/app/app.py", "add-user", "carol",
                                   stdin="carol-password-1\n", timeout=120)
    require("`docker-compose exec -T app python3 /app/app.py add-user carol` adds the app's own user", code == 0, out + err)
    form = urlencode({"username": "carol", "password": "carol-password-1", "next": "/app/"})
    origin = f"http://127.0.0.1:{stack.port}"
    status, headers, data = raw_form(stack.port, "/app/login", form, origin)
    grant = re.search(r'"access_token":\s*"([^"]+)"', data.decode(errors="replace"))
    check("the sample app's login view signs carol in (through TokenGate's service API)", status == 200 and grant,
          (status, data[:300]))
    if grant:
        status, _, data = conn.request("GET", "/app/report", token=grant.group(1))
        check("carol's token opens the app's server-rendered view as carol", status == 200 and b"carol" in data,
              (status, data[:200]))
    status, _, data = conn.request("POST", "/admin/v1/sessions", json_body={"username": "mallory"})
    check("/admin/v1/ through the published port is just a guarded app path: 401, no session", status == 401,
          (status, data[:200]))

    code, out, err = stack.compose("run", "--rm", "-T", "init", "user", "add", "alice", stdin="alice-password-1\n",
                                   timeout=120)
    check("`docker compose run --rm -T init user add alice` writes alice into the secrets volume", code == 0, out + err)
    code, out, err = stack.compose("kill", "-s", "HUP", "tokengate", timeout=60)
    check("`docker compose kill -s HUP tokengate` exits 0", code == 0, out + err)

    def alice_everywhere():
        answers = [http_call(8080, "POST", "/auth/login", host=stack.address(c), headers={"Content-Type": "application/json"},
                             body=b'{"username":"alice","password":"alice-password-1"}')[0] for c in stack.containers("tokengate")]
        return answers if answers and set(answers) == {200} else None

    check("after the reload every replica logs alice in (no restart)", wait_for(alice_everywhere, 15))
    check("no container publishes the service API's port 9090 (only nginx's 8080 is published)",
          not published(stack, "9090") and published(stack, "8080"))


def published(stack, port):
    """Whether any container of the project publishes `port` (the container side)."""
    for container in stack.docker("ps", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}")[1].split():
        ports = stack.inspect(container).get("NetworkSettings", {}).get("Ports") or {}
        if any(key.startswith(f"{port}/") and value for key, value in ports.items()):
            return True
    return False


def raw_form(port, path, form, origin):
    """POST an HTML form (what a browser sends): (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", path, body=form, headers={"Content-Type": "application/x-www-form-urlencoded",
                                                       "Origin": origin})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
