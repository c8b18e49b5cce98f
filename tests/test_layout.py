"""The package layout holds: imports point one way, no module imports itself in a circle, modules stay small.

Reads the source with ``ast`` (nothing is imported), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "auth", "tools")
MAX_LINES = 300


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    files = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                files[module_name(path)] = path
    return files


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports: ``from a.b import c`` names ``a.b.c`` when that is a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    files = source_files()
    known = set(files)
    return {name: imported_modules(path, known) - {name} for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(node: str) -> list[str] | None:
        if node in visiting:
            return [*visiting[visiting.index(node) :], node]
        if node in done:
            return None
        visiting.append(node)
        for target in sorted(graph.get(node, ())):
            cycle = visit(target)
            if cycle:
                return cycle
        visiting.pop()
        done.add(node)
        return None

    for start in sorted(graph):
        cycle = visit(start)
        if cycle:
            return cycle
    return None


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_no_module_imports_itself_in_a_circle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def imports_from(package: str, forbidden: Callable[[str], bool]) -> list[tuple[str, str]]:
    """(module, target) pairs where a module of ``package`` imports a target ``forbidden`` says it may not."""
    return sorted(
        (module, target)
        for module, targets in import_graph().items()
        if in_package(module, package)
        for target in targets
        if forbidden(target)
    )


def test_auth_imports_neither_server_nor_tools() -> None:
    wrong = imports_from("auth", lambda target: in_package(target, "server") or in_package(target, "tools"))
    assert not wrong, f"auth must not depend on server or tools: {wrong}"


def test_tools_do_not_import_server() -> None:
    wrong = imports_from("tools", lambda target: in_package(target, "server"))
    assert not wrong, f"tools must not depend on server: {wrong}"


def test_the_runtime_imports_only_its_own_package_auth_and_tools() -> None:
    outside = lambda target: in_package(target, "server") and not in_package(target, "server.runtime")  # noqa: E731
    wrong = imports_from("server.runtime", outside)
    assert not wrong, f"server/runtime may import only auth/, tools/ and itself: {wrong}"


def test_every_module_is_at_most_300_lines() -> None:
    long = {name: n for name, path in source_files().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these modules (at most {MAX_LINES} lines): {long}"


def test_only_the_runtime_creates_execution_records() -> None:
    makers = {"Execution", "ExecutionRecorder", "ExecutionEvent"}
    outside = set()
    for name, path in source_files().items():
        if in_package(name, "server.runtime"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in makers:
                outside.add((name, node.func.id))
    assert not outside, f"execution records are created only in server/runtime (Runtime.invoke): {sorted(outside)}"


def test_rest_and_mcp_call_the_runtime_not_the_recorder() -> None:
    for module in ("server.routes.runtime", "server.mcp.tool_calls"):
        text = source_files()[module].read_text()
        assert "runtime.invoke(" in text and "ExecutionRecorder" not in text, module


def test_routes_and_mcp_reach_records_only_through_the_runtime() -> None:
    internals = ("server.runtime.store", "server.runtime.recorder", "server.runtime.group_commit")
    wrong = [
        *imports_from("server.routes", lambda target: target in internals),
        *imports_from("server.mcp", lambda target: target in internals),
    ]
    assert not wrong, f"routes and MCP call the Runtime, never its store: {wrong}"
