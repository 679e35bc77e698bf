"""``ikesim.plots`` and ``ikesim plot``: the figures draw exactly what the tables hold, and the command writes PNGs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ikesim import plots
from ikesim.cli import main
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario, load_scenarios

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def race():  # noqa: ANN201
    """child-simultaneous, first variant: one tunnel, one CHILD_SA rekey collision at 60 s."""
    m = load_scenarios(ROOT / "scenarios" / "races" / "child-simultaneous.yaml")[0]
    return m, build_simulation(m).run(m.duration)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """Three fleet clients (three tunnels) for 20 simulated minutes."""
    text = (ROOT / "scenarios" / "fleet" / "fleet-rand-time.yaml").read_text()
    assert "clients: 1000" in text
    path = tmp_path_factory.mktemp("fleet") / "fleet3.yaml"
    path.write_text(text.replace("clients: 1000", "clients: 3"))
    return build_simulation(load_scenario(path)).run(1200.0)


def _gid(fig, gid: str) -> list:  # noqa: ANN001
    return [c for ax in fig.axes for c in ax.get_children() if c.get_gid() == gid]


def test_timeline_draws_one_bar_per_sa_and_marks_collisions(race) -> None:  # noqa: ANN001
    m, r = race
    fig = plots.sa_timeline(r.sas, r.events, end=m.duration)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vpn"]
    assert len(_gid(fig, "sa-bar")) == len(r.sas) == 8
    assert ax.get_xlabel() == "simulated time (s)"
    collisions = r.events[r.events["event"] == "RekeyCollision"]
    assert len(collisions) == 2
    (marks,) = _gid(fig, "RekeyCollision")
    assert sorted(marks.get_offsets()[:, 0]) == pytest.approx(sorted(collisions["time"]))
    assert len(_gid(fig, "rekey")) == r.sas["rekeyed_at"].notna().sum()
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert any("IKE_SA" in t for t in labels) and any("CHILD_SA" in t for t in labels)
    assert any("collision" in t for t in labels) and not any("retransmission" in t for t in labels)


def test_timeline_one_row_per_tunnel_and_limit(fleet) -> None:  # noqa: ANN001
    tunnels = sorted(fleet.sas["connection"].unique())
    assert len(tunnels) == 3
    fig = plots.sa_timeline(fleet.sas, fleet.events, end=1200.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == tunnels
    assert len(_gid(fig, "sa-bar")) == len(fleet.sas)
    assert ax.get_xlabel() == "simulated time (min)"
    few = plots.sa_timeline(fleet.sas, fleet.events, max_tunnels=2)
    assert [t.get_text() for t in few.axes[0].get_yticklabels()] == tunnels[:2]
    assert len(_gid(few, "sa-bar")) == int(fleet.sas["connection"].isin(tunnels[:2]).sum())
    assert "2 of 3 tunnels" in few.axes[0].get_title()
    picked = plots.sa_timeline(fleet.sas, fleet.events, tunnels=[tunnels[2]])
    assert [t.get_text() for t in picked.axes[0].get_yticklabels()] == [tunnels[2]]


def test_timeline_marks_retransmissions(race) -> None:  # noqa: ANN001
    """A synthetic Retransmitted event of a CHILD_SA rekey lands on its node's CHILD_SA lane at its time."""
    _m, r = race
    extra = pd.DataFrame([{"time": 30.5, "node": "client", "event": "Retransmitted", "connection": "vpn",
                           "purpose": "rekey_child"}])
    fig = plots.sa_timeline(r.sas, pd.concat([r.events, extra], ignore_index=True))
    (marks,) = _gid(fig, "Retransmitted")
    assert list(marks.get_offsets()[:, 0]) == [30.5]


def test_latency_figure_plots_the_table_values(race) -> None:  # noqa: ANN001
    _m, r = race
    rl = r.rekey_latencies
    fig = plots.rekey_latency(rl)
    drawn = 0
    for kind in ("child", "ike"):
        for side in ("initiator", "responder"):
            want = sorted(rl.loc[rl["kind"] == kind, f"{side}_latency"].dropna() * 1000)
            lines = _gid(fig, f"latency-{kind}-{side}")
            if not want:
                assert lines == []
                continue
            (line,) = lines
            assert list(line.get_xdata()) == pytest.approx(want)
            assert list(line.get_ydata()) == pytest.approx([(i + 1) / len(want) for i in range(len(want))])
            drawn += 1
    assert drawn == 2  # the collision leaves one child rekey with both latencies
    assert "(ms)" in fig.axes[0].get_xlabel()


