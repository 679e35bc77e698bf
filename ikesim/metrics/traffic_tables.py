"""User traffic as tables: per packet, outages, and the summary's loss and time-to-restore figures.

Attribution: a packet that was not delivered is attributed to the control event whose window holds the
time it was dropped (the latest one started, if windows overlap); a window counts until ``GRACE`` s
after it closed, for packets already in flight. Windows (``ikesim.metrics.traffic_log.Window``):

- ``child_rekey``: from the rekey's ``RekeyStarted`` until the old SA is removed (on either peer);
- ``ike_rekey``: from ``RekeyStarted`` until the old IKE_SA is deleted;
- ``nat_rebind`` / ``nat_reboot``: from the NAT event until the tunnel delivers a packet again in every
  direction that sends.

An outage is a maximal run of undelivered packets of one flow direction; it lasts from the first
undelivered packet's send time to the next delivered packet's send time (the time to restore; NaN when
nothing was delivered again before the run ended). Its reason is its most frequent drop reason and its
event the one its first packet is attributed to.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from ikesim.metrics.stats import percentiles
from ikesim.metrics.traffic_log import DELIVERED, TrafficLog, Window

__all__ = ["GRACE", "TRAFFIC_COLUMNS", "traffic_table", "outages_table", "traffic_summary", "window_table"]

GRACE = 1.0
"""Seconds after a window closes during which drops still count for it (packets in flight)."""

NONE = "none"
IN_FLIGHT = "in_flight"
"""The fate of a packet still on its way when the run ended: neither delivered nor lost."""


def _columns(log: TrafficLog) -> pd.DataFrame:
    """Per packet, in the order sent: flow code, times, size, SPI and fate (without attribution)."""
    n = len(log)
    fate_codes = np.frombuffer(log.fate, dtype=np.int8, count=n) if n else np.zeros(0, np.int8)
    names = np.array([*log.fate_names, IN_FLIGHT], dtype=object)
    fate = names[np.where(fate_codes < 0, len(log.fate_names), fate_codes)]
    places = np.array(log.places or [""], dtype=object)
    where = places[np.frombuffer(log.fate_at, dtype=np.int32, count=n)] if n else np.zeros(0, object)
    spi = np.frombuffer(log.spi, dtype=np.int64, count=n) if n else np.zeros(0, np.int64)
    return pd.DataFrame({
        "packet": np.arange(1, n + 1, dtype=np.int64),
        "flow_code": np.frombuffer(log.flow, dtype=np.int32, count=n) if n else np.zeros(0, np.int32),
        "time_sent": np.frombuffer(log.sent, dtype=np.float64, count=n) if n else np.zeros(0),
        "size": np.frombuffer(log.size, dtype=np.int32, count=n) if n else np.zeros(0, np.int32),
        "spi": [f"{s:08x}" if s >= 0 else "" for s in spi],
        "fate": fate,
        "time_fate": np.frombuffer(log.fate_time, dtype=np.float64, count=n) if n else np.zeros(0),
        "where": where,
    })


def _closed_windows(log: TrafficLog, df: pd.DataFrame, duration: float) -> list[Window]:
    """The windows with their ends: open rekeys end with the run; a NAT rebind when every direction delivers again."""
    out = []
    delivered = df[df["fate"] == DELIVERED]
    flows = log.flows
    for w in log.windows:
        end = w.end
        if w.kind in ("nat_rebind", "nat_reboot"):
            codes = [i for i, f in enumerate(flows) if f.connection == w.connection]
            ends = []
            for code in codes:
                sent = df["time_sent"].to_numpy()[df["flow_code"].to_numpy() == code]
                if not len(sent) or not (sent >= w.start).any():
                    continue  # this direction sent nothing after the rebind
                after = delivered["time_sent"][(delivered["flow_code"] == code) & (delivered["time_sent"] >= w.start)]
                ends.append(float(after.iloc[0]) if len(after) else duration)
            end = max(ends) if ends else w.start
        elif math.isnan(end):
            end = duration
        out.append(Window(w.connection, w.kind, w.ident, w.start, end))
    return out


def _attribute(log: TrafficLog, df: pd.DataFrame, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
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


_FLOW_COLUMNS = ("flow", "connection", "child", "direction", "sender", "receiver")
TRAFFIC_COLUMNS = ("packet", *_FLOW_COLUMNS, "time_sent", "size", "spi", "fate", "time_fate", "where", "event", "event_id")


def traffic_table(log: TrafficLog, duration: float) -> pd.DataFrame:
    """One row per user packet: flow, direction, times, size, SPI, fate (``delivered`` or why not) and event."""
    df = _columns(log)
    codes = df["flow_code"].to_numpy()
    for col in _FLOW_COLUMNS:
        values = np.array([getattr(f, col) for f in log.flows] + [None], dtype=object)
        df[col] = values[codes]
    df["flow"] = df["flow"].astype("int64")
    kinds, idents = _attribute(log, df, _closed_windows(log, df, duration))
    df["event"] = kinds
    df["event_id"] = idents
    return df[list(TRAFFIC_COLUMNS)]


def window_table(log: TrafficLog, duration: float) -> pd.DataFrame:
    """The control windows with their ends (``_closed_windows``)."""
    df = _columns(log)
    ws = _closed_windows(log, df, duration)
    return pd.DataFrame({"connection": [w.connection for w in ws], "event": [w.kind for w in ws],
                         "event_id": [w.ident for w in ws], "start": [w.start for w in ws], "end": [w.end for w in ws]})


def outages_table(traffic: pd.DataFrame) -> pd.DataFrame:
    """Maximal runs of undelivered packets per flow direction (see the module docstring)."""
    rows: list[tuple[Any, ...]] = []
    done = traffic[traffic["fate"] != IN_FLIGHT]
    for (flow, direction), g in done.groupby(["flow", "direction"], sort=True):
        delivered = (g["fate"] == DELIVERED).to_numpy()
        if delivered.all():
            continue
        sent = g["time_sent"].to_numpy()
        fates, events, ids = g["fate"].to_numpy(), g["event"].to_numpy(), g["event_id"].to_numpy()
        first = g.iloc[0]
        # run boundaries: where delivered flips
        change = np.flatnonzero(np.diff(delivered.astype(np.int8)) != 0) + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [len(g)]))
        for a, b in zip(starts, ends, strict=True):
            if delivered[a]:
                continue
            restored = float(sent[b]) if b < len(g) else math.nan
            reason = Counter(fates[a:b]).most_common(1)[0][0]
            rows.append((int(flow), first["connection"], first["child"], direction, first["sender"], first["receiver"],
                         float(sent[a]), restored, restored - float(sent[a]), int(b - a), reason, events[a], ids[a]))
    return pd.DataFrame(rows, columns=["flow", "connection", "child", "direction", "sender", "receiver", "start",
                                       "restored", "time_to_restore", "packets", "reason", "event", "event_id"])


def traffic_summary(traffic: pd.DataFrame, outages: pd.DataFrame, windows: pd.DataFrame) -> dict[str, Any]:
    """Packets sent, delivered and lost by reason and by event; loss per CHILD rekey; time to restore by event kind."""
    lost = traffic[(traffic["fate"] != DELIVERED) & (traffic["fate"] != IN_FLIGHT)]
    per_rekey: dict[str, Any] = {}
    rekeys = windows[windows["event"] == "child_rekey"]
    if len(rekeys):
        counts = lost[lost["event"] == "child_rekey"].groupby("event_id").size()
        losses = [int(counts.get(ident, 0)) for ident in rekeys["event_id"]]
        per_rekey = {"rekeys": len(losses), "mean": float(np.mean(losses)), "p95": float(np.percentile(losses, 95)),
                     "max": max(losses)}
    restore: dict[str, Any] = {}
    for kind, g in outages.groupby("event", sort=True):
        ttr = [float(x) for x in g["time_to_restore"].dropna()]
        restore[str(kind)] = {"outages": len(g), **percentiles(ttr)}
    return {
        "sent": len(traffic),
        "delivered": int((traffic["fate"] == DELIVERED).sum()),
        "lost": len(lost),
        "in_flight": int((traffic["fate"] == IN_FLIGHT).sum()),
        "lost_by_reason": {str(k): int(v) for k, v in lost["fate"].value_counts().sort_index().items()},
        "lost_by_event": {str(k): int(v) for k, v in lost["event"].value_counts().sort_index().items()},
        "loss_per_child_rekey": per_rekey,
        "time_to_restore": restore,
        "outages": len(outages),
    }
