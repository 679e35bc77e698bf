"""The RFC 7296 §3 codec on hand-assembled bytes: exact encodings, rejected layouts, serializer limits."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from wire_strategies import chains, messages

from ikesim.errors import MalformedMessage
from ikesim.wire.codec import parse_message, parse_payloads, peek_header, serialize_message, serialize_payloads
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
    PayloadType,
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
    IdPayload,
    IdrPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    SkfPayload,
    SkPayload,
    TrafficSelector,
    Transform,
    TransformAttribute,
    TsiPayload,
    TsrPayload,
    UnknownPayload,
    VendorPayload,
)

SPI_I = bytes.fromhex("0102030405060708")
SPI_R = bytes.fromhex("1112131415161718")


def h(text: str) -> bytes:
    """Hex with spaces and newlines allowed."""
    return bytes.fromhex(text)


def header(first: int, length: int, *, version: int = 0x20, exchange: int = 34, flags: int = 0x08,
           message_id: int = 0) -> bytes:
    """An RFC 7296 §3.1 header, assembled field by field."""
    return SPI_I + SPI_R + bytes([first, version, exchange, flags]) + message_id.to_bytes(4, "big") + length.to_bytes(4, "big")


def wrap(first: int, chain: bytes, **kw: int) -> bytes:
    """A whole message: header (Length filled in) plus a raw payload chain."""
    return header(first, 28 + len(chain), **kw) + chain


def generic(next_type: int, body: bytes, flags: int = 0) -> bytes:
    """An RFC 7296 §3.2 generic payload header followed by *body*."""
    return bytes([next_type, flags]) + (4 + len(body)).to_bytes(2, "big") + body


# --- exact encodings ----------------------------------------------------------------------------

SA_IKE_BODY = h("""
    00 00 0024 01 01 00 03
       03 00 000c 01 00 0014 800e 0080
       03 00 0008 02 00 0005
       00 00 0008 04 00 001f
""")
SA_IKE = SaPayload(proposals=(Proposal(1, ProtocolId.IKE, b"", (
    Transform(TransformType.ENCR, EncrId.ENCR_AES_GCM_16, (TransformAttribute(14, 128),)),
    Transform(TransformType.PRF, PrfId.PRF_HMAC_SHA2_256),
    Transform(TransformType.KE, KeGroup.CURVE25519),
)),))

SA_ESP_BODY = h("""
    02 00 001a 01 03 04 01 aabbccdd
       00 00 000e 05 00 0000 0001 0002 6162
    00 00 0014 02 03 04 01 11223344
       00 00 0008 01 00 000c
