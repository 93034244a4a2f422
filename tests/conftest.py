from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

import pytest

from tests.helpers import ServerProcess, free_port, start_fresh
from tests.services import (
    HAProxy,
    PostgresServer,
    RedisServer,
    find_haproxy,
    find_postgres_bindir,
    find_redis_server,
)


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


# --- real backing services (tests/services.py): Redis, PostgreSQL, HAProxy ------------------------------

SERVICE_FIXTURES = {"redis_server", "fresh_redis", "postgres_server", "fresh_postgres", "haproxy_factory"}


def _require(what: str, found: object) -> None:
    """Skip when a service binary is absent, except on CI (CI=true), where its absence is a broken setup."""
    if found:
        return
    reason = f"{what} is not installed (./bmcp test installs it from Debian's packages)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def pytest_collection_modifyitems(config, items):
    # a test that asks for a real service is a `services` test, marked or not, so `-m "not services"` works
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.services)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    """One Redis per test module (append-only, everysec); flush it yourself if a test needs it empty."""
    _require("redis-server", find_redis_server())
    srv = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield srv
    srv.stop()


@pytest.fixture
def fresh_redis(tmp_path) -> Iterator[RedisServer]:
    """A Redis of the test's own, for tests that kill or restart it: appendfsync always, so what it
    acknowledged survives even SIGKILL (with everysec a kill during a slow fsync loses the last writes)."""
    _require("redis-server", find_redis_server())
    srv = RedisServer(tmp_path / "redis", fsync="always").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def postgres_server(tmp_path_factory) -> Iterator[PostgresServer]:
    """One PostgreSQL cluster per test module, with a password role and database: `.url`."""
    _require("PostgreSQL server (Debian package postgresql)", find_postgres_bindir())
    srv = PostgresServer(tmp_path_factory.mktemp("postgres")).start()
    yield srv
    srv.destroy()


@pytest.fixture
def fresh_postgres(tmp_path) -> Iterator[PostgresServer]:
    """A PostgreSQL cluster of the test's own, for tests that kill or restart it."""
    _require("PostgreSQL server (Debian package postgresql)", find_postgres_bindir())
    srv = PostgresServer(tmp_path / "postgres").start()
    yield srv
    srv.destroy()


@pytest.fixture
def haproxy_factory(tmp_path) -> Iterator[Callable[[Sequence[int]], HAProxy]]:
    """make(backend_ports) -> a started HAProxy sticking MCP sessions to replicas; stopped after the test."""
    _require("haproxy", find_haproxy())
    started: list[HAProxy] = []

    def make(ports: Sequence[int]) -> HAProxy:
        proxy = HAProxy(tmp_path / f"haproxy{len(started)}", ports).start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        proxy.stop()
