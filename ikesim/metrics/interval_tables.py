"""Fleet mode's traffic tables: the interval rows of ``ikesim.metrics.traffic_timeline`` as traffic, windows, outages.

The definitions are those of ``ikesim.metrics.traffic_tables`` (its module docstring), applied to intervals:

- traffic: one row per flow direction and interval of constant state and fate; ``start``/``end`` are the send
  times of its first and last packet, ``packets`` how many it holds;
- windows: a NAT window ends when every direction that sends delivers again (its first delivered packet);
- attribution: an undelivered interval is cut where a window (plus ``GRACE``) begins or ends in fate time, so
  that each part lies wholly inside or outside every window; the parts are attributed as single packets are
  (``attribute``, the latest started window that holds the fate time);
- outages: maximal runs of undelivered intervals of one flow direction, in send-time order. Random losses in an
  interval that delivered packets too (``sporadic``) end no run and start none: per-packet mode makes each of
  them a one-packet outage.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ikesim.metrics.traffic_log import DELIVERED, TrafficLog, Window
from ikesim.metrics.traffic_timeline import IntervalRows, IntervalSource
from ikesim.metrics.traffic_windows import GRACE, IN_FLIGHT, attribute, close_windows

__all__ = ["INTERVAL_COLUMNS", "interval_traffic_table", "interval_windows", "interval_outages_table"]

_FLOW_COLUMNS = ("flow", "connection", "child", "direction", "sender", "receiver")
INTERVAL_COLUMNS = (*_FLOW_COLUMNS, "start", "end", "spi", "fate", "packets", "event", "event_id", "where", "sporadic")


def _rows_frame(rows: IntervalRows) -> pd.DataFrame:
    """The rows as columns (fate and where as names)."""
    n = len(rows)
    fates = np.array(rows.fate_names or [""], dtype=object)
    places = np.array(rows.places or [""], dtype=object)
    return pd.DataFrame({
        "flow_code": np.frombuffer(rows.flow, dtype=np.int32, count=n) if n else np.zeros(0, np.int32),
        "t0": np.frombuffer(rows.t0, dtype=np.float64, count=n) if n else np.zeros(0),
        "t1": np.frombuffer(rows.t1, dtype=np.float64, count=n) if n else np.zeros(0),
        "packets": np.frombuffer(rows.packets, dtype=np.int64, count=n) if n else np.zeros(0, np.int64),
        "first": np.frombuffer(rows.first, dtype=np.float64, count=n) if n else np.zeros(0),
        "last": np.frombuffer(rows.last, dtype=np.float64, count=n) if n else np.zeros(0),
        "spi_code": np.frombuffer(rows.spi, dtype=np.int64, count=n) if n else np.zeros(0, np.int64),
        "fate": fates[np.frombuffer(rows.fate, dtype=np.int8, count=n)] if n else np.zeros(0, object),
        "where": places[np.frombuffer(rows.where, dtype=np.int32, count=n)] if n else np.zeros(0, object),
        "offset": np.frombuffer(rows.offset, dtype=np.float64, count=n) if n else np.zeros(0),
        "sporadic": np.frombuffer(rows.sporadic, dtype=np.int8, count=n).astype(bool) if n else np.zeros(0, bool),
    })


def interval_windows(log: TrafficLog, source: IntervalSource, duration: float) -> list[Window]:
    """The windows with their ends (``close_windows`` over intervals; see the module docstring)."""
    memo = source.memo.get(("windows", duration))
    if memo is not None:
        return list(memo)
    rows = source.intervals(duration)
    n = len(rows)
    codes = np.frombuffer(rows.flow, dtype=np.int32, count=n) if n else np.zeros(0, np.int32)
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    last = np.frombuffer(rows.last, dtype=np.float64, count=n)[order] if n else np.zeros(0)
    delivered_code = rows.fate_names.index(DELIVERED) if DELIVERED in rows.fate_names else -1
    delivered = (np.frombuffer(rows.fate, dtype=np.int8, count=n)[order] == delivered_code) if n else np.zeros(0, bool)

    def span(code: int) -> slice:
        return slice(int(np.searchsorted(sorted_codes, code, "left")), int(np.searchsorted(sorted_codes, code, "right")))

    def sends_after(code: int, t: float) -> bool:
        return bool((last[span(code)] >= t).any())

    def first_delivered(code: int, t: float) -> float | None:
        s = span(code)
        hits = order[s][delivered[s] & (last[s] >= t)]
        if not len(hits):
            return None
        model = source.model(code)
        return min(rows.first[i] if rows.first[i] >= t else model.first_at_or_after(rows.t0[i], rows.t1[i], rows.packets[i], t)
                   for i in hits)

    windows = close_windows(log, duration, sends_after, first_delivered)
    source.memo[("windows", duration)] = windows
    return list(windows)


def _cut(df: pd.DataFrame, windows: list[Window], source: IntervalSource, log: TrafficLog) -> pd.DataFrame:
    """Cut each undelivered row where a window's edge falls inside its fate times (see the module docstring)."""
    by_conn: dict[str, list[tuple[float, float]]] = {}
    for w in windows:
        by_conn.setdefault(w.connection, []).append((w.start, w.end + GRACE))
    if not by_conn:
        return df
    conn_of = [f.connection for f in log.flows]
    keep = np.ones(len(df), bool)
    taken: list[int] = []
    parts: list[tuple[float, float, int, float, float]] = []
    fate, offset = df["fate"].to_numpy(), df["offset"].to_numpy()
    codes, t0, t1, n = df["flow_code"].to_numpy(), df["t0"].to_numpy(), df["t1"].to_numpy(), df["packets"].to_numpy()
    first, last = df["first"].to_numpy(), df["last"].to_numpy()
    for i in np.flatnonzero((fate != DELIVERED) & (fate != IN_FLIGHT)):
        edges = by_conn.get(conn_of[codes[i]])
        if not edges:
            continue
        off = offset[i]
        cuts = sorted({c for lo, hi in edges for c in (lo - off, math.nextafter(hi - off, math.inf))
                       if t0[i] < c < t1[i] and first[i] < c <= last[i]})
        if not cuts:
            continue
        keep[i] = False
        model = source.model(int(codes[i]))
        whole = model.exact and model.count(t0[i], t1[i]) == n[i]  # else random losses took some: spread them
        counts = (model.split(t0[i], t1[i], int(n[i]), cuts) if whole or not model.exact
                  else _share(model.split(t0[i], t1[i], model.count(t0[i], t1[i]), cuts), int(n[i])))
        edges_i = [t0[i], *cuts, t1[i]]
        for k, a, b in zip(counts, edges_i, edges_i[1:], strict=False):
            if k:
                if whole or not model.exact:
                    lo, hi = model.bounds(a, b, k)
                else:
                    m = model.count(a, b)
                    lo, hi = model.bounds(a, b, m) if m else (a, b)
                taken.append(i)
                parts.append((a, b, k, lo, hi))
    if not taken:
        return df
    extra = df.iloc[taken].reset_index(drop=True)
    for j, col in enumerate(("t0", "t1", "packets", "first", "last")):
        extra[col] = np.array([p[j] for p in parts], dtype=np.int64 if col == "packets" else np.float64)
    return pd.concat([df[keep], extra], ignore_index=True)