""")
SA_ESP = SaPayload(proposals=(
    Proposal(1, ProtocolId.ESP, h("aabbccdd"), (Transform(TransformType.ESN, 0, (TransformAttribute(1, b"ab"),)),)),
    Proposal(2, ProtocolId.ESP, h("11223344"), (Transform(TransformType.ENCR, EncrId.ENCR_AES_CBC),)),
))

V6_LOOPBACK = bytes(15) + b"\x01"

KNOWN_ANSWERS: list[tuple[str, Payload, bytes]] = [
    ("SA, IKE proposal with a TV key length", SA_IKE, SA_IKE_BODY),
    ("SA, two ESP proposals, TLV attribute", SA_ESP, SA_ESP_BODY),
    ("KE", KePayload(group=31, data=h("00010203")), h("001f 0000 00010203")),
    ("IDi", IdiPayload(id_type=IdType.ID_RFC822_ADDR, data=b"init@sim.test"), h("03 000000") + b"init@sim.test"),
    ("IDr", IdrPayload(id_type=IdType.ID_FQDN, data=b"gw"), h("02 000000 6777")),
    ("CERT", CertPayload(encoding=CertEncoding.X509_CERTIFICATE_SIGNATURE, data=b"\x30\x82"), h("04 3082")),
    ("CERTREQ", CertReqPayload(encoding=CertEncoding.X509_CERTIFICATE_SIGNATURE, data=bytes(20)), h("04") + bytes(20)),
    ("AUTH", AuthPayload(method=AuthMethod.SHARED_KEY_MIC, data=h("abcd")), h("02 000000 abcd")),
    ("Nonce", NoncePayload(data=bytes(range(16))), bytes(range(16))),
    ("Notify with SPI", NotifyPayload(notify_type=NotifyType.REKEY_SA, protocol=ProtocolId.ESP, spi=h("c0ffee01")),
     h("03 04 4009 c0ffee01")),
    ("Notify with data", NotifyPayload(notify_type=NotifyType.INVALID_KE_PAYLOAD, data=h("000e")), h("00 00 0011 000e")),
    ("Delete ESP", DeletePayload(protocol=ProtocolId.ESP, spi_size=4, spis=(h("aabbccdd"), h("11223344"))),
     h("03 04 0002 aabbccdd 11223344")),
    ("Delete IKE", DeletePayload(protocol=ProtocolId.IKE, spi_size=0, spis=()), h("01 00 0000")),
    ("Vendor", VendorPayload(data=b"strongSwan"), b"strongSwan"),
    ("TSi v4 and v6", TsiPayload(selectors=(
        TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 6, 0, 65535, h("0a000000"), h("0a0000ff")),
        TrafficSelector(TsType.TS_IPV6_ADDR_RANGE, 0, 500, 500, V6_LOOPBACK, V6_LOOPBACK),
    )), h("02 000000 07 06 0010 0000 ffff 0a000000 0a0000ff 08 00 0028 01f4 01f4") + V6_LOOPBACK * 2),
    ("TSr empty", TsrPayload(selectors=()), h("00 000000")),
    ("CP", CpPayload(cfg_type=CfgType.CFG_REQUEST, attributes=(CpAttribute(1), CpAttribute(3, h("08080808")))),
     h("01 000000 0001 0000 0003 0004 08080808")),
    ("EAP", EapPayload(data=h("01 02 0005 01")), h("01 02 0005 01")),
]


@pytest.mark.parametrize(("payload", "body"), [(p, b) for _, p, b in KNOWN_ANSWERS],
                         ids=[name for name, _, _ in KNOWN_ANSWERS])
def test_payload_body_encodes_exactly_and_parses_back(payload: Payload, body: bytes) -> None:
    """Each payload serializes to its RFC 7296 §3 layout (generic header + body) and parses back equal."""
    first, chain = serialize_payloads([payload])
    assert first == payload.payload_type
    assert chain == generic(0, body)
    assert parse_payloads(first, chain) == (payload,)


def test_header_encodes_exactly() -> None:
    """RFC 7296 §3.1: SPIs, Next Payload, version 2.0, exchange, flags, message ID, Length."""
    m = Message(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, HeaderFlag.INITIATOR | HeaderFlag.RESPONSE, 0x01020304)
    assert serialize_message(m) == SPI_I + SPI_R + h("00 20 25 28 01020304 0000001c")
    assert parse_message(serialize_message(m)) == m


def test_chain_links_next_payload_fields() -> None:
    """RFC 7296 §3.2: each generic header names the type of the payload after it; the last says 0."""
    payloads = [SA_IKE, KePayload(group=31, data=b"k"), NoncePayload(data=b"n")]
    first, chain = serialize_payloads(payloads)
    assert first == PayloadType.SA
    assert chain == generic(34, SA_IKE_BODY) + generic(40, h("001f 0000 6b")) + generic(0, b"n")
    raw = wrap(first, chain)
    assert serialize_message(parse_message(raw)) == raw
    assert parse_message(raw).payloads == tuple(payloads)


def test_empty_message_and_empty_chain() -> None:
    """A header with Next Payload 0 and nothing after it is a message without payloads."""
    assert parse_message(header(0, 28)).payloads == ()
    assert serialize_payloads([]) == (PayloadType.NONE, b"")
    assert parse_payloads(0, b"") == ()


def test_critical_bit_is_kept_and_reserved_bits_are_ignored() -> None:
    """RFC 7296 §3.2: C is the top bit; the 7 RESERVED bits are ignored on receipt and sent as zero."""
    (p,) = parse_payloads(PayloadType.VENDOR, generic(0, b"v", flags=0x80))
    assert p == VendorPayload(data=b"v", critical=True)
    (q,) = parse_payloads(PayloadType.VENDOR, generic(0, b"v", flags=0x7F))
    assert q == VendorPayload(data=b"v", critical=False)
    assert serialize_payloads([q])[1] == generic(0, b"v")


def test_reserved_fields_inside_payloads_are_ignored() -> None:
    """RESERVED octets in KE, ID, AUTH, transforms and the TS header do not change the parsed value."""
    assert parse_payloads(PayloadType.KE, generic(0, h("001f ffff 00"))) == (KePayload(group=31, data=b"\x00"),)
    assert parse_payloads(PayloadType.IDi, generic(0, h("02 ffffff 61"))) == (IdiPayload(id_type=IdType.ID_FQDN, data=b"a"),)
    assert parse_payloads(PayloadType.AUTH, generic(0, h("0e 010203"))) == (AuthPayload(method=AuthMethod.DIGITAL_SIGNATURE),)
    sa = h("00 ff 0010 01 01 00 01  00 ff 0008 02 ff 0005")
    assert parse_payloads(PayloadType.SA, generic(0, sa)) == (
        SaPayload(proposals=(Proposal(1, ProtocolId.IKE, b"", (Transform(TransformType.PRF, 5),)),)),)
    assert parse_payloads(PayloadType.TSi, generic(0, h("00 ffffff"))) == (TsiPayload(),)


def test_cp_attribute_r_bit_is_ignored() -> None:
    """RFC 7296 §3.15.1: the R bit of a configuration attribute type is reserved."""
    (cp,) = parse_payloads(PayloadType.CP, generic(0, h("02 000000 8001 0004 0a000001")))
    assert cp == CpPayload(cfg_type=CfgType.CFG_REPLY, attributes=(CpAttribute(1, h("0a000001")),))


def test_header_flags_keep_only_defined_bits_and_version_nibbles() -> None:
    """RFC 7296 §3.1: only I, V and R are defined; version is two nibbles and is the caller's to judge."""
    m = parse_message(header(0, 28, flags=0x08 | 0x01 | 0x40 | 0x80, version=0x21))
    assert m.flags == HeaderFlag.INITIATOR and type(m.flags) is HeaderFlag
    assert (m.major_version, m.minor_version) == (2, 1)
    assert parse_message(header(0, 28, version=0x10)).major_version == 1


