"""Fixtures of the cross-service tests: the whole system as `make run` starts it, one per test module.

A module that needs other settings (extra replicas, sources, short timeouts) defines its own `stack`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from cvmatch.testing.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Envoy, the five services, PostgreSQL and NATS, for one test module."""
    s = Stack(tmp_path_factory.mktemp("stack")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def api_key(stack: Stack) -> str:
    """The local account's admin key, as `make run` prints it."""
    out = stack.run_billing("bootstrap-local")
    match = re.search(r"CVMATCH_API_KEY=(\S+)", out)
    assert match, out
    return match.group(1)
