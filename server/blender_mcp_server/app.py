"""Assemble the server: store -> tokens -> registry -> jobs -> bus -> FastMCP tools -> Starlette app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Container
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastmcp import FastMCP
from starlette.middleware import Middleware

from .auth.provider import BusTokenVerifier
from .auth.routes import AuthRoutes
from .auth.throttle import LoginThrottle
from .auth.tokens import TokenService, load_or_create_secret
from .bus.cluster import Cluster
from .bus.directory import Registry
from .bus.jobs import Jobs
from .bus.service import Bus
from .config import Settings
from .gc_policy import HeapFreezer
from .health import Health
from .metrics import Metrics
from .storage.counters import CounterFactory, in_process
from .storage.factory import make_store
from .storage.protocols import Prunable, QueueStore, Store
from .tools.backend_guard import BackendGuard
from .tools.bus_tools import add_bus_tools
from .tools.dispatch_tools import add_dispatch_tools
from .tools.fast_calls import FastToolCalls
from .tools.prompts import add_prompts
from .tools.resources import add_resources
from .transport.json_depth import JsonDepthGuard
from .transport.post_answers import PostAnswers
from .transport.quiet_ping import QuietPing
from .transport.sdk_shims import (
    on_logging_level_set,
    sdk_open_session_ids,
    session_manager,
    set_max_sessions,
    set_session_idle_timeout,
)
from .transport.session_limits import SessionLimit
from .transport.stream_watch import StreamWatch

MCP_PATH = "/mcp"

INSTRUCTIONS = """\
BlenderMCP bus. Style A: call a blender_<command> tool (e.g. blender_get_scene_info) and get JSON back;
the server picks your one connected Blender, or pass target_uuid. Style B: call set_logging_level("debug"),
blender_register_client, then blender_send_message; bus records arrive as notifications/message
with logger "_message_bus".

