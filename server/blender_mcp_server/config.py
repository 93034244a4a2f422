"""Server settings: embedded defaults, overridable by `BLENDER_MCP_*` environment variables or CLI flags."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BLENDER_MCP_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    public_url: str | None = Field(default=None, description="URL clients use, when behind a TLS proxy")
    trusted_proxies: str = Field(default="", description="comma-separated addresses of reverse proxies whose "
                                 "X-Forwarded-For is believed (none by default)")

    database: SecretStr | None = Field(default=None, description=(
        "a postgresql:// URL (postgresql://user:password@host:5432/dbname). Users, tokens and jobs (and "
        "persistent clients with their queued records) then live there, so every replica shares them and a "
        "user made on one logs in on all; unset: the SQLite file data_dir/bus.sqlite3. Give replicas the same "
        "jwt_secret too"))
    database_pool_min: int = Field(default=1, ge=0, description="connections each server keeps open to the database")
    database_pool_size: int = Field(default=10, ge=1, description="at most this many connections per server "
                                    "process (replicas x this must stay under the database's max_connections)")
    database_connect_timeout: int = Field(default=2, ge=1, description="seconds one connection attempt may take "
                                          "(libpq counts whole seconds, at least 2)")
    database_timeout: float = Field(default=2.0, gt=0, description="seconds a call waits for a pooled connection; "
                                    "with the database away, calls fail this fast (HTTP 503 backend_unavailable)")
    database_open_timeout: float = Field(default=10.0, gt=0, description="seconds start-up waits for the database "
                                         "before giving up")
    database_reconnect_timeout: float = Field(default=5.0, gt=0, description="seconds a lost pooled connection is "
                                              "retried (with doubling delays) before its slot is freed for a fresh "
                                              "attempt: bounds how long after an outage the pool takes to heal")

    jwt_secret: SecretStr | None = Field(default=None, description="else generated once into data_dir")
    access_ttl: int = 3600
    refresh_ttl: int = 30 * 24 * 3600
    api_token_ttl: int = 365 * 24 * 3600
    demo_user: bool = Field(default=True, description="create demo/demo when the store has no users")
    allow_insecure_demo: bool = Field(default=False, description="serve demo/demo on a non-loopback bind")

    # Bad input and abuse limits; every one answers with a structured error.
    max_payload_bytes: int = 1024 * 1024
    max_payload_depth: int = 64
    max_clients_per_user: int = 200
    messages_per_minute: int = 60_000
    # Failed logins a minute: past the first, that address may not try that user; past the second, that
    # address may not try anyone; past the third, every login for that user waits (doubling, at most
    # login_delay_max seconds), wherever it comes from. The owner is never locked out (auth/throttle.py).
    login_failures_per_address_and_user: int = 10
    login_failures_per_address: int = 100
    login_failures_per_user: int = 10
    login_delay_max: float = 2.0
    password_hashes_at_once: int = 2
    # Open MCP sessions (each ~70 KB of server memory): one account may not take the whole server's share,
    # at which point the SDK answers every other user's new session with 503.
    max_sessions_per_user: int = Field(default=300, ge=1)
    max_sessions: int = Field(default=10_000, ge=1, description="all users together (the SDK's own bound)")
    # Reading a request: a connection whose request line and headers are not in within header_timeout, or
    # whose body stalls for body_timeout between chunks, is closed (answered 408 when nothing else is in
    # flight on it). Responses, such as the standing GET stream, are not timed.
    header_timeout: float = Field(default=10.0, gt=0)
    body_timeout: float = Field(default=30.0, gt=0)
    # Request JSON nesting, checked before anything parses it: Python's parser fails at ~950 levels with a
    # RecursionError, which the SDK answers with a 500. Anything shallower is parsed and meets the bus's
    # own, clearer checks (max_payload_depth), so this sits well between the two.
    max_json_depth: int = Field(default=512, ge=2)
    # The Blender extension's blender_job_updates calls (one per reply batch) answered beside the SDK, the
    # same bytes for a fraction of its time (tools/fast_calls.py); false sends them the SDK's way.
    fast_job_updates: bool = True
    # Likewise the callers' dispatch tool calls (blender_get_scene_info ...), progress and cancel included.
    fast_dispatch: bool = True

    # Delivery: each target's outbox and liveness. Records queued for an offline persistent client are
    # kept in the store, so they survive a restart of the server.
    outbox_max: int = 10_000
    outbox_max_bytes: int = 64 * 1024 * 1024
    offline_max_records: int = 1000
    offline_max_bytes: int = 16 * 1024 * 1024
    offline_max_age: float = 3600.0
    persistent_max_offline: float = 30 * 24 * 3600.0  # a persistent client offline this long leaves the listing
    # Job updates for an originator that is not registered (its caller left, the server restarted): held
    # per user, across all such originators, until it registers again or they age out.
    parked_max_records: int = 1000
    parked_max_bytes: int = 16 * 1024 * 1024
    parked_max_age: float = 3600.0
    job_updates_per_minute: int = 60_000
    # Housekeeping: jobs untouched this long leave the store, with expired tokens, every prune_interval.
    job_retention: float = 7 * 24 * 3600.0
    prune_interval: float = 3600.0
    cancel_ack_timeout: float = 1.0  # how long a timed-out Style A call waits to hear whether its job stopped
    send_timeout: float = 5.0
    ping_interval: float = 10.0
    ping_timeout: float = 5.0
    session_idle_timeout: float = 300.0

    # Replicas: several servers sharing one bus. Clients held by other replicas, records and job updates for
    # them, and where each Style A call waits, go through Redis; every replica must share the JWT secret
    # and the database (users, tokens and jobs) too.
    redis: SecretStr | None = Field(default=None, description="redis://host:port/db of the replicas' shared bus "
                                    "state; none: this server is the whole bus")
    redis_prefix: str = Field(default="bmcp:", description="prefix of every Redis key the bus uses")
    replica_id: str | None = Field(default=None, description="this replica's name among the others "
                                   "(default: host name and port)")
    replica_ttl: float = Field(default=3.0, gt=0.5, description="seconds after its last beat (every third of "
                               "this) that a silent replica counts as gone, and its clients with it")
    backend_timeout: float = Field(default=2.0, gt=0, description="how long a call waits on Redis or the "
                                   "database before it answers backend_unavailable")
    directory_cache: float = Field(default=1.0, ge=0, description="seconds a replica reuses its copy of a user's "
                                   "directory for routing (changes that matter to routing drop it at once; "
                                   "heartbeat times may lag this much); 0: read it for every call")
    # GET /metrics (metrics.py): aggregate numbers only, no user names, uuids or job ids. Without a token it
    # is served on a loopback bind (the machine's own Prometheus or agent) and elsewhere only when
    # metrics_public says so; behind a load balancer, give each replica the token and scrape it directly.
    metrics_token: SecretStr | None = Field(default=None, description="when set, GET /metrics needs "
                                            "'Authorization: Bearer <token>' (401 otherwise), on any bind")
    metrics_public: bool = Field(default=False, description="without metrics_token, serve /metrics to anyone on "
                                 "a non-loopback bind too (else it answers 403 there); on a loopback bind it is "
                                 "always served")

    @model_validator(mode="after")
    def _one_user_cannot_fill_the_server(self) -> Settings:
        if self.max_sessions <= self.max_sessions_per_user:
            raise ValueError(f"max_sessions ({self.max_sessions}) must be greater than max_sessions_per_user "
                             f"({self.max_sessions_per_user})")
        return self

    @model_validator(mode="after")
    def _pool_bounds_in_order(self) -> Settings:
        if self.database_pool_min > self.database_pool_size:
            raise ValueError(f"database_pool_min ({self.database_pool_min}) must not exceed database_pool_size "
                             f"({self.database_pool_size})")
        return self

    @property
    def replica_name(self) -> str:
        return self.replica_id or f"{socket.gethostname()}:{self.port}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def is_loopback_bind(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1") or self.host.startswith("127.")
