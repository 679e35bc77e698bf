"""``ikesim check``: run scenario files (every variant), compare with their expectations, report.

Each scenario runs on its own seed (or ``seed``, when given) and is checked with
``ikesim.expect.evaluate``: its ``expect:`` block, and no invariant violation in any case. A file that
does not load is an ERROR outcome naming file:line, and the other scenarios still run; so is a run
that raises. ``print_report`` prints a rich table; ``write_junit`` writes JUnit XML (one testsuite
``ikesim``, one testcase per scenario variant) atomically.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ikesim.errors import ConfigError
from ikesim.expect import Mismatch, evaluate
from ikesim.scenario.load import load_variants, read_scenario_text
from ikesim.scenario.model import ScenarioModel
from ikesim.scenario.variants import declared_name

__all__ = ["CheckOutcome", "find_scenarios", "check_file", "check_paths", "print_report", "junit_xml", "check_junit_target",
           "is_ikesim_junit", "write_junit"]

SUFFIXES = (".yaml", ".yml")

Status = Literal["pass", "fail", "error"]


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """The verdict on one scenario variant (or on a whole file that could not be expanded into variants)."""

    path: Path
    """The scenario file, as found (relative when the given path was)."""
    name: str
    """``<name>[<variant>]`` as the scenario is named when it runs."""
    variant: str | None
    status: Status
    mismatches: tuple[Mismatch, ...] = ()
    """The expectations not met (status ``fail``)."""
    error: str = ""
    """Why it could not run (status ``error``): the ConfigError, or ``Type: message`` of a crash."""
    error_type: str = ""
    traceback: str = ""
    wall: float = 0.0
    """Wall-clock seconds to load, run and evaluate."""
    seed: int | None = None

    @property
    def passed(self) -> bool:
        """True when every expectation was met."""
        return self.status == "pass"

    def lines(self) -> list[str]:
        """What differed (one line per mismatch) or what went wrong; empty when it passed."""
        if self.status == "fail":
            return [str(m) for m in self.mismatches]
        if self.status == "error":
            return self.error.splitlines()
        return []


def find_scenarios(paths: Iterable[str | Path]) -> list[Path]:
    """Scenario files named by *paths*: files as given, folders searched for *.yaml/*.yml recursively, sorted.

    ConfigError naming the first path that does not exist. Each file appears once, in the order given.
    """
    found: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if f.suffix in SUFFIXES and f.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise ConfigError(f"{p}: no such file or directory")
    return list(dict.fromkeys(found))


def _crash(exc: BaseException) -> tuple[str, str, str]:
    return f"{type(exc).__name__}: {exc}", type(exc).__name__, "".join(traceback.format_exception(exc))


def _run_one(path: Path, model: ScenarioModel, variant: str | None, seed: int | None, out: Path | None,
             keys: bool = True) -> CheckOutcome:
    """Run and check one variant; with *out*, write its results to ``out/<name>``, refused (OutputRefused) before the run
    unless that is a direct child of *out* and missing, empty or an earlier ikesim result."""
    from ikesim.runner import OutputRefused, check_out_dir, child_dir, run, write_results_atomically

    target = None
    if out is not None:
        target = child_dir(out, model.name)
        check_out_dir(target, "run", protect=(path,))
    start = time.perf_counter()

    def outcome(status: Status, **kw: object) -> CheckOutcome:
        return CheckOutcome(path=path, name=model.name, variant=variant, status=status, wall=time.perf_counter() - start,
                            seed=model.seed if seed is None else seed, **kw)  # type: ignore[arg-type]

    try:
        results = run(model, seed=seed)
        mismatches = tuple(evaluate(model.expect, results))
        if target is not None:
            write_results_atomically(results, target, protect=(path,), keys=keys)
    except OutputRefused:
        raise  # a refused --out stops the whole check (exit 2): never a per-scenario error
    except ConfigError as exc:
        return outcome("error", error=str(exc), error_type="ConfigError")
    except Exception as exc:  # a crash of one scenario must not stop the others
        return outcome("error", error=f"{model.name} crashed: {type(exc).__name__}: {exc}", error_type=type(exc).__name__,
                       traceback="".join(traceback.format_exception(exc)))
    return outcome("fail" if mismatches else "pass", mismatches=mismatches)


def check_file(path: str | Path, *, seed: int | None = None, out: Path | None = None, keys: bool = True) -> list[CheckOutcome]:
    """Run and check every variant of one scenario file; one outcome each (one ERROR if the file cannot be expanded).

    ``keys=False``: results written to *out* have no key tables.
    """
    p = Path(path)

    def error(name: str, variant: str | None, exc: ConfigError) -> CheckOutcome:
        return CheckOutcome(path=p, name=name, variant=variant, status="error", error=str(exc), error_type="ConfigError",
                            seed=seed)

    try:
        text = read_scenario_text(p)
    except ConfigError as exc:
        return [error(p.stem, None, exc)]
    base_name = declared_name(text, p.stem)
    try:
        loaded = load_variants(text, str(p))
    except ConfigError as exc:
        return [error(base_name, None, exc)]
    outcomes = []
    for variant, model in loaded:
        if isinstance(model, ConfigError):
            outcomes.append(error(base_name if variant is None else f"{base_name}[{variant}]", variant, model))
        else:
            outcomes.append(_run_one(p, model, variant, seed, out, keys))
    return outcomes


def check_paths(
    paths: Sequence[str | Path], *, seed: int | None = None, out: Path | None = None,
    on_outcome: Callable[[CheckOutcome], None] | None = None, keys: bool = True, workers: int | None = 1,
) -> list[CheckOutcome]:
    """Run and check every scenario (every variant) under *paths*; ``seed`` overrides each scenario's own.

    ConfigError if a path does not exist; an empty list if no scenario file was found. ``out``: write each
    run's results into ``out/<scenario name>`` (OutputRefused, stopping the check, where that holds files
    ikesim did not write: ``ikesim.runner.check_out_dir``). ``on_outcome`` is called after each scenario (progress).
    ``workers``: files run in that many forked processes (None: one per CPU); outcomes come back in file order,
    and each run is the same as in one process (its own seed, nothing shared).
    """
    files = find_scenarios(paths)
    results: list[CheckOutcome] = []
    for outcomes in _each_file(files, seed, out, keys, workers):
        for outcome in outcomes:
            results.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
    return results


def _each_file(files: list[Path], seed: int | None, out: Path | None, keys: bool, workers: int | None
               ) -> Iterable[list[CheckOutcome]]:
    """``check_file`` of each file, in order: in this process, or in a pool of forked ones (where fork exists)."""
    import multiprocessing

    n = min(len(files), workers if workers is not None else (os.cpu_count() or 1))
    if n <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        yield from (check_file(f, seed=seed, out=out, keys=keys) for f in files)
        return
    from concurrent.futures import ProcessPoolExecutor
    from functools import partial

    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("fork")) as pool:
        yield from pool.map(partial(check_file, seed=seed, out=out, keys=keys), files)


# --- reports -----------------------------------------------------------------------


def tally(outcomes: Sequence[CheckOutcome]) -> str:
    """``3 passed, 1 failed, 1 error``."""
    counts = {s: sum(o.status == s for o in outcomes) for s in ("pass", "fail", "error")}
    return (f"{counts['pass']} passed, {counts['fail']} failed, {counts['error']} "
            f"error{'s' if counts['error'] != 1 else ''}")


def print_report(outcomes: Sequence[CheckOutcome], *, quiet: bool = False, wall: float | None = None) -> None:
    """A rich table: scenario, PASS/FAIL/ERROR, wall time, what differed; ``quiet`` shows only what did not pass."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, 200))
    shown = [o for o in outcomes if not (quiet and o.passed)]
    if not shown:
        return
    table = Table(title="ikesim check")
    table.add_column("scenario", overflow="fold")
    table.add_column("outcome")
    table.add_column("time", justify="right")
    table.add_column("what differed", overflow="fold")
    style = {"pass": "green", "fail": "bold red", "error": "bold yellow"}
    for o in shown:
        table.add_row(Text(o.name), Text(o.status.upper(), style=style[o.status]), f"{o.wall:.2f} s", Text("\n".join(o.lines())))
    console.print(table)
    took = f" in {wall:.1f} s" if wall is not None else ""
    console.print(Text(f"{tally(outcomes)}{took}", style="green" if all(o.passed for o in outcomes) else "bold red"))


_XML_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _xml(s: str) -> str:
    return _XML_BAD.sub("?", s)


def junit_xml(outcomes: Sequence[CheckOutcome]) -> ET.ElementTree:
    """JUnit XML: ``<testsuites><testsuite name="ikesim">``, one testcase per outcome (classname = the file)."""
    root = ET.Element("testsuites")
    suite = ET.SubElement(root, "testsuite", {
        "name": "ikesim", "tests": str(len(outcomes)),
        "failures": str(sum(o.status == "fail" for o in outcomes)),
        "errors": str(sum(o.status == "error" for o in outcomes)), "skipped": "0",
        "time": f"{sum(o.wall for o in outcomes):.3f}",
        "timestamp": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    })
    for o in outcomes:
        case = ET.SubElement(suite, "testcase", {"classname": str(o.path), "name": _xml(o.name), "time": f"{o.wall:.3f}",
                                                 "file": str(o.path)})
        props = [("seed", o.seed), ("variant", o.variant)]
        if any(v is not None for _, v in props):
            pe = ET.SubElement(case, "properties")
            for k, v in props:
                if v is not None:
                    ET.SubElement(pe, "property", {"name": k, "value": _xml(str(v))})
        lines = o.lines()
        if o.status == "fail":
            n = len(lines)
            el = ET.SubElement(case, "failure", {"message": _xml(lines[0] if n == 1 else f"{n} expectations not met: {lines[0]}"),
                                                 "type": "ExpectationMismatch"})
            el.text = _xml("\n".join(lines))
        elif o.status == "error":
            el = ET.SubElement(case, "error", {"message": _xml(lines[0] if lines else o.error_type), "type": o.error_type})
            el.text = _xml("\n".join(lines) + (f"\n\n{o.traceback}" if o.traceback else ""))
    ET.indent(root)
    return ET.ElementTree(root)


def is_ikesim_junit(path: str | Path) -> bool:
    """True when *path* is a regular file holding a report ``write_junit`` wrote: ``<testsuites>`` whose only child is
    ``<testsuite name="ikesim">``. Parsed without a DTD: a file declaring one (entities) is never ikesim's."""
    p = Path(path)
    if p.is_symlink() or not p.is_file():
        return False
    try:
        data = p.read_bytes()
    except OSError:
        return False
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return False
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return False
    suites = list(root)
    return root.tag == "testsuites" and len(suites) == 1 and suites[0].tag == "testsuite" and suites[0].get("name") == "ikesim"


def check_junit_target(path: str | Path) -> None:
    """Raise ConfigError unless the JUnit report may be written to *path*: missing, or a report ikesim wrote."""
    p = Path(path)
    if p.is_dir() and not p.is_symlink():
        raise ConfigError(f"--junit {p}: it is a directory, not a file")
    if (p.exists() or p.is_symlink()) and not is_ikesim_junit(p):
        raise ConfigError(f"refusing to overwrite {p}: it is not a JUnit report ikesim wrote (use another --junit FILE)")


def write_junit(outcomes: Sequence[CheckOutcome], path: str | Path) -> None:
    """Write the JUnit XML report to *path* atomically (a temporary sibling, then a rename).

    ConfigError, and nothing written, when *path* holds a file ikesim did not write (``check_junit_target``).
    """
    target = Path(path)
    check_junit_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as f:
            junit_xml(outcomes).write(f, encoding="utf-8", xml_declaration=True)
        check_junit_target(target)  # again: it may have appeared while the report was written
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
