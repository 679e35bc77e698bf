"""Command line: ``ikesim run SCENARIO [--variant NAME] [--seed N] [--out DIR] [--until DURATION]`` and
``ikesim check PATH... [--junit FILE] [--seed N] [--out DIR] [--quiet]``."""

from __future__ import annotations

import argparse
import atexit
import gc
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ikesim._version import __version__
from ikesim.cli_write import cmd_import, cmd_schema
from ikesim.errors import ConfigError
from ikesim.scenario.durations import parse_duration

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

__all__ = ["main", "run_progress"]


class _RunFailed(Exception):
    """A simulation or the writing of its results failed (exit status 1)."""


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.1f} ms" if isinstance(x, float) else str(x)


def print_summary(summary: dict[str, Any], wall: float, out: Path | None) -> None:
    """Print the run summary as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(f"[bold]ikesim {summary['ikesim_version']}[/] scenario [bold]{summary['name']}[/] "
                  f"seed {summary['seed']} run {summary['run']}: {summary['duration'] / 3600:.2f} h simulated "
                  f"in {wall:.2f} s")
    t = Table(title="exchanges")
    t.add_column("purpose")
    t.add_column("count", justify="right")
    for k, v in summary["exchanges_by_type"].items():
        t.add_row(k, str(v))
    t.add_row("[bold]failed / unanswered[/]", str(summary["exchanges_failed"]))
    console.print(t)
    lt = Table(title="rekeys and latency (trigger -> new SA installed)")
    for col in ("kind", "rekeys", "side", "n", "p50", "p95", "max"):
        lt.add_column(col, justify="right" if col not in ("kind", "side") else "left")
    for kind in ("child", "ike"):
        for side in ("initiator", "responder"):
            p = summary["rekey_latency"][kind][side]
            lt.add_row(kind if side == "initiator" else "", str(summary["rekeys"][kind]) if side == "initiator" else "",
                       side, str(p["n"]), _fmt(p["p50"]), _fmt(p["p95"]), _fmt(p["max"]))
    console.print(lt)
    d = summary["datagrams"]
    o = Table(title="network and protocol")
    o.add_column("figure")
    o.add_column("value", justify="right")
    for k, v in (("retransmissions", summary["retransmissions"]), ("collisions", summary["collisions"]),
                 ("messages dropped (malformed/ICV/unknown)", summary["messages_dropped"]),
                 ("datagrams sent", d["sent"]), ("datagrams delivered", d["delivered"]), ("datagrams lost", d["lost"]),
                 ("IKE_SAs established", summary["sas"]["ike_established"]),
                 ("CHILD_SAs installed", summary["sas"]["child_installed"]), ("auth failures", summary["auth_failures"])):
        o.add_row(k, str(v))
    if d.get("fragmented"):
        o.add_row("datagrams IP-fragmented", str(d["fragmented"]))
    for fate in ("fragment_lost", "fragments_dropped", "queue_overflow", "link_down", "nat_no_mapping", "firewall"):
        if d.get("by_fate", {}).get(fate):
            o.add_row(f"datagrams dropped: {fate}", str(d["by_fate"][fate]))
    for node, c in summary.get("cpu", {}).items():
        o.add_row(f"CPU {node}: peak / mean utilisation ({c['cores']} cores)",
                  f"{100 * c['peak_utilisation']:.0f} % / {100 * c['mean_utilisation']:.1f} %")
        o.add_row(f"CPU {node}: max queue, wait p95", f"{c['max_queue']}, {_fmt(c['wait_s']['p95'])}")
    if d.get("dropped_by_fault") or d.get("held_by_fault"):
        o.add_row("datagrams dropped by fault scripts", str(d["dropped_by_fault"]))
        o.add_row("datagrams held by fault scripts (released or not)", str(d["held_by_fault"]))
    console.print(o)
    if "traffic" in summary:
        console.print(_traffic_table(summary["traffic"]))
    if "handovers" in summary:
        console.print(_handover_table(summary["handovers"]))
    if "ha" in summary:
        console.print(_ha_table(summary["ha"]))
    if "restarts" in summary:
        console.print(_restart_table(summary["restarts"]))
    if out is not None:
        console.print(f"results written to [bold]{out}[/]")


def _traffic_table(tr: dict[str, Any]) -> Table:
    """The summary's user-traffic figures: packets by fate, loss per CHILD rekey, time to restore per event kind."""
    from rich.table import Table

    t = Table(title="user traffic (ESP)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("packets sent", str(tr["sent"]))
    t.add_row("packets delivered", str(tr["delivered"]))
    t.add_row("packets lost", str(tr["lost"]))
    for reason, n in tr["lost_by_reason"].items():
        t.add_row(f"  reason: {reason}", str(n))
    for event, n in tr["lost_by_event"].items():
        t.add_row(f"  during: {event.replace('_', ' ')}", str(n))
    pr = tr["loss_per_child_rekey"]
    if pr:
        t.add_row(f"loss per CHILD rekey ({pr['rekeys']} rekeys): mean / p95 / max",
                  f"{pr['mean']:.2f} / {pr['p95']:.1f} / {pr['max']}")
    for event, r in tr["time_to_restore"].items():
        t.add_row(f"time to restore after {event} ({r['outages']} outages): p50 / p95 / max",
                  f"{_fmt(r['p50'])} / {_fmt(r['p95'])} / {_fmt(r['max'])}")
    return t


def _handover_table(h: dict[str, Any]) -> Table:
    """The summary's handovers (``ikesim.metrics.handovers``): how many, restored by what, and how long it took."""
    from rich.table import Table

    t = Table(title="handovers (interfaces under a tunnel going down)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("handovers", str(h["count"]))
    for method, n in h["by_method"].items():
        t.add_row(f"  restored by: {method}", str(n))
    for key, label in (("detection_s", "detection delay"), ("restore_s", "time to restore the tunnel"),
                       ("outage_s", "user traffic outage"), ("cpu_s", "CPU time, both ends")):
        q = h[key]
        if q["n"]:
            t.add_row(f"{label} ({q['n']}): p50 / p95 / max", f"{_fmt(q['p50'])} / {_fmt(q['p95'])} / {_fmt(q['max'])}")
    t.add_row("user packets lost in handovers", str(h["packets_lost"]))
    t.add_row("exchanges in handovers", str(h["exchanges"]))
    return t


def _ha_table(h: dict[str, Any]) -> Table:
    """The summary's HA failovers (``ikesim.metrics.ha``): tunnels per failure, how they came back, how long it took
    and what the reconnects cost the survivors."""
    from rich.table import Table

    t = Table(title="HA failovers (tunnels of a failed cluster member)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("failures", str(h["failures"]))
    t.add_row("tunnels failed over", str(h["count"]))
    for method, n in h["by_method"].items():
        t.add_row(f"  restored by: {method}", str(n))
    for key, label in (("detection_s", "detection delay"), ("ike_interruption_s", "IKE interruption"),
                       ("traffic_interruption_s", "user traffic interruption"),
                       ("all_restored_s", "until every tunnel of a failure was back")):
        q = h[key]
        if q["n"]:
            t.add_row(f"{label} ({q['n']}): p50 / p95 / max", f"{_fmt(q['p50'])} / {_fmt(q['p95'])} / {_fmt(q['max'])}")
    t.add_row("tunnels never restored", str(h["unrestored"]))
    t.add_row("user packets lost in failovers", str(h["packets_lost"]))
    t.add_row("client retransmissions in failovers", str(h["retransmissions"]))
    t.add_row("new IKE_SAs per second on a survivor: peak", str(h["reauth_per_s_peak"]))
    if h["survivor_cpu_peak"] is not None:
        t.add_row("survivor CPU peak (1 s bins), longest queue",
                  f"{100 * h['survivor_cpu_peak']:.0f} %, {h['survivor_queue_peak']}")
    return t


def _restart_table(h: dict[str, Any]) -> Table:
    """The summary's restarts (``ikesim.metrics.restarts``): tunnels a restarted daemon lost, how and how fast its
    peers brought them back, and the restarted node's CPU per reconnect."""
    from rich.table import Table

    t = Table(title="restarts (tunnels of a restarted IKE daemon; CPU: the restarted node's, set-up jobs = "
                    "IKE_SA_INIT, IKE_SESSION_RESUME, IKE_AUTH)")
    t.add_column("figure")
    t.add_column("value", justify="right")
    t.add_row("restarts", str(h["restarts"]))
    t.add_row("tunnels lost", str(h["tunnels_lost"]))
    t.add_row("tunnels restored", str(h["restored"]))
    for method, n in h["by_method"].items():
        t.add_row(f"  restored by: {method}", str(n))
    for key, label in (("detection_s", "detection by the peer's DPD"), ("time_to_restore_s", "time to restore")):
        q = h[key]
        if q["n"]:
            t.add_row(f"{label} ({q['n']}): p50 / p95 / max, s",
                      f"{q['p50']:.1f} / {q['p95']:.1f} / {q['max']:.1f}")
    t.add_row("peers' exchanges / retransmissions until restored", f"{h['exchanges']} / {h['retransmissions']}")
    t.add_row("restores that needed a COOKIE", str(h["cookies"]))
    if h["cpu_per_reconnect_ms"] is not None:
        t.add_row("CPU per reconnect (set-up jobs), ms",
                  f"{h['cpu_per_reconnect_ms']:.3f}")
    if h["cpu_busy_s"] is not None:
        t.add_row("CPU busy, restart to last restore, ms", f"{1000 * h['cpu_busy_s']:.2f}")
    return t


@contextmanager
def run_progress(console: Console, *, enabled: bool = True,
                 clock: Callable[[], float] = time.perf_counter) -> Iterator[Callable[[float, float, int], None] | None]:
    """A progress line for ``ikesim run`` on *console*: simulated time, events per second and an ETA.

    Yields the hook for ``Simulation.run(on_progress=)``, or None (show nothing) when not *enabled* or when
    *console* is not a terminal. The ETA assumes the run started at simulated time 0 and keeps its pace.
    """
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn

    from ikesim.sweep.progress import clock as hms

    with Progress(TextColumn("ikesim run"), BarColumn(), TextColumn("{task.fields[sim]} simulated"),
                  TextColumn("{task.fields[rate]} events/s"), TextColumn("ETA {task.fields[eta]}"), console=console) as bar:
        task = bar.add_task("run", total=None, sim="0:00:00", rate="0", eta=hms(None))
        start = clock()

        def hook(now: float, end: float, events: int) -> None:
            wall = clock() - start
            bar.update(task, total=end, completed=now, sim=f"{hms(now)} / {hms(end)}",
                       rate=f"{events / wall:,.0f}" if wall > 0 else "0",
                       eta=hms(wall * (end - now) / now if now > 0 else None))

        yield hook


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ikesim.runner import check_out_dir, child_dir, run, write_results_atomically
    from ikesim.scenario.load import load_scenario

    model = load_scenario(args.scenario, variant=args.variant)
    if args.until is not None:
        try:
            parse_duration(args.until)
        except ValueError as exc:
            raise ConfigError(f"--until: {exc}") from None
    out = Path(args.out) if args.out else child_dir("results", model.name)
    check_out_dir(out, "run", protect=(args.scenario,))  # refuse now, not after the simulation
    start = time.perf_counter()
    try:
        with run_progress(Console(stderr=True), enabled=not args.quiet) as hook:
            results = run(model, seed=args.seed, until=args.until, run=args.run, on_progress=hook, trace=args.trace)
        write_results_atomically(results, out, protect=(args.scenario,), keys=not args.no_keys)
    except ConfigError:
        raise
    except Exception as exc:
        raise _RunFailed(f"scenario {model.name} failed: {type(exc).__name__}: {exc}") from exc
    wall = time.perf_counter() - start
    if not args.quiet:
        print_summary(results.summary, wall, out)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ikesim.check import CheckOutcome, check_junit_target, check_paths, print_report, write_junit

    if args.junit:
        check_junit_target(args.junit)  # refuse now, not after every scenario ran
    start = time.perf_counter()
    out = Path(args.out) if args.out else None
    progress = Console(stderr=True)
    if progress.is_terminal and not args.quiet:
        done: list[str] = []
        # The status line (a thread) starts with the first outcome: worker processes are forked before that.
        status = progress.status("ikesim check")

        def report(o: CheckOutcome) -> None:
            if not done:
                status.start()
            done.append(o.status)
            status.update(f"ikesim check: {len(done)} done ({done.count('pass')} passed), last {o.name}")

        try:
            outcomes = check_paths(args.paths, seed=args.seed, out=out, on_outcome=report, keys=not args.no_keys,
                                   workers=args.workers)
        finally:
            status.stop()
    else:
        outcomes = check_paths(args.paths, seed=args.seed, out=out, keys=not args.no_keys, workers=args.workers)
    if not outcomes:
        raise ConfigError(f"no scenario files (*.yaml, *.yml) under {', '.join(args.paths)}")
    print_report(outcomes, quiet=args.quiet, wall=time.perf_counter() - start)
    if args.junit:
        try:
            write_junit(outcomes, Path(args.junit))
        except OSError as exc:
            raise _RunFailed(f"cannot write the JUnit report {args.junit}: {exc.strerror or exc}") from None
    return 0 if all(o.passed for o in outcomes) else 1


def _cmd_plot(args: argparse.Namespace) -> int:
    from ikesim.plots import write_run_plots, write_sweep_plot

    src = Path(args.results)
    sweep = src if src.is_file() else src / "sweep.parquet"
    if args.x is not None or args.y is not None or src.is_file():
        if args.x is None or args.y is None:
            raise ConfigError("a sweep table needs --x PARAM and --y FIGURE")
        if not sweep.is_file():
            raise ConfigError(f"no sweep table: {sweep} does not exist")
        out = Path(args.out) if args.out else sweep.parent
        names = ["sweep.png"]

        def draw(d: Path) -> list[Path]:
            return [write_sweep_plot(sweep, d / "sweep.png", x=args.x, y=args.y, hue=args.hue)]
    else:
        if not (src / "sas.parquet").is_file() or not (src / "events.parquet").is_file():
            raise ConfigError(f"{src} is not a results directory (no sas.parquet and events.parquet); see `ikesim run --out`")
        out = Path(args.out) if args.out else src
        traffic = (src / "outages.parquet").is_file() and (src / "traffic_windows.parquet").is_file()
        names = ["timeline.png", "rekey_latency.png", *(["cpu.png"] if (src / "cpu.parquet").is_file() else []),
                 *(["outages.png"] if traffic else [])]

        def draw(d: Path) -> list[Path]:
            from ikesim.traffic_plots import write_outage_plot

            return write_run_plots(src, d, max_tunnels=args.tunnels) + write_outage_plot(src, d, max_rows=args.tunnels)
    try:
        written = _write_plots(out, names, draw)
    except KeyError as exc:
        raise ConfigError(str(exc.args[0])) from None
    if not args.quiet:
        for path in written:
            print(path)
    return 0


def _write_plots(out: Path, names: list[str], draw: Callable[[Path], list[Path]]) -> list[Path]:
    """Draw the PNGs *names* into a temporary directory inside *out*, then rename each into place.

    Refused before drawing (ConfigError, exit 2) when *out* is a file or one of the PNGs exists and ikesim did not
    write it (``ikesim.runner.ikesim_wrote``: listed in *out*'s marker, or a legacy run's figure). The PNGs are
    added to *out*'s marker (a new ``plots`` marker where there is none), so a later ``ikesim run``/``plot`` may
    replace them.
    """
    import shutil
    import tempfile

    from ikesim.runner import refuse_targets, register_files

    refusal = refuse_targets(out, names, "figures")
    if refusal is not None:
        raise ConfigError(refusal)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".ikesim-plot-", dir=out))
    try:
        drawn = draw(tmp)
        written = []
        for path in drawn:
            os.replace(path, out / path.name)
            written.append(out / path.name)
        register_files(out, [p.name for p in written])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return written


def _cmd_calibrate(args: argparse.Namespace) -> int:
    import json
    import os
    import tempfile
    from pathlib import Path

    from ikesim.calibration import calibration_table

    out = Path(args.out) if args.out is not None else None
    if out is not None and (out.is_symlink() or out.exists()) and not _is_calibration_table(out):
        raise ConfigError(f"refusing to overwrite {out}: it is not a calibration table ikesim wrote")
    text = json.dumps(calibration_table(max(10, args.repeat)), indent=2) + "\n"
    if out is None:
        print(text, end="")
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, out)  # never a half-written table
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    print(f"calibration table written to {out}")
    return 0


