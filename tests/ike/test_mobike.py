"""MOBIKE (RFC 4555) in the sans-IO core: negotiation, path tests, UPDATE_SA_ADDRESSES, COOKIE2, NO_NATS_ALLOWED,
return routability, moves during other exchanges; exact message IDs, addresses and times."""

from __future__ import annotations

from collections.abc import Callable

from ikepeers import CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, PSK, Peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.mobike import COOKIE2_SIZE, ROUTABILITY_CHECK_INTERVAL, ROUTABILITY_CHECK_TRIES
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import NotifyType
from ikesim.wire.payloads import NotifyPayload

WLAN, LTE, THIRD = "10.0.0.1", "10.0.1.1", "10.0.2.1"


def _peers(*, client: dict[str, object] | None = None, gateway: dict[str, object] | None = None,
           client_ips: tuple[str, ...] = (WLAN, LTE)) -> Peers:
    """A MOBIKE client with several addresses (first: wlan) and a MOBIKE gateway; lifetimes never fire."""
    def conn(local_id: str, remote_id: str | None, remote: Address | None, extra: dict[str, object] | None):
        ike = IkePolicy(lifetime=LONG, **{"mobike": True, **(extra or {})})  # type: ignore[arg-type]
        return Connection(name="vpn", local_id=local_id, remote_id=remote_id, remote_addr=remote,
                          credentials=Credentials(psk=PSK), ike=ike,
                          children=(ChildPolicy(lifetime=LONG),))
    rng = Rng(7)
    c = IkeDaemon(DaemonConfig(name="client", addresses=tuple(Address(ip) for ip in client_ips),
                               connections=(conn(CLIENT_ID, GATEWAY_ID, GATEWAY, client),)), rng=rng.child("client"))
    g = IkeDaemon(DaemonConfig(name="gateway", addresses=(GATEWAY,),
                               connections=(conn(GATEWAY_ID, None, None, gateway),)), rng=rng.child("gateway"))
    return Peers(c, g)


def _only_from(*ips: str) -> Callable[[Datagram], Datagram | None]:
    """A network where only *ips* of the client are attached: anything from or to another client address is lost."""
    def mangle(d: Datagram) -> Datagram | None:
        client_side = d.src if d.src.ip != GATEWAY.ip else d.dst
        return d if client_side.ip in ips else None
    return mangle


def _settle(p: Peers, now: float, mangle: Callable[[Datagram], Datagram | None] | None) -> list[Datagram]:
    """Exchange datagrams through *mangle* until quiet; return every datagram that arrived."""
    seen: list[Datagram] = []
    for _ in range(20):
        a = p.deliver(p.client, now, mangle)
        b = p.deliver(p.gateway, now, mangle)
        seen += a + b
        if not a and not b:
            return seen
    raise AssertionError("did not settle")


def _inner(d: IkeDaemon, data: bytes) -> list[NotifyPayload]:
    """The notifies inside an encrypted message *d* can decrypt (either direction)."""
    msg = parse_message(data)
    (sa,) = [s for s in d.sas.values() if s.spi_i == msg.spi_i]
    # the peer's messages decrypt with protect_in; our own with protect_out's keys: try both
    for prot in (sa.protect_in, sa.protect_out):
        try:
            return list(unprotect_message(data, prot, outer=msg).get_all(NotifyPayload))
        except Exception:  # noqa: BLE001 - the other direction's keys
            continue
    raise AssertionError("cannot decrypt")


def _established() -> tuple[Peers, list[Datagram]]:
    p = _peers()
    p.client.initiate("vpn", 0.0)
    seen = _settle(p, 0.0, None)
    return p, seen


