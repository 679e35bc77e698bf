"""Execute the research notebooks top to bottom (papermill) and, if asked, write their tables and figures.

    python notebooks/run.py                                  # every notebook, small sizes, nothing kept (as CI)
    python notebooks/run.py --size full --results results    # regenerate the reference outputs in results/

Each notebook writes into ``RESULTS/<study>/`` (tuning, race, path-effects, data-plane, mobility, ha,
reconnect), through a
temporary directory that replaces the old one only when the notebook ran to the end (``ikesim.runner.write_dir_atomically``): a failed run
leaves the previous results as they were. A study directory that holds anything ikesim did not write (a file not
listed in its ``.ikesim-results.json``; before the marker: anything but the study's files and ``manifest.json``) is
never replaced: the run stops with an error (exit 2) before the notebook starts.
The tuning sweep runs from scratch in a temporary directory unless ``--sweep-dir DIR`` names one to resume (runs
of the same grid already there are not run again: only reuse a directory written by the same ikesim code).
The executed notebooks (with their outputs) go to ``--executed`` (default: a temporary directory), never over the
committed ones, which are kept without outputs, nor over any file ikesim did not write (exit 2 before running).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STUDIES = {
    "01-lifetime-stagger-tuning.ipynb": "tuning",
    "02-rekey-race-timeline.ipynb": "race",
    "03-loss-mtu-nat.ipynb": "path-effects",
    "04-data-plane.ipynb": "data-plane",
    "05-mobility.ipynb": "mobility",
    "06-ha.ipynb": "ha",
    "07-reconnect.ipynb": "reconnect",
}
"""Each notebook and the directory under ``--results`` it writes."""
STUDY_FILES = {
    "tuning": frozenset({"headline.md", "recommendation.txt", "runs.csv", "summary.csv", "tuning.png"}),
    "race": frozenset({"race-events.csv", "race-timeline.png", "variants.csv"}),
    "path-effects": frozenset({"loss.png", "mtu-nat.png", "summary.csv"}),
    "data-plane": frozenset({"loss-per-rekey.png", "nat-outages.png", "rekey-loss.csv", "nat-rebind.csv",
                             "byte-lifetime.csv"}),
    "mobility": frozenset({"handover-strategies.png", "summary.csv", "handovers.csv"}),
    "ha": frozenset({"headline.md", "heartbeat-dpd.png", "interruptions.png", "summary.csv", "survivor-cpu.csv",
                     "survivor-cpu.png", "tunnels.csv"}),
    "reconnect": frozenset({"handovers.csv", "headline.md", "methods.csv", "methods.png", "restart.csv",
                            "restart-tunnels.csv", "restart.png"}),
}
"""What each notebook writes into its study directory (with ``manifest.json``): how a study written before the
marker existed is recognised (``ikesim.runner.Legacy``); a study holding anything else is never replaced."""


class Refused(Exception):
    """An output place holds files ikesim did not write (exit status 2)."""


def check_executed(executed: Path, notebooks: list[str]) -> None:
    """Raise Refused unless the executed copies of *notebooks* may be written into *executed*: never the committed
    notebooks' folder, never over a file ikesim did not write (one the folder's marker does not list)."""
    from ikesim.runner import refuse_targets

    if executed.resolve() == HERE:
        raise Refused(f"refusing to write executed notebooks into {executed}: it holds the committed notebooks")
    refusal = refuse_targets(executed, notebooks, "executed notebooks")
    if refusal is not None:
        raise Refused(refusal)


def execute(notebook: str, *, size: str = "small", results: Path | None = None, executed: Path,
            workers: int | None = None, scheduler: str | None = None, sweep_dir: Path | None = None,
            command: str = "") -> Path | None:
    """Run one notebook with papermill (SIZE, RESULTS, and WORKERS/SCHEDULER/SWEEP_DIR for the sweep); return its results dir."""
    import papermill as pm

    from ikesim import __version__
    from ikesim.runner import Legacy, register_files, write_dir_atomically

    params: dict[str, object] = {"SIZE": size}
    if notebook == "01-lifetime-stagger-tuning.ipynb":
        params |= {"WORKERS": workers, "SCHEDULER": scheduler,
                   "SWEEP_DIR": str(sweep_dir.resolve()) if sweep_dir is not None else None}
    check_executed(executed, [notebook])
    executed.mkdir(parents=True, exist_ok=True)

    def run_into(out: Path | None) -> None:
        fd, name = tempfile.mkstemp(prefix=f".{notebook}.", suffix=".ipynb", dir=executed)
        os.close(fd)
        tmp = Path(name)
        try:
            pm.execute_notebook(HERE / notebook, tmp, parameters=params | {"RESULTS": out and str(out)},
                                cwd=str(HERE), kernel_name="python3", progress_bar=False)
            check_executed(executed, [notebook])  # again: it may have appeared while the notebook ran
            os.replace(tmp, executed / notebook)
        finally:
            tmp.unlink(missing_ok=True)
        register_files(executed, [notebook], kind="executed")
        if out is not None:
            manifest = {"notebook": f"notebooks/{notebook}", "size": size, "ikesim_version": __version__,
                        "command": command or f"python notebooks/run.py {notebook} --size {size} --results {results}"}
            (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")

    if results is None:
        run_into(None)
        return None
    final = results / STUDIES[notebook]
    legacy = Legacy("manifest.json", "notebook", STUDY_FILES[STUDIES[notebook]] | {"manifest.json"})
    write_dir_atomically(final, run_into, kind="notebook", legacy=legacy)  # refused unless missing, empty or this study
    return final


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help=f"which to run (default: all of {', '.join(STUDIES)})")
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--results", type=Path, help="write each notebook's tables and figures into RESULTS/<study>/")
    ap.add_argument("--executed", type=Path, help="keep the executed notebooks here (default: a temporary directory)")
    ap.add_argument("--workers", type=int, help="local processes for the tuning sweep (default: one per CPU)")
    ap.add_argument("--scheduler", help="run the tuning sweep on the Dask scheduler at this address")
    ap.add_argument("--sweep-dir", type=Path, help="resume the tuning sweep in this directory (default: a fresh one)")
    args = ap.parse_args(argv)
    names = [Path(n).name for n in args.notebooks] or list(STUDIES)
    unknown = [n for n in names if n not in STUDIES]
    if unknown:
        ap.error(f"unknown notebook(s) {', '.join(unknown)} (known: {', '.join(STUDIES)})")
    from ikesim.runner import OutputRefused

    if args.executed is not None:
        try:
            check_executed(args.executed, names)  # before any notebook runs
        except Refused as exc:
            print(f"notebooks/run.py: error: {exc}", file=sys.stderr)
            return 2
    executed = args.executed or Path(tempfile.mkdtemp(prefix="ikesim-notebooks-"))
    for name in names:
        start = time.perf_counter()
        try:
            out = execute(name, size=args.size, results=args.results, executed=executed, workers=args.workers,
                          scheduler=args.scheduler, sweep_dir=args.sweep_dir,
                          command=" ".join(["python", "notebooks/run.py", *(argv if argv is not None else sys.argv[1:])]))
        except (OutputRefused, Refused) as exc:
            print(f"notebooks/run.py: error: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: ran in {time.perf_counter() - start:.1f} s" + (f", results in {out}" if out else ""), flush=True)
    print(f"executed notebooks in {executed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
