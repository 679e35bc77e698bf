"""Figures of a run or a sweep, drawn from DataFrames only (DESIGN.md "Metrics are events").

Every function takes the tables ``Results`` exposes (or reads back from a results directory) and
returns a ``matplotlib.figure.Figure`` made without pyplot (no global backend is set), so nothing here needs a display
or a ``Simulation``:

* ``sa_timeline(sas, events)``: one band per tunnel (connection), one bar per SA per node;
* ``rekey_latency(rekey_latencies)``: ECDF of rekey latency per kind and side, in ms;
* ``sweep_figure(table, x, y, hue)``: mean and 95 % t confidence interval over replications;
* ``cpu(cpu_table)``: CPU utilisation and queue length per node over time.

Times in the tables are simulated seconds; latencies are seconds and are drawn in ms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy.stats import t as student_t

from ikesim.scenario.durations import parse_duration

__all__ = ["sa_timeline", "rekey_latency", "sweep_figure", "sweep_stats", "cpu", "rekey_latencies_from_events",
           "sweep_axis", "t_quantile", "time_unit", "write_run_plots", "write_sweep_plot"]

_KIND_COLOURS = {"ike": ("#1f4e9c", "#6f95d6"), "child": ("#d9730d", "#f4b26b")}
"""Two shades per SA kind; consecutive SAs of one lane alternate so their boundaries show."""
_KIND_LABEL = {"ike": "IKE_SA", "child": "CHILD_SA"}
_MARKS: dict[str, dict[str, Any]] = {
    "rekey": {"marker": "|", "color": "black", "s": 120, "linewidths": 1.6, "label": "rekeyed (new SA installed)"},
    "RekeyCollision": {"marker": "X", "color": "#d62728", "s": 110, "edgecolors": "white", "linewidths": 0.6,
                       "label": "rekey collision (RekeyCollision)"},
    "ExchangeCollision": {"marker": "D", "color": "#9467bd", "s": 60, "edgecolors": "white", "linewidths": 0.6,
                          "label": "exchange collision (ExchangeCollision)"},
    "Retransmitted": {"marker": "v", "color": "#2ca02c", "s": 55, "edgecolors": "black", "linewidths": 0.5,
                      "label": "retransmission (Retransmitted)"},
}
_SIDES = ("initiator", "responder")


def time_unit(span: float) -> tuple[str, float]:
    """The unit to draw a time axis of *span* seconds in, and the factor to divide seconds by."""
    if span <= 600:
        return "s", 1.0
    if span <= 3 * 3600:
        return "min", 60.0
    return "h", 3600.0


def _num(s: pd.Series) -> pd.Series:
    return pd.to_numeric(s, errors="coerce")


# --- SA timeline ----------------------------------------------------------------------------------


def _pack(intervals: list[tuple[float, float]]) -> list[int]:
    """Greedy interval packing: the slot of each interval so that no two in a slot overlap (input sorted by start)."""
    ends: list[float] = []
    slots = []
    for start, end in intervals:
        for i, e in enumerate(ends):
            if e <= start:
                ends[i] = end
                slots.append(i)
                break
        else:
            ends.append(end)
            slots.append(len(ends) - 1)
    return slots


def _node_order(sas: pd.DataFrame) -> list[str]:
    """The tunnel's nodes, the initiator of its first IKE_SA first."""
    nodes = sorted(set(sas["node"]))
    ike = sas[(sas["kind"] == "ike") & (sas["initiator"] == True)].sort_values("created")  # noqa: E712
    if len(ike):
        first = ike["node"].iloc[0]
        nodes.remove(first)
        nodes.insert(0, first)
    return nodes


def _event_kind(row: Any) -> str:
    """Which SA lane an event belongs on: ``kind`` if it has one, else guessed from its SPI or purpose."""
    kind = getattr(row, "kind", None)
    if isinstance(kind, str) and kind in _KIND_COLOURS:
        return kind
    spi = getattr(row, "spi", None)
    if isinstance(spi, str) and spi:
        return "child" if len(spi) <= 8 else "ike"
    purpose = getattr(row, "purpose", None)
    return "child" if isinstance(purpose, str) and "child" in purpose else "ike"


