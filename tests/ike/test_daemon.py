"""The driver: retransmissions, response cache, drops of bad datagrams (RFC 7296 §2.1–§2.3)."""

from __future__ import annotations

import pytest
from ikepeers import CLIENT, GATEWAY, LONG, Peers, make_peers, names

from ikesim.errors import LocalProtocolError
from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, IkePolicy
from ikesim.wire.codec import parse_message

SCHEDULE = (4.0, 11.2, 24.16, 47.488, 89.4784)
GIVE_UP = 165.06112


def test_ike_sa_init_retransmission_schedule_and_teardown(peers: Peers) -> None:
    """All lost: resent at 4, 11.2, 24.16, 47.488, 89.4784 s, same bytes; gives up at 165.06112."""
    peers.client.initiate("vpn", 0.0)
    (first,) = peers.client.datagrams_to_send(0.0)
    for n, t in enumerate(SCHEDULE, start=1):
        assert peers.client.get_timer() == pytest.approx(t, abs=1e-9)
        peers.client.handle_timer(peers.client.get_timer())
        (again,) = peers.client.datagrams_to_send(t)
        assert again.data == first.data and (again.src, again.dst) == (CLIENT, GATEWAY)
        e = peers.events(peers.client)[-1]
        assert isinstance(e, ev.Retransmitted) and e.attempt == n
    assert peers.client.get_timer() == pytest.approx(GIVE_UP, abs=1e-9)
    peers.client.handle_timer(GIVE_UP - 1e-6)
    assert peers.client.datagrams_to_send(GIVE_UP) == [] and peers.client.sas
    peers.client.handle_timer(peers.client.get_timer())
    c = peers.events(peers.client)
    assert names(c) == ["ExchangeCompleted", "IkeSaDeleted"]
    assert (c[0].outcome, c[0].retransmissions, c[1].reason) == ("timeout", 5, "timeout")
    assert peers.client.datagrams_to_send(GIVE_UP) == [] and peers.client.get_timer() is None


def test_established_sa_exchange_timeout_deletes_everything() -> None:
    """A lost CHILD rekey: timeout -> IKE_SA and CHILD_SAs removed, no Delete sent."""
    p = make_peers(client_ike=IkePolicy(lifetime=LONG),
                   client_children=(ChildPolicy(lifetime=LONG),))
    c_spi, _ = p.establish(0.0)
    p.client.rekey_child_sa(c_spi, 100.0)
    (req,) = p.client.datagrams_to_send(100.0)
    for t in SCHEDULE:
        assert p.client.get_timer() == pytest.approx(100.0 + t, abs=1e-9)
        p.client.handle_timer(p.client.get_timer())
        assert [d.data for d in p.client.datagrams_to_send(0)] == [req.data]
    assert p.client.get_timer() == pytest.approx(100.0 + GIVE_UP, abs=1e-9)
    p.client.handle_timer(p.client.get_timer())
    c = p.events(p.client)
    assert names(c)[-3:] == ["ExchangeCompleted", "ChildSaDeleted", "IkeSaDeleted"]
    assert (c[-3].outcome, c[-2].reason, c[-1].reason) == ("timeout", "ike_deleted", "timeout")
    assert p.client.datagrams_to_send(300.0) == []


def test_jittered_schedule_is_shorter_and_reproducible() -> None:
    """retransmit jitter subtracts a drawn share of each wait; same seed, same deadlines."""
    from ikesim.ike.config import RetransmitPolicy

    deadlines = []
    for _ in range(2):
        p = make_peers(client_ike=IkePolicy(retransmit=RetransmitPolicy(jitter=0.2)))
        p.client.initiate("vpn", 0.0)
        deadlines.append(p.client.get_timer())
    assert deadlines[0] == deadlines[1] and 3.2 <= deadlines[0] < 4.0


