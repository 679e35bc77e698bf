"""Benchmark: N client-gateway tunnels for T simulated hours (a script, not a test).

    python benchmarks/bench_tunnels.py --tunnels 100 --hours 24

Prints wall time of the simulation proper and, separately, of building every
Results table the trace level records (events, exchanges, SAs, packets, ...,
summary), simulated events per second, IKE exchanges per second of wall
time, and the crypto floor: the same run's crypto operation counts times
per-operation costs measured in this process (``ikesim.calibration``, the
median of ``--calibrations`` calibration runs). ``total_over_floor`` =
(simulation + tables) / floor is the engine + Python overhead to drive down.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from _steps import build_tables, count_steps, median_costs

from ikesim.calibration import crypto_floor
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.rng import Rng
from ikesim.sim.faults import FaultRule
from ikesim.sim.simulation import Simulation
from ikesim.types import Address
from ikesim.wire.iana import ExchangeType


def build(tunnels: int, seed: int, invariants: bool = True, faults: str = "none", trace: str = "full") -> Simulation:
    """N client nodes, each with its own tunnel to one gateway (strongSwan defaults, 25 ms, 1 % loss)."""
    sim = Simulation(seed=seed, name=f"bench-{tunnels}", invariants=invariants, trace=trace)  # type: ignore[arg-type]
    psk = Credentials(psk=b"bench-psk-0123456789")
    ike, child = IkePolicy(), ChildPolicy()
    gw_conns = []
    for i in range(tunnels):
        name = f"t{i}"
        gw_conns.append(Connection(name=name, local_id="gw.sim.test", remote_id=f"c{i}@sim.test",
                                   credentials=psk, ike=ike, children=(child,)))
    sim.add_node(DaemonConfig("gw", (Address("10.255.255.254"),), tuple(gw_conns)))
    start_rng = Rng(seed, "bench-starts")
    for i in range(tunnels):
        ip = f"10.{1 + i // 60000}.{(i // 250) % 240}.{i % 250 + 1}"
        conn = Connection(name=f"t{i}", local_id=f"c{i}@sim.test", remote_id="gw.sim.test",
                          remote_addr=Address("10.255.255.254"), credentials=psk, ike=ike, children=(child,))
        sim.add_node(DaemonConfig(f"c{i}", (Address(ip),), (conn,)))
        sim.add_link(f"c{i}", "gw", delay=0.025, loss=0.01)
        sim.schedule(start_rng.uniform(0, 60), f"c{i}", "initiate", connection=f"t{i}")
    if faults == "header":  # a rule every datagram is checked against, on header fields only
        sim.add_faults([FaultRule(name="watch", action="pass", exchange=ExchangeType.CREATE_CHILD_SA, occurrence=None)])
    elif faults == "decrypt":  # the worst case: every message decrypted to see what it carries
        sim.add_faults([FaultRule(name="watch", action="pass", carries=frozenset({"REKEY_SA"}), occurrence=None)])
    return sim


def main() -> None:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tunnels", type=int, default=100)
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-invariants", action="store_true", help="run without the invariant checker")
    ap.add_argument("--faults", choices=("none", "header", "decrypt"), default="none",
                    help="add a pass-through fault rule (header fields only, or decrypting every message)")
    ap.add_argument("--trace", choices=("full", "exchanges", "summary"), default="full", help="trace level")
    ap.add_argument("--calibrations", type=int, default=5, help="calibration runs; the per-operation median is used")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()

    sim = build(args.tunnels, args.seed, invariants=not args.no_invariants, faults=args.faults, trace=args.trace)
    steps = count_steps(sim.env)
    until = args.hours * 3600.0
    t0 = time.perf_counter()
    sim.advance(until)
    wall = time.perf_counter() - t0
    t1 = time.perf_counter()
    results = sim.results(duration=until)
    build_tables(results)
    tables = time.perf_counter() - t1
    s = results.summary
    exchanges = len(results.exchanges)
    floor = crypto_floor(s["crypto_ops"], median_costs(args.calibrations))
    figures = {
        "tunnels": args.tunnels, "hours": args.hours, "seed": args.seed,
        "wall_s": round(wall, 3), "results_tables_s": round(tables, 3), "sim_events": steps(), "events_per_s": round(steps() / wall),
        "exchanges": exchanges, "exchanges_per_s": round(exchanges / wall, 1),
        "rekeys": s["rekeys"], "retransmissions": s["retransmissions"], "collisions": s["collisions"],
        "invariants": not args.no_invariants, "faults": args.faults, "invariant_violations": s["invariant_violations"],
        "trace": args.trace, "crypto_floor_s": round(floor, 3),
        "wall_over_floor": round(wall / floor, 2) if floor else None,
        "total_over_floor": round((wall + tables) / floor, 2) if floor else None,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    width = max(map(len, figures))
    for k, v in figures.items():
        print(f"{k:<{width}}  {v}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
