"""User traffic as tables: per packet, outages, and the summary's loss and time-to-restore figures.

Attribution: a packet that was not delivered is attributed to the control event whose window holds the
time it was dropped (the latest one started, if windows overlap); a window counts until ``GRACE`` s
after it closed, for packets already in flight. Windows (``ikesim.metrics.traffic_log.Window``):

- ``child_rekey``: from the rekey's ``RekeyStarted`` until the old SA is removed (on either peer);
- ``ike_rekey``: from ``RekeyStarted`` until the old IKE_SA is deleted;
- ``nat_rebind`` / ``nat_reboot``: from the NAT event until the tunnel delivers a packet again in every
  direction that sends;
- ``handover``: from the moment an interface carrying the tunnel goes down until the same (MOBIKE, a §2.23
  follow or a new IKE_SA restored it).

An outage is a maximal run of undelivered packets of one flow direction; it lasts from the first
undelivered packet's send time to the next delivered packet's send time (the time to restore; NaN when
nothing was delivered again before the run ended). Its reason is its most frequent drop reason and its
event the one its first packet is attributed to.

Fleet mode (``data_plane: {mode: fleet}``) has no per-packet columns: the same tables come from intervals of
constant state (``ikesim.metrics.interval_tables``), with the same definitions.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from ikesim.metrics.interval_tables import interval_outages_table, interval_traffic_table, interval_windows
from ikesim.metrics.stats import percentiles
from ikesim.metrics.traffic_log import DELIVERED, TrafficLog, Window
from ikesim.metrics.traffic_windows import GRACE, IN_FLIGHT, NONE, attribute, close_windows

__all__ = ["GRACE", "NONE", "IN_FLIGHT", "TRAFFIC_COLUMNS", "traffic_table", "outages_table", "traffic_summary", "window_table"]

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
    delivered = df[df["fate"] == DELIVERED]

    def sends_after(code: int, t: float) -> bool:
        sent = df["time_sent"].to_numpy()[df["flow_code"].to_numpy() == code]
        return bool(len(sent)) and bool((sent >= t).any())

    def first_delivered(code: int, t: float) -> float | None:
        after = delivered["time_sent"][(delivered["flow_code"] == code) & (delivered["time_sent"] >= t)]
        return float(after.iloc[0]) if len(after) else None

    return close_windows(log, duration, sends_after, first_delivered)


_FLOW_COLUMNS = ("flow", "connection", "child", "direction", "sender", "receiver")
OUTAGE_COLUMNS = [*_FLOW_COLUMNS, "start", "restored", "time_to_restore", "packets", "reason", "event", "event_id"]
TRAFFIC_COLUMNS = ("packet", *_FLOW_COLUMNS, "time_sent", "size", "spi", "fate", "time_fate", "where", "event", "event_id")


def traffic_table(log: TrafficLog, duration: float) -> pd.DataFrame:
    """One row per user packet: flow, direction, times, size, SPI, fate (``delivered`` or why not) and event.

    Fleet mode: one row per flow direction and interval of constant state (``ikesim.metrics.interval_tables``).
    """
    if log.fleet is not None:
        return interval_traffic_table(log, log.fleet, duration)
    df = _columns(log)
    codes = df["flow_code"].to_numpy()
    for col in _FLOW_COLUMNS:
        values = np.array([getattr(f, col) for f in log.flows] + [None], dtype=object)
        df[col] = values[codes]
    df["flow"] = df["flow"].astype("int64")
    kinds, idents = attribute(log, df, _closed_windows(log, df, duration))
    df["event"] = kinds
    df["event_id"] = idents
    return df[list(TRAFFIC_COLUMNS)]


def window_table(log: TrafficLog, duration: float) -> pd.DataFrame:
    """The control windows with their ends (``_closed_windows``)."""
    if log.fleet is not None:
        ws = interval_windows(log, log.fleet, duration)
    else:
        ws = _closed_windows(log, _columns(log), duration)
    return pd.DataFrame({"connection": [w.connection for w in ws], "event": [w.kind for w in ws],
                         "event_id": [w.ident for w in ws], "start": [w.start for w in ws], "end": [w.end for w in ws]})


def outages_table(traffic: pd.DataFrame) -> pd.DataFrame:
    """Maximal runs of undelivered packets per flow direction (see the module docstring; fleet mode: of intervals)."""
    if "packets" in traffic.columns:
        return interval_outages_table(traffic, OUTAGE_COLUMNS)
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
    return pd.DataFrame(rows, columns=OUTAGE_COLUMNS)


def traffic_summary(traffic: pd.DataFrame, outages: pd.DataFrame, windows: pd.DataFrame) -> dict[str, Any]:
    """Packets sent, delivered and lost by reason and by event; loss per CHILD rekey; time to restore by event kind."""
    lost = traffic[(traffic["fate"] != DELIVERED) & (traffic["fate"] != IN_FLIGHT)]
    per_rekey: dict[str, Any] = {}
    rekeys = windows[windows["event"] == "child_rekey"]
    if len(rekeys):
        counts = _count_by(lost[lost["event"] == "child_rekey"], "event_id")
        losses = counts.reindex(rekeys["event_id"].to_numpy(), fill_value=0).to_numpy().astype(np.int64).tolist()
        per_rekey = {"rekeys": len(losses), "mean": float(np.mean(losses)), "p95": float(np.percentile(losses, 95)),
                     "max": max(losses)}
    restore: dict[str, Any] = {}
    for kind, g in outages.groupby("event", sort=True):
        ttr = [float(x) for x in g["time_to_restore"].dropna()]
        restore[str(kind)] = {"outages": len(g), **percentiles(ttr)}
    return {
        "sent": _packets(traffic),
        "delivered": _packets(traffic[traffic["fate"] == DELIVERED]),
        "lost": _packets(lost),
        "in_flight": _packets(traffic[traffic["fate"] == IN_FLIGHT]),
        "lost_by_reason": {str(k): int(v) for k, v in _count_by(lost, "fate").sort_index().items()},
        "lost_by_event": {str(k): int(v) for k, v in _count_by(lost, "event").sort_index().items()},
        "loss_per_child_rekey": per_rekey,
        "time_to_restore": restore,
        "outages": len(outages),
    }


def _packets(traffic: pd.DataFrame) -> int:
    """Packets in a traffic table: its rows, or in fleet mode the sum of its intervals' ``packets``."""
    return int(traffic["packets"].sum()) if "packets" in traffic.columns else len(traffic)


def _count_by(traffic: pd.DataFrame, column: str) -> pd.Series:
    """Packets per value of *column* (per row, or summed ``packets`` in fleet mode); values without any left out."""
    if "packets" in traffic.columns:
        counts = traffic.groupby(column, sort=True)["packets"].sum()
        return counts[counts > 0]
    return traffic[column].value_counts()
