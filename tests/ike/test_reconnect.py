"""Client reconnect strategies (``IkePolicy.roam``) and local liveness probes in the sans-IO core: exact events,
message IDs, addresses and times (``ikesim.ike.reconnect``; RFC 7296 §2.4, §2.23; RFC 4555).

The client has two addresses, wlan (best) and lte; the gateway one or two. A network is the set of (client address,
gateway address) pairs that work at a time; with ``nat`` each client address sits behind its own NAT (a public
address, ports kept).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ikepeers import CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, PSK, Peers

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, RetransmitPolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.reconnect import BACKOFF_MAX, PROBE_WAITS, STEP_WAITS, STRATEGIES, backoff
from ikesim.rng import Rng
from ikesim.types import Address, Datagram

WLAN, LTE, THIRD, GW, GW2 = "10.0.0.1", "10.0.1.1", "10.0.2.1", GATEWAY.ip, "10.0.0.3"
PUBLIC = {WLAN: "198.51.100.1", LTE: "198.51.100.2", THIRD: "198.51.100.3"}
INNER = {v: k for k, v in PUBLIC.items()}
GIVE_UP = sum(RetransmitPolicy().timeouts())
"""strongSwan's schedule: a request is given up 165.06112 s after it was first sent (RFC 7296 §2.1)."""

Mangle = Callable[[Datagram], Datagram | None]
Log = list[tuple[float, str, ev.IkeEvent]]


def _peers(*, client: dict[str, object] | None = None, gateway: dict[str, object] | None = None,
           gateway_ips: tuple[str, ...] = (GW,), client_ips: tuple[str, ...] = (WLAN, LTE)) -> Peers:
    """A client (wlan, lte) initiating to the gateway's first address; lifetimes never fire."""
    def conn(local_id: str, remote_id: str | None, remote: Address | None, extra: dict[str, object] | None):
        ike = IkePolicy(lifetime=LONG, **(extra or {}))  # type: ignore[arg-type]
        return Connection(name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=remote,
                          credentials=Credentials(psk=PSK), ike=ike, children=(ChildPolicy(lifetime=LONG),))
    rng = Rng(7)
    c = IkeDaemon(DaemonConfig(name="client", addresses=tuple(Address(ip) for ip in client_ips),
                               connections=(conn(CLIENT_ID, GATEWAY_ID, GATEWAY, client),)), rng=rng.child("client"))
    g = IkeDaemon(DaemonConfig(name="gateway", addresses=tuple(Address(ip) for ip in gateway_ips),
                               connections=(conn(GATEWAY_ID, None, None, gateway),)), rng=rng.child("gateway"))
    return Peers(c, g)


def _net(*paths: tuple[str, str], nat: bool = False) -> Mangle:
    """Only *paths* (client address, gateway address) carry datagrams; with *nat* the client's are translated."""
    ok = set(paths)

    def mangle(d: Datagram) -> Datagram | None:
        if d.src.ip in PUBLIC:  # client -> gateway
            if (d.src.ip, d.dst.ip) not in ok:
                return None
            return Datagram(d.data, Address(PUBLIC[d.src.ip], d.src.port), d.dst) if nat else d
        inner = INNER.get(d.dst.ip, d.dst.ip)
        if (inner, d.src.ip) not in ok:
            return None
        return Datagram(d.data, d.src, Address(inner, d.dst.port)) if nat else d
    return mangle


def _settle(p: Peers, now: float, mangle: Mangle) -> list[Datagram]:
    """Exchange datagrams through *mangle* until quiet; return every one that arrived (as it arrived)."""
    seen: list[Datagram] = []
    for _ in range(30):
        a = p.deliver(p.client, now, mangle)
        b = p.deliver(p.gateway, now, mangle)
        seen += a + b
        if not a and not b:
            return seen
    raise AssertionError("did not settle")


def _drive(p: Peers, start: float, until: float, net: Callable[[float], Mangle]) -> Log:
    """Settle at *start*, then fire both daemons' timers in time order up to *until*, the network at each instant
    being ``net(now)``; return every event as (time, node, event)."""
    log: Log = []

    def step(now: float) -> None:
        _settle(p, now, net(now))
        log.extend((now, "client", e) for e in p.events(p.client))
        log.extend((now, "gateway", e) for e in p.events(p.gateway))

    step(start)
    while True:
        due = [t for t in (p.client.get_timer(), p.gateway.get_timer()) if t is not None]
        if not due or min(due) > until:
            return log
        now = min(due)
        for d in (p.client, p.gateway):
            t = d.get_timer()
            if t is not None and t <= now:
                d.handle_timer(now)
        step(now)


def _established(p: Peers, net: Mangle) -> tuple[bytes, bytes]:
    """IKE_SA and CHILD_SA up at 0 s; events drained; (client IKE SPI, client CHILD spi_in)."""
    p.client.initiate("vpn", 0.0)
    _settle(p, 0.0, net)
    p.events(p.client), p.events(p.gateway)
    (spi,) = p.client.ike_sa_spis()
    (child,) = p.client.child_sa_spis()
    return spi, child


