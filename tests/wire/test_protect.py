"""protect_message / unprotect_message framing (RFC 7296 §3.14) with a toy Protector."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wire_helpers import XorProtector
from wire_strategies import chains, headers

from ikesim.errors import IntegrityCheckFailed, MalformedMessage
from ikesim.wire.codec import parse_message, protect_message, serialize_message, serialize_payloads, unprotect_message
from ikesim.wire.iana import ExchangeType, HeaderFlag, NotifyType, PayloadType, ProtocolId
from ikesim.wire.message import IKE_HEADER_LENGTH, Message
from ikesim.wire.payloads import (
    DeletePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SkfPayload,
    SkPayload,
    VendorPayload,
)

HEAD = Message(spi_i=b"i" * 8, spi_r=b"r" * 8, exchange_type=ExchangeType.INFORMATIONAL,
               flags=HeaderFlag.INITIATOR, message_id=7)
INNER = (DeletePayload(protocol=ProtocolId.ESP, spi_size=4, spis=(b"\x01\x02\x03\x04",)), NoncePayload(data=b"n" * 16))


def test_aad_is_header_plus_sk_header_with_final_lengths(xor_protector: XorProtector) -> None:
    """The sealed aad is the 28-byte header and the 4-byte SK header, both already carrying final lengths."""
    raw = protect_message(HEAD, INNER, xor_protector)
    (aad,) = xor_protector.sealed_aads
    first, plaintext = serialize_payloads(INNER)
    assert len(raw) == IKE_HEADER_LENGTH + 4 + len(plaintext) + XorProtector.ICV
    assert raw.startswith(aad) and len(aad) == IKE_HEADER_LENGTH + 4
    assert int.from_bytes(aad[24:28], "big") == len(raw)  # header Length
    assert aad[16] == PayloadType.SK  # header Next Payload
    assert aad[28:32] == bytes([first, 0]) + (4 + len(plaintext) + XorProtector.ICV).to_bytes(2, "big")
    assert raw[len(aad):] == xor_protector.seal(aad, plaintext)


def test_unprotect_returns_inner_payloads_marked_encrypted(xor_protector: XorProtector) -> None:
    """unprotect_message inverts protect_message; the header fields survive and encrypted is True."""
    raw = protect_message(HEAD, INNER, xor_protector)
    out = unprotect_message(raw, xor_protector)
    assert out == Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, HEAD.message_id, INNER, encrypted=True)
    assert xor_protector.opened_aads == xor_protector.sealed_aads
    outer = parse_message(raw)
    assert outer.payloads == (SkPayload(first_payload=PayloadType.DELETE, data=raw[32:]),)
    assert unprotect_message(raw, xor_protector, outer=outer) == out


def test_outer_payloads_precede_sk_and_are_covered_by_aad(xor_protector: XorProtector) -> None:
    """Unencrypted payloads come first, the last one names SK as its Next Payload, and all sit in the aad."""
    head = Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, 1,
                   (VendorPayload(data=b"vid"), NotifyPayload(notify_type=NotifyType.COOKIE, data=b"c")))
    raw = protect_message(head, INNER, xor_protector)
    (aad,) = xor_protector.sealed_aads
    _, outer_bytes = serialize_payloads(head.payloads)
    assert raw[16] == PayloadType.VENDOR
    assert aad[28:28 + len(outer_bytes)] == outer_bytes[:7] + bytes([PayloadType.SK]) + outer_bytes[8:]
    assert len(aad) == 28 + len(outer_bytes) + 4
    assert unprotect_message(raw, xor_protector).payloads == head.payloads + INNER


def test_empty_inner_chain_gives_sk_next_payload_none(xor_protector: XorProtector) -> None:
    """An empty INFORMATIONAL (DPD) carries an SK payload with Next Payload 0 and no inner payloads."""
    raw = protect_message(HEAD, (), xor_protector)
    assert raw[28] == PayloadType.NONE and len(raw) == 28 + 4 + XorProtector.ICV
    assert unprotect_message(raw, xor_protector).payloads == ()


def test_changed_header_fails_the_integrity_check(xor_protector: XorProtector) -> None:
    """A flipped bit in the aad (here the message ID) makes the protector's IntegrityCheckFailed propagate."""
    raw = bytearray(protect_message(HEAD, INNER, xor_protector))
    raw[23] ^= 1
    with pytest.raises(IntegrityCheckFailed):
        unprotect_message(bytes(raw), xor_protector)


