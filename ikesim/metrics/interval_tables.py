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

Every step works on whole columns (numpy): the cuts of all rows at once, the parts of constant-rate flows'
rows with ``grid_index`` (the scalar model's float expressions), the runs of the outages by group sums; only
rows of Poisson and on-off flows are split one by one (a Poisson split is a draw, in row order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ikesim.metrics.traffic_log import DELIVERED, TrafficLog, Window
from ikesim.metrics.traffic_timeline import ConstantTimes, IntervalRows, IntervalSource, PacketTimes, grid_index, grid_time
from ikesim.metrics.traffic_windows import GRACE, IN_FLIGHT, attribute, close_windows

__all__ = ["INTERVAL_COLUMNS", "interval_traffic_table", "interval_windows", "interval_outages_table"]

_FLOW_COLUMNS = ("flow", "connection", "child", "direction", "sender", "receiver")
INTERVAL_COLUMNS = (*_FLOW_COLUMNS, "start", "end", "spi", "fate", "packets", "event", "event_id", "where", "sporadic")


def _rows_frame(rows: IntervalRows) -> pd.DataFrame:
    """The rows as columns (fate and where as names)."""
    fates = np.array(rows.fate_names or [""], dtype=object)
    places = np.array(rows.places or [""], dtype=object)
    return pd.DataFrame({
        "flow_code": rows.flow, "t0": rows.t0, "t1": rows.t1, "packets": rows.packets, "first": rows.first,
        "last": rows.last, "spi_code": rows.spi, "fate": fates[rows.fate], "where": places[rows.where],
        "offset": rows.offset, "sporadic": rows.sporadic,
    })


def interval_windows(log: TrafficLog, source: IntervalSource, duration: float) -> list[Window]:
    """The windows with their ends (``close_windows`` over intervals; see the module docstring)."""
    memo = source.memo.get(("windows", duration))
    if memo is not None:
        return list(memo)
    rows = source.intervals(duration)
    order = np.argsort(rows.flow, kind="stable")
    sorted_codes = rows.flow[order]
    last = rows.last[order]
    delivered_code = rows.fate_names.index(DELIVERED) if DELIVERED in rows.fate_names else -1
    delivered = rows.fate[order] == delivered_code

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
        return min(float(rows.first[i]) if rows.first[i] >= t
                   else model.first_at_or_after(float(rows.t0[i]), float(rows.t1[i]), int(rows.packets[i]), t)
                   for i in hits)

    windows = close_windows(log, duration, sends_after, first_delivered)
    source.memo[("windows", duration)] = windows
    return list(windows)


def _cut(df: pd.DataFrame, windows: list[Window], source: IntervalSource, log: TrafficLog) -> pd.DataFrame:
    """Cut each undelivered row where a window's edge falls inside its fate times (see the module docstring).

    The cuts of a row are the edges of its connection's windows moved to send time (``start - offset`` and just
    after ``end + GRACE - offset``) that fall inside its send times, found for every row at once. A row of a
    constant-rate flow is split by ``_split_grids`` (all at once), any other by its model (``_split_one``).
    """
    if not windows:
        return df
    conn_code: dict[str, int] = {}
    for w in windows:
        conn_code.setdefault(w.connection, len(conn_code))
    w_conn = np.array([conn_code[w.connection] for w in windows], dtype=np.int64)
    by_conn = np.argsort(w_conn, kind="stable")
    w_conn = w_conn[by_conn]
    w_lo = np.array([w.start for w in windows], dtype=np.float64)[by_conn]
    w_hi = np.array([w.end for w in windows], dtype=np.float64)[by_conn] + GRACE
    flow_conn = np.array([conn_code.get(f.connection, -1) for f in log.flows] + [-1], dtype=np.int64)
    fate, offset = df["fate"].to_numpy(), df["offset"].to_numpy()
    codes, t0, t1 = df["flow_code"].to_numpy(), df["t0"].to_numpy(), df["t1"].to_numpy()
    n, first, last = df["packets"].to_numpy(), df["first"].to_numpy(), df["last"].to_numpy()
    rows = np.flatnonzero((fate != DELIVERED) & (fate != IN_FLIGHT))
    conn = flow_conn[codes[rows]]
    lo_at, hi_at = np.searchsorted(w_conn, conn, "left"), np.searchsorted(w_conn, conn, "right")
    per_row = hi_at - lo_at
    pair_row = np.repeat(rows, per_row)
    pair_w = np.repeat(lo_at - np.cumsum(per_row) + per_row, per_row) + np.arange(int(per_row.sum()))
    off = offset[pair_row]
    r = np.concatenate([pair_row, pair_row])
    c = np.concatenate([w_lo[pair_w] - off, np.nextafter(w_hi[pair_w] - off, np.inf)])
    inside = (t0[r] < c) & (c < t1[r]) & (first[r] < c) & (c <= last[r])
    r, c = r[inside], c[inside]
    order = np.lexsort((c, r))
    r, c = r[order], c[order]
    fresh = np.ones(len(r), dtype=bool)
    fresh[1:] = (r[1:] != r[:-1]) | (c[1:] != c[:-1])
    r, c = r[fresh], c[fresh]
    if not len(r):
        return df
    cut_rows, at, ncuts = np.unique(r, return_index=True, return_counts=True)
    parts_row = np.repeat(cut_rows, ncuts + 1)
    part_a = np.insert(c, at, t0[cut_rows])
    part_b = np.insert(c, at + ncuts, t1[cut_rows])
    part_j = np.arange(len(parts_row)) - np.repeat(np.cumsum(ncuts + 1) - ncuts - 1, ncuts + 1)
    models = {int(code): source.model(int(code)) for code in np.unique(codes[cut_rows])}
    grid = np.array([isinstance(models[int(code)], ConstantTimes) for code in codes[parts_row]], dtype=bool)
    parts = [_split_grids(parts_row[grid], part_j[grid], part_a[grid], part_b[grid], codes, n, models)]
    other = np.flatnonzero(~grid)
    if len(other):
        parts.append(_split_others(parts_row[other], part_a[other], part_b[other], codes, t0, t1, n, models))
    row, j, a, b, k, lo, hi = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.lexsort((j, row))
    keep = np.ones(len(df), dtype=bool)
    keep[cut_rows] = False
    extra = df.iloc[row[order]].reset_index(drop=True)
    for col, values in (("t0", a), ("t1", b), ("packets", k), ("first", lo), ("last", hi)):
        extra[col] = values[order].astype(np.int64 if col == "packets" else np.float64)
    return pd.concat([df[keep], extra], ignore_index=True)


_Parts = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Parts of cut rows that hold packets: (row, part index, from, until, packets, first send time, last send time)."""


def _split_grids(row: np.ndarray, j: np.ndarray, a: np.ndarray, b: np.ndarray, codes: np.ndarray, n: np.ndarray,
                 models: dict[int, PacketTimes]) -> _Parts:
    """Parts of rows of constant-rate flows, all at once: exact counts (a row whose packets random losses took
    only some of: those spread by ``_share_all``), first and last send times (``ConstantTimes.bounds``)."""
    if not len(row):
        return (row, j, a, b, np.zeros(0, np.int64), a, b)
    grids = [models[int(code)] for code in codes[row]]
    start = np.array([g.start for g in grids], dtype=np.float64)  # type: ignore[attr-defined]
    rate = np.array([g.rate for g in grids], dtype=np.float64)  # type: ignore[attr-defined]
    total = np.array([g.total for g in grids], dtype=np.int64)  # type: ignore[attr-defined]
    at_a = grid_index(start, rate, total, a)
    exact = np.maximum(grid_index(start, rate, total, b) - at_a, 0)
    first_part = np.flatnonzero(j == 0)
    per_row = np.add.reduceat(exact, first_part)
    sizes = np.diff(np.append(first_part, len(row)))
    whole = np.repeat(per_row == n[row[first_part]], sizes)
    k = np.where(whole, exact, _share_all(exact, n[row[first_part]], per_row, first_part, sizes, j))
    lo = np.where(exact > 0, grid_time(start, rate, at_a), a)
    hi = np.where(exact > 0, grid_time(start, rate, at_a + exact - 1), b)
    has = k > 0
    return row[has], j[has], a[has], b[has], k[has], lo[has], hi[has]


def _share_all(counts: np.ndarray, n: np.ndarray, total: np.ndarray, first_part: np.ndarray, sizes: np.ndarray,
               j: np.ndarray) -> np.ndarray:
    """``_share`` of every row at once: row r's ``n[r]`` packets over its parts in proportion to *counts*."""
    n_part, total_part = np.repeat(n, sizes), np.repeat(total, sizes)
    with np.errstate(divide="ignore", invalid="ignore"):
        raw = np.where(total_part > 0, (n_part * counts) / np.maximum(total_part, 1), 0.0)
    out = np.floor(raw).astype(np.int64)
    short = np.repeat(n - np.add.reduceat(out, first_part), sizes)
    row_of = np.repeat(np.arange(len(n)), sizes)
    order = np.lexsort((j, out - raw, row_of))  # per row: the largest remainders first, then in part order
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order)) - np.repeat(first_part, sizes)
    out += rank < short
    none = total_part <= 0  # no packet in any part: all of them in the first
    return np.where(none, np.where(j == 0, n_part, 0), out)