def test_unknown_numbers_parse_to_tolerant_enum_members() -> None:
    """Unknown exchange, notify and transform numbers parse (UNKNOWN_<n>) and re-serialize unchanged."""
    raw = wrap(PayloadType.NOTIFY, generic(0, h("00 00 7777")), exchange=200)
    m = parse_message(raw)
    assert m.exchange_type == 200 and m.exchange_type.name == "UNKNOWN_200"
    (n,) = m.payloads
    assert isinstance(n, NotifyPayload) and n.notify_type == 0x7777 and n.notify_type.name == "UNKNOWN_30583"
    assert serialize_message(m) == raw


def test_unknown_payload_type_is_kept_raw() -> None:
    """RFC 7296 §2.5: an unknown type becomes UnknownPayload with its critical bit, and round-trips."""
    raw = wrap(99, generic(PayloadType.NONCE, b"opaque", flags=0x80) + generic(0, b"n" * 16))
    m = parse_message(raw)
    assert m.payloads == (UnknownPayload(type_number=99, data=b"opaque", critical=True), NoncePayload(data=b"n" * 16))
    assert m.payloads[0].type_value == 99
    assert serialize_message(m) == raw


def test_sk_payload_keeps_first_inner_type_and_raw_body() -> None:
    """RFC 7296 §3.14: SK's Next Payload is the first inner payload; its body stays as on the wire."""
    raw = wrap(PayloadType.SK, generic(PayloadType.IDi, b"iv-ciphertext-icv"))
    m = parse_message(raw)
    assert m.payloads == (SkPayload(first_payload=PayloadType.IDi, data=b"iv-ciphertext-icv"),)
    assert not m.encrypted
    assert serialize_message(m) == raw


