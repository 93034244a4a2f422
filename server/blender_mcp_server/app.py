"""Assemble the server: store -> tokens -> registry -> jobs -> bus -> FastMCP tools -> Starlette app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Container
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastmcp import FastMCP
from starlette.middleware import Middleware

from .bus import Bus
from .config import Settings
from .gc_policy import HeapFreezer
from .http_routes import AuthRoutes
from .jobs import Jobs
from .json_depth import JsonDepthGuard
from .post_answers import PostAnswers
from .quiet_ping import QuietPing
from .registry import Registry
from .sdk_shims import sdk_open_session_ids, session_manager, set_max_sessions, set_session_idle_timeout
from .session_limits import SessionLimit
from .store import Store
from .stream_watch import StreamWatch
from .throttle import LoginThrottle
from .tokens import BusTokenVerifier, TokenService, load_or_create_secret

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


def build_server(settings: Settings) -> Server:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.data_dir / "bus.sqlite3")
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else load_or_create_secret(settings.data_dir)
    tokens = TokenService(store, secret, settings.access_ttl, settings.refresh_ttl, settings.api_token_ttl)
    registry = Registry(max_clients_per_user=settings.max_clients_per_user, outbox_max=settings.outbox_max,
                        outbox_max_bytes=settings.outbox_max_bytes, send_timeout=settings.send_timeout, store=store)
    jobs = Jobs(store)
    bus = Bus(settings, registry, jobs)
    http_app_ref: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_server: FastMCP) -> AsyncIterator[dict[str, Any]]:
        # A client killed with -9 keeps its MCP session 30 minutes by default; reap sooner.
        set_session_idle_timeout(http_app_ref.get("app"), MCP_PATH, settings.session_idle_timeout)
        set_max_sessions(http_app_ref.get("app"), MCP_PATH, settings.max_sessions)
        await bus.start()
        freezer = asyncio.get_running_loop().create_task(HeapFreezer(registry).run(), name="heap-freezer")
        try:
            yield {}
        finally:
            freezer.cancel()
            await bus.stop()

    mcp: FastMCP = FastMCP("blender-mcp-bus", instructions=INSTRUCTIONS, auth=BusTokenVerifier(tokens),
                           lifespan=lifespan, middleware=[QuietPing(settings.ping_timeout)])
    throttle = LoginThrottle(per_address_and_user=settings.login_failures_per_address_and_user,
                             per_address=settings.login_failures_per_address,
                             per_user=settings.login_failures_per_user, max_delay=settings.login_delay_max)
    routes = AuthRoutes(store, tokens, registry, throttle=throttle, hashes_at_once=settings.password_hashes_at_once)
    mcp.custom_route("/auth/login", methods=["POST"])(routes.login)
    mcp.custom_route("/auth/refresh", methods=["POST"])(routes.refresh)
    mcp.custom_route("/auth/logout", methods=["POST"])(routes.logout)
    mcp.custom_route("/auth/tokens", methods=["GET", "POST"])(routes.api_tokens)
    mcp.custom_route("/auth/tokens/{jti}", methods=["DELETE"])(routes.revoke_api_token)
    mcp.custom_route("/health", methods=["GET"])(routes.health)

    from .prompts import add_prompts
    from .resources import add_resources
    from .tools_bus import add_bus_tools
    from .tools_dispatch import add_dispatch_tools

    add_bus_tools(mcp, bus)
    add_dispatch_tools(mcp, bus)
    add_resources(mcp, bus)
    add_prompts(mcp)

    def open_session_ids() -> Container[str] | None:
        return sdk_open_session_ids(session_manager(http_app_ref.get("app"), MCP_PATH))

    app = mcp.http_app(path=MCP_PATH, stateless_http=False, middleware=[
        Middleware(JsonDepthGuard, limit=settings.max_json_depth, mcp_path=MCP_PATH),
        Middleware(SessionLimit, limit=settings.max_sessions_per_user, open_ids=open_session_ids,
                   idle_timeout=settings.session_idle_timeout, path=MCP_PATH),
        Middleware(StreamWatch, registry=registry, path=MCP_PATH),
        Middleware(PostAnswers, path=MCP_PATH)])
    http_app_ref["app"] = app
    return Server(settings, store, tokens, registry, jobs, bus, mcp, app)
