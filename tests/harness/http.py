"""HTTP helpers: a keep-alive connection, one-shot calls, raw exchanges, login and forged tokens."""
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import time


class Conn:
    """One keep-alive HTTP/1.1 connection to host:port (default 127.0.0.1). Never retries: a transport
    failure is returned as status None (the caller decides what it means)."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.timeout = timeout
        self.conn = None

    def request(self, method, path, token=None, json_body=None, headers=None):
        """(status, lower-cased headers, body bytes); (None, {}, repr of the error) on a transport failure."""
        sent = dict(headers or {})
        body = None
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if json_body is not None:
            body = json.dumps(json_body).encode()
            sent["Content-Type"] = "application/json"
        elif method in ("POST", "PUT", "PATCH"):
            body = b""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self.conn.request(method, path, body=body, headers=sent)
            response = self.conn.getresponse()
            data = response.read()
            if response.will_close:
                self.close()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        except (OSError, http.client.HTTPException) as error:
            self.close()
            return None, {}, repr(error).encode()

    def timed(self, *args, **kwargs):
        """request(), and how long it took: (status, headers, body, seconds)."""
        started = time.monotonic()
        status, headers, data = self.request(*args, **kwargs)
        return status, headers, data, time.monotonic() - started

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def http_call(port, method, path, token=None, headers=None, body=None, timeout=10, host="127.0.0.1"):
    """One request on a connection of its own: (status, lower-cased headers, body bytes); status None
    when the connection fails."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as error:
        return None, {}, repr(error).encode()


def parse_json(data):
    try:
        return json.loads(data)
    except (TypeError, ValueError):
        return None


def error_code(data):
    """The "error" field of a JSON error body, or None."""
    body = parse_json(data)
    return body.get("error") if isinstance(body, dict) else None


def login(conn, user, password):
    """POST /auth/login on conn: (access token, session id); AssertionError if it does not answer 200."""
    status, _, data = conn.request("POST", "/auth/login", json_body={"username": user, "password": password})
    body = parse_json(data) if status == 200 else None
    if not body or "access_token" not in body:
        raise AssertionError(f"login of {user} answered {status}: {data[:200]!r}")
    return body["access_token"], body["session_id"]


def port_of(url):
    return int(url.rsplit(":", 1)[1])


def b64u(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def random_id():
    return b64u(os.urandom(16))


def forge_token(key, user, sid=None, jti=None, ttl=600):
    """A token signed correctly with the service's key (bytes), for a session Redis never heard of
    (unless the caller writes it there): only Redis can tell whether it is live."""
    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT", "kid": hashlib.sha256(key).hexdigest()[:12]}
    claims = {"iss": "tokengate", "sub": user, "sid": sid or random_id(), "jti": jti or random_id(),
              "iat": now, "exp": now + ttl}
    signing_input = b64u(json.dumps(header, separators=(",", ":")).encode()) + "." + \
        b64u(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64u(signature)


def jwt_claims(token):
    """A token's claims, unverified ({} when it is not a JWT)."""
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (AttributeError, IndexError, ValueError):
        return {}


def raw_exchange(port, payload, timeout=10):
    """Sends raw bytes, reads until the response head or the end; returns an int status, "closed"
    (the server closed without an answer), "reset" or "timeout"."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    received = b""
    try:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before reading everything; read what it said
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except ConnectionResetError:
        if not received:
            return "reset"
    except socket.timeout:
        return "timeout"
    finally:
        sock.close()
    match = re.match(rb"HTTP/1\.[01] (\d{3})", received)
    return int(match.group(1)) if match else "closed"


def read_responses(sock, count, timeout=10, bodiless=()):
    """Reads `count` HTTP/1.1 responses (Content-Length bodies) from a socket: [(status, headers,
    body)], then whether the server closed the connection afterwards. The answers at the indexes in
    `bodiless` (to HEAD requests) carry no body whatever their Content-Length says."""
    sock.settimeout(timeout)
    buffered = b""
    responses = []
    while len(responses) < count:
        while b"\r\n\r\n" not in buffered:
            chunk = sock.recv(65536)
            if not chunk:
                return responses, True
            buffered += chunk
        head, buffered = buffered.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if len(responses) in bodiless else int(headers.get("content-length", "0"))
        while len(buffered) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return responses, True
            buffered += chunk
        responses.append((status, headers, buffered[:length]))
        buffered = buffered[length:]
    try:
        closed = sock.recv(1) == b""
    except socket.timeout:
        closed = False
    return responses, closed


def metric_value(conn, pattern):
    """Sum of the /metrics samples whose line matches the regex pattern (None if /metrics fails)."""
    status, _, data = conn.request("GET", "/metrics")
    if status != 200:
        return None
    total = 0.0
    for line in data.decode(errors="replace").splitlines():
        if not line.startswith("#") and re.search(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total