def test_garbage_plaintext_is_malformed(xor_protector: XorProtector) -> None:
    """A decrypted chain that does not parse raises MalformedMessage, saying it was inside SK."""
    raw = protect_message(HEAD, [VendorPayload(data=b"abc")], xor_protector)
    aad = raw[:32]
    # Same aad, re-sealed around a chain whose Payload Length lies (9 for 7 bytes): the ICV is valid.
    forged = aad + xor_protector.seal(aad, b"\x00\x00\x00\x09abc")
    with pytest.raises(MalformedMessage, match="inside SK payload"):
        unprotect_message(forged, xor_protector)


def test_nested_sk_is_malformed(xor_protector: XorProtector) -> None:
    """An SK payload inside the decrypted chain is rejected."""
    raw = protect_message(HEAD, [SkPayload(first_payload=0, data=b"x")], xor_protector)
    with pytest.raises(MalformedMessage, match="nested"):
        unprotect_message(raw, xor_protector)


def test_message_without_sk_is_malformed(xor_protector: XorProtector) -> None:
    """unprotect_message needs a final SK payload; an SKF fragment must be reassembled first."""
    with pytest.raises(MalformedMessage, match="no SK payload"):
        unprotect_message(serialize_message(HEAD), xor_protector)
    with pytest.raises(MalformedMessage, match="no SK payload"):
        unprotect_message(serialize_message(
            Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, 0, (NoncePayload(data=b"n"),))), xor_protector)
    frag = Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, 0, (SkfPayload(data=b"x" * 20),))
    with pytest.raises(MalformedMessage, match="reassemble"):
        unprotect_message(serialize_message(frag), xor_protector)


def test_protector_that_breaks_its_length_promise_is_refused() -> None:
    """protect_message refuses a seal() result whose length differs from sealed_length()."""

    class Liar(XorProtector):
        def sealed_length(self, plaintext_length: int) -> int:
            return plaintext_length + 15

    with pytest.raises(ValueError, match="announced"):
        protect_message(HEAD, INNER, Liar())


def test_sk_in_outer_payloads_is_refused(xor_protector: XorProtector) -> None:
    """protect_message adds the SK payload itself; one among msg.payloads is a caller error."""
    head = Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, 0, (SkPayload(data=b"x"),))
    with pytest.raises(ValueError, match="last"):
        protect_message(head, INNER, xor_protector)


@settings(max_examples=150, deadline=None)
@given(headers, chains(max_size=3, encrypted_last=False), chains(encrypted_last=False))
def test_protect_then_unprotect_round_trips(head: Message, outer: tuple[Payload, ...], inner: tuple[Payload, ...]) -> None:
    """For any header, clear payloads and inner payloads, unprotect(protect(m)) == m with encrypted=True."""
    msg = Message(head.spi_i, head.spi_r, head.exchange_type, head.flags, head.message_id, outer,
                  head.major_version, head.minor_version)
    p = XorProtector()
    raw = protect_message(msg, inner, p)
    assert int.from_bytes(raw[24:28], "big") == len(raw)
    got = unprotect_message(raw, p)
    assert got == Message(msg.spi_i, msg.spi_r, msg.exchange_type, msg.flags, msg.message_id, outer + inner,
                          msg.major_version, msg.minor_version, encrypted=True)
    assert serialize_message(parse_message(raw)) == raw


class PassThrough:
    """A Protector that checks nothing: the SK body *is* the plaintext, so random bodies reach the inner parser."""

    def sealed_length(self, plaintext_length: int) -> int:
        return plaintext_length

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        return plaintext

    def open(self, aad: bytes, body: bytes) -> bytes:
        return body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 255))
def test_unprotect_of_random_sk_bodies_raises_only_malformed(body: bytes, first: int) -> None:
    """Random decrypted contents with any first type either parse or raise MalformedMessage, nothing else."""
    raw = serialize_message(Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, 0,
                                    (SkPayload(first_payload=first, data=body),)))
    try:
        got = unprotect_message(raw, PassThrough())
    except MalformedMessage:
        return
    assert got.encrypted and serialize_payloads(got.payloads)[0] in (first, 0)


@settings(max_examples=150, deadline=None)
@given(st.binary(min_size=1, max_size=120))
def test_xor_protected_random_bodies_fail_integrity(body: bytes) -> None:
    """With a real ICV check, a random SK body is refused with IntegrityCheckFailed or MalformedMessage (too short)."""
    raw = serialize_message(Message(HEAD.spi_i, HEAD.spi_r, HEAD.exchange_type, HEAD.flags, 0,
                                    (SkPayload(first_payload=PayloadType.NONCE, data=body),)))
    with pytest.raises(IntegrityCheckFailed if len(body) >= XorProtector.ICV else MalformedMessage):
        unprotect_message(raw, XorProtector())
