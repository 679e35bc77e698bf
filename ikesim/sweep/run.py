"""``run_sweep``: validate every grid point, skip finished runs, execute the rest, assemble ``sweep.parquet``."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ikesim._version import __version__
from ikesim.errors import ConfigError
from ikesim.runner import child_dir, claim_dir
from ikesim.scenario.load import read_scenario_text
from ikesim.sweep.backends import RunResult, RunTask, execute
from ikesim.sweep.grid import expand_grid
from ikesim.sweep.overrides import scenario_text, validate
from ikesim.sweep.progress import sweep_progress
from ikesim.sweep.spec import SweepSpec
from ikesim.sweep.storage import SweepDir

__all__ = ["SweepOutcome", "default_out", "run_sweep"]


@dataclass
class SweepOutcome:
    """A finished sweep: its table (one row per run, grid order) and which run ids ran now or were already done."""

    table: pd.DataFrame
    out: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    wall: dict[str, float] = field(default_factory=dict)


def default_out(spec: SweepSpec, name: str) -> Path:
    """``results/<scenario name>-sweep`` (``ikesim run`` owns ``results/<scenario name>``); a direct child of results/."""
    return child_dir("results", f"{name}-sweep")


def run_sweep(spec: SweepSpec, *, out: str | Path | None = None, workers: int | None = None, scheduler: str | None = None,
              keep_runs: bool = False, progress: bool = False) -> SweepOutcome:
    """Run (or resume) the sweep *spec* into *out*; ConfigError before anything runs if any grid point is invalid."""
    text = read_scenario_text(spec.scenario)
    try:
        base = yaml.safe_load(text)
    except yaml.YAMLError:
        base = None
    base_model = validate(text, str(spec.scenario))
    if not isinstance(base, dict):
        raise ConfigError(f"{spec.scenario}: a scenario must be a YAML mapping")
    if spec.replications < 1:
        raise ConfigError(f"--replications: expected 1 or more (got {spec.replications})")
    for p in spec.params:  # one key at a time first, so an error names the key that caused it
        for v in p.values:
            validate(scenario_text(base, ((p.key, v),)), f"{spec.scenario}: --param {p.key}={v}")
    runs = expand_grid(spec)
    texts: dict[int, str] = {}
    for g in runs:
        if g.point not in texts:
            label = f"{spec.scenario}: " + " ".join(f"--param {k}={v}" for k, v in g.values)
            texts[g.point] = scenario_text(base, g.values)
            validate(texts[g.point], label)
    target = Path(out) if out is not None else spec.out if spec.out is not None else default_out(spec, base_model.name)
    claim_dir(target, "sweep", protect=(spec.scenario,))
    store = SweepDir(target)
    store.prepare(spec.identity(hashlib.sha256(text.encode()).hexdigest()),
                  {"scenario": str(spec.scenario), "scenario_name": base_model.name, "seed": base_model.seed,
                   "runs": len(runs), "ikesim_version": __version__})
    rows: dict[str, dict[str, Any]] = {}
    outcome = SweepOutcome(table=pd.DataFrame(), out=target)
    todo = []
    for g in runs:
        row = store.read_part(g.run_id)
        kept = not keep_runs or (store.runs / g.run_id / "summary.json").is_file()
        if row is not None and kept:
            rows[g.run_id] = row
            outcome.skipped.append(g.run_id)
        else:
            todo.append(RunTask(texts[g.point], g, str((store.runs / g.run_id).absolute()) if keep_runs else None))
    busy = [1]
    with sweep_progress(len(runs), len(outcome.skipped), progress) as finished:
        def done(result: RunResult) -> None:
            store.write_part(result.row)
            rows[result.row["run_id"]] = result.row
            outcome.ran.append(result.row["run_id"])
            outcome.wall[result.row["run_id"]] = result.wall
            if finished is not None:
                finished(result.wall, busy[0])

        def started(n: int) -> None:
            busy[0] = n

        try:
            execute(todo, done, workers=workers, scheduler=scheduler, on_start=started)
        finally:
            if outcome.wall:
                store.write_timings(outcome.wall)
    # re-read every part so that a resumed and an uninterrupted sweep build the table from the same data
    ordered = [store.read_part(g.run_id) for g in runs]
    missing = [g.run_id for g, r in zip(runs, ordered, strict=True) if r is None]
    if missing:
        raise ConfigError(f"{store.parts}: parts missing after the sweep: {', '.join(missing[:5])}")
    columns: dict[str, None] = {}
    for r in ordered:
        columns.update(dict.fromkeys(r or {}))
    outcome.table = pd.DataFrame.from_records(ordered, columns=list(columns))
    store.write_table(outcome.table)
    return outcome