def _split_others(row: np.ndarray, a: np.ndarray, b: np.ndarray, codes: np.ndarray, t0: np.ndarray, t1: np.ndarray,
                  n: np.ndarray, models: dict[int, PacketTimes]) -> _Parts:
    """Parts of rows of the other flows, row by row in row order (a Poisson model draws its splits)."""
    out: list[tuple[int, int, float, float, int, float, float]] = []
    starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
    for s, e in zip(starts, np.append(starts[1:], len(row)), strict=True):
        i = int(row[s])
        model = models[int(codes[i])]
        cuts = [float(x) for x in b[s:e - 1]]
        whole = model.exact and model.count(t0[i], t1[i]) == n[i]  # else random losses took some: spread them
        counts = (model.split(t0[i], t1[i], int(n[i]), cuts) if whole or not model.exact
                  else _share(model.split(t0[i], t1[i], model.count(t0[i], t1[i]), cuts), int(n[i])))
        edges = [t0[i], *cuts, t1[i]]
        for j, (k, x, y) in enumerate(zip(counts, edges, edges[1:], strict=False)):
            if k:
                if whole or not model.exact:
                    lo, hi = model.bounds(x, y, k)
                else:
                    m = model.count(x, y)
                    lo, hi = model.bounds(x, y, m) if m else (x, y)
                out.append((i, j, x, y, k, lo, hi))
    cols = list(zip(*out, strict=True)) if out else [()] * 7
    return tuple(np.array(col, dtype=dt) for col, dt in zip(  # type: ignore[return-value]
        cols, (np.int64, np.int64, np.float64, np.float64, np.int64, np.float64, np.float64), strict=True))


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
    """Maximal runs of undelivered intervals per flow direction (see the module docstring).

    A run's reason is the fate with the most packets in it, the first of them in the run on a tie (as
    ``Counter.most_common``); everything else comes from its first interval.
    """
    t = traffic[(traffic["fate"] != IN_FLIGHT) & ~traffic["sporadic"]]
    t = t.sort_values(["flow", "direction", "start"], kind="stable")
    delivered = (t["fate"] == DELIVERED).to_numpy()
    n = len(t)
    if not n or delivered.all():
        return pd.DataFrame([], columns=columns)
    flow = t["flow"].to_numpy()
    direction = pd.factorize(t["direction"].to_numpy())[0]
    other = np.ones(n, bool)  # a row of another flow direction than the row before
    other[1:] = (flow[1:] != flow[:-1]) | (direction[1:] != direction[:-1])
    new = other.copy()
    new[1:] |= delivered[1:] != delivered[:-1]
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    lost = ~delivered[starts]
    starts, ends = starts[lost], ends[lost]
    start, packets = t["start"].to_numpy(), t["packets"].to_numpy().astype(np.int64)
    summed = np.concatenate([[0], np.cumsum(packets)])
    follows = ends < n
    follows[follows] = ~other[ends[follows]]  # the next row is this direction's next delivered one
    restored = np.full(len(starts), np.nan)
    restored[follows] = start[ends[follows]]
    run = np.full(n, -1, dtype=np.int64)
    sizes = ends - starts
    member = np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(int(sizes.sum()))
    run[member] = np.repeat(np.arange(len(starts)), sizes)
    fates, fate_names = pd.factorize(t["fate"].to_numpy()[member])
    key = run[member] * len(fate_names) + fates
    groups, first_at, inverse = np.unique(key, return_index=True, return_inverse=True)
    sums = np.zeros(len(groups), dtype=np.int64)
    np.add.at(sums, inverse, packets[member])
    group_run = groups // len(fate_names)
    best = np.lexsort((first_at, -sums, group_run))  # per run: the most packets, then the first seen
    winner = best[np.r_[True, group_run[best][1:] != group_run[best][:-1]]]
    reason = np.asarray(fate_names, dtype=object)[groups[winner] % len(fate_names)]
    head = t.iloc[starts]
    begin = start[starts].astype(np.float64)
    out = {
        "flow": head["flow"].to_numpy().astype(np.int64),
        **{col: head[col].to_numpy(dtype=object) for col in ("connection", "child", "direction", "sender", "receiver")},
        "start": begin, "restored": restored, "time_to_restore": restored - begin,
        "packets": summed[ends] - summed[starts],
        "reason": reason,
        **{col: head[col].to_numpy(dtype=object) for col in ("event", "event_id")},
    }
    return pd.DataFrame({col: out[col] for col in columns})
