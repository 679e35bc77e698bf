"""Figures of user traffic: an outage timeline per flow direction, loss per rekey against a parameter, and the
cost of handovers per way back (MOBIKE, reauthentication, ...).

Both read only the tables a run writes (``traffic``, ``outages``, ``traffic_windows``) or a table of
figures a study built, and return a matplotlib ``Figure`` (no pyplot state).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ikesim.plots import time_unit

__all__ = ["outage_timeline", "loss_per_rekey", "write_outage_plot", "handover_costs", "EVENT_COLOURS"]

EVENT_COLOURS = {"child_rekey": "tab:blue", "ike_rekey": "tab:purple", "nat_rebind": "tab:orange",
                 "nat_reboot": "tab:brown", "handover": "tab:green", "none": "tab:red"}
"""Colour of each control-event kind (``none``: a loss outside every window, e.g. random link loss)."""


def outage_timeline(outages: pd.DataFrame, windows: pd.DataFrame, *, duration: float, title: str | None = None,
                    max_rows: int = 20) -> Figure:
    """One row per flow direction: its outages as bars coloured by the event they are attributed to, and the
    control windows (rekeys, NAT events) of its connection as thin ticks under the row."""
    unit, scale = time_unit(duration)
    rows = outages[["connection", "direction"]].drop_duplicates().head(max_rows)
    if not len(rows):
        rows = windows[["connection"]].drop_duplicates().head(max_rows).assign(direction="forward")
    fig = Figure(figsize=(11, 1.2 + 0.55 * max(1, len(rows))), layout="constrained")
    ax = fig.subplots()
    labels = []
    for i, (conn, direction) in enumerate(rows.itertuples(index=False)):
        labels.append(f"{conn} {direction}")
        sub = outages[(outages["connection"] == conn) & (outages["direction"] == direction)]
        for o in sub.itertuples(index=False):
            end = o.restored if pd.notna(o.restored) else duration
            # an outage of a single packet is as long as the gap to the next one: at least a visible sliver
            width = max((end - o.start) / scale, duration / scale / 800)
            ax.broken_barh([(o.start / scale, width)], (i - 0.3, 0.6), color=EVENT_COLOURS.get(o.event, "grey"))
        for w in windows[windows["connection"] == conn].itertuples(index=False):
            ax.broken_barh([(w.start / scale, max((w.end - w.start) / scale, duration / scale / 800))], (i - 0.45, 0.1),
                           color=EVENT_COLOURS.get(w.event, "grey"), alpha=0.5)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.invert_yaxis()
    ax.set_xlim(0, duration / scale)
    ax.set_xlabel(f"simulated time ({unit})")
    ax.set_title(title or "Outages of user traffic (bars) and control windows (ticks)")
    kinds = sorted(set(outages["event"]) | set(windows["event"])) or ["none"]
    ax.legend(handles=[Patch(color=EVENT_COLOURS.get(k, "grey"), label=k.replace("_", " ")) for k in kinds],
              loc="upper right", fontsize="small", title="attributed to")
    ax.grid(axis="x", alpha=0.3)
    return fig


def loss_per_rekey(table: pd.DataFrame, *, x: str, hue: str, y: str = "loss_per_rekey_max",
                   predicted: str | None = None, title: str | None = None, ylabel: str = "packets lost per rekey (max)"
                   ) -> Figure:
    """Grouped bars of *y* for each value of *x* (a policy parameter), one bar per *hue*; with *predicted*,
    a black marker per bar at the value a back-of-the-envelope model predicts."""
    xs = list(dict.fromkeys(table[x]))
    hues = list(dict.fromkeys(table[hue]))
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / max(1, len(hues))
    for j, h in enumerate(hues):
        sub = table[table[hue] == h].set_index(x)
        pos = [i - 0.4 + width * (j + 0.5) for i in range(len(xs))]
        values = [float(sub[y].get(v, float("nan"))) for v in xs]
        bars = ax.bar(pos, values, width * 0.9, label=str(h))
        ax.bar_label(bars, labels=[f"{v:g}" for v in values], fontsize="small", padding=2)
        if predicted is not None:
            ax.scatter(pos, [float(sub[predicted].get(v, float("nan"))) for v in xs], marker="_", s=300,
                       color="black", zorder=3, label="predicted" if j == 0 else None)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title or f"{ylabel} by {x}")
    ax.legend(title=hue, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def write_outage_plot(directory: str | Path, out: str | Path | None = None, *, max_rows: int = 20) -> list[Path]:
    """Write outages.png for a results directory of a run with traffic (outages.parquet and traffic_windows.parquet)
    into *out* (default: the directory itself); nothing for a run without traffic. Returns the files written."""
    d = Path(directory)
    if not (d / "outages.parquet").is_file() or not (d / "traffic_windows.parquet").is_file():
        return []
    o = Path(out) if out is not None else d
    o.mkdir(parents=True, exist_ok=True)
    summary = json.loads((d / "summary.json").read_text()) if (d / "summary.json").is_file() else {}
    name = summary.get("name")
    run = f"{name} (seed {summary.get('seed')}, run {summary.get('run')})" if name else d.name
    fig = outage_timeline(pd.read_parquet(d / "outages.parquet"), pd.read_parquet(d / "traffic_windows.parquet"),
                          duration=float(summary.get("duration") or 0.0) or 1.0, max_rows=max_rows,
                          title=f"Outages of user traffic: {run}")
    path = o / "outages.png"
    fig.savefig(path, dpi=120)
    return [path]


def handover_costs(table: pd.DataFrame, *, by: str = "method", hue: str = "move", title: str | None = None) -> Figure:
    """Two panels from a handovers table (``Results.handovers`` rows with a *by* and a *hue* column added): the time
    to restore the tunnel and the packets lost per handover, one box per (*by*, *hue*) with every handover as a
    dot, on log scales (0 packets is drawn at 0.5). RFC 4555 handovers against the other ways back."""
    methods = list(dict.fromkeys(table[by]))
    hues = list(dict.fromkeys(table[hue]))
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    width = 0.8 / max(1, len(hues))
    panels = (("restore_s", "time to restore the tunnel (s)"), ("packets_lost", "user packets lost per handover (0 drawn at 0.5)"))
    for ax, (column, label) in zip(axes, panels, strict=True):
        for j, h in enumerate(hues):
            data, positions = [], []
            for i, m in enumerate(methods):
                values = table[(table[by] == m) & (table[hue] == h)][column].dropna().astype(float)
                if column == "packets_lost":
                    values = values.clip(lower=0.5)
                if not len(values):
                    continue
                pos = i + (j - (len(hues) - 1) / 2) * width
                data.append(values.to_numpy())
                positions.append(pos)
                ax.scatter([pos] * len(values), values, s=9, color=colours[j % len(colours)], alpha=0.5, zorder=3)
            if data:
                box = ax.boxplot(data, positions=positions, widths=width * 0.8, patch_artist=True, showfliers=False,
                                 manage_ticks=False)
                for patch in box["boxes"]:
                    patch.set(facecolor=colours[j % len(colours)], alpha=0.25)
        ax.set_yscale("log")
        ax.set_xticks(range(len(methods)), methods)
        ax.set_xlabel(by)
        ax.set_ylabel(label)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].legend(handles=[Patch(facecolor=colours[j % len(colours)], alpha=0.5, label=h) for j, h in enumerate(hues)],
                   title=hue, loc="upper left")
    if title:
        fig.suptitle(title)
    return fig
