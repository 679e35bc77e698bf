"""Layering: the sans-IO core never imports I/O, clocks or ambient randomness (STYLE.md rule 1); ikesim's modules
import one another without cycles, and each layer imports only the layers below it (DESIGN.md "Layers")."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import subprocess
import sys

import networkx as nx
import pytest

CORE = ("wire", "crypto", "ike", "esp")
FORBIDDEN = {"simpy", "socket", "asyncio", "time", "random", "secrets"}
FORBIDDEN_ATTRS = {("os", "urandom"), ("os", "getrandom")}
ROOT = pathlib.Path(importlib.util.find_spec("ikesim").origin).parent  # type: ignore[union-attr]


def violations(source: str, filename: str = "<string>") -> list[str]:
    """Forbidden imports and os.urandom/os.getrandom references in *source*."""
    out = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN:
                    out.append(f"{filename}:{node.lineno} import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            top = node.module.split(".")[0]
            if top in FORBIDDEN:
                out.append(f"{filename}:{node.lineno} from {node.module} import ...")
            if top == "os" and any(a.name in ("urandom", "getrandom") for a in node.names):
                out.append(f"{filename}:{node.lineno} from os import urandom/getrandom")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_ATTRS:
                out.append(f"{filename}:{node.lineno} {node.value.id}.{node.attr}")
    return out


def core_files() -> list[pathlib.Path]:
    """Every Python module of the core packages."""
    return sorted(p for pkg in CORE for p in (ROOT / pkg).rglob("*.py"))


def test_core_modules_import_nothing_forbidden() -> None:
    """No core module imports simpy, socket, asyncio, time, random or secrets."""
    files = core_files()
    assert any(f.parent.name == "ike" for f in files)
    found = [v for f in files for v in violations(f.read_text(), str(f.relative_to(ROOT)))]
    assert found == []


@pytest.mark.parametrize("snippet", [
    "import time\n",
    "import simpy.core\n",
    "from random import choice\n",
    "import os\nx = os.urandom(8)\n",
    "from os import getrandom\n",
    "def f():\n    import socket\n",
    "import secrets as s\n",
    "from asyncio import sleep\n",
])
def test_checker_catches_bad_snippets(snippet: str) -> None:
    """The checker itself flags each kind of forbidden use."""
    assert violations(snippet) != []


def test_checker_accepts_clean_snippet() -> None:
    """Relative imports and harmless modules pass."""
    assert violations("import os.path\nfrom . import time_utils\nimport hashlib\n") == []


def test_importing_ike_does_not_load_simpy_or_asyncio() -> None:
    """A fresh interpreter importing ikesim.ike (and the daemon) loads neither simpy nor asyncio."""
    code = ("import sys, ikesim.ike.daemon, ikesim.wire, ikesim.crypto, ikesim.esp;"
            "print(','.join(m for m in ('simpy', 'asyncio') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# --- the module import graph --------------------------------------------------------------------------

LAYERS = ("cli", "scenario", "sim", "metrics", "ike/esp", "crypto", "wire", "leaf")
"""DESIGN.md's stack, top to bottom: a module may import its own layer and the layers after it, never one before.
``leaf``: ``errors``, ``rng``, ``types`` and the version, which any layer may import and which import no other layer."""
LAYER_OF = {
    "": "cli",  # ikesim/__init__.py: the public API re-exports (lazily) from every layer
    "cli": "cli", "cli_write": "cli", "check": "cli", "runner": "cli", "sweep": "cli", "pytest_plugin": "cli",
    "plots": "cli",  # `ikesim plot`: figures of sweep tables (parses durations as scenarios do)
    "traffic_plots": "cli",  # figures of the traffic tables, beside `plots`
    "calibration": "cli",  # `ikesim calibrate`: times the crypto primitives on this machine (reads the clock)
    "scenario": "scenario", "expect": "scenario",  # expectations checked by `ikesim check` (DESIGN layout: scenario/expect)
    "sim": "sim", "udp": "sim",  # the real-UDP driver sits where the SimPy driver does, on top of the sans-IO core
    "fuzz": "sim",  # the fuzz harness drives daemon pairs by hand, another driver of the sans-IO core
    "metrics": "metrics",
    "ike": "ike/esp", "esp": "ike/esp",
    "crypto": "crypto",
    "wire": "wire",
    "errors": "leaf", "rng": "leaf", "types": "leaf", "_version": "leaf",
}
"""First component of a module's name under ``ikesim`` -> its layer; every module must have one."""