def test_duplicate_request_answered_from_cache(peers: Peers) -> None:
    """A retransmitted request gets the cached response bytes and is not processed again (§2.1)."""
    c_spi, _ = peers.establish()
    peers.client.rekey_child_sa(c_spi, 1.0)
    (req,) = peers.client.datagrams_to_send(1.0)
    peers.gateway.receive_datagram(req.data, req.src, req.dst, 1.0)
    (r1,) = peers.gateway.datagrams_to_send(1.0)
    assert names(peers.events(peers.gateway)) == ["ChildSaInstalled", "RekeyCompleted"]
    peers.gateway.receive_datagram(req.data, req.src, req.dst, 2.0)
    (r2,) = peers.gateway.datagrams_to_send(2.0)
    assert r2.data == r1.data and peers.events(peers.gateway) == []
    assert len(peers.gateway.children) == 2


def test_duplicate_ike_sa_init_answered_from_cache(peers: Peers) -> None:
    """A retransmitted IKE_SA_INIT gets the same response; no second responder SA."""
    peers.client.initiate("vpn", 0.0)
    (req,) = peers.client.datagrams_to_send(0.0)
    peers.gateway.receive_datagram(req.data, req.src, req.dst, 0.0)
    peers.gateway.receive_datagram(req.data, req.src, req.dst, 4.0)
    r1, r2 = peers.gateway.datagrams_to_send(4.0)
    assert r1.data == r2.data and len(peers.gateway.sas) == 1


def test_tampered_message_dropped_then_real_one_works(peers: Peers) -> None:
    """A flipped byte in IKE_AUTH: MessageDropped, state unchanged, the real one works."""
    peers.client.initiate("vpn", 0.0)
    peers.deliver(peers.client, 0.0)
    peers.deliver(peers.gateway, 0.0)
    (auth,) = peers.client.datagrams_to_send(0.0)
    bad = bytearray(auth.data)
    bad[-20] ^= 0x01
    peers.gateway.receive_datagram(bytes(bad), auth.src, auth.dst, 0.0)
    g = peers.events(peers.gateway)
    assert names(g) == ["MessageDropped"] and g[0].reason == "integrity check failed"
    assert peers.gateway.datagrams_to_send(0.0) == [] and peers.gateway.ike_sa_spis() == []
    peers.gateway.receive_datagram(auth.data, auth.src, auth.dst, 0.5)
    assert names(peers.events(peers.gateway)) == ["IkeSaEstablished", "ChildSaInstalled"]


def test_garbage_and_unknown_spi_dropped(peers: Peers) -> None:
    """Malformed bytes and unknown SPIs become MessageDropped, never exceptions."""
    peers.establish()
    peers.gateway.receive_datagram(b"\x01\x02", CLIENT, GATEWAY, 1.0)
    (sa,) = peers.client.sas.values()
    peers.client.check_liveness(sa.spi_i, 1.0)
    (dpd,) = peers.client.datagrams_to_send(1.0)
    forged = bytes(8) + b"\x55" * 8 + dpd.data[16:]
    peers.gateway.receive_datagram(forged, CLIENT, GATEWAY, 1.0)
    g = peers.events(peers.gateway)
    assert [e.reason.split(":")[0] for e in g] == ["malformed", "unknown IKE SPI"]


def test_unexpected_response_and_old_message_id_dropped(peers: Peers) -> None:
    """An unasked-for response and a stale-message-ID request are dropped with reasons."""
    c_spi, _ = peers.establish()
    peers.client.rekey_child_sa(c_spi, 1.0)
    (req,) = peers.client.datagrams_to_send(1.0)
    peers.gateway.receive_datagram(req.data, req.src, req.dst, 1.0)
    (resp,) = peers.gateway.datagrams_to_send(1.0)
    peers.client.receive_datagram(resp.data, resp.src, resp.dst, 1.0)
    peers.client.datagrams_to_send(1.0)  # the Delete of the old CHILD_SA, lost
    peers.events(peers.client)
    peers.client.receive_datagram(resp.data, resp.src, resp.dst, 1.5)
    (e,) = peers.events(peers.client)
    assert isinstance(e, ev.MessageDropped) and e.reason == "unexpected response"
    peers.events(peers.gateway)
    # a request with message ID 1 (IKE_AUTH's) is neither new nor the last answered one
    old = bytearray(req.data)
    assert parse_message(req.data).message_id == 2
    old[20:24] = (0).to_bytes(4, "big")
    peers.gateway.receive_datagram(bytes(old), req.src, req.dst, 2.0)
    (e,) = peers.events(peers.gateway)
    assert isinstance(e, ev.MessageDropped) and e.reason == "unexpected message ID 0"


