"""Percentiles as the summary reports them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["percentiles"]


def percentiles(values: Sequence[float] | np.ndarray) -> dict[str, float | int | None]:
    """p50, p95, max and count of *values* (None when empty)."""
    if not len(values):
        return {"n": 0, "p50": None, "p95": None, "max": None}
    a = np.asarray(values, dtype="float64")
    p50, p95 = np.quantile(a, [0.5, 0.95])  # linear interpolation, as pandas' Series.quantile
    return {"n": len(values), "p50": round(float(p50), 6), "p95": round(float(p95), 6), "max": round(float(a.max()), 6)}