def test_mobike_negotiated_in_ike_auth_and_ike_floats_to_4500_without_nat() -> None:
    """N(MOBIKE_SUPPORTED) and the address lists in IKE_AUTH (RFC 4555 §3.1, §3.4); strongSwan floats to 4500."""
    p, seen = _established()
    assert [(d.src, d.dst) for d in seen] == [
        (Address(WLAN, 500), Address(GATEWAY.ip, 500)), (Address(GATEWAY.ip, 500), Address(WLAN, 500)),
        (Address(WLAN, 4500), Address(GATEWAY.ip, 4500)), (Address(GATEWAY.ip, 4500), Address(WLAN, 4500))]
    c, g = p.events(p.client), p.events(p.gateway)
    assert "NatTraversalStarted" in names(c) and "NatDetected" not in names(c)
    (cm,) = [e for e in c if isinstance(e, ev.MobikeNegotiated)]
    (gm,) = [e for e in g if isinstance(e, ev.MobikeNegotiated)]
    assert cm.peer_addresses == ""  # the gateway has no other address: NO_ADDITIONAL_ADDRESSES
    assert gm.peer_addresses == LTE  # the client's second address: ADDITIONAL_IP4_ADDRESS
    request = [n.notify_type for n in _inner(p.gateway, seen[2].data)]
    answer = [n.notify_type for n in _inner(p.client, seen[3].data)]
    assert request.count(NotifyType.MOBIKE_SUPPORTED) == 1 and NotifyType.ADDITIONAL_IP4_ADDRESS in request
    assert answer.count(NotifyType.MOBIKE_SUPPORTED) == 1 and NotifyType.NO_ADDITIONAL_ADDRESSES in answer
    (spi,) = p.client.ike_sa_spis()
    info = p.client.ike_sa_info(spi)
    assert (info.local, info.peer, info.nat_local, info.nat_peer) == (
        Address(WLAN, 4500), Address(GATEWAY.ip, 4500), False, False)


def test_mobike_not_used_if_one_end_does_not_offer_it() -> None:
    """Only the client offers MOBIKE: no MOBIKE_SUPPORTED answer, no MobikeNegotiated (RFC 4555 §3.1)."""
    p = _peers(gateway={"mobike": False})
    p.client.initiate("vpn", 0.0)
    seen = _settle(p, 0.0, None)
    assert NotifyType.MOBIKE_SUPPORTED not in [n.notify_type for n in _inner(p.client, seen[3].data)]
    assert "MobikeNegotiated" not in names(p.events(p.client)) + names(p.events(p.gateway))


