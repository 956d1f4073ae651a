"""9. TLS to Redis (rediss://): trust, names, client certificates, and failing closed

With certificates openssl makes (two CAs, a certificate for 127.0.0.1 and redis.test, one for the
name only, a client certificate): rediss:// with the right CA works (login, /api/me, logout); a wrong
CA, a wrong server name, an address the certificate does not carry, plaintext to the TLS port, TLS
to a plaintext port and a missing client certificate all start but fail closed (/readyz, login and
verify 503 store_unavailable within the timeout; the wrong CA named in one start-up line); with a
client certificate, login and verify work where Redis requires one; a missing CA file, a key file
that is not a key, a certificate without its key and TLS settings with a redis:// URL refuse to
start (78) with one line naming the setting.
"""
import os
import shutil
import subprocess

from harness.checks import check, ms, note, precondition, require, wait_until
from harness.http import Conn, error_code
from harness.processes import free_port

from . import MARGIN, REDIS_TIMEOUT, USERS, forge_token, login


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def make_certificates(directory):
    """Two CAs (the right one and a stranger) and, from the first, two certificates for Redis (one for
    the address 127.0.0.1 and the name redis.test, one for the name alone) and a client certificate."""
    os.makedirs(directory, exist_ok=True)
    def path(name):
        return os.path.join(directory, name)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", path(f"{ca}.key"), "-out", path(f"{ca}.crt"), "-days", "2",
                "-subj", f"/CN=tokengate test {ca}", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, usage, san in (("redis", "serverAuth", "IP:127.0.0.1,DNS:redis.test"), ("named", "serverAuth", "DNS:redis.test"),
                             ("client", "clientAuth", "DNS:tokengate")):
        openssl("req", "-new", *ec, "-keyout", path(f"{name}.key"), "-out", path(f"{name}.csr"), "-subj", f"/CN={name}")
        with open(path(f"{name}.ext"), "w") as handle:
            handle.write(f"basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\nsubjectAltName={san}\n")
        openssl("x509", "-req", "-in", path(f"{name}.csr"), "-CA", path("ca.crt"), "-CAkey", path("ca.key"),
                "-CAcreateserial", "-out", path(f"{name}.crt"), "-days", "2", "-extfile", path(f"{name}.ext"))
    return path


def tls_redis(lab, name, path, certificate, auth_clients):
    port = free_port()
    # The later --port 0 turns the plaintext port off: TLS only.
    redis = lab.redis(name, port, extra=[
        "--port", "0", "--tls-port", str(port), "--tls-cert-file", path(f"{certificate}.crt"), "--tls-key-file", path(f"{certificate}.key"),
        "--tls-ca-cert-file", path("ca.crt"), "--tls-auth-clients", auth_clients])
    return redis if redis.start() else None


