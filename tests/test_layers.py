"""The layers point one way: no module imports one that imports it back (type-only imports count too)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> dict[str, Path]:
    """Every module of the package, by dotted name, from pyproject's folder-to-package mapping."""
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    modules: dict[str, Path] = {}
    for package, folder in mapping.items():
        for path in (ROOT / folder).glob("*.py"):
            modules[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.stem == "__init__" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    yield sub
                elif target in modules:
                    yield target


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: set(_imports(name, path, modules)) - {name} for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_analysis_sees_the_package() -> None:
    graph = _graph()
    assert "expstream.eventlog.records" in graph["expstream.producer.transports.base"]
    assert "expstream.experiments" in graph["expstream.projects"]
    assert len(graph) > 60


def test_no_module_imports_one_that_imports_it_back() -> None:
    assert _cycles(_graph()) == []


def test_no_package_imports_one_that_imports_it_back() -> None:
    modules = _modules()

    def package(name: str) -> str:
        return name if modules[name].stem == "__init__" else name.rsplit(".", 1)[0]

    edges = {
        (package(a), package(b))
        for a, targets in _graph().items()
        for b in targets
        if package(a) != package(b) and not package(b).startswith(package(a) + ".")
    }
    assert sorted((a, b) for a, b in edges if (b, a) in edges and not a.startswith(b + ".")) == []


def test_the_event_log_and_the_query_side_stay_below() -> None:
    graph = _graph()
    for name, targets in graph.items():
        if name.startswith("expstream.eventlog"):
            assert not {t for t in targets if t.startswith(("expstream.producer", "expstream.consumers"))}, name
        if name.startswith("expstream.query"):
            assert "expstream.consumers.runner" not in targets, name
        if name.startswith(("expstream.producer", "expstream.consumers")):
            front = {"expstream.experiments", "expstream.projects", "expstream.sessions", "expstream.backend"}
            assert not targets & front, name
