"""The project's modules import each other without a circle, and each folder only reaches down.

Every import statement counts, inside functions and under TYPE_CHECKING too: an import hidden in a
function is still a dependency. The floors, from the ground up:

    models, bot.core → bot.services → bot.telegram → bot.views → bot.jobs | handlers → bot (start-up)

Jobs and handlers stand side by side and never import each other. bot.sandbox is the emulator,
apart from the bot: it imports none of it, and only the start-up side (the demo) imports it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "handlers", "models")

# Each layer and the layers it may import (besides itself).
_BELOW_VIEWS = {"models", "bot.core", "bot.services", "bot.telegram"}
MAY_IMPORT = {
    "models": set(),
    "bot.core": {"models"},
    "bot.services": {"models", "bot.core"},
    "bot.telegram": {"models", "bot.core", "bot.services"},
    "bot.views": _BELOW_VIEWS,
    "bot.jobs": _BELOW_VIEWS | {"bot.views"},
    "handlers": _BELOW_VIEWS | {"bot.views"},
    "bot": _BELOW_VIEWS | {"bot.views", "bot.jobs", "handlers", "bot.sandbox"},
    "bot.sandbox": set(),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, name, set(modules)) for name, path in modules.items()}


def _floor(module: str) -> str:
    return max((f for f in MAY_IMPORT if module == f or module.startswith(f + ".")), key=len)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), a package's own
    `__init__` importing its submodules aside."""
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
            component.sort()
            if len(component) > 1 and not all(m == component[0] or m.startswith(component[0] + ".") for m in component):
                found.append(component)

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle() -> None:
    assert _cycles(_graph()) == []


def test_the_circle_check_can_fail() -> None:
    graph = {"bot.app": {"bot.jobs.scheduler"}, "bot.jobs.scheduler": {"bot.jobs.posts"}, "bot.jobs.posts": {"bot.app"},
             "models": set()}
    assert _cycles(graph) == [["bot.app", "bot.jobs.posts", "bot.jobs.scheduler"]]


def _against_the_floors(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{module} -> {target}" for module, targets in graph.items() for target in targets
                  if _floor(target) != _floor(module) and _floor(target) not in MAY_IMPORT[_floor(module)])


def test_each_layer_imports_only_what_lies_below_it() -> None:
    assert _against_the_floors(_graph()) == []


def test_the_floor_check_can_fail() -> None:
    graph = {"handlers.member.start": {"bot.jobs.catalog", "bot.views.render"}, "bot.jobs.catalog": {"handlers.forms"},
             "bot.services.orders": {"bot.telegram.sender", "models"}, "bot.sandbox.core": {"bot.core.config"}}
    assert _against_the_floors(graph) == ["bot.jobs.catalog -> handlers.forms", "bot.sandbox.core -> bot.core.config",
                                          "bot.services.orders -> bot.telegram.sender",
                                          "handlers.member.start -> bot.jobs.catalog"]


def test_services_know_no_telegram() -> None:
    aiogram = [name for name, path in _modules().items() if name.startswith("bot.services")
               for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
               if isinstance(node, (ast.Import, ast.ImportFrom))
               and any(n.startswith("aiogram") for n in ([a.name for a in node.names] if isinstance(node, ast.Import)
                                                          else [node.module or ""]))]
    assert aiogram == []

