"""The walls of the domain package hold: only ``ordersync.airflow`` imports Airflow, and no two modules of
``plugins/ordersync`` import each other at load time (no cycle a newcomer must keep in mind)."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import ROOT

PACKAGE = ROOT / "plugins" / "ordersync"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT / "plugins").with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, ast.Module]:
    return {
        _module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p))
        for p in sorted(PACKAGE.rglob("*.py"))
        if "migrations" not in p.parts
    }


def _imported(node: ast.AST, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against the module's package
            base = module.split(".")[: -node.level or None]
            return [".".join([*base, node.module or ""]).rstrip(".")]
        names = [node.module or ""]
        names += [f"{node.module}.{alias.name}" for alias in node.names]  # ``from pkg import module``
        return names
    return []


def _load_time_imports(tree: ast.Module, module: str) -> list[str]:
    """Imports that run when the module is loaded: top level, outside ``if TYPE_CHECKING:``; not in functions."""
    found: list[str] = []

    def visit(body: list[ast.stmt]) -> None:
        for stmt in body:
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                found.extend(_imported(stmt, module))
            elif isinstance(stmt, ast.If) and "TYPE_CHECKING" not in ast.unparse(stmt.test):
                visit(stmt.body)
                visit(stmt.orelse)
            elif isinstance(stmt, ast.Try):
                visit(stmt.body)

    visit(tree.body)
    return found


def test_only_ordersync_airflow_imports_airflow():
    offenders = []
    for module, tree in _sources().items():
        if module == "ordersync.airflow" or module.startswith("ordersync.airflow."):
            continue
        for node in ast.walk(tree):  # anywhere, inside functions too
            for name in _imported(node, module):
                if name == "airflow" or name.startswith("airflow."):
                    offenders.append(f"{module} imports {name} (line {node.lineno})")
    assert offenders == []


def test_the_domain_imports_no_airflow_at_all_when_loaded():
    """The same, checked by importing: loading every domain module pulls in no ``airflow`` module."""
    import subprocess
    import sys

    code = (
        "import importlib, pkgutil, sys, ordersync\n"
        "for m in pkgutil.walk_packages(ordersync.__path__, 'ordersync.'):\n"
        "    if not m.name.startswith('ordersync.airflow') and '.migrations' not in m.name:\n"
        "        importlib.import_module(m.name)\n"
        "print(sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT / "plugins",
        env={"PYTHONPATH": str(ROOT / "plugins"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_import_cycles_in_plugins():
    sources = _sources()
    graph: dict[str, set[str]] = {}
    for module, tree in sources.items():
        targets = set()
        for name in _load_time_imports(tree, module):
            while name and name not in sources:  # ``from pkg import name`` where name is not a module
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
                parent = name.rpartition(".")[0]
                while parent:  # importing a.b.c runs a and a.b first
                    if parent in sources and parent != module and not module.startswith(parent + "."):
                        targets.add(parent)
                    parent = parent.rpartition(".")[0]
        graph[module] = targets
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt])
            elif nxt not in state:
                walk(nxt, [*path, nxt])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            walk(module, [module])
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