def test_address_gone_path_test_then_update_moves_ike_and_child_sas() -> None:
    """The wlan address goes at t=10: path test from lte (mid 2), then UPDATE_SA_ADDRESSES with NAT_D and COOKIE2
    (mid 3); both ends move the IKE_SA and its CHILD_SAs (RFC 4555 §3.5, §3.6; strongSwan ike_mobike)."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE], 10.0)
    net = _only_from(LTE)
    seen = _settle(p, 10.0, net)
    assert [(d.src, d.dst) for d in seen] == [
        (Address(LTE, 4500), Address(GATEWAY.ip, 4500)), (Address(GATEWAY.ip, 4500), Address(LTE, 4500))] * 2
    probe = [n.notify_type for n in _inner(p.gateway, seen[0].data)]
    update = _inner(p.gateway, seen[2].data)
    answer = _inner(p.client, seen[3].data)
    assert probe == []
    assert [n.notify_type for n in update] == [NotifyType.UPDATE_SA_ADDRESSES, NotifyType.COOKIE2,
                                               NotifyType.NAT_DETECTION_SOURCE_IP,
                                               NotifyType.NAT_DETECTION_DESTINATION_IP]
    cookie2 = update[1].data
    assert len(cookie2) == COOKIE2_SIZE
    assert [n for n in answer if n.notify_type == NotifyType.COOKIE2] == [NotifyPayload(NotifyType.COOKIE2,
                                                                                         data=cookie2)]
    c, g = p.events(p.client), p.events(p.gateway)
    roam = c[0]
    assert isinstance(roam, ev.IkeSaRoaming) and (roam.action, roam.local, roam.addresses) == (
        "mobike", Address(WLAN, 4500), LTE)
    started = [(e.purpose, e.message_id) for e in c if isinstance(e, ev.ExchangeStarted)]
    assert started == [("mobike", 2), ("mobike", 3)]
    (moved,) = [e for e in c if isinstance(e, ev.IkeSaMoved)]
    assert (moved.method, moved.old_local, moved.local, moved.peer) == (
        "mobike_probe", Address(WLAN, 4500), Address(LTE, 4500), Address(GATEWAY.ip, 4500))
    (gmoved,) = [e for e in g if isinstance(e, ev.IkeSaMoved)]
    assert (gmoved.method, gmoved.old_peer, gmoved.peer, gmoved.nat_local, gmoved.nat_peer) == (
        "mobike_responder", Address(WLAN, 4500), Address(LTE, 4500), False, False)
    # the moved SAs work: a CHILD rekey goes over lte and completes on both ends
    (c_spi,) = p.client.child_sa_spis()
    p.client.rekey_child_sa(c_spi, 20.0)
    seen = _settle(p, 20.0, net)
    assert all(d.src.ip in (LTE, GATEWAY.ip) for d in seen) and len(seen) == 4  # rekey, then Delete of the old
    assert len(p.client.child_sa_spis()) == 1 and p.client.child_sa_spis() != [c_spi]


def test_path_test_retransmits_every_2_5_s_ten_times_then_gives_up() -> None:
    """No path works: the test goes out at 10, 12.5, ..., 35 (11 transmissions); the IKE_SA ends at 37.5 s."""
    p, _ = _established()
    p.events(p.client)
    p.client.set_local_addresses([LTE], 10.0)
    sent = [10.0] * len(p.client.datagrams_to_send(10.0))
    now = 10.0
    while (t := p.client.get_timer()) is not None and t < 100:
        now = t
        p.client.handle_timer(now)
        sent += [now] * len(p.client.datagrams_to_send(now))
    expected = [10.0 + ROUTABILITY_CHECK_INTERVAL * i for i in range(ROUTABILITY_CHECK_TRIES + 1)]
    assert sent == expected
    c = p.events(p.client)
    rtx = [e for e in c if isinstance(e, ev.Retransmitted)]
    assert [(e.attempt, e.reason) for e in rtx] == [(i, "path_test") for i in range(1, 11)]
    assert isinstance(c[-1], ev.IkeSaDeleted) and c[-1].reason == "timeout"
    done = [e for e in c if isinstance(e, ev.ExchangeCompleted)]
    assert [(e.purpose, e.outcome) for e in done] == [("mobike", "timeout")]
    assert now == 10.0 + ROUTABILITY_CHECK_INTERVAL * (ROUTABILITY_CHECK_TRIES + 1)


def test_second_move_during_an_update_wins() -> None:
    """lte goes away too while the path test from lte is in flight: the queued check supersedes it (strongSwan
    ``is_newer_update_queued``) and the IKE_SA ends on the third address."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE, THIRD], 10.0)
    lost = p.deliver(p.client, 10.0, lambda d: None)  # the path test from lte is lost
    assert [d.src for d in lost] == [] and p.client.datagrams_to_send(10.0) == []
    p.client.set_local_addresses([THIRD], 11.0)
    seen = _settle(p, 11.0, _only_from(THIRD))
    assert {d.src.ip for d in seen} == {THIRD, GATEWAY.ip}
    (sa,) = [p.gateway.ike_sa_info(s) for s in p.gateway.ike_sa_spis()]
    assert sa.peer == Address(THIRD, 4500)
    c = p.events(p.client)
    assert [e.action for e in c if isinstance(e, ev.IkeSaRoaming)] == ["mobike", "mobike"]
    assert [(e.method, e.local.ip) for e in c if isinstance(e, ev.IkeSaMoved)] == [("mobike_probe", THIRD)]


def test_cookie2_mismatch_closes_the_ike_sa() -> None:
    """The answer to UPDATE_SA_ADDRESSES echoes another COOKIE2: strongSwan closes the IKE_SA (RFC 4555 §3.5)."""
    p, _ = _established()
    p.events(p.client)
    real = p.gateway.respond

    def wrong_cookie(sa, exchange_type, message_id, inner):  # type: ignore[no-untyped-def]
        inner = [NotifyPayload(NotifyType.COOKIE2, data=bytes(16)) if getattr(n, "notify_type", None)
                 == NotifyType.COOKIE2 else n for n in inner]
        real(sa, exchange_type, message_id, inner)
    p.gateway.respond = wrong_cookie  # type: ignore[method-assign]
    p.client.set_local_addresses([LTE], 10.0)
    _settle(p, 10.0, _only_from(LTE))
    c = p.events(p.client)
    (rej,) = [e for e in c if isinstance(e, ev.ResponseRejected)]
    assert (rej.purpose, rej.message_id, rej.reason) == ("mobike", 3, "COOKIE2 mismatch")
    assert isinstance(c[-1], ev.IkeSaDeleted) and c[-1].reason == "cookie2_mismatch"
    assert p.client.ike_sa_spis() == []