def test_latencies_rebuilt_from_events_equal_results(race, fleet) -> None:  # noqa: ANN001
    for r in (race[1], fleet):
        rebuilt = plots.rekey_latencies_from_events(r.events)
        pd.testing.assert_frame_equal(rebuilt.reset_index(drop=True), r.rekey_latencies.reset_index(drop=True),
                                      check_dtype=False)


@pytest.mark.parametrize(("df", "q"), [(1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157), (30, 2.042272)])
def test_t_quantile_matches_tables(df: int, q: float) -> None:
    assert plots.t_quantile(0.975, df) == pytest.approx(q, abs=1e-5)


def test_duration_axis_is_numeric_and_sorted() -> None:
    table = pd.DataFrame({"rand_time": ["0s", "2min", "30s", "6min"] * 2, "run": [0] * 4 + [1] * 4,
                          "collisions": [40.0, 2.0, 10.0, 0.0, 44.0, 4.0, 12.0, 0.0]})
    stats = plots.sweep_stats(table, "rand_time", "collisions")
    assert stats["rand_time"].tolist() == [0.0, 30.0, 120.0, 360.0]
    assert stats["mean"].tolist() == [42.0, 11.0, 3.0, 0.0]
    ax = plots.sweep_figure(table, "rand_time", "collisions").axes[0]
    assert ax.get_xlabel() == "rand_time (s)"
    util = table.assign(**{"cpu.gw.peak_utilisation": table["collisions"] / 100})
    ax = plots.sweep_figure(util, "rand_time", "cpu.gw.peak_utilisation", hue="run").axes[0]
    assert ax.get_ylabel() == "cpu.gw.peak_utilisation (%)" and ax.get_legend().get_title().get_text() == "run"
    assert list(ax.containers[0][0].get_ydata()) == pytest.approx([40.0, 10.0, 2.0, 0.0])  # run 0, in %
    by_hue = plots.sweep_stats(table.assign(run=["30s"] * 4 + ["2min"] * 4), "rand_time", "collisions", hue="run")
    assert by_hue["run"].drop_duplicates().tolist() == [30.0, 120.0]  # a duration hue in numeric order, in seconds
    labels = pd.DataFrame({"policy": ["none", "stagger", "jitter"], "run": [0, 0, 0], "collisions": [3.0, 1.0, 2.0]})
    assert plots.sweep_stats(labels, "policy", "collisions")["policy"].astype(str).tolist() == ["none", "stagger", "jitter"]


def _sweep_table() -> pd.DataFrame:
    rows = []
    for loss, values in ((0.0, [1.0, 2.0, 3.0]), (0.05, [10.0, 14.0])):
        for run, v in enumerate(values):
            rows.append({"loss": loss, "jitter": "on", "run": run, "collisions": v,
                         "rekey_latency.child.initiator.p95": v / 100})
    rows.append({"loss": 0.0, "jitter": "off", "run": 0, "collisions": 7.0, "rekey_latency.child.initiator.p95": 0.07})
    return pd.DataFrame(rows)


def test_sweep_ci_equals_hand_computed_value() -> None:
    stats = plots.sweep_stats(_sweep_table(), "loss", "collisions", hue="jitter").set_index(["jitter", "loss"])
    a = stats.loc[("on", 0.0)]
    # mean 2, s = 1, n = 3: 4.302653 * 1 / sqrt(3)
    assert (a["n"], a["mean"], a["std"]) == (3, 2.0, 1.0)
    assert a["half_width"] == pytest.approx(2.484138, abs=1e-6)
    assert (a["ci_low"], a["ci_high"]) == pytest.approx((2.0 - 2.484138, 2.0 + 2.484138), abs=1e-6)
    b = stats.loc[("on", 0.05)]
    # mean 12, s = 2 sqrt(2), n = 2: 12.706205 * 2 sqrt(2) / sqrt(2) = 25.41241
    assert b["mean"] == 12.0 and b["half_width"] == pytest.approx(25.41241, abs=1e-5)
    single = stats.loc[("off", 0.0)]
    assert single["n"] == 1 and math.isnan(single["half_width"])


