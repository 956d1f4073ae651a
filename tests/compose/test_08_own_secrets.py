"""08. Your own secrets: docs/operations.md's steps, with a fresh set of volumes

After `down -v` (the generated secrets and the sessions deleted), a signing key and a users file of
one's own are put into the volume with the runbook's `docker compose run --rm -T --entrypoint sh init
-c 'cat > ...'`; `up -d` then prints no demo login (init keeps both files and writes only the app's
service key), the own user logs in and the demo user no longer exists.
"""
from harness.checks import check, require
from harness.http import Conn, login

from . import ALL_FILES, wait_for

SECRETS = "/var/lib/tokengate/secrets"


def test_own_secrets(stack):
    stack.files = ["docker-compose.yml"]
    code, out, err = stack.compose("down", "--volumes", "--timeout", "15", files=ALL_FILES,
                                   timeout=300)
    require("docker-compose down --volumes exits 0", code == 0, (out + err)[-1000:])
    code, key, err = stack.docker("run", "--rm", "--network", "none", "tokengate:latest", "key", "generate")
    require("a signing key of one's own (tokengate key generate)", code == 0 and key.strip(), err)
    code, users, err = stack.docker("run", "--rm", "--network", "none", "-i", "--entrypoint", "sh", "tokengate:latest", "-c",
                                    "printf 'bob-password-1\\n' | tokengate user add bob --users-file /tmp/users >/dev/null && cat /tmp/users")
    require("a users file of one's own (tokengate user add bob)", code == 0 and users.startswith("bob:"), err)
    for name, text in (("signing.key", key), ("users.htpasswd", users)):
        code, out, err = stack.compose("run", "--rm", "-T", "--entrypoint", "sh", "init", "-c", f"cat > {SECRETS}/{name}",
                                       stdin=text, timeout=120)
        check(f"`docker compose run --rm -T --entrypoint sh init -c 'cat > {SECRETS}/{name}'` < {name}", code == 0, out + err)
    code, out, err = stack.compose("up", "-d", timeout=600)
    require("docker-compose up -d exits 0", code == 0, (out + err)[-2000:])
    check("init kept both files: no demo login printed", stack.demo_login() is None, stack.logs("init")[-800:])
    conn = Conn(stack.port)

    def bob_logs_in():
        return conn.request("POST", "/auth/login", json_body={"username": "bob", "password": "bob-password-1"})[0] == 200

    check("the own user logs in through the published port", wait_for(bob_logs_in, 120))
    user, password = stack.credentials()
    status, _, _ = conn.request("POST", "/auth/login", json_body={"username": user, "password": password})
    check("the demo user of the first start does not exist here: 401", status == 401, status)
    token, _ = login(conn, "bob", "bob-password-1")
    status, _, data = conn.request("GET", "/reports/9", token=token)
    check("bob's token opens the guarded app", status == 200 and b'"x_auth_user": "bob"' in data, (status, data[:200]))
