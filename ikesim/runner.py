"""``ikesim.run``: load, build and run a scenario; write results atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ikesim.metrics.results import Results
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario
from ikesim.scenario.model import ScenarioModel

__all__ = ["run", "write_results_atomically"]


def run(
    scenario: str | Path | ScenarioModel, *, seed: int | None = None, until: float | None = None, run: int = 0
) -> Results:
    """Run a scenario file or model and return its Results (``seed`` overrides the file's)."""
    model = scenario if isinstance(scenario, ScenarioModel) else load_scenario(scenario)
    sim = build_simulation(model, seed=seed, run=run)
    return sim.run(model.duration if until is None else until)


def write_results_atomically(results: Results, out: Path) -> None:
    """Write into a temporary sibling directory, then rename it into place: no half-written results."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        results.write(tmp)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