def _is_calibration_table(path: Path) -> bool:
    """True when *path* is a regular file holding a table ``ikesim calibrate`` wrote (which it may replace)."""
    import json

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return not path.is_symlink() and isinstance(data, dict) and {"unit", "costs", "machine"} <= data.keys()


def _cmd_sweep(args: argparse.Namespace) -> int:
    from ikesim.sweep import SweepSpec, load_sweep_file, parse_param, run_sweep
    from ikesim.sweep.backends import RunFailed
    from ikesim.sweep.spec import is_sweep_file

    params = tuple(parse_param(p) for p in args.param)
    if is_sweep_file(args.scenario):
        spec = load_sweep_file(args.scenario)
        keys = {p.key for p in params}
        spec = SweepSpec(spec.scenario, tuple(p for p in spec.params if p.key not in keys) + params,
                         args.replications if args.replications is not None else spec.replications, spec.out)
    else:
        spec = SweepSpec(Path(args.scenario), params, args.replications if args.replications is not None else 1)
    start = time.perf_counter()
    try:
        outcome = run_sweep(spec, out=args.out, workers=args.workers, scheduler=args.scheduler, keep_runs=args.keep_runs,
                            progress=not args.quiet)
    except RunFailed as exc:
        raise _RunFailed(str(exc)) from None
    if not args.quiet:
        print(f"{len(outcome.table)} runs ({len(outcome.ran)} run now, {len(outcome.skipped)} already done) in "
              f"{time.perf_counter() - start:.1f} s: {outcome.out / 'sweep.parquet'}")
    return 0