def _pick(log: Log, node: str, *kinds: type) -> list[tuple[float, ev.IkeEvent]]:
    """(time, event) of *node*'s events of *kinds*, in order."""
    return [(t, e) for t, n, e in log if n == node and isinstance(e, kinds)]


def _exchanges(log: Log, node: str) -> list[tuple[float, str, str, int, str]]:
    """(time, kind, purpose, message ID, reason) of *node*'s requests: started, retransmitted, completed."""
    out = []
    for t, e in _pick(log, node, ev.ExchangeStarted, ev.Retransmitted, ev.ExchangeCompleted):
        if isinstance(e, ev.ExchangeStarted):
            out.append((t, "start", e.purpose, e.message_id, e.reason))
        elif isinstance(e, ev.Retransmitted):
            out.append((t, "rtx", e.purpose, e.message_id, e.reason))
        else:
            out.append((t, "done", e.purpose, e.message_id, e.outcome))
    return out


def _steps(log: Log) -> list[tuple[float, str, int, str]]:
    """(time, step, attempt, reason or outcome) of the client's ReconnectStep and ReconnectEnded."""
    return [(t, e.step, e.attempt, e.reason if isinstance(e, ev.ReconnectStep) else e.outcome)
            for t, e in _pick(log, "client", ev.ReconnectStep, ev.ReconnectEnded)]


def _at(start: float, waits: tuple[float, ...]) -> list[float]:
    """Transmission times of a request first sent at *start* with *waits*, then its give-up time."""
    out, t = [], start
    for w in waits:
        out.append(t)
        t += w
    return [*out, t]


