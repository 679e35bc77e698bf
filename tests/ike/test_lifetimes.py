"""Lifetime draws as strongSwan makes them (``ikesim.ike.lifetimes``, RFC 7296 §2.8) and pluto's retransmissions."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
from ikepeers import LONG, make_peers

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, IkePolicy, Lifetime, RetransmitPolicy, pluto_timeouts
from ikesim.ike.lifetimes import apply_jitter, child_deadlines, ike_deadlines, ike_jitter
from ikesim.rng import Rng


class _Core:
    """What the draws need of a daemon: its seeded stream."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = Rng(seed, "node")
        self.draws = 0

    @property
    def rng_lifetime(self) -> Rng:
        """The ``lifetime`` stream, as ``IkeCore.rng_lifetime``; counts who asks for it."""
        self.draws += 1
        return vars(self).setdefault("_lifetime", self.rng.child("lifetime"))


def test_apply_jitter_is_child_cfg_c() -> None:
    """``rekey - (uint64)(min(rand + 1, rekey) * U)``: 20 s, rand 5 s -> 20 - floor(6 U), i.e. 15..20 s, each for a
    sixth of [0, 1); rand 0 -> 20; rand above rekey -> never below 1 s; a fraction of rand_time counts for nothing."""
    assert [apply_jitter(20.0, 5.0, k / 6) for k in range(6)] == [20.0, 19.0, 18.0, 17.0, 16.0, 15.0]
    assert apply_jitter(20.0, 5.0, 1 / 6 - 1e-12) == 20.0 and apply_jitter(20.0, 5.0, 0.999999) == 15.0
    assert apply_jitter(20.0, 0.0, 0.999) == 20.0
    assert apply_jitter(3.0, 10.0, 0.999999) == 1.0  # min(11, 3) * U < 3
    assert apply_jitter(20.0, 5.9, 0.999999) == 15.0 and apply_jitter(20.0, 0.9, 0.999) == 20.0
    assert apply_jitter(10.5, 2.0, 0.999999) == 8.5  # the configured fraction is kept, whole seconds go


def test_child_rekeys_at_the_earlier_of_two_draws_per_sa() -> None:
    """A CHILD_SA installed at 100 s with rekey 20 s, rand 5 s, life 25 s: one draw for the inbound SA, one for the
    outbound SA, from the ``lifetime`` stream; it rekeys at 100 + the smaller, expires at 125 (``child_sa.c``)."""
    life = Lifetime(rekey_time=20.0, life_time=25.0, rand_time=5.0)
    core = _Core()
    ref = Rng(7, "node", "lifetime")
    got = [child_deadlines(core, life, 100.0) for _ in range(200)]
    want = []
    for _ in range(200):
        inbound, outbound = apply_jitter(20.0, 5.0, ref.random()), apply_jitter(20.0, 5.0, ref.random())
        want.append((100.0 + min(inbound, outbound), 125.0))
    assert got == want
    assert {r for r, _ in got} <= {115.0, 116.0, 117.0, 118.0, 119.0, 120.0}
    assert got[:6] == [(118.0, 125.0), (116.0, 125.0), (118.0, 125.0), (118.0, 125.0), (119.0, 125.0), (116.0, 125.0)]


def test_min_of_two_draws_has_strongswans_histogram() -> None:
    """P(min of two draws = 15 s) = 1 - (5/6)^2 = 11/36: 10,000 draws land within 2 % of it."""
    core = _Core(3)
    life = Lifetime(rekey_time=20.0, life_time=25.0, rand_time=5.0)
    counts = Counter(child_deadlines(core, life, 0.0)[0] for _ in range(10_000))
    assert set(counts) == {15.0, 16.0, 17.0, 18.0, 19.0, 20.0}
    assert counts[15.0] / 10_000 == pytest.approx(11 / 36, abs=0.02)
    assert counts[20.0] / 10_000 == pytest.approx(1 / 36, abs=0.01)


def test_no_jitter_draws_nothing() -> None:
    """rand_time 0 (or below 1 s): the rekey time as configured and no draw at all."""
    core = _Core()
    assert child_deadlines(core, Lifetime(rekey_time=20.5, life_time=30.0, rand_time=0.5), 1.0) == (21.5, 31.0)
    assert core.draws == 0