def _nat(public: str) -> Callable[[Datagram], Datagram | None]:
    """lte sits behind a NAT with *public* address (port kept); wlan is gone."""
    def mangle(d: Datagram) -> Datagram | None:
        if d.src.ip == LTE:
            return Datagram(d.data, Address(public, d.src.port), d.dst)
        if d.dst.ip == public:
            return Datagram(d.data, d.src, Address(LTE, d.dst.port))
        return None
    return mangle


def test_update_behind_a_new_nat_turns_on_nat_traversal_on_both_ends() -> None:
    """The new path has a NAT: the NAT_D payloads of the update say so and both ends note it (RFC 4555 §3.5)."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE], 10.0)
    _settle(p, 10.0, _nat("198.51.100.9"))
    c, g = p.events(p.client), p.events(p.gateway)
    (gm,) = [e for e in g if isinstance(e, ev.IkeSaMoved)]
    assert (gm.peer, gm.nat_local, gm.nat_peer) == (Address("198.51.100.9", 4500), False, True)
    moves = [(e.method, e.nat_local, e.nat_peer) for e in c if isinstance(e, ev.IkeSaMoved)]
    assert moves == [("mobike_probe", False, False), ("mobike", True, False)]
    assert [(e.local_behind_nat, e.peer_behind_nat) for e in c if isinstance(e, ev.NatDetected)] == [(True, False)]


def test_no_nats_allowed_is_refused_with_unacceptable_addresses() -> None:
    """NO_NATS_ALLOWED and a NAT on the path: UNACCEPTABLE_ADDRESSES, the gateway stays (RFC 4555 §3.9)."""
    p = _peers(client={"mobike_no_nats": True})
    p.client.initiate("vpn", 0.0)
    _settle(p, 0.0, None)
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE], 10.0)
    _settle(p, 10.0, _nat("198.51.100.9"))
    c, g = p.events(p.client), p.events(p.gateway)
    assert [e.notify for e in g if isinstance(e, ev.ErrorNotifySent)] == ["UNACCEPTABLE_ADDRESSES"]
    assert [e for e in g if isinstance(e, ev.IkeSaMoved)] == []
    assert [e.action for e in c if isinstance(e, ev.IkeSaRoaming)] == ["mobike", "refused"]
    (spi,) = p.gateway.ike_sa_spis()
    assert p.gateway.ike_sa_info(spi).peer == Address(WLAN, 4500)


def test_return_routability_check_before_the_responder_moves() -> None:
    """``mobike_return_routability``: the gateway answers the update, checks the new address with COOKIE2 (mid 0
    of its own), and moves only when the echo comes back (RFC 4555 §3.5)."""
    p = _peers(gateway={"mobike_return_routability": True})
    p.client.initiate("vpn", 0.0)
    _settle(p, 0.0, None)
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE], 10.0)
    seen = _settle(p, 10.0, _only_from(LTE))
    assert len(seen) == 6
    g = p.events(p.gateway)
    started = [(e.purpose, e.message_id) for e in g if isinstance(e, ev.ExchangeStarted)]
    assert started == [("mobike", 0)]
    check = _inner(p.client, seen[4].data)
    assert [n.notify_type for n in check] == [NotifyType.COOKIE2]
    assert _inner(p.gateway, seen[5].data) == check  # echoed
    (gm,) = [e for e in g if isinstance(e, ev.IkeSaMoved)]
    assert (gm.peer, gm.method) == (Address(LTE, 4500), "mobike_responder")


def test_return_routability_failing_leaves_the_responder_where_it_was() -> None:
    """The check's request never gets through: after its retransmissions the gateway keeps the old path and the
    IKE_SA (RFC 4555 §3.5)."""
    p = _peers(gateway={"mobike_return_routability": True})
    p.client.initiate("vpn", 0.0)
    _settle(p, 0.0, None)
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE], 10.0)

    def no_rr(d: Datagram) -> Datagram | None:
        if d.src.ip == GATEWAY.ip and parse_message(d.data).is_request:
            return None
        return _only_from(LTE)(d)
    _settle(p, 10.0, no_rr)
    now = 10.0
    while (t := p.gateway.get_timer()) is not None and t < 1000:
        now = t
        p.gateway.handle_timer(now)
        p.deliver(p.gateway, now, no_rr)
    g = p.events(p.gateway)
    assert [e.action for e in g if isinstance(e, ev.IkeSaRoaming)] == ["return_routability_failed"]
    assert [e for e in g if isinstance(e, ev.IkeSaMoved)] == [] and "IkeSaDeleted" not in names(g)
    (spi,) = p.gateway.ike_sa_spis()
    assert p.gateway.ike_sa_info(spi).peer == Address(WLAN, 4500)
    assert now == 10.0 + sum(IkePolicy().retransmit.timeouts())


def test_request_in_flight_is_resent_from_the_new_address() -> None:
    """A CHILD rekey is in flight (lost) when wlan goes: it is sent again at once from lte, answered there, and then
    the path test and update follow (RFC 4555 §3.5)."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    (c_spi,) = p.client.child_sa_spis()
    p.client.rekey_child_sa(c_spi, 5.0)
    assert len(p.deliver(p.client, 5.0, lambda d: None)) == 0
    p.client.set_local_addresses([LTE], 6.0)
    seen = _settle(p, 6.0, _only_from(LTE))
    assert [(d.src.ip, d.dst.ip) for d in seen] == [(LTE, GATEWAY.ip), (GATEWAY.ip, LTE)] * 4
    c = p.events(p.client)
    (rtx,) = [e for e in c if isinstance(e, ev.Retransmitted)]
    assert (rtx.purpose, rtx.message_id, rtx.reason) == ("rekey_child", 2, "local_moved")
    assert [(e.purpose, e.message_id) for e in c if isinstance(e, ev.ExchangeStarted)] == [
        ("rekey_child", 2), ("delete_child", 3), ("mobike", 4), ("mobike", 5)]
    assert "RekeyCompleted" in names(c)


