"""The invariant checker catches broken implementations and stays silent on correct ones."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import simpy
from test_network import _two_nodes

from ikesim.ike.config import Lifetime
from ikesim.ike.core import IkeCore
from ikesim.metrics.results import Results
from ikesim.sim.checkclock import CheckClock
from ikesim.sim.simulation import Simulation

NO_REKEY = Lifetime(rekey_time=0, life_time=0, rand_time=0)


def _race(*, patch: Callable[[Simulation], None] | None = None, child_life: Lifetime = NO_REKEY,
          actions: tuple[tuple[float, str, str], ...] = ((60.0, "client", "rekey_child"), (60.0, "gw", "rekey_child")),
          until: float = 200.0, invariants: bool = True) -> Results:
    """Client and gateway, 20 ms apart; both rekey the CHILD_SA at t=60 s (a §2.8.1 collision) unless told otherwise."""
    sim = Simulation(seed=7, invariants=invariants)
    _two_nodes(sim, child_life=child_life, ike_life=NO_REKEY)
    sim.add_link("client", "gw", delay=0.02)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    for at, node, action in actions:
        sim.schedule(at, node, action, connection="vpn", child="net" if action == "create_child" else None)
    if patch is not None:
        patch(sim)
    return sim.run(until)


def _kinds(r: Results) -> list[tuple[str, str]]:
    return list(zip(r.violations["node"], r.violations["kind"], strict=True))


def test_correct_collision_has_no_violation() -> None:
    """A simultaneous CHILD_SA rekey handled per RFC 7296 §2.8.1: one collision, no violation, one pair left."""
    r = _race()
    assert r.summary["collisions"] == 1 and r.summary["invariant_violations"] == 0
    assert r.summary["redundant_sas"] == {"child": 1, "ike": 0}
    live = r.sas[(r.sas["kind"] == "child") & r.sas["deleted_at"].isna()]
    assert len(live) == 2 and set(live["spi_in"]) == set(live["spi_out"])


def test_forgetting_the_outbound_sa_after_a_collision_is_caught() -> None:
    """A double that never switches its outbound SA to the peer's surviving one (the strongSwan bug report)."""
    def patch(sim: Simulation) -> None:
        for node in sim.nodes.values():
            d = node.daemon
            d.activate_outbound = lambda sa, child, replaces=None: None  # type: ignore[method-assign]

    r = _race(patch=patch)
    assert r.summary["collisions"] == 1
    (row,) = r.violations.itertuples()
    assert row.kind == "sa_mismatch" and "used one way only" in row.detail
    # the loser of the collision is the one left without an outbound SA
    loser = r.events[(r.events["event"] == "RekeyCollision") & (r.events["won"] == False)]["node"].item()  # noqa: E712
    # reported once the tunnel settled: 10 s after the last change (the old SA's 5 s linger ended at ~65.06 s)
    assert row.node == loser and row.time == pytest.approx(60.06 + 5.0 + 10.0, abs=0.05)


def test_removing_the_old_inbound_sa_too_early_is_caught() -> None:
    """A double whose rekey initiator removes the old SA when it sends the Delete, not after the answer:
    the responder still sends with it until the Delete arrives 20 ms later (RFC 7296 §1.4.1)."""
    def patch(sim: Simulation) -> None:
        d = sim.nodes["client"].daemon
        original = d.starters["delete_child"]

        def start(core, sa, work, now):  # noqa: ANN001, ANN202
            child = core.children.get(work.spi)
            started = original(core, sa, work, now)
            if started and work.reason == "rekeyed":
                core.remove_child(sa, child, "rekeyed")
            return started

        d.starters["delete_child"] = start

    r = _race(patch=patch, actions=((60.0, "client", "rekey_child"),))
    assert _kinds(r) == [("gw", "outbound_without_inbound")]
    v = r.violations.iloc[0]
    assert v["time"] == pytest.approx(60.04) and "which client removed (rekeyed)" in v["detail"]


def test_sending_after_hard_lifetime_is_caught() -> None:
    """A double that ignores the hard lifetime: the SA is still outbound when it expires."""
    life = Lifetime(rekey_time=0, life_time=100.0, rand_time=0)

    def patch(sim: Simulation) -> None:
        d = sim.nodes["gw"].daemon
        d._timer_handlers["child_hard"] = lambda spi, now: None

    r = _race(patch=patch, child_life=life, actions=())
    assert _kinds(r) == [("gw", "used_after_hard_lifetime")]
    assert r.violations["time"].item() == pytest.approx(100.06 + 1e-6)  # installed at 60 ms (IKE_AUTH request)
    clean = _race(child_life=life, actions=())
    assert clean.summary["invariant_violations"] == 0 and clean.summary["sas"]["child_deleted"] == 2