def test_ike_rekey_is_peer_cfg_c() -> None:
    """IKE_SA: rekey_time - random() % rand_time (0 .. rand - 1), from the ``lifetime`` stream; hard lifetime over_time
    (life - rekey) after the drawn rekey time (``ike_sa.c`` STAT_DELETE); rand_time cut to rekey/reauth time."""
    life = Lifetime(rekey_time=14400.0, life_time=15840.0, rand_time=1440.0)
    core = _Core()
    ref = Rng(7, "node", "lifetime")
    for _ in range(50):
        soft = 14400.0 - ref.below(1440)
        assert ike_deadlines(core, life, 0.0, 10.0) == (10.0 + soft, 10.0 + soft + 1440.0)
    assert ike_jitter(Lifetime(rekey_time=100.0, life_time=200.0, rand_time=150.0), 0.0) == 100
    assert ike_jitter(Lifetime(rekey_time=100.0, life_time=200.0, rand_time=90.0), 60.0) == 60
    assert ike_jitter(Lifetime(rekey_time=100.0, life_time=200.0, rand_time=1.0), 0.0) == 1
    # random() % 1 is always 0: rand_time 1 s jitters nothing
    assert ike_deadlines(_Core(), Lifetime(rekey_time=100.0, life_time=200.0, rand_time=1.0), 0.0, 0.0) == (100.0, 200.0)
    assert ike_deadlines(_Core(), Lifetime(rekey_time=0.0, life_time=200.0, rand_time=10.0), 0.0, 5.0) == (None, 205.0)


def test_daemons_draw_per_sa_on_both_ends() -> None:
    """Two daemons, CHILD rekey 20 s, rand 5 s: each end's ChildSaInstalled carries its install time plus the smaller
    of its own two draws (its own ``lifetime`` stream, seed 1, names client/gateway); expiry 25 s after install."""
    child = ChildPolicy(lifetime=Lifetime(rekey_time=20.0, life_time=25.0, rand_time=5.0))
    p = make_peers(client_ike=IkePolicy(lifetime=LONG), gateway_ike=IkePolicy(lifetime=LONG),
                   client_children=(child,), gateway_children=(child,))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    for daemon, name in ((p.client, "client"), (p.gateway, "gateway")):
        (inst,) = [e for e in p.events(daemon) if isinstance(e, ev.ChildSaInstalled)]
        ref = Rng(1).child(name).child("lifetime")
        want = min(apply_jitter(20.0, 5.0, ref.random()), apply_jitter(20.0, 5.0, ref.random()))
        assert (inst.rekey_at, inst.expire_at) == (want, 25.0)


PLUTO = [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
"""libreswan pluto ``retransmit.c`` with retransmit-interval 500 ms, retransmit-timeout 60 s, traced by hand:
``start_retransmits`` waits ``delay`` = 0.5 (``delays`` 0.5); each ``retransmit`` event gives up if ``delays`` >=
timeout, else ``double_delay`` (not before the first retransmission), ``delays += delay``, waits ``delay``."""


def test_libreswan_schedule_is_plutos() -> None:
    """Retransmissions 0.5, 1, 2, 4, 8, 16, 32 s after the first send, given up at 64 s (60 s timeout reached);
    pluto 5.4's 30 s timeout: six retransmissions, given up at 32 s."""
    waits = RetransmitPolicy.libreswan().timeouts()
    assert waits == PLUTO
    assert list(itertools.accumulate(waits)) == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    assert list(itertools.accumulate(RetransmitPolicy.libreswan(30.0).timeouts())) == [
        0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    # MAXIMUM_RETRANSMITS_PER_EXCHANGE: with a long timeout the count (12) ends it
    assert pluto_timeouts(0.5, 10_000.0) == [0.5, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert pluto_timeouts(1.0, 10.0) == [1.0, 1.0, 2.0, 4.0, 8.0]  # 8 s waited < 10 s: one more, given up at 16 s


def test_libreswan_exchange_retransmits_on_plutos_schedule() -> None:
    """A client with ``retransmit: libreswan`` whose gateway never answers: IKE_SA_INIT leaves at 0 s and again at
    0.5, 1, 2, 4, 8, 16, 32 s; at 64 s it is given up."""
    p = make_peers(client_ike=IkePolicy(lifetime=LONG, retransmit=RetransmitPolicy.libreswan()))
    p.client.initiate("vpn", 0.0)
    sent = [0.0] if p.client.datagrams_to_send(0.0) else []
    while (t := p.client.get_timer()) is not None and t <= 100.0:
        p.client.handle_timer(t)
        if p.client.datagrams_to_send(t):
            sent.append(t)
        if any(isinstance(e, ev.IkeSaDeleted) for e in p.events(p.client)):
            break
    assert sent == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert t == 64.0