def test_address_list_update_when_an_address_appears() -> None:
    """A third address comes up, the current one stays: only the new list is sent (strongSwan keeps the path)."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([WLAN, LTE, THIRD], 10.0)
    seen = _settle(p, 10.0, None)
    assert len(seen) == 2 and seen[0].src == Address(WLAN, 4500)
    sent = _inner(p.gateway, seen[0].data)
    assert [(n.notify_type, n.data) for n in sent] == [
        (NotifyType.ADDITIONAL_IP4_ADDRESS, bytes([10, 0, 1, 1])),
        (NotifyType.ADDITIONAL_IP4_ADDRESS, bytes([10, 0, 2, 1]))]
    g = p.events(p.gateway)
    assert [e.peer_addresses for e in g if isinstance(e, ev.PeerAddressesUpdated)] == [f"{LTE} {THIRD}"]
    assert [e.action for e in p.events(p.client) if isinstance(e, ev.IkeSaRoaming)] == ["address_list"]


def test_no_usable_address_makes_the_ike_sa_stale_until_one_returns() -> None:
    """Every interface down: stale (strongSwan COND_STALE), nothing sent; lte comes up: path test and update."""
    p, _ = _established()
    p.events(p.client)
    p.client.set_local_addresses([], 10.0)
    assert p.client.datagrams_to_send(10.0) == []
    p.client.set_local_addresses([LTE], 20.0)
    _settle(p, 20.0, _only_from(LTE))
    c = p.events(p.client)
    assert [e.action for e in c if isinstance(e, ev.IkeSaRoaming)] == ["stale", "mobike"]
    assert [e.local.ip for e in c if isinstance(e, ev.IkeSaMoved)] == [LTE]


def test_without_mobike_the_initiator_reauthenticates_from_the_new_address() -> None:
    """No MOBIKE: wlan goes at t=10, a new IKE_SA (with the CHILD_SA) comes up from lte at once and the old one's
    Delete goes from lte too (strongSwan ``roam`` -> ``resolve_hosts`` + make-before-break ``reauth``)."""
    p = _peers(client={"mobike": False}, gateway={"mobike": False})
    p.client.initiate("vpn", 0.0)
    _settle(p, 0.0, None)
    (old,) = p.client.ike_sa_spis()
    p.events(p.client), p.events(p.gateway)
    p.client.set_local_addresses([LTE], 10.0)
    seen = _settle(p, 10.0, _only_from(LTE))
    c, g = p.events(p.client), p.events(p.gateway)
    roam = [e.action for e in c if isinstance(e, ev.IkeSaRoaming)]
    assert roam == ["reestablish"]
    (re,) = [e for e in c if isinstance(e, ev.IkeSaReestablishing)]
    assert (re.old_spi, re.reason) == (old, "address_change")
    assert [(e.purpose, e.message_id) for e in c if isinstance(e, ev.ExchangeStarted)] == [
        ("ike_sa_init", 0), ("delete_ike", 2), ("ike_auth", 1)]
    assert seen[0].src == Address(LTE, 500)
    (new,) = p.client.ike_sa_spis()
    assert new != old and p.client.ike_sa_info(new).local == Address(LTE, 500)
    assert [e.reason for e in g if isinstance(e, ev.IkeSaDeleted)] == ["deleted_by_peer"]
    (gw_sa,) = p.gateway.ike_sa_spis()
    assert p.gateway.ike_sa_info(gw_sa).peer == Address(LTE, 500) and len(p.gateway.child_sa_spis()) == 1


def _gateway_retransmits(p: Peers, until: float, net: Callable[[Datagram], Datagram | None]) -> float:
    """Run both daemons' timers up to *until* through *net*; return the last time."""
    now = 0.0
    while True:
        t = [x for x in (p.client.get_timer(), p.gateway.get_timer()) if x is not None]
        if not t or min(t) > until:
            return now
        now = min(t)
        for d in (p.client, p.gateway):
            timer = d.get_timer()
            if timer is not None and timer <= now:
                d.handle_timer(now)
        _settle(p, now, net)