# ---------------------------------------------------------------- constants
def test_schedules_and_backoff() -> None:
    """Step requests: 4 transmissions 2.5 s apart, given up at 10 s; probes: 3, 1 s apart, given up at 3 s; the
    backoff between step-3 attempts doubles from 1 s and stops at 60 s."""
    assert _at(0.0, STEP_WAITS) == [0.0, 2.5, 5.0, 7.5, 10.0]
    assert _at(0.0, PROBE_WAITS) == [0.0, 1.0, 2.0, 3.0]
    assert [backoff(n) for n in range(1, 10)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert BACKOFF_MAX == 60.0 and STRATEGIES == ("reauth", "follow", "keep", "smart")
    assert IkePolicy().roam == "reauth" and IkePolicy().liveness_probe == 0.0


# ---------------------------------------------------------------- follow
def test_follow_behind_a_nat_the_gateway_follows() -> None:
    """roam follow, the client behind a NAT on both networks: wlan goes at 10 s; the IKE_SA stays, its local address
    moves to lte (IkeSaMoved ``follow``) and an empty INFORMATIONAL (mid 2) leaves from lte:4500 at once; the gateway
    sees it from the lte NAT's address and follows (RFC 7296 §2.23): PeerAddressChanged, answered there."""
    p = _peers(client={"roam": "follow"})
    spi, child = _established(p, _net((WLAN, GW), (LTE, GW), nat=True))
    p.client.set_local_addresses([LTE], 10.0)
    seen = _settle(p, 10.0, _net((LTE, GW), nat=True))
    assert [(d.src, d.dst) for d in seen] == [(Address(PUBLIC[LTE], 4500), Address(GW, 4500)),
                                              (Address(GW, 4500), Address(LTE, 4500))]
    c, g = p.events(p.client), p.events(p.gateway)
    roam, moved, started, done = c
    assert isinstance(roam, ev.IkeSaRoaming) and (roam.action, roam.local, roam.addresses) == (
        "follow", Address(WLAN, 4500), LTE)
    assert isinstance(moved, ev.IkeSaMoved) and (moved.method, moved.old_local, moved.local, moved.peer,
                                                 moved.nat_local, moved.nat_peer) == (
        "follow", Address(WLAN, 4500), Address(LTE, 4500), Address(GW, 4500), True, False)
    assert isinstance(started, ev.ExchangeStarted) and (started.exchange, started.purpose, started.message_id,
                                                        started.reason) == ("INFORMATIONAL", "dpd", 2, "follow")
    assert isinstance(done, ev.ExchangeCompleted) and (done.outcome, done.retransmissions) == ("ok", 0)
    (changed,) = g
    assert isinstance(changed, ev.PeerAddressChanged) and (changed.old, changed.new) == (
        Address(PUBLIC[WLAN], 4500), Address(PUBLIC[LTE], 4500))
    assert p.client.ike_sa_info(spi).local == Address(LTE, 4500)
    (g_spi,) = p.gateway.ike_sa_spis()
    assert p.gateway.ike_sa_info(g_spi).peer == Address(PUBLIC[LTE], 4500)
    # the CHILD_SA works on the new path: its rekey completes there
    p.client.rekey_child_sa(child, 20.0)
    seen = _settle(p, 20.0, _net((LTE, GW), nat=True))
    assert len(seen) == 4 and p.client.child_sa_spis() != [child] and len(p.gateway.child_sa_spis()) == 1


def test_follow_without_a_nat_nothing_follows_and_dpd_decides() -> None:
    """No NAT: the gateway does not follow (RFC 7296 §2.23: only a peer seen behind a NAT), so its answer to the
    check goes to wlan and is lost; the retransmission at 14 s is answered to where it came from (§2.1), so the
    client sees its IKE_SA alive while the gateway still sends to wlan. The gateway's DPD (30 s after 14 s) goes to
    wlan and gives up at 209.06112 s; the client's DPD (300 s after 14 s) then finds no IKE_SA there and gives up at
    479.06112 s: dpd_action restart brings a new IKE_SA up from lte."""
    p = _peers(client={"roam": "follow", "dpd_delay": 300.0, "dpd_action": "restart"}, gateway={"dpd_delay": 30.0})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    p.client.set_local_addresses([LTE], 10.0)
    log = _drive(p, 10.0, 480.0, lambda now: _net((LTE, GW)))
    assert [(t, e.action) for t, e in _pick(log, "client", ev.IkeSaRoaming)] == [(10.0, "follow")]
    assert [(t, e.local, e.method) for t, e in _pick(log, "client", ev.IkeSaMoved)] == [
        (10.0, Address(LTE, 500), "follow")]
    assert _exchanges(log, "client")[:3] == [(10.0, "start", "dpd", 2, "follow"), (14.0, "rtx", "dpd", 2, "timeout"),
                                             (14.0, "done", "dpd", 2, "ok")]
    assert _pick(log, "gateway", ev.PeerAddressChanged) == []
    gw_dpd = 44.0
    assert [t for t, e in _pick(log, "gateway", ev.ExchangeStarted, ev.Retransmitted)][:6] == pytest.approx(
        _at(gw_dpd, tuple(RetransmitPolicy().timeouts()))[:6], abs=1e-9)
    ((gone, deleted),) = _pick(log, "gateway", ev.IkeSaDeleted)
    assert (gone, deleted.reason) == (pytest.approx(gw_dpd + GIVE_UP, abs=1e-9), "dpd_timeout")
    client_dpd = 14.0 + 300.0
    assert [t for t, _ in _pick(log, "client", ev.DeadPeerDetected)] == pytest.approx([client_dpd + GIVE_UP], abs=1e-9)
    (again,) = [e for _, e in _pick(log, "client", ev.IkeSaReestablishing)]
    assert (again.old_spi, again.reason, again.action) == (spi, "dpd_timeout", "restart")
    (new,) = p.client.ike_sa_spis()
    assert p.client.ike_sa_info(new).local == Address(LTE, 500)


# ---------------------------------------------------------------- keep
def test_keep_stays_on_the_old_path_until_dpd_notices() -> None:
    """roam keep: wlan goes at 10 s and nothing is sent (IkeSaRoaming ``keep``); DPD (30 s after the last message, at
    0 s) still leaves from wlan, is lost, and gives up at 195.06112 s: dpd_action restart, from lte."""
    p = _peers(client={"roam": "keep", "dpd_delay": 30.0, "dpd_action": "restart"})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    p.client.set_local_addresses([LTE], 10.0)
    assert p.client.datagrams_to_send(10.0) == []
    assert [(e.action, e.local) for e in p.events(p.client) if isinstance(e, ev.IkeSaRoaming)] == [
        ("keep", Address(WLAN, 500))]
    assert p.client.ike_sa_info(spi).local == Address(WLAN, 500)
    sent: list[tuple[float, Address]] = []
    now = 10.0
    while (t := p.client.get_timer()) is not None and t < 190.0:
        now = t
        p.client.handle_timer(now)
        sent += [(now, d.src) for d in p.client.datagrams_to_send(now)]
    assert sent == [(t, Address(WLAN, 500)) for t in _at(30.0, tuple(RetransmitPolicy().timeouts()))[:6]]
    log = _drive(p, now, 200.0, lambda now: _net((LTE, GW)))
    assert [(t, type(e).__name__) for t, e in _pick(log, "client", ev.DeadPeerDetected, ev.IkeSaReestablishing)] == [
        (pytest.approx(30.0 + GIVE_UP, abs=1e-9), "DeadPeerDetected"),
        (pytest.approx(30.0 + GIVE_UP, abs=1e-9), "IkeSaReestablishing")]
    (new,) = p.client.ike_sa_spis()
    assert new != spi and p.client.ike_sa_info(new).local == Address(LTE, 500)


# ---------------------------------------------------------------- smart
def test_smart_step_1_behind_a_nat_restores_with_a_new_child_sa() -> None:
    """roam smart, the client behind a NAT: wlan goes at 10 s; step 1 moves the IKE_SA to lte and sends CREATE_CHILD_SA
    (mid 2) from there; the gateway follows (§2.23) and answers: restored. The new CHILD_SA carries the traffic at
    once and the old one is deleted (mid 3, reason ``reconnect``) on both ends."""
    p = _peers(client={"roam": "smart"})
    spi, old = _established(p, _net((WLAN, GW), (LTE, GW), nat=True))
    (g_old,) = p.gateway.child_sa_spis()
    p.client.set_local_addresses([LTE], 10.0)
    seen = _settle(p, 10.0, _net((LTE, GW), nat=True))
    assert [(d.src, d.dst) for d in seen] == [(Address(PUBLIC[LTE], 4500), Address(GW, 4500)),
                                              (Address(GW, 4500), Address(LTE, 4500))] * 2
    c, g = p.events(p.client), p.events(p.gateway)
    assert [type(e).__name__ for e in c] == [
        "IkeSaRoaming", "ReconnectStep", "IkeSaMoved", "ExchangeStarted", "ExchangeCompleted", "ChildSaInstalled",
        "ReconnectEnded", "ExchangeStarted", "ExchangeCompleted", "ChildSaDeleted"]
    roam, step, moved, create, _, installed, ended, delete, _, deleted = c
    assert isinstance(roam, ev.IkeSaRoaming) and roam.action == "smart"
    assert isinstance(step, ev.ReconnectStep) and (step.spi_i, step.step, step.attempt, step.reason) == (
        spi, "create_child", 1, "address_change")
    assert isinstance(moved, ev.IkeSaMoved) and (moved.method, moved.local) == ("follow", Address(LTE, 4500))
    assert isinstance(create, ev.ExchangeStarted) and (create.exchange, create.purpose, create.message_id,
                                                       create.reason) == ("CREATE_CHILD_SA", "create_child", 2,
                                                                          "reconnect")
    assert isinstance(installed, ev.ChildSaInstalled) and installed.outbound and installed.rekey_of is None
    assert installed.local_ts == f"{WLAN}/32"  # dynamic selectors keep the address the IKE_SA had (RFC 4555 §1.1)
    assert isinstance(ended, ev.ReconnectEnded) and (ended.spi_i, ended.step, ended.attempt, ended.outcome) == (
        spi, "create_child", 1, "restored")
    assert isinstance(delete, ev.ExchangeStarted) and (delete.purpose, delete.message_id, delete.reason) == (
        "delete_child", 3, "reconnect")
    assert isinstance(deleted, ev.ChildSaDeleted) and (deleted.spi_in, deleted.reason) == (old, "reconnect")
    assert [type(e).__name__ for e in g] == ["PeerAddressChanged", "ChildSaInstalled", "ChildSaDeleted"]
    assert isinstance(g[2], ev.ChildSaDeleted) and (g[2].spi_in, g[2].reason) == (g_old, "deleted_by_peer")
    assert p.client.child_sa_spis() == [installed.spi_in] and p.gateway.child_sa_spis() == [installed.spi_out]
    assert p.client.ike_sa_spis() == [spi]


def test_smart_without_a_nat_an_answer_is_no_restore_and_step_3_follows_at_once() -> None:
    """No NAT and no MOBIKE: the gateway cannot follow, its answer to step 1 goes to wlan; the retransmission at
    12.5 s is answered to lte (RFC 7296 §2.1), which proves the IKE_SA alive but not that the gateway's ESP reaches
    lte: step 3 at once, a new IKE_SA from lte:500 (attempt 1) and the old one's Delete (mid 3)."""
    p = _peers(client={"roam": "smart"})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    p.client.set_local_addresses([LTE], 10.0)
    log = _drive(p, 10.0, 20.0, lambda now: _net((LTE, GW)))
    assert _steps(log) == [(10.0, "create_child", 1, "address_change"), (12.5, "reestablish", 1, "address_change"),
                           (12.5, "reestablish", 1, "restored")]
    assert _exchanges(log, "client") == [
        (10.0, "start", "create_child", 2, "reconnect"), (12.5, "rtx", "create_child", 2, "timeout"),
        (12.5, "done", "create_child", 2, "ok"), (12.5, "start", "ike_sa_init", 0, ""),
        (12.5, "start", "delete_ike", 3, "reconnect"), (12.5, "done", "ike_sa_init", 0, "ok"),
        (12.5, "start", "ike_auth", 1, ""), (12.5, "done", "ike_auth", 1, "ok"),
        (16.5, "rtx", "delete_ike", 3, "timeout"), (16.5, "done", "delete_ike", 3, "ok")]
    ((_, again),) = _pick(log, "client", ev.IkeSaReestablishing)
    assert (again.old_spi, again.reason, again.action, again.attempt, again.children) == (
        spi, "reconnect", "restart", 1, "net")
    (new,) = p.client.ike_sa_spis()
    assert new == again.spi_i and p.client.ike_sa_info(new).local == Address(LTE, 500)
    assert [(t, e.reason) for t, e in _pick(log, "client", ev.IkeSaDeleted)] == [(16.5, "reconnect")]
    assert [(t, e.reason) for t, e in _pick(log, "gateway", ev.IkeSaDeleted)] == [(12.5, "deleted_by_peer")]


def test_smart_with_mobike_an_answer_from_the_new_address_is_followed_by_the_mobike_update() -> None:
    """MOBIKE: step 1's CREATE_CHILD_SA (mid 2) leaves from lte (RFC 4555 §3.5: the best usable address) and is
    answered there, but a MOBIKE gateway moves only on UPDATE_SA_ADDRESSES: step 2 at once, the path test (mid 3) and
    the update (mid 4): restored; then the old CHILD_SA's Delete (mid 5), over lte."""
    p = _peers(client={"roam": "smart", "mobike": True}, gateway={"mobike": True})
    spi, old = _established(p, _net((WLAN, GW), (LTE, GW)))
    p.client.set_local_addresses([LTE], 10.0)
    log = _drive(p, 10.0, 11.0, lambda now: _net((LTE, GW)))
    assert _steps(log) == [(10.0, "create_child", 1, "address_change"), (10.0, "mobike", 1, "address_change"),
                           (10.0, "mobike", 1, "restored")]
    assert [(kind, purpose, mid) for _, kind, purpose, mid, _ in _exchanges(log, "client")] == [
        ("start", "create_child", 2), ("done", "create_child", 2), ("start", "mobike", 3), ("done", "mobike", 3),
        ("start", "mobike", 4), ("done", "mobike", 4), ("start", "delete_child", 5), ("done", "delete_child", 5)]
    assert [(e.method, e.peer) for _, e in _pick(log, "gateway", ev.IkeSaMoved)] == [
        ("mobike_responder", Address(LTE, 4500))]
    assert [e.spi_in for _, e in _pick(log, "client", ev.ChildSaDeleted)] == [old]
    assert p.client.ike_sa_info(spi).local == Address(LTE, 4500)


def test_a_second_address_change_during_step_1_starts_the_run_again() -> None:
    """lte goes too while step 1 waits for an answer: the run is superseded and starts again from the third address;
    step 1's request in flight (mid 2) is sent again from there at once (lost here), on the step schedule from then
    on, and serves the new run: its retransmission at 13.5 s is answered (the gateway follows, §2.23): restored."""
    p = _peers(client={"roam": "smart"}, client_ips=(WLAN, LTE, THIRD))
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW), nat=True))
    p.client.set_local_addresses([LTE, THIRD], 10.0)
    assert len(p.deliver(p.client, 10.0, lambda d: None)) == 0  # lost
    p.client.set_local_addresses([THIRD], 11.0)
    out = p.client.datagrams_to_send(11.0)
    assert [(d.src, d.dst) for d in out] == [(Address(THIRD, 4500), Address(GW, 4500))]
    c = p.events(p.client)
    assert [(e.step, e.reason if isinstance(e, ev.ReconnectStep) else e.outcome) for e in c
            if isinstance(e, (ev.ReconnectStep, ev.ReconnectEnded))] == [
        ("create_child", "address_change"), ("create_child", "superseded"), ("create_child", "address_change")]
    assert [(e.purpose, e.message_id, e.reason) for e in c if isinstance(e, ev.Retransmitted)] == [
        ("create_child", 2, "local_moved")]
    assert p.client.get_timer() == 13.5
    assert [w.purpose for w in p.client.sas[spi].queue] == []  # the CREATE_CHILD_SA in flight serves the new run
    log = _drive(p, 11.0, 14.0, lambda now: _net((THIRD, GW), nat=True))
    assert _steps(log) == [(13.5, "create_child", 1, "restored")]
    assert _exchanges(log, "client") == [
        (13.5, "rtx", "create_child", 2, "timeout"), (13.5, "done", "create_child", 2, "ok"),
        (13.5, "start", "delete_child", 3, "reconnect"), (13.5, "done", "delete_child", 3, "ok")]
    assert [(t, e.new) for t, e in _pick(log, "gateway", ev.PeerAddressChanged)] == [
        (13.5, Address(PUBLIC[THIRD], 4500))]


