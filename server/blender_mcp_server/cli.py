"""`blender-mcp-server`: serve the bus (the default), manage users and API tokens, bridge stdio clients,
set up this machine's MCP clients and Blender (`setup`)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from pathlib import Path
from typing import Any

from .config import Settings
from .storage.factory import open_store
from .storage.passwords import has_password
from .storage.records import StoreError
from .transport.sdk_shims import quiet_sdk_request_logs


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "data_dir", "public_url", "database", "redis", "replica_id"):
        value = getattr(args, name, None)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from blender_mcp_addon.asyncio_thread import declare_asyncio_thread

    from .app import build_server
    from .transport.read_timeouts import read_timeout_protocol

    settings = _settings(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The SDK logs every request at INFO ("Processing request of type ..."): a line per call on the hot path.
    quiet_sdk_request_logs()
    if not asyncio.run(_demo_user_allowed(settings)):
        print(f"refusing to listen on {settings.host}: the demo/demo user exists. Change its password "
              "(`blender-mcp-server user passwd demo`) or delete it (`user delete demo`) first, "
              "and put the server behind TLS (README: Production).", file=sys.stderr)
        return 2
    server = build_server(settings)
    url = settings.base_url
    print(f"BlenderMCP bus on {url}/mcp   (health: {url}/health)")
    print(f'log in: curl -s -X POST {url}/auth/login -H "content-type: application/json" '
          "-d '{\"username\":\"demo\",\"password\":\"demo\"}'", flush=True)
    declare_asyncio_thread()
    # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: anyone on the machine could then pick the
    # address the login throttle counts. Only the proxies named in trusted_proxies are believed.
    trusted = settings.trusted_proxies.strip()
    config = uvicorn.Config(server.app, host=settings.host, port=settings.port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=5, proxy_headers=bool(trusted),
                            forwarded_allow_ips=trusted or None,
                            http=read_timeout_protocol(settings.header_timeout, settings.body_timeout))
    graceful_server(config, server.bus).run()
    return 0


def graceful_server(config: Any, bus: Any) -> Any:
    """A uvicorn server that lets the bus answer every waiting call before it stops.

    uvicorn waits for open requests before the app's own shutdown runs, so a Style A call waiting on
    Blender would only see its connection cut; on SIGINT/SIGTERM the bus first ends those calls with
    a definite status.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            def exit_now() -> None:
                super(Server, self).handle_exit(sig, frame)

            if self.should_exit or not bus.request_shutdown(exit_now):
                exit_now()

    return Server(config)


def _password(args: argparse.Namespace) -> str:
    if args.password:
        return args.password
    first = getpass.getpass("password: ")
    if first != getpass.getpass("again: "):
        raise StoreError("passwords differ")
    return first


async def _demo_user_allowed(settings: Settings) -> bool:
    """Make demo/demo in an empty store (when settings allow); False when it may not be served here."""
    store = await open_store(settings)
    try:
        if await store.user_count() == 0 and settings.demo_user:
            try:
                await store.add_user("demo", "demo")
                print("created the demo user demo/demo (for local use only; add your own with `user add`)")
            except StoreError:
                # replicas starting at once on an empty shared database: one of them makes it
                if await store.find_user("demo") is None:
                    raise
        return (settings.is_loopback_bind() or settings.allow_insecure_demo
                or not await has_password(store, "demo", "demo"))
    finally:
        await store.close()


def cmd_user(args: argparse.Namespace) -> int:
    password = _password(args) if args.action in ("add", "passwd") else ""
    return asyncio.run(_user(args, password))


async def _user(args: argparse.Namespace, password: str) -> int:
    store = await open_store(_settings(args))
    try:
        if args.action == "add":
            await store.add_user(args.name, password)
            print(f"added user {args.name}")
        elif args.action == "passwd":
            await store.set_password(args.name, password)
            print(f"changed the password of {args.name}")
        elif args.action == "delete":
            if not await store.delete_user(args.name):
                raise StoreError(f"no user {args.name!r}")
            print(f"deleted user {args.name}")
        return 0
    finally:
        await store.close()


