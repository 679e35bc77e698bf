"""IKE fragmentation (RFC 7383) in the sans-IO core: negotiation, SKF sending, reassembly, retransmission."""

from __future__ import annotations

from dataclasses import replace

import pytest
from ikepeers import CLIENT_ID, GATEWAY_ID, Peers, make_peers, names

from ikesim.crypto.auth import make_ca, make_end_entity, make_intermediate
from ikesim.ike import events as ev
from ikesim.ike import fragmentation
from ikesim.ike.config import AuthMethodName, Credentials, IkePolicy
from ikesim.ike.sa import IkeSa
from ikesim.rng import Rng
from ikesim.types import Datagram
from ikesim.wire.codec import parse_message
from ikesim.wire.iana import ExchangeType, NotifyType, PayloadType
from ikesim.wire.payloads import NotifyPayload, SkfPayload, VendorPayload

SMALL = IkePolicy(fragment_size=500)
"""Fragments of at most 500 IP bytes: 472 IKE bytes on IPv4 port 500."""


def _client_sa(p: Peers) -> IkeSa:
    (spi,) = p.client.ike_sa_spis()
    return p.client.sas[spi]


def _gateway_sa(p: Peers) -> IkeSa:
    (spi,) = p.gateway.ike_sa_spis()
    return p.gateway.sas[spi]


def _init_notifies(d: Datagram) -> set[NotifyType]:
    return {n.notify_type for n in parse_message(d.data).get_all(NotifyPayload)}


def _skf(d: Datagram) -> SkfPayload:
    payload = parse_message(d.data).payloads[-1]
    assert isinstance(payload, SkfPayload)
    return payload


def _chain_credentials(length: int) -> tuple[Credentials, Credentials]:
    """ECDSA credentials for both ends: CA -> ``length - 1`` intermediates -> end entity, all sent as CERT."""
    rng = Rng(11, "pki")
    ca_key, ca = make_ca(rng.child("ca"), "test CA")
    out = []
    for side, ident in (("client", CLIENT_ID), ("gateway", GATEWAY_ID)):
        key, cert, intermediates = ca_key, ca, []
        for level in range(1, length):
            key, cert = make_intermediate(rng.child(side, str(level)), key, cert, f"{side} intermediate {level}")
            intermediates.insert(0, cert)
        ee_key, ee = make_end_entity(rng.child(side), key, cert, ident)
        out.append(Credentials(method=AuthMethodName.ECDSA_P256, private_key=ee_key, certificate=ee,
                               trust_anchors=(ca,), intermediates=tuple(intermediates)))
    return out[0], out[1]


def _cert_peers(*, seed: int = 1, chain: int = 4, client_ike: IkePolicy | None = None,
                gateway_ike: IkePolicy | None = None) -> Peers:
    ci, gw = _chain_credentials(chain)
    return make_peers(seed=seed, client_credentials=ci, gateway_credentials=gw, client_ike=client_ike,
                      gateway_ike=gateway_ike)


# ---------------------------------------------------------------------------------------- negotiation


@pytest.mark.parametrize(("client_on", "gateway_on"), [(True, True), (True, False), (False, True), (False, False)])
def test_fragmentation_is_used_only_if_both_ends_announce_it(client_on: bool, gateway_on: bool) -> None:
    """RFC 7383 §2.3: N(IKEV2_FRAGMENTATION_SUPPORTED) in IKE_SA_INIT from each end that enables it; used if both do."""
    p = make_peers(client_ike=IkePolicy(fragmentation=client_on), gateway_ike=IkePolicy(fragmentation=gateway_on))
    p.client.initiate("vpn", 0.0)
    (request,) = p.deliver(p.client, 0.0)
    (response,) = p.deliver(p.gateway, 0.0)
    p.settle(0.0)
    supported = NotifyType.IKEV2_FRAGMENTATION_SUPPORTED
    assert (supported in _init_notifies(request)) is client_on
    assert (supported in _init_notifies(response)) is (client_on and gateway_on)
    assert _client_sa(p).fragmentation is _gateway_sa(p).fragmentation is (client_on and gateway_on)


