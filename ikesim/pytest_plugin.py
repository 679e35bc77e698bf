"""pytest plugin (entry point ``pytest11: ikesim``): scenario files with expectations are test items.

pytest collects a ``*.yaml``/``*.yml`` file under the paths it was given (or ``testpaths``) when the
file has a top-level ``expect:`` key, or when its path relative to the rootdir matches a glob of the
ini option ``ikesim_scenarios`` (``*`` also matches ``/``). Each variant is one item,
``file.yaml::name[variant]``, marked ``ikesim``: it runs the scenario and fails with one line per
expectation not met (``ikesim.expect``), or with the file:line of a ConfigError. ``--ikesim-seed N``
runs every scenario with seed N. ``-p no:ikesim`` turns the plugin off.

Only the standard library and pytest are imported when pytest starts; ikesim's scenario layer is
imported when a scenario file is collected, and the simulator when an item runs.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ikesim.expect import Mismatch
    from ikesim.scenario.variants import VariantText

__all__ = ["ScenarioFile", "ScenarioItem", "ScenarioExpectationsNotMet"]

_SUFFIXES = (".yaml", ".yml")
_EXPECT = re.compile(rb"^expect[ \t]*:", re.MULTILINE)


def pytest_addoption(parser: pytest.Parser) -> None:
    """``ikesim_scenarios`` (ini) and ``--ikesim-seed``."""
    parser.addini("ikesim_scenarios", type="linelist", default=[],
                  help="ikesim: globs (relative to the rootdir) of scenario files to collect even without an expect: block")
    group = parser.getgroup("ikesim")
    group.addoption("--ikesim-seed", type=int, default=None, help="run every collected ikesim scenario with this seed")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``ikesim`` marker every scenario item carries."""
    config.addinivalue_line("markers", "ikesim: an ikesim scenario file run as a test (ikesim.pytest_plugin)")


def _opted_in(path: Path, config: pytest.Config) -> bool:
    patterns = config.getini("ikesim_scenarios")
    if not patterns:
        return False
    try:
        rel = path.relative_to(config.rootpath).as_posix()
    except ValueError:
        return False
    return any(fnmatch.fnmatch(rel, pattern) for pattern in patterns)


def _has_expect(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            return _EXPECT.search(f.read(4 << 20)) is not None
    except OSError:
        return False


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """A scenario file with an ``expect:`` block (or opted in by ``ikesim_scenarios``) becomes a ScenarioFile."""
    if file_path.suffix not in _SUFFIXES:
        return None
    if not (_has_expect(file_path) or _opted_in(file_path, parent.config)):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


class ScenarioExpectationsNotMet(Exception):
    """A scenario ran and some of its expectations were not met."""

    def __init__(self, name: str, mismatches: list[Mismatch]) -> None:
        super().__init__(f"{name}: {len(mismatches)} expectation(s) not met")
        self.name, self.mismatches = name, mismatches


class ScenarioFile(pytest.File):
    """A scenario YAML file: one item per variant."""

    def _source(self) -> str:
        """The file as error messages name it: relative to where pytest was started, when inside it."""
        rel = os.path.relpath(self.path, self.config.invocation_params.dir)
        return str(self.path) if rel.startswith("..") else rel

    def collect(self) -> Iterator[ScenarioItem]:
        from ikesim.errors import ConfigError
        from ikesim.scenario.variants import declared_name, expand_variants

        source = self._source()
        try:
            text = self.path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            yield ScenarioItem.from_parent(self, name=self.path.stem, source=source, error=ConfigError(f"{source}: {exc}"))
            return
        base = declared_name(text, self.path.stem)
        try:
            variants = expand_variants(text, source)
        except ConfigError as exc:
            yield ScenarioItem.from_parent(self, name=base, source=source, error=exc)
            return
        for vt in variants:
            name = base if vt.name is None else f"{base}[{vt.name}]"
            yield ScenarioItem.from_parent(self, name=name, source=source, text=text, variant=vt)


class ScenarioItem(pytest.Item):
    """One scenario variant: load, run, evaluate its expectations (and the absence of invariant violations)."""

    def __init__(self, *, source: str, text: str = "", variant: VariantText | None = None, error: Exception | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source, self.text, self.variant, self.error = source, text, variant, error
        self.add_marker("ikesim")

    def runtest(self) -> None:
        if self.error is not None:
            raise self.error
        from ikesim.expect import evaluate
        from ikesim.runner import run
        from ikesim.scenario.load import load_scenario_text

        name = self.variant.name if self.variant is not None else None
        model = load_scenario_text(self.text, self.source, variant=name)
        seed = self.config.getoption("ikesim_seed")
        self.user_properties.append(("seed", model.seed if seed is None else seed))
        results = run(model, seed=seed)
        mismatches = evaluate(model.expect, results)
        if mismatches:
            raise ScenarioExpectationsNotMet(model.name, mismatches)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str | Any:
        from ikesim.errors import ConfigError

        exc = excinfo.value
        if isinstance(exc, ScenarioExpectationsNotMet):
            lines = "\n".join(f"  {m}" for m in exc.mismatches)
            return f"scenario {exc.name} ({self.source}): {len(exc.mismatches)} expectation(s) not met:\n{lines}"
        if isinstance(exc, ConfigError):
            return f"scenario {self.name}: {exc}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"ikesim scenario {self.name}"
