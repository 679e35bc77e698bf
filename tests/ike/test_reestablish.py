"""Re-establishment after failure: dpd_action, close_action, keyingtries as strongSwan (RFC 7296 §2.4).

The client (10.0.0.1) initiates to the gateway (10.0.0.2). "Silent" means the other peer's datagrams are
dropped: only the failing side's timers are fired, at exactly their deadlines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from ikepeers import CLIENT, GATEWAY, GATEWAY_ID, LONG, Peers, config, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, DaemonConfig, IkePolicy, RetransmitPolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.reestablish import children_to_recreate, local_address, reestablish
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.wire.codec import peek_header
from ikesim.wire.iana import ExchangeType, HeaderFlag

ZERO = bytes(8)
CHILDREN = (ChildPolicy(lifetime=LONG),)
TWO_CHILDREN = (ChildPolicy(name="net", lifetime=LONG), ChildPolicy(name="web", lifetime=LONG))


def _policy(**kw: Any) -> IkePolicy:
    return IkePolicy(lifetime=LONG, **kw)


def _peers(client: IkePolicy, gateway: IkePolicy | None = None, children: tuple[ChildPolicy, ...] = CHILDREN) -> Peers:
    return make_peers(client_ike=client, gateway_ike=gateway or _policy(), client_children=children,
                      gateway_children=children)


def _give_up_times(start: float, policy: RetransmitPolicy | None = None) -> list[float]:
    """Transmission times of one request sent at *start*, then its give-up time (RFC 7296 §2.1), summed as the core
    sums them (``Exchange.advance``)."""
    waits = (policy or RetransmitPolicy()).timeouts()
    out, t = [start], start + waits[0]
    for w in waits[1:]:
        out.append(t)
        t += w
    return [*out, t]


@dataclass
class Step:
    """What one side did when its timer fired at ``at``."""

    at: float
    sent: list[Datagram]
    events: list[ev.IkeEvent]


def _run_silent(p: Peers, d: IkeDaemon, until: float) -> list[Step]:
    """Fire *d*'s timers in order up to *until* while its peer is silent (everything *d* sends is lost)."""
    steps = []
    while (t := d.get_timer()) is not None and t <= until:
        d.handle_timer(t)
        steps.append(Step(t, d.datagrams_to_send(t), p.events(d)))
    return steps


def _header(d: Datagram) -> tuple[bytes, bytes, str, int, bool]:
    """(spi_i, spi_r, exchange, message ID, response flag) of a datagram's IKE header (RFC 7296 §3.1)."""
    spi_i, spi_r, exchange, flags, mid = peek_header(d.data)
    return spi_i, spi_r, ExchangeType(exchange).name, mid, bool(flags & HeaderFlag.RESPONSE)


def _established(p: Peers, now: float) -> None:
    p.client.initiate("vpn", now)
    p.settle(now)
    p.events(p.client)
    p.events(p.gateway)


# ---------------------------------------------------------------- dpd_action


