"""The RFC 7296 codec: real strongSwan messages, round trips, and the fuzz rule."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vectors import ike_messages, require_vectors

from ikesim.errors import MalformedMessage
from ikesim.wire.codec import (
    parse_message,
    parse_payloads,
    protect_message,
    serialize_message,
    serialize_payloads,
    unprotect_message,
)
from ikesim.wire.iana import (
    AuthMethod,
    CertEncoding,
    CfgType,
    EncrId,
    ExchangeType,
    HeaderFlag,
    IdType,
    KeGroup,
    NotifyType,
    PrfId,
    ProtocolId,
    TransformType,
    TsType,
)
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    AuthPayload,
    CertPayload,
    CertReqPayload,
    CpAttribute,
    CpPayload,
    DeletePayload,
    EapPayload,
    IdiPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Proposal,
    SaPayload,
    SkPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    UnknownPayload,
    VendorPayload,
)

CAPTURES = ["ike_gcm_cbc_rekey.pcap", "childfail/ike_port500_childfail.pcap", "scapy_sa_init_vs_strongswan.pcap"]


@pytest.mark.parametrize("capture", CAPTURES)
def test_strongswan_messages_round_trip(capture: str) -> None:
    """Every captured message parses and re-serializes to the identical bytes."""
    msgs = ike_messages(require_vectors() / capture)
    assert msgs
    for raw in msgs:
        assert serialize_message(parse_message(raw)) == raw


def test_first_strongswan_request_decodes_exactly() -> None:
    """The first IKE_SA_INIT request carries the payloads charon logged, with the right transforms."""
    raw = ike_messages(require_vectors() / "ike_gcm_cbc_rekey.pcap")[0]
    m = parse_message(raw)
    assert (m.spi_i.hex(), m.spi_r, m.exchange_type, m.message_id) == (
        "293e78b0f2fe17a2", bytes(8), ExchangeType.IKE_SA_INIT, 0)
    assert m.flags == HeaderFlag.INITIATOR and m.is_request
    notifies = [p.notify_type for p in m.payloads if isinstance(p, NotifyPayload)]
    assert notifies == [NotifyType.NAT_DETECTION_SOURCE_IP, NotifyType.NAT_DETECTION_DESTINATION_IP,
                        NotifyType.IKEV2_FRAGMENTATION_SUPPORTED, NotifyType.SIGNATURE_HASH_ALGORITHMS,
                        NotifyType.REDIRECT_SUPPORTED]
    (prop,) = m.get(SaPayload).proposals
    assert [(t.transform_type, t.transform_id, t.key_length) for t in prop.transforms] == [
        (TransformType.ENCR, EncrId.ENCR_AES_GCM_16, 128), (TransformType.PRF, PrfId.PRF_HMAC_SHA2_256, None),
        (TransformType.KE, KeGroup.CURVE25519, None)]
    assert m.get(KePayload).group == KeGroup.CURVE25519 and len(m.get(KePayload).data) == 32
    assert len(m.get(NoncePayload).data) == 32


def test_exchange_mix_of_the_capture() -> None:
    """The capture holds 2 IKE_SA_INIT, 2 IKE_AUTH, 2 CREATE_CHILD_SA and 5 INFORMATIONAL exchanges."""
    msgs = [parse_message(r) for r in ike_messages(require_vectors() / "ike_gcm_cbc_rekey.pcap")]
    counts: dict[str, int] = {}
    for m in msgs:
        if m.is_request:
            counts[m.exchange_type.name] = counts.get(m.exchange_type.name, 0) + 1
    assert counts == {"IKE_SA_INIT": 2, "IKE_AUTH": 2, "CREATE_CHILD_SA": 2, "INFORMATIONAL": 4}


# --- hypothesis strategies -------------------------------------------------------------

b = st.binary(max_size=40)
crit = st.booleans()
transform = st.builds(
    Transform, st.sampled_from(list(TransformType)), st.integers(0, 65535),
    st.lists(st.one_of(
        st.builds(TransformAttribute, st.integers(0, 0x7FFF), st.integers(0, 65535)),
        st.builds(TransformAttribute, st.integers(0, 0x7FFF), st.binary(max_size=8)),
    ), max_size=2).map(tuple),
)
proposal = st.builds(Proposal, st.integers(0, 255), st.sampled_from(list(ProtocolId)),
                     st.sampled_from([b"", b"\x01\x02\x03\x04", bytes(8)]),
                     st.lists(transform, min_size=1, max_size=4).map(tuple))
selector = st.one_of(
    st.builds(TrafficSelector, st.just(TsType.TS_IPV4_ADDR_RANGE), st.integers(0, 255), st.integers(0, 65535),
              st.integers(0, 65535), st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4)),
    st.builds(TrafficSelector, st.just(TsType.TS_IPV6_ADDR_RANGE), st.integers(0, 255), st.integers(0, 65535),
              st.integers(0, 65535), st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16)),
)
payload = st.one_of(
    st.builds(SaPayload, proposals=st.lists(proposal, min_size=1, max_size=3).map(tuple), critical=crit),
    st.builds(KePayload, group=st.integers(0, 65535), data=b, critical=crit),
    st.builds(IdiPayload, id_type=st.sampled_from(list(IdType)), data=b, critical=crit),
    st.builds(IdrPayload, id_type=st.sampled_from(list(IdType)), data=b, critical=crit),
    st.builds(CertPayload, encoding=st.sampled_from(list(CertEncoding)), data=b, critical=crit),
    st.builds(CertReqPayload, encoding=st.sampled_from(list(CertEncoding)), data=b, critical=crit),
    st.builds(AuthPayload, method=st.sampled_from(list(AuthMethod)), data=b, critical=crit),
    st.builds(NoncePayload, data=b, critical=crit),
    st.builds(NotifyPayload, notify_type=st.sampled_from(list(NotifyType)), protocol=st.sampled_from(list(ProtocolId)),
              spi=st.sampled_from([b"", b"abcd", bytes(8)]), data=b, critical=crit),
    st.builds(DeletePayload, protocol=st.just(ProtocolId.ESP), spi_size=st.just(4),
              spis=st.lists(st.binary(min_size=4, max_size=4), max_size=3).map(tuple), critical=crit),
    st.builds(DeletePayload, protocol=st.just(ProtocolId.IKE), spi_size=st.just(0), spis=st.just(()), critical=crit),
    st.builds(VendorPayload, data=b, critical=crit),
    st.builds(TsiPayload, selectors=st.lists(selector, max_size=3).map(tuple), critical=crit),
    st.builds(TsrPayload, selectors=st.lists(selector, max_size=3).map(tuple), critical=crit),
    st.builds(CpPayload, cfg_type=st.sampled_from(list(CfgType)),
              attributes=st.lists(st.builds(CpAttribute, st.integers(0, 0x7FFF), b), max_size=3).map(tuple),
              critical=crit),
    st.builds(EapPayload, data=b, critical=crit),
    st.builds(UnknownPayload, type_number=st.integers(1, 32), data=b, critical=crit),
)
message = st.builds(
    Message, spi_i=st.binary(min_size=8, max_size=8), spi_r=st.binary(min_size=8, max_size=8),
    exchange_type=st.sampled_from(list(ExchangeType)),
    flags=st.sampled_from([HeaderFlag.NONE, HeaderFlag.INITIATOR, HeaderFlag.RESPONSE,
                           HeaderFlag.INITIATOR | HeaderFlag.RESPONSE]),
    message_id=st.integers(0, 2**32 - 1), payloads=st.lists(payload, max_size=6).map(tuple),
)


@settings(max_examples=300, deadline=None)
@given(message)
def test_serialize_then_parse_is_identity(m: Message) -> None:
    """parse(serialize(m)) == m for every representable message."""
    assert parse_message(serialize_message(m)) == m


@settings(max_examples=200, deadline=None)
@given(st.lists(payload, max_size=6))
def test_payload_chain_round_trip(payloads: list) -> None:
    """A bare payload chain round-trips (the SK contents)."""
    first, data = serialize_payloads(payloads)
    assert parse_payloads(first, data) == tuple(payloads)


def _parse_or_malformed(data: bytes) -> None:
    try:
        parse_message(data)
    except MalformedMessage:
        pass


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_malformed(data: bytes) -> None:
    """Any bytes either parse or raise MalformedMessage, never another exception (h11's fuzz rule)."""
    _parse_or_malformed(data)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mutated_real_messages_parse_or_raise_malformed(data: st.DataObject) -> None:
    """Bit flips, truncations and length edits of real messages parse or raise MalformedMessage only."""
    msgs = ike_messages(require_vectors() / "ike_gcm_cbc_rekey.pcap")
    raw = bytearray(data.draw(st.sampled_from(msgs)))
    for _ in range(data.draw(st.integers(1, 4))):
        kind = data.draw(st.sampled_from(["flip", "truncate", "byte"]))
        if kind == "truncate":
            raw = raw[: data.draw(st.integers(0, len(raw)))]
        elif raw:
            i = data.draw(st.integers(0, len(raw) - 1))
            raw[i] = (raw[i] ^ (1 << data.draw(st.integers(0, 7)))) if kind == "flip" else data.draw(st.integers(0, 255))
    _parse_or_malformed(bytes(raw))
    # keep the header length consistent so the payload parsers themselves are exercised
    if len(raw) >= 28:
        raw[24:28] = len(raw).to_bytes(4, "big")
        _parse_or_malformed(bytes(raw))


class _XorProtector:
    """A toy Protector: XOR 'cipher', 16-byte ICV = the last 16 bytes of the AAD, to check framing."""

    def __init__(self) -> None:
        self.aads: list[bytes] = []

    def sealed_length(self, n: int) -> int:
        return n + 16

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        self.aads.append(aad)
        return bytes(x ^ 0x5A for x in plaintext) + aad[-16:]

    def open(self, aad: bytes, body: bytes) -> bytes:
        if body[-16:] != aad[-16:]:
            from ikesim.errors import IntegrityCheckFailed
            raise IntegrityCheckFailed("toy ICV")
        return bytes(x ^ 0x5A for x in body[:-16])


def test_protect_unprotect_frames_sk_payload() -> None:
    """protect_message fills the header length and SK header before sealing; unprotect inverts it."""
    p = _XorProtector()
    m = Message(spi_i=b"i" * 8, spi_r=b"r" * 8, exchange_type=ExchangeType.INFORMATIONAL,
                flags=HeaderFlag.INITIATOR, message_id=7)
    inner = (DeletePayload(protocol=ProtocolId.ESP, spi_size=4, spis=(b"\x01\x02\x03\x04",)), NoncePayload(data=b"n" * 16))
    raw = protect_message(m, inner, p)
    assert int.from_bytes(raw[24:28], "big") == len(raw)
    (aad,) = p.aads
    assert raw.startswith(aad) and len(aad) == 28 + 4
    assert raw[16] == 46 and aad[28] == 42  # header Next Payload = SK; SK Next Payload = Delete
    out = unprotect_message(raw, p)
    assert out.payloads == inner and out.encrypted and out.message_id == 7
    outer = parse_message(raw)
    assert isinstance(outer.payloads[0], SkPayload) and outer.payloads[0].first_payload == 42