def test_large_message_goes_whole_without_negotiated_fragmentation() -> None:
    """Without RFC 7383 on the IKE_SA an oversized message is one datagram (the network may IP-fragment it)."""
    p = _cert_peers(client_ike=IkePolicy(fragmentation=False))
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    (auth,) = p.client.datagrams_to_send(0.0)
    assert len(auth.data) > 1500 and parse_message(auth.data).payloads[-1].payload_type == PayloadType.SK
    assert "MessageFragmented" not in names(p.events(p.client))


# ---------------------------------------------------------------------------------------- sending


def test_fragment_count_and_sizes_for_a_message_of_known_size() -> None:
    """RFC 7383 §2.5: 1004 plaintext bytes in fragments of <= 500 IP bytes with AES-GCM: 411 + 411 + 182."""
    p = make_peers(client_ike=SMALL, gateway_ike=SMALL)
    p.establish()
    sa = _client_sa(p)
    inner = [VendorPayload(data=bytes(1000))]  # generic header 4 + 1000 = 1004 plaintext bytes
    datagrams = p.client.seal_datagrams(sa, ExchangeType.INFORMATIONAL, 7, False, inner)
    # IKE header 28 + SKF header 8 + IV 8 + chunk + pad length 1 + ICV 16 <= 500 - 20 (IP) - 8 (UDP) = 472
    assert [len(d) for d in datagrams] == [472, 472, 28 + 8 + 8 + 182 + 1 + 16]
    skfs = [parse_message(d).payloads[-1] for d in datagrams]
    assert [(s.fragment_number, s.total_fragments) for s in skfs] == [(1, 3), (2, 3), (3, 3)]
    assert [s.first_payload for s in skfs] == [PayloadType.VENDOR, PayloadType.NONE, PayloadType.NONE]
    assert all(len(parse_message(d).payloads) == 1 for d in datagrams)
    (event,) = [e for e in p.events(p.client) if isinstance(e, ev.MessageFragmented)]
    assert (event.exchange, event.message_id, event.fragments, event.response) == ("INFORMATIONAL", 7, 3, False)
    assert event.length == 28 + 4 + 8 + 1004 + 1 + 16


def test_a_message_that_fits_is_not_fragmented() -> None:
    """RFC 7383 §2.5: only a message that would exceed fragment_size is split."""
    p = make_peers(client_ike=SMALL, gateway_ike=SMALL)
    p.establish()
    (d,) = p.client.seal_datagrams(_client_sa(p), ExchangeType.INFORMATIONAL, 7, False, [VendorPayload(data=bytes(400))])
    assert len(d) <= 472 and parse_message(d).payloads[-1].payload_type == PayloadType.SK


def test_non_esp_marker_on_port_4500_is_counted() -> None:
    """On port 4500 the 4-byte non-ESP marker is part of the datagram, so fragments are 4 bytes shorter."""
    p = make_peers(client_ike=SMALL, gateway_ike=SMALL)
    p.establish()
    sa = _client_sa(p)
    sa.local, sa.peer = replace(sa.local, port=4500), replace(sa.peer, port=4500)
    datagrams = p.client.seal_datagrams(sa, ExchangeType.INFORMATIONAL, 7, False, [VendorPayload(data=bytes(1000))])
    assert max(len(d) for d in datagrams) == 468


def test_ike_auth_request_and_response_with_a_long_chain_are_fragmented() -> None:
    """A CA -> 3 intermediates -> end entity chain makes both IKE_AUTH messages > 1280 bytes: both fragmented, both reassembled."""
    p = _cert_peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    request = p.deliver(p.client, 0.0)
    response = p.deliver(p.gateway, 0.0)
    assert len(request) == 2 and len(response) == 2
    assert all(len(d.data) + 28 <= 1280 for d in request + response)
    assert [(_skf(d).fragment_number, _skf(d).total_fragments) for d in response] == [(1, 2), (2, 2)]
    assert p.client.ike_sa_spis() and p.client.child_sa_spis() and p.gateway.child_sa_spis()
    client, gateway = names(p.events(p.client)), names(p.events(p.gateway))
    assert client.count("MessageFragmented") == 1 and client.count("MessageReassembled") == 1
    assert gateway.count("MessageFragmented") == 1 and gateway.count("MessageReassembled") == 1
    assert "MessageDropped" not in client + gateway


