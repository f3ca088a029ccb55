"""Imports flow one way: a module imports from its own layer and the layers below it, never from one above.

LAYERS is the one statement of the order, bottom first. A module belongs to the layer of its longest listed
dotted prefix; every `command` module (`add_arguments` + `run`, what `python -m toolkit` calls) is the CLI's.
The base layer is vocabulary everything shares: errors, files and strict JSON, the build folder's stage files
(and their records), evidence labels, run configurations, graph helpers, terminal output, target files, and the
bench runner (which imports nothing from the toolkit at all: it is copied to boards alone). The engine sessions
sit with load: they are fed by its feed plan. Top-level, function-level and TYPE_CHECKING imports all count: each
is a dependency.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "toolkit"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("base", ("toolkit", "toolkit.errors", "toolkit.files", "toolkit.records", "toolkit.folder", "toolkit.evidence",
              "toolkit.configs", "toolkit.graphs", "toolkit.terminal", "toolkit.targets", "toolkit.profiling.runner")),
    ("load", ("toolkit.melgraph", "toolkit.load", "toolkit.engines")),
    ("analysis", ("toolkit.analysis",)),
    ("explain", ("toolkit.explain",)),
    ("variants", ("toolkit.variants",)),
    ("accuracy", ("toolkit.accuracy",)),
    ("profiling", ("toolkit.profiling", "toolkit.packages")),
    ("compare/select", ("toolkit.compare", "toolkit.select")),
    ("report", ("toolkit.report",)),
    ("export", ("toolkit.export",)),  # writes report.md with the report's renderer
    ("pipeline", ("toolkit.pipeline",)),
    ("wakeword/frontends", ("toolkit.wakeword", "toolkit.frontends")),
    ("cli", ("toolkit.cli", "toolkit.__main__")),
)
CLI = len(LAYERS) - 1
RANK = {prefix: rank for rank, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes}
# copied to boards alone: the standard library and numpy only (it loads the engines by name, through importlib)
SELF_CONTAINED = ("toolkit.profiling.runner",)
BOARD_PACKAGES = {*sys.stdlib_module_names, "numpy"}


def module_name(path: Path) -> str:
    """toolkit/analysis/ops/base.py -> toolkit.analysis.ops.base; a package's __init__ is the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int | None:
    """The rank of a module's layer; None for a module LAYERS does not place (the bare root matches only itself)."""
    if module.rsplit(".", 1)[-1] == "command":
        return CLI
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        if ".".join(parts[:end]) in RANK:
            return RANK[".".join(parts[:end])]
    return RANK.get(module)


def imported(module: str, tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every import anywhere in the tree; `from package import name` names the toolkit
    submodule when `name` is one."""
    found = []
    package = module if module in MODULES and MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found += [(node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
                      for alias in node.names]
    return list(dict.fromkeys(found))


def violations(module: str, source: str) -> list[str]:
    """One line per import of `module` that reaches above its layer, naming both layers; also one for a module
    (or an import of one) that LAYERS does not place, and any import of a self-contained module beyond the
    standard library and numpy."""
    own = layer_of(module)
    if own is None:
        return [f"{module}: not placed in any layer; add it to LAYERS in tests/test_layers.py"]
    found = [(line, problem(module, own, target)) for line, target in imported(module, ast.parse(source))]
    return [f"{module}:{line} imports {text}" for line, text in found if text]


def problem(module: str, own: int, target: str) -> str | None:
    """What is wrong with `module` (in layer `own`) importing `target`, or None."""
    if module in SELF_CONTAINED:
        return None if target.split(".")[0] in BOARD_PACKAGES else \
            f"{target}: it runs on boards with the standard library and numpy only"
    if target.split(".")[0] != "toolkit":
        return None
    theirs = layer_of(target)
    if theirs is None:
        return f"{target}, which is in no layer"
    return f"{target}: layer '{LAYERS[own][0]}' imports from '{LAYERS[theirs][0]}' above it" if theirs > own else None


def test_every_module_imports_only_its_layer_and_below() -> None:
    problems = [p for module, path in MODULES.items() for p in violations(module, path.read_text(encoding="utf-8"))]
    assert not problems, "\n".join(problems)


def test_every_layer_prefix_names_a_module() -> None:
    assert sorted(p for p in RANK if p not in MODULES) == []


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("toolkit.load", "from toolkit.analysis.propagate import graph_order\n",
     "toolkit.load:1 imports toolkit.analysis.propagate: layer 'load' imports from 'analysis' above it"),
    ("toolkit.compare", "import numpy\n\ndef f():\n    from toolkit.pipeline import stages\n",
     "toolkit.compare:4 imports toolkit.pipeline.stages: layer 'compare/select' imports from 'pipeline' above it"),
    ("toolkit.variants.anatomy", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
     "    from toolkit import accuracy\n",
     "toolkit.variants.anatomy:3 imports toolkit.accuracy: layer 'variants' imports from 'accuracy' above it"),
    ("toolkit.analysis.ops.base", "from ... import export\n",
     "toolkit.analysis.ops.base:1 imports toolkit.export: layer 'analysis' imports from 'export' above it"),
    ("toolkit.profiling.runner", "import json\nimport numpy as np\n\ndef f():\n    from toolkit import errors\n",
     "toolkit.profiling.runner:5 imports toolkit.errors: it runs on boards with the standard library and numpy only"),
    ("toolkit.profiling.runner", "import onnxruntime\n",
     "toolkit.profiling.runner:1 imports onnxruntime: it runs on boards with the standard library and numpy only"),
    ("toolkit.newthing", "",
     "toolkit.newthing: not placed in any layer; add it to LAYERS in tests/test_layers.py"),
])
def test_the_checker_names_an_upward_import(module: str, source: str, expected: str) -> None:
    assert violations(module, source) == [expected]


@pytest.mark.parametrize(("module", "source"), [
    ("toolkit.analysis.propagate", "from toolkit.graphs import graph_order\nfrom toolkit.load import load_model\n"),
    ("toolkit.select", "from toolkit.profiling.runner import CONFIG_FIELDS\nfrom toolkit import compare\n"),
    ("toolkit.variants.command", "from toolkit import accuracy\nfrom toolkit.pipeline import stages\n"),
    ("toolkit.explain.walk", "import numpy\nfrom toolkit.explain.block import Block\n"),
])
def test_the_checker_allows_its_own_layer_and_below(module: str, source: str) -> None:
    assert violations(module, source) == []
