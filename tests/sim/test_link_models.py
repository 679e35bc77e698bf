"""Realistic links: delay distributions, reordering, bandwidth and queues, Gilbert–Elliott loss, duplication,
down periods and IP fragmentation, with exact fates on seeded streams; and their scenario keys."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import simpy
from list_recorder import ListRecorder

from ikesim.errors import ConfigError
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.rng import Rng
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario_text
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.link import Link, ip_udp_size
from ikesim.sim.linkmodels import (
    Bernoulli,
    Exponential,
    Fixed,
    GilbertElliott,
    LogNormal,
    Normal,
    Uniform,
    fragment_count,
    parse_bandwidth,
    parse_queue,
)
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

A, B = Address("10.0.0.1", 500), Address("10.0.0.2", 500)
ROOT = Path(__file__).resolve().parents[2]
QUICK = (ROOT / "scenarios" / "quickstart.yaml").read_text()


def _link(**kw: object) -> tuple[simpy.Environment, Link, ListRecorder, list[tuple[float, int]]]:
    env = simpy.Environment()
    col = ListRecorder()
    got: list[tuple[float, int]] = []
    next_id = [1000]

    def copy(node: str, d: SimDatagram) -> SimDatagram:
        next_id[0] += 1
        col.record_sent(next_id[0], env.now, node, d.src, d.dst, d.data)
        return SimDatagram(next_id[0], d.src, d.dst, d.data)

    link = Link(env, "a", "b", rng=Rng(7, "models"), deliver=lambda _n, d: got.append((env.now, d.id)),
                collector=col, copy=copy, **kw)  # type: ignore[arg-type]
    return env, link, col, got


def _at(env: simpy.Environment, link: Link, times: list[float], size: int = 100) -> None:
    for i, t in enumerate(times):
        env.timeout(t).callbacks.append(lambda _e, i=i: link.put(SimDatagram(i + 1, A, B, bytes(size))))


class _Scripted:
    """A loss model that loses exactly the packets (fragments) whose index is in *lose*."""

    def __init__(self, lose: set[int]) -> None:
        self.lose, self.n = lose, 0

    def process(self) -> _Scripted:
        return self

    @property
    def rate(self) -> float:
        return 0.0

    def lost(self, rng: Rng) -> bool:
        self.n += 1
        return self.n in self.lose


# --- delay distributions ------------------------------------------------------------------


def test_fixed_delay_draws_nothing() -> None:
    """Fixed (and a plain number) never touches the stream."""
    rng = Rng(1, "x")
    assert [Fixed(0.02).sample(rng) for _ in range(3)] == [0.02] * 3
    assert rng.random() == Rng(1, "x").random()


@pytest.mark.parametrize(("dist", "replica"), [
    (Uniform(0.01, 0.03), lambda r: r.uniform(0.01, 0.03)),
    (Exponential(0.02, base=0.005), lambda r: 0.005 - 0.02 * math.log(1.0 - r.random())),
    (Normal(0.001, 0.01), lambda r: max(0.0, 0.001 + 0.01 * math.sqrt(-2 * math.log(1 - r.random())) * math.cos(2 * math.pi * r.random()))),
    (LogNormal(0.02, 0.5), lambda r: 0.02 * math.exp(0.5 * math.sqrt(-2 * math.log(1 - r.random())) * math.cos(2 * math.pi * r.random()))),
], ids=["uniform", "exponential", "normal", "lognormal"])
def test_link_delay_follows_the_distribution_draw_for_draw(dist, replica) -> None:
    """Arrival = send + one sample from the link's stream; normal is clipped at 0 (here often)."""
    env, link, col, got = _link(delay=dist)
    _at(env, link, [float(i) for i in range(200)])
    env.run(until=300)
    r = Rng(7, "models")
    expected = [(i + replica(r), i + 1) for i in range(200)]
    assert got == [(pytest.approx(t), i) for t, i in expected] and col.fates == {}
    delays = [t - (i - 1) for t, i in got]
    assert min(delays) >= 0.0
    if isinstance(dist, Normal):
        assert delays.count(0.0) > 50
    assert abs(sum(delays) / len(delays) - dist.mean) < 0.5 * dist.mean or isinstance(dist, Normal)


def test_distribution_parameters_are_checked() -> None:
    """Negative or inconsistent parameters raise ValueError."""
    for bad in (lambda: Uniform(0.03, 0.01), lambda: Normal(-1, 0), lambda: Exponential(0), lambda: Fixed(-0.1),
                lambda: LogNormal(0, 1), lambda: GilbertElliott(1.5, 0.1), lambda: Bernoulli(-0.1)):
        with pytest.raises(ValueError):
            bad()


