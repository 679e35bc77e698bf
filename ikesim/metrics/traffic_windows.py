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

__all__ = ["GRACE", "NONE", "IN_FLIGHT", "close_windows", "packet_windows", "attribute"]

GRACE = 1.0
"""Seconds after a window closes during which drops still count for it (packets in flight)."""

NONE = "none"
IN_FLIGHT = "in_flight"
"""The fate of a packet still on its way when the run ended: neither delivered nor lost."""

_PAIRS = 1 << 20
"""Row-window pairs ``attribute`` checks at once (bounds its memory)."""


def close_windows(log: TrafficLog, duration: float, sends_after: Callable[[int, float], bool],
                  first_delivered: Callable[[int, float], float | None]) -> list[Window]:
    """``_closed_windows`` given, per flow code, whether it sent at or after a time and its first delivery then."""
    out = []
    by_connection: dict[str, list[int]] = {}
    for i, f in enumerate(log.flows):
        by_connection.setdefault(f.connection, []).append(i)
    for w in log.windows:
        end = w.end
        if w.kind in ("nat_rebind", "nat_reboot", "handover", "failover"):
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


def packet_windows(log: TrafficLog, duration: float) -> list[Window]:
    """``close_windows`` over per-packet columns: O(packets log packets) once, not a scan per window and flow.

    A flow sends at or after *t* when its last send time is; its first delivery then is the first delivered
    packet (in the order sent) sent at or after *t*: with send times in order (the run's clock), a binary search
    in the flow's delivered send times. Send times out of order fall back to a scan (the same answers).
    """
    n = len(log)
    codes = np.frombuffer(log.flow, dtype=np.int32, count=n) if n else np.zeros(0, np.int32)
    sent = np.frombuffer(log.sent, dtype=np.float64, count=n) if n else np.zeros(0)
    fate = np.frombuffer(log.fate, dtype=np.int8, count=n) if n else np.zeros(0, np.int8)
    delivered = fate == (log.fate_names.index(DELIVERED) if DELIVERED in log.fate_names else -2)
    last_sent = np.full(len(log.flows) + 1, -np.inf)
    np.maximum.at(last_sent, codes, sent)
    d_order = np.flatnonzero(delivered)
    d_order = d_order[np.argsort(codes[d_order], kind="stable")]  # per flow, in the order sent
    d_codes, d_sent = codes[d_order], sent[d_order]
    in_order = bool(n < 2 or (np.diff(sent) >= 0).all())

    def sends_after(code: int, t: float) -> bool:
        return bool(last_sent[code] >= t)

    bounds = np.searchsorted(d_codes, np.arange(len(log.flows) + 2), "left").tolist()

    def first_delivered(code: int, t: float) -> float | None:
        times = d_sent[bounds[code]:bounds[code + 1]]
        if in_order:
            at = int(np.searchsorted(times, t, "left"))
            return float(times[at]) if at < len(times) else None
        hits = np.flatnonzero(times >= t)
        return float(times[hits[0]]) if len(hits) else None

    return close_windows(log, duration, sends_after, first_delivered)


def attribute(log: TrafficLog, df: pd.DataFrame, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """(event kind, event ident) per packet: ``none``/"" for delivered packets and losses outside every window.

    Every lost row is checked against every window of its connection at once (in chunks of at most
    ``_PAIRS`` row-window pairs); the latest started window that holds its time wins.
    """
    kinds = np.full(len(df), NONE, dtype=object)
    idents = np.full(len(df), "", dtype=object)
    if not windows:
        return kinds, idents
    ordered = sorted(windows, key=lambda w: w.start)
    conn_code: dict[str, int] = {}
    for w in ordered:
        conn_code.setdefault(w.connection, len(conn_code))
    w_conn = np.array([conn_code[w.connection] for w in ordered], dtype=np.int64)
    by_conn = np.argsort(w_conn, kind="stable")  # per connection, in start order
    w_conn = w_conn[by_conn]
    w_start = np.array([w.start for w in ordered], dtype=np.float64)[by_conn]
    w_until = np.array([w.end for w in ordered], dtype=np.float64)[by_conn] + GRACE
    w_kind = np.array([w.kind for w in ordered], dtype=object)[by_conn]
    w_ident = np.array([w.ident for w in ordered], dtype=object)[by_conn]
    flow_conn = np.array([conn_code.get(f.connection, -1) for f in log.flows] + [-1], dtype=np.int64)
    fate = df["fate"].to_numpy()
    lost = np.flatnonzero((fate != DELIVERED) & (fate != IN_FLIGHT))
    conn = flow_conn[df["flow_code"].to_numpy()[lost]]
    t_fate, t_sent = df["time_fate"].to_numpy()[lost], df["time_sent"].to_numpy()[lost]
    t = np.where(np.isnan(t_fate), t_sent, t_fate)
    lo, hi = np.searchsorted(w_conn, conn, "left"), np.searchsorted(w_conn, conn, "right")
    per_row = hi - lo
    bounds = np.searchsorted(np.cumsum(per_row), np.arange(_PAIRS, int(per_row.sum()) + _PAIRS, _PAIRS), "right")
    begin = 0
    for end in np.append(bounds, len(lost)):
        if end <= begin:
            continue
        rows, n = np.arange(begin, end), per_row[begin:end]
        pair_row = np.repeat(rows, n)
        pair_w = np.repeat(lo[begin:end] - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        holds = (w_start[pair_w] <= t[pair_row]) & (t[pair_row] <= w_until[pair_w])
        pair_row, pair_w = pair_row[holds], pair_w[holds]
        last = np.r_[pair_row[1:] != pair_row[:-1], True] if len(pair_row) else np.zeros(0, dtype=bool)
        hit = lost[pair_row[last]]
        kinds[hit], idents[hit] = w_kind[pair_w[last]], w_ident[pair_w[last]]
        begin = end
    return kinds, idents