def test_smart_step_1_fails_then_the_mobike_path_test_finds_the_gateways_other_address() -> None:
    """MOBIKE; from lte only the gateway's second address answers. Step 1's CREATE_CHILD_SA (mid 2) to the gateway's
    first address goes at 10, 12.5, 15, 17.5 s unanswered; at 20 s step 2 turns it into a path test (RFC 4555 §3.6,
    the message ID kept, RFC 7296 §2.3), answered from the second address; then the path test (mid 3) and
    UPDATE_SA_ADDRESSES (mid 4) move both ends there: restored; the old CHILD_SA is deleted (mid 5)."""
    p = _peers(client={"roam": "smart", "mobike": True}, gateway={"mobike": True}, gateway_ips=(GW, GW2))
    spi, old = _established(p, _net((WLAN, GW), (LTE, GW), (WLAN, GW2), (LTE, GW2)))
    p.client.set_local_addresses([LTE], 10.0)
    log = _drive(p, 10.0, 30.0, lambda now: _net((LTE, GW2)))
    assert _steps(log) == [(10.0, "create_child", 1, "address_change"), (20.0, "mobike", 1, "address_change"),
                           (20.0, "mobike", 1, "restored")]
    assert _exchanges(log, "client") == [
        (10.0, "start", "create_child", 2, "reconnect"), (12.5, "rtx", "create_child", 2, "timeout"),
        (15.0, "rtx", "create_child", 2, "timeout"), (17.5, "rtx", "create_child", 2, "timeout"),
        (20.0, "rtx", "create_child", 2, "path_test"), (20.0, "done", "create_child", 2, "ok"),
        (20.0, "start", "mobike", 3, ""), (20.0, "done", "mobike", 3, "ok"),
        (20.0, "start", "mobike", 4, ""), (20.0, "done", "mobike", 4, "ok"),
        (20.0, "start", "delete_child", 5, "reconnect"), (20.0, "done", "delete_child", 5, "ok")]
    assert [(e.method, e.local, e.peer) for _, e in _pick(log, "client", ev.IkeSaMoved)] == [
        ("mobike_probe", Address(LTE, 4500), Address(GW2, 4500))]
    assert [(e.method, e.local, e.peer) for _, e in _pick(log, "gateway", ev.IkeSaMoved)] == [
        ("mobike_responder", Address(GW2, 4500), Address(LTE, 4500))]
    assert [(e.spi_in, e.reason) for _, e in _pick(log, "client", ev.ChildSaDeleted)] == [(old, "reconnect")]
    assert p.client.ike_sa_spis() == [spi] and len(p.client.child_sa_spis()) == 1


