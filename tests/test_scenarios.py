"""Every scenario under scenarios/ runs, and its summary equals the committed golden file.

Regenerate after an intended change with ``python -m pytest tests/test_scenarios.py --update-golden``
and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ikesim

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


SLOW = {"fleet-10k"}
"""Scenarios too big for the default run (minutes): measured with benchmarks/bench_fleet.py instead."""


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in SCENARIOS],
                         ids=lambda p: p.stem)
def test_scenario_matches_golden_summary(path: Path, request: pytest.FixtureRequest) -> None:
    """The scenario's deterministic summary is unchanged (SimPy docs' .out files, ns-3 --update-data)."""
    summary = ikesim.run(path).summary
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / f"{path.stem}.json"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {path.name}: run with --update-golden"
    assert json.loads(text) == json.loads(golden.read_text())
    assert summary["exchange_outcomes"].get("timeout", 0) == 0
    assert summary["auth_failures"] == 0 and summary["sas"]["ike_established"] >= 2
