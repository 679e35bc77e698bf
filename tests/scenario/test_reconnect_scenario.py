"""A gateway outage without MOBIKE: DPD, dpd_action restart and keyingtries restore the traffic (RFC 7296 §2.4).

``reconnect/gateway-outage-restart.yaml``: the link is down from 100 s to 400 s, 1 packet/s each way, 25 ms each
way. The last ESP arrives at 99.025 s, so both DPDs go at 129.025 s (dpd_delay after the last inbound packet) and
give up 165.06112 s later, at 294.08612 s.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import ikesim
from ikesim.scenario.load import load_scenario, load_scenario_text

SCENARIO = Path(__file__).parent / "reconnect" / "gateway-outage-restart.yaml"
DEAD = 129.025 + 165.06112
"""Both DPDs give up here (strongSwan's retransmission schedule)."""
RETRY = DEAD + 165.06112
"""The re-establishment (link still down) gives up here and keyingtries starts attempt 2."""


def _run(replace: dict[str, str]) -> ikesim.Results:
    text = SCENARIO.read_text()
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return ikesim.run(load_scenario_text(text, SCENARIO.name))


def test_restart_and_keyingtries_bring_the_tunnel_back_after_the_gateway_returns() -> None:
    """The client re-establishes at the DPD give-up (attempt 1, lost: the link is still down), tries again at once
    when that gives up (attempt 2, 459.14724 s), and is up 2 RTT later; the traffic flows again from 460 s. The
    gateway (no remote address) only clears its IKE_SA."""
    r = ikesim.run(load_scenario(SCENARIO))
    e = r.events
    assert e[e["event"] == "DeadPeerDetected"][["node", "time"]].values.tolist() == [
        ["gateway", pytest.approx(DEAD, abs=1e-9)], ["client", pytest.approx(DEAD, abs=1e-9)]]
    again = e[e["event"] == "IkeSaReestablishing"]
    assert again["node"].tolist() == ["client", "client"]
    assert again["time"].tolist() == pytest.approx([DEAD, RETRY], abs=1e-9)
    assert again[["reason", "action", "attempt", "children"]].values.tolist() == [
        ["dpd_timeout", "restart", 1, "net"], ["timeout", "retry", 2, "net"]]
    first, second = again["spi_i"].tolist()
    original = e[e["event"] == "IkeSaEstablished"]["spi_i"].iloc[0]
    assert again["old_spi"].tolist() == [original, first]
    up = e[(e["event"] == "IkeSaEstablished") & (e["time"] > 1)]
    assert up[["node", "spi_i"]].values.tolist() == [["gateway", second], ["client", second]]
    assert up["time"].tolist() == pytest.approx([RETRY + 0.075, RETRY + 0.1], abs=1e-9)
    inits = r.exchanges[r.exchanges["exchange"] == "IKE_SA_INIT"]
    assert inits[["spi_i", "outcome", "retransmissions"]].values.tolist() == [
        [original, "ok", 0], [first, "timeout", 5], [second, "ok", 0]]
    o = r.outages
    assert o[["direction", "start", "restored", "packets", "reason"]].values.tolist() == [
        ["forward", 0.0, 1.0, 1, "no_sa"], ["forward", 100.0, 460.0, 360, "link_down"],
        ["reverse", 0.0, 1.0, 1, "no_sa"], ["reverse", 100.0, 460.0, 360, "link_down"]]
    t = r.traffic
    assert (t[t["time_sent"] >= 460.0]["fate"] == "delivered").all()
    assert r.summary["traffic"]["delivered"] == 2 * (99 + 140)  # 1 s .. 99 s and 460 s .. 599 s, each way


@pytest.mark.parametrize("replace", [{"dpd_action: restart": "dpd_action: clear"}, {"keyingtries: 3": "keyingtries: 1"}],
                         ids=["clear", "keyingtries-1"])
def test_clear_or_a_single_try_leaves_the_tunnel_down(replace: dict[str, str]) -> None:
    """dpd_action clear (strongSwan's default) does nothing after DPD; keyingtries 1 re-establishes once and gives up
    while the link is still down: either way the traffic never comes back."""
    r = _run(replace)
    again = r.events[r.events["event"] == "IkeSaReestablishing"]
    assert len(again) == (0 if "dpd_action: restart" in replace else 1)
    o = r.outages
    assert o[o["start"] == 100.0]["restored"].isna().all() and len(o[o["start"] == 100.0]) == 2
    assert r.summary["traffic"]["delivered"] == 2 * 99
