"""The sample app's tests use the package tests' real processes (clients/python/tests/harness.py)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "clients", "python", "tests"))
sys.path.insert(0, os.path.join(HERE, ".."))

from harness import redis, serve, start_tokengate, tokengate, work  # noqa: E402, F401