def test_smart_steps_1_and_2_fail_then_new_ike_sas_with_exponential_backoff() -> None:
    """MOBIKE, and the gateway unreachable until 80 s: step 1 at 10 s (given up at 20 s), step 2's path test at 20,
    22.5, ... 42.5 s (given up at 45 s: the IKE_SA goes); step 3's attempts start at 45, 56 (+1 s), 68 (+2 s) and
    82 s (+4 s), each IKE_SA_INIT sent 4 times 2.5 s apart and given up 10 s after the first; the fourth is answered."""
    p = _peers(client={"roam": "smart", "mobike": True, "keyingtries": 5}, gateway={"mobike": True})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    p.client.set_local_addresses([LTE], 10.0)
    log = _drive(p, 10.0, 100.0, lambda now: _net((LTE, GW)) if now >= 80.0 else _net())
    attempts = [45.0, 56.0, 68.0, 82.0]
    assert _steps(log) == [(10.0, "create_child", 1, "address_change"), (20.0, "mobike", 1, "address_change"),
                           *[(t, "reestablish", n, "address_change") for n, t in enumerate(attempts, 1)],
                           (82.0, "reestablish", 4, "restored")]
    assert [t for t, _, purpose, _, _ in _exchanges(log, "client") if purpose == "create_child"] == [
        10.0, 12.5, 15.0, 17.5, *[20.0 + 2.5 * i for i in range(10)], 45.0]
    inits = [(t, kind) for t, kind, purpose, _, _ in _exchanges(log, "client") if purpose == "ike_sa_init"]
    expected = []
    for a in attempts[:3]:
        expected += [(a, "start"), (a + 2.5, "rtx"), (a + 5.0, "rtx"), (a + 7.5, "rtx"), (a + 10.0, "done")]
    assert inits == [*expected, (82.0, "start"), (82.0, "done")]
    again = [e for _, e in _pick(log, "client", ev.IkeSaReestablishing)]
    assert [(e.reason, e.action, e.attempt) for e in again] == [
        ("reconnect", "restart", 1), ("timeout", "retry", 2), ("timeout", "retry", 3), ("timeout", "retry", 4)]
    assert [e.old_spi for e in again] == [spi] + [e.spi_i for e in again[:3]]
    deleted = [(t, e.spi_i, e.reason) for t, e in _pick(log, "client", ev.IkeSaDeleted)]
    assert deleted == [(45.0, spi, "timeout")] + [
        (a + 10.0, e.spi_i, "timeout") for a, e in zip(attempts[:3], again[:3], strict=True)]
    assert _pick(log, "client", ev.DeadPeerDetected) == []
    assert p.client.ike_sa_spis() == [again[3].spi_i] and len(p.client.child_sa_spis()) == 1


