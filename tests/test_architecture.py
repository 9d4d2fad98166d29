"""The package's import graph, read from the source: no import cycles among fs_cli modules, and the layers of
ARCHITECTURE.md hold (transforms/ is a pure library; only the CLI imports click; the CLI goes through the SDK).

Every executed import counts, at module level and inside functions: a late import that closes a cycle is still a
cycle (it only moves the failure from import time to call time). Imports under `if TYPE_CHECKING:` do not count:
they never run, and they are how a lower layer names a higher layer's type without depending on it. Importing a
submodule also runs its package's __init__; that implicit edge is not counted either (every module would then
"import" fs_cli, whose __init__ exposes the SDK).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "fs_cli"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _executed_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement except those guarded by `if TYPE_CHECKING:` (their `else:` branch does run)."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _owning_module(dotted: str) -> str | None:
    """The fs_cli module a dotted import target lives in (`fs_cli.online.store.open_store` -> `fs_cli.online.store`)."""
    while dotted:
        if dotted in MODULES:
            return dotted
        dotted = dotted.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    targets: list[str] = []
    for node in _executed_imports(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        # `from . import training` imports the module fs_cli.training; `from .x import name` imports fs_cli.x
        targets += [f"{source}.{a.name}" if f"{source}.{a.name}" in MODULES else source for a in node.names]
    owners = {_owning_module(t) for t in targets if t.startswith("fs_cli")}
    return {o for o in owners if o is not None and o != module}


GRAPH = {m: imports_of(m) for m in MODULES}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each as one concrete cycle path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(comp)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(graph, comp) for comp in components]


def _cycle_in(graph: dict[str, set[str]], comp: set[str]) -> list[str]:
    """A shortest cycle through the component's smallest module, as a path start -> ... -> start."""
    start = min(comp)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & comp):
                if w == start:
                    return [*paths[v], start]
                if w not in paths:
                    paths[w] = [*paths[v], w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component always has a cycle")


def test_the_graph_sees_late_imports_and_ignores_type_checking_ones():
    assert "fs_cli.sdk" in GRAPH["fs_cli.cli"]  # imported inside `main()`
    assert "fs_cli.sdk" not in GRAPH["fs_cli.registry.registry"]  # only under TYPE_CHECKING
    assert "fs_cli.training" in GRAPH["fs_cli.training_transforms"]  # `from . import training`


def test_the_cycle_finder_names_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_among_fs_cli_modules():
    cycles = find_cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def _importers_of(prefix: str, among: str) -> dict[str, set[str]]:
    return {m: {d for d in deps if d == prefix or d.startswith(prefix + ".")}
            for m, deps in GRAPH.items() if m.startswith(among)}


def test_transforms_is_a_pure_library():
    """Transformations are parsed, fitted and applied by a library that knows nothing of the warehouse layer, the
    online store, the server or the CLI (callers hand it connections and data)."""
    outside = {m: {d for d in deps if not d.startswith(("fs_cli.transforms", "fs_cli.errors"))}
               for m, deps in GRAPH.items() if m.startswith("fs_cli.transforms")}
    assert not any(outside.values()), {m: d for m, d in outside.items() if d}


# Command modules that still reach past the SDK, with what they import (to move behind FeatureStore methods).
COMMANDS_PAST_THE_SDK = {
    "fs_cli.commands.monitoring": {"fs_cli.monitoring.freshness"},  # failing(), post_webhook() of `fs check`
}


def test_only_the_cli_knows_the_commands():
    users = {m for m, deps in GRAPH.items() if any(d.startswith("fs_cli.commands") for d in deps)}
    assert users <= {m for m in MODULES if m == "fs_cli.cli" or m.startswith("fs_cli.commands")}


def _absolute_imports(path: Path) -> set[str]:
    """The modules a file imports by absolute name (`import a.b`, `from a.b import c` -> a.b)."""
    return {n for node in _executed_imports(ast.parse(path.read_text())) if not getattr(node, "level", 0)
            for n in ([a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""])}


def test_the_demo_is_beside_the_library_not_in_it():
    """The demo (demo/) is not installed with the package (pyproject's package list) and no fs_cli module imports
    it."""
    import tomllib

    from setuptools import find_namespace_packages

    repo = PACKAGE.parent
    find = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    shipped = find_namespace_packages(str(repo), include=find["include"], exclude=find.get("exclude", ()))
    assert "fs_cli" in shipped and (repo / "demo" / "__main__.py").is_file()
    assert all(p == "fs_cli" or p.startswith("fs_cli.") for p in shipped), shipped
    importers = {m for m, path in MODULES.items()
                 if any(n == "demo" or n.startswith("demo.") for n in _absolute_imports(path))}
    assert not importers, importers


def test_commands_go_through_the_sdk():
    """The command modules are adapters: they reach the store through the SDK (commands._context.get_store returns
    the FeatureStore) and print through commands._output; they import nothing else of the package."""
    allowed = {"fs_cli.sdk", "fs_cli.errors", "fs_cli.output"}
    for m, deps in GRAPH.items():
        if m.startswith("fs_cli.commands"):
            past = {d for d in deps if d not in allowed and not d.startswith("fs_cli.commands")}
            assert past <= COMMANDS_PAST_THE_SDK.get(m, set()), f"{m} imports {sorted(past)}: add an SDK method"


def test_the_online_store_interface_does_not_know_its_backends():
    assert not GRAPH["fs_cli.online.store"] & {"fs_cli.online.sqlite", "fs_cli.online.redis_store"}
