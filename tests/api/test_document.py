"""The OpenAPI document (docs/openapi.yaml) against the code: it is valid OpenAPI 3.1, it names
exactly the routes the code registers (read from the route files, and then hit on the real binary:
/metrics counts every request under the route that matched it), and its error codes and statuses
are the code's."""
import json
import os
import re
import urllib.error
import urllib.request

import yaml
from openapi_spec_validator import validate

from conftest import DOCUMENT, ROOT

ROUTES = os.path.join(ROOT, "Sources", "TokenGateHTTP", "Routes")
METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
STATUS = {"badRequest": 400, "unauthorized": 401, "forbidden": 403, "notFound": 404, "contentTooLarge": 413,
          "tooManyRequests": 429, "requestHeaderFieldsTooLarge": 431, "serviceUnavailable": 503}


def load():
    with open(DOCUMENT) as handle:
        return yaml.safe_load(handle)


def is_admin(path, item):
    return bool(item.get("servers")) and path.startswith("/admin/")


def documented():
    """{(listener, METHOD, path)} of the document, HEAD left out (the code answers HEAD wherever GET)."""
    routes = set()
    for path, item in load()["paths"].items():
        for method in METHODS:
            if method in item and method != "head":
                routes.add(("admin" if is_admin(path, item) else "public", method.upper(), path))
    return routes


def registered():
    """{(listener, METHOD, path)} the route files register: `router.<method>("<path>")` literals, and
    HotRoute's cases (registered in a loop as GET). AdminRoutes.swift is the service API's listener."""
    routes = set()
    for name in sorted(os.listdir(ROUTES)):
        with open(os.path.join(ROUTES, name)) as handle:
            source = handle.read()
        listener = "admin" if name == "AdminRoutes.swift" else "public"
        for method, path in re.findall(r'router\.(get|post|put|patch|delete|head|on)\("([^"]*)"', source):
            routes.add((listener, method.upper(), path))
        others = re.findall(r'router\.(?:get|post|put|patch|delete|head|on)\((?!")', source)
        if name == "HotRoute.swift":
            assert len(others) == 1, "HotRoute registers its cases in one loop"
            for path in re.findall(r'^\s*case \w+ = "(/[^"]*)"', source, re.M):
                routes.add((listener, "GET", path))
        else:
            assert not others, f"{name}: a route registered without a literal path; teach this test to read it"
    return routes


def test_the_document_is_valid_openapi_3_1():
    document = load()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_the_document_names_exactly_the_routes_the_code_registers():
    code, doc = registered(), documented()
    assert len(code) >= 19
    assert code - doc == set(), "registered but not in docs/openapi.yaml"
    assert doc - code == set(), "in docs/openapi.yaml but not registered"


def test_every_head_operation_has_its_get():
    for path, item in load()["paths"].items():
        if "head" in item:
            assert "get" in item, path


def test_error_codes_and_statuses_are_the_codes():
    with open(os.path.join(ROOT, "Sources", "TokenGate", "Errors", "TokenGateError.swift")) as handle:
        cases = dict(re.findall(r'case (\w+) = "(\w+)"', handle.read()))
    with open(os.path.join(ROOT, "Sources", "TokenGateHTTP", "Support", "TokenGateError+HTTP.swift")) as handle:
        mapping = handle.read()
    status_of = {}
    for names, status in re.findall(r"case ((?:\.\w+(?:, )?)+): \.(\w+)", mapping):
        for name in re.findall(r"\.(\w+)", names):
            status_of[cases[name]] = STATUS[status]
    assert set(status_of) == set(cases.values()), "every code has its status"
    schemas = load()["components"]["schemas"]
    assert set(schemas["ErrorCode"]["enum"]) == set(status_of)
    described = dict(re.findall(r"`(\w+)`\s+(\d{3})", schemas["ErrorCode"]["description"]))
    assert {code: int(status) for code, status in described.items()} == status_of
    # Each ErrorNNN schema allows only codes of status NNN, and every code has one.
    covered = set()
    for name, schema in schemas.items():
        found = re.fullmatch(r"Error(\d{3})\w*", name)
        if not found:
            continue
        restriction = schema["allOf"][1]["properties"]["error"]
        codes = restriction.get("enum") or [restriction["const"]]
        for code in codes:
            assert status_of[code] == int(found.group(1)), f"{name}: {code}"
            covered.add(code)
    assert covered == set(status_of)


def call(url, method="GET", headers=None, body=None):
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def grant(api, user="routes"):
    status, _, body = call(api.admin + "/admin/v1/sessions", "POST",
                           {"Authorization": f"Bearer {api.service_key}", "Content-Type": "application/json"},
                           json.dumps({"user": user}).encode())
    assert status == 200, body
    return json.loads(body)


def route_counts(api):
    _, _, body = call(api.public + "/metrics")
    counts = {}
    for route, count in re.findall(r'^tokengate_http_requests_total\{route="([^"]*)",status="\d+"\} (\S+)$',
                                   body.decode(), re.M):
        counts[route] = counts.get(route, 0) + float(count)
    return counts


def test_every_documented_route_is_served_by_the_real_binary(api):
    """Each documented operation once, with a live token or the service key: /metrics then counts a
    request under each documented path, and under no documented path only the one unknown path sent."""
    before = route_counts(api)
    for listener, method, path in sorted(documented()):
        own = grant(api)
        concrete = path.replace("{user}", "routes").replace("{sid}", own["session_id"])
        key = api.service_key if listener == "admin" else own["access_token"]
        headers = {"Authorization": f"Bearer {key}"}
        body = None
        if method == "POST" and path in ("/auth/login", "/admin/v1/sessions"):
            headers["Content-Type"] = "application/json"
            body = json.dumps({"user": "routes"} if listener == "admin" else
                              {"username": "alice", "password": "wrong"}).encode()
        status, _, _ = call((api.admin if listener == "admin" else api.public) + concrete, method, headers, body)
        assert status < 500, (method, path, status)
    call(api.public + "/no/such/route", headers={"Authorization": f"Bearer {grant(api)['access_token']}"})
    after = route_counts(api)
    grown = {route for route in after if after[route] > before.get(route, 0)}
    paths = {path for _, _, path in documented()}
    assert paths <= grown
    # The unknown path is the one request counted under no route of the document ("NotFound").
    assert sum(after[route] - before.get(route, 0) for route in grown - paths) == 1