Which tool when:
- Orient first: blender_get_scene_info (or the resource blender://scene), blender_get_object_info,
  blender_get_material_info, blender_get_collection_info, blender_get_file_info (unsaved changes, missing
  files); blender_list_names for real names. Resources blender://object/{name}, blender://material/{name},
  blender://collection/{name}, blender://file, blender://clients read the same; add ?target=<uuid> to pick
  a Blender.
- Before writing bpy code you are unsure of: blender_describe_api (this Blender's own API).
- Before a risky change: blender_checkpoint. Change with small blender_execute_code scripts or a dedicated tool.
- After each change: blender_look, and judge the picture; blender_render_image for a final render.
- Wrong result: blender_undo (in a Blender window) or blender_restore_checkpoint (any Blender).
- Assets: blender_search_polyhaven_assets / blender_download_polyhaven_asset, Sketchfab and Hyper3D Rodin
  tools (check their blender_get_*_status first).
- blender_save_blend and blender_export_scene write files: only when asked.
- A status other than "completed" says why: no_client (connect a Blender), ambiguous_target (pass
  target_uuid, one of candidates), timeout (raise _timeout). The prompt blender_edit_scene walks the loop."""


@dataclass
class Server:
    settings: Settings
    store: Store
    tokens: TokenService
    registry: Registry
    jobs: Jobs
    bus: Bus
    mcp: FastMCP
    app: Any


@dataclass
class _Shared:
    """What replicas share beyond the store (settings.redis): queues, rate counters and each other."""

    queue: QueueStore
    counters: CounterFactory
    cluster: Cluster | None
    closers: list[Any]
    prunable: list[Prunable]  # beside the store, what Liveness prunes every prune_interval


def _shared(settings: Settings, store: Store) -> _Shared:
    """One server alone keeps its queues in its store and counts in process; replicas use Redis for both."""
    if settings.redis is None:
        return _Shared(store, in_process, None, [], [])
    from .storage.redis import RedisQueueStore
    from .storage.redis_cluster import RedisCluster

    url = settings.redis.get_secret_value()
    queue = RedisQueueStore.from_url(url, prefix=settings.redis_prefix, connect_timeout=settings.backend_timeout,
                                     timeout=settings.backend_timeout)
    cluster = RedisCluster(url, settings.replica_name, queue, prefix=settings.redis_prefix,
                           beat=settings.replica_ttl / 3, ttl=settings.replica_ttl, timeout=settings.backend_timeout,
                           directory_cache=settings.directory_cache,
                           persistent_max_offline=settings.persistent_max_offline)
    # the cluster prunes persistent clients no replica holds (each replica ages out its own)
    return _Shared(queue, queue.counters(), cluster, [queue], [queue, cluster])


def build_server(settings: Settings, store: Store | None = None) -> Server:
    """`store`: the one the settings name when not given; opened in the app's lifespan (a database pool has to
    open in the event loop that serves) and closed at its end, so the server owns it either way."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if store is None:
        store = make_store(settings)
    shared = _shared(settings, store)
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else load_or_create_secret(settings.data_dir)
    tokens = TokenService(store, secret, settings.access_ttl, settings.refresh_ttl, settings.api_token_ttl)
    registry = Registry(max_clients_per_user=settings.max_clients_per_user, outbox_max=settings.outbox_max,
                        outbox_max_bytes=settings.outbox_max_bytes, send_timeout=settings.send_timeout,
                        store=shared.queue)
    jobs = Jobs(store)
    bus = Bus(settings, registry, jobs, stores=[store, *shared.prunable], cluster=shared.cluster,
              counter=shared.counters)
    bus.metrics = Metrics(settings, registry, jobs)
    http_app_ref: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        # A client killed with -9 keeps its MCP session 30 minutes by default; reap sooner.
        set_session_idle_timeout(http_app_ref.get("app"), MCP_PATH, settings.session_idle_timeout)
        set_max_sessions(http_app_ref.get("app"), MCP_PATH, settings.max_sessions)
        await store.open()  # before the bus: restoring persistent clients reads the store
        await bus.start()
        freezer = asyncio.get_running_loop().create_task(HeapFreezer(registry).run(), name="heap-freezer")
        try:
            yield {}
        finally:
            freezer.cancel()
            try:
                await bus.stop()  # flushes what the outboxes delivered into the store: it closes after
            finally:
                await store.close()
                for closer in shared.closers:
                    await closer.close()

    verifier = BusTokenVerifier(tokens)
    mcp: FastMCP = FastMCP("blender-mcp-bus", instructions=INSTRUCTIONS, auth=verifier,
                           lifespan=lifespan, middleware=[QuietPing(settings.ping_timeout), BackendGuard()])
    throttle = LoginThrottle(per_address_and_user=settings.login_failures_per_address_and_user,
                             per_address=settings.login_failures_per_address,
                             per_user=settings.login_failures_per_user, max_delay=settings.login_delay_max,
                             counter=shared.counters)
    routes = AuthRoutes(store, tokens, throttle=throttle, hashes_at_once=settings.password_hashes_at_once)
    mcp.custom_route("/auth/login", methods=["POST"])(routes.login)
    mcp.custom_route("/auth/refresh", methods=["POST"])(routes.refresh)
    mcp.custom_route("/auth/logout", methods=["POST"])(routes.logout)
    mcp.custom_route("/auth/tokens", methods=["GET", "POST"])(routes.api_tokens)
    mcp.custom_route("/auth/tokens/{jti}", methods=["DELETE"])(routes.revoke_api_token)
    mcp.custom_route("/health", methods=["GET"])(Health(registry).route)
    on_logging_level_set(mcp, registry.level_set)
    mcp.custom_route("/metrics", methods=["GET"])(bus.metrics.route)

    add_bus_tools(mcp, bus)
    add_dispatch_tools(mcp, bus)
    add_resources(mcp, bus)
    add_prompts(mcp)

    def open_session_ids() -> Container[str] | None:
        return sdk_open_session_ids(session_manager(http_app_ref.get("app"), MCP_PATH))

    fast_path = [Middleware(FastToolCalls, mcp=mcp, bus=bus, path=MCP_PATH,
                            manager=lambda: session_manager(http_app_ref.get("app"), MCP_PATH),
                            required_scopes=verifier.required_scopes, job_updates=settings.fast_job_updates,
                            dispatch=settings.fast_dispatch)
                 ] if settings.fast_job_updates or settings.fast_dispatch else []
    app = mcp.http_app(path=MCP_PATH, stateless_http=False, middleware=[
        Middleware(JsonDepthGuard, limit=settings.max_json_depth, mcp_path=MCP_PATH),
        Middleware(SessionLimit, limit=settings.max_sessions_per_user, open_ids=open_session_ids,
                   idle_timeout=settings.session_idle_timeout, path=MCP_PATH),
        Middleware(StreamWatch, registry=registry, path=MCP_PATH),
        Middleware(PostAnswers, path=MCP_PATH),  # over the fast path too: its answers leave as the SDK's do
        *fast_path])
    http_app_ref["app"] = app
    return Server(settings, store, tokens, registry, jobs, bus, mcp, app)