# --- reordering ---------------------------------------------------------------------------


def test_reorder_false_never_lets_a_datagram_overtake() -> None:
    """With jitter 50 ms and sends 1 ms apart: reorder=True reorders, reorder=False never does (max(own, previous))."""
    times = [i * 0.001 for i in range(300)]
    env, link, _col, got = _link(delay=0.05, jitter=0.05)
    _at(env, link, times)
    env.run(until=10)
    assert [i for _t, i in got] != sorted(i for _t, i in got)
    env, link, _col, ordered = _link(delay=0.05, jitter=0.05, reorder=False)
    _at(env, link, times)
    env.run(until=10)
    assert [i for _t, i in ordered] == list(range(1, 301))
    r, last, expected = Rng(7, "models"), 0.0, []
    for t in times:
        last = max(last, t + max(0.0, 0.05 + r.uniform(-0.05, 0.05)))
        expected.append(last)
    assert [t for t, _i in ordered] == pytest.approx(expected)


# --- bandwidth and queue ------------------------------------------------------------------


def test_serialization_delay_is_exact_and_fifo() -> None:
    """1 Mbit/s, 1028-byte IP packets sent together: the k-th arrives at (k+1) * 8.224 ms + delay."""
    env, link, col, got = _link(delay=0.01, bandwidth="1Mbit")
    _at(env, link, [0.0] * 5, size=1000)
    _at(env, link, [1.0], size=1000)
    env.run(until=5)
    tx = 1028 * 8 / 1e6
    assert got == [(pytest.approx((k + 1) * tx + 0.01), k + 1) for k in range(5)] + [(pytest.approx(1.0 + tx + 0.01), 1)]
    assert col.fates == {}


def test_tail_drop_at_exactly_the_queue_limit_in_packets() -> None:
    """queue=3: one datagram in transmission and 3 waiting; the 5th and later sent together overflow."""
    env, link, col, got = _link(bandwidth=1e6, queue=3)
    _at(env, link, [0.0] * 10, size=1000)
    env.run(until=1)
    assert [i for _t, i in got] == [1, 2, 3, 4]
    assert col.fates == {i: ("queue_overflow", 0.0, "a->b") for i in range(5, 11)}


def test_queue_in_bytes_and_draining() -> None:
    """queue=3000B holds two 1028-byte packets; once the first has been sent, a new one fits again."""
    tx = 1028 * 8 / 1e6
    env, link, col, got = _link(bandwidth=1e6, queue="3000B")
    _at(env, link, [0.0, 0.0, 0.0, 0.0, tx + 1e-9], size=1000)
    env.run(until=1)
    assert col.fates == {4: ("queue_overflow", 0.0, "a->b")}
    assert [i for _t, i in got] == [1, 2, 3, 5]
    assert [t for t, _i in got] == pytest.approx([tx, 2 * tx, 3 * tx, 4 * tx])


def test_queue_zero_drops_whatever_finds_the_transmitter_busy() -> None:
    """queue=0: only a datagram that finds the transmitter idle gets through."""
    env, link, col, _got = _link(bandwidth=1e6, queue=0)
    _at(env, link, [0.0, 0.001, 0.01], size=1000)
    env.run(until=1)
    assert {i: f[0] for i, f in col.fates.items()} == {2: "queue_overflow"}


# --- loss ---------------------------------------------------------------------------------


def test_gilbert_elliott_exact_fates_for_a_short_seeded_sequence() -> None:
    """p=10 %, r=40 %, lossless good state, lossy bad state: this seed loses in bursts, exactly these."""
    env, link, col, _got = _link(loss=GilbertElliott(0.1, 0.4))
    _at(env, link, [0.0] * 30)
    env.run(until=1)
    pattern = "".join("X" if i + 1 in col.fates else "." for i in range(30))
    assert pattern == "....XXXX...............X......"
    r, bad, expected = Rng(7, "models"), False, ""
    for _ in range(30):
        expected += "X" if bad else "."
        bad = not (r.random() < 0.4) if bad else r.random() < 0.1
    assert pattern == expected and "XX" in pattern
    assert all(f[0] == "lost" for f in col.fates.values())


