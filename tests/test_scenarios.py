"""Every scenario under scenarios/ runs, and its summary equals the committed golden file.

Regenerate after an intended change with ``python -m pytest tests/test_scenarios.py --update-golden``
and review the diff.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import ikesim
from ikesim.scenario.model import LinkModel

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden"
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


SLOW = {"fleet-10k"}
"""Scenarios too big for the default run (minutes): measured with benchmarks/bench_fleet.py instead."""
NEEDS_DROP_FRAGMENTS = {"fragmentation-rfc7383", "fragmentation-off"}
"""Scenarios using the link option ``drop_fragments`` (added to LinkModel by a separate change): skipped until it exists."""
FAILS_BY_DESIGN = {"fragmentation-off"}
"""Scenarios whose IKE_SA never comes up, by design (their ``expect:`` block says how)."""


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.stem in SLOW else p for p in SCENARIOS],
                         ids=lambda p: p.stem)
def test_scenario_matches_golden_summary(path: Path, request: pytest.FixtureRequest) -> None:
    """The scenario's deterministic summary is unchanged (SimPy docs' .out files, ns-3 --update-data)."""
    if path.stem in NEEDS_DROP_FRAGMENTS and "drop_fragments" not in LinkModel.model_fields:
        pytest.skip("LinkModel has no drop_fragments option yet")
    summary = ikesim.run(path).summary
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    golden = GOLDEN / f"{path.stem}.json"
    if request.config.getoption("--update-golden"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file for {path.name}: run with --update-golden"
    assert json.loads(text) == json.loads(golden.read_text())
    if path.stem in FAILS_BY_DESIGN:
        return
    assert summary["exchange_outcomes"].get("timeout", 0) == 0
    assert summary["auth_failures"] == 0 and summary["sas"]["ike_established"] >= 2