def test_skf_payload_encodes_fragment_numbers() -> None:
    """RFC 7383 §2.5: SKF body is Fragment Number, Total Fragments, then IV/ciphertext/ICV."""
    skf = SkfPayload(first_payload=PayloadType.IDi, fragment_number=1, total_fragments=3, data=b"xyz")
    first, chain = serialize_payloads([skf])
    assert (first, chain) == (PayloadType.SKF, generic(PayloadType.IDi, h("0001 0003 78797a")))
    assert parse_payloads(first, chain) == (skf,)


def test_delete_with_zero_spi_size_and_a_count() -> None:
    """RFC 7296 §3.11: an SPI size of 0 with a count yields that many empty SPIs (and round-trips)."""
    (d,) = parse_payloads(PayloadType.DELETE, generic(0, h("01 00 0002")))
    assert d == DeletePayload(protocol=ProtocolId.IKE, spi_size=0, spis=(b"", b""))
    assert serialize_payloads([d])[1] == generic(0, h("01 00 0002"))


def test_parse_accepts_bytearray_and_memoryview() -> None:
    """Any bytes-like input parses, and the payload fields come out as immutable bytes."""
    raw = wrap(PayloadType.NONCE, generic(0, b"n" * 16))
    for data in (bytearray(raw), memoryview(raw)):
        m = parse_message(data)  # type: ignore[arg-type]
        assert type(m.spi_i) is bytes and type(m.payloads[0].data) is bytes  # type: ignore[attr-defined]
        assert m == parse_message(raw)


def test_peek_header_reads_only_the_header() -> None:
    """peek_header returns (spi_i, spi_r, exchange, flags, message_id) without checking the rest."""
    raw = wrap(PayloadType.NONCE, generic(0, b"n" * 16), exchange=37, flags=0x20, message_id=9)
    assert peek_header(raw) == (SPI_I, SPI_R, 37, 0x20, 9)
    assert peek_header(raw[:28]) == (SPI_I, SPI_R, 37, 0x20, 9)
    with pytest.raises(MalformedMessage):
        peek_header(raw[:27])


# --- rejected layouts ---------------------------------------------------------------------------


def one(ptype: int, body: bytes) -> bytes:
    """A message holding one payload of *ptype* with a raw *body*."""
    return wrap(ptype, generic(0, body))


