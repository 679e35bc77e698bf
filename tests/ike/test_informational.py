"""INFORMATIONAL: CHILD_SA and IKE_SA Delete, liveness checks (RFC 7296 §1.4.1, §2.4)."""

from __future__ import annotations

import pytest
from ikepeers import LONG, Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import ChildPolicy, IkePolicy


def test_child_delete_answered_with_paired_delete(peers: Peers) -> None:
    """Client deletes its CHILD_SA: gateway answers D(its SPI); both remove the pair."""
    c_spi, g_spi = peers.establish()
    peers.client.delete_child_sa(c_spi, 1.0)
    peers.settle(1.0)
    c, g = peers.events(peers.client), peers.events(peers.gateway)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ChildSaDeleted"]
    assert c[0].purpose == "delete_child" and c[0].message_id == 2
    assert (c[2].spi_in, c[2].reason) == (c_spi, "deleted_locally")
    assert names(g) == ["ChildSaDeleted"]
    assert (g[0].spi_in, g[0].reason) == (g_spi, "deleted_by_peer")
    assert peers.client.child_sa_spis() == [] and peers.gateway.child_sa_spis() == []
    assert len(peers.client.ike_sa_spis()) == 1


@pytest.mark.parametrize("side", ["client", "gateway"])
def test_ike_delete_takes_children(side: str) -> None:
    """Deleting the IKE_SA removes its CHILD_SAs on both sides (RFC 7296 §1.4.1)."""
    p = make_peers()
    p.establish()
    d = p.client if side == "client" else p.gateway
    (spi,) = d.ike_sa_spis()
    d.delete_ike_sa(spi, 2.0)
    p.settle(2.0)
    mine, theirs = p.events(d), p.events(p.other(d))
    assert names(mine) == ["ExchangeStarted", "ExchangeCompleted", "ChildSaDeleted", "IkeSaDeleted"]
    assert mine[0].purpose == "delete_ike" and mine[2].reason == "ike_deleted"
    assert mine[3].reason == "deleted_locally"
    assert names(theirs) == ["ChildSaDeleted", "IkeSaDeleted"]
    assert theirs[1].reason == "deleted_by_peer"
    window = 2.0 + sum(p.client.config.connections[0].ike.retransmit.timeouts())
    for x in (p.client, p.gateway):
        assert x.ike_sa_spis() == [] and x.child_sa_spis() == []
        # Only the response cache of a removed IKE_SA is left, until its retransmission window ends (§2.1).
        assert x.get_timer() in ((window,) if x.closed else (None,))
        if x.closed:
            x.handle_timer(window)
        assert x.closed == {} and x.get_timer() is None


def test_dpd_answered() -> None:
    """dpd_delay=30: after 30 s of silence an empty INFORMATIONAL is sent and answered."""
    pol = IkePolicy(dpd_delay=30.0, lifetime=LONG)
    p = make_peers(client_ike=pol, gateway_ike=pol,
                   client_children=(ChildPolicy(lifetime=LONG),),
                   gateway_children=(ChildPolicy(lifetime=LONG),))
    p.establish(0.0)
    assert p.client.get_timer() == 30.0 and p.gateway.get_timer() == 30.0
    p.client.handle_timer(30.0)
    p.settle(30.0)
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted"]
    assert (c[0].purpose, c[0].exchange, c[1].outcome) == ("dpd", "INFORMATIONAL", "ok")
    # the gateway heard from the client at 30 s, the client from the gateway at 30 s
    assert p.client.get_timer() == 60.0 and p.gateway.get_timer() == 60.0


def test_dpd_unanswered_tears_down_at_exact_time() -> None:
    """An unanswered DPD: DeadPeerDetected + IkeSaDeleted(dpd_timeout) at 30 + 165.06112 s."""
    pol = IkePolicy(dpd_delay=30.0, lifetime=LONG)
    p = make_peers(client_ike=pol, client_children=(ChildPolicy(lifetime=LONG),))
    p.establish(0.0)
    p.client.handle_timer(30.0)
    p.client.datagrams_to_send(30.0)  # lost
    for t in (34.0, 41.2, 54.16, 77.488, 119.4784):
        assert p.client.get_timer() == pytest.approx(t, abs=1e-9)
        p.client.handle_timer(p.client.get_timer())
        assert len(p.client.datagrams_to_send(t)) == 1
    assert p.client.get_timer() == pytest.approx(195.06112, abs=1e-9)
    p.client.handle_timer(p.client.get_timer())
    c = p.events(p.client)
    assert names(c)[-5:] == ["Retransmitted", "ExchangeCompleted", "DeadPeerDetected",
                             "ChildSaDeleted", "IkeSaDeleted"]
    assert c[-4].outcome == "timeout" and c[-4].retransmissions == 5
    assert c[-2].reason == "ike_deleted" and c[-1].reason == "dpd_timeout"
    assert p.client.datagrams_to_send(200.0) == []  # no delete sent
    assert p.client.get_timer() is None


