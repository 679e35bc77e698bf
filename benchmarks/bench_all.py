"""Every performance target of issue 12 in one run (a script, not a test).

    python benchmarks/bench_all.py [--quick] [--json out.json]

Each measurement runs in its own process (so peak RSS is that run's alone), and every ratio is against
a crypto floor measured in that same process (the median of 5 calibration runs):

- ``tunnels``: ``bench_tunnels.py`` 1,000 tunnels x 24 h, simulation + every table / floor (target <= 5);
- ``fleet``: fleet-10k x 24 h, build + run + writing every result file / floor (target <= 6) and peak RSS (<= 2 GB);
- ``fleet_summary``: the same with ``trace: summary``, peak RSS per tunnel (<= 20 KB);
- ``scaling``: wall(2N) / wall(N) and wall(2T) / wall(T) of bench_tunnels (<= 2.1 each);
- ``race``: one race scenario in-process (load one variant, run, evaluate its expectations), median of 25 (<= 20 ms);
- ``check``: wall of ``ikesim check scenarios/races`` as a user types it (<= 4 s).

``--quick`` shrinks the big runs (100 tunnels, fleet-10k for 2 h) to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _script(args: list[str]) -> dict[str, Any]:
    """Run a benchmark script with ``--json`` in a fresh process and return its figures."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "figures.json"
        subprocess.run([sys.executable, *args, "--json", str(out)], cwd=HERE, check=True,
                       stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def _race_ms(repeat: int = 25) -> dict[str, Any]:
    """One race scenario in-process: load one variant of child-simultaneous, run it, evaluate ``expect`` (median ms)."""
    code = f"""
import json, statistics, time
from ikesim.expect import evaluate
from ikesim.runner import run
from ikesim.scenario.load import load_scenario
path = {str(ROOT / "scenarios" / "races" / "child-simultaneous.yaml")!r}
times = []
for _ in range({repeat}):
    t = time.perf_counter()
    m = load_scenario(path, variant="client-first-lowest-ni_a")
    r = run(m)
    mismatches = evaluate(m.expect, r)
    times.append(time.perf_counter() - t)
print(json.dumps({{"median_ms": round(statistics.median(times) * 1000, 2), "runs": len(times),
                   "mismatches": len(mismatches)}}))
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def _check_s(repeat: int = 3) -> dict[str, Any]:
    """Wall seconds of ``ikesim check scenarios/races`` (median of *repeat*), process start included."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ikesim.cli", "check", "--quiet", "scenarios/races"], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return {"median_s": round(statistics.median(times), 2), "runs": repeat}


def main() -> None:
    """Run every measurement and print one table of figures against the targets."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small runs, to check the script")
    ap.add_argument("--skip-fleet", action="store_true", help="leave out the two fleet-10k runs")
    ap.add_argument("--parallel-fleet", action="store_true",
                    help="run the two fleet-10k runs at once (needs 2 idle cores; each run is single-threaded)")
    ap.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = ap.parse_args()
    n, fleet_until = (100, "2h") if args.quick else (1000, "24h")
    fleet = str(ROOT / "scenarios" / "fleet-10k.yaml")
    figures: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"), "python": platform.python_version(), "machine": platform.machine(),
        "cpus": os.cpu_count(), "processor": _cpu_name(),
    }
    started = time.perf_counter()
    figures["tunnels"] = _script(["bench_tunnels.py", "--tunnels", str(n), "--hours", "24"])
    half = max(50, n // 4)
    w_n = _script(["bench_tunnels.py", "--tunnels", str(half), "--hours", "6"])["wall_s"]
    w_2n = _script(["bench_tunnels.py", "--tunnels", str(2 * half), "--hours", "6"])["wall_s"]
    w_2t = _script(["bench_tunnels.py", "--tunnels", str(half), "--hours", "12"])["wall_s"]
    figures["scaling"] = {"tunnels": half, "hours": 6, "wall_n_s": w_n, "wall_2n_s": w_2n, "wall_2t_s": w_2t,
                          "ratio_2n": round(w_2n / w_n, 3), "ratio_2t": round(w_2t / w_n, 3)}
    figures["race"] = _race_ms()
    figures["check"] = _check_s()
    if not args.skip_fleet:  # the two fleet runs side by side, one process (one core) each
        with ThreadPoolExecutor(2 if args.parallel_fleet else 1) as pool:
            full = pool.submit(_script, ["bench_fleet.py", fleet, "--until", fleet_until, "--trace", "full"])
            summary = pool.submit(_script, ["bench_fleet.py", fleet, "--until", fleet_until, "--trace", "summary"])
            figures["fleet"], figures["fleet_summary"] = full.result(), summary.result()
        figures["fleet_parallel"] = args.parallel_fleet
    figures["bench_wall_s"] = round(time.perf_counter() - started, 1)
    _report(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _report(f: dict[str, Any]) -> None:
    """Print the figures next to their targets."""
    t = f["tunnels"]
    rows = [
        ("machine", f"{f['processor']}, {f['cpus']} CPUs, Python {f['python']}, {f['date']}", ""),
        (f"tunnels {t['tunnels']} x {t['hours']:g} h: (sim + tables) / floor",
         f"{t['total_over_floor']} (sim {t['wall_s']} s + tables {t['results_tables_s']} s, floor {t['crypto_floor_s']} s)",
         "<= 5"),
        ("scaling wall(2N)/wall(N), wall(2T)/wall(T)", f"{f['scaling']['ratio_2n']}, {f['scaling']['ratio_2t']}", "<= 2.1"),
        ("race scenario in-process (median)", f"{f['race']['median_ms']} ms", "<= 20 ms"),
        ("ikesim check scenarios/races (median wall)", f"{f['check']['median_s']} s", "<= 4 s"),
    ]
    if "fleet" in f:
        fl, fs = f["fleet"], f["fleet_summary"]
        rows += [
            (f"fleet-10k x {fl['simulated_h']:g} h (trace full): total / floor",
             f"{fl['total_over_floor']} (total {fl['total_s']} s, floor {fl['crypto_floor_s']} s)", "<= 6"),
            ("fleet-10k (trace full): peak RSS", f"{fl['peak_rss_mb']} MB", "<= 2048 MB"),
            ("fleet-10k (trace summary): peak RSS per tunnel",
             f"{fs['rss_per_tunnel_kb']} KB ({fs['peak_rss_mb']} MB, total / floor {fs['total_over_floor']})", "<= 20 KB"),
        ]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"{name:<{width}}  {value}{'   target ' + target if target else ''}")


if __name__ == "__main__":
    main()
