"""Per-message processing time (``ikesim.sim.processing``): draws, FIFO hand-over, late timers, ties become races."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.rng import Rng
from ikesim.runner import run
from ikesim.scenario.load import load_scenario_text
from ikesim.sim.processing import STRONGSWAN, ProcessingModel

TIE = """
name: tie
seed: {seed}
duration: 130s
processing: {processing}
nodes:
  client: {{addresses: [10.0.0.1]}}
  gateway: {{addresses: [10.0.0.2]}}
links:
  - {{between: [client, gateway], delay: 10ms}}
connections:
  vpn:
    initiator: client
    responder: gateway
    ike: {{rekey_time: 0}}
    child: {{rekey_time: 60s, life_time: 70s, rand_time: 0}}
"""
"""No jitter, no link jitter: the gateway installs the CHILD_SA one transit before the client, so its rekey request
reaches the client exactly when the client's own soft lifetime expires, every 60 s."""


def test_model_draws_uniformly_in_its_band() -> None:
    """low + (high - low) * U from the stream handed in; low > high is refused."""
    rng, ref = Rng(3, "p"), Rng(3, "p")
    assert [STRONGSWAN.draw(rng) for _ in range(5)] == [200e-6 + 800e-6 * ref.random() for _ in range(5)]
    assert all(200e-6 <= STRONGSWAN.draw(rng) < 1e-3 for _ in range(1000))
    with pytest.raises(ValueError, match="low <= high"):
        ProcessingModel(2e-3, 1e-3)


def test_scenario_setting_node_override_and_errors() -> None:
    """``processing`` at the top applies to every node unless a node sets its own; bad ranges name the key."""
    text = TIE.format(seed=1, processing="strongswan").replace(
        "gateway: {addresses: [10.0.0.2]}", "gateway: {addresses: [10.0.0.2], processing: {low: 1ms, high: 2ms}}")
    m = load_scenario_text(text, "x.yaml")
    assert m.processing == "strongswan" and m.nodes["client"].processing is None
    assert (m.nodes["gateway"].processing.low, m.nodes["gateway"].processing.high) == (1e-3, 2e-3)
    with pytest.raises(ConfigError, match="nodes.gateway.processing"):
        load_scenario_text(text.replace("low: 1ms", "low: 3ms"), "x.yaml")
    assert load_scenario_text(TIE.format(seed=1, processing="none"), "x.yaml").processing == "none"


def _installs(seed: int, processing: str) -> tuple[list[tuple[str, float]], int]:
    r = run(load_scenario_text(TIE.format(seed=seed, processing=processing), "tie.yaml"))
    ev = r.events
    inst = ev[ev["event"] == "ChildSaInstalled"]
    return [(n, round(t, 6)) for n, t in zip(inst["node"], inst["time"], strict=True)][:2], r.summary["collisions"]


def test_processing_delays_each_datagram_by_its_draw() -> None:
    """Without processing the first CHILD_SA is installed at exactly 1, 2, 3 transits; with ``strongswan`` each
    hand-over is late by its own draw from the node's ``processing`` stream, 0.2 to 1.0 ms."""
    exact, _ = _installs(1, "none")
    assert exact == [("gateway", 0.03), ("client", 0.04)]
    noisy, _ = _installs(1, "strongswan")
    for (node, t), (_, t0) in zip(noisy, exact, strict=True):
        assert node in ("gateway", "client") and 0.0006 < t - t0 < 0.004  # 3 or 4 hand-overs, each 0.2 .. 1.0 ms


def test_tie_is_decided_by_noise_not_by_queue_order() -> None:
    """The exact tie of ``TIE``, two rekeys in 130 s: with processing off every seed collides at both (the client's
    timer entry comes before the gateway's request in the event queue); with ``strongswan`` the seeds differ, as two
    real charons would (0, 1 or 2 collisions)."""
    off = [_installs(seed, "none")[1] for seed in range(1, 9)]
    on = [_installs(seed, "strongswan")[1] for seed in range(1, 9)]
    assert off == [2] * 8
    assert on == [0, 2, 1, 0, 1, 2, 1, 1]