def test_sweep_figure_draws_means_and_intervals() -> None:
    fig = plots.sweep_figure(_sweep_table(), "loss", "rekey_latency.child.initiator.p95", hue="jitter")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "loss" and ax.get_ylabel() == "rekey_latency.child.initiator.p95 (ms)"
    on = [c for c in ax.containers if c.get_label() == "on"]
    assert len(on) == 1
    line = on[0][0]
    assert list(line.get_xdata()) == [0.0, 0.05]
    assert list(line.get_ydata()) == pytest.approx([20.0, 120.0])  # means, in ms
    assert {t.get_text() for t in ax.get_legend().get_texts()} == {"off", "on"}
    with pytest.raises(KeyError, match="no column 'nope'"):
        plots.sweep_stats(_sweep_table(), "loss", "nope")


def _cpu_table() -> pd.DataFrame:
    t = np.arange(0, 600, 10.0)
    return pd.concat([
        pd.DataFrame({"node": "gw", "time": t, "utilisation": 0.5 + 0.4 * np.sin(t / 60), "queue": (t // 100) % 4}),
        pd.DataFrame({"node": "c0", "time": t, "utilisation": 0.05 * np.ones_like(t), "queue": np.zeros_like(t)}),
    ], ignore_index=True)


def test_cpu_figure_draws_utilisation_and_queue_per_node() -> None:
    table = _cpu_table()
    fig = plots.cpu(table)
    (gw,) = _gid(fig, "cpu-gw")
    assert list(gw.get_ydata()) == pytest.approx(list(table.loc[table["node"] == "gw", "utilisation"] * 100))
    (q,) = _gid(fig, "queue-c0")
    assert list(q.get_ydata()) == [0.0] * 60
    assert fig.axes[0].get_ylabel() == "CPU utilisation (%)" and fig.axes[1].get_xlabel().startswith("simulated time (s")
    one = plots.cpu(table, max_nodes=1)
    assert _gid(one, "cpu-gw") and not _gid(one, "cpu-c0")


def _is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data[:8] == PNG


def test_plot_command_writes_run_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    res = tmp_path / "res"
    assert main(["run", str(ROOT / "scenarios" / "quickstart.yaml"), "--until", "3h", "--out", str(res), "--quiet"]) == 0
    figs = tmp_path / "figs"
    assert main(["plot", str(res), "--out", str(figs), "--tunnels", "5"]) == 0
    assert {p.name for p in figs.iterdir()} == {"timeline.png", "rekey_latency.png", "outages.png", ".ikesim-results.json"}  # the marker
    assert all(_is_png(p) for p in figs.glob("*.png"))
    assert str(figs / "timeline.png") in capsys.readouterr().out
    _cpu_table().to_parquet(res / "cpu.parquet")
    assert main(["plot", str(res), "--quiet"]) == 0  # default: next to the results
    assert _is_png(res / "timeline.png") and _is_png(res / "rekey_latency.png") and _is_png(res / "cpu.png")
    summary = json.loads((res / "summary.json").read_text())
    assert summary["duration"] == 10800.0


def test_plot_command_writes_sweep_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep.parquet"
    _sweep_table().to_parquet(sweep)
    assert main(["plot", str(sweep), "--x", "loss", "--y", "collisions", "--hue", "jitter", "--quiet"]) == 0
    assert _is_png(tmp_path / "sweep.png")
    out = tmp_path / "o"
    assert main(["plot", str(tmp_path), "--x", "loss", "--y", "collisions", "--out", str(out), "--quiet"]) == 0
    assert _is_png(out / "sweep.png")
    assert main(["plot", str(sweep), "--x", "loss"]) == 2
    assert main(["plot", str(sweep), "--x", "loss", "--y", "nope"]) == 2
    assert main(["plot", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert "--y FIGURE" in err and "no column 'nope'" in err and "not a results directory" in err


def test_a_run_with_traffic_gets_an_outage_timeline(tmp_path: Path) -> None:
    """``ikesim plot`` on a run with traffic adds outages.png: one row per flow direction that had outages, a bar
    per outage coloured by its event, the control windows as ticks; the figure is drawn from the written tables."""
    from ikesim import traffic_plots

    m = load_scenario(ROOT / "scenarios" / "traffic" / "nat-rebind-loss.yaml", variant="both-none")
    r = build_simulation(m.model_copy(update={"duration": 900.0})).run(900.0)
    res = tmp_path / "res"
    res.mkdir()
    r.write(res)
    assert main(["plot", str(res), "--quiet"]) == 0
    assert (res / "outages.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    fig = traffic_plots.outage_timeline(r.outages, r.traffic_windows, duration=900.0)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["vpn reverse"]
    bars = [c for c in ax.collections]
    assert len(bars) == len(r.outages) + len(r.traffic_windows) == 2
    assert ax.get_xlabel() == "simulated time (min)" and ax.get_legend().get_title().get_text() == "attributed to"