def test_same_seed_gives_the_same_fragments() -> None:
    """Fragment IVs come from the injected Rng: the same seed sends the same bytes."""
    def run(seed: int) -> list[bytes]:
        p = _cert_peers(seed=seed)
        p.client.initiate("vpn", 0.0)
        sent = []
        for _ in range(3):
            sent += [d.data for d in p.deliver(p.client, 0.0)] + [d.data for d in p.deliver(p.gateway, 0.0)]
        return sent

    first = run(5)
    assert len(first) == 6 and first == run(5) and first != run(6)


# ---------------------------------------------------------------------------------------- receiving


def _big_request(p: Peers) -> list[Datagram]:
    """The client's INFORMATIONAL request with 1004 plaintext bytes: 3 fragments."""
    p.client.enqueue(_client_sa(p), _vendor_work(), 1.0)
    out = p.client.datagrams_to_send(1.0)
    assert len(out) == 3
    return out


def _vendor_work():  # noqa: ANN202
    from ikesim.ike.exchange import Work

    return Work("vendor")


@pytest.fixture
def small() -> Peers:
    """Peers with 500-byte fragments, established, and a ``vendor`` request kind: INFORMATIONAL with a 1000-byte Vendor ID."""
    p = make_peers(client_ike=SMALL, gateway_ike=SMALL)
    p.establish()

    def start_vendor(core, sa, work, now):  # noqa: ANN001, ANN202
        core.request(sa, ExchangeType.INFORMATIONAL, "informational", [VendorPayload(data=bytes(1000))], now, work=work)
        return True

    p.client.starters["vendor"] = start_vendor
    return p


def _receive(p: Peers, datagrams: list[Datagram], now: float = 1.0) -> None:
    for d in datagrams:
        p.gateway.receive_datagram(d.data, d.src, d.dst, now)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (2, 1, 0)])
def test_reassembly_in_any_order(small: Peers, order: tuple[int, int, int]) -> None:
    """RFC 7383 §2.6: fragments may arrive in any order; the message is processed once all are in."""
    frags = _big_request(small)
    small.events(small.gateway)
    _receive(small, [frags[i] for i in order][:2])
    assert small.gateway.datagrams_to_send(1.0) == []
    _receive(small, [frags[order[2]]])
    assert len(small.gateway.datagrams_to_send(1.0)) == 1  # the (empty) INFORMATIONAL response
    events = small.events(small.gateway)
    (done,) = [e for e in events if isinstance(e, ev.MessageReassembled)]
    assert (done.exchange, done.fragments, done.response) == ("INFORMATIONAL", 3, False)
    assert "MessageDropped" not in names(events)


def _drop_reasons(events: list[ev.IkeEvent]) -> list[str]:
    return [e.reason for e in events if isinstance(e, ev.MessageDropped)]


def test_duplicate_fragments_are_ignored_and_recorded(small: Peers) -> None:
    """RFC 7383 §2.6: a fragment already held is ignored (recorded as a drop), and the message is reassembled once."""
    f1, f2, f3 = _big_request(small)
    small.events(small.gateway)
    _receive(small, [f1, f1, f2, f2, f3])
    events = small.events(small.gateway)
    assert names(events).count("MessageReassembled") == 1
    assert _drop_reasons(events) == ["duplicate SKF fragment 1 of 3 (RFC 7383 §2.6)",
                                     "duplicate SKF fragment 2 of 3 (RFC 7383 §2.6)"]
    assert len(small.gateway.datagrams_to_send(1.0)) == 1


def test_fragment_with_fewer_total_fragments_than_seen_is_ignored(small: Peers) -> None:
    """RFC 7383 §2.6: a fragment of the same message with a lower Total Fragments than already seen is ignored."""
    f1, _f2, _f3 = _big_request(small)
    small.events(small.gateway)
    _receive(small, [f1])
    sa = _client_sa(small)
    head = small.client.header(sa, ExchangeType.INFORMATIONAL, parse_message(f1.data).message_id, False)
    two = fragmentation.protect(small.client, sa, head, [VendorPayload(data=bytes(600))])
    assert len(two) == 2
    for data in two:
        small.gateway.receive_datagram(data, f1.src, f1.dst, 1.0)
    events = small.events(small.gateway)
    assert _drop_reasons(events) == ["SKF fragment of 2 after one of 3 (RFC 7383 §2.6)"] * 2
    assert small.gateway.datagrams_to_send(1.0) == []


