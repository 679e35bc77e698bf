"""Benchmark: what fleet-mode user traffic costs a ``fleet:`` scenario (a script, not a test).

    python benchmarks/bench_fleet_traffic.py scenarios/fleet-10k.yaml --clients 1000 --hours 6 --repeat 2
    python benchmarks/bench_fleet_traffic.py scenarios/fleet-10k.yaml --cases traffic --json out.json

Runs the scenario with ``trace: summary``, *clients* clients for *hours* simulated hours, in two cases:
``none`` (the scenario without any traffic) and ``traffic`` (``fleet: {traffic: {rate: 1, direction: both}}``,
``data_plane: {mode: fleet}``; ``--rate`` changes the rate). Each run is a fresh subprocess (so peak RSS is
that run's alone), the runs one after the other. Per run it prints the wall seconds of building, running and
making the results (``Results.summary``, which builds the traffic, outages and window tables), the total, and
the peak RSS; then the traffic overhead (traffic over none, mean walls) and the traffic summary of the last
traffic run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml


def scenario_text(path: str, *, clients: int | None, hours: float | None, traffic: bool, rate: float) -> str:
    """The scenario YAML of one case: *clients*, *hours*, ``trace: summary``, with or without fleet traffic."""
    d = yaml.safe_load(Path(path).read_text())
    fleet = d.get("fleet")
    if fleet is None:
        raise SystemExit(f"{path}: no fleet: section")
    if clients is not None:
        fleet["clients"] = clients
    if hours is not None:
        d["duration"] = f"{hours}h"
    d["trace"] = "summary"
    d.pop("traffic", None)
    fleet.pop("traffic", None)
    if traffic:
        fleet["traffic"] = {"rate": rate, "direction": "both"}
        d["data_plane"] = {**(d.get("data_plane") or {}), "mode": "fleet"}
    return yaml.safe_dump(d, sort_keys=False)


def child(text: str) -> dict[str, Any]:
    """One run in this process: walls of build, run and results, peak RSS, and the traffic summary."""
    from ikesim.scenario.build import build_simulation
    from ikesim.scenario.load import load_scenario_text

    t0 = time.perf_counter()
    model = load_scenario_text(text, "<bench>")
    sim = build_simulation(model)
    t1 = time.perf_counter()
    sim.advance(model.duration)
    t2 = time.perf_counter()
    summary = sim.results(duration=model.duration).summary
    t3 = time.perf_counter()
    return {
        "build_s": round(t1 - t0, 2), "run_s": round(t2 - t1, 2), "results_s": round(t3 - t2, 2),
        "wall_s": round(t3 - t0, 2), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "exchanges": sum(summary["exchanges_by_type"].values()), "traffic": summary.get("traffic"),
    }


def run_case(text: str) -> dict[str, Any]:
    """Run one case in a fresh subprocess; its figures."""
    proc = subprocess.run([sys.executable, __file__, "--child"], input=text, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise SystemExit(f"the run failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    """Run the cases and print their figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario", nargs="?")
    ap.add_argument("--clients", type=int, default=None, help="fleet size (default: the scenario's)")
    ap.add_argument("--hours", type=float, default=None, help="simulated hours (default: the scenario's duration)")
    ap.add_argument("--cases", nargs="+", choices=("none", "traffic"), default=["none", "traffic"])
    ap.add_argument("--rate", type=float, default=1.0, help="packets/s each way per client (case traffic)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each case (alternating)")
    ap.add_argument("--json", default=None, help="also write every run's figures to this JSON file")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(sys.stdin.read())))
        return
    if args.scenario is None:
        ap.error("a scenario file is needed")
    runs: list[dict[str, Any]] = []
    for i in range(args.repeat):
        for case in args.cases:
            text = scenario_text(args.scenario, clients=args.clients, hours=args.hours, traffic=case == "traffic",
                                 rate=args.rate)
            figures = {"case": case, "run": i + 1, **run_case(text)}
            runs.append(figures)
            print(f"{case:8} run {i + 1}: build {figures['build_s']:7.2f} s  run {figures['run_s']:8.2f} s  "
                  f"results {figures['results_s']:6.2f} s  wall {figures['wall_s']:8.2f} s  "
                  f"peak RSS {figures['peak_rss_mb']:6d} MB  exchanges {figures['exchanges']}", flush=True)
    walls = {case: [r["wall_s"] for r in runs if r["case"] == case] for case in args.cases}
    if all(walls.get(c) for c in ("none", "traffic")):
        none, traffic = statistics.mean(walls["none"]), statistics.mean(walls["traffic"])
        print(f"traffic overhead: {100 * (traffic - none) / none:+.1f} % of the wall time "
              f"({traffic:.2f} s with traffic, {none:.2f} s without; mean of {args.repeat})")
    last = [r for r in runs if r["case"] == "traffic"]
    if last:
        print("traffic summary:", json.dumps(last[-1]["traffic"], indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
