"""``ikesim.run``: load, build and run a scenario; write results atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from ikesim.errors import ConfigError
from ikesim.metrics.results import Results
from ikesim.scenario.build import build_simulation
from ikesim.scenario.durations import parse_duration
from ikesim.scenario.load import load_scenario
from ikesim.scenario.model import ScenarioModel

__all__ = ["run", "write_dir_atomically", "write_results_atomically"]


def run(
    scenario: str | Path | ScenarioModel, *, seed: int | None = None, until: float | str | None = None, run: int = 0
) -> Results:
    """Run a scenario (file, YAML text or model) and return its Results; ``seed`` overrides the file's.

    ``until`` (seconds or a duration such as ``"6h"``) overrides the scenario's duration.
    """
    model = scenario if isinstance(scenario, ScenarioModel) else load_scenario(scenario)
    try:
        end = model.duration if until is None else parse_duration(until)
    except ValueError as exc:
        raise ConfigError(f"until: {exc}") from None
    if end <= 0:
        raise ConfigError(f"until: the run must last longer than 0 s (got {end:g})")
    sim = build_simulation(model, seed=seed, run=run)
    return sim.run(end)


def write_results_atomically(results: Results, out: Path) -> None:
    """Write *results* into a temporary sibling directory, then rename it into place: no half-written results."""
    write_dir_atomically(out, results.write)


def write_dir_atomically(out: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary sibling of *out*, then rename it into place, replacing an old *out*.

    If ``write`` raises, nothing is left behind and an old *out* is kept as it was.
    """
    out = Path(out).absolute()
    created = [d for d in (out.parent, *out.parent.parents) if not d.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    except BaseException:
        _remove_empty(created)
        raise
    try:
        write(tmp)
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
