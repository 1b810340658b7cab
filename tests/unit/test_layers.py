"""convae's packages form layers: each imports only from the layers below it, and no module
imports itself back through others. Read from the source (every import statement, those
inside functions too), so nothing is imported to check it."""

from __future__ import annotations

import ast
from pathlib import Path

from helpers import ROOT

PACKAGE = ROOT / "convae"
# Bottom to top: a module may import from its own package or from one listed before it.
# The base modules (errors, compat, hydra_compat, hardware) sit under every package; the
# entry points on top, where nothing imports them.
LAYERS = [
    "__init__", "conf", "errors", "compat", "hydra_compat", "hardware", "plugins", "models",
    "data", "metrics", "config", "runs", "tracking", "callbacks", "training", "sweeps",
    "report", "bench", "train", "evaluate", "board",
]  # fmt: skip
ENTRY_POINTS = {"train", "evaluate", "board"}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["convae", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = modules()


def imported(path: Path) -> set[str]:
    """The convae modules ``path`` imports (``from convae.x import y`` counts convae.x.y
    when that is a module, else convae.x)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    found = set()
    for name in names:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if name.startswith("convae"):
            found.add(name)
    return found


GRAPH = {name: imported(path) - {name} for name, path in MODULES.items()}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_module_has_a_layer():
    assert {layer(m) for m in MODULES} <= set(LAYERS)


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [
        f"{m} imports {t}"
        for m, targets in sorted(GRAPH.items())
        for t in sorted(targets)
        if LAYERS.index(layer(t)) > LAYERS.index(layer(m))
    ]
    assert not upward


def test_nothing_imports_an_entry_point():
    assert not [(m, t) for m, ts in GRAPH.items() for t in ts if layer(t) in ENTRY_POINTS
                and layer(m) != layer(t)]  # fmt: skip


def test_the_module_graph_has_no_cycle():
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError(" -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(GRAPH[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


def test_no_module_is_over_400_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long
