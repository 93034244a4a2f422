"""Real backing services for tests and benchmarks: Redis, PostgreSQL and HAProxy on 127.0.0.1.

Each service runs Debian's own binary in the foreground as a child process, on a free loopback port, with
its data in a folder the caller gives; start(), stop() (graceful), kill() (SIGKILL, like a crash) and
restart() (same port, same data) let tests break and revive it. Nothing here imports pytest, so the
benchmarks can use it too; tests/conftest.py turns a missing binary into a skip (or, on CI, a failure).
"""

from __future__ import annotations

import csv
import glob
import os
import pwd
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

from tests.helpers import free_port

if TYPE_CHECKING:  # the client libraries load only when a test talks to a service
    import psycopg
    import redis

# The user PostgreSQL runs as when we are root (it refuses root); the Debian package creates it.
POSTGRES_USER = "postgres"


class ServiceError(RuntimeError):
    """A service binary is missing, or the service did not come up."""


# --- finding the binaries ----------------------------------------------------------------------------


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def find_haproxy() -> str | None:
    # Debian puts haproxy in /usr/sbin, which a non-root PATH often lacks
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


def _has_server_binaries(bindir: Path) -> bool:
    return (bindir / "postgres").is_file() and (bindir / "initdb").is_file()


def find_postgres_bindir() -> Path | None:
    """The folder holding `postgres` and `initdb`, or None.

    Debian's `postgresql` package installs them under /usr/lib/postgresql/<major>/bin and puts neither on
    PATH, so the glob comes first (newest major wins). `pg_config --bindir` alone is not enough: on Debian
    it may be libpq-dev's, which reports a folder without the server. A `postgres` found on PATH (this
    machine has /usr/local/bin/postgres, a symlink into the Debian folder) counts only when resolving it
    leads to a folder that has initdb too. $BMCP_PG_BINDIR overrides all of this.
    """
    if override := os.environ.get("BMCP_PG_BINDIR"):
        return Path(override) if _has_server_binaries(Path(override)) else None
    majors = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else -1)
    candidates = [Path(p) for p in reversed(majors)]
    if pg_config := shutil.which("pg_config"):
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10).stdout
            candidates.append(Path(out.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    if on_path := shutil.which("postgres"):
        candidates.append(Path(os.path.realpath(on_path)).parent)
    return next((c for c in candidates if _has_server_binaries(c)), None)


def missing_binaries() -> list[str]:
    """Names of the service binaries this machine lacks (empty when every service can run)."""
    missing = []
    if not find_redis_server():
        missing.append("redis-server")
    if not find_postgres_bindir():
        missing.append("postgres (Debian package postgresql)")
    if not find_haproxy():
        missing.append("haproxy")
    return missing


# --- the shared process handling ---------------------------------------------------------------------


def _wait_port_free(port: int, timeout: float = 10.0) -> None:
    """After a kill the old listener may linger a moment; binding again too soon fails with EADDRINUSE."""
    deadline = time.monotonic() + timeout
    while True:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise ServiceError(f"port {port} still taken") from None
        time.sleep(0.05)


class _Service:
    """One foreground child process with a log file; subclasses say how to run it and when it is ready."""

    name = "service"
    startup_timeout = 30.0

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / f"{self.name}.log"
        self.startup_seconds: float | None = None  # how long the last start() took, for the benchmarks

    # subclasses fill these in
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def _popen_extra(self) -> dict[str, object]:
        return {}

    def _prepare(self) -> None:
        """One-time setup before the first start (initdb and the like)."""

    def _after_first_start(self) -> None:
        """One-time setup that needs the running service (roles, databases)."""

    _prepared = False
    _initialised = False

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> Self:
        if self.running:
            return self
        began = time.monotonic()
        if not self._prepared:
            self._prepare()
            self._prepared = True
        _wait_port_free(self.port)
        log: IO[bytes] = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps writing to it
        try:
            # a session of its own, so kill() can take the service's helper processes (Redis's
            # rewrite child, PostgreSQL's backends) down with it, as a crash of the machine would
            self.proc = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         **self._popen_extra())  # type: ignore[call-overload]
        finally:
            log.close()
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise ServiceError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                if self._ready():
                    break
            except Exception:  # noqa: BLE001 - not ready yet, whatever the client library raises
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise ServiceError(f"{self.name} did not become ready in {self.startup_timeout}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.02)
        if not self._initialised:
            self._after_first_start()
            self._initialised = True
        self.startup_seconds = time.monotonic() - began
        return self

    def _stop_signal(self) -> int:
        return signal.SIGTERM

    def stop(self, timeout: float = 20.0) -> None:
        """Graceful shutdown; falls back to kill() when the service does not exit within `timeout`."""
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(self._stop_signal())
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self._reap_group()

    def kill(self) -> None:
        """SIGKILL to the whole process group: no shutdown work, no final fsync."""
        if self.proc is None:
            return
        self._reap_group()
        self.proc.wait()

    def _reap_group(self) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        except PermissionError:
            # the group leader is already gone and the pid was reused by someone we cannot signal
            pass

    def restart(self, *, hard: bool = False) -> Self:
        """Stop (or kill, with hard=True) and start again on the same port with the same data."""
        self.kill() if hard else self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


# --- Redis ---------------------------------------------------------------------------------------------


class RedisServer(_Service):
    """redis-server with an append-only file and no RDB snapshots.

    `fsync` is its appendfsync policy. "everysec" (the reference setup's speed) loses nothing on a restart,
    but Redis postpones writing its log while a background fsync runs (up to 2 s) and still answers, so a
    SIGKILL in that moment loses writes it acknowledged. "always" writes and fsyncs before each answer:
    what tests that SIGKILL Redis and count what survived need."""

    name = "redis"

    def __init__(self, workdir: Path, port: int | None = None, extra_args: Sequence[str] = (),
                 fsync: str = "everysec") -> None:
        super().__init__(workdir, port)
        self.data_dir = self.workdir / "data"
        self.extra_args = list(extra_args)
        self.fsync = fsync

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _prepare(self) -> None:
        if not (binary := find_redis_server()):
            raise ServiceError("redis-server not found (Debian package redis-server)")
        self._binary = binary
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def _command(self) -> list[str]:
        return [self._binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir),
                "--appendonly", "yes", "--appendfsync", self.fsync, "--save", "",
                # loopback only anyway; protected mode would refuse clients if bind ever widened
                "--protected-mode", "no", "--daemonize", "no", "--logfile", "", *self.extra_args]

    def client(self, **kwargs: Any) -> redis.Redis:
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5, **kwargs)

    def _ready(self) -> bool:
        with self.client(socket_connect_timeout=0.5) as r:
            return bool(r.ping())


