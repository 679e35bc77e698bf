"""Parameter sweeps: grids of scenario overrides × replications (run numbers), run locally or on Dask."""

from __future__ import annotations

from ikesim.sweep.grid import GridRun, expand_grid
from ikesim.sweep.run import SweepOutcome, run_sweep
from ikesim.sweep.spec import Param, SweepSpec, load_sweep_file, parse_param

__all__ = ["GridRun", "Param", "SweepOutcome", "SweepSpec", "expand_grid", "load_sweep_file", "parse_param", "run_sweep"]
