"""The sans-IO core never imports I/O, clocks or ambient randomness (STYLE.md rule 1)."""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import subprocess
import sys

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