# --- PostgreSQL ----------------------------------------------------------------------------------------


def _reachable_by_others(path: Path) -> bool:
    """Whether an unprivileged user can walk down to `path` (pytest's tmp folders are 0700 root)."""
    return all(os.stat(p).st_mode & 0o001 for p in [path, *path.parents])


class PostgresServer(_Service):
    """A throw-away PostgreSQL cluster: initdb, then `postgres` in the foreground, tuned to start fast.

    As root, PostgreSQL must run as the `postgres` user; the cluster then cannot live under `workdir`
    (pytest's tmp folders are private to root), so it goes into a folder of its own under the system
    temp dir, owned by that user, and destroy() removes it. The log always goes to `workdir`.
    """

    name = "postgres"

    def __init__(self, workdir: Path, port: int | None = None, *, user: str = "bmcp", password: str = "bmcp-pw",
                 database: str = "bmcp", settings: dict[str, str] | None = None) -> None:
        super().__init__(workdir, port)
        self.user, self.password, self.database = user, password, database
        # fsync off and friends: test data only has to survive a process crash, which the page cache covers.
        # synchronous_commit stays on: off would let a commit return before its WAL reaches even the page
        # cache, and kill() right after a commit then loses it (seen: a created table gone after restart)
        self.settings = {"fsync": "off", "full_page_writes": "off",
                         "shared_buffers": "16MB", "max_connections": "200", "max_wal_senders": "0",
                         "wal_level": "minimal", "log_min_messages": "warning", **(settings or {})}
        self._as_root = os.geteuid() == 0
        if self._as_root:
            try:
                self._pw = pwd.getpwnam(POSTGRES_USER)
            except KeyError:
                raise ServiceError(f"running as root needs the {POSTGRES_USER!r} user (Debian package "
                                   "postgresql creates it)") from None
            tmp = Path(tempfile.gettempdir())
            if not _reachable_by_others(tmp):
                raise ServiceError(f"{tmp} is not reachable by the {POSTGRES_USER} user; set TMPDIR")
            self.base_dir = Path(tempfile.mkdtemp(prefix="bmcp-pg-", dir=tmp))
            os.chown(self.base_dir, self._pw.pw_uid, self._pw.pw_gid)
        else:
            self.base_dir = self.workdir
        self.data_dir = self.base_dir / "data"
        self.socket_dir = self.base_dir  # a unix socket under our own folder, not /var/run/postgresql

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{self.database}"

    def _popen_extra(self) -> dict[str, object]:
        # the child switches user between fork and exec: Popen's pid is postgres itself (runuser would
        # sit in between and swallow a SIGKILL), and the cwd is one the postgres user may enter
        extra: dict[str, object] = {"cwd": self.base_dir}
        if self._as_root:
            extra |= {"user": self._pw.pw_uid, "group": self._pw.pw_gid, "extra_groups": [],
                      "env": {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.base_dir),
                              "LC_ALL": "C.UTF-8"}}
        return extra

    def _prepare(self) -> None:
        if not (bindir := find_postgres_bindir()):
            raise ServiceError("postgres/initdb not found (Debian package postgresql)")
        self._bindir = bindir
        if (self.data_dir / "PG_VERSION").exists():
            return
        # trust on the unix socket for our own setup as the superuser; passwords (scram) on 127.0.0.1,
        # which is how the server under test connects
        proc = subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data_dir), "--username=postgres", "--encoding=UTF8",
             "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "--no-instructions"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120, **self._popen_extra())  # type: ignore[call-overload]
        with open(self.log_path, "ab") as log:
            log.write(proc.stdout)
        if proc.returncode != 0:
            raise ServiceError(f"initdb failed:\n{proc.stdout.decode(errors='replace')[-3000:]}")

    def _command(self) -> list[str]:
        settings = {**self.settings, "listen_addresses": "127.0.0.1", "port": str(self.port),
                    "unix_socket_directories": str(self.socket_dir)}
        args = [str(self._bindir / "postgres"), "-D", str(self.data_dir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        return args

    def superuser_connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[Any, ...]]:
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), port=self.port, user="postgres", dbname=dbname,
                               connect_timeout=2, autocommit=True)

    def connect(self, **kwargs: Any) -> psycopg.Connection[tuple[Any, ...]]:
        """A connection as the test role, over TCP with its password, as the server under test makes."""
        import psycopg

        return psycopg.connect(self.url, connect_timeout=5, **kwargs)

    def _ready(self) -> bool:
        with self.superuser_connect() as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)

    def _after_first_start(self) -> None:
        from psycopg import sql

        with self.superuser_connect() as conn:
            if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)).fetchone():
                return
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(self.user), sql.Literal(self.password)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(self.database), sql.Identifier(self.user)))

    def _stop_signal(self) -> int:
        # SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client to hang up: a server
        # under test holding a pool would keep it alive forever. SIGINT is "fast": clients are cut off,
        # a checkpoint is written, and the data is as safe as after SIGTERM.
        return signal.SIGINT

    def destroy(self) -> None:
        """Stop and remove the cluster folder when it lives outside `workdir` (the root case)."""
        self.stop()
        if self.base_dir != self.workdir:
            shutil.rmtree(self.base_dir, ignore_errors=True)