def cmd_token(args: argparse.Namespace) -> int:
    return asyncio.run(_token(args))


async def _token(args: argparse.Namespace) -> int:
    from .auth.tokens import TokenService, load_or_create_secret

    settings = _settings(args)
    store = await open_store(settings)
    try:
        secret = (settings.jwt_secret.get_secret_value() if settings.jwt_secret
                  else load_or_create_secret(settings.data_dir))
        if settings.database is not None and settings.jwt_secret is None and args.action == "create":
            # the token is recorded in the shared database, but only servers holding this key accept it
            print(f"note: signed with {settings.data_dir / 'jwt_secret'}; replicas accept it only if they share "
                  "that secret (set BLENDER_MCP_JWT_SECRET alike everywhere)", file=sys.stderr)
        tokens = TokenService(store, secret, settings.access_ttl, settings.refresh_ttl, settings.api_token_ttl)
        if args.action == "revoke":
            if not await store.revoke_api_token(args.name):
                raise StoreError(f"no API token with id {args.name!r}")
            print(f"revoked {args.name}")
            return 0
        user = await store.find_user(args.name)
        if user is None:
            raise StoreError(f"no user {args.name!r}")
        if args.action == "list":
            for t in await store.list_api_tokens(user.id):
                print(f"{t['jti']}  {t['name']!r}  revoked={bool(t['revoked'])}")
            return 0
        issued = await tokens.issue_api_token(user, args.label, int(args.days * 86400) if args.days else None)
        print(issued.token)
        print(f"(id {issued.jti}; revoke with `blender-mcp-server token revoke {issued.jti}`)", file=sys.stderr)
        return 0
    finally:
        await store.close()


def cmd_stdio(args: argparse.Namespace) -> int:
    from .stdio_bridge import run_bridge

    return run_bridge(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="blender-mcp-server", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None, help="folder of the SQLite file and JWT secret")
    common.add_argument("--database", default=None, metavar="URL",
                        help="postgresql://user:password@host/db: users, tokens and jobs live there, shared by every "
                             "replica (prefer BLENDER_MCP_DATABASE: a command line shows in `ps`)")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", parents=[common], help="run the bus server (default)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--public-url", default=None, help="the URL clients use, e.g. behind a TLS proxy")
    serve.add_argument("--redis", default=None, help="redis://… shared by the replicas of one bus "
                       "(with --database and one BLENDER_MCP_JWT_SECRET on every replica)")
    serve.add_argument("--replica-id", default=None, help="this replica's name (default: host:port)")
    serve.set_defaults(func=cmd_serve)

    user = sub.add_parser("user", parents=[common], help="manage users")
    user.add_argument("action", choices=["add", "passwd", "delete"])
    user.add_argument("name")
    user.add_argument("--password", default=None, help="else prompted (keeps it out of shell history)")
    user.set_defaults(func=cmd_user)

    token = sub.add_parser("token", parents=[common], help="long-lived API tokens for desktop MCP clients")
    token.add_argument("action", choices=["create", "list", "revoke"])
    token.add_argument("name", help="the username (create, list) or the token id (revoke)")
    token.add_argument("--label", default="cli token")
    token.add_argument("--days", type=float, default=None)
    token.set_defaults(func=cmd_token)

    stdio = sub.add_parser("stdio", help="stdio bridge for clients that only speak stdio (Claude Desktop)")
    stdio.add_argument("--server", default="http://127.0.0.1:8000")
    stdio.add_argument("--username", default=None)
    stdio.add_argument("--password-env", default="BLENDER_MCP_PASSWORD")
    stdio.add_argument("--token-env", default="BLENDER_MCP_TOKEN")
    stdio.set_defaults(func=cmd_stdio)

    from .setup_clients import add_parser as add_setup_parser

    add_setup_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    try:
        return int(args.func(args) or 0)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