def test_smart_step_3_ends_when_keyingtries_are_used_up() -> None:
    """keyingtries 2 and no path at all: attempts at 45 and 56 s, the second given up at 66 s: ReconnectEnded
    ``failed``, nothing more is sent."""
    p = _peers(client={"roam": "smart", "mobike": True, "keyingtries": 2}, gateway={"mobike": True})
    _established(p, _net((WLAN, GW), (LTE, GW)))
    p.client.set_local_addresses([LTE], 10.0)
    log = _drive(p, 10.0, 1000.0, lambda now: _net())
    assert _steps(log)[2:] == [(45.0, "reestablish", 1, "address_change"), (56.0, "reestablish", 2, "address_change"),
                               (66.0, "reestablish", 2, "failed")]
    assert p.client.get_timer() is None and p.client.sas == {}


def test_a_responder_keeps_strongswans_behaviour_whatever_roam_says() -> None:
    """roam smart on the gateway (no remote_addr): its address going away makes the IKE_SA stale, as strongSwan's
    responder (no reauthentication, no strategy)."""
    p = _peers(gateway={"roam": "smart"}, gateway_ips=(GW, GW2))
    spi, _ = _established(p, _net((WLAN, GW), (WLAN, GW2)))
    p.gateway.set_local_addresses([GW2], 10.0)
    assert p.gateway.datagrams_to_send(10.0) == []
    assert [(type(e).__name__, getattr(e, "action", "")) for e in p.events(p.gateway)] == [("IkeSaRoaming", "stale")]