# --- HAProxy -------------------------------------------------------------------------------------------


def _haproxy_maxconn() -> int:
    """HAProxy refuses to start when maxconn needs more descriptors (two per connection) than it may open."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 10000
    return max(256, min(10000, (soft - 100) // 2))


class HAProxy(_Service):
    """HAProxy balancing HTTP over backend ports, sticking each MCP session to the replica that minted it.

    set_backends() changes the replicas through the runtime API (dynamic servers) instead of a reload:
    a reload starts a new process with an empty stick table, and the local `peers` hand-over that should
    carry it across did not, in HAProxy 2.6 here, so every session would be balanced afresh.
    """

    name = "haproxy"

    def __init__(self, workdir: Path, backend_ports: Iterable[int], port: int | None = None, *,
                 check_interval_ms: int = 500) -> None:
        super().__init__(workdir, port)
        self.backend_ports = list(backend_ports)
        self.check_interval_ms = check_interval_ms
        self.config_path = self.workdir / "haproxy.cfg"
        self.stats_socket = self.workdir / "haproxy.sock"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _server_line(self, port: int) -> str:
        inter = self.check_interval_ms
        # the stick table records a server's numeric id: tie it to the port, so changing the list of
        # backends (or restarting HAProxy on a config that lists them in another order) moves nobody
        return (f"p{port} 127.0.0.1:{port} id {port} check inter {inter}ms fastinter {inter}ms "
                f"downinter {inter}ms fall 2 rise 1")

    def config(self) -> str:
        servers = "\n".join(f"    server {self._server_line(p)}" for p in self.backend_ports)
        return f"""\