def module_names(root: pathlib.Path, package: str) -> dict[str, pathlib.Path]:
    """Dotted module name -> file, for every module of the package in *root* (a package is its ``__init__``)."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: pathlib.Path, modules: dict[str, pathlib.Path]) -> dict[str, int]:
    """The modules of *modules* that module *name* imports -> first line: every ``import``, at module level, under
    ``if TYPE_CHECKING:`` and in function bodies alike. ``from pkg import sub`` is an import of ``pkg.sub`` when
    that is a module; the parent packages a submodule import runs first are not counted."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def known(target: str) -> str | None:
        while target not in modules and "." in target:
            target = target.rpartition(".")[0]
        return target if target in modules else None

    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str | None] = []
        if isinstance(node, ast.Import):
            targets = [known(alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else known(base) for a in node.names]
        for target in targets:
            if target is not None and target != name:
                found.setdefault(target, node.lineno)
    return found


def import_graph(root: pathlib.Path = ROOT, package: str = "ikesim") -> nx.DiGraph:
    """Module -> the modules it imports (edge attribute ``line``: where), over the whole package."""
    modules = module_names(root, package)
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target, line in imports_of(name, path, modules).items():
            graph.add_edge(name, target, line=line)
    return graph


def import_cycles(graph: nx.DiGraph) -> list[str]:
    """One cycle per strongly connected group of modules, as ``a:12 -> b:7 -> a`` (the line of each import)."""
    out = []
    for group in sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1):
        cycle = nx.find_cycle(graph.subgraph(group), source=group[0])
        out.append(" -> ".join(f"{a}:{graph.edges[a, b]['line']}" for a, b in cycle) + f" -> {cycle[0][0]}")
    return out


def layer(module: str) -> str:
    """The layer of an ikesim module (``LAYER_OF`` by its first name component)."""
    return LAYER_OF[module.split(".")[1] if "." in module else ""]


def test_every_ikesim_module_has_a_layer() -> None:
    """A new top-level module or package must be placed in DESIGN.md's stack before it is used."""
    graph = import_graph()
    assert "ikesim.sim.view" in graph and "ikesim.metrics.results" in graph
    unplaced = sorted(m for m in graph if (m.split(".")[1] if "." in m else "") not in LAYER_OF)
    assert unplaced == []


def test_ikesim_has_no_import_cycle() -> None:
    """No module imports itself through others, not even for type hints or inside a function."""
    assert import_cycles(import_graph()) == []


def test_no_layer_imports_a_layer_above_it() -> None:
    """cli -> scenario -> sim -> metrics -> ike/esp -> crypto -> wire -> leaves: every import points down or sideways."""
    graph = import_graph()
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = [f"{a}:{line} ({layer(a)}) imports {b} ({layer(b)})" for a, b, line in graph.edges(data="line")
              if rank[layer(b)] < rank[layer(a)]]
    assert upward == []


def test_metrics_imports_no_sim_scenario_or_cli() -> None:
    """Metrics know nothing of SimPy, scenarios or the command line (DESIGN.md "Metrics are events")."""
    graph = import_graph()
    metrics = [m for m in graph if layer(m) == "metrics"]
    assert "ikesim.metrics.results" in metrics
    found = sorted(f"{a} imports {b}" for a in metrics for b in graph.successors(a) if layer(b) in ("sim", "scenario", "cli"))
    assert found == []


def _package(tmp_path: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    root = tmp_path / "pkg"
    for rel, text in {"__init__.py": "", **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize("hidden", [
    "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import A\n",
    "def f():\n    import pkg.a\n",
    "from . import a\n",
    "from .a import A\n",
    "from pkg import a\n",
])
def test_graph_sees_every_kind_of_import(tmp_path: pathlib.Path, hidden: str) -> None:
    """A cycle closed by a TYPE_CHECKING, function-body, relative or from-package import is found, with its lines."""
    root = _package(tmp_path, {"a.py": "import os\nfrom pkg.b import B\n", "b.py": hidden})
    graph = import_graph(root, "pkg")
    assert set(graph.edges) == {("pkg.a", "pkg.b"), ("pkg.b", "pkg.a")}
    line = hidden.count("\n")
    assert import_cycles(graph) == [f"pkg.a:2 -> pkg.b:{line} -> pkg.a"]


def test_graph_resolves_names_and_packages(tmp_path: pathlib.Path) -> None:
    """``from pkg.sub import name`` is an edge to ``pkg.sub``; ``from pkg import sub`` to ``pkg.sub``, not ``pkg``."""
    root = _package(tmp_path, {"sub/__init__.py": "from pkg.sub.x import X\n", "sub/x.py": "X = 1\n",
                               "y.py": "import networkx\nfrom pkg.sub import x\nfrom pkg.sub.x import X\n"})
    graph = import_graph(root, "pkg")
    assert set(graph.edges) == {("pkg.sub", "pkg.sub.x"), ("pkg.y", "pkg.sub.x")}
    assert import_cycles(graph) == []
