"""The CPU tables of nodes with a CPU model (``ikesim.sim.cpu``): per job, per 1 s bin, and their summary."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ikesim.metrics.stats import percentiles

__all__ = ["processing_table", "cpu_table", "cpu_summary"]


def processing_table(jobs: pd.DataFrame) -> pd.DataFrame:
    """One row per CPU job: node, arrived, start, end, wait, service, what."""
    cols = ["node", "arrived", "start", "end", "wait", "service", "what"]
    if not len(jobs):
        return pd.DataFrame(columns=cols)
    df = jobs
    df["wait"] = df["start"] - df["arrived"]
    df["service"] = df["end"] - df["start"]
    return df[cols]


def cpu_table(processing: pd.DataFrame, cores_of: dict[str, int], duration: float, bin_s: float = 1.0) -> pd.DataFrame:
    """Per node with a CPU model and *bin_s* bin: utilisation (0..1) and the longest queue in the bin."""
    cols = ["node", "time", "utilisation", "queue"]
    frames = []
    nbins = max(1, int(np.ceil(duration / bin_s)))
    edges = np.arange(nbins + 1) * bin_s
    for node, cores in sorted(cores_of.items()):
        jobs = processing[processing["node"] == node]
        busy = np.zeros(nbins)
        starts, ends = jobs["start"].to_numpy(float), np.minimum(jobs["end"].to_numpy(float), edges[-1])
        for a, b in zip(starts, ends, strict=True):  # spread each job's busy time over the bins it covers
            i, j = int(a // bin_s), min(int(b // bin_s), nbins - 1)
            if i == j:
                busy[i] += b - a
            else:
                busy[i] += edges[i + 1] - a
                busy[i + 1:j] += bin_s
                busy[j] += b - edges[j]
        # longest queue within each bin: waiting jobs after every arrival (+1) and start (-1), starts first on ties
        times = np.concatenate([starts, jobs["arrived"].to_numpy(float)])
        steps = np.concatenate([-np.ones(len(starts), dtype=np.int64), np.ones(len(starts), dtype=np.int64)])
        order = np.lexsort((steps, times))
        waiting = np.cumsum(steps[order])
        at_bin = np.minimum((times[order] // bin_s).astype(np.int64), nbins - 1)
        queue = np.zeros(nbins, dtype=np.int64)
        np.maximum.at(queue, at_bin, waiting)
        start_of = np.searchsorted(at_bin, np.arange(nbins), side="left")  # carry the level into empty bins
        carried = np.where(start_of > 0, waiting[np.maximum(start_of - 1, 0)], 0) if len(waiting) else 0
        queue = np.maximum(queue, carried)
        frames.append(pd.DataFrame({"node": node, "time": edges[:-1], "utilisation": busy / (bin_s * cores),
                                    "queue": queue}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def cpu_summary(processing: pd.DataFrame, cpu: pd.DataFrame, cores_of: dict[str, int], duration: float,
                warmup: float) -> dict[str, Any]:
    """Per node: jobs, busy time, mean and peak utilisation, longest queue, waits; all from *warmup* on.

    Only jobs that arrived at or after *warmup* count, so a queue that built up before it is not counted.
    """
    out: dict[str, Any] = {}
    span = duration - warmup
    for node, cores in sorted(cores_of.items()):
        jobs = processing[(processing["node"] == node) & (processing["arrived"] >= warmup)]
        times = np.concatenate([jobs["arrived"].to_numpy(float), jobs["start"].to_numpy(float)])
        steps = np.concatenate([np.ones(len(jobs), dtype=np.int64), -np.ones(len(jobs), dtype=np.int64)])
        order = np.lexsort((steps, times))  # at equal times a start (-1) sorts before an arrival (+1)
        peak = max(0, int(np.cumsum(steps[order]).max())) if len(jobs) else 0
        util = cpu[(cpu["node"] == node) & (cpu["time"] >= warmup)]["utilisation"]
        out[node] = {
            "cores": cores, "from": warmup, "jobs": len(jobs), "busy_s": float(jobs["service"].sum()),
            "mean_utilisation": float(jobs["service"].sum() / (cores * span)) if span > 0 else 0.0,
            "peak_utilisation": float(util.max()) if len(util) else 0.0, "max_queue": int(peak),
            "wait_s": percentiles(jobs["wait"].to_numpy(float)),
        }
    return out
