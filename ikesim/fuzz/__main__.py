"""``python -m ikesim.fuzz --count N --seed S [--workers 2] [--json out.json]``: run the daemon fuzz harness.

Exit status: 0 if no exception escaped, no datagram hung or went unaccounted and every rekey check
passed; 1 otherwise; 2 for bad arguments or an output file that already exists and ikesim did not write.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence

from ikesim.fuzz.harness import FuzzStats
from ikesim.fuzz.workers import fuzz

_MARK = "ikesim-fuzz-report"


def report(stats: FuzzStats) -> str:
    """The totals as text."""
    d = stats.as_dict()
    lines = [
        f"datagrams           {d['datagrams']}",
        f"sealed (real keys)  {d['sealed']} ({100 * d['sealed_share']:.1f} %)",
        f"escaped exceptions  {d['escaped_exceptions']}",
        f"hangs (> 2 s)       {d['hangs']}   slowest datagram {d['slowest_datagram_s'] * 1000:.1f} ms",
        f"unaccounted         {d['unaccounted']}",
        f"rekey checks        {d['rekey_checks_passed']} passed, {d['rekey_checks_failed']} failed",
        f"rate                {d['datagrams_per_s']:.0f} datagrams/s ({d['seconds']:.1f} s wall)",
        "outcomes by class:",
        *(f"  {k:<12} {v}" for k, v in sorted(d["outcome_classes"].items())),
        "outcomes:",
        *(f"  {v:>9}  {k}" for k, v in sorted(d["outcomes"].items(), key=lambda kv: -kv[1])),
        "targets:",
        *(f"  {v:>9}  {k}" for k, v in sorted(d["targets"].items())),
        "IKE_SAs re-established after authenticated hostile messages: "
        + ", ".join(f"{k} {v}" for k, v in sorted(d["reestablished"].items())),
        "diverged at batch end: " + (", ".join(f"{k} {v}" for k, v in sorted(d["diverged"].items())) or "none"),
    ]
    if d["escapes_by_type"]:
        lines.append("escapes by type: " + ", ".join(f"{k} {v}" for k, v in d["escapes_by_type"].items()))
        for e in stats.escapes[:10]:
            lines.append(f"  seed {e.seed} worker {e.worker} index {e.index} {e.target} [{e.mutations}]: {e.exception}")
    for f in stats.rekey_failures[:10]:
        lines.append(f"  rekey check failed: {f}")
    for w, i, t, m in stats.unaccounted[:10]:
        lines.append(f"  unaccounted: worker {w} index {i} {t} [{m}]")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, run, print totals; see the module docstring for the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ikesim.fuzz", description="Fuzz two sans-IO IKE daemons.")
    parser.add_argument("--count", type=int, default=10_000, help="datagrams to feed (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="seed; the same seed feeds the same datagrams")
    parser.add_argument("--workers", type=int, default=1, help="processes, each with its own stream")
    parser.add_argument("--batch", type=int, default=1000, help="datagrams between rekey checks")
    parser.add_argument("--json", type=pathlib.Path, help="also write the totals as JSON here")
    args = parser.parse_args(argv)
    if args.count < 1 or args.workers < 1 or args.batch < 1 or not 0 <= args.seed < 2**64:
        parser.error("--count, --workers and --batch must be positive; --seed in 0 .. 2^64-1")
    if args.json is not None and args.json.exists():
        try:
            ours = json.loads(args.json.read_text()).get("written_by") == _MARK
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            print(f"error: {args.json} exists and is not a fuzz report; not overwriting it", file=sys.stderr)
            return 2
    stats = fuzz(args.count, args.seed, args.workers, args.batch)
    print(report(stats))
    if args.json is not None:
        d = stats.as_dict()
        d.update(written_by=_MARK, seed=args.seed, workers=args.workers, batch=args.batch)
        args.json.write_text(json.dumps(d, indent=1, default=str))
    bad = (stats.escapes_by_type or stats.hangs or stats.outcomes.get("unaccounted", 0)
           or stats.rekey_checks_failed)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