# ---------------------------------------------------------------- liveness probes
def test_liveness_probe_finds_a_dead_path_and_mobike_moves_from_the_other_address() -> None:
    """liveness_probe 5 s, MOBIKE: probes at 5 and 10 s are answered; wlan breaks at 12 s without the host noticing;
    the probe at 15 s (mid 4) goes at 15, 16, 17 s unanswered; at 18 s wlan is taken out (LivenessProbeFailed) and
    the probe becomes a path test from lte (RFC 4555 §3.6), answered; the path test (mid 5) and update (mid 6) move
    both ends to lte; probing goes on from lte 5 s after the last answer."""
    p = _peers(client={"mobike": True, "liveness_probe": 5.0}, gateway={"mobike": True})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    log = _drive(p, 0.0, 30.0, lambda now: _net((WLAN, GW), (LTE, GW)) if now < 12.0 else _net((LTE, GW)))
    assert _exchanges(log, "client") == [
        (5.0, "start", "dpd", 2, "liveness_probe"), (5.0, "done", "dpd", 2, "ok"),
        (10.0, "start", "dpd", 3, "liveness_probe"), (10.0, "done", "dpd", 3, "ok"),
        (15.0, "start", "dpd", 4, "liveness_probe"), (16.0, "rtx", "dpd", 4, "timeout"),
        (17.0, "rtx", "dpd", 4, "timeout"), (18.0, "rtx", "dpd", 4, "path_test"), (18.0, "done", "dpd", 4, "ok"),
        (18.0, "start", "mobike", 5, ""), (18.0, "done", "mobike", 5, "ok"),
        (18.0, "start", "mobike", 6, ""), (18.0, "done", "mobike", 6, "ok"),
        (23.0, "start", "dpd", 7, "liveness_probe"), (23.0, "done", "dpd", 7, "ok"),
        (28.0, "start", "dpd", 8, "liveness_probe"), (28.0, "done", "dpd", 8, "ok")]
    ((t, failed),) = _pick(log, "client", ev.LivenessProbeFailed)
    assert (t, failed.spi_i, failed.local, failed.peer, failed.addresses, failed.action) == (
        18.0, spi, Address(WLAN, 4500), Address(GW, 4500), LTE, "mobike")
    assert [(t, e.method, e.local) for t, e in _pick(log, "client", ev.IkeSaMoved)] == [
        (18.0, "mobike_probe", Address(LTE, 4500))]
    assert [(t, e.method, e.peer) for t, e in _pick(log, "gateway", ev.IkeSaMoved)] == [
        (18.0, "mobike_responder", Address(LTE, 4500))]
    assert _pick(log, "client", ev.DeadPeerDetected, ev.IkeSaRoaming) == []


def test_a_failed_probe_path_test_without_an_answer_is_a_dead_peer() -> None:
    """Both paths dead from 12 s: the probe's path test goes from lte at 18, 20.5, ... 40.5 s and gives up at
    43 s: DeadPeerDetected, the IKE_SA ends as on DPD (dpd_action clear)."""
    p = _peers(client={"mobike": True, "liveness_probe": 5.0}, gateway={"mobike": True})
    _established(p, _net((WLAN, GW), (LTE, GW)))
    log = _drive(p, 0.0, 60.0, lambda now: _net((WLAN, GW), (LTE, GW)) if now < 12.0 else _net())
    probe = [t for t, _, purpose, mid, _ in _exchanges(log, "client") if mid == 4]
    assert probe == [15.0, 16.0, 17.0, *[18.0 + 2.5 * i for i in range(10)], 43.0]
    assert [(t, type(e).__name__) for t, e in _pick(log, "client", ev.LivenessProbeFailed, ev.DeadPeerDetected,
                                                    ev.IkeSaDeleted)] == [
        (18.0, "LivenessProbeFailed"), (43.0, "DeadPeerDetected"), (43.0, "IkeSaDeleted")]
    assert [e.reason for _, e in _pick(log, "client", ev.IkeSaDeleted)] == ["dpd_timeout"]


def test_a_failed_probe_with_roam_keep_is_a_dead_peer_at_once() -> None:
    """roam keep, no MOBIKE: the probe sent at 15 s is given up at 18 s: LivenessProbeFailed ``dead``, then
    DeadPeerDetected and dpd_action (restart: a new IKE_SA from wlan, the host's best address)."""
    p = _peers(client={"roam": "keep", "liveness_probe": 5.0, "dpd_action": "restart"})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    log = _drive(p, 0.0, 18.0, lambda now: _net((WLAN, GW), (LTE, GW)) if now < 12.0 else _net())
    ((t, failed),) = _pick(log, "client", ev.LivenessProbeFailed)
    assert (t, failed.local, failed.addresses, failed.action) == (18.0, Address(WLAN, 500), f"{WLAN} {LTE}", "dead")
    assert [(t, type(e).__name__) for t, e in _pick(log, "client", ev.DeadPeerDetected, ev.IkeSaReestablishing,
                                                    ev.IkeSaDeleted)] == [
        (18.0, "DeadPeerDetected"), (18.0, "IkeSaReestablishing"), (18.0, "IkeSaDeleted")]
    ((_, again),) = _pick(log, "client", ev.IkeSaReestablishing)
    assert (again.old_spi, again.reason) == (spi, "dpd_timeout")