MALFORMED: list[tuple[str, bytes, str]] = [
    ("short header", header(0, 28)[:27], "shorter than an IKE header"),
    ("Length larger than datagram", header(0, 29), "Length 29"),
    ("Length smaller than datagram", header(0, 28) + b"\x00", "Length 28"),
    ("truncated generic header", wrap(PayloadType.NONCE, b"\x00\x00\x00"), "generic payload header"),
    ("payload length below 4", wrap(PayloadType.NONCE, h("00 00 0003 00")), "length 3"),
    ("payload beyond message", wrap(PayloadType.NONCE, h("00 00 0009 00")), "length 9"),
    ("bytes after last payload", wrap(PayloadType.NONCE, generic(0, b"n") + b"\x00"), "after the last payload"),
    ("chain ends early", wrap(PayloadType.NONCE, generic(PayloadType.NONCE, b"n")), "generic payload header"),
    ("SK not last", wrap(PayloadType.SK, generic(0, b"body") + generic(0, b"x")), "SK payload is not the last"),
    ("SKF not last", wrap(PayloadType.SKF, generic(0, h("00010001")) + b"\x00"), "SK payload is not the last"),
    ("SKF too short", one(PayloadType.SKF, h("000100")), "SKF payload"),
    ("proposal header short", one(PayloadType.SA, h("00 00 0008 01 01 00")), "proposal"),
    ("proposal length beyond SA", one(PayloadType.SA, h("00 00 0010 01 01 00 00")), "proposal length 16"),
    ("proposal SPI beyond proposal", one(PayloadType.SA, h("00 00 0008 01 03 04 00")), "proposal length 8"),
    ("last proposal marked 2", one(PayloadType.SA, h("02 00 0008 01 01 00 00")), "Last Substruc 2"),
    ("non-last proposal marked 0", one(PayloadType.SA, h("00 00 0008 01 01 00 00  00 00 0008 02 01 00 00")),
     "Last Substruc 0"),
    ("proposal marker 1", one(PayloadType.SA, h("01 00 0008 01 01 00 00")), "Last Substruc 1"),
    ("fewer transforms than counted", one(PayloadType.SA, h("00 00 0010 01 01 00 02  00 00 0008 01 00 000c")),
     "transform 1/2 has Last Substruc 0"),
    ("more transforms than counted", one(PayloadType.SA, h("00 00 0018 01 01 00 01  03 00 0008 01 00 000c "
                                                          "00 00 0008 02 00 0005")), "transform 1/1 has Last Substruc 3"),
    ("transform truncated", one(PayloadType.SA, h("00 00 000c 01 01 00 01  00 00 0008")), "transform: 4 bytes"),
    ("transform length below 8", one(PayloadType.SA, h("00 00 0010 01 01 00 01  00 00 0004 01 00 000c")),
     "transform length 4"),
    ("transform length beyond proposal", one(PayloadType.SA, h("00 00 0010 01 01 00 01  00 00 000c 01 00 000c")),
     "transform length 12"),
    ("bytes after transforms", one(PayloadType.SA, h("00 00 0014 01 01 00 01  00 00 0008 01 00 000c 00000000")),
     "does not match its transforms"),
    ("attribute truncated", one(PayloadType.SA, h("00 00 0012 01 01 00 01  00 00 000a 01 00 000c 800e")),
     "transform attribute: 2 bytes"),
    ("TLV attribute beyond transform", one(PayloadType.SA, h("00 00 0014 01 01 00 01  00 00 000c 01 00 000c 0001 0001")),
     "attribute length 1 exceeds"),
    ("KE too short", one(PayloadType.KE, h("001f00")), "KE payload"),
    ("IDi too short", one(PayloadType.IDi, h("020000")), "IDi payload"),
    ("IDr too short", one(PayloadType.IDr, b""), "IDr payload"),
    ("CERT empty", one(PayloadType.CERT, b""), "CERT payload"),
    ("CERTREQ empty", one(PayloadType.CERTREQ, b""), "CERTREQ payload"),
    ("AUTH too short", one(PayloadType.AUTH, h("02")), "AUTH payload"),
    ("Notify too short", one(PayloadType.NOTIFY, h("0000")), "Notify payload"),
    ("Notify SPI beyond payload", one(PayloadType.NOTIFY, h("03 04 4009 aabbcc")), "SPI size 4"),
    ("Delete too short", one(PayloadType.DELETE, h("0304")), "Delete payload"),
    ("Delete count too high", one(PayloadType.DELETE, h("03 04 0002 aabbccdd")), "for 2 SPIs of 4"),
    ("Delete count too low", one(PayloadType.DELETE, h("03 04 0001 aabbccdd 11")), "for 1 SPIs of 4"),
    ("TS header short", one(PayloadType.TSi, h("01 0000")), "TS payload"),
    ("TS selector short", one(PayloadType.TSi, h("01 000000 07 00 0010")), "traffic selector"),
    ("TS unknown type", one(PayloadType.TSi, h("01 000000 09 00 0010 0000 ffff 00000000 ffffffff")), "TS type 9"),
    ("TS v4 with v6 length", one(PayloadType.TSr, h("01 000000 07 00 0028 0000 ffff") + bytes(32)), "length 40"),
    ("TS beyond payload", one(PayloadType.TSi, h("01 000000 07 00 0010 0000 ffff 00000000 ffff")), "length 16"),
    ("TS count too low", one(PayloadType.TSi, h("00 000000 07 00 0010 0000 ffff 00000000 ffffffff")),
     "does not match its selectors"),
    ("TS count too high", one(PayloadType.TSi, h("02 000000 07 00 0010 0000 ffff 00000000 ffffffff")),
     "traffic selector: 0 bytes"),
    ("CP empty", one(PayloadType.CP, b""), "need 1 byte"),
    ("CP attribute header short", one(PayloadType.CP, h("01 000000 0001 00")), "need 4 bytes"),
    ("CP attribute value beyond", one(PayloadType.CP, h("01 000000 0001 0004 0a00")), "need 4 bytes"),
]


