"""Benchmark: a fleet scenario end to end (a script, not a test).

    python benchmarks/bench_fleet.py scenarios/fleet-10k.yaml [--until 24h] [--json out.json]

Prints the wall time of building the simulation, of running it and of writing its results as ``ikesim run``
does (every file the trace level writes, into a temporary directory; with ``--tables`` every Results table
is also built in memory), peak memory (max RSS of this process), simulated events per second, and the
crypto floor: the run's
crypto operation counts times per-operation costs measured in this same process
(``ikesim.calibration``), the time the cryptography alone would take. Then the figures ``ikesim run``
reports: collisions, rekey latency percentiles, retransmissions, gateway CPU peak and datagram loss.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

from _steps import build_tables, count_steps, median_costs

from ikesim.calibration import crypto_floor
from ikesim.scenario.build import build_simulation
from ikesim.scenario.durations import parse_duration
from ikesim.scenario.load import load_scenario


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scenario")
    ap.add_argument("--until", default=None, help="simulated duration (default: the scenario's)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--trace", choices=("full", "exchanges", "summary"), default=None,
                    help="trace level (default: the scenario's)")
    ap.add_argument("--calibrations", type=int, default=5, help="calibration runs; the per-operation median is used")
    ap.add_argument("--tables", action="store_true", help="also build every Results table in memory")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = load_scenario(args.scenario)
    sim = build_simulation(model, seed=args.seed, trace=args.trace)
    build_s = time.perf_counter() - t0
    until = parse_duration(args.until) if args.until else model.duration
    steps = count_steps(sim.env)
    t1 = time.perf_counter()
    sim.advance(until)
    run_s = time.perf_counter() - t1
    t2 = time.perf_counter()
    results = sim.results(duration=until)
    with tempfile.TemporaryDirectory() as out:
        results.write(out)
        written_mb = sum(p.stat().st_size for p in Path(out).iterdir()) / 2**20
    if args.tables:
        build_tables(results)
    tables_s = time.perf_counter() - t2
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = results.summary
    floor = crypto_floor(s["crypto_ops"], median_costs(args.calibrations))
    d = s["datagrams"]
    figures = {
        "scenario": model.name, "simulated_h": until / 3600, "nodes": len(sim.nodes), "boxes": len(sim.boxes),
        "build_s": round(build_s, 2), "run_s": round(run_s, 2), "results_s": round(tables_s, 2),
        "written_mb": round(written_mb, 1), "tables_in_memory": args.tables,
        "peak_rss_mb": round(peak_mb), "sim_events": steps(), "events_per_s": round(steps() / run_s),
        "exchanges": sum(s["exchanges_by_type"].values()), "crypto_floor_s": round(floor, 2),
        "run_over_floor": round(run_s / floor, 2) if floor else None,
        "total_s": round(build_s + run_s + tables_s, 2),
        "total_over_floor": round((build_s + run_s + tables_s) / floor, 2) if floor else None,
        "trace": results.level, "tunnels": len(sim.nodes) - 1,
        "rss_per_tunnel_kb": round(peak_mb * 1024 / max(1, len(sim.nodes) - 1), 1),
        "collisions": s["collisions"], "collisions_by_kind": s.get("collisions_by_kind"),
        "rekeys": s["rekeys"], "rekey_latency": s["rekey_latency"], "retransmissions": s["retransmissions"],
        "datagrams_sent": d["sent"], "datagrams_lost": d["lost"], "datagrams_by_fate": d.get("by_fate"),
        "cpu": s.get("cpu"), "nat": s.get("nat"), "invariant_violations": s["invariant_violations"],
    }
    for k, v in figures.items():
        print(f"{k:<20} {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
