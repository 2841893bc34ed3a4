"""No import cycles inside ``capplan_core``.

The graph is built with ``ast`` from every ``import`` statement in the package, including
imports inside functions and under ``TYPE_CHECKING``: a cycle hidden behind a lazy import is
still two modules that cannot be understood (or split) one without the other.

Edges: ``import a.b`` -> ``a.b``; ``from a import b`` -> ``a`` (the package's namespace is
read, so its ``__init__`` runs) and also ``a.b`` when ``b`` is a submodule. The parent packages
Python initialises implicitly are not edges, so ``__init__`` re-exports stay legal; a module
that imports its *own* package by name (``from capplan_core.queueing import erlang`` inside
``capplan_core.queueing.sizing``) is a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "capplan_core"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def resolve_from(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> modules of ``package`` it imports (see the module docstring for the rules)."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                src = resolve_from(mod, is_pkg, node)
                targets = [src] + [f"{src}.{a.name}" for a in node.names]
            graph[mod].update(t for t in targets if t in files and t != mod)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a closed path ``[a, b, ..., a]``, or None (iterative DFS, 3 colours)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if state.get(start):
            continue
        stack: list[tuple[str, list[str]]] = [(start, sorted(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                state[node] = 2
                stack.pop()
                path.pop()
                continue
            nxt = todo.pop()
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_find_cycle_reports_a_two_module_loop() -> None:
    graph = {"p.a": {"p.b"}, "p.b": {"p.a"}, "p.c": {"p.a"}}
    assert find_cycle(graph) == ["p.a", "p.b", "p.a"]
    assert find_cycle({"p.a": {"p.b"}, "p.b": set()}) is None


def test_from_package_import_submodule_is_an_edge_to_the_package(tmp_path: Path) -> None:
    pkg = tmp_path / "pk"
    (pkg / "q").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "q" / "__init__.py").write_text("from pk.q.s import f\n")
    (pkg / "q" / "e.py").write_text("X = 1\n")
    (pkg / "q" / "s.py").write_text("from pk.q import e\n\ndef f():\n    return e.X\n")
    graph = import_graph(tmp_path, "pk")
    assert graph["pk.q.s"] == {"pk.q", "pk.q.e"}
    assert find_cycle(graph) == ["pk.q", "pk.q.s", "pk.q"]
    (pkg / "q" / "s.py").write_text("from .e import X\n\ndef f():\n    return X\n")
    assert find_cycle(import_graph(tmp_path, "pk")) is None


def test_capplan_core_has_no_import_cycles() -> None:
    graph = import_graph()
    assert len(graph) > 50, "the package was not found"
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
