#!/usr/bin/env python3
"""A stand-in for "the app you already have": answers every path and method with JSON describing
the request, including the X-Auth-User and X-Auth-Session headers nginx set from TokenGate's
/auth/verify answer. It has no authentication of its own: nginx's auth_request is the guard.

    app.py [--listen HOST:PORT] [--port-file FILE]

--listen defaults to $APP_LISTEN or 127.0.0.1:8000; port 0 picks a free port, which is written to
--port-file once the socket is bound. Standard library only.
"""
import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so nginx's upstream keepalive pool is used
    server_version = "tokengate-sample-app"
    quiet = True

    def _answer(self, with_body=True):
        length = int(self.headers.get("Content-Length") or 0)
        if length > 0:
            self.rfile.read(min(length, 1 << 20))
        body = json.dumps({
            "app": "sample",
            "method": self.command,
            "path": self.path,
            "x_auth_user": self.headers.get("X-Auth-User"),
            "x_auth_session": self.headers.get("X-Auth-Session"),
            "authorization_seen": self.headers.get("Authorization") is not None,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_HEAD(self):
        self._answer(with_body=False)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _answer

    def log_message(self, fmt, *args):
        if not self.quiet:
            super().log_message(fmt, *args)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default=os.environ.get("APP_LISTEN", "127.0.0.1:8000"))
    parser.add_argument("--port-file")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    Handler.quiet = not args.verbose
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    bound = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(f"{bound}\n")
        os.replace(tmp, args.port_file)
    print(f"sample app listening on http://{host}:{bound}", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