def test_gilbert_elliott_mean_burst_length_is_one_over_r() -> None:
    """Over 20 000 packets the mean loss burst is 1/r within 4 standard errors of the bursts actually drawn."""
    p, r = 0.05, 0.25
    env, link, col, _got = _link(loss=GilbertElliott(p, r))
    _at(env, link, [0.0] * 20000, size=10)
    env.run(until=1)
    bursts, run = [], 0
    for i in range(1, 20001):
        if i in col.fates:
            run += 1
        elif run:
            bursts.append(run)
            run = 0
    mean = sum(bursts) / len(bursts)
    se = math.sqrt(1 - r) / r / math.sqrt(len(bursts))
    assert abs(mean - 1 / r) < 4 * se
    assert abs(len(col.fates) / 20000 - GilbertElliott(p, r).rate) < 0.03


def test_gilbert_elliott_per_state_loss_draws() -> None:
    """loss_good/loss_bad strictly between 0 and 1 draw once per packet before the transition draw."""
    model = GilbertElliott(0.2, 0.3, loss_good=0.05, loss_bad=0.6)
    env, link, col, _got = _link(loss=model)
    _at(env, link, [0.0] * 500)
    env.run(until=1)
    rr, bad, lost = Rng(7, "models"), False, set()
    for i in range(500):
        if rr.random() < (0.6 if bad else 0.05):
            lost.add(i + 1)
        bad = not (rr.random() < 0.3) if bad else rr.random() < 0.2
    assert set(col.fates) == lost


# --- duplication, outages -----------------------------------------------------------------


def test_duplicate_sends_a_new_datagram_that_is_counted_as_sent() -> None:
    """duplicate=1: every datagram arrives twice, the copy under a new id recorded as sent by node a."""
    env, link, col, got = _link(delay=0.01, duplicate=1.0)
    _at(env, link, [0.0, 1.0])
    env.run(until=5)
    assert got == [(pytest.approx(0.01), 1), (pytest.approx(0.01), 1001), (pytest.approx(1.01), 2), (pytest.approx(1.01), 1002)]
    assert [(i, node) for i, _t, node, *_ in col.datagrams] == [(1001, "a"), (1002, "a")]


def test_duplicate_probability_uses_one_draw_per_datagram() -> None:
    """duplicate=30 %: a copy follows exactly the datagrams whose draw is below it."""
    env, link, _col, got = _link(duplicate=0.3)
    _at(env, link, [float(i) for i in range(100)])
    env.run(until=200)
    r = Rng(7, "models")
    dups = [i + 1 for i in range(100) if r.random() < 0.3]
    assert len(got) == 100 + len(dups) and 10 < len(dups) < 50


def test_down_periods_drop_exactly_the_datagrams_sent_in_them() -> None:
    """down [1, 2) and [3, 3.5): sends every 0.25 s; those at 1.0..1.75 and 3.0, 3.25 are link_down."""
    env, link, col, got = _link(delay=0.5, down=[(3.0, 3.5), (1.0, 2.0)])
    times = [i * 0.25 for i in range(20)]
    _at(env, link, times)
    env.run(until=10)
    down = {i + 1 for i, t in enumerate(times) if 1.0 <= t < 2.0 or 3.0 <= t < 3.5}
    assert col.fates == {i: ("link_down", pytest.approx(times[i - 1]), "a->b") for i in down}
    assert {i for _t, i in got} == set(range(1, 21)) - down


# --- fragmentation ------------------------------------------------------------------------


def test_fragment_count_ipv4() -> None:
    """ceil((size - 20) / (8 * floor((mtu - 20) / 8))): 2000 bytes on 1500 is 2 fragments."""
    assert fragment_count(1500, 1500) == 1 and fragment_count(2000, 1500) == 2 and fragment_count(2981, 1500) == 3
    assert fragment_count(2980, 1500) == 2 and fragment_count(1028, 576) == 2 and fragment_count(300, 68) == 6


def test_one_lost_fragment_loses_the_datagram() -> None:
    """A 2000-byte datagram on MTU 1500 is 2 fragments; losing the second is fragment_lost, the first two
    datagrams of 100 bytes take the following loss decisions."""
    env, link, col, got = _link(loss=_Scripted({2}), mtu=1500)
    big = SimDatagram(1, A, B, bytes(2000 - 28))
    assert ip_udp_size(big) == 2000
    link.put(big)
    link.put(SimDatagram(2, A, B, bytes(100)))
    env.run(until=1)
    assert col.fates == {1: ("fragment_lost", 0.0, "a->b")} and [i for _t, i in got] == [2]
    assert link.fragmented == {1}


