"""The code's shape: no import cycles between the add-on's parts, and no comment cites a document the
repository does not have."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.helpers import ROOT


def _imports(path: Path, parts: list[str]) -> set[str]:
    """First-level parts of the package this module imports at run time (TYPE_CHECKING blocks excluded)."""
    tree = ast.parse(path.read_text())
    skipped = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
               and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped or not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        package = parts[:-1]  # the package the module is in (`a/__init__` is in `a`, `a/b` too)
        base = package[:len(package) - (node.level - 1)]
        target = base + (node.module.split(".") if node.module else [])
        if target:
            found.add(target[0])
    return found


def _graph(package: Path) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in package.rglob("*.py"):
        parts = list(path.relative_to(package).with_suffix("").parts)
        part = parts[0] if parts[0] != "__init__" else ""
        if not part:
            continue
        edges.setdefault(part, set()).update(p for p in _imports(path, parts) if p != part)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (found := visit(nxt, [*path, node])):
                return found
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node, [])):
            return found
    return None


def test_the_add_on_and_the_server_have_no_import_cycles():
    for package in (ROOT / "blender_mcp_addon", ROOT / "server" / "blender_mcp_server"):
        assert _cycle(_graph(package)) is None, f"{package.name}: {_cycle(_graph(package))}"


def test_comments_cite_only_documents_in_the_repository():
    for path in [*ROOT.glob("blender_mcp_addon/**/*.py"), *ROOT.glob("server/**/*.py"), ROOT / "pyproject.toml"]:
        for name in re.findall(r"\b([A-Za-z_./-]+\.md)\b", path.read_text()):
            assert (ROOT / name).exists() or (ROOT / "docs" / Path(name).name).exists(), f"{path}: {name}"


# The server's folders are its layers (docs/architecture.md): each may import only those below it, so the
# data path reads from storage and delivery up to the tools, and a second transport or store slots in beside.
_SERVER_LAYERS = {
    "storage": set(), "delivery": set(), "config": set(),
    "transport": {"delivery"},
    "bus": {"config", "delivery", "storage", "transport"},
    "auth": {"storage"},
    "tools": {"bus", "storage", "transport"},
}


def test_the_servers_folders_import_only_the_layers_below_them():
    edges = _graph(ROOT / "server" / "blender_mcp_server")
    for layer, allowed in _SERVER_LAYERS.items():
        assert edges.get(layer, set()) <= allowed, f"{layer} imports {sorted(edges[layer] - allowed)}"
