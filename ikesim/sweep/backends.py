"""Execution backends: in-process serial, local worker processes, or an existing Dask distributed cluster."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ikesim.errors import ConfigError, IkesimError
from ikesim.sweep.grid import GridRun

__all__ = ["RunFailed", "RunResult", "RunTask", "execute", "run_task"]


class RunFailed(IkesimError):
    """One run of a sweep raised; the message names the run and its param values."""


@dataclass(frozen=True, slots=True)
class RunTask:
    """Everything a worker needs for one run: the overridden scenario text, the grid run, and where to keep results."""

    text: str
    grid_run: GridRun
    keep_dir: str | None = None


@dataclass(frozen=True, slots=True)
class RunResult:
    """A finished run: its row and its wall time (kept out of the row: rows are deterministic)."""

    row: dict[str, Any]
    wall: float


def run_task(task: RunTask) -> RunResult:
    """Run one grid run (in whichever process or worker calls it); with *keep_dir*, write its results there."""
    from ikesim.runner import run, write_results_atomically
    from ikesim.scenario.load import load_scenario_text
    from ikesim.sweep.rows import make_row

    if _Worker.interrupted:  # queued before Ctrl-C reached this worker: not started
        raise KeyboardInterrupt
    start = time.perf_counter()
    g = task.grid_run
    _Worker.in_run = True
    try:
        # a run whose files are not kept only gives its summary row: record no more than that (trace: summary)
        trace = None if task.keep_dir is not None else "summary"
        results = run(load_scenario_text(task.text, "<sweep>"), run=g.run, trace=trace)
        if task.keep_dir is not None:
            write_results_atomically(results, Path(task.keep_dir))
    except Exception as exc:
        params = ", ".join(f"{k}={v!r}" for k, v in g.values) or "no params"
        raise RunFailed(f"sweep run {g.run_id} ({params}, run {g.run}) failed: {type(exc).__name__}: {exc}") from None
    finally:
        _Worker.in_run = False
    summary = {k: v for k, v in results.summary.items() if k != "trace"}  # the same at every trace level
    return RunResult(make_row(g, summary), time.perf_counter() - start)


def execute(tasks: Sequence[RunTask], on_done: Callable[[RunResult], None], *, workers: int | None = None,
            scheduler: str | None = None, on_start: Callable[[int], None] | None = None) -> None:
    """Run *tasks*, calling *on_done* in this process as each finishes (any order); raise RunFailed on the first failure.

    *on_start* is called once with the number of workers, before the first task runs. On Ctrl-C the local
    workers are stopped (each cleans up what it was writing) and KeyboardInterrupt is raised.
    """
    if not tasks:
        return
    started = on_start if on_start is not None else (lambda n: None)
    if scheduler is not None:
        _execute_dask(tasks, on_done, scheduler, started)
        return
    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        raise ConfigError(f"--workers: expected 1 or more (got {n})")
    n = min(n, len(tasks))
    started(n)
    if n == 1:
        for task in tasks:
            on_done(run_task(task))
        return
    before = set(multiprocessing.active_children())
    with ProcessPoolExecutor(max_workers=n, initializer=_worker_signals) as pool:
        pending: set[Future[RunResult]] = {pool.submit(run_task, t) for t in tasks}
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    on_done(fut.result())
        except KeyboardInterrupt:
            # Each worker is told, not killed: a worker killed inside the pool's queue can leave half a
            # message in the pipe for another to choke on. A worker in a run unwinds it (temporaries are
            # removed); an idle one, and any task still queued to it, ends without running anything.
            for proc in set(multiprocessing.active_children()) - before:
                if proc.pid is not None:
                    os.kill(proc.pid, signal.SIGINT)
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


class _Worker:
    """A local worker's interruption state: whether a run is under way, and whether Ctrl-C has come."""

    in_run = False
    interrupted = False


def _worker_signals() -> None:
    """In a worker: Ctrl-C interrupts the run under way, once (no traceback); SIGTERM exits cleanly."""
    signal.signal(signal.SIGINT, _interrupt_on_sigint)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _interrupt_on_sigint(signum: int, frame: object) -> None:
    first = not _Worker.interrupted
    _Worker.interrupted = True
    if first and _Worker.in_run:
        raise KeyboardInterrupt


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _execute_dask(tasks: Sequence[RunTask], on_done: Callable[[RunResult], None], address: str,
                  on_start: Callable[[int], None]) -> None:
    """Submit every task to the Dask scheduler at *address* and collect results as they complete."""
    try:
        from distributed import Client, as_completed
    except ImportError:
        raise ConfigError("--scheduler needs dask.distributed: pip install 'ikesim[sweep]'") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"--scheduler {address}: cannot connect to a Dask scheduler: {exc}") from None
    tag = uuid.uuid4().hex[:8]
    try:
        on_start(max(1, len(client.scheduler_info().get("workers", {}))))
        futures = [client.submit(run_task, t, key=f"ikesim-sweep-{tag}-{t.grid_run.run_id}", pure=False) for t in tasks]
        try:
            for fut in as_completed(futures):
                on_done(fut.result())
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        client.close()
