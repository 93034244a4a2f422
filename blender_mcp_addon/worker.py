"""The headless bus worker: `blender -b [file.blend] -c mcp_worker --server URL ...`.

The same function serves the `blender-mcp-worker` console script (worker_cli.py),
which runs it on the bpy module. Secrets can come from the environment
(BLENDER_MCP_PASSWORD, BLENDER_MCP_TOKEN) so they stay out of `ps`.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time

from .limits import (
    DEFAULT_MAX_RENDER_SAMPLES,
    DEFAULT_MAX_RENDER_SIZE,
    OUTPUT_FOLDER_NAME,
    Limits,
    default_output_dir,
)

log = logging.getLogger(__name__)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def build_parser(prog: str = "blender -b -c mcp_worker") -> argparse.ArgumentParser:
    env = os.environ.get
    p = argparse.ArgumentParser(prog=prog, description="Run this Blender as a BlenderMCP bus worker.")
    p.add_argument("--server", default=env("BLENDER_MCP_SERVER", "http://127.0.0.1:8000"))
    p.add_argument("--username", default=env("BLENDER_MCP_USERNAME"))
    p.add_argument("--password", default=None, help="prefer the BLENDER_MCP_PASSWORD environment variable")
    p.add_argument("--token", default=None, help="an API token; prefer the BLENDER_MCP_TOKEN environment variable")
    p.add_argument("--uuid", default=None, help="client uuid (default: this install's stable uuid)")
    p.add_argument("--label", default=None)
    p.add_argument("--group", default=None)
    p.add_argument("--capabilities", default="scene,code,render,polyhaven",
                   help="comma-separated, e.g. rendering,gpu")
    p.add_argument("--policy", choices=["allow", "safe", "deny"], default="allow",
                   help="code execution policy: safe reads each script first and refuses what reaches outside "
                        "the scene and the output folder (a headless worker cannot ask)")
    p.add_argument("--checkpoint-before-code", action="store_true",
                   help="save a checkpoint of the open file before each script runs (restore_checkpoint "
                        "takes a bad script back)")
    p.add_argument("--integrations", default="polyhaven",
                   help="comma-separated integrations to enable: polyhaven,rodin,sketchfab,hunyuan3d,tripo,"
                        "meshy,polypizza,ambientcg")
    p.add_argument("--blend", default=None, help="a .blend file to open first")
    p.add_argument("--max-render-size", type=_positive, default=DEFAULT_MAX_RENDER_SIZE, metavar="PIXELS",
                   help="refuse renders whose resolution asks for a longer side than this (default: %(default)s; "
                        "a 4096x4096 Cycles render peaked at 5.3 GB)")
    p.add_argument("--max-render-samples", type=_positive, default=DEFAULT_MAX_RENDER_SAMPLES, metavar="N",
                   help="refuse renders that ask for more samples (default: %(default)s)")
    p.add_argument("--output-dir", default=env("BLENDER_MCP_OUTPUT_DIR"), metavar="DIR",
                   help="the only folder save_blend and export_scene may write in; relative paths land there "
                        f"(default: ./{OUTPUT_FOLDER_NAME}, made when first needed; or BLENDER_MCP_OUTPUT_DIR)")
    p.add_argument("--allow-write-anywhere", action="store_true",
                   help="let save_blend and export_scene write any path this user can (relative paths still "
                        "land in the output folder)")
    p.add_argument("--log-level", default=env("BLENDER_MCP_LOG_LEVEL", "INFO"))
    return p


def run(argv: list[str], prog: str = "blender -b -c mcp_worker") -> int:
    import bpy

    # Imported here, not at the top: `--help` of the console script needs only the parser (worker_cli).
    from .client import ClientConfig
    from .client.auth import keeper_for_cli
    from .runtime import Runtime
    from .runtime.drivers import run_headless
    from .session import client_versions, default_label, set_runtime, stable_uuid

    args = build_parser(prog).parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("httpx", "mcp.client.streamable_http"):  # one line per request: only worth seeing when debugging
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    password = args.password or os.environ.get("BLENDER_MCP_PASSWORD")
    token = args.token or os.environ.get("BLENDER_MCP_TOKEN")
    if not token and not (args.username and password):
        print("error: give --token (or BLENDER_MCP_TOKEN), or --username with BLENDER_MCP_PASSWORD", file=sys.stderr)
        return 2
    if args.blend:
        bpy.ops.wm.open_mainfile(filepath=args.blend)
    keeper, code, why = keeper_for_cli(args.server, username=args.username, password=password, token=token)
    if keeper is None:
        print(f"error: {why}", file=sys.stderr)
        return code
    config = ClientConfig(server_url=args.server, client_uuid=args.uuid or stable_uuid(), client_type="blender",
                          is_persistent=True, label=args.label or default_label(), group_id=args.group,
                          capabilities=[c.strip() for c in args.capabilities.split(",") if c.strip()],
                          versions=client_versions(), list_clients=False)  # no panel to show them
    enabled = {name.strip() for name in args.integrations.split(",") if name.strip()}
    limits = Limits(max_render_size=args.max_render_size, max_render_samples=args.max_render_samples,
                    output_dir=os.path.abspath(os.path.expanduser(args.output_dir)) if args.output_dir
                    else default_output_dir(), write_anywhere=args.allow_write_anywhere, source="worker")
    runtime = Runtime(policy=args.policy, integration_enabled=enabled.__contains__, limits=limits,
                      checkpoint_before_code=args.checkpoint_before_code)
    set_runtime(runtime)
    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("signal %s: stopping", signum)
        stop.set()
        runtime.pump.wake()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    runtime.connect(config, keeper)
    deadline = time.time() + 20
    while runtime.state.status in ("disconnected", "connecting") and time.time() < deadline:
        time.sleep(0.05)
    versions = config.versions
    print(f"blender-mcp worker {config.client_uuid}: {runtime.state.describe()} ({keeper.base}; add-on "
          f"{versions['addon']}, Blender {versions['blender']}, Python {versions['python']}, bus protocol "
          f"{versions['protocol']}; server {runtime.state.server.get('version', '?')})", flush=True)
    writes = "anywhere" if limits.write_anywhere else f"only in {limits.output_dir}"
    print(f"blender-mcp worker {config.client_uuid}: renders up to {limits.max_render_size} px and "
          f"{limits.max_render_samples} samples; save_blend and export_scene write {writes}", flush=True)
    try:
        run_headless(runtime, stop)
    finally:
        runtime.shutdown("the worker is stopping")
        set_runtime(None)
        for sig, handler in previous.items():
            if handler is not None:  # None: Blender's own C handler, which Python cannot put back
                signal.signal(sig, handler)
    if runtime.state.status == "error":  # refused for good (credentials, uuid, versions): a supervisor should know
        print(f"error: blender-mcp worker {config.client_uuid}: {runtime.state.reason}", file=sys.stderr, flush=True)
        return 1
    print(f"blender-mcp worker {config.client_uuid}: stopped", flush=True)
    return 0


def cli_command(argv: list[str]) -> int:
    """The `-c mcp_worker` command Blender 4.2+ lets an extension register."""
    return run(argv)


def main() -> None:
    """Blender 3.4-4.1, which have no `-c`: the worker's arguments follow `--`.

        blender -b --addons blender_mcp --python-expr "import blender_mcp.worker as w; w.main()" -- --username U
    """
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    sys.exit(run(argv, prog="blender -b --addons blender_mcp --python-expr ... --"))
