"""`blender-mcp-server setup`: write (or `--remove`) a `blender` entry in every MCP client's config here.

For each client found (`locations.py` lists the files, `blender_mcp_addon/protocol/client_config.py`
the entry each gets), it shows a unified diff, asks, logs in to the server, mints one labelled API token
per client (`setup: <client>`), keeps `<file>.bak`, and writes. The token ids go to
`~/.config/blender-mcp/setup-state.json` (not into the entries: some clients reject unknown keys), so
`--remove` can revoke exactly the tokens it minted.

Exit codes: 0 done (or nothing to do), 1 cancelled at the prompt, 2 bad arguments, 3 the server refused
or could not be reached, 4 some files were skipped (unparseable, or an entry in a shape not rewritten).
"""

from __future__ import annotations

import argparse
import difflib
import getpass
import json
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blender_mcp_addon.protocol import client_config as cc

from . import edit
from .locations import Machine, config_path, present

PLACEHOLDER = "<new API token, minted on apply>"
HOME_ENV = "BLENDER_MCP_SETUP_HOME"


@dataclass
class Change:
    client: str
    path: Path
    old: str | None  # None: the file does not exist yet
    new: str
    created_container: bool = False

    def diff(self) -> str:
        old = (self.old or "").splitlines(keepends=True)
        new = self.new.splitlines(keepends=True)
        label = str(self.path)
        lines = difflib.unified_diff(old, new, "/dev/null" if self.old is None else label, label)
        return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def bridge_command() -> list[str]:
    """How a stdio-only client starts the bridge: this very console script, else this Python with -m."""
    script = Path(sys.argv[0])
    if script.name.removesuffix(".exe") == "blender-mcp-server" and script.exists():
        return [str(script.resolve())]
    return [sys.executable, "-m", "blender_mcp_server.cli"]


def _state_path(m: Machine) -> Path:
    return m.home / ".config" / "blender-mcp" / "setup-state.json"


def _load_state(m: Machine) -> dict[str, Any]:
    try:
        return json.loads(_state_path(m).read_text())
    except (OSError, ValueError):
        return {}


def _save_state(m: Machine, state: dict[str, Any]) -> None:
    path = _state_path(m)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, json.dumps(state, indent=2) + "\n")


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so a crash never leaves half a config file."""
    tmp = path.with_name(path.name + ".blender-mcp-tmp")
    tmp.write_text(text, encoding="utf-8")
    try:
        shutil.copymode(path, tmp)
    except OSError:
        pass
    os.replace(tmp, path)


def _planned(client: str, path: Path, old: str | None, value: dict[str, Any] | None,
             drop_empty: bool = False) -> Change | None:
    """The change for one file: `value` to set, None to remove. None when there is nothing to change."""
    text = old or ""
    if client == "codex":
        new = edit.toml_set(text, value) if value is not None else edit.toml_remove(text)
        created = False
    elif value is not None:
        new, created = edit.json_set(text, cc.CONTAINER[client], value)
    else:
        new = edit.json_remove(text, cc.CONTAINER[client], drop_empty=drop_empty)
        created = False
    if old is None and value is None:
        return None
    return None if new == old else Change(client, path, old, new, created)


def _entry(client: str, args: argparse.Namespace, token: str) -> dict[str, Any]:
    return cc.entry(client, args.server, token, bridge_command(), stdio=client in args.stdio_clients)


def snippet(client: str, args: argparse.Namespace, token: str) -> str:
    """The text a person would paste: the client's file with only this entry (TOML for Codex)."""
    value = _entry(client, args, token)
    if client == "codex":
        return edit.toml_set("", value)
    return json.dumps({cc.CONTAINER[client]: {cc.SERVER_NAME: value}}, indent=2)


def _choose(args: argparse.Namespace, m: Machine) -> tuple[list[str], list[str]]:
    """The clients to act on, and the ones not found (only reported)."""
    if args.clients:
        named = [c.strip() for c in args.clients.split(",") if c.strip()]
        unknown = [c for c in named if c not in cc.CLIENTS]
        if unknown:
            raise SystemExit(_usage(f"unknown client(s) {', '.join(unknown)}; known: {', '.join(cc.CLIENTS)}"))
        return named, []
    found = [c for c in cc.CLIENTS if present(c, m)]
    return found, [c for c in cc.CLIENTS if c not in found]


