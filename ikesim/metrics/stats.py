"""Percentiles as the summary reports them."""

from __future__ import annotations

import pandas as pd

__all__ = ["percentiles"]


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """p50, p95, max and count of *values* (None when empty)."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    s = pd.Series(values, dtype="float64")
    return {"n": len(values), "p50": round(float(s.quantile(0.5)), 6),
            "p95": round(float(s.quantile(0.95)), 6), "max": round(float(s.max()), 6)}