def _share(counts: list[int], n: int) -> list[int]:
    """*n* packets spread over parts in proportion to *counts* (largest remainder): random losses are anywhere."""
    total = sum(counts)
    if total <= 0:
        return [n] + [0] * (len(counts) - 1)
    raw = [n * c / total for c in counts]
    out = [int(x) for x in raw]
    for j in sorted(range(len(raw)), key=lambda j: out[j] - raw[j])[: n - sum(out)]:
        out[j] += 1
    return out


def interval_traffic_table(log: TrafficLog, source: IntervalSource, duration: float) -> pd.DataFrame:
    """One row per flow direction and interval of constant state and fate (see the module docstring)."""
    windows = interval_windows(log, source, duration)
    df = _cut(_rows_frame(source.intervals(duration)), windows, source, log)
    df = df.sort_values(["flow_code", "t0", "first"], kind="stable").reset_index(drop=True)
    probe = pd.DataFrame({"fate": df["fate"].to_numpy(), "flow_code": df["flow_code"].to_numpy(),
                          "time_fate": df["first"].to_numpy() + df["offset"].to_numpy(), "time_sent": df["first"].to_numpy()})
    kinds, idents = attribute(log, probe, windows)
    codes = df["flow_code"].to_numpy()
    out = pd.DataFrame(index=df.index)
    for col in _FLOW_COLUMNS:
        values = np.array([getattr(f, col) for f in log.flows] + [None], dtype=object)
        out[col] = values[codes]
    out["flow"] = out["flow"].astype("int64")
    out["start"], out["end"] = df["first"], df["last"]
    spis, inverse = np.unique(df["spi_code"].to_numpy(), return_inverse=True)
    out["spi"] = np.array([f"{s:08x}" if s >= 0 else "" for s in spis] or [""], dtype=object)[inverse]
    out["fate"], out["packets"] = df["fate"], df["packets"].astype("int64")
    out["event"], out["event_id"] = kinds, idents
    out["where"], out["sporadic"] = df["where"], df["sporadic"]
    return out[list(INTERVAL_COLUMNS)]


def interval_outages_table(traffic: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Maximal runs of undelivered intervals per flow direction (see the module docstring)."""
    t = traffic[(traffic["fate"] != IN_FLIGHT) & ~traffic["sporadic"]]
    t = t.sort_values(["flow", "direction", "start"], kind="stable")
    delivered = (t["fate"] == DELIVERED).to_numpy()
    key = (t["flow"].astype(str) + "/" + t["direction"]).to_numpy()
    n = len(t)
    if not n or delivered.all():
        return pd.DataFrame([], columns=columns)
    new = np.ones(n, bool)
    new[1:] = (key[1:] != key[:-1]) | (delivered[1:] != delivered[:-1])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    start, packets, fates = t["start"].to_numpy(), t["packets"].to_numpy(), t["fate"].to_numpy()
    rows = []
    for a, b in zip(starts, ends, strict=True):
        if delivered[a]:
            continue
        restored = float(start[b]) if b < n and key[b] == key[a] else math.nan
        by_fate: dict[str, int] = {}
        for j in range(a, b):
            by_fate[fates[j]] = by_fate.get(fates[j], 0) + int(packets[j])
        reason = max(by_fate, key=lambda f: by_fate[f])  # the first of the most frequent, as Counter.most_common
        r = t.iloc[a]
        rows.append((int(r["flow"]), r["connection"], r["child"], r["direction"], r["sender"], r["receiver"],
                     float(start[a]), restored, restored - float(start[a]), int(packets[a:b].sum()), reason, r["event"],
                     r["event_id"]))
    return pd.DataFrame(rows, columns=columns)