def sa_timeline(
    sas: pd.DataFrame, events: pd.DataFrame, tunnels: Sequence[str] | None = None, max_tunnels: int = 20,
    *, start: float | None = None, end: float | None = None, title: str | None = None, spis: bool = False,
) -> Figure:
    """One band per tunnel (connection) with a bar per SA from its creation to its deletion (or *end*).

    A band has a lane per SA kind and node (IKE_SAs above CHILD_SAs, the tunnel's initiator first);
    SAs that overlap in a lane (old and new during a rekey, redundant SAs of a collision) are stacked.
    Bars shorter than 0.4 % of the axis are widened to stay visible. Rekeys (``rekeyed_at``),
    collisions and retransmissions are marked in a strip above their lane's bars. *start* and *end* set the time
    window (default: from 0 to the last time in the tables), to zoom into a race; *spis* writes each SA's inbound SPI
    on its bar.
    Bars carry the gid ``sa-bar``; marker collections carry their key in ``_MARKS`` as gid.
    """
    all_tunnels = sorted(str(c) for c in sas["connection"].dropna().unique())
    shown = [t for t in (tunnels if tunnels is not None else all_tunnels) if t in set(all_tunnels)][:max_tunnels]
    times = [_num(sas["created"]).max(), _num(sas["deleted_at"]).max()]
    if len(events):
        times.append(_num(events["time"]).max())
    last = float(end) if end is not None else max((t for t in times if pd.notna(t)), default=1.0)
    first = float(start) if start is not None else min(0.0, float(_num(sas["created"]).min())) if len(sas) else 0.0
    if last <= first:
        raise ValueError(f"sa_timeline: the window must end after it starts (start {first:g} s, end {last:g} s)")
    unit, div = time_unit(last - first)
    min_width = 0.004 * (last - first) / div

    lanes: dict[tuple[str, str, str], tuple[float, float]] = {}  # (tunnel, kind, node) -> (y bottom, height)
    ytick_major, ytick_minor, minor_labels, tops = [], [], [], []
    lane_h, y = 1.0, 0.0
    for tunnel in shown:
        sub = sas[sas["connection"] == tunnel]
        top = y
        tops.append(top)
        for kind in ("ike", "child"):
            for node in _node_order(sub):
                lanes[(tunnel, kind, node)] = (y, lane_h)
                ytick_minor.append(y + lane_h / 2)
                minor_labels.append(f"{_KIND_LABEL[kind]} @{node}")
                y += lane_h
        ytick_major.append((top + y) / 2)
        y += 0.6  # gap between tunnels

    n_lanes = max(1, len(lanes))
    few = len(shown) <= 6
    fig = Figure(figsize=(12, min(2.2 + (0.32 if few else 0.14) * n_lanes, 40)), layout="constrained")
    ax = fig.add_subplot()
    for (tunnel, kind, node), (y0, h) in lanes.items():
        sub = sas[(sas["connection"] == tunnel) & (sas["kind"] == kind) & (sas["node"] == node)].sort_values("created")
        if sub.empty:
            continue
        starts = _num(sub["created"]).to_numpy()
        ends = _num(sub["deleted_at"]).fillna(last).to_numpy()
        slots = _pack(list(zip(starts, ends, strict=True)))
        n_slots = max(slots) + 1
        sh = h * 0.66 / n_slots
        labels = ([str(v) if pd.notna(v) else None for v in sub["spi_in"]] if spis and "spi_in" in sub.columns
                  else [None] * len(sub))
        for i, (s, e, slot, rekeyed, spi) in enumerate(zip(starts, ends, slots, _num(sub["rekeyed_at"]), labels,
                                                           strict=True)):
            yb = y0 + h * 0.3 + slot * sh
            ax.broken_barh([(s / div, max((e - s) / div, min_width))], (yb, sh * 0.9),
                           facecolors=_KIND_COLOURS[kind][i % 2], edgecolors="black", linewidth=0.3, gid="sa-bar")
            if spi is not None and e > first and s < last:
                ax.text(max(s, first) / div + min_width / 2, yb + sh * 0.45, spi, fontsize=7, va="center",
                        color="white" if i % 2 == 0 else "black",
                        clip_on=True, gid="sa-spi")
            if pd.notna(rekeyed):
                m = _MARKS["rekey"]
                ax.scatter([rekeyed / div], [yb + sh * 0.45], marker=m["marker"], color=m["color"], s=m["s"] * min(1, sh),
                           linewidths=m["linewidths"], zorder=4, gid="rekey")

    present = []
    for name in ("RekeyCollision", "ExchangeCollision", "Retransmitted"):
        ev = events[events["event"] == name] if len(events) else events
        xs, ys = [], []
        for row in ev.itertuples(index=False):
            lane = lanes.get((str(getattr(row, "connection", "")), _event_kind(row), str(row.node)))
            if lane is not None:
                xs.append(float(row.time) / div)
                ys.append(lane[0] + lane[1] * 0.15)  # the strip above the lane's bars
        if xs:
            m = {k: v for k, v in _MARKS[name].items() if k != "label"}
            ax.scatter(xs, ys, zorder=5, gid=name, **m)
            present.append(name)

    ax.set_ylim(y, -0.3)  # first tunnel on top
    ax.set_yticks(ytick_major, shown, fontsize=10, fontweight="bold")
    ax.tick_params(axis="y", which="major", length=0, pad=110 if few else 4)
    if few:
        ax.set_yticks(ytick_minor, minor_labels, minor=True, fontsize=8)
        ax.tick_params(axis="y", which="minor", length=0)
    for top in tops[1:]:
        ax.axhline(top - 0.3, color="0.6", linewidth=0.8)
    ax.set_xlim(first / div, last / div)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_ylabel("" if few else "tunnel (connection): IKE_SA lanes above CHILD_SA lanes, initiator node first")
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)
    more = f", {len(shown)} of {len(all_tunnels)} tunnels" if len(shown) < len(all_tunnels) else ""
    ax.set_title((title or "SA lifetimes per tunnel") + more)
    handles: list[Any] = [Patch(facecolor=_KIND_COLOURS[k][0], edgecolor="black", label=f"{_KIND_LABEL[k]} lifetime (shades alternate)")
                          for k in ("ike", "child")]
    for name in ["rekey", *present]:
        m = _MARKS[name]
        handles.append(Line2D([], [], linestyle="", marker=m["marker"], color=m["color"], markersize=9,
                              markeredgecolor=m.get("edgecolors", m["color"]), label=m["label"]))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 3), fontsize=9, frameon=False)
    return fig


