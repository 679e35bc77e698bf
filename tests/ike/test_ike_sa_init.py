"""IKE_SA_INIT: INVALID_KE, NO_PROPOSAL_CHOSEN, COOKIE, NAT (RFC 7296 §1.2, §2.6, §2.23)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ikepeers import Peers, make_peers, names

from ikesim.ike import events as ev
from ikesim.ike.config import IkePolicy
from ikesim.types import Address, Datagram
from ikesim.wire.codec import parse_message, serialize_message
from ikesim.wire.iana import EncrId, NotifyType, ProtocolId, TransformType
from ikesim.wire.payloads import KePayload, NoncePayload, NotifyPayload, Proposal, SaPayload, Transform


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
    assert c[2].outcome == "INVALID_KE_PAYLOAD" and (c[3].reason, c[3].group) == ("invalid_ke", "modp2048")
    (est,) = [e for e in c if isinstance(e, ev.IkeSaEstablished)]
    assert est.group == "modp2048" and est.spi_i == spi_i
    assert len(p.gateway.child_sa_spis()) == 1


def test_responder_picks_its_own_group_first_by_default() -> None:
    """strongSwan's ``prefer_configured_proposals`` (default yes, ``ike_init.c``): the responder selects by its own
    order (modp2048 before ecp256), so the ecp256 KE it got is for another group: INVALID_KE_PAYLOAD naming
    modp2048, and the initiator retries with it (RFC 7296 §1.2, §1.3)."""
    p = make_peers(
        client_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-ecp256-modp2048",)),
        gateway_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-modp2048-ecp256",)))
    p.client.initiate("vpn", 0.0)
    p.settle(0.0)
    c = p.events(p.client)
    (retried,) = [e for e in c if isinstance(e, ev.IkeSaInitRetried)]
    assert (retried.reason, retried.group) == ("invalid_ke", "modp2048")
    (est,) = [e for e in c if isinstance(e, ev.IkeSaEstablished)]
    assert est.group == "modp2048"


def test_invalid_ke_not_needed_when_the_peers_order_decides() -> None:
    """``prefer_configured_proposals: no`` on the responder (strongSwan PROPOSAL_PREFER_SUPPLIED): the initiator's order
    picks ecp256, the group it sent a KE for: no INVALID_KE round (RFC 7296 §1.2)."""
    p = make_peers(
        client_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-ecp256-modp2048",)),
        gateway_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-modp2048-ecp256",),
                              prefer_configured_proposals=False))
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
    assert names(g) == ["ProposalRejected"] and g[0].by_us is True
    assert len(p.gateway.sas) == 0
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ErrorNotifyReceived", "ExchangeCompleted",
                        "ProposalRejected", "IkeSaDeleted"]
    assert c[2].outcome == "NO_PROPOSAL_CHOSEN" and c[3].by_us is False
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


def test_ke_in_a_later_proposal_group_needs_no_round_trip() -> None:
    """The KE's group is one the responder accepts in the proposal it selects: no INVALID_KE round (RFC 7296 §1.2).

    The client's first proposal (x25519 KE) is unacceptable to the gateway; its second offers ecp256 and
    x25519, both acceptable, and ecp256 first. A gateway that lets the peer's order decide
    (``prefer_configured_proposals: no``) takes x25519, the group of the KE it got; with strongSwan's default it
    would take its own first group, ecp256, and ask for it (``test_responder_picks_its_own_group_first_by_default``).
    """
    p = make_peers(
        client_ike=IkePolicy(proposals=("aes128-sha256-x25519", "aes256gcm16-prfsha256-ecp256-x25519")),
        gateway_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-ecp256-x25519",), prefer_configured_proposals=False))
    p.client.initiate("vpn", 0.0)
    (first,) = p.deliver(p.client, 0.0)
    assert parse_message(first.data).get(KePayload).group == 31
    (reply,) = p.deliver(p.gateway, 0.0)
    r = parse_message(reply.data)
    assert NotifyType.INVALID_KE_PAYLOAD not in [n.notify_type for n in r.get_all(NotifyPayload)]
    (answer,) = r.get(SaPayload).proposals
    assert answer.number == 2
    assert [t.transform_id for t in answer.transforms if t.transform_type == TransformType.KE] == [31]
    p.settle(0.0)
    c = p.events(p.client)
    assert "IkeSaInitRetried" not in names(c)
    (est,) = [e for e in c if isinstance(e, ev.IkeSaEstablished)]
    assert (est.encr, est.group) == ("aes256gcm16", "x25519")


def _answer(p: Proposal, **changes: object) -> Proposal:
    return replace(p, **changes)  # type: ignore[arg-type]


_GCM256 = Transform.make(TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 256)


@pytest.mark.parametrize(("mangle", "reason"), [
    (lambda p: (_answer(p, protocol=ProtocolId.ESP, spi=bytes(4)),), "answer protocol 3, offered IKE"),
    (lambda p: (p, _answer(p, number=2)), "answer carries 2 proposals, not exactly one"),
    (lambda p: (), "answer carries 0 proposals, not exactly one"),
    (lambda p: (_answer(p, number=2),), "answer proposal number 2 was not offered"),
    (lambda p: (_answer(p, spi=bytes(8)),), "answer SPI of 8 bytes, expected 0"),
    (lambda p: (_answer(p, transforms=(Transform.make(TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 128),
                                       *p.transforms[1:])),), "answer ENCR transform 20 was not offered"),
    (lambda p: (_answer(p, transforms=(_GCM256, *p.transforms)),), "answer has several ENCR transforms"),
    (lambda p: (_answer(p, transforms=tuple(t for t in p.transforms if t.transform_type != TransformType.PRF)),),
     "answer has no PRF transform"),
], ids=["wrong_protocol", "two_proposals", "no_proposal", "number_not_offered", "spi_size", "transform_not_offered",
        "two_of_a_type", "type_missing"])
def test_ike_sa_init_answer_not_offered_fails_cleanly(mangle, reason: str) -> None:  # type: ignore[no-untyped-def]
    """A chosen proposal that is not a subset of one offered: ResponseRejected, IKE_SA deleted, nothing sent (§3.3.6)."""
    p = make_peers()
    spi_i = p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    (reply,) = p.gateway.datagrams_to_send(0.0)
    msg = parse_message(reply.data)
    (answer,) = msg.get(SaPayload).proposals
    payloads = tuple(SaPayload(mangle(answer)) if isinstance(x, SaPayload) else x for x in msg.payloads)
    p.client.receive_datagram(serialize_message(replace(msg, payloads=payloads)), reply.src, reply.dst, 0.0)
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ResponseRejected", "IkeSaDeleted"]
    assert c[1].outcome == "invalid_proposal" and c[3].reason == "failed"
    assert (c[2].spi_i, c[2].exchange, c[2].purpose, c[2].message_id, c[2].reason) == (
        spi_i, "IKE_SA_INIT", "ike_sa_init", 0, reason)
    assert p.client.datagrams_to_send(0.0) == [] and p.client.sas == {} and p.client.get_timer() is None


@pytest.mark.parametrize(("case", "outcome", "reason"), [
    ("switched_group", "INVALID_KE_PAYLOAD", "answer group 19 and KE group 19, our KE is group 31"),
    ("no_nonce", "INVALID_SYNTAX", "IKE_SA_INIT response without SA, KE or Nonce"),
])
def test_ike_sa_init_answer_unusable_fails_cleanly(case: str, outcome: str, reason: str) -> None:
    """A responder that switches to another offered group instead of INVALID_KE_PAYLOAD (RFC 7296 §1.2), or omits
    its nonce: ResponseRejected naming it, the IKE_SA deleted, nothing sent."""
    p = make_peers(client_ike=IkePolicy(proposals=("aes256gcm16-prfsha256-x25519-ecp256",)))
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    (reply,) = p.gateway.datagrams_to_send(0.0)
    msg = parse_message(reply.data)
    if case == "switched_group":
        (answer,) = msg.get(SaPayload).proposals
        ecp = tuple(Transform.make(TransformType.KE, 19) if t.transform_type == TransformType.KE else t
                    for t in answer.transforms)
        payloads = tuple(SaPayload((replace(answer, transforms=ecp),)) if isinstance(x, SaPayload)
                         else KePayload(19, bytes(64)) if isinstance(x, KePayload) else x for x in msg.payloads)
    else:
        payloads = tuple(x for x in msg.payloads if not isinstance(x, NoncePayload))
    p.client.receive_datagram(serialize_message(replace(msg, payloads=payloads)), reply.src, reply.dst, 0.0)
    c = p.events(p.client)
    assert names(c) == ["ExchangeStarted", "ExchangeCompleted", "ResponseRejected", "IkeSaDeleted"]
    assert (c[1].outcome, c[2].reason, c[3].reason) == (outcome, reason, "failed")
    assert p.client.datagrams_to_send(0.0) == [] and p.client.sas == {}


def test_response_with_zero_responder_spi_is_dropped() -> None:
    """RFC 7296 §3.1: an IKE_SA_INIT response with SA, KE and Nonce but a zero SPIr is dropped; the real one still works."""
    p = make_peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    (reply,) = p.gateway.datagrams_to_send(0.0)
    real = parse_message(reply.data)
    forged = serialize_message(replace(real, spi_r=bytes(8)))
    p.events(p.client)
    p.client.receive_datagram(forged, reply.src, reply.dst, 0.0)
    c = p.events(p.client)
    assert [(type(e).__name__, e.reason, e.spi_r) for e in c] == [("MessageDropped", "zero responder SPI", bytes(8))]
    assert p.client.datagrams_to_send(0.0) == [] and p.client.ike_sa_spis() == []
    p.client.receive_datagram(reply.data, reply.src, reply.dst, 0.0)
    p.settle(0.0)
    (est,) = [e for e in p.events(p.client) if isinstance(e, ev.IkeSaEstablished)]
    assert est.spi_r == real.spi_r != bytes(8)


@pytest.mark.parametrize("length", [0, 1, 64, 65])
def test_cookie_of_1_to_64_octets_is_echoed_and_others_dropped(length: int) -> None:
    """RFC 7296 §2.6: a COOKIE is 1..64 octets; the initiator echoes one of 1 or 64 and drops a response with 0 or 65."""
    p = make_peers(cookie_threshold=0)
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    (reply,) = p.gateway.datagrams_to_send(0.0)
    cookie = bytes(range(1, 66))[:length]
    r = replace(parse_message(reply.data), payloads=(NotifyPayload(NotifyType.COOKIE, data=cookie),))
    p.events(p.client)
    p.client.receive_datagram(serialize_message(r), reply.src, reply.dst, 0.0)
    c = p.events(p.client)
    sent = p.client.datagrams_to_send(0.0)
    if length in (0, 65):
        assert [(type(e).__name__, e.reason) for e in c] == [("MessageDropped", f"COOKIE of {length} octets, not 1..64")]
        assert sent == []
    else:
        assert names(c) == ["ExchangeCompleted", "IkeSaInitRetried", "ExchangeStarted"]
        (retry,) = sent
        assert parse_message(retry.data).payloads[0] == NotifyPayload(NotifyType.COOKIE, data=cookie)