def test_update_crossing_a_gateway_ike_rekey() -> None:
    """The gateway rekeys the IKE_SA (request to wlan, lost) while the client moves to lte: the update moves the old
    IKE_SA, the gateway's retransmission goes to lte at 14 s and the new IKE_SA inherits MOBIKE and the new path
    (RFC 7296 §2.25, RFC 4555 §3.5)."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    (g_spi,) = p.gateway.ike_sa_spis()
    p.gateway.rekey_ike_sa(g_spi, 10.0)
    net = _only_from(LTE)
    assert p.deliver(p.gateway, 10.0, net) == []  # to wlan: lost
    p.client.set_local_addresses([LTE], 10.0)
    _settle(p, 10.0, net)
    g = p.events(p.gateway)
    assert [e.method for e in g if isinstance(e, ev.IkeSaMoved)] == ["mobike_responder"]
    _gateway_retransmits(p, 20.0, net)
    g = p.events(p.gateway)
    rtx = [(e.purpose, e.attempt) for e in g if isinstance(e, ev.Retransmitted)]
    assert rtx == [("rekey_ike", 1)]
    (new,) = p.gateway.ike_sa_spis()
    assert new != g_spi
    sa = p.gateway.sas[new]
    assert (sa.mobike, sa.peer, sa.local_ts_ip, sa.peer_ts_ip) == (True, Address(LTE, 4500), GATEWAY.ip, WLAN)
    (c_new,) = p.client.ike_sa_spis()
    assert p.client.sas[c_new].local == Address(LTE, 4500) and p.client.sas[c_new].mobike


def test_update_crossing_a_gateway_delete() -> None:
    """The gateway deletes the IKE_SA (request to wlan, lost) as the client moves: the gateway answers the update
    (RFC 7296 §2.25: a request on an IKE_SA being deleted is still answered), moves, and its retransmitted Delete
    reaches the client on lte at 14 s; both IKE_SAs are gone."""
    p, _ = _established()
    p.events(p.client), p.events(p.gateway)
    (g_spi,) = p.gateway.ike_sa_spis()
    p.gateway.delete_ike_sa(g_spi, 10.0)
    net = _only_from(LTE)
    assert p.deliver(p.gateway, 10.0, net) == []
    p.client.set_local_addresses([LTE], 10.0)
    _settle(p, 10.0, net)
    assert [e.method for e in p.events(p.gateway) if isinstance(e, ev.IkeSaMoved)] == ["mobike_responder"]
    last = _gateway_retransmits(p, 20.0, net)
    assert last == 14.0
    assert p.gateway.ike_sa_spis() == [] and p.client.ike_sa_spis() == []
    assert [e.reason for e in p.events(p.client) if isinstance(e, ev.IkeSaDeleted)] == ["deleted_by_peer"]