def test_rekeyed_ike_sa_keeps_fragmentation(small: Peers) -> None:
    """RFC 7383 §2.3: fragmentation is negotiated in IKE_SA_INIT; the IKE_SA's rekeyed successor keeps it
    (strongSwan inherits EXT_IKE_FRAGMENTATION), so large messages are still fragmented after an IKE rekey."""
    small.gateway.rekey_ike_sa(small.gateway.ike_sa_spis()[0], 2.0)
    small.settle(2.0)
    new = _client_sa(small)
    assert new.rekey_of is not None and new.fragmentation
    small.client.enqueue(new, _vendor_work(), 3.0)
    assert len(small.client.datagrams_to_send(3.0)) == 3


def _tamper(d: Datagram, offset: int = -20) -> Datagram:
    data = bytearray(d.data)
    data[offset] ^= 0x01
    return Datagram(bytes(data), d.src, d.dst)


def test_tampered_fragment_is_dropped_and_the_retransmission_completes(small: Peers) -> None:
    """RFC 7383 §2.6: each fragment's ICV is checked on arrival; a bad one is dropped with a reason, and the
    request's retransmission (every fragment, byte for byte) completes the set."""
    f1, f2, f3 = _big_request(small)
    small.events(small.gateway)
    _receive(small, [f1, _tamper(f2), f3])
    dropped = [e for e in small.events(small.gateway) if isinstance(e, ev.MessageDropped)]
    assert [e.reason for e in dropped] == ["integrity check failed"]
    assert small.gateway.datagrams_to_send(1.0) == []
    small.client.handle_timer(small.client.get_timer())  # RFC 7296 §2.1 retransmission
    again = small.client.datagrams_to_send(5.0)
    assert [d.data for d in again] == [f1.data, f2.data, f3.data]
    assert names(small.events(small.client)).count("Retransmitted") == 1
    _receive(small, again, 5.0)
    assert "MessageReassembled" in names(small.events(small.gateway))
    small.deliver(small.gateway, 5.0)
    completed = [e for e in small.events(small.client) if isinstance(e, ev.ExchangeCompleted)]
    assert [e.outcome for e in completed] == ["ok"]


@pytest.mark.parametrize(("offset", "value", "reason"), [
    (32, b"\x00\x00", "malformed: SKF fragment 0 of 3"),
    (34, b"\x00\x01", "malformed: SKF fragment 2 of 1"),
    (34, b"\x01\x00", "malformed: SKF with 256 fragments (limit 64)"),
])
def test_malformed_fragment_numbers_are_dropped_with_a_reason(small: Peers, offset: int, value: bytes, reason: str) -> None:
    """Fragment Number 0, above Total Fragments, or too many fragments: dropped with a reason, never an exception."""
    _f1, f2, _f3 = _big_request(small)
    small.events(small.gateway)
    bad = f2.data[:offset] + value + f2.data[offset + 2:]
    small.gateway.receive_datagram(bad, f2.src, f2.dst, 1.0)
    assert [e.reason for e in small.events(small.gateway) if isinstance(e, ev.MessageDropped)] == [reason]


def test_truncated_skf_is_dropped(small: Peers) -> None:
    """An SKF payload too short for its numbers or its IV and ICV is malformed, not an exception."""
    f1, *_ = _big_request(small)
    small.events(small.gateway)
    data = bytearray(f1.data[:40])
    data[24:28] = len(data).to_bytes(4, "big")
    data[30:32] = (len(data) - 28).to_bytes(2, "big")
    small.gateway.receive_datagram(bytes(data), f1.src, f1.dst, 1.0)
    (dropped,) = [e for e in small.events(small.gateway) if isinstance(e, ev.MessageDropped)]
    assert dropped.reason.startswith("malformed")


def test_skf_without_negotiated_fragmentation_is_dropped(small: Peers) -> None:
    """An SKF fragment on an IKE_SA that did not negotiate RFC 7383 is dropped with a reason."""
    frags = _big_request(small)
    _gateway_sa(small).fragmentation = False
    small.events(small.gateway)
    _receive(small, frags[:1])
    (dropped,) = [e for e in small.events(small.gateway) if isinstance(e, ev.MessageDropped)]
    assert dropped.reason == "malformed: SKF fragment on an IKE_SA without negotiated fragmentation"