def test_dpd_restart_sends_the_new_ike_sa_init_at_the_give_up_time() -> None:
    """dpd_delay 30 s, the IKE_SA up at 100 s and the gateway silent from then: DPD at 130 s, retransmitted at
    strongSwan's 4, 7.2, 12.96, 23.328, 41.9904 s intervals (134, 141.2, 154.16, 177.488, 219.4784 s), given up
    75.58272 s later (295.06112 s): DeadPeerDetected, and with dpd_action=restart the IKE_SA_INIT of a new IKE_SA
    leaves in that instant, before the old IKE_SA's CHILD_SA and IKE_SA are removed (strongSwan ``retransmit``
    calls ``reestablish`` before the old IKE_SA is destroyed)."""
    p = _peers(_policy(dpd_delay=30.0, dpd_action="restart"))
    _established(p, 100.0)
    (old,) = p.client.ike_sa_spis()
    (spi_r,) = p.gateway.ike_sa_spis()
    (old_child,) = p.client.child_sa_spis()
    times = _give_up_times(130.0)
    steps = _run_silent(p, p.client, times[-1])
    assert times == pytest.approx([130.0, 134.0, 141.2, 154.16, 177.488, 219.4784, 295.06112], abs=1e-9)
    assert [s.at for s in steps] == times
    assert [names(s.events) for s in steps[:6]] == [["ExchangeStarted"]] + [["Retransmitted"]] * 5
    assert [[_header(d) for d in s.sent] for s in steps[:6]] == [[(old, spi_r, "INFORMATIONAL", 2, False)]] * 6
    give_up = steps[6]
    assert names(give_up.events) == ["ExchangeCompleted", "DeadPeerDetected", "IkeSaReestablishing",
                                     "ExchangeStarted", "ChildSaDeleted", "IkeSaDeleted"]
    done, dead, again, started, child_gone, gone = give_up.events
    assert isinstance(done, ev.ExchangeCompleted) and (done.purpose, done.outcome, done.retransmissions) == (
        "dpd", "timeout", 5)
    assert isinstance(dead, ev.DeadPeerDetected) and dead.spi_i == old
    assert isinstance(again, ev.IkeSaReestablishing)
    new = again.spi_i
    assert new not in (old, ZERO) and again.spi_r == ZERO
    assert (again.connection, again.old_spi, again.reason, again.action, again.attempt, again.children) == (
        "vpn", old, "dpd_timeout", "restart", 1, "net")
    assert isinstance(started, ev.ExchangeStarted)
    assert (started.spi_i, started.exchange, started.purpose, started.message_id, started.peer) == (
        new, "IKE_SA_INIT", "ike_sa_init", 0, GATEWAY)
    assert isinstance(child_gone, ev.ChildSaDeleted) and (child_gone.spi_in, child_gone.reason) == (
        old_child, "ike_deleted")
    assert isinstance(gone, ev.IkeSaDeleted) and (gone.spi_i, gone.reason) == (old, "dpd_timeout")
    (init,) = give_up.sent
    assert (init.src, init.dst) == (CLIENT, GATEWAY)
    assert _header(init) == (new, ZERO, "IKE_SA_INIT", 0, False)
    # The gateway is back: the new IKE_SA and its CHILD_SA come up; the gateway still holds the old ones.
    p.gateway.receive_datagram(init.data, init.src, init.dst, 300.0)
    p.settle(300.0)
    up = p.events(p.client)
    assert names(up) == ["ExchangeCompleted", "ExchangeStarted", "ExchangeCompleted", "IkeSaEstablished",
                         "ChildSaInstalled"]
    assert up[3].spi_i == new and p.client.ike_sa_spis() == [new]
    assert isinstance(up[4], ev.ChildSaInstalled) and up[4].child == "net" and up[4].spi_i == new
    assert len(p.gateway.ike_sa_spis()) == 2


def test_dpd_clear_does_nothing_after_the_give_up() -> None:
    """dpd_action=clear (strongSwan's default): the IKE_SA is gone at 295.06112 s and nothing more is sent."""
    p = _peers(_policy(dpd_delay=30.0))
    _established(p, 100.0)
    steps = _run_silent(p, p.client, 10_000.0)
    assert [s.at for s in steps] == _give_up_times(130.0)
    assert names(steps[-1].events) == ["ExchangeCompleted", "DeadPeerDetected", "ChildSaDeleted", "IkeSaDeleted"]
    assert steps[-1].sent == [] and p.client.sas == {} and p.client.get_timer() is None


