"""A few views like the ones users have: a JSON API, a page with its own cache header, a
class-based view, public views and a login that starts a session through the service API."""

from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from tokengate_client.django import identity, public, start_session


def me(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"user": request.tokengate.user, "session": request.tokengate.session_id})  # type: ignore[attr-defined]


def notes(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        return JsonResponse({"saved": True}, status=201)
    return JsonResponse({"notes": [], "user": request.tokengate.user})  # type: ignore[attr-defined]


def report(request: HttpRequest) -> HttpResponse:
    answer = HttpResponse(f"report for {request.tokengate.user}")  # type: ignore[attr-defined]
    answer["Cache-Control"] = "public, max-age=3600"
    return answer


def item(request: HttpRequest, item: int) -> JsonResponse:
    return JsonResponse({"item": item})


class Things(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"user": request.tokengate.user, "things": []})  # type: ignore[attr-defined]


@public
class OpenThings(View):
    def get(self, request: HttpRequest) -> JsonResponse:
        return JsonResponse({"identity": identity(request) is not None, "x_auth_user": request.headers.get("X-Auth-User")})


@public
@csrf_exempt
def login(request: HttpRequest) -> JsonResponse:
    user = json.loads(request.body)["user"]
    # ... a real app checks the password against its own users here ...
    answer = JsonResponse({})
    session = start_session(request, user, answer)
    answer.content = json.dumps(session.to_dict()).encode()
    return answer


@public
def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def ping(request: HttpRequest) -> JsonResponse:  # public through TOKENGATE_PUBLIC_PATHS
    return JsonResponse({"identity": identity(request) is not None, "x_auth_user": request.headers.get("X-Auth-User")})


def echo(request: HttpRequest) -> JsonResponse:
    found = identity(request)
    return JsonResponse({"user": found.user if found else None, "x_auth_user": request.headers.get("X-Auth-User"),
                         "secret": request.headers.get("X-TokenGate-Proxy-Secret")})