global
    maxconn {_haproxy_maxconn()}
    stats socket {self.stats_socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    # the standing GET of the MCP session is an SSE stream that stays silent between bus records; the
    # client/server timeouts are inactivity timers, so they must outlast the longest quiet spell
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 30s
    timeout http-keep-alive 30s
    # a request whose server refuses the connection is retried on another one, sessions included
    retries 2
    option redispatch

frontend mcp
    bind 127.0.0.1:{self.port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    # the backend mints the id in the initialize response; later requests carry it in their header
    stick-table type string len 64 size 100k expire 30m
    stick store-response res.hdr(mcp-session-id)
    stick match req.hdr(mcp-session-id)
{servers}
"""

    def _prepare(self) -> None:
        if not (binary := find_haproxy()):
            raise ServiceError("haproxy not found (Debian package haproxy)")
        self._binary = binary
        self._write_config()

    def _write_config(self) -> None:
        self.config_path.write_text(self.config())
        check = subprocess.run([self._binary, "-c", "-q", "-f", str(self.config_path)], capture_output=True,
                               text=True, timeout=30)
        if check.returncode != 0:
            raise ServiceError(f"haproxy config rejected:\n{check.stdout}{check.stderr}\n{self.config()}")

    def _command(self) -> list[str]:
        return [self._binary, "-db", "-f", str(self.config_path)]

    def _ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
            pass
        return self.stats_socket.exists()

    def runtime(self, command: str) -> str:
        """One command on the admin socket (HAProxy's runtime API), e.g. "show stat"."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.stats_socket))
            s.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def server_states(self) -> dict[int, str]:
        """Backend port -> HAProxy's status of it ("UP", "DOWN", "UP 1/2", ...)."""
        rows = csv.DictReader(self.runtime("show stat").lstrip("# ").splitlines())
        states = {}
        for row in rows:
            if row["pxname"] == "replicas" and row["svname"].startswith("p"):
                states[int(row["svname"][1:])] = row["status"]
        return states

    def wait_states(self, want: dict[int, str], timeout: float = 10.0) -> None:
        """Wait until each given backend port has the given status (its first word: UP or DOWN)."""
        deadline = time.monotonic() + timeout
        while True:
            states = {}
            try:
                states = self.server_states()
            except OSError:
                pass
            if all(states.get(p, "").split(" ")[0] == s for p, s in want.items()):
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"backends {states}, wanted {want}")
            time.sleep(0.05)

    def set_backends(self, ports: Iterable[int]) -> None:
        """Serve these backend ports from now on, keeping the stick table (and so every stuck session).

        A removed replica's open streams are cut, as its death would; new ones start UP and then follow
        their health checks.
        """
        wanted = list(ports)
        if self.running:
            for port in [p for p in self.backend_ports if p not in wanted]:
                self._runtime_ok(f"set server replicas/p{port} state maint")
                self._runtime_ok(f"shutdown sessions server replicas/p{port}")
                self._runtime_ok(f"del server replicas/p{port}", expect="Server deleted")
            for port in [p for p in wanted if p not in self.backend_ports]:
                self._runtime_ok(f"add server replicas/{self._server_line(port)}", expect="New server")
                self._runtime_ok(f"enable health replicas/p{port}")
                self._runtime_ok(f"enable server replicas/p{port}")
        self.backend_ports = wanted
        if self._prepared:
            self._write_config()  # so a later restart() comes up with the same replicas

    def _runtime_ok(self, command: str, expect: str = "") -> None:
        answer = self.runtime(command).strip()
        if (expect and expect not in answer) or (not expect and answer):
            raise ServiceError(f"haproxy: {command!r} -> {answer!r}")