def test_a_failed_probe_runs_smart_step_1_with_the_probe_resent_from_the_other_address() -> None:
    """roam smart, no MOBIKE, behind a NAT: the probe (mid 4) given up at 18 s becomes step 1's request in flight:
    the IKE_SA moves to lte, the probe is sent again from there at once (the gateway follows, §2.23, and answers),
    then CREATE_CHILD_SA (mid 5) restores the tunnel and the old CHILD_SA goes (mid 6)."""
    p = _peers(client={"roam": "smart", "liveness_probe": 5.0})
    spi, old = _established(p, _net((WLAN, GW), (LTE, GW), nat=True))
    log = _drive(p, 0.0, 18.0, lambda now: _net((WLAN, GW), (LTE, GW), nat=True) if now < 12.0
                 else _net((LTE, GW), nat=True))
    assert [(t, e.action, e.addresses) for t, e in _pick(log, "client", ev.LivenessProbeFailed)] == [
        (18.0, "smart", LTE)]
    assert _steps(log) == [(18.0, "create_child", 1, "liveness_probe"), (18.0, "create_child", 1, "restored")]
    assert _exchanges(log, "client")[4:] == [
        (15.0, "start", "dpd", 4, "liveness_probe"), (16.0, "rtx", "dpd", 4, "timeout"),
        (17.0, "rtx", "dpd", 4, "timeout"), (18.0, "rtx", "dpd", 4, "local_moved"), (18.0, "done", "dpd", 4, "ok"),
        (18.0, "start", "create_child", 5, "reconnect"), (18.0, "done", "create_child", 5, "ok"),
        (18.0, "start", "delete_child", 6, "reconnect"), (18.0, "done", "delete_child", 6, "ok")]
    assert [(t, e.new) for t, e in _pick(log, "gateway", ev.PeerAddressChanged)] == [
        (18.0, Address(PUBLIC[LTE], 4500))]
    assert [e.spi_in for _, e in _pick(log, "client", ev.ChildSaDeleted)] == [old]


def test_no_probe_while_esp_comes_in() -> None:
    """Inbound ESP counts as life, as for DPD (RFC 7296 §2.4): with the last ESP at 4 s the first probe goes at 9 s."""
    p = _peers(client={"liveness_probe": 5.0})
    _established(p, _net((WLAN, GW)))
    p.client.child_use = lambda spi_in: 4.0
    log = _drive(p, 0.0, 9.0, lambda now: _net((WLAN, GW)))
    assert _exchanges(log, "client") == [(9.0, "start", "dpd", 2, "liveness_probe"), (9.0, "done", "dpd", 2, "ok")]
    assert p.client.get_timer() == 14.0


def test_only_the_client_probes() -> None:
    """liveness_probe on both ends: the gateway (no remote_addr) never probes."""
    p = _peers(client={"liveness_probe": 5.0}, gateway={"liveness_probe": 5.0})
    _established(p, _net((WLAN, GW)))
    log = _drive(p, 0.0, 12.0, lambda now: _net((WLAN, GW)))
    assert _pick(log, "gateway", ev.ExchangeStarted) == []
    assert [t for t, e in _pick(log, "client", ev.ExchangeStarted)] == [5.0, 10.0]


def test_a_failed_probe_with_roam_reauth_reauthenticates_from_the_other_address() -> None:
    """Default roam (reauth), no MOBIKE: the probe given up at 18 s takes wlan out; a new IKE_SA comes up from lte
    (IkeSaReestablishing reason ``liveness_probe``) and the old one's Delete (mid 5) leaves from lte too."""
    p = _peers(client={"liveness_probe": 5.0})
    spi, _ = _established(p, _net((WLAN, GW), (LTE, GW)))
    log = _drive(p, 0.0, 18.0, lambda now: _net((WLAN, GW), (LTE, GW)) if now < 12.0 else _net((LTE, GW)))
    assert [(t, e.action, e.addresses) for t, e in _pick(log, "client", ev.LivenessProbeFailed)] == [
        (18.0, "reauth", LTE)]
    ((_, again),) = _pick(log, "client", ev.IkeSaReestablishing)
    assert (again.old_spi, again.reason, again.action) == (spi, "liveness_probe", "restart")
    assert [(t, e.local) for t, e in _pick(log, "client", ev.IkeSaMoved)] == [(18.0, Address(LTE, 500))]
    assert [x for x in _exchanges(log, "client") if x[0] == 18.0] == [
        (18.0, "done", "dpd", 4, "timeout"), (18.0, "start", "ike_sa_init", 0, ""),
        (18.0, "start", "delete_ike", 5, "reauth"), (18.0, "done", "ike_sa_init", 0, "ok"),
        (18.0, "start", "ike_auth", 1, ""), (18.0, "done", "ike_auth", 1, "ok")]
    (new,) = p.client.ike_sa_spis()
    assert new == again.spi_i and p.client.ike_sa_info(new).local == Address(LTE, 500)
