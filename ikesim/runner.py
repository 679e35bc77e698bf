"""``ikesim.run``: load, build and run a scenario; write results atomically, never over files ikesim did not write.

Every directory ikesim writes carries a marker, ``.ikesim-results.json`` (the ikesim version and the kind of
result: ``run``, ``sweep`` or ``notebook``). A directory may be replaced (or, for a sweep, resumed) only when it
is missing, empty, or holds that marker with the same kind; anything else is refused with ``OutputRefused``
(a ConfigError: exit status 2) before a file is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal

from ikesim._version import __version__
from ikesim.errors import ConfigError
from ikesim.metrics.results import Results
from ikesim.scenario.build import build_simulation
from ikesim.scenario.durations import parse_duration
from ikesim.scenario.load import load_scenario
from ikesim.scenario.model import ScenarioModel

__all__ = ["MARKER", "OutputRefused", "ProgressHook", "check_out_dir", "child_dir", "claim_dir", "run",
           "write_dir_atomically", "write_results_atomically"]

MARKER = ".ikesim-results.json"
"""The file that shows ikesim wrote a directory: ``{"ikesim_version": ..., "kind": ...}``."""

Kind = Literal["run", "sweep", "notebook"]

ProgressHook = Callable[[float, float, int], None]
"""Called during a run with (simulated now, simulated end, events recorded so far)."""


class OutputRefused(ConfigError):
    """ikesim will not write into a directory: it holds files ikesim did not write, or it is a protected place."""


def run(
    scenario: str | Path | ScenarioModel, *, seed: int | None = None, until: float | str | None = None, run: int = 0,
    on_progress: ProgressHook | None = None,
) -> Results:
    """Run a scenario (file, YAML text or model) and return its Results; ``seed`` overrides the file's.

    ``until`` (seconds or a duration such as ``"6h"``) overrides the scenario's duration. ``on_progress``
    is called as simulated time passes; the results are the same with or without it.
    """
    model = scenario if isinstance(scenario, ScenarioModel) else load_scenario(scenario)
    try:
        end = model.duration if until is None else parse_duration(until)
    except ValueError as exc:
        raise ConfigError(f"until: {exc}") from None
    if end <= 0:
        raise ConfigError(f"until: the run must last longer than 0 s (got {end:g})")
    sim = build_simulation(model, seed=seed, run=run)
    return sim.run(end) if on_progress is None else sim.run(end, on_progress=on_progress)


def child_dir(base: str | Path, name: str) -> Path:
    """``base/name``, refused unless it is a direct child of *base* (a name is no path: no ``/``, ``.`` or ``..``)."""
    base = Path(base)
    target = base / name
    if name in ("", ".", "..") or target.absolute().resolve().parent != base.absolute().resolve():
        raise OutputRefused(f"name {name!r} is not a safe directory name inside {base}/ "
                            "(no path separators, not '.' or '..')")
    return target


def _marker_kind(d: Path) -> str | None:
    """The kind recorded in *d*'s marker, or None when it has none (legacy: a notebook's own manifest.json counts)."""
    for name, key in ((MARKER, "kind"), ("manifest.json", "notebook")):
        try:
            data = json.loads((d / name).read_text())
        except (OSError, UnicodeDecodeError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("ikesim_version"), str) and isinstance(data.get(key), str):
            return str(data["kind"]) if key == "kind" else "notebook"
    return None


def check_out_dir(out: str | Path, kind: Kind = "run", *, protect: Iterable[str | Path] = ()) -> Path:
    """Raise OutputRefused unless ikesim may (re)write *out*; return it as an absolute path.

    Allowed: a missing or empty directory, or an earlier ikesim result of the same *kind* (it has the marker).
    Refused even with a marker: the working directory or one of its parents, and a parent of a *protect* file
    (the scenario). Refused always: a file, a symbolic link, any other non-empty directory.
    """
    path = Path(out).absolute()
    real = path.resolve()
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        raise OutputRefused(f"refusing to write results into {out}: it is the working directory or one of its parents")
    for p in protect:
        if real in Path(p).absolute().resolve().parents:
            raise OutputRefused(f"refusing to write results into {out}: it contains {p}")
    above = next(d for d in path.parents if d.exists())
    if not above.is_dir():
        raise OutputRefused(f"refusing to write results into {out}: {above} is a file, not a directory")
    if path.is_symlink():
        raise OutputRefused(f"refusing to write results into {out}: it is a symbolic link (give the directory it points to)")
    if not path.exists():
        return path
    if not path.is_dir():
        raise OutputRefused(f"refusing to write results into {out}: it is a file, not a results directory")
    try:
        empty = next(path.iterdir(), None) is None
    except OSError as exc:
        raise OutputRefused(f"refusing to write results into {out}: {exc.strerror or exc}") from None
    if empty:
        return path
    found = _marker_kind(path)
    if found is None:
        raise OutputRefused(f"refusing to write results into {out}: it is not empty and ikesim did not write it "
                            f"(no {MARKER}); choose another directory")
    if found != kind:
        raise OutputRefused(f"refusing to write {kind} results into {out}: it holds ikesim {found} results")
    return path


def _write_marker(d: Path, kind: Kind) -> None:
    (d / MARKER).write_text(json.dumps({"ikesim_version": __version__, "kind": kind}, sort_keys=True) + "\n")


def claim_dir(out: str | Path, kind: Kind, *, protect: Iterable[str | Path] = ()) -> Path:
    """Check *out* (``check_out_dir``), create it if missing, and mark it: for a directory filled in place (a sweep)."""
    path = check_out_dir(out, kind, protect=protect)
    path.mkdir(parents=True, exist_ok=True)
    if _marker_kind(path) is None:
        _write_marker(path, kind)
    return path


def write_results_atomically(results: Results, out: Path, *, protect: Iterable[str | Path] = (), keys: bool = True) -> None:
    """Write *results* into a temporary sibling directory, then rename it into place: no half-written results.

    ``keys=False``: no key tables (``Results.write``).
    """
    write_dir_atomically(out, lambda d: results.write(d, keys=keys), kind="run", protect=protect)


def write_dir_atomically(out: Path, write: Callable[[Path], object], *, kind: Kind = "run",
                         protect: Iterable[str | Path] = ()) -> None:
    """Call ``write(tmp)`` on a temporary sibling of *out*, mark it, then rename it into place, replacing an old *out*.

    *out* is checked first (``check_out_dir``): OutputRefused, and nothing is touched, unless it is missing, empty
    or an earlier ikesim result of *kind*. If ``write`` raises (or Ctrl-C), nothing is left behind and an old *out*
    is kept as it was.
    """
    protect = tuple(protect)
    out = check_out_dir(out, kind, protect=protect)
    created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except BaseException:
        _remove_empty(created)
        raise
    try:
        write(tmp)
        _write_marker(tmp, kind)
        check_out_dir(out, kind, protect=protect)  # again: it may have changed while write() ran
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            try:
                os.replace(tmp, out)
            except BaseException:
                os.replace(old / out.name, out)
                shutil.rmtree(old, ignore_errors=True)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def _remove_empty(dirs: list[Path]) -> None:
    """Remove the parent directories a failed write created (innermost first), if still empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return
