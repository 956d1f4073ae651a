"""The tests' Django project: no database, no apps of its own, every view guarded by TokenGate.
The tests set TOKENGATE_URL (or TOKENGATE_CLIENT) to their TokenGate with pytest-django's ``settings``."""

SECRET_KEY = "tokengate-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_site.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "tokengate_client.django.TokenGateMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
# Never asked: each test points it at its own TokenGate (or a fake) first.
TOKENGATE_URL = "http://127.0.0.1:1"
TOKENGATE_PUBLIC_PATHS = ["/public/"]
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "ERROR"}}