def test_dpd_trap_asks_the_driver_to_trap_each_child_configuration_again() -> None:
    """dpd_action=trap: one TrapReinstalled per child configuration the IKE_SA had, nothing sent (the next packet
    the trap catches initiates: strongSwan ``trap_manager.install``)."""
    p = _peers(_policy(dpd_delay=30.0, dpd_action="trap"), children=TWO_CHILDREN)
    _established(p, 0.0)
    (spi,) = p.client.ike_sa_spis()
    p.client.create_child_sa(spi, "web", 1.0)
    p.settle(1.0)
    p.events(p.client)
    steps = _run_silent(p, p.client, 10_000.0)
    assert steps[0].at == 31.0 and steps[-1].at == _give_up_times(31.0)[-1]
    last = steps[-1]
    assert names(last.events) == ["ExchangeCompleted", "DeadPeerDetected", "TrapReinstalled", "TrapReinstalled",
                                  "ChildSaDeleted", "ChildSaDeleted", "IkeSaDeleted"]
    traps = [(e.spi_i, e.connection, e.child, e.reason) for e in last.events if isinstance(e, ev.TrapReinstalled)]
    assert traps == [(spi, "vpn", "net", "dpd_timeout"), (spi, "vpn", "web", "dpd_timeout")]
    assert last.sent == [] and p.client.sas == {}


def test_restart_after_any_request_times_out_recreates_every_child_configuration() -> None:
    """A CHILD_SA rekey that gets no answer (reason ``timeout``) also follows dpd_action (strongSwan ``retransmit``:
    any exchange of an established IKE_SA). Both child configurations come back: ``net`` with IKE_AUTH, ``web``
    by CREATE_CHILD_SA right after (ExchangeStarted reason ``reestablish``)."""
    p = _peers(_policy(dpd_action="restart"), children=TWO_CHILDREN)
    _established(p, 0.0)
    (old,) = p.client.ike_sa_spis()
    p.client.create_child_sa(old, "web", 1.0)
    p.settle(1.0)
    p.events(p.client)
    net = next(s for s in p.client.child_sa_spis() if p.client.children[s].name == "net")
    p.client.rekey_child_sa(net, 10.0)
    p.client.datagrams_to_send(10.0)  # lost
    p.events(p.client)
    steps = _run_silent(p, p.client, _give_up_times(10.0)[-1])
    give_up = steps[-1]
    assert give_up.at == _give_up_times(10.0)[-1] == pytest.approx(175.06112, abs=1e-9)
    again = next(e for e in give_up.events if isinstance(e, ev.IkeSaReestablishing))
    assert (again.old_spi, again.reason, again.action, again.attempt, again.children) == (
        old, "timeout", "restart", 1, "net web")
    assert [e.reason for e in give_up.events if isinstance(e, ev.IkeSaDeleted)] == ["timeout"]
    (init,) = give_up.sent
    p.gateway.receive_datagram(init.data, init.src, init.dst, 200.0)
    p.settle(200.0)
    up = p.events(p.client)
    assert [(e.exchange, e.purpose, e.reason) for e in up if isinstance(e, ev.ExchangeStarted)] == [
        ("IKE_AUTH", "ike_auth", ""), ("CREATE_CHILD_SA", "create_child", "reestablish")]
    assert sorted(e.child for e in up if isinstance(e, ev.ChildSaInstalled)) == ["net", "web"]
    assert {p.client.children[s].name for s in p.client.child_sa_spis()} == {"net", "web"}
    assert p.client.ike_sa_spis() == [again.spi_i]


