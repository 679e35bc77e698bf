"""The handovers table (``ikesim.metrics.handovers``): one row per interface that went down under a tunnel.

The scenario scenarios/mobility/wifi-to-lte.yaml: the phone's LTE path is 25 + 15 + 5 = 45 ms one way to the gateway,
Wi-Fi goes down at 60 s; LTE is up 2 s before (make-before-break) or comes up 3 s after (break-before-make).
"""

from __future__ import annotations

import math

import pytest

from ikesim.metrics.handovers import HANDOVER_COLUMNS
from ikesim.runner import run
from ikesim.scenario.load import load_scenarios

LTE_ONE_WAY = 0.045

_MODELS = {m.name: m for m in load_scenarios("scenarios/mobility/wifi-to-lte.yaml")}


def _row(variant: str) -> dict[str, object]:
    r = run(_MODELS[f"wifi-to-lte[{variant}]"])
    assert list(r.handovers.columns) == HANDOVER_COLUMNS
    (row,) = r.handovers.to_dict("records")
    return row


@pytest.mark.parametrize(("variant", "up_at", "start", "method", "round_trips", "exchanges"), [
    ("mobike-make-before-break", 58.0, 60.0, "mobike", 1.5, 2),     # path test (1 RTT), then the update arrives
    ("mobike-break-before-make", 63.0, 63.0, "mobike", 1.5, 2),
    ("reauth-make-before-break", 58.0, 60.0, "reestablish", 2.0, 3),  # IKE_SA_INIT + IKE_AUTH (+ the old's Delete)
    ("reauth-break-before-make", 63.0, 63.0, "reestablish", 2.0, 3),
])
def test_handover_row_times_follow_the_path(variant: str, up_at: float, start: float, method: str,
                                            round_trips: float, exchanges: int) -> None:
    """Detection is immediate (the kernel's address event, strongSwan's roam); the restore takes exactly the round
    trips the method needs on the LTE path, from the moment LTE is usable."""
    row = _row(variant)
    assert (row["node"], row["peer"], row["connection"], row["interface"], row["address"]) == (
        "phone", "gateway", "vpn", "wlan", "192.168.1.10")
    assert math.isnan(row["cpu_s"])  # no node has a CPU model
    assert (row["to_interface"], row["to_address"], row["up_at"]) == ("lte", "10.64.0.10", up_at)
    assert (row["down_at"], row["detected_at"], row["detection_s"], row["detected_by"]) == (60.0, 60.0, 0.0, "local")
    assert row["started_at"] == start and row["method"] == method
    assert row["restored_at"] == pytest.approx(start + 2 * round_trips * LTE_ONE_WAY, abs=1e-9)
    assert row["restore_s"] == pytest.approx(row["restored_at"] - 60.0, abs=1e-9)
    assert (row["exchanges"], row["retransmissions"]) == (exchanges, 0)
    assert row["window"] == "phone@60.000000"


def test_packets_lost_are_those_of_the_handover_window() -> None:
    """Packets lost and the outage come from the outages the traffic tables attribute to this handover."""
    r = run(_MODELS["wifi-to-lte[mobike-break-before-make]"])
    (row,) = r.handovers.to_dict("records")
    mine = r.outages[r.outages["event_id"] == "phone@60.000000"]
    assert row["packets_lost"] == int(mine["packets"].sum()) > 0
    assert row["outage_s"] == float(mine["time_to_restore"].max())
    # 10 packets/s each way for the 3 s without a path and the 135 ms of the move: 63 in all
    assert row["packets_lost"] == 63 and math.isclose(row["outage_s"], 3.2)
    assert r.summary["handovers"]["by_method"] == {"mobike": 1}
    assert set(r.outages["event"]) == {"handover"}


def test_cpu_time_of_both_ends_during_the_handover() -> None:
    """With a CPU model on the gateway, ``cpu_s`` is the service time of its jobs from the interface going down to
    the restore: the two MOBIKE requests it answered (path test, update) among them."""
    from ikesim.scenario.node_model import CpuModelSpec

    m = _MODELS["wifi-to-lte[mobike-make-before-break]"]
    gw = m.nodes["gateway"].model_copy(update={"cpu": CpuModelSpec(cores=1)})
    r = run(m.model_copy(update={"nodes": {**m.nodes, "gateway": gw}}))
    (row,) = r.handovers.to_dict("records")
    p = r.processing
    jobs = p[(p["node"] == "gateway") & (p["start"] >= row["down_at"]) & (p["start"] <= row["restored_at"])]
    assert list(jobs["what"]).count("INFORMATIONAL request") == 2
    assert row["cpu_s"] == pytest.approx(float(jobs["service"].sum()), abs=1e-12) and row["cpu_s"] > 0
    assert r.summary["handovers"]["cpu_s"]["n"] == 1
