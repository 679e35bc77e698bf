"""One link direction: exact delay, jitter, Bernoulli loss and MTU fates on a seeded stream (more in test_link_models)."""

from __future__ import annotations

import pytest
import simpy
from list_recorder import ListRecorder

from ikesim.rng import Rng
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.link import Link, ip_udp_size
from ikesim.sim.linkmodels import fragment_count
from ikesim.types import Address

A500, B500 = Address("10.0.0.1", 500), Address("10.0.0.2", 500)
A4500, B4500 = Address("10.0.0.1", 4500), Address("10.0.0.2", 4500)


def _link(**kw: object) -> tuple[simpy.Environment, Link, ListRecorder, list[tuple[float, str, int]]]:
    env = simpy.Environment()
    col = ListRecorder()
    got: list[tuple[float, str, int]] = []
    params = {"delay": 0.0, "jitter": 0.0, "loss": 0.0, "mtu": 1500} | kw
    link = Link(env, "a", "b", rng=Rng(99, "link-test"), deliver=lambda n, d: got.append((env.now, n, d.id)),
                collector=col, **params)  # type: ignore[arg-type]
    return env, link, col, got


def _send_every(env: simpy.Environment, link: Link, n: int, gap: float, size: int = 100) -> None:
    for i in range(n):
        t = env.timeout(i * gap)
        t.callbacks.append(lambda _e, i=i: link.put(SimDatagram(i + 1, A500, B500, bytes(size))))


def test_fixed_delay_delivers_each_datagram_exactly_delay_later() -> None:
    """Without jitter or loss every datagram arrives at send time + delay, in order, at node b."""
    env, link, col, got = _link(delay=0.025)
    _send_every(env, link, 5, 0.1)
    env.run(until=10)
    assert got == [(pytest.approx(i * 0.1 + 0.025), "b", i + 1) for i in range(5)]
    assert col.fates == {}


def test_jitter_is_uniform_around_delay_clipped_at_zero() -> None:
    """Arrival = send + max(0, delay + U(-jitter, jitter)) with the link's own stream, one draw per datagram."""
    env, link, _col, got = _link(delay=0.002, jitter=0.01)
    _send_every(env, link, 40, 1.0)
    env.run(until=100)
    replica = Rng(99, "link-test")
    expected = {i + 1: i * 1.0 + max(0.0, 0.002 + replica.uniform(-0.01, 0.01)) for i in range(40)}
    assert {ident: t for t, _n, ident in got} == pytest.approx(expected)
    delays = [t - (ident - 1) for t, _n, ident in got]
    assert min(delays) == 0.0 and max(delays) <= 0.012
    assert any(d == 0.0 for d in delays) and any(d > 0.002 for d in delays)


def test_loss_is_bernoulli_from_the_named_stream() -> None:
    """A datagram is lost iff the stream's next random() < loss; losses are recorded with time and link."""
    env, link, col, got = _link(delay=0.01, loss=0.3)
    _send_every(env, link, 200, 0.5)
    env.run(until=200)
    replica = Rng(99, "link-test")
    lost = {i + 1 for i in range(200) if replica.random() < 0.3}
    assert set(col.fates) == lost
    assert all(f == ("lost", pytest.approx((i - 1) * 0.5), "a->b") for i, f in col.fates.items())
    assert {ident for _t, _n, ident in got} == set(range(1, 201)) - lost
    assert 30 < len(lost) < 90


def test_loss_one_drops_everything_and_loss_zero_draws_nothing() -> None:
    """loss=1 loses every datagram; loss=0 never consumes the stream (adding loss later keeps other draws)."""
    env, link, col, got = _link(loss=1.0)
    _send_every(env, link, 10, 1.0)
    env.run(until=20)
    assert got == [] and [f[0] for f in col.fates.values()] == ["lost"] * 10
    env, link, col, got = _link(jitter=0.5)
    _send_every(env, link, 3, 1.0)
    env.run(until=20)
    replica = Rng(99, "link-test")
    assert [t for t, _n, _i in got] == pytest.approx([i + max(0.0, replica.uniform(-0.5, 0.5)) for i in range(3)])


@pytest.mark.parametrize(("src", "dst", "fits"), [(A500, B500, 1472), (A4500, B4500, 1468), (A500, B4500, 1468)])
def test_mtu_counts_ip_udp_and_non_esp_marker(src: Address, dst: Address, fits: int) -> None:
    """Size = 20 + 8 (+4 on port 4500) + payload; one byte over the MTU is fragmented (delivered), or with
    drop_fragments dropped as fragments_dropped."""
    env, link, col, got = _link(mtu=1500)
    ok, big = SimDatagram(1, src, dst, bytes(fits)), SimDatagram(2, src, dst, bytes(fits + 1))
    assert ip_udp_size(ok) == 1500 and ip_udp_size(big) == 1501
    link.put(ok)
    link.put(big)
    env.run(until=1)
    assert [i for _t, _n, i in got] == [1, 2] and col.fates == {} and link.fragmented == {2}
    env, link, col, got = _link(mtu=1500, drop_fragments=True)
    link.put(SimDatagram(1, src, dst, bytes(fits)))
    link.put(SimDatagram(2, src, dst, bytes(fits + 1)))
    env.run(until=1)
    assert [i for _t, _n, i in got] == [1]
    assert col.fates == {2: ("fragments_dropped", 0.0, "a->b")}


def test_each_fragment_takes_one_loss_draw() -> None:
    """A datagram in k fragments draws k times; it is fragment_lost iff any draw loses, lost if unfragmented."""
    env, link, col, _got = _link(loss=0.3, mtu=576)
    link.put(SimDatagram(1, A500, B500, bytes(1000)))
    for i in range(2, 12):
        link.put(SimDatagram(i, A500, B500, bytes(10)))
    env.run(until=1)
    replica = Rng(99, "link-test")
    assert fragment_count(1028, 576) == 2  # 28 + 1000 bytes; a fragment carries up to 552 of the 1008 after the IP header
    first = [replica.random() < 0.3 for _ in range(2)]
    expected = {1: "fragment_lost"} if any(first) else {}
    expected |= {i: "lost" for i in range(2, 12) if replica.random() < 0.3}
    assert {i: f[0] for i, f in col.fates.items()} == expected


@pytest.mark.parametrize("bad", [{"delay": -1.0}, {"jitter": -0.1}, {"loss": 1.5}, {"loss": -0.1}, {"mtu": 40}])
def test_invalid_parameters_are_rejected(bad: dict[str, float]) -> None:
    """Negative delay/jitter, a loss outside [0, 1] or an MTU below 68 (RFC 791) raise ValueError."""
    with pytest.raises(ValueError):
        _link(**bad)


def test_delivery_schedules_one_event_per_datagram() -> None:
    """Each delivered datagram costs exactly one SimPy event (no process, no store)."""
    env, link, _col, got = _link(delay=0.01)
    for i in range(50):
        link.put(SimDatagram(i + 1, A500, B500, b"x"))
    steps = 0
    while env.peek() != float("inf"):
        env.step()
        steps += 1
    assert steps == 50 and len(got) == 50