def test_no_restart_without_a_child_sa_nor_for_an_ike_sa_whose_delete_was_queued() -> None:
    """strongSwan ``reestablish``: nothing to keep up without a CHILD_SA; and an IKE_SA we were deleting anyway
    ("explicitly been deleted in the mean time") is not re-established."""
    p = _peers(_policy(dpd_delay=30.0, dpd_action="restart"))
    _established(p, 0.0)
    (child,) = p.client.child_sa_spis()
    p.client.delete_child_sa(child, 1.0)
    p.settle(1.0)
    p.events(p.client)
    steps = _run_silent(p, p.client, 10_000.0)
    assert names(steps[-1].events) == ["ExchangeCompleted", "DeadPeerDetected", "IkeSaDeleted"]
    assert steps[-1].sent == [] and p.client.sas == {}

    p = _peers(_policy(dpd_delay=30.0, dpd_action="restart"))
    _established(p, 0.0)
    (spi,) = p.client.ike_sa_spis()
    p.client.handle_timer(30.0)  # DPD in flight ...
    p.client.delete_ike_sa(spi, 31.0)  # ... and our Delete queued behind it
    p.client.datagrams_to_send(31.0)
    p.events(p.client)
    steps = _run_silent(p, p.client, 10_000.0)
    assert names(steps[-1].events) == ["ExchangeCompleted", "DeadPeerDetected", "ChildSaDeleted", "IkeSaDeleted"]
    assert steps[-1].sent == [] and p.client.sas == {}


# ---------------------------------------------------------------- keyingtries


def test_keyingtries_3_gives_exactly_3_ike_sa_init_attempts_without_a_wait() -> None:
    """keyingtries 3, no answer: IKE_SA_INIT at 0 s, then at each give-up (165.06112 s, 330.12224 s) a new one
    with a new SPI ("peer not responding, trying again (2/3)"); after the third give-up (495.18336 s) nothing."""
    p = _peers(_policy(keyingtries=3))
    first = p.client.initiate("vpn", 0.0)
    sent = p.client.datagrams_to_send(0.0)
    p.events(p.client)
    steps = _run_silent(p, p.client, 100_000.0)
    starts = [0.0] + [s.at for s in steps if any(isinstance(e, ev.IkeSaReestablishing) for e in s.events)]
    second = _give_up_times(0.0)[-1]
    third = _give_up_times(second)[-1]
    assert starts == [0.0, second, third] == pytest.approx([0.0, 165.06112, 330.12224], abs=1e-9)
    assert steps[-1].at == _give_up_times(third)[-1] and p.client.get_timer() is None and p.client.sas == {}
    inits = [_header(d) for d in sent + [d for s in steps for d in s.sent]]
    spis = list(dict.fromkeys(h[0] for h in inits))
    assert len(spis) == 3 and spis[0] == first
    assert inits == [(spi, ZERO, "IKE_SA_INIT", 0, False) for spi in spis for _ in range(6)]
    again = [e for s in steps for e in s.events if isinstance(e, ev.IkeSaReestablishing)]
    assert [(e.spi_i, e.old_spi, e.reason, e.action, e.attempt, e.children) for e in again] == [
        (spis[1], spis[0], "timeout", "retry", 2, "net"), (spis[2], spis[1], "timeout", "retry", 3, "net")]
    assert [e.reason for s in steps for e in s.events if isinstance(e, ev.IkeSaDeleted)] == ["timeout"] * 3
    assert names(steps[-1].events) == ["ExchangeCompleted", "IkeSaDeleted"]


@pytest.mark.parametrize("tries,attempts", [(1, 1), (2, 2), (0, 12)])
def test_keyingtries_counts_attempts_in_all_and_0_tries_forever(tries: int, attempts: int) -> None:
    """keyingtries 1 (the default) is one attempt, as before; 0 never stops (12 attempts in 12 schedules)."""
    p = _peers(_policy(keyingtries=tries))
    p.client.initiate("vpn", 0.0)
    p.client.datagrams_to_send(0.0)
    p.events(p.client)
    steps = _run_silent(p, p.client, 12 * 165.06112 - 1.0)
    retries = sum(isinstance(e, ev.IkeSaReestablishing) for s in steps for e in s.events)
    assert retries + 1 == attempts
    assert len(p.client.sas) == (1 if tries == 0 else 0)


