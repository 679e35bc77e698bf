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
from typing import Any

import numpy as np
import pandas as pd

from ikesim.metrics.interval_tables import interval_outages_table, interval_traffic_table, interval_windows
from ikesim.metrics.stats import percentiles
from ikesim.metrics.traffic_log import DELIVERED, TrafficLog, Window
from ikesim.metrics.traffic_windows import GRACE, IN_FLIGHT, NONE, attribute, packet_windows

__all__ = ["GRACE", "NONE", "IN_FLIGHT", "TRAFFIC_COLUMNS", "traffic_table", "outages_table", "traffic_summary", "window_table",
           "closed_windows"]

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
        "spi": _hex_spis(spi),
        "fate": fate,
        "time_fate": np.frombuffer(log.fate_time, dtype=np.float64, count=n) if n else np.zeros(0),
        "where": where,
    })


def _hex_spis(spi: np.ndarray) -> np.ndarray | list[str]:
    """Each SPI as 8 hex digits ("" for -1: none), formatted once per distinct SPI (an empty list when none)."""
    if not len(spi):
        return []  # as before: an empty list makes the column's dtype what the golden digests hold
    values, inverse = np.unique(spi, return_inverse=True)
    return np.array([f"{s:08x}" if s >= 0 else "" for s in values.tolist()] or [""], dtype=object)[inverse]


def closed_windows(log: TrafficLog, duration: float) -> list[Window]:
    """The windows with their ends: open rekeys end with the run; a NAT rebind when every direction delivers again.

    Computed once per run and shared by ``traffic_table`` and ``window_table`` (``Results`` passes it to both).
    """
    if log.fleet is not None:
        return interval_windows(log, log.fleet, duration)
    return packet_windows(log, duration)


_FLOW_COLUMNS = ("flow", "connection", "child", "direction", "sender", "receiver")
OUTAGE_COLUMNS = [*_FLOW_COLUMNS, "start", "restored", "time_to_restore", "packets", "reason", "event", "event_id"]
TRAFFIC_COLUMNS = ("packet", *_FLOW_COLUMNS, "time_sent", "size", "spi", "fate", "time_fate", "where", "event", "event_id")


def traffic_table(log: TrafficLog, duration: float, windows: list[Window] | None = None) -> pd.DataFrame:
    """One row per user packet: flow, direction, times, size, SPI, fate (``delivered`` or why not) and event.

    Fleet mode: one row per flow direction and interval of constant state (``ikesim.metrics.interval_tables``).
    *windows*: ``closed_windows(log, duration)`` if already computed.
    """
    if log.fleet is not None:
        return interval_traffic_table(log, log.fleet, duration)
    df = _columns(log)
    codes = df["flow_code"].to_numpy()
    for col in _FLOW_COLUMNS:
        values = np.array([getattr(f, col) for f in log.flows] + [None], dtype=object)
        df[col] = values[codes]
    df["flow"] = df["flow"].astype("int64")
    kinds, idents = attribute(log, df, closed_windows(log, duration) if windows is None else windows)
    df["event"] = kinds
    df["event_id"] = idents
    return df[list(TRAFFIC_COLUMNS)]


def window_table(log: TrafficLog, duration: float, windows: list[Window] | None = None) -> pd.DataFrame:
    """The control windows with their ends (``closed_windows``, or *windows* if already computed)."""
    ws = closed_windows(log, duration) if windows is None else windows
    return pd.DataFrame({"connection": [w.connection for w in ws], "event": [w.kind for w in ws],
                         "event_id": [w.ident for w in ws], "start": [w.start for w in ws], "end": [w.end for w in ws]})


def outages_table(traffic: pd.DataFrame) -> pd.DataFrame:
    """Maximal runs of undelivered packets per flow direction (see the module docstring; fleet mode: of intervals).

    Whole columns at once: rows in (flow, direction) order, packet order within; a run's reason is its most
    frequent fate, the first seen on a tie (``Counter.most_common``); connection, child, sender and receiver come
    from the flow direction's first packet.
    """
    if "packets" in traffic.columns:
        return interval_outages_table(traffic, OUTAGE_COLUMNS)
    fate_all = traffic["fate"].to_numpy(dtype=object)
    done = np.flatnonzero(fate_all != IN_FLIGHT)
    if not len(done):
        return pd.DataFrame([], columns=OUTAGE_COLUMNS)
    flow = traffic["flow"].to_numpy()[done]
    direction, _names = pd.factorize(traffic["direction"].to_numpy(dtype=object)[done], sort=True)
    perm = np.lexsort((direction, flow))  # stable: packet order within each flow direction
    order, flow, direction = done[perm], flow[perm], direction[perm]
    fates = fate_all[order]
    delivered = fates == DELIVERED
    n = len(order)
    other = np.ones(n, dtype=bool)  # the first row of a flow direction
    other[1:] = (flow[1:] != flow[:-1]) | (direction[1:] != direction[:-1])
    new = other.copy()
    new[1:] |= delivered[1:] != delivered[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    keep = ~delivered[starts]
    if not keep.any():
        return pd.DataFrame([], columns=OUTAGE_COLUMNS)
    group_first = np.maximum.accumulate(np.where(other, np.arange(n), 0))
    starts, ends = starts[keep], ends[keep]
    sent = traffic["time_sent"].to_numpy()[order]
    follows = ends < n
    follows[follows] = ~other[ends[follows]]  # the next row is this direction's next delivered packet
    restored = np.full(len(starts), math.nan)
    restored[follows] = sent[ends[follows]]
    sizes = ends - starts
    member = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
    run_of = np.repeat(np.arange(len(starts)), sizes)
    codes, fate_names = pd.factorize(fates[member])
    key = run_of * len(fate_names) + codes
    groups, first_at, counts = np.unique(key, return_index=True, return_counts=True)
    group_run = groups // len(fate_names)
    best = np.lexsort((first_at, -counts, group_run))  # per run: the most packets, then the first seen
    winner = best[np.r_[True, group_run[best][1:] != group_run[best][:-1]]]
    reason = np.asarray(fate_names, dtype=object)[groups[winner] % len(fate_names)].tolist()
    head, first = order[starts], order[group_first[starts]]
    def at(column: str, rows: np.ndarray) -> list[Any]:
        return traffic[column].iloc[rows].tolist()

    begin = sent[starts].tolist()
    rows = list(zip(flow[starts].tolist(), at("connection", first), at("child", first), at("direction", head),
                    at("sender", first), at("receiver", first), begin, restored.tolist(),
                    [r - b for r, b in zip(restored.tolist(), begin, strict=True)], sizes.tolist(), reason,
                    at("event", head), at("event_id", head), strict=True))
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
