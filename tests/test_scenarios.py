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


BENCHMARK_ONLY = {"fleet-10k"}
"""Too big for a test (about 11 min, 2 GB): run and measured with benchmarks/bench_fleet.py instead."""
FAILS_BY_DESIGN = {"fragmentation-off"}
"""Scenarios whose IKE_SA never comes up, by design (their ``expect:`` block says how)."""


@pytest.mark.parametrize("path", [p for p in SCENARIOS if p.stem not in BENCHMARK_ONLY], ids=lambda p: p.stem)
def test_scenario_matches_golden_summary(path: Path, request: pytest.FixtureRequest) -> None:
    """The scenario's deterministic summary is unchanged (SimPy docs' .out files, ns-3 --update-data)."""
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


def test_benchmark_only_scenarios_load_and_build() -> None:
    """fleet-10k is not run here, but it must load and build (10,000 clients, NATs, a 2-core gateway)."""
    from ikesim.scenario.build import build_simulation
    from ikesim.scenario.load import load_scenario

    m = load_scenario(ROOT / "scenarios" / "fleet-10k.yaml")
    sim = build_simulation(m)
    assert (len(sim.nodes), len(sim.boxes)) == (10_001, 10_000)
    assert sim.nodes["gw"].cpu is not None and sim.nodes["gw"].cpu.cores == 2