def test_an_unanswered_ike_auth_is_retried_from_ike_sa_init() -> None:
    """The IKE_SA is CONNECTING until IKE_AUTH completes (strongSwan IKE_CONNECTING): an IKE_AUTH that gets no answer
    counts as a failed attempt too, and the next attempt starts over with IKE_SA_INIT."""
    p = _peers(_policy(keyingtries=2))
    first = p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)  # IKE_SA_INIT reaches the gateway ...
    p.deliver(p.gateway, 0.0)  # ... and its answer the client, which sends IKE_AUTH: lost from here on
    p.events(p.client)
    steps = _run_silent(p, p.client, 1000.0)
    assert steps[0].at == 4.0 and _header(steps[0].sent[0])[2:4] == ("IKE_AUTH", 1)
    retry = next(s for s in steps if s.sent and _header(s.sent[0])[2] == "IKE_SA_INIT")
    assert retry.at == _give_up_times(0.0)[-1]  # the IKE_AUTH left at 0 s: its schedule ends at 165.06112 s
    again = next(e for e in retry.events if isinstance(e, ev.IkeSaReestablishing))
    assert (again.old_spi, again.action, again.attempt) == (first, "retry", 2)


def test_re_establishment_attempts_count_against_keyingtries() -> None:
    """dpd_action=restart with keyingtries 2 and the gateway gone for good: the re-establishment (attempt 1 at the
    DPD give-up, 195.06112 s) and one retry (360.12224 s), then nothing."""
    p = _peers(_policy(dpd_delay=30.0, dpd_action="restart", keyingtries=2))
    _established(p, 0.0)
    steps = _run_silent(p, p.client, 100_000.0)
    again = [(s.at, e.action, e.attempt) for s in steps for e in s.events if isinstance(e, ev.IkeSaReestablishing)]
    restart = _give_up_times(30.0)[-1]
    retry = _give_up_times(restart)[-1]
    assert again == [(restart, "restart", 1), (retry, "retry", 2)]
    assert (restart, retry) == pytest.approx((195.06112, 360.12224), abs=1e-9)
    assert steps[-1].at == _give_up_times(retry)[-1] and p.client.sas == {} and p.client.get_timer() is None


# ---------------------------------------------------------------- close_action


def _gateway_deletes(p: Peers, now: float) -> tuple[list[ev.IkeEvent], list[Datagram]]:
    (spi,) = p.gateway.ike_sa_spis()
    p.gateway.delete_ike_sa(spi, now)
    p.deliver(p.gateway, now)
    return p.events(p.client), p.client.datagrams_to_send(now)


def test_close_action_restart_re_establishes_when_the_peer_deletes_the_ike_sa() -> None:
    """The gateway deletes the IKE_SA at 50 s: the client answers the Delete and, in the same instant, starts a new
    IKE_SA (strongSwan ``ike_delete`` ``process_r``: ``reestablish`` with close_action)."""
    p = _peers(_policy(close_action="restart"))
    _established(p, 0.0)
    (old,) = p.client.ike_sa_spis()
    events, sent = _gateway_deletes(p, 50.0)
    assert names(events) == ["IkeSaReestablishing", "ExchangeStarted", "ChildSaDeleted", "IkeSaDeleted"]
    again = events[0]
    assert isinstance(again, ev.IkeSaReestablishing)
    assert (again.old_spi, again.reason, again.action, again.attempt) == (old, "deleted_by_peer", "restart", 1)
    assert [_header(d) for d in sent] == [(old, events[3].spi_r, "INFORMATIONAL", 0, True),
                                          (again.spi_i, ZERO, "IKE_SA_INIT", 0, False)]
    for d in sent:
        p.gateway.receive_datagram(d.data, d.src, d.dst, 50.0)
    p.settle(50.0)
    assert p.client.ike_sa_spis() == [again.spi_i] and len(p.client.child_sa_spis()) == 1
    assert len(p.gateway.ike_sa_spis()) == 1