def test_check_liveness_command(peers: Peers) -> None:
    """check_liveness sends an empty INFORMATIONAL that the peer answers."""
    peers.establish()
    (spi,) = peers.client.ike_sa_spis()
    peers.client.check_liveness(spi, 5.0)
    peers.settle(5.0)
    c = peers.events(peers.client)
    assert [(type(e).__name__, e.purpose) for e in c] == [("ExchangeStarted", "dpd"),
                                                         ("ExchangeCompleted", "dpd")]
    assert peers.events(peers.gateway) == []
    assert isinstance(c[1], ev.ExchangeCompleted) and c[1].outcome == "ok"


def test_lost_ike_delete_response_is_answered_from_cache_after_removal() -> None:
    """RFC 7296 §2.1: the responder already removed the IKE_SA, yet the retransmitted Delete gets the
    identical cached response, so the initiator completes at the first retransmission (t=6 s), not by timeout."""
    p = make_peers()
    p.establish()
    (spi,) = p.client.ike_sa_spis()
    p.events(p.client), p.events(p.gateway)
    p.client.delete_ike_sa(spi, 2.0)
    p.deliver(p.client, 2.0)
    lost = p.gateway.datagrams_to_send(2.0)  # the response never arrives
    assert len(lost) == 1 and p.gateway.ike_sa_spis() == []
    assert p.client.get_timer() == 6.0
    p.client.handle_timer(6.0)
    (request,) = p.deliver(p.client, 6.0)
    again = p.deliver(p.gateway, 6.0)
    assert [d.data for d in again] == [lost[0].data]
    mine = p.events(p.client)
    assert names(mine) == ["ExchangeStarted", "Retransmitted", "ExchangeCompleted", "ChildSaDeleted", "IkeSaDeleted"]
    assert mine[2].outcome == "ok" and mine[2].retransmissions == 1
    assert names(p.events(p.gateway)) == ["ChildSaDeleted", "IkeSaDeleted"]
    # the same request with a flipped ICV bit is not answered from the cache
    forged = request.data[:-1] + bytes([request.data[-1] ^ 1])
    p.gateway.receive_datagram(forged, request.src, request.dst, 7.0)
    assert p.gateway.datagrams_to_send(7.0) == []
    assert names(p.events(p.gateway)) == ["MessageDropped"]


def test_delete_naming_one_spi_17000_times_is_answered_once() -> None:
    """A reassembled Delete request (RFC 7383) naming a lingering SA 17,000 times: answered D(its SPI) once, in a
    message that can be sent (before: the answer grew past the 16-bit payload length and raised)."""
    from hostile import opened, sa_of

    from ikesim.wire.codec import parse_message
    from ikesim.wire.iana import ExchangeType, ProtocolId
    from ikesim.wire.payloads import DeletePayload

    p = make_peers()
    c_spi, g_spi = p.establish()
    p.client.rekey_child_sa(c_spi, 1.0)
    p.deliver(p.client, 1.0)
    p.deliver(p.gateway, 1.0)
    (delete_req,) = p.client.datagrams_to_send(1.0)  # the client's own Delete of the old SA: replaced below
    assert p.gateway.children[g_spi].state.value == "rekeyed"
    mid = parse_message(delete_req.data).message_id
    inner = [DeletePayload(ProtocolId.ESP, 4, (c_spi,) * 8500)] * 2
    fragments = p.client.seal_datagrams(sa_of(p.client, delete_req), ExchangeType.INFORMATIONAL, mid, False, inner)
    assert len(fragments) > 1
    for data in fragments:
        p.gateway.receive_datagram(data, delete_req.src, delete_req.dst, 1.0)
    (answer,) = p.gateway.datagrams_to_send(1.0)
    assert opened(p.client, answer).payloads == (DeletePayload(ProtocolId.ESP, 4, (g_spi,)),)
    assert p.gateway.timers.deadline(("linger", g_spi)) == 6.0  # kept delete_rekeyed_delay, as for one Delete


def test_delete_answer_names_at_most_max_delete_spis(monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer's Delete is capped (MAX_DELETE_SPIS, here lowered to 2) so it always fits one message
    (RFC 7296 §3.11); every CHILD_SA the peer named is removed all the same."""
    from hostile import opened, reseal

    from ikesim.ike import informational
    from ikesim.wire.iana import ProtocolId
    from ikesim.wire.payloads import DeletePayload

    p = make_peers()
    c_first, _ = p.establish()
    (ike,) = p.client.ike_sa_spis()
    for t in (1.0, 2.0):
        p.client.create_child_sa(ike, "net", t)
        p.settle(t)
    ours = tuple(p.client.child_sa_spis())
    assert len(ours) == 3 and len(p.gateway.child_sa_spis()) == 3
    monkeypatch.setattr(informational, "MAX_DELETE_SPIS", 2)
    p.client.delete_child_sa(c_first, 3.0)
    (req,) = p.client.datagrams_to_send(3.0)
    bad = reseal(p.client, p.gateway, req, lambda pl: [DeletePayload(ProtocolId.ESP, 4, ours)])
    p.gateway.receive_datagram(bad.data, bad.src, bad.dst, 3.0)
    (answer,) = p.gateway.datagrams_to_send(3.0)
    (delete,) = opened(p.client, answer).payloads
    assert len(delete.spis) == 2 and p.gateway.child_sa_spis() == []
