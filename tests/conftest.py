from __future__ import annotations

import pytest

from tests.helpers import ServerProcess, free_port, start_fresh


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One real bus server per test module, on a free loopback port, with its own data folder."""
    srv = ServerProcess(tmp_path_factory.mktemp("server"), free_port()).start()
    srv.cli("user", "add", "alice", "--password", "alice-pw")
    srv.cli("user", "add", "bob", "--password", "bob-pw")
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path):
    """A server of the test's own, for tests that restart or break it."""
    srv = start_fresh(tmp_path / "server")
    yield srv
    srv.stop()


@pytest.fixture
def anyio_backend():
    return "asyncio"
