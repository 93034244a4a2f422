"""The service harness itself: real Redis, PostgreSQL and HAProxy start, keep their data, and route."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import psycopg
import pytest

from tests.services import HAProxy, PostgresServer, RedisServer

pytestmark = pytest.mark.services

SESSION_HEADER = "mcp-session-id"


# --- Redis ---------------------------------------------------------------------------------------------


def test_redis_set_get(redis_server: RedisServer) -> None:
    with redis_server.client() as r:
        r.set("greeting", "hello")
        assert r.get("greeting") == b"hello"
        assert r.config_get("appendonly") == {"appendonly": "yes"}
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"


@pytest.mark.parametrize("hard", [False, True], ids=["stop", "kill"])
def test_redis_keeps_data_over_restart(fresh_redis: RedisServer, hard: bool) -> None:
    port = fresh_redis.port
    with fresh_redis.client() as r:
        r.set("survivor", "yes")
    # fresh_redis fsyncs each write before answering: it is on disk even if the process dies at once
    fresh_redis.restart(hard=hard)
    assert fresh_redis.port == port
    with fresh_redis.client() as r:
        assert r.get("survivor") == b"yes"


# --- PostgreSQL ----------------------------------------------------------------------------------------


def test_postgres_password_role_and_table(postgres_server: PostgresServer) -> None:
    with postgres_server.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)")
        conn.execute("INSERT INTO notes (body) VALUES (%s)", ("first",))
        conn.commit()
        assert conn.execute("SELECT body FROM notes").fetchall() == [("first",)]
        assert conn.execute("SELECT current_user, current_database()").fetchone() == (
            postgres_server.user, postgres_server.database)
    # 127.0.0.1 is password-authenticated: the server under test cannot get in without its secret
    wrong = postgres_server.url.replace(postgres_server.password, "not-the-password")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5).close()


@pytest.mark.parametrize("hard", [False, True], ids=["stop", "kill"])
def test_postgres_keeps_data_over_restart(fresh_postgres: PostgresServer, hard: bool) -> None:
    with fresh_postgres.connect() as conn:
        conn.execute("CREATE TABLE jobs (id text PRIMARY KEY)")
        conn.execute("INSERT INTO jobs VALUES ('job-1')")
        conn.commit()
    # an open client must not hold up a graceful stop (PostgreSQL's SIGTERM would wait for it)
    idle = fresh_postgres.connect()
    fresh_postgres.restart(hard=hard)
    idle.close()
    with fresh_postgres.connect() as conn:
        assert conn.execute("SELECT id FROM jobs").fetchall() == [("job-1",)]


# --- HAProxy -------------------------------------------------------------------------------------------


class Backend:
    """A stand-in replica: answers with its name, mints a session id on a POST that has none."""

    def __init__(self, name: str) -> None:
        self.name = name
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib's name
                pass

            def _answer(self, extra_headers: dict[str, str]) -> None:
                body = backend.name.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra_headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path == "/events":
                    # an SSE stream without a length: it ends when the replica closes it
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for i in range(5):
                        self.wfile.write(f"data: {backend.name} {i}\n\n".encode())
                        self.wfile.flush()
                        time.sleep(0.3)
                    return
                self._answer({})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                minted = {} if self.headers.get(SESSION_HEADER) else {
                    SESSION_HEADER: f"{backend.name}-{uuid.uuid4().hex}"}
                self._answer(minted)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: object, client_address: object) -> None:
                pass  # HAProxy's health checks hang up without reading the answer; that is no error

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def kill(self) -> None:
        """Stop accepting and close the listener: HAProxy's checks and connects now get refused."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    pair = [Backend("a"), Backend("b")]
    yield pair
    for b in pair:
        if b.thread.is_alive():
            b.kill()


def new_session(client: httpx.Client) -> tuple[str, str]:
    """POST an 'initialize' without a session; returns (replica name, minted session id)."""
    r = client.post("/mcp", json={"method": "initialize"})
    r.raise_for_status()
    return r.text, r.headers[SESSION_HEADER]


