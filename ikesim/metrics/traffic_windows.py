"""Control windows and loss attribution, shared by both data-plane modes' tables (``ikesim.metrics.traffic_tables``).

A window (``ikesim.metrics.traffic_log.Window``) ends when its control event ends (a NAT rebind: when every
direction delivers again); a loss is attributed to the latest started window holding its fate time, up to
``GRACE`` s after the window closed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from ikesim.metrics.traffic_log import DELIVERED, TrafficLog, Window

__all__ = ["GRACE", "NONE", "IN_FLIGHT", "close_windows", "attribute"]

GRACE = 1.0
"""Seconds after a window closes during which drops still count for it (packets in flight)."""

NONE = "none"
IN_FLIGHT = "in_flight"
"""The fate of a packet still on its way when the run ended: neither delivered nor lost."""


def close_windows(log: TrafficLog, duration: float, sends_after: Callable[[int, float], bool],
                  first_delivered: Callable[[int, float], float | None]) -> list[Window]:
    """``_closed_windows`` given, per flow code, whether it sent at or after a time and its first delivery then."""
    out = []
    by_connection: dict[str, list[int]] = {}
    for i, f in enumerate(log.flows):
        by_connection.setdefault(f.connection, []).append(i)
    for w in log.windows:
        end = w.end
        if w.kind in ("nat_rebind", "nat_reboot"):
            ends = []
            for code in by_connection.get(w.connection, []):
                if not sends_after(code, w.start):
                    continue  # this direction sent nothing after the rebind
                first = first_delivered(code, w.start)
                ends.append(first if first is not None else duration)
            end = max(ends) if ends else w.start
        elif math.isnan(end):
            end = duration
        out.append(Window(w.connection, w.kind, w.ident, w.start, end))
    return out


def attribute(log: TrafficLog, df: pd.DataFrame, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """(event kind, event ident) per packet: ``none``/"" for delivered packets and losses outside every window."""
    kinds = np.full(len(df), NONE, dtype=object)
    idents = np.full(len(df), "", dtype=object)
    by_conn: dict[str, list[Window]] = {}
    for w in sorted(windows, key=lambda w: w.start):
        by_conn.setdefault(w.connection, []).append(w)
    if not by_conn:
        return kinds, idents
    conn_of = [f.connection for f in log.flows]
    fate = df["fate"].to_numpy()
    lost = np.flatnonzero((fate != DELIVERED) & (fate != IN_FLIGHT))
    codes = df["flow_code"].to_numpy()
    t_fate = df["time_fate"].to_numpy()
    t_sent = df["time_sent"].to_numpy()
    for i in lost:
        ws = by_conn.get(conn_of[codes[i]])
        if not ws:
            continue
        t = t_fate[i] if not math.isnan(t_fate[i]) else t_sent[i]
        for w in reversed(ws):  # the latest started window that holds t
            if w.start <= t <= w.end + GRACE:
                kinds[i], idents[i] = w.kind, w.ident
                break
    return kinds, idents