def test_fragments_add_header_bytes_on_the_wire() -> None:
    """A 2000-byte datagram in 2 fragments serializes 2020 bytes."""
    env, link, _col, got = _link(bandwidth=1e6, mtu=1500)
    link.put(SimDatagram(1, A, B, bytes(2000 - 28)))
    env.run(until=1)
    assert got == [(pytest.approx(2020 * 8 / 1e6), 1)]


def test_drop_fragments_drops_exactly_the_datagrams_above_the_mtu() -> None:
    """drop_fragments=True: every datagram above the MTU is fragments_dropped, the rest arrive."""
    env, link, col, got = _link(mtu=576, drop_fragments=True)
    sizes = [100, 548, 549, 1000, 576 - 28, 60]
    for i, n in enumerate(sizes):
        link.put(SimDatagram(i + 1, A, B, bytes(n)))
    env.run(until=1)
    big = {i + 1 for i, n in enumerate(sizes) if n + 28 > 576}
    assert big == {3, 4}
    assert col.fates == {i: ("fragments_dropped", 0.0, "a->b") for i in big}
    assert {i for _t, i in got} == set(range(1, 7)) - big


# --- a whole simulation ---------------------------------------------------------------------


def _two_nodes(sim: Simulation) -> None:
    psk = Credentials(psk=b"sim-test-psk")
    child = ChildPolicy(lifetime=Lifetime(rekey_time=600.0, life_time=700.0, rand_time=60.0))
    ike = IkePolicy(lifetime=Lifetime(rekey_time=1200.0, life_time=1400.0, rand_time=60.0))
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address("10.0.0.2"),
                   credentials=psk, ike=ike, children=(child,))
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=psk, ike=ike, children=(child,))
    sim.add_node(DaemonConfig("client", (Address("10.0.0.1"),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address("10.0.0.2"),), (g,)))


def _rough_run(seed: int):
    sim = Simulation(seed=seed)
    _two_nodes(sim)
    sim.add_link("client", "gw", delay=Normal(0.03, 0.01), jitter=0.01, reorder=False, bandwidth="2Mbit", queue=4,
                 loss=GilbertElliott(0.05, 0.5, loss_bad=0.8), duplicate=0.05, down=[(900.0, 1000.0)], mtu=200)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    return sim.run(3600.0)


def test_every_datagram_has_a_fate_on_a_rough_link() -> None:
    """sent = sum of all fates + in flight, with every link feature on; the tunnel survives; same seed, same packets."""
    r = _rough_run(4)
    d = r.summary["datagrams"]
    assert d["sent"] == sum(d["by_fate"].values()) + d["in_flight"]
    assert d["sent"] == d["delivered"] + d["lost"] + d["fragment_lost"] + d["fragments_dropped"] + d["queue_overflow"] \
        + d["link_down"] + d["no_route"] + d["dropped_by_fault"] + d["by_fate"].get("held", 0) + d["in_flight"]
    assert d["fragmented"] > 0 and d["delivered"] > 0
    assert r.summary["sas"]["ike_established"] >= 2
    again = _rough_run(4)
    assert again.packets.equals(r.packets) and again.summary == r.summary
    assert not _rough_run(5).packets.equals(r.packets)


# --- scenario keys ------------------------------------------------------------------------


def test_parsers() -> None:
    """Bandwidth in bit/s with SI prefixes; a queue in packets or bytes."""
    assert [parse_bandwidth(x) for x in (1000, "10Mbit", "512kbit", "1Gbit", "2Mbps", "1.5Mbit")] == \
        [1000.0, 1e7, 512e3, 1e9, 2e6, 1.5e6]
    assert [parse_queue(x) for x in (64, "64", "64KB", "1500B", "1KiB")] == \
        [(64, "packets"), (64, "packets"), (64000, "bytes"), (1500, "bytes"), (1024, "bytes")]
    for bad in ("fast", 0, -5, True, "10Mbyte"):
        with pytest.raises(ValueError):
            parse_bandwidth(bad)
    for bad in (-1, "64 apples", 1.5):
        with pytest.raises(ValueError):
            parse_queue(bad)


FULL_LINK = """    delay: {dist: normal, mean: 25ms, sd: 5ms}
    jitter: 5ms
    reorder: false
    bandwidth: 10Mbit
    queue: 64KB
    loss: {model: gilbert, p: 1%, r: 30%, loss_good: 0, loss_bad: 50%}
    duplicate: 0.1%
    down: [{from: 1h, until: 1h5min}]
    mtu: 1500
    drop_fragments: false
"""
PLAIN_LINK = "    delay: 25ms        # one way: 50 ms RTT\n    loss: 1%\n    mtu: 1500\n"