def test_haproxy_balances_new_sessions(backends: list[Backend],
                                       haproxy_factory: Callable[[Sequence[int]], HAProxy]) -> None:
    proxy = haproxy_factory([b.port for b in backends])
    proxy.wait_states({b.port: "UP" for b in backends})
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        assert {new_session(client)[0] for _ in range(6)} == {"a", "b"}


def test_haproxy_sticks_session_to_minting_replica(backends: list[Backend],
                                                   haproxy_factory: Callable[[Sequence[int]], HAProxy]) -> None:
    proxy = haproxy_factory([b.port for b in backends])
    proxy.wait_states({b.port: "UP" for b in backends})
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        for _ in range(2):  # roundrobin: one session on each replica
            owner, sid = new_session(client)
            assert sid.startswith(f"{owner}-")
            landed = []
            for i in range(20):
                headers = {SESSION_HEADER: sid}
                r = client.post("/mcp", json={"n": i}, headers=headers) if i % 2 else client.get("/mcp",
                                                                                               headers=headers)
                landed.append(r.text)
            assert landed == [owner] * 20


def test_haproxy_keeps_sessions_when_backends_change(backends: list[Backend],
                                                    haproxy_factory: Callable[[Sequence[int]], HAProxy]) -> None:
    a, b = backends
    proxy = haproxy_factory([a.port, b.port])
    proxy.wait_states({a.port: "UP", b.port: "UP"})
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        sessions = [new_session(client) for _ in range(4)]
        extra = Backend("c")
        try:
            # one more replica, then one fewer: the sessions on the replicas that stay do not move
            proxy.set_backends([extra.port, b.port, a.port])
            proxy.wait_states({extra.port: "UP"})
            assert "c" in {new_session(client)[0] for _ in range(6)}
            proxy.set_backends([extra.port, b.port])
            assert set(proxy.server_states()) == {extra.port, b.port}
            for owner, sid in sessions:
                if owner == "b":
                    assert {client.get("/mcp", headers={SESSION_HEADER: sid}).text for _ in range(5)} == {"b"}
        finally:
            extra.kill()


def test_haproxy_fails_over_to_live_replica(backends: list[Backend],
                                            haproxy_factory: Callable[[Sequence[int]], HAProxy]) -> None:
    proxy = haproxy_factory([b.port for b in backends])
    proxy.wait_states({b.port: "UP" for b in backends})
    with httpx.Client(base_url=proxy.url, timeout=5) as client:
        victim_name, victim_sid = new_session(client)
        victim = next(b for b in backends if b.name == victim_name)
        survivor = next(b for b in backends if b is not victim)
        victim.kill()
        killed_at = time.monotonic()
        # new sessions must reach the survivor within ~2 s (checks every 500 ms, down after 2 failures;
        # before that, a refused connect is redispatched), and then keep going there
        streak = 0
        while streak < 10:
            assert time.monotonic() - killed_at < 2.0, "new sessions still not on the live replica"
            name, _ = new_session(client)
            streak = streak + 1 if name == survivor.name else 0
        proxy.wait_states({victim.port: "DOWN", survivor.port: "UP"}, timeout=2.0)
        assert time.monotonic() - killed_at < 2.5
        # the dead replica's session is redispatched too; the real server answers it with 404 and the
        # client starts a new session
        assert client.get("/mcp", headers={SESSION_HEADER: victim_sid}).text == survivor.name


def test_haproxy_streams_sse_unbuffered(backends: list[Backend],
                                        haproxy_factory: Callable[[Sequence[int]], HAProxy]) -> None:
    proxy = haproxy_factory([backends[0].port])
    began = time.monotonic()
    events: list[tuple[float, str]] = []
    with httpx.Client(base_url=proxy.url, timeout=5) as client, client.stream("GET", "/events") as r:
        assert r.headers["content-type"] == "text/event-stream"
        for line in r.iter_lines():
            if line.startswith("data:"):
                events.append((time.monotonic() - began, line))
    assert [e for _, e in events] == [f"data: a {i}" for i in range(5)]
    # the first event arrives while the replica is still writing the rest (1.5 s in all)
    assert events[0][0] < 0.8 and events[-1][0] > 1.1