def test_reusing_a_message_id_is_caught() -> None:
    """A double that sends a second, different request with the message ID of the first (RFC 7296 §2.2)."""
    def patch(sim: Simulation) -> None:
        d = sim.nodes["client"].daemon
        original = IkeCore.request

        def request(sa, exchange_type, purpose, inner, now, *, work=None):  # noqa: ANN001, ANN202
            if purpose == "dpd":
                sa.next_message_id -= 1
            return original(d, sa, exchange_type, purpose, inner, now, work=work)

        d.request = request  # type: ignore[method-assign]

    r = _race(patch=patch, actions=((60.0, "client", "rekey_child"), (100.0, "client", "dpd")))
    assert ("client", "message_id_reused") in _kinds(r)


def test_two_outbound_sas_after_settling_are_caught() -> None:
    """A double that never stops sending with the other SA of a child when another one is installed."""
    def patch(sim: Simulation) -> None:
        def take(sa, child):  # noqa: ANN001, ANN202
            child.outbound = True
            return None

        sim.nodes["client"].daemon._take_outbound = take  # type: ignore[method-assign]

    r = _race(patch=patch, actions=((60.0, "client", "create_child"),), until=100.0)
    # the client sends with two SAs of child "net"; the gateway, correctly, only with the newest, so the
    # older pair is also used one way only
    assert sorted(_kinds(r)) == [("client", "duplicate_outbound"), ("gw", "sa_mismatch")]
    assert sorted(r.violations["time"]) == pytest.approx([70.02, 70.04])  # 10 s after each side's last change
    clean = _race(actions=((60.0, "client", "create_child"),), until=100.0)
    assert clean.summary["invariant_violations"] == 0 and clean.summary["sas"]["child_installed"] == 4


def test_checker_off_records_nothing() -> None:
    """invariants=False runs no checker (the broken double goes unnoticed)."""
    def patch(sim: Simulation) -> None:
        sim.nodes["gw"].daemon._timer_handlers["child_hard"] = lambda spi, now: None

    r = _race(patch=patch, child_life=Lifetime(rekey_time=0, life_time=100.0, rand_time=0), actions=(),
              invariants=False)
    assert r.summary["invariant_violations"] == 0 and len(r.violations) == 0


def _steps(invariants: bool) -> tuple[Simulation, int]:
    """A client rekeying its CHILD_SA every 30 s and its IKE_SA at 100 s, 20 ms from the gateway, for 200 s."""
    sim = Simulation(seed=7, invariants=invariants)
    _two_nodes(sim, child_life=Lifetime(rekey_time=30.0, life_time=40.0, rand_time=0), ike_life=NO_REKEY)
    sim.add_link("client", "gw", delay=0.02)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    sim.schedule(100.0, "client", "rekey_ike", connection="vpn")
    steps = 0
    step = sim.env.step

    def counting() -> None:
        nonlocal steps
        steps += 1
        step()

    sim.env.step = counting  # type: ignore[method-assign]
    sim.advance(200.0)
    return sim, steps


def test_checks_are_no_engine_events() -> None:
    """The checker's settle and hard-lifetime checks run between engine events: the engine steps the same."""
    sim, with_checker = _steps(True)
    _off, without = _steps(False)
    assert sim.checker is not None and sim.checker.checks > 0
    assert with_checker == without


def test_request_history_goes_with_the_ike_sa() -> None:
    """Requests are remembered per IKE_SA (RFC 7296 §2.2) only while a node that sent them still holds it."""
    sim, _steps_run = _steps(True)
    assert sim.checker is not None
    live = {(sa.spi_i, sa.spi_r) for sa in sim.nodes["client"].daemon.sas.values()}
    assert len(live) == 1 and set(sim.checker._requests) == live  # the rekeyed IKE_SA's requests are gone
    assert set(sim.nodes["client"].child_names) == set(sim.nodes["client"].daemon.children)


def test_clock_runs_checks_in_the_place_of_timeouts() -> None:
    """A check runs among same-instant events where a timeout scheduled when it was would (SimPy FIFO)."""
    env = simpy.Environment()
    log: list[object] = []
    env.timeout(5.0).callbacks.append(lambda _e: log.append("before"))
    clock = CheckClock(env, lambda c: log.append((c, env.now)), lambda c: c == "moot")
    clock.at(5.0, "check")
    clock.at(5.0, "moot")
    env.timeout(5.0).callbacks.append(lambda _e: log.append("after"))
    clock.at(2.0, "early")
    env.run(until=10.0)
    assert log == [("early", 2.0), "before", ("check", 5.0), "after"]
