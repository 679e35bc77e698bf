"""Split a fuzz run over worker processes, each with its own stream (seed, worker), and merge the totals."""

from __future__ import annotations

import multiprocessing
import time

from ikesim.fuzz.harness import FuzzStats, run_fuzz

__all__ = ["fuzz"]


def _worker(args: tuple[int, int, int, int]) -> FuzzStats:
    """One worker: its share of the datagrams, from its own stream."""
    count, seed, worker, batch = args
    return run_fuzz(count, seed, worker, batch)


def _shares(count: int, workers: int) -> list[int]:
    base, extra = divmod(count, workers)
    return [base + (1 if w < extra else 0) for w in range(workers)]


def fuzz(count: int, seed: int, workers: int = 1, batch: int = 1000) -> FuzzStats:
    """Run *count* datagrams split over *workers* processes (worker ``w`` draws stream (seed, w))."""
    jobs = [(n, seed, w, batch) for w, n in enumerate(_shares(count, workers)) if n]
    t0 = time.perf_counter()
    if workers == 1:
        parts = [_worker(j) for j in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(_worker, jobs)
    total = FuzzStats()
    for p in parts:
        total.merge(p)
    total.seconds = time.perf_counter() - t0
    return total