def serve_once(binary, environment):
    """`tokengate serve` that is expected to stop at start-up: its exit status and standard error."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENGATE_")}
    env.update(TOKENGATE_SIGNING_KEY="x" * 40, **environment)
    result = subprocess.run([binary, "serve", "--listen", "127.0.0.1:0"], env=env, capture_output=True, text=True, timeout=30)
    return result.returncode, result.stderr


def all_unavailable(tg, key):
    conn = Conn(tg.port)
    try:
        answers = []
        slowest = 0.0
        for method, path, body in (("GET", "/readyz", None),
                                   ("POST", "/auth/login", {"username": "user01", "password": USERS["user01"]}),
                                   ("GET", "/auth/verify", None)):
            token = forge_token(key, "user01") if path == "/auth/verify" else None
            status, _, data, elapsed = conn.timed(method, path, token=token, json_body=body)
            answers.append((path, status, error_code(data)))
            slowest = max(slowest, elapsed)
        bad = [a for a in answers if a[1] != 503 or a[2] != "store_unavailable"]
        return not bad and slowest <= REDIS_TIMEOUT + MARGIN, f"{answers} slowest {ms(slowest)}"
    finally:
        conn.close()


def test_tls(lab, work, binary, credentials):
    precondition("openssl is installed", shutil.which("openssl") is not None)
    path = make_certificates(os.path.join(work, "tls"))
    redis = tls_redis(lab, "tls", path, "redis", "optional")
    mutual = tls_redis(lab, "mtls", path, "named", "yes")
    require("redis-server listens with TLS only (one for its address, one for the name redis.test requiring client certificates)",
            redis is not None and mutual is not None)
    plain = lab.redis("plain-for-tls")
    check("a plaintext redis-server for the mismatched case", plain.start())
    ca = {"TOKENGATE_REDIS_TLS_CA_FILE": path("ca.crt")}
    client = {"TOKENGATE_REDIS_TLS_CERT_FILE": path("client.crt"), "TOKENGATE_REDIS_TLS_KEY_FILE": path("client.key")}

    tg = lab.tokengate("tls", url=f"rediss://127.0.0.1:{redis.port}/0", env=ca)
    if check("rediss:// with the CA: the service starts", tg.start(), tg.tail()):
        conn = Conn(tg.port)
        ready = wait_until(lambda: conn.request("GET", "/readyz")[0] == 200, 10, 0.05)
        check("/readyz 200 over TLS", ready)
        try:
            token, _ = login(conn, "user01")
            status, _, data = conn.request("GET", "/api/me", token=token)
            check("login, then /api/me 200 through TLS", status == 200, f"{status} {data[:80]!r}")
            status, _, _ = conn.request("POST", "/auth/logout", token=token)
            after, _, data = conn.request("GET", "/api/me", token=token)
            check("logout 204, then the token 401 token_revoked", status == 204 and after == 401 and error_code(data) == "token_revoked",
                  f"{status}, {after} {data[:80]!r}")
        except AssertionError as error:
            check("login over TLS", False, str(error))
        conn.close()
        tg.stop()

    for name, url, env, why in (
            ("tls-wrong-ca", f"rediss://127.0.0.1:{redis.port}/0", {"TOKENGATE_REDIS_TLS_CA_FILE": path("other-ca.crt")},
             "a CA that did not sign Redis's certificate"),
            ("tls-wrong-name", f"rediss://127.0.0.1:{mutual.port}/0",
             {**ca, **client, "TOKENGATE_REDIS_TLS_SERVER_NAME": "wrong.test"}, "a server name the certificate does not carry"),
            ("tls-address-not-named", f"rediss://127.0.0.1:{mutual.port}/0", {**ca, **client},
             "an address the certificate does not carry (no server name given)"),
            ("tls-plaintext-client", f"redis://127.0.0.1:{redis.port}/0", {}, "plaintext to the TLS port"),
            ("tls-to-plaintext", f"rediss://127.0.0.1:{plain.port}/0", ca, "TLS to a plaintext port"),
            ("tls-no-client-cert", f"rediss://127.0.0.1:{mutual.port}/0", {**ca, "TOKENGATE_REDIS_TLS_SERVER_NAME": "redis.test"},
             "no client certificate where Redis requires one")):
        tg = lab.tokengate(name, url=url, env=env)
        if not check(f"{why}: the service still starts (Redis may be fixed without a restart)", tg.start(), tg.tail()):
            continue
        ok, detail = all_unavailable(tg, credentials.key)
        check(f"{why}: /readyz, login and verify all 503 store_unavailable within the timeout", ok, detail)
        if name == "tls-wrong-ca":
            line = next((text for text in tg.tail(40).splitlines() if "not reachable at start-up" in text), "")
            check("the wrong CA is named at start-up in one line (TLS, the address, the certificate failure)",
                  "TLS to 127.0.0.1" in line and "CERTIFICATE_VERIFY_FAILED" in line, line or tg.tail())
            note(f"9: wrong CA at start-up: {line.strip()[:200]}")
        tg.stop()

    tg = lab.tokengate("tls-mutual", url=f"rediss://127.0.0.1:{mutual.port}/0",
                       env={**ca, **client, "TOKENGATE_REDIS_TLS_SERVER_NAME": "redis.test"})
    if check("with a client certificate (and the server name redis.test): the service starts", tg.start(), tg.tail()):
        conn = Conn(tg.port)
        try:
            token, _ = login(conn, "user02")
            status, _, _ = conn.request("GET", "/auth/verify", token=token)
            check("where Redis requires a client certificate: login and verify 200", status == 200, str(status))
        except AssertionError as error:
            check("login with a client certificate", False, str(error))
        conn.close()
        tg.stop()

    for why, environment, named in (
            ("a CA file that does not exist", {"TOKENGATE_REDIS_URL": f"rediss://127.0.0.1:{redis.port}/0",
                                               "TOKENGATE_REDIS_TLS_CA_FILE": path("missing.crt")}, "TOKENGATE_REDIS_TLS_CA_FILE"),
            ("a key file that is not a key", {"TOKENGATE_REDIS_URL": f"rediss://127.0.0.1:{redis.port}/0",
                                              "TOKENGATE_REDIS_TLS_CERT_FILE": path("client.crt"),
                                              "TOKENGATE_REDIS_TLS_KEY_FILE": path("client.crt")}, "TOKENGATE_REDIS_TLS_KEY_FILE"),
            ("a certificate without its key", {"TOKENGATE_REDIS_URL": f"rediss://127.0.0.1:{redis.port}/0",
                                               "TOKENGATE_REDIS_TLS_CERT_FILE": path("client.crt")}, "TOKENGATE_REDIS_TLS_KEY_FILE"),
            ("TLS settings with a redis:// URL", {"TOKENGATE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0", **ca},
             "TOKENGATE_REDIS_TLS_CA_FILE")):
        status, stderr = serve_once(binary, environment)
        lines = [text for text in stderr.splitlines() if text.startswith("tokengate: ")]
        check(f"{why}: start-up refused (78) with one line naming {named}",
              status == 78 and len(lines) == 1 and lines[0].startswith(f"tokengate: {named}:"), f"{status} {stderr[:300]!r}")