def test_full_link_block_loads_builds_and_runs() -> None:
    """Every link key of the README example is accepted, passed through and used."""
    assert PLAIN_LINK in QUICK
    m = load_scenario_text(QUICK.replace(PLAIN_LINK, FULL_LINK).replace("duration: 24h", "duration: 2h"), "x.yaml")
    sim = build_simulation(m)
    link = sim._links[("client", "gateway")]
    assert link.delay == Normal(0.025, 0.005) and link.loss == GilbertElliott(0.01, 0.3, 0.0, 0.5)
    assert (link.jitter, link.reorder, link.bandwidth, link.queue, link.duplicate, link.down) == \
        (0.005, False, 1e7, (64000, "bytes"), 0.001, ((3600.0, 3900.0),))
    r = sim.run(7200.0)
    assert r.summary["sas"]["ike_established"] >= 2


def test_readme_links_example_is_valid() -> None:
    """The README's "### Links" example, put in the quickstart, loads and builds."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Links", 1)[1].split("```\n", 2)[1]
    assert block.startswith("links:\n  - between: [client, gateway]\n")
    start, end = QUICK.index("links:\n"), QUICK.index("connections:\n")
    m = load_scenario_text(QUICK[:start] + block + QUICK[end:], "README.md")
    assert m.links[0].bandwidth == 1e7 and m.links[0].queue == (64, "packets") and m.links[0].down[0].until == 3900.0
    build_simulation(m)


@pytest.mark.parametrize("edit,expected", [
    ("    delay: {dist: normal, mean: 25ms}\n", "x.yaml:13: links[0].delay: normal delay needs mean, sd"),
    ("    delay: {dist: fixed, value: 1s, sd: 1s}\n", "x.yaml:13: links[0].delay: fixed delay takes no sd"),
    ("    delay: {dist: pareto, mean: 1s}\n", "x.yaml:13: links[0].delay.dist: 'pareto' is not one of 'fixed', "),
    ("    delay: {dist: uniform, low: 2s, high: abc}\n", "x.yaml:13: links[0].delay.high: invalid duration 'abc'"),
    ("    delay: {dist: uniform, low: 2s, high: 1s}\n", "x.yaml:13: links[0].delay: uniform delay needs 0 <= low <= high"),
    ("    delay: 25ms\n    loss: {model: gilbert, p: 1%, r: 30%, colour: red}\n",
     "x.yaml:14: links[0].loss.colour: unknown key"),
    ("    delay: 25ms\n    loss: {model: gilbert, p: 1%}\n", "x.yaml:14: links[0].loss.r: required key missing"),
    ("    delay: 25ms\n    loss: {model: gilbert, p: 1%, r: 150%}\n", "x.yaml:14: links[0].loss.r: ratio '150%' is outside [0, 1]"),
    ("    delay: 25ms\n    loss: {model: gilbert, p: 1%, r: 3%, k: 0.9, loss_good: 0.1}\n",
     "x.yaml:14: links[0].loss: give loss_good or k"),
    ("    delay: 25ms\n    bandwidth: 10Mbyte\n", "x.yaml:14: links[0].bandwidth: invalid bandwidth '10Mbyte'"),
    ("    delay: 25ms\n    queue: 64\n", "x.yaml:12: links[0]: queue needs a bandwidth"),
    ("    delay: 25ms\n    bandwidth: 1Mbit\n    queue: lots\n", "x.yaml:15: links[0].queue: invalid queue 'lots'"),
    ("    delay: 25ms\n    down: [{from: 2h, until: 1h}]\n", "x.yaml:14: links[0].down[0]: until 3600s is before from 7200s"),
    ("    delay: 25ms\n    down:\n      - {from: 2h, until: 3h, till: 3h}\n", "x.yaml:15: links[0].down[0].till: unknown key"),
    ("    delay: 25ms\n    duplicate: 2\n", "x.yaml:14: links[0].duplicate: ratio 2 is outside [0, 1]"),
    ("    delay: 25ms\n    reorder: maybe\n", "x.yaml:14: links[0].reorder: expected true or false, got the text 'maybe'"),
])
def test_link_errors_name_file_line_and_key(edit: str, expected: str) -> None:
    """Each invalid link key raises ConfigError with file:line: key.path: reason."""
    with pytest.raises(ConfigError) as err:
        load_scenario_text(QUICK.replace(PLAIN_LINK, edit), "x.yaml")
    assert str(err.value).startswith(expected), str(err.value)