@pytest.mark.parametrize(("data", "reason"), [(d, r) for _, d, r in MALFORMED], ids=[n for n, _, _ in MALFORMED])
def test_malformed_layout_is_rejected(data: bytes, reason: str) -> None:
    """Each broken layout raises MalformedMessage naming what is wrong."""
    with pytest.raises(MalformedMessage, match=reason):
        parse_message(data)


# --- serializer limits --------------------------------------------------------------------------

BASE = Message(SPI_I, SPI_R, ExchangeType.INFORMATIONAL, HeaderFlag.NONE, 0)


@pytest.mark.parametrize(("msg", "reason"), [
    (Message(b"short", SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0), "8 bytes"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, major_version=16), "nibbles"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 2**32), "header"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (KePayload(group=70000),)), "KePayload"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (NoncePayload(data=bytes(65532)),)), "NoncePayload"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (TsiPayload(selectors=(
        TrafficSelector(TsType.TS_IPV4_ADDR_RANGE, 0, 0, 0, bytes(16), bytes(16)),)),)), "TS type"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (
        DeletePayload(protocol=ProtocolId.ESP, spi_size=4, spis=(b"abc",)),)), "4 bytes"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (SaPayload(proposals=(Proposal(
        1, ProtocolId.IKE, b"", (Transform(TransformType.ENCR, 12, (TransformAttribute(0x8000, 1),)),)),)),)), "15 bits"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (
        CpPayload(attributes=(CpAttribute(0x8001),)),)), "15 bits"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (SkPayload(), NoncePayload())), "last"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (UnknownPayload(type_number=0),)), "type 0"),
    (Message(SPI_I, SPI_R, ExchangeType.IKE_SA_INIT, HeaderFlag.NONE, 0, (UnknownPayload(type_number=256),)), "type 256"),
])
def test_serializer_rejects_values_that_do_not_fit(msg: Message, reason: str) -> None:
    """Out-of-range fields raise ValueError instead of writing bytes that mean something else."""
    with pytest.raises(ValueError, match=reason):
        serialize_message(msg)


def test_serializer_rejects_non_payloads() -> None:
    """Base classes and foreign objects are not serializable payloads (TypeError)."""
    with pytest.raises(TypeError):
        serialize_payloads([IdPayload()])
    with pytest.raises(TypeError):
        serialize_payloads(["nonce"])  # type: ignore[list-item]


# --- round trips --------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(messages)
def test_parse_inverts_serialize(m: Message) -> None:
    """parse_message(serialize_message(m)) == m, and the bytes are stable, for every representable message."""
    raw = serialize_message(m)
    assert int.from_bytes(raw[24:28], "big") == len(raw)
    parsed = parse_message(raw)
    assert parsed == m
    assert serialize_message(parsed) == raw


@settings(max_examples=150, deadline=None)
@given(chains())
def test_parse_payloads_inverts_serialize_payloads(payloads: tuple[Payload, ...]) -> None:
    """A bare chain (the SK plaintext) round-trips, starting from the returned first type."""
    first, data = serialize_payloads(payloads)
    assert first == (payloads[0].payload_type or payloads[0].type_number if payloads else 0)  # type: ignore[attr-defined]
    assert parse_payloads(first, data) == payloads


def test_struct_layout_of_the_generic_header_is_big_endian() -> None:
    """A payload over 255 bytes has its 16-bit length in network byte order."""
    _, chain = serialize_payloads([NoncePayload(data=bytes(300))])
    assert struct.unpack(">BBH", chain[:4]) == (0, 0, 304)