def _usage(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _password(args: argparse.Namespace) -> str:
    password = os.environ.get("BLENDER_MCP_PASSWORD")
    if password:
        return password
    if not sys.stdin.isatty():
        raise SetupError("set BLENDER_MCP_PASSWORD (no terminal to ask for the password)", 3)
    return getpass.getpass(f"password for {args.username} on {args.server}: ")


class SetupError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _login(args: argparse.Namespace) -> str:
    import httpx

    try:
        r = httpx.post(f"{args.server.rstrip('/')}/auth/login",
                       json={"username": args.username, "password": _password(args)}, timeout=15)
    except httpx.HTTPError as exc:
        raise SetupError(f"cannot reach {args.server}: {exc}", 3) from None
    if r.status_code != 200:
        raise SetupError(f"login refused by {args.server}: {_message(r)}", 3)
    return r.json()["access_token"]


def _message(r: Any) -> str:
    try:
        return r.json().get("message") or f"HTTP {r.status_code}"
    except ValueError:
        return f"HTTP {r.status_code}"


def _mint(args: argparse.Namespace, access: str, client: str) -> tuple[str, str]:
    import httpx

    r = httpx.post(f"{args.server.rstrip('/')}/auth/tokens", json={"name": f"setup: {client}"},
                   headers={"Authorization": f"Bearer {access}"}, timeout=15)
    if r.status_code != 200:
        raise SetupError(f"the server would not mint a token for {client}: {_message(r)}", 3)
    body = r.json()
    return body["token"], body["jti"]


def _revoke(args: argparse.Namespace, access: str, jti: str) -> bool:
    import httpx

    try:
        r = httpx.delete(f"{args.server.rstrip('/')}/auth/tokens/{jti}",
                         headers={"Authorization": f"Bearer {access}"}, timeout=15)
    except httpx.HTTPError:
        return False
    return r.status_code in (200, 404)  # 404: already revoked or gone, which is what was wanted


def _confirm(args: argparse.Namespace, question: str) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("no terminal to confirm on: run again with --yes to apply, or --dry-run to only look",
              file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def run(args: argparse.Namespace) -> int:
    if args.install_addon:
        from .blender import install_addon

        return install_addon(args)
    home = args.home or (Path(os.environ[HOME_ENV]) if os.environ.get(HOME_ENV) else None)
    m = Machine.current(home.expanduser().resolve() if home else None)
    args.stdio_clients = {c.strip() for c in (args.stdio or "").split(",") if c.strip()}
    try:
        clients, missing = _choose(args, m)
    except SystemExit as exc:
        return int(exc.code or 2)
    if args.print_snippets:
        for client in clients or cc.CLIENTS:
            print(f"# {client}: {config_path(client, m)}")
            print(snippet(client, args, "<token>").rstrip())
        return 0
    if missing:
        print(f"not found here (skipped): {', '.join(missing)}")
    if not clients:
        print("no MCP client config found here; name the clients with --clients to create their files")
        return 0
    plan: list[Change] = []
    skipped = 0
    state = _load_state(m)
    for client in clients:
        path = config_path(client, m)
        try:
            old = path.read_text(encoding="utf-8") if path.exists() else None
            value = None if args.remove else _entry(client, args, PLACEHOLDER)
            # Only a servers object setup itself created goes again with the entry.
            drop = bool(state.get(str(path), {}).get("created_container"))
            change = _planned(client, path, old, value, drop_empty=drop)
        except (OSError, UnicodeDecodeError, edit.EditError) as exc:
            print(f"skipped {client} ({path}): {exc}", file=sys.stderr)
            skipped += 1
            continue
        if change is None:
            print(f"{client}: {path} — nothing to {'remove' if args.remove else 'change'}")
            continue
        plan.append(change)
    for change in plan:
        print(f"--- {change.client}")
        print(change.diff(), end="")
    if not plan:
        return 4 if skipped else 0
    if args.dry_run:
        print(f"dry run: {len(plan)} file(s) would change; nothing written, no token minted")
        return 4 if skipped else 0
    if not _confirm(args, f"{'Remove the entry from' if args.remove else 'Write'} {len(plan)} file(s)?"):
        print("cancelled; nothing written")
        return 1
    try:
        done = _remove(args, m, plan) if args.remove else _apply(args, m, plan)
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    return 4 if skipped or done < len(plan) else 0


def _backup_and_write(change: Change, text: str) -> None:
    change.path.parent.mkdir(parents=True, exist_ok=True)
    if change.old is not None:
        shutil.copy2(change.path, change.path.with_name(change.path.name + ".bak"))
    _write(change.path, text)


def _apply(args: argparse.Namespace, m: Machine, plan: list[Change]) -> int:
    access = _login(args)
    state = _load_state(m)
    try:
        return _apply_each(args, access, state, plan)
    finally:
        _save_state(m, state)  # also after a failure half-way: the files written so far keep their jti


def _apply_each(args: argparse.Namespace, access: str, state: dict[str, Any], plan: list[Change]) -> int:
    done = 0
    for change in plan:
        token, jti = _mint(args, access, change.client)
        try:
            # Planned again with the real token: the same edit the diff showed, placeholder replaced.
            real = _planned(change.client, change.path, change.old, _entry(change.client, args, token))
            assert real is not None
            _backup_and_write(change, real.new)
        except (OSError, edit.EditError) as exc:
            _revoke(args, access, jti)
            print(f"could not write {change.path}: {exc}", file=sys.stderr)
            continue
        previous = state.get(str(change.path))
        if previous and previous.get("jti") and previous.get("server") == args.server:
            _revoke(args, access, previous["jti"])  # the token this file held before is now unused
        state[str(change.path)] = {"client": change.client, "jti": jti, "server": args.server,
                                   "created_file": change.old is None if not previous else
                                   previous.get("created_file", False),
                                   "created_container": change.created_container or bool(
                                       previous and previous.get("created_container"))}
        done += 1
        print(f"{change.client}: wrote {change.path}" + (f" (backup {change.path.name}.bak)" if change.old else ""))
    return done


def _remove(args: argparse.Namespace, m: Machine, plan: list[Change]) -> int:
    state = _load_state(m)
    minted = [(c, state[str(c.path)]) for c in plan if state.get(str(c.path), {}).get("jti")]
    access = None
    if minted:
        try:
            access = _login(args)
        except SetupError as exc:
            print(f"warning: {exc}; the tokens stay valid until revoked "
                  f"(`blender-mcp-server token revoke ID`): {', '.join(s['jti'] for _, s in minted)}",
                  file=sys.stderr)
    done = 0
    for change in plan:
        record = state.get(str(change.path), {})
        _backup_and_write(change, change.new)
        if record.get("created_file") and change.new.strip() in ("", "{}"):
            change.path.unlink()  # setup made this file and nothing else is in it
        if access and record.get("jti") and not _revoke(args, access, record["jti"]):
            print(f"warning: could not revoke token {record['jti']}", file=sys.stderr)
        state.pop(str(change.path), None)
        done += 1
        print(f"{change.client}: removed the {cc.SERVER_NAME} entry from {change.path}")
    _save_state(m, state)
    return done


def add_parser(sub: Any) -> None:
    p = sub.add_parser("setup", help="write the blender entry into this machine's MCP clients' configs",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--server", default="http://127.0.0.1:8000", help="the bus server's base URL")
    p.add_argument("--username", default="demo", help="password from BLENDER_MCP_PASSWORD, else prompted")
    p.add_argument("--clients", default=None, help=f"comma-separated, of: {', '.join(cc.CLIENTS)} (default: found)")
    p.add_argument("--stdio", default=None, help="clients to give the stdio bridge instead of HTTP")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask before writing")
    p.add_argument("--dry-run", action="store_true", help="show the diffs only: nothing written or minted")
    p.add_argument("--remove", action="store_true", help="take the blender entries out, revoke their tokens")
    p.add_argument("--home", type=Path, default=None, help=f"look for the files under DIR (or ${HOME_ENV})")
    p.add_argument("--print", dest="print_snippets", action="store_true",
                   help="print each client's entry with a <token> placeholder; change nothing")
    p.add_argument("--install-addon", action="store_true", help="install and enable the add-on in Blender")
    p.add_argument("--blender", default=None, help="the Blender to install into (a path, or shell words)")
    p.add_argument("--zip", type=Path, default=None, help="the add-on zip (default: the packaged/built one)")
    p.set_defaults(func=run)