@pytest.mark.parametrize("close_action,expect", [("none", []), ("trap", ["TrapReinstalled"])])
def test_close_action_none_or_trap_sends_nothing_new(close_action: str, expect: list[str]) -> None:
    p = _peers(_policy(close_action=close_action))
    _established(p, 0.0)
    events, sent = _gateway_deletes(p, 50.0)
    assert names(events) == [*expect, "ChildSaDeleted", "IkeSaDeleted"]
    assert [_header(d)[2] for d in sent] == ["INFORMATIONAL"] and p.client.sas == {}


def test_close_action_ignores_an_ike_sa_rekey() -> None:
    """The old IKE_SA of a rekey is deleted by the peer too (reason ``rekeyed``): that is no close."""
    p = _peers(_policy(close_action="restart"))
    _established(p, 0.0)
    (spi,) = p.gateway.ike_sa_spis()
    p.gateway.rekey_ike_sa(spi, 10.0)
    p.settle(10.0)
    events = p.events(p.client)
    assert "IkeSaReestablishing" not in names(events)
    assert [e.reason for e in events if isinstance(e, ev.IkeSaDeleted)] == ["rekeyed"]
    assert len(p.client.ike_sa_spis()) == 1


# ---------------------------------------------------------------- the responder


def test_the_responder_never_re_establishes() -> None:
    """The gateway's connection has no remote_addr (it answers anyone): with dpd_action, close_action restart and
    keyingtries 0 it only clears, on a DPD timeout and on the client's Delete alike."""
    restart = _policy(dpd_delay=30.0, dpd_action="restart", close_action="restart", keyingtries=0)
    p = _peers(_policy(), gateway=restart)
    _established(p, 0.0)
    steps = _run_silent(p, p.gateway, 10_000.0)
    dead = next(s for s in steps if s.events and isinstance(s.events[0], ev.ExchangeCompleted)
                and s.events[0].outcome == "timeout")
    assert dead.at == _give_up_times(30.0)[-1]
    assert names(dead.events) == ["ExchangeCompleted", "DeadPeerDetected", "ChildSaDeleted", "IkeSaDeleted"]
    assert dead.sent == [] and p.gateway.sas == {} and p.gateway.get_timer() is None
    assert [s.events for s in steps if s.at > dead.at] == [[]]  # only the response cache is forgotten (§2.1)

    p = _peers(_policy(), gateway=restart)
    _established(p, 0.0)
    (spi,) = p.client.ike_sa_spis()
    p.client.delete_ike_sa(spi, 5.0)
    p.deliver(p.client, 5.0)
    assert names(p.events(p.gateway)) == ["ChildSaDeleted", "IkeSaDeleted"]
    assert [_header(d)[2] for d in p.gateway.datagrams_to_send(5.0)] == ["INFORMATIONAL"]


def test_trap_needs_a_remote_address() -> None:
    """A gateway with dpd_action=trap traps nothing (strongSwan: "installing trap failed, remote address unknown")."""
    p = _peers(_policy(), gateway=_policy(dpd_delay=30.0, dpd_action="trap"))
    _established(p, 0.0)
    steps = _run_silent(p, p.gateway, 10_000.0)
    assert [names(s.events) for s in steps if "DeadPeerDetected" in names(s.events)] == [
        ["ExchangeCompleted", "DeadPeerDetected", "ChildSaDeleted", "IkeSaDeleted"]]
    assert all(s.sent == [] for s in steps[6:])


def test_a_responder_whose_connection_names_the_peer_re_establishes_as_strongswan() -> None:
    """Site-to-site: the gateway's connection has the client's address, so the gateway could initiate it; strongSwan
    re-establishes a responder's IKE_SA too unless the setup is asymmetric (virtual IPs, EAP: ``reestablish``), so
    the gateway's new IKE_SA_INIT goes to the client at the DPD give-up."""
    p = _peers(_policy())
    p.gateway = IkeDaemon(config("gateway", GATEWAY, CLIENT, local_id=GATEWAY_ID, remote_id=None,
                                 ike=_policy(dpd_delay=30.0, dpd_action="restart"), children=CHILDREN),
                          rng=Rng(1).child("gateway"))
    _established(p, 0.0)
    (old,) = p.gateway.ike_sa_spis()
    steps = _run_silent(p, p.gateway, _give_up_times(30.0)[-1])
    again = [e for e in steps[-1].events if isinstance(e, ev.IkeSaReestablishing)]
    assert [(e.old_spi, e.reason, e.attempt) for e in again] == [(old, "dpd_timeout", 1)]
    (init,) = steps[-1].sent
    assert (init.src, init.dst, _header(init)) == (GATEWAY, CLIENT, (again[0].spi_i, ZERO, "IKE_SA_INIT", 0, False))


