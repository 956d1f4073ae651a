"""Fixtures for the package's tests (defined in harness.py, shared with deploy/app/tests)."""

from harness import redis, serve, serve_asgi, start_tokengate, tokengate, work  # noqa: F401