# --- rekey latency --------------------------------------------------------------------------------


def rekey_latencies_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """The ``Results.rekey_latencies`` table rebuilt from the events table (for results directories without it).

    Same rule as ``Results``: from the initiator's first ``RekeyStarted`` for an SA to its
    ``RekeyCompleted(initiator=True)``, and to the peer's ``RekeyCompleted(initiator=False)`` for ``old_spi_out``.
    """
    cols = ["node", "kind", "old_spi", "triggered", "initiator_latency", "responder_latency"]
    if events.empty or "old_spi" not in events.columns:
        return pd.DataFrame(columns=cols)
    started: dict[tuple[str, str, str], tuple[float, str]] = {}
    done: dict[tuple[str, str, bool], tuple[float, str]] = {}
    sub = events[events["event"].isin(["RekeyStarted", "RekeyCompleted"])]
    for row in sub.itertuples(index=False):
        if row.event == "RekeyStarted":
            started.setdefault((row.node, row.kind, row.old_spi), (float(row.time), row.old_spi_out))
        else:
            done.setdefault((row.kind, row.old_spi, bool(row.initiator)), (float(row.time), row.node))
    rows = []
    for (node, kind, old), (t0, old_out) in started.items():
        ini = done.get((kind, old, True))
        resp = done.get((kind, old_out, False))
        rows.append({"node": node, "kind": kind, "old_spi": old, "triggered": t0,
                     "initiator_latency": (ini[0] - t0) if ini and ini[1] == node else None,
                     "responder_latency": (resp[0] - t0) if resp and resp[1] != node else None})
    return pd.DataFrame(rows, columns=cols)


