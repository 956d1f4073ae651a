"""Fixtures for the package's tests (defined in harness.py, shared with deploy/app/tests)."""

import os

from harness import redis, serve, serve_asgi, start_tokengate, tokengate, work  # noqa: F401

# pytest-django: the tests' Django project (django_site/, no database).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_site.settings")
