"""The layers hold, read from the code with `ast`: who may import whom, no cycles, no hidden imports.

The table below is the architecture (docs/architecture.md draws it). A new import that
crosses it fails here, so a change of layering is a change of this table, made on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "store", "engine", "app", "cli")

# Which package may import which (each may import itself).
PACKAGE_LAYERS = {
    "core": set(),
    "store": {"core"},
    "engine": {"core", "store"},
    "app": {"core", "store"},
    "cli": {"core", "store", "engine", "app"},
}

# Inside engine: which folder (or top-level module) may import which.
ENGINE_LAYERS = {
    "runtime": set(),
    "data": set(),
    "nets": set(),
    "hyper": {"nets"},
    "model": {"runtime", "nets", "hyper"},
    "scoring": {"runtime", "data", "nets", "model"},
    "train": {"runtime", "data", "nets", "model", "scoring"},
    "exec": {"runtime", "data", "model", "scoring", "train"},
    "search": {"runtime", "data", "nets", "model", "scoring", "exec"},
    "study": {"data", "scoring", "train"},
    "jobs": {"runtime", "exec", "search", "study", "train"},
    "export": {"model"},
}

# Libraries a package must never load.
FORBIDDEN_LIBS = {
    "core": {"torch", "torchvision", "duckdb", "streamlit", "plotly"},
    "store": {"torch", "torchvision", "streamlit", "plotly"},
    "engine": {"streamlit", "plotly"},
    "app": {"torch", "torchvision", "duckdb"},
}

# Function-level first-party imports allowed, each with its reason.
INNER_IMPORTS: dict[tuple[str, str], str] = {}

# Processes that never run a model, so never load torch: the shell's listings and help, `smash
# up`'s own process and the engine's supervisor (a job's own process loads what it needs).
# Nothing these import at module level may import torch, directly or through other modules.
TORCH_FREE = ("cli.boot", "cli.main", "cli.parser", "cli.listing", "cli.arch_view", "cli.completion",
              "cli.services", "cli.up", "cli.dashboard", "engine.jobs.supervisor")
TORCH = {"torch", "torchvision"}

MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    mods = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _targets(node: ast.Import | ast.ImportFrom) -> list[str]:
    """The first-party modules an import statement loads (a `from pkg import mod` names mod)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    elif node.level == 0 and node.module:
        names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                 for a in node.names]
    else:
        return []
    return sorted({n for n in names if n.split(".")[0] in PACKAGES})


def _relative(node: ast.ImportFrom, module: str, is_package: bool) -> list[str]:
    base = module.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    stem = ".".join(base + ([node.module] if node.module else []))
    return sorted({f"{stem}.{a.name}" if f"{stem}.{a.name}" in MODULES else stem for a in node.names})


def _imports(module: str) -> list[tuple[str, ast.AST, str | None]]:
    """(target module, node, enclosing function name or None) for each first-party import."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    found = []

    def walk(node: ast.AST, func: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else func
            if isinstance(child, ast.ImportFrom) and child.level:
                found.extend((t, child, func) for t in _relative(child, module, path.name == "__init__.py"))
            elif isinstance(child, ast.Import | ast.ImportFrom):
                found.extend((t, child, func) for t in _targets(child))
            walk(child, inner)

    walk(tree, None)
    return found


def _engine_layer(module: str) -> str:
    return module.split(".")[1]


def test_the_engine_table_is_itself_acyclic_and_complete():
    g = nx.DiGraph([(a, b) for a, bs in ENGINE_LAYERS.items() for b in bs])
    assert nx.is_directed_acyclic_graph(g), nx.find_cycle(g)
    present = {_engine_layer(m) for m in MODULES if m.startswith("engine.")}
    assert present <= set(ENGINE_LAYERS), f"engine parts missing from the table: {present - set(ENGINE_LAYERS)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layer_table(module):
    pkg = module.split(".")[0]
    for target, node, _ in _imports(module):
        other = target.split(".")[0]
        assert other == pkg or other in PACKAGE_LAYERS[pkg], f"{module} imports {target} (line {node.lineno})"
        if pkg == other == "engine" and "." in module and "." in target:
            mine, theirs = _engine_layer(module), _engine_layer(target)
            assert mine == theirs or theirs in ENGINE_LAYERS[mine], \
                f"engine.{mine} may not import engine.{theirs}: {module} line {node.lineno}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_forbidden_library(module):
    pkg = module.split(".")[0]
    tree = ast.parse(MODULES[module].read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_LIBS.get(pkg, set()), f"{module} imports {name}"


def test_no_import_cycle():
    g = nx.DiGraph()
    g.add_nodes_from(MODULES)
    for module in MODULES:
        for target, _, _ in _imports(module):
            if target != module and not module.startswith(target + "."):  # a package's own __init__
                g.add_edge(module, target)
    cycles = list(nx.simple_cycles(g))
    assert not cycles, f"import cycles: {cycles[:5]}"


def test_no_first_party_import_inside_a_function():
    hidden = []
    for module in MODULES:
        for target, node, func in _imports(module):
            if func is not None and (module, func) not in INNER_IMPORTS:
                hidden.append(f"{module}.{func} imports {target} (line {node.lineno})")
    assert not hidden, "\n".join(hidden)
    for (module, func), reason in INNER_IMPORTS.items():
        assert module in MODULES and reason, (module, func)


def _reached(module: str) -> set[str]:
    """Every first-party module `module` loads at import time, itself included (a package's
    __init__ runs before its modules)."""
    seen, todo = set(), [module]
    while todo:
        mod = todo.pop()
        if mod in seen or mod not in MODULES:
            continue
        seen.add(mod)
        parts = mod.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(t for t, _, func in _imports(mod) if func is None)
    return seen


def _third_party(module: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("entry", TORCH_FREE)
def test_processes_that_run_no_model_never_reach_torch(entry):
    assert entry in MODULES, entry
    heavy = sorted(m for m in _reached(entry) if _third_party(m) & TORCH)
    assert not heavy, f"{entry} reaches torch through {heavy}"


def test_every_subcommand_names_a_function_that_exists():
    """The parser names each command's function lazily (cli.parser.Command): each must resolve."""
    import importlib

    from cli.parser import Command, build_parser

    def commands(parser):
        for action in parser._actions:
            if action.choices and isinstance(action.choices, dict):
                for sub in action.choices.values():
                    yield from commands(sub)
        func = parser.get_default("func")
        if func is not None:
            yield func

    found = list(commands(build_parser()))
    assert len(found) >= 16
    for cmd in found:
        assert isinstance(cmd, Command), cmd
        assert callable(getattr(importlib.import_module(cmd.module), cmd.name)), cmd


def test_no_function_over_the_limit():
    """Every function of the packages, and of the benchmarks, which call them."""
    long = []
    benches = {f"bench.{p.stem}": p for p in sorted((ROOT / "bench").glob("*.py"))}
    for module, path in {**MODULES, **benches}.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {n} lines")
    assert not long, "\n".join(long)