def rekey_latency(rekey_latencies: pd.DataFrame, *, title: str | None = None) -> Figure:
    """ECDF of rekey latency (trigger to new SA installed) in ms, one panel per SA kind, one line per side.

    Each line's x data is the sorted latencies of that kind and side in ms (gid ``latency-<kind>-<side>``).
    The x axis is logarithmic when the values span more than a factor of 50.
    """
    fig = Figure(figsize=(11, 4.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    colours = {"initiator": "#1f77b4", "responder": "#d62728"}
    for ax, kind in zip(axes, ("child", "ike"), strict=True):
        sub = rekey_latencies[rekey_latencies["kind"] == kind] if len(rekey_latencies) else rekey_latencies
        drawn: list[float] = []
        for side in _SIDES:
            vals = sorted(float(v) * 1000 for v in _num(sub[f"{side}_latency"]).dropna()) if len(sub) else []
            if not vals:
                continue
            n = len(vals)
            p = pd.Series(vals)
            label = f"{side} (n={n}, p50 {p.quantile(0.5):.1f} ms, p95 {p.quantile(0.95):.1f} ms)"
            ax.plot(vals, [(i + 1) / n for i in range(n)], drawstyle="steps-post", marker="o", markersize=3 if n > 30 else 5,
                    color=colours[side], label=label, gid=f"latency-{kind}-{side}")
            ax.plot([vals[0], vals[0]], [0, 1 / n], color=colours[side])  # the ECDF's first rise, from 0
            drawn.extend(vals)
        ax.set_title(f"{_KIND_LABEL[kind]} rekeys")
        ax.set_xlabel("rekey latency, trigger to new SA installed (ms)")
        ax.grid(color="0.88", linewidth=0.6)
        if drawn:
            lo, hi = min(drawn), max(drawn)
            if lo > 0 and hi / lo > 50:
                ax.set_xscale("log")
            else:
                pad = max((hi - lo) * 0.08, hi * 0.05, 1.0)
                ax.set_xlim(max(0.0, lo - pad), hi + pad)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=8, frameon=False)
        else:
            ax.text(0.5, 0.5, f"no {_KIND_LABEL[kind]} rekey completed", ha="center", va="center", transform=ax.transAxes,
                    color="0.4")
    axes[0].set_ylabel("fraction of rekeys ≤ x")
    axes[0].set_ylim(0, 1.05)
    fig.suptitle(title or "Rekey latency (ECDF)")
    return fig


# --- sweeps ---------------------------------------------------------------------------------------


def t_quantile(p: float, df: int) -> float:
    """The *p* quantile of Student's t with *df* degrees of freedom (``scipy.stats.t.ppf``)."""
    if not 0 < p < 1 or df < 1:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df >= 1 (got p={p}, df={df})")
    return float(student_t.ppf(p, df))


def sweep_axis(values: pd.Series) -> tuple[pd.Series, str]:
    """A swept column as numbers for an axis: durations (``30s``, ``2min``) become seconds, with the unit to label.

    Numeric columns are returned as they are (unit ``""``); anything else that is not all durations is returned
    as strings, to be drawn as categories in first-seen order.
    """
    if pd.api.types.is_numeric_dtype(values):
        return values, ""
    try:
        return values.map(parse_duration).astype(float), "s"
    except (ValueError, TypeError):
        return values.astype(str), ""


def sweep_stats(table: pd.DataFrame, x: str, y: str, hue: str | None = None, *, level: float = 0.95) -> pd.DataFrame:
    """Mean of *y* over replications per (*hue*, *x*) with a *level* two-sided t confidence interval.

    Columns: [hue], x, n, mean, std, half_width, ci_low, ci_high (half_width NaN for a single replication).
    A duration-valued *x* or *hue* (``30s``, ``2min``) is given in seconds and sorted numerically (``sweep_axis``).
    """
    for col in (x, y, hue):
        if col is not None and col not in table.columns:
            raise KeyError(f"the sweep table has no column {col!r} (columns: {', '.join(map(str, table.columns))})")
    data = table.copy()
    for col in (x, hue):  # durations as seconds, other text in first-seen order
        if col is None:
            continue
        values, _unit = sweep_axis(table[col])
        if not pd.api.types.is_numeric_dtype(values):
            values = pd.Categorical(values, categories=list(dict.fromkeys(values)), ordered=True)
        data[col] = values
    keys = [hue, x] if hue is not None else [x]
    rows = []
    for key, grp in data.groupby(keys, sort=True, dropna=False, observed=True):
        vals = _num(grp[y]).dropna()
        n = len(vals)
        mean = float(vals.mean()) if n else math.nan
        std = float(vals.std(ddof=1)) if n > 1 else math.nan
        half = t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n) if n > 1 else math.nan
        k = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(keys, k, strict=True)), "n": n, "mean": mean, "std": std, "half_width": half,
                     "ci_low": mean - half, "ci_high": mean + half})
    return pd.DataFrame(rows, columns=[*keys, "n", "mean", "std", "half_width", "ci_low", "ci_high"])