def test_commands_on_unknown_sas_raise(peers: Peers) -> None:
    """Commands naming unknown SAs or connections raise LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        peers.client.initiate("nope", 0.0)
    with pytest.raises(LocalProtocolError):
        peers.client.rekey_child_sa(b"\x00\x00\x01\x00", 0.0)
    with pytest.raises(LocalProtocolError):
        peers.client.delete_ike_sa(b"\x01" * 8, 0.0)
    with pytest.raises(LocalProtocolError):
        peers.gateway.initiate("vpn", 0.0)  # no remote_addr


def test_window_queues_second_request(peers: Peers) -> None:
    """Window size 1: a second command waits until the first exchange completes (§2.3)."""
    c_spi, _ = peers.establish()
    (spi,) = peers.client.ike_sa_spis()
    peers.client.check_liveness(spi, 1.0)
    peers.client.rekey_child_sa(c_spi, 1.0)
    assert len(peers.client.datagrams_to_send(1.0)) == 1
    assert names(peers.events(peers.client)) == ["ExchangeStarted"]


def test_unsupported_critical_payload_gets_error_response(peers: Peers) -> None:
    """An unknown critical payload in a request: UNSUPPORTED_CRITICAL_PAYLOAD (§2.5)."""
    from ikesim.wire.codec import unprotect_message
    from ikesim.wire.iana import ExchangeType, NotifyType
    from ikesim.wire.payloads import NotifyPayload, UnknownPayload

    peers.establish()
    (sa,) = peers.client.sas.values()
    data = peers.client.seal(sa, ExchangeType.INFORMATIONAL, 2, False,
                             [UnknownPayload(type_number=200, data=b"xx", critical=True)])
    peers.gateway.receive_datagram(data, CLIENT, GATEWAY, 1.0)
    (resp,) = peers.gateway.datagrams_to_send(1.0)
    msg = unprotect_message(resp.data, sa.protect_in)
    assert msg.is_response and msg.message_id == 2
    assert msg.payloads == (NotifyPayload(NotifyType.UNSUPPORTED_CRITICAL_PAYLOAD, data=b"\xc8"),)
    (sent,) = peers.events(peers.gateway)
    assert (type(sent).__name__, sent.notify, sent.exchange, sent.message_id) == (
        "ErrorNotifySent", "UNSUPPORTED_CRITICAL_PAYLOAD", "INFORMATIONAL", 2)


def test_crossing_ike_deletes(peers: Peers) -> None:
    """Both peers delete the IKE_SA at once: each removes it once, as deleted locally."""
    peers.establish()
    (c,), (g,) = peers.client.ike_sa_spis(), peers.gateway.ike_sa_spis()
    peers.client.delete_ike_sa(c, 1.0)
    peers.gateway.delete_ike_sa(g, 1.0)
    peers.settle(1.0)
    for d, spi in ((peers.client, c), (peers.gateway, g)):
        e = peers.events(d)
        assert [x.reason for x in e if isinstance(x, ev.IkeSaDeleted)] == ["deleted_locally"]
        # Each answered the other's Delete: that response stays cached one retransmission window (§2.1).
        assert d.sas == {} and list(d.closed) == [spi]
        assert d.get_timer() == pytest.approx(1.0 + GIVE_UP, abs=1e-9)
        d.handle_timer(d.get_timer())
        assert d.closed == {} and d.get_timer() is None


def test_replayed_request_to_4500_from_elsewhere_does_not_move_the_ike_sa(peers: Peers) -> None:
    """RFC 7296 §2.23 (and RFC 4555): a retransmission never updates addresses. The captured last request,
    replayed to port 4500 from another address, gets the cached response back to that source (as strongSwan),
    but the IKE_SA keeps its addresses and the next request goes to the real peer."""
    from ikesim.types import Address

    peers.establish()
    (c_spi,), (g_spi,) = peers.client.ike_sa_spis(), peers.gateway.ike_sa_spis()
    peers.client.check_liveness(c_spi, 1.0)
    (req,) = peers.deliver(peers.client, 1.0)
    (resp,) = peers.deliver(peers.gateway, 1.0)
    peers.events(peers.client), peers.events(peers.gateway)
    attacker, natt = Address("192.0.2.66", 4500), Address(GATEWAY.ip, 4500)
    peers.gateway.receive_datagram(req.data, attacker, natt, 2.0)
    (again,) = peers.gateway.datagrams_to_send(2.0)
    assert (again.data, again.src, again.dst) == (resp.data, natt, attacker)
    assert peers.events(peers.gateway) == []  # no NatTraversalStarted, no PeerAddressChanged
    info = peers.gateway.ike_sa_info(g_spi)
    assert (info.local, info.peer) == (GATEWAY, CLIENT)
    peers.gateway.check_liveness(g_spi, 3.0)
    (dpd,) = peers.gateway.datagrams_to_send(3.0)
    assert (dpd.src, dpd.dst) == (GATEWAY, CLIENT)


def test_timed_out_half_open_sa_leaves_no_keys_in_the_closed_cache(peers: Peers) -> None:
    """A responder IKE_SA that never saw IKE_AUTH is removed at half_open_timeout with nothing cached: only
    IKE_SA_INIT was answered, and that retransmission is not served from the closed cache (RFC 7296 §2.1)."""
    peers.client.initiate("vpn", 0.0)
    peers.deliver(peers.client, 0.0)
    peers.gateway.datagrams_to_send(0.0)  # the IKE_SA_INIT response is lost; IKE_AUTH never comes
    (spi,) = peers.gateway.half_open
    peers.gateway.handle_timer(peers.gateway.get_timer())
    assert [(type(e).__name__, e.reason) for e in peers.events(peers.gateway)] == [("IkeSaDeleted", "timeout")]
    assert peers.gateway.sas == {} and peers.gateway.closed == {} and peers.gateway.get_timer() is None
    assert spi not in peers.gateway.closed


def test_ike_sa_init_request_with_a_zero_initiator_spi_is_dropped(peers: Peers) -> None:
    """RFC 7296 §3.1: the initiator's SPI MUST NOT be zero: the request is dropped with a reason, no IKE_SA made."""
    peers.client.initiate("vpn", 0.0)
    (req,) = peers.client.datagrams_to_send(0.0)
    peers.gateway.receive_datagram(bytes(8) + req.data[8:], req.src, req.dst, 0.0)
    assert peers.gateway.datagrams_to_send(0.0) == [] and peers.gateway.sas == {}
    (drop,) = peers.events(peers.gateway)
    assert (type(drop).__name__, drop.reason, drop.exchange) == ("MessageDropped", "zero initiator SPI", "IKE_SA_INIT")


def test_ike_sa_init_request_with_a_short_nonce_is_dropped(peers: Peers) -> None:
    """RFC 7296 §3.9 (strongSwan nonce_payload verify): an IKE_SA_INIT nonce of 8 octets is dropped with the reason;
    it is unencrypted, so no INVALID_SYNTAX is answered (§3.10.1)."""
    from dataclasses import replace as _with

    from hostile import replace

    from ikesim.wire.codec import serialize_message
    from ikesim.wire.payloads import NoncePayload

    peers.client.initiate("vpn", 0.0)
    (req,) = peers.client.datagrams_to_send(0.0)
    msg = parse_message(req.data)
    bad = _with(msg, payloads=tuple(replace(list(msg.payloads), NoncePayload, NoncePayload(bytes(8)))))
    peers.gateway.receive_datagram(serialize_message(bad), req.src, req.dst, 0.0)
    assert peers.gateway.datagrams_to_send(0.0) == [] and peers.gateway.sas == {}
    (drop,) = peers.events(peers.gateway)
    assert (type(drop).__name__, drop.reason) == ("MessageDropped", "invalid payload: nonce of 8 bytes (RFC 7296 §3.9: 16..256)")
