"""IKE_SA_INIT: INVALID_KE, NO_PROPOSAL_CHOSEN, COOKIE, NAT (RFC 7296 §1.2, §2.6, §2.23)."""

from __future__ import annotations

from ikepeers import Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import IkePolicy
from ikesim.types import Address, Datagram
from ikesim.wire.codec import parse_message
from ikesim.wire.iana import NotifyType
from ikesim.wire.payloads import KePayload, NotifyPayload


def test_invalid_ke_retry_uses_requested_group() -> None:
    """Client sends x25519 KE, gateway wants modp2048: INVALID_KE_PAYLOAD, retry, then success."""
    p = make_peers(
        client_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519-modp2048-ecp256",)),
        gateway_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-modp2048-ecp256",)))
    spi_i = p.client.initiate("vpn", 0.0)
    (first,) = p.deliver(p.client, 0.0)
    (reply,) = p.deliver(p.gateway, 0.0)
    notify = parse_message(reply.data).get(NotifyPayload)
    assert notify is not None and notify.notify_type == NotifyType.INVALID_KE_PAYLOAD
    assert notify.data == (14).to_bytes(2, "big")
    assert p.gateway.ike_sa_spis() == [] and len(p.gateway.sas) == 0  # stateless
    (second,) = p.client.datagrams_to_send(0.0)
    m1, m2 = parse_message(first.data), parse_message(second.data)
    assert (m2.spi_i, m2.message_id) == (spi_i, 0)
    assert m2.get(KePayload).group == 14 and m1.get(KePayload).group == 31
    p.gateway.receive_datagram(second.data, second.src, second.dst, 0.0)
    p.settle(0.0)
    c = p.events(p.client)
    assert names(c)[:5] == ["ExchangeStarted", "ErrorNotifyReceived", "ExchangeCompleted",
                            "IkeSaInitRetried", "ExchangeStarted"]
    assert c[2].outcome == "INVALID_KE_PAYLOAD" and (c[3].reason, c[3].group) == ("invalid_ke", 14)
    (est,) = [e for e in c if isinstance(e, ev.IkeSaEstablished)]
    assert est.group == "modp2048" and est.spi_i == spi_i
    assert len(p.gateway.child_sa_spis()) == 1


def test_invalid_ke_not_needed_when_sent_group_acceptable() -> None:
    """The KE sent is acceptable in the chosen proposal: no INVALID_KE round (RFC 7296 §1.2)."""
    p = make_peers(
        client_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-ecp256-modp2048",)),
        gateway_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-modp2048-ecp256",)))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    c = p.events(p.client)
    assert "IkeSaInitRetried" not in names(c)
    (est,) = [e for e in c if isinstance(e, ev.IkeSaEstablished)]
    assert est.group == "ecp256"


def test_ike_no_proposal_chosen() -> None:
    """No common IKE proposal: responder keeps no state; initiator fails the IKE_SA."""
    p = make_peers(client_ike=IkePolicy(proposals=("aes128-sha256-modp2048",)),
                   gateway_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519",)))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    g = p.events(p.gateway)
    assert names(g) == ["ProposalRejected"] and g[0].local is True
    assert len(p.gateway.sas) == 0
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ErrorNotifyReceived", "ExchangeCompleted",
                        "ProposalRejected", "IkeSaDeleted"]
    assert c[2].outcome == "NO_PROPOSAL_CHOSEN" and c[3].local is False
    assert c[4].reason == "failed"
    assert p.client.get_timer() is None


def test_cookie_round_with_threshold_zero() -> None:
    """cookie_threshold=0: the first IKE_SA_INIT gets N(COOKIE); the retry carries it first."""
    p = make_peers(cookie_threshold=0)
    p.client.initiate("vpn", 0.0)
    (first,) = p.deliver(p.client, 0.0)
    (reply,) = p.deliver(p.gateway, 0.0)
    r = parse_message(reply.data)
    assert [n.notify_type for n in r.payloads] == [NotifyType.COOKIE]
    assert len(p.gateway.sas) == 0
    (second,) = p.client.datagrams_to_send(0.0)
    m = parse_message(second.data)
    assert m.payloads[0] == NotifyPayload(NotifyType.COOKIE, data=r.payloads[0].data)
    p.gateway.receive_datagram(second.data, second.src, second.dst, 0.0)
    p.settle(0.0)
    c = p.events(p.client)
    assert names(c)[:4] == ["ExchangeStarted", "ExchangeCompleted", "IkeSaInitRetried",
                            "ExchangeStarted"]
    assert c[1].outcome == "COOKIE" and c[2].reason == "cookie"
    assert "IkeSaEstablished" in names(c) and len(p.gateway.child_sa_spis()) == 1


def test_nat_detected_when_source_is_rewritten(peers: Peers) -> None:
    """A NAT rewriting the client's source: both sides detect it (RFC 7296 §2.23)."""
    public = Address("203.0.113.5", 40000)

    def nat_out(d: Datagram) -> Datagram:
        return Datagram(d.data, public, d.dst)

    peers.client.initiate("vpn", 0.0)
    peers.deliver(peers.client, 0.0, nat_out)
    g = peers.events(peers.gateway)
    assert names(g) == ["NatDetected"]
    assert (g[0].local_behind_nat, g[0].peer_behind_nat) == (False, True)
    (reply,) = peers.gateway.datagrams_to_send(0.0)
    assert reply.dst == public
    peers.client.receive_datagram(reply.data, reply.src, Address("10.0.0.1"), 0.0)
    c = peers.events(peers.client)
    (nat,) = [e for e in c if isinstance(e, ev.NatDetected)]
    assert (nat.local_behind_nat, nat.peer_behind_nat) == (True, False)


def test_no_nat_no_event(peers: Peers) -> None:
    """Direct path: no NatDetected event on either side."""
    peers.client.initiate("vpn", 0.0)
    peers.settle(0.0)
    assert "NatDetected" not in names(peers.events(peers.client))
    assert "NatDetected" not in names(peers.events(peers.gateway))