def sweep_figure(table: pd.DataFrame, x: str, y: str, hue: str | None = None, *, title: str | None = None,
                 xlabel: str | None = None, ylabel: str | None = None, scale: float | None = None,
                 ax: Axes | None = None) -> Figure:
    """*y* against the swept parameter *x*: mean over replications with its 95 % t interval, one line per *hue* value.

    Latency columns (name containing ``latency``, in seconds) are drawn in ms and utilisation (0..1) in %,
    unless *scale* multiplies *y* otherwise; the legend's title is *hue* and its entries are *hue*'s values;
    a duration-valued *x* is drawn in seconds. With *ax*, draws into it (a panel of a larger figure).
    """
    stats = sweep_stats(table, x, y, hue)
    if scale is None:
        scale, unit = (1000.0, " (ms)") if "latency" in y else (100.0, " (%)") if "utilisation" in y else (1.0, "")
    else:
        unit = ""
    if ax is None:
        fig = Figure(figsize=(8, 5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    groups = list(stats.groupby(hue, sort=True)) if hue is not None else [(None, stats)]
    numeric_x = pd.api.types.is_numeric_dtype(stats[x])
    for value, grp in groups:
        xs = grp[x].to_numpy() if numeric_x else grp[x].astype(str).to_numpy()
        label = f"{value}" if hue is not None else "mean"
        line = ax.errorbar(xs, grp["mean"] * scale, yerr=grp["half_width"].fillna(0) * scale, marker="o", capsize=4,
                           label=label, gid=f"sweep-{value}")
        if numeric_x and len(grp) > 1:
            ax.fill_between(xs, grp["ci_low"] * scale, grp["ci_high"] * scale, alpha=0.15, color=line[0].get_color())
    reps = stats["n"]
    x_unit = sweep_axis(table[x])[1]
    ax.set_xlabel(xlabel or (f"{x} ({x_unit})" if x_unit else x))
    ax.set_ylabel(ylabel or f"{y}{unit}")
    ax.grid(color="0.88", linewidth=0.6)
    ax.legend(title=hue, fontsize=9)
    nrep = f"{reps.min()}" if reps.min() == reps.max() else f"{reps.min()}–{reps.max()}"
    ax.set_title(title or f"mean and 95 % CI (t) over {nrep} replications")
    return fig


# --- CPU ------------------------------------------------------------------------------------------


def cpu(cpu_table: pd.DataFrame, *, max_nodes: int = 10, title: str | None = None) -> Figure:
    """CPU utilisation (%) and queue length per node over time, from a table with node, time (bin start, s),
    utilisation (0..1) and queue; the *max_nodes* busiest nodes (by mean utilisation) are drawn."""
    busiest = cpu_table.groupby("node")["utilisation"].mean().sort_values(ascending=False)
    nodes = sorted(busiest.index[:max_nodes].astype(str))
    times = _num(cpu_table["time"])
    span = float(times.max() - times.min()) if len(times) else 1.0
    unit, div = time_unit(span)
    fig = Figure(figsize=(11, 6), layout="constrained")
    ax_u, ax_q = fig.subplots(2, 1, sharex=True)
    for node in nodes:
        sub = cpu_table[cpu_table["node"].astype(str) == node].sort_values("time")
        t = _num(sub["time"]) / div
        line = ax_u.step(t, _num(sub["utilisation"]) * 100, where="post", label=node, gid=f"cpu-{node}")
        ax_q.step(t, _num(sub["queue"]), where="post", color=line[0].get_color(), gid=f"queue-{node}")
    ax_u.set_ylabel("CPU utilisation (%)")
    ax_u.set_ylim(0, 105)
    ax_q.set_ylabel("queue length (jobs)")
    ax_q.set_xlabel(f"simulated time ({unit}, bin start)")
    for ax in (ax_u, ax_q):
        ax.grid(color="0.88", linewidth=0.6)
    more = f" ({len(nodes)} busiest of {len(busiest)} nodes)" if len(nodes) < len(busiest) else ""
    ax_u.legend(title="node", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title or f"CPU per node{more}")
    return fig


# --- files ----------------------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=120)
    return path


def write_run_plots(directory: str | Path, out: str | Path | None = None, *, max_tunnels: int = 20) -> list[Path]:
    """Read a results directory (``ikesim run --out``) and write timeline.png, rekey_latency.png and, if the
    run has a ``cpu.parquet``, cpu.png into *out* (default: the directory itself). Returns the files written.
    (outages.png, of a run with traffic: ``ikesim.traffic_plots.write_outage_plot``.)

    Rekey latencies come from ``rekey_latencies.parquet`` if present, else are rebuilt from the events.
    Raises ``FileNotFoundError`` if sas.parquet or events.parquet is missing.
    """
    d = Path(directory)
    o = Path(out) if out is not None else d
    o.mkdir(parents=True, exist_ok=True)
    sas = pd.read_parquet(d / "sas.parquet")
    events = pd.read_parquet(d / "events.parquet")
    summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
    name = summary.get("name")
    run = f"{name} (seed {summary.get('seed')}, run {summary.get('run')})" if name else d.name
    written = [_save(sa_timeline(sas, events, max_tunnels=max_tunnels, end=summary.get("duration"),
                                 title=f"SA lifetimes per tunnel: {run}"), o / "timeline.png")]
    lat_file = d / "rekey_latencies.parquet"
    latencies = pd.read_parquet(lat_file) if lat_file.is_file() else rekey_latencies_from_events(events)
    written.append(_save(rekey_latency(latencies, title=f"Rekey latency (ECDF): {run}"), o / "rekey_latency.png"))
    if (d / "cpu.parquet").is_file():
        written.append(_save(cpu(pd.read_parquet(d / "cpu.parquet"), title=f"CPU per node: {run}"), o / "cpu.png"))
    return written


def write_sweep_plot(table: str | Path | pd.DataFrame, out: str | Path, *, x: str, y: str, hue: str | None = None) -> Path:
    """Draw ``sweep_figure`` for a sweep table (a DataFrame or a ``sweep.parquet`` file) into the file *out*."""
    df = pd.read_parquet(table) if isinstance(table, str | Path) else table
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return _save(sweep_figure(df, x, y, hue), out)
