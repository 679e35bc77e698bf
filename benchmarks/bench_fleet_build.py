"""Benchmark: how long a ``fleet:`` scenario takes to load and build (a script, not a test).

    python benchmarks/bench_fleet_build.py --clients 1000 10000

Times, per fleet size, in wall seconds: loading and validating the YAML,
expanding the fleet into nodes, links and connections, building the
DaemonConfigs, and the whole ``build_simulation`` (which expands and builds
the configs again, then adds nodes and links and schedules the starts).
Nothing is simulated.
"""

from __future__ import annotations

import argparse
import json
import time

from ikesim.scenario.build import build_simulation, daemon_configs
from ikesim.scenario.fleet_expand import expand_fleet
from ikesim.scenario.load import load_scenario_text

SCENARIO = """\
name: fleet-build-{clients}
seed: 1
duration: 6h
fleet:
  clients: {clients}
  client_subnet: 10.0.0.0/8
  gateway: gw
  gateway_address: 192.168.0.1
  link: {{delay: 25ms}}
  start: {{spread: 60s}}
  connection:
    auth: {{method: psk, psk: fleet-psk-0123456789}}
    ike: {{rekey_time: 4h, rand_time: 24min}}
    child: {{rekey_time: 1h, rand_time: 6min}}
"""


def measure(clients: int) -> dict[str, float | int]:
    """Wall seconds of each building step for a fleet of *clients*."""
    text = SCENARIO.format(clients=clients)
    t0 = time.perf_counter()
    model = load_scenario_text(text, f"<fleet {clients}>")
    t1 = time.perf_counter()
    expanded = expand_fleet(model)
    t2 = time.perf_counter()
    daemon_configs(expanded)
    t3 = time.perf_counter()
    sim = build_simulation(model)
    t4 = time.perf_counter()
    assert len(sim.nodes) == clients + 1
    return {"clients": clients, "load_s": round(t1 - t0, 3), "expand_s": round(t2 - t1, 3),
            "daemon_configs_s": round(t3 - t2, 3), "build_simulation_s": round(t4 - t3, 3)}


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[1000])
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    rows = [measure(n) for n in args.clients]
    keys = list(rows[0])
    print("  ".join(f"{k:>18}" for k in keys))
    for row in rows:
        print("  ".join(f"{row[k]:>18}" for k in keys))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
