"""The restarts table (``ikesim.metrics.restarts``): one row per tunnel a restarted IKE daemon lost.

scenarios/reconnect/gateway-restart.yaml, small variants: 20 clients (c00..c19, each connection named as its client at
both ends) come up over the first 20 s; the gateway's daemon restarts at 180 s; each client's DPD (every 10 s) then
retransmits 5 times over 165 s, declares the peer dead and re-establishes (dpd_action restart): IKE_SA_INIT + IKE_AUTH
(``full``) or IKE_SESSION_RESUME + IKE_AUTH (``resume``, RFC 5723), one 40 ms round trip each.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

import ikesim
from ikesim.metrics.restarts import RESTART_COLUMNS
from ikesim.scenario.load import load_scenario

TEXT = (Path(__file__).resolve().parents[2] / "scenarios" / "reconnect" / "gateway-restart.yaml").read_text()
RESTART = "actions:\n  - {at: 3min, node: gw, action: restart}\n"
GW = 'ticket_secret: "gw persisted ticket key"}'
CLIENTS = [f"c{i:02d}" for i in range(20)]

SUMMARY_KEYS = {"restarts", "tunnels_lost", "restored", "by_method", "unrestored", "detection_s", "time_to_restore_s",
                "first_restored_s", "exchanges", "retransmissions", "cookies", "cpu_setup_s", "cpu_busy_s",
                "cpu_per_reconnect_ms"}


@pytest.fixture(scope="module")
def runs() -> dict[str, ikesim.Results]:
    return {v: ikesim.run(load_scenario(TEXT, variant=v)) for v in ("full-small", "resume-small")}


@pytest.mark.parametrize(("variant", "method", "first", "last", "per_reconnect_ms", "busy_s"), [
    ("full-small", "full", 166.365823, 174.79688, 0.219126, 0.00680252),
    ("resume-small", "resume", 166.365725, 174.796781, 0.115512, 0.00473024),
])
def test_every_lost_tunnel_is_a_row_restored_by_its_method(runs: dict[str, ikesim.Results], variant: str, method: str,
                                                            first: float, last: float, per_reconnect_ms: float,
                                                            busy_s: float) -> None:
    """20 rows, one per client; detected by the client's DPD, back one round trip and a half later (the gateway's
    IkeSaEstablished answering IKE_AUTH): 166.4-174.8 s after the restart either way."""
    r = runs[variant]
    df = r.restarts
    assert list(df.columns) == RESTART_COLUMNS
    assert len(df) == 20
    assert list(df["connection"]) == CLIENTS and list(df["peer"]) == CLIENTS
    assert set(df["node"]) == {"gw"} and set(df["restart_at"]) == {180.0}
    assert df["method"].value_counts().to_dict() == {method: 20}
    assert (round(df["time_to_restore"].min(), 6), round(df["time_to_restore"].max(), 6)) == (first, last)
    # the restore is three 20 ms one-way trips after the client's DPD gave up (INIT/RESUME there and back, IKE_AUTH),
    # plus the gateway's CPU
    gap = (df["restored_at"] - df["detected_at"]).round(6)
    assert set(gap) == ({0.06016} if method == "full" else {0.060061})
    # per client: its DPD, the INIT/RESUME, IKE_AUTH; the DPD's 5 retransmissions; no COOKIE below the threshold
    assert set(df["exchanges"]) == {3} and set(df["retransmissions"]) == {5} and not df["cookie"].any()
    s = r.summary["restarts"]
    assert set(s) == SUMMARY_KEYS
    assert (s["restarts"], s["tunnels_lost"], s["restored"], s["unrestored"]) == (1, 20, 20, 0)
    assert s["by_method"] == {method: 20}
    assert s["time_to_restore_s"]["n"] == 20 and s["time_to_restore_s"]["max"] == last
    assert s["first_restored_s"] == first
    assert (s["exchanges"], s["retransmissions"], s["cookies"]) == (60, 100, 0)
    assert (s["cpu_per_reconnect_ms"], s["cpu_busy_s"]) == (per_reconnect_ms, busy_s)


def test_the_lost_and_new_ike_sas_are_the_ones_the_events_name(runs: dict[str, ikesim.Results]) -> None:
    """``spi_i`` is the IKE_SA the gateway deleted as ``restarted``; ``restored_spi_i`` the one the client resumed
    from it (the gateway's IkeSaResumed names both)."""
    r = runs["resume-small"]
    e = r.events
    lost = e[(e.event == "IkeSaDeleted") & (e.reason == "restarted")]
    assert dict(zip(r.restarts["connection"], r.restarts["spi_i"], strict=True)) == dict(
        zip(lost["connection"], lost["spi_i"], strict=True))
    resumed = e[(e.event == "IkeSaResumed") & (e.node == "gw")]
    assert set(zip(r.restarts["spi_i"], r.restarts["restored_spi_i"], strict=True)) == set(
        zip(resumed["old_spi_i"], resumed["spi_i"], strict=True))
    dpd = e[(e.event == "DeadPeerDetected") & (e.node != "gw")].set_index("node")["time"]
    assert list(r.restarts["detected_at"]) == [dpd[c] for c in CLIENTS]
    assert r.restarts.loc[0, ["spi_i", "restored_spi_i"]].tolist() == ["290a515fb1b465f2", "fe5b150b0e93c8f6"]


@pytest.mark.parametrize(("variant", "method", "per_reconnect_ms"), [
    ("full-small", "full", 0.24884), ("resume-small", "resume", 0.145226),
])
def test_a_cookie_demanded_for_the_restore_is_recorded(variant: str, method: str, per_reconnect_ms: float) -> None:
    """``cookie_threshold: always``: every IKE_SA_INIT and IKE_SESSION_RESUME is answered N(COOKIE) first (RFC 7296
    §2.6), one more exchange per client and one more round trip (40 ms) to the restore."""
    text = TEXT.replace(GW, GW[:-1] + ", cookie_threshold: always}")
    r = ikesim.run(load_scenario(text, variant=variant))
    df = r.restarts
    assert df["cookie"].all() and set(df["exchanges"]) == {4} and df["method"].value_counts().to_dict() == {method: 20}
    s = r.summary["restarts"]
    assert (s["cookies"], s["exchanges"], s["cpu_per_reconnect_ms"]) == (20, 80, per_reconnect_ms)
    assert s["time_to_restore_s"]["max"] == (174.876939 if method == "full" else 174.87684)


def test_a_run_that_ends_first_leaves_the_tunnels_unrestored() -> None:
    """Stopped at 5 min, before any client's DPD gives up (at 346 s and later): 20 rows of method ``none``."""
    r = ikesim.run(load_scenario(TEXT, variant="resume-small"), until="5min")
    df = r.restarts
    assert len(df) == 20 and set(df["method"]) == {"none"}
    assert df["restored_at"].isna().all() and df["detected_at"].isna().all() and set(df["restored_spi_i"]) == {""}
    assert set(df["exchanges"]) == {1} and set(df["retransmissions"]) == {5}
    s = r.summary["restarts"]
    assert (s["restored"], s["unrestored"], s["by_method"], s["first_restored_s"]) == (0, 20, {"none": 20}, None)
    assert s["time_to_restore_s"] == {"n": 0, "p50": None, "p95": None, "max": None}
    assert s["cpu_per_reconnect_ms"] is None and s["cpu_setup_s"] == 0.0


def test_the_table_is_kept_and_written_with_trace_summary(tmp_path: Path) -> None:
    """``trace: summary`` keeps the rows (built as events are recorded) and writes restarts.parquet."""
    r = ikesim.run(load_scenario(TEXT, variant="resume-small"), trace="summary")
    assert len(r.restarts) == 20 and r.summary["restarts"]["by_method"] == {"resume": 20}
    assert r.written_files() == ["cpu.parquet", "restarts.parquet", "summary.json"]
    r.write(tmp_path)
    back = pd.read_parquet(tmp_path / "restarts.parquet")
    assert list(back.columns) == RESTART_COLUMNS and len(back) == 20


def test_a_run_without_restart_has_an_empty_table_and_no_summary_section() -> None:
    """The same fleet without the action: no rows (the columns all there), no ``restarts`` key, no file."""
    assert RESTART in TEXT
    r = ikesim.run(load_scenario(TEXT.replace(RESTART, ""), variant="resume-small"), trace="summary")
    assert r.trace.restarts is None
    assert list(r.restarts.columns) == RESTART_COLUMNS and len(r.restarts) == 0
    assert "restarts" not in r.summary
    assert "restarts.parquet" not in r.written_files()


def test_time_to_restore_is_restored_minus_restart(runs: dict[str, ikesim.Results]) -> None:
    """The column is the difference of the two times, row by row."""
    df = runs["full-small"].restarts
    assert all(math.isclose(t, b - a) for t, a, b in zip(df["time_to_restore"], df["restart_at"], df["restored_at"],
                                                        strict=True))
