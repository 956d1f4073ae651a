from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tokengate_client.django import auth_urls

from . import views

urlpatterns = [
    path("api/me", views.me),
    path("api/notes", csrf_exempt(views.notes)),
    path("report", views.report),
    path("items/<int:item>", views.item),
    path("things", views.Things.as_view()),
    path("open", views.OpenThings.as_view()),
    path("login", views.login),
    path("healthz", views.health),
    path("public/ping", views.ping),
    path("echo", views.echo),
    *auth_urls(),
]