def _seed_arg(text: str) -> int:
    """``--seed``: an integer in 0 .. 2^64 - 1 (anything else: argparse prints the reason and exits 2)."""
    from ikesim.scenario.base import SEED_MAX

    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 0 <= seed <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"{seed} is outside 0 .. 2^64 - 1")
    return seed


def _run_arg(text: str) -> int:
    """``--run``: a run number, 0 or more."""
    try:
        run = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if run < 0:
        raise argparse.ArgumentTypeError(f"{run} is negative (runs are numbered 0, 1, 2, ...)")
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ikesim`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="ikesim", description="IKEv2 rekeying and mobility simulator")
    parser.add_argument("--version", action="version", version=f"ikesim {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a scenario, print a summary and write results")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--seed", type=_seed_arg, default=None, help="override the scenario's seed (0 .. 2^64 - 1)")
    p.add_argument("--run", type=_run_arg, default=0, help="replication (run) number, 0 or more")
    p.add_argument("--out", default=None, help="results directory (default results/<scenario name>)")
    p.add_argument("--until", default=None, help="simulated duration, e.g. 2h (default: the scenario's)")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--variant", default=None, help="the variant to run, for a scenario that declares variants")
    p.add_argument("--no-keys", action="store_true", help="do not write the key tables (ikev2_decryption_table, esp_sa)")
    p.add_argument("--trace", choices=("full", "exchanges", "summary"), default=None,
                   help="what to record and write (default: the scenario's trace, else full)")
    c = sub.add_parser("check", help="run scenarios (every variant) and check their expectations; exit 0 only if all pass")
    c.add_argument("paths", nargs="+", metavar="PATH", help="scenario files, or folders searched for *.yaml/*.yml")
    c.add_argument("--junit", default=None, metavar="FILE", help="write a JUnit XML report")
    c.add_argument("--seed", type=_seed_arg, default=None, help="run every scenario with this seed instead of its own")
    c.add_argument("--out", default=None, metavar="DIR", help="also write each run's results into DIR/<scenario name>")
    c.add_argument("--quiet", action="store_true", help="print only the scenarios that did not pass")
    c.add_argument("--no-keys", action="store_true", help="with --out: do not write the key tables")
    c.add_argument("--workers", type=int, default=None, metavar="N",
                   help="scenario files run in N processes at once (default: CPUs; 1 = one after another)")
    g = sub.add_parser("plot", help="draw PNG figures of a results directory, or of a sweep table with --x/--y")
    g.add_argument("results", metavar="RESULTS", help="results directory (ikesim run --out), or a sweep.parquet file")
    g.add_argument("--out", default=None, metavar="DIR", help="where to write the PNGs (default: next to the input)")
    g.add_argument("--tunnels", type=int, default=20, metavar="N", help="tunnels drawn on the SA timeline (default 20)")
    g.add_argument("--x", default=None, metavar="PARAM", help="sweep: the swept parameter on the x axis")
    g.add_argument("--y", default=None, metavar="FIGURE", help="sweep: the summary column to plot, e.g. collisions")
    g.add_argument("--hue", default=None, metavar="PARAM", help="sweep: one line per value of this parameter")
    g.add_argument("--quiet", action="store_true", help="do not list the files written")
    w = sub.add_parser("sweep", help="run a scenario over a grid of parameter values x replications into DIR/sweep.parquet")
    w.add_argument("scenario", help="scenario YAML file, or a sweep file (keys scenario, params, replications, out)")
    w.add_argument("--param", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="a dotted key of the scenario YAML and its values, e.g. connections.vpn.child.rand_time=0s,6min")
    w.add_argument("--replications", type=int, default=None, metavar="R", help="runs per grid point: run numbers 0..R-1")
    w.add_argument("--workers", type=int, default=None, metavar="N", help="local worker processes (default: CPUs; 1 = serial)")
    w.add_argument("--scheduler", default=None, metavar="ADDRESS", help="run on the Dask cluster at ADDRESS instead")
    w.add_argument("--out", default=None, metavar="DIR", help="sweep directory (default results/<scenario name>-sweep)")
    w.add_argument("--keep-runs", action="store_true", help="also write each run's results into DIR/runs/<run-id>/")
    w.add_argument("--quiet", action="store_true", help="no progress bar and no final line")
    k = sub.add_parser("calibrate", help="measure this machine's cost of each crypto operation (for cpu: on nodes)")
    k.add_argument("--out", default=None, metavar="FILE", help="write the table as JSON (default: print it)")
    k.add_argument("--repeat", type=int, default=200, help="timings per operation (the median is kept)")
    m = sub.add_parser("import", help="write a scenario from the connections of a swanctl.conf, or of two (one per peer)")
    m.add_argument("files", nargs="+", metavar="SWANCTL_CONF", help="one swanctl.conf, or two: one per peer")
    m.add_argument("--out", "-o", default=None, metavar="FILE", help="scenario YAML to write (default: print it)")
    m.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    m.add_argument("--name", default=None, help="the scenario's name (default: from the first file's name)")
    m.add_argument("--nodes", default=None, metavar="A[,B]", help="node names of the files' hosts (default: file names)")
    m.add_argument("--duration", default="1h", help="the scenario's simulated duration (default 1h)")
    m.add_argument("--quiet", action="store_true", help="do not list the unsupported settings on stderr")
    h = sub.add_parser("schema", help="print the JSON Schema of scenario files (or write it with --out)")
    h.add_argument("--out", "-o", default=None, metavar="FILE", help="write it here instead")
    h.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    args = parser.parse_args(argv)
    # Python collects garbage once more while it exits, walking every object pandas, pyarrow, networkx and a run
    # created: 0.3-0.5 s of each command. Frozen, those objects are skipped. Nothing ikesim leaves behind needs
    # that collection: its files are closed, and the trace spool's weakref.finalize runs from atexit all the same.
    atexit.unregister(gc.freeze)  # once, however often main() runs in one process
    atexit.register(gc.freeze)
    try:
        if args.command == "calibrate":
            return _cmd_calibrate(args)
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "check":
            return _cmd_check(args)
        if args.command == "plot":
            return _cmd_plot(args)
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "import":
            return cmd_import(args)
        if args.command == "schema":
            return cmd_schema(args)
    except ConfigError as exc:
        print(f"ikesim: error: {exc}", file=sys.stderr)
        return 2
    except _RunFailed as exc:
        suffix = " (no results written)" if args.command == "run" else ""
        print(f"ikesim: error: {exc}{suffix}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ikesim: interrupted, {_INTERRUPTED.get(args.command, 'stopped')}", file=sys.stderr)
        return 130
    return 1


_INTERRUPTED = {"run": "nothing written", "import": "nothing written", "schema": "nothing written", "check": "no report written",
                "sweep": "finished runs are kept: run the same command again to resume",
                "calibrate": "nothing written"}
"""What Ctrl-C leaves behind, per command (every file ikesim writes is written whole or not at all)."""


if __name__ == "__main__":
    sys.exit(main())
