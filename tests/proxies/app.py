"""The small app behind every proxy: it answers every path with a JSON echo of what it was sent, and
believes the identity headers only from a request that carries the deployment's proxy secret.

    app = EchoApp(secret)          # serves on 127.0.0.1:app.port (waitress, in a thread) at once
    app.close()

The answer: {"path", "method", "user", "session", "trusted", "x_auth_user"}: `user`/`session` are
X-Auth-User/X-Auth-Session when the request carried X-TokenGate-Proxy-Secret with the right value
(compared in constant time), else None; `x_auth_user` is whatever X-Auth-User header arrived (to see
that a forged one never does). Behind Traefik, which cannot copy a header of the auth answer to the
client, the app passes on the successor token the proxy put on the request (X-Next-Token, believed
with the identity), the way docs/forward-auth.md gives for Traefik with per-request rotation.
"""
import hmac
import json
import threading

from waitress.server import create_server

SECRET_HEADER = "HTTP_X_TOKENGATE_PROXY_SECRET"


class EchoApp:
    def __init__(self, secret):
        self.secret = secret
        self.server = create_server(self.wsgi, host="127.0.0.1", port=0, threads=8, clear_untrusted_proxy_headers=False)
        self.port = self.server.effective_port
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()

    def wsgi(self, environ, start_response):
        sent = environ.get(SECRET_HEADER, "")
        trusted = bool(sent) and hmac.compare_digest(sent.encode(), self.secret.encode())
        body = {
            "path": environ.get("PATH_INFO", ""),
            "method": environ.get("REQUEST_METHOD", ""),
            "trusted": trusted,
            "user": environ.get("HTTP_X_AUTH_USER") if trusted else None,
            "session": environ.get("HTTP_X_AUTH_SESSION") if trusted else None,
            "x_auth_user": environ.get("HTTP_X_AUTH_USER"),
        }
        headers = [("Content-Type", "application/json"), ("X-From-App", "1")]
        successor = environ.get("HTTP_X_NEXT_TOKEN") if trusted else None
        if successor:
            # As tokengate_client.flask does: a live token in the answer, never stored by a cache.
            headers += [("X-Next-Token", successor), ("Cache-Control", "no-store")]
        data = json.dumps(body).encode()
        start_response("200 OK", headers + [("Content-Length", str(len(data)))])
        return [data]

    def close(self):
        self.server.close()