def test_incomplete_set_is_discarded_after_the_reassembly_timeout(small: Peers) -> None:
    """A set older than REASSEMBLY_TIMEOUT is discarded when a fragment arrives; the later fragments start anew."""
    f1, f2, f3 = _big_request(small)
    _receive(small, [f1], 1.0)
    later = 1.0 + fragmentation.REASSEMBLY_TIMEOUT + 1.0
    _receive(small, [f2, f3], later)
    assert small.gateway.datagrams_to_send(later) == []
    _receive(small, [f1], later)
    assert len(small.gateway.datagrams_to_send(later)) == 1


def test_retransmitted_request_gets_the_cached_response_once_on_fragment_1(small: Peers) -> None:
    """RFC 7383 §2.6.1: a retransmitted fragmented request triggers the cached response only on fragment 1."""
    frags = _big_request(small)
    _receive(small, frags)
    first = small.gateway.datagrams_to_send(1.0)  # the response is lost
    small.events(small.gateway)
    _receive(small, [frags[1], frags[2]], 5.0)
    assert small.gateway.datagrams_to_send(5.0) == []
    _receive(small, [frags[0]], 5.0)
    assert [d.data for d in small.gateway.datagrams_to_send(5.0)] == [d.data for d in first]
    events = small.events(small.gateway)
    assert "MessageReassembled" not in names(events)
    assert _drop_reasons(events) == ["non-first SKF fragment of a retransmitted request (RFC 7383 §2.6.1)"] * 2


def test_fragmented_response_is_cached_and_replayed_whole() -> None:
    """A fragmented IKE_AUTH response is replayed as all its fragments when the request is retransmitted."""
    p = _cert_peers()
    p.client.initiate("vpn", 0.0)
    p.deliver(p.client, 0.0)
    p.deliver(p.gateway, 0.0)
    request = p.deliver(p.client, 0.0)
    response = p.gateway.datagrams_to_send(0.0)  # lost
    assert len(response) == 2
    p.client.handle_timer(p.client.get_timer())
    again = p.client.datagrams_to_send(4.0)
    assert [d.data for d in again] == [d.data for d in request]
    for d in again:
        p.gateway.receive_datagram(d.data, d.src, d.dst, 4.0)
    assert [d.data for d in p.gateway.datagrams_to_send(4.0)] == [d.data for d in response]


# ---------------------------------------------------------------------------------------- certificates


def test_chain_through_intermediates_verifies_and_a_missing_intermediate_fails() -> None:
    """The peer checks the end entity up to its trust anchor through the intermediates it sent (RFC 7296 §3.6)."""
    from ikesim.crypto.auth import verify_certificate
    from ikesim.errors import AuthenticationFailed

    ci, _gw = _chain_credentials(3)
    assert verify_certificate(ci.certificate, ci.trust_anchors, CLIENT_ID, ci.intermediates) is not None
    with pytest.raises(AuthenticationFailed):
        verify_certificate(ci.certificate, ci.trust_anchors, CLIENT_ID, ci.intermediates[:1])
    with pytest.raises(AuthenticationFailed):
        verify_certificate(ci.certificate, ci.trust_anchors, CLIENT_ID)


def test_a_message_needing_more_than_64_fragments_goes_in_64_larger_ones() -> None:
    """A peer-provoked answer too big for 64 fragments of fragment_size (64 is the most a peer reassembles,
    RFC 7383 §2.6) is sent in 64 larger fragments instead of raising; the peer reassembles it."""
    p = make_peers(client_ike=SMALL, gateway_ike=SMALL)
    p.establish()
    inner = [VendorPayload(data=bytes(40_000))]  # 40,004 plaintext bytes: 98 fragments of 411
    datagrams = p.client.seal_datagrams(_client_sa(p), ExchangeType.INFORMATIONAL, 2, False, inner)
    skfs = [_skf(Datagram(d, p.client.config.addresses[0], p.gateway.config.addresses[0])) for d in datagrams]
    assert len(datagrams) == 64 and {s.total_fragments for s in skfs} == {64}
    for d in datagrams:
        p.gateway.receive_datagram(d, p.client.config.addresses[0], p.gateway.config.addresses[0], 1.0)
    done = [e for e in p.events(p.gateway) if isinstance(e, ev.MessageReassembled)]
    assert [(e.message_id, e.fragments) for e in done] == [(2, 64)]