# ---------------------------------------------------------------- the API


def _daemon(addresses: tuple[str, ...], local: Address | None = None) -> IkeDaemon:
    conn = Connection(name="vpn", local_id="c@sim.test", remote_addr=GATEWAY, local_addr=local,
                      children=CHILDREN)
    return IkeDaemon(DaemonConfig(name="c", addresses=tuple(Address(a) for a in addresses), connections=(conn,)),
                     rng=Rng(1))


def test_local_address_is_the_configured_one_while_usable_else_the_best_usable() -> None:
    """strongSwan ``resolve_hosts``: a configured local address; without one the kernel's source address (here: the
    host's best usable address); with none usable, the configured or first address."""
    d = _daemon(("10.0.0.1", "10.0.1.1"))
    conn = d.config.connections[0]
    assert local_address(d, conn) == Address("10.0.0.1")
    d.usable = ("10.0.1.1", "10.0.0.1")
    assert local_address(d, conn) == Address("10.0.1.1")
    d.usable = ()
    assert local_address(d, conn) == Address("10.0.0.1")
    fixed = _daemon(("10.0.0.1", "10.0.1.1"), local=Address("10.0.0.1"))
    conn = fixed.config.connections[0]
    fixed.usable = ("10.0.1.1", "10.0.0.1")
    assert local_address(fixed, conn) == Address("10.0.0.1")
    fixed.usable = ("10.0.1.1",)
    assert local_address(fixed, conn) == Address("10.0.1.1")


def test_reestablish_command_makes_a_new_ike_sa_from_the_best_usable_address_and_keeps_the_old_one() -> None:
    """``reestablish`` (as a roaming client without MOBIKE calls it) leaves the old IKE_SA to its caller; the new
    IKE_SA_INIT leaves from the best usable address."""
    p = _peers(_policy())
    _established(p, 0.0)
    (old,) = p.client.ike_sa_spis()
    sa = p.client.sas[old]
    assert children_to_recreate(sa) == ("net",)
    p.client.usable = ("10.0.9.9",)
    new = reestablish(p.client, sa, "roam", 7.0)
    assert new is not None and new.local == Address("10.0.9.9") and new.peer == GATEWAY
    events = p.events(p.client)
    assert names(events) == ["IkeSaReestablishing", "ExchangeStarted"]
    again = events[0]
    assert isinstance(again, ev.IkeSaReestablishing)
    assert (again.spi_i, again.old_spi, again.reason, again.action, again.attempt) == (new.spi_i, old, "roam",
                                                                                      "restart", 1)
    (init,) = p.client.datagrams_to_send(7.0)
    assert (init.src, init.dst) == (Address("10.0.9.9"), GATEWAY)
    assert sorted(p.client.sas) == sorted([old, new.spi_i])
    assert reestablish(p.gateway, p.gateway.sas[p.gateway.ike_sa_spis()[0]], "roam", 7.0) is None  # no remote_addr


def test_defaults_draw_nothing_and_keep_no_table() -> None:
    """With strongSwan's defaults a timed-out initiation is removed as before and the core gets no attempt table."""
    p = _peers(_policy())
    p.client.initiate("vpn", 0.0)
    _run_silent(p, p.client, 10_000.0)
    assert p.client.sas == {} and "_keyingtry" not in vars(p.client)

