"""IKEv2 message framing and payload chains (RFC 7296 §3.1, §3.2, §3.14).

Strategy: free functions over immutable ``bytes``. The header is one
``struct`` unpack; the generic payload headers are walked by offset and each
body is handed to the parser registered for its type in
``ikesim.wire.payload_codec``. Every length is checked against its window
before use, so any input either parses or raises ``MalformedMessage`` —
never another error (h11's fuzz rule).

Reserved fields and reserved flag bits are ignored on receipt and written as
zero (RFC 7296 §3.1, §3.2), so ``serialize_message(parse_message(b)) == b``
holds for every message whose reserved bits are zero, and
``parse_message(serialize_message(m)) == m`` for every representable ``m``.
Serializers raise ``ValueError`` for values that do not fit their fields and
``TypeError`` for objects that are not payloads.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ikesim.errors import MalformedInnerPayloads, MalformedMessage
from ikesim.wire.iana import ExchangeType, HeaderFlag, PayloadType
from ikesim.wire.message import IKE_HEADER_LENGTH, Message, Protector
from ikesim.wire.payload_codec import PARSERS, SERIALIZERS, EnumTable, parse_encrypted
from ikesim.wire.payloads import Payload, SkfPayload, SkPayload, UnknownPayload

__all__ = [
    "parse_message",
    "serialize_message",
    "parse_payloads",
    "serialize_payloads",
    "protect_message",
    "protect_serialized",
    "unprotect_message",
    "protect_fragment",
    "open_fragment",
    "reassembled_message",
    "peek_header",
]

_HEADER = struct.Struct(">8s8sBBBBII")  # §3.1: SPIs, Next Payload, version, exchange, flags, message ID, length
_GENERIC = struct.Struct(">BBH")  # §3.2: Next Payload, C + RESERVED, Payload Length
_FRAGMENT_NUMBERS = struct.Struct(">HH")  # RFC 7383 §2.5: Fragment Number, Total Fragments
_CRITICAL = 0x80
_FLAG_MASK = 0x38  # I, V, R: the only defined header flags (§3.1)
_SK_TYPES = frozenset((int(PayloadType.SK), int(PayloadType.SKF)))
_SK_CLASSES = (SkPayload, SkfPayload)
_EXCHANGE_TYPES = EnumTable(ExchangeType)
_FLAGS = {v: HeaderFlag(v) for v in range(0, _FLAG_MASK + 1, 8)}
_CHAIN_TYPES: dict[type, int] = {
    cls: cls.payload_type for cls in SERIALIZERS if issubclass(cls, Payload) and cls is not UnknownPayload
}
"""Payload class -> its Next Payload value (``UnknownPayload`` carries its own number)."""


# --- payload chains ----------------------------------------------------------------------------


def _parse_chain(data: bytes, ptype: int, off: int, end: int) -> list[Payload]:
    """RFC 7296 §3.2: walk the generic payload headers of ``data[off:end]`` starting with type *ptype*."""
    payloads: list[Payload] = []
    append = payloads.append
    parsers = PARSERS
    while ptype:
        if end - off < 4:
            raise MalformedMessage(f"generic payload header: {end - off} bytes, need 4")
        nxt, flags, length = _GENERIC.unpack_from(data, off)
        stop = off + length
        if length < 4 or stop > end:
            raise MalformedMessage(f"payload {ptype} length {length} out of bounds")
        critical = flags >= _CRITICAL
        parser = parsers.get(ptype)
        if parser is not None:
            append(parser(data, off + 4, stop, critical))
        elif ptype in _SK_TYPES:
            # §3.14 / RFC 7383 §2.5: SK and SKF are last; their Next Payload names the first inner payload.
            if stop != end:
                raise MalformedMessage("SK payload is not the last payload")
            append(parse_encrypted(data, ptype, nxt, off + 4, stop, critical))
            return payloads
        else:
            append(UnknownPayload(int(ptype), data[off + 4 : stop], critical))
        ptype = nxt
        off = stop
    if off != end:
        raise MalformedMessage(f"{end - off} bytes after the last payload")
    return payloads


def _type_of(p: Payload) -> int:
    """The Next Payload value announcing *p* (RFC 7296 §3.2)."""
    return p.type_number if type(p) is UnknownPayload else p.payload_type


def _types_of(payloads: Sequence[Payload]) -> list[int]:
    """The Next Payload values announcing *payloads*; TypeError for an object that is not a payload."""
    try:
        return [_CHAIN_TYPES[type(p)] for p in payloads]  # one dict hit per payload on the common path
    except KeyError:
        pass
    try:
        return [_type_of(p) for p in payloads]
    except AttributeError:
        raise TypeError(f"cannot serialize {[type(p).__name__ for p in payloads]}") from None


def _serialize_chain(payloads: Sequence[Payload], last_next: int | None) -> tuple[int, bytes]:
    """Chain *payloads*; the last one's Next Payload is *last_next* (None: 0, or SK's first inner type)."""
    if not payloads:
        return PayloadType.NONE, b""
    types = _types_of(payloads)
    nexts = types[1:]
    nexts.append(last_next or PayloadType.NONE)
    last = len(nexts) - 1
    parts: list[bytes] = []
    append = parts.append
    pack = _GENERIC.pack
    serializers = SERIALIZERS
    try:
        for i, p in enumerate(payloads):
            serializer = serializers.get(type(p))
            if serializer is None:
                raise TypeError(f"cannot serialize {type(p).__name__}")
            nxt = nexts[i]
            if type(p) in _SK_CLASSES:
                # §3.14: SK is last and its Next Payload is the first inner payload's type.
                if i != last or last_next is not None:
                    raise ValueError(f"{type(p).__name__} must be the last payload")
                nxt = p.first_payload  # type: ignore[attr-defined]
            body = serializer(p)
            append(pack(nxt, _CRITICAL if p.critical else 0, 4 + len(body)))  # type: ignore[attr-defined]
            append(body)
    except struct.error as exc:
        raise ValueError(f"cannot serialize {type(p).__name__}: {exc}") from None
    return types[0], b"".join(parts)


def parse_payloads(first_type: int, data: bytes) -> tuple[Payload, ...]:
    """RFC 7296 §3.2: parse a bare payload chain (e.g. decrypted SK contents) starting with *first_type*."""
    if type(data) is not bytes:
        data = bytes(data)
    return tuple(_parse_chain(data, first_type, 0, len(data)))


def serialize_payloads(payloads: Sequence[Payload]) -> tuple[int, bytes]:
    """RFC 7296 §3.2: chain *payloads* (Next Payload fields filled in); return the first type and the bytes."""
    return _serialize_chain(payloads, None)


# --- messages ------------------------------------------------------------------------------------


def peek_header(data: bytes) -> tuple[bytes, bytes, int, int, int]:
    """RFC 7296 §3.1: ``(spi_i, spi_r, exchange_type, flags, message_id)`` without parsing payloads."""
    if len(data) < IKE_HEADER_LENGTH:
        raise MalformedMessage(f"datagram of {len(data)} bytes is shorter than an IKE header")
    spi_i, spi_r, _, _, exchange_type, flags, message_id, _ = _HEADER.unpack_from(data)
    return spi_i, spi_r, exchange_type, flags, message_id


def parse_message(data: bytes) -> Message:
    """RFC 7296 §3.1, §3.2: parse the header and outer payload chain; an SK payload stays encrypted."""
    if type(data) is not bytes:
        data = bytes(data)
    end = len(data)
    if end < IKE_HEADER_LENGTH:
        raise MalformedMessage(f"message of {end} bytes is shorter than an IKE header")
    spi_i, spi_r, first, version, exchange_type, flags, message_id, length = _HEADER.unpack_from(data)
    if length != end:
        raise MalformedMessage(f"header Length {length} but {end} bytes received")
    return Message(
        spi_i, spi_r, _EXCHANGE_TYPES[exchange_type], _FLAGS[flags & _FLAG_MASK], message_id,
        tuple(_parse_chain(data, first, IKE_HEADER_LENGTH, end)), version >> 4, version & 0x0F,
    )


def _pack_header(msg: Message, first: int, length: int) -> bytes:
    """RFC 7296 §3.1: the 28-octet IKE header."""
    if len(msg.spi_i) != 8 or len(msg.spi_r) != 8:
        raise ValueError("IKE SPIs must be 8 bytes")
    if not (0 <= msg.major_version <= 15 and 0 <= msg.minor_version <= 15):
        raise ValueError(f"version {msg.major_version}.{msg.minor_version} does not fit two nibbles")
    try:
        return _HEADER.pack(msg.spi_i, msg.spi_r, first, (msg.major_version << 4) | msg.minor_version,
                            msg.exchange_type, msg.flags, msg.message_id, length)
    except struct.error as exc:
        raise ValueError(f"cannot serialize IKE header: {exc}") from None


def serialize_message(msg: Message) -> bytes:
    """RFC 7296 §3.1: serialize a message; an ``SkPayload`` is written as carried (already sealed)."""
    first, body = _serialize_chain(msg.payloads, None)
    return _pack_header(msg, first, IKE_HEADER_LENGTH + len(body)) + body


def protect_message(msg: Message, inner: Sequence[Payload], protector: Protector) -> bytes:
    """RFC 7296 §3.14: header, ``msg.payloads`` in clear, then *inner* sealed into a final SK payload."""
    inner_first, plaintext = _serialize_chain(inner, None)
    return protect_serialized(msg, inner_first, plaintext, protector)


def protect_serialized(msg: Message, inner_first: int, plaintext: bytes, protector: Protector) -> bytes:
    """RFC 7296 §3.14: ``protect_message`` for an inner chain already serialized (``serialize_payloads``).

    The caller that needs the plaintext length first (RFC 7383 §2.5: fragment or not) serializes
    once and seals these bytes. The total length is known before sealing
    (``protector.sealed_length``), so the header and the SK generic header passed as ``aad`` are final.
    """
    sealed_length = protector.sealed_length(len(plaintext))
    if msg.payloads:
        first, outer = _serialize_chain(msg.payloads, PayloadType.SK)
    else:
        first, outer = PayloadType.SK, b""
    if not 0 <= sealed_length <= 0xFFFF - 4:
        raise ValueError(f"SK payload of {4 + sealed_length} bytes exceeds its 16-bit length field")
    total = IKE_HEADER_LENGTH + len(outer) + 4 + sealed_length
    aad = _pack_header(msg, first, total) + outer + _GENERIC.pack(inner_first, 0, 4 + sealed_length)
    sealed = protector.seal(aad, plaintext)
    if len(sealed) != sealed_length:
        raise ValueError(f"protector sealed {len(sealed)} bytes, announced {sealed_length}")
    return aad + sealed


def unprotect_message(data: bytes, protector: Protector, *, outer: Message | None = None) -> Message:
    """RFC 7296 §3.14: verify and decrypt the final SK payload; return outer + inner payloads, ``encrypted=True``.

    *outer* may pass ``parse_message(data)`` when the caller already has it, to
    skip parsing twice. ``IntegrityCheckFailed`` from the protector propagates.
    """
    if type(data) is not bytes:
        data = bytes(data)
    msg = parse_message(data) if outer is None else outer
    sk = msg.payloads[-1] if msg.payloads else None
    if type(sk) is not SkPayload:
        if type(sk) is SkfPayload:
            raise MalformedMessage("SKF fragment: reassemble before decrypting (RFC 7383 §2.6)")
        raise MalformedMessage("message has no SK payload")
    aad = data[: len(data) - len(sk.data)]
    plaintext = protector.open(aad, sk.data)
    if type(plaintext) is not bytes:
        plaintext = bytes(plaintext)
    return _with_inner(msg, sk.first_payload, plaintext, "SK payload")


# --- fragments (RFC 7383) ------------------------------------------------------------------------


def protect_fragment(msg: Message, first_payload: int, number: int, total: int, chunk: bytes,
                     protector: Protector) -> bytes:
    """RFC 7383 §2.5: one SKF fragment of *msg* carrying *chunk* of the inner payload chain.

    Fragment 1's Next Payload is *first_payload* (the first inner payload), the others' is 0. The
    whole SKF header, Fragment Number and Total Fragments included, is authenticated (``aad``).
    """
    if not 1 <= number <= total <= 0xFFFF:
        raise ValueError(f"fragment {number} of {total}")
    sealed_length = protector.sealed_length(len(chunk))
    length = 4 + _FRAGMENT_NUMBERS.size + sealed_length
    if length > 0xFFFF:
        raise ValueError(f"SKF payload of {length} bytes exceeds its 16-bit length field")
    nxt = first_payload if number == 1 else PayloadType.NONE
    aad = (_pack_header(msg, PayloadType.SKF, IKE_HEADER_LENGTH + length) + _GENERIC.pack(nxt, 0, length)
           + _FRAGMENT_NUMBERS.pack(number, total))
    sealed = protector.seal(aad, chunk)
    if len(sealed) != sealed_length:
        raise ValueError(f"protector sealed {len(sealed)} bytes, announced {sealed_length}")
    return aad + sealed


def open_fragment(data: bytes, protector: Protector, *, outer: Message | None = None) -> tuple[SkfPayload, bytes]:
    """RFC 7383 §2.6: verify and decrypt one SKF fragment; return the payload and its plaintext chunk.

    ``MalformedMessage`` if *data* is not an SKF message; ``IntegrityCheckFailed`` propagates.
    """
    if type(data) is not bytes:
        data = bytes(data)
    msg = parse_message(data) if outer is None else outer
    skf = msg.payloads[-1] if msg.payloads else None
    if type(skf) is not SkfPayload:
        raise MalformedMessage("message has no SKF payload")
    plaintext = protector.open(data[: len(data) - len(skf.data)], skf.data)
    return skf, plaintext if type(plaintext) is bytes else bytes(plaintext)


def reassembled_message(outer: Message, first_payload: int, plaintext: bytes) -> Message:
    """RFC 7383 §2.6: the message whose inner payload chain is the fragments' plaintexts joined in order."""
    return _with_inner(outer, first_payload, plaintext, "SKF fragments")


def _with_inner(outer: Message, first_payload: int, plaintext: bytes, where: str) -> Message:
    """RFC 7296 §3.14: *outer* with its final SK/SKF payload replaced by the decrypted inner chain."""
    try:
        inner = _parse_chain(plaintext, first_payload, 0, len(plaintext))
    except MalformedMessage as exc:
        raise MalformedInnerPayloads(f"inside {where}: {exc}") from exc
    if inner and type(inner[-1]) in _SK_CLASSES:
        raise MalformedInnerPayloads(f"SK payload nested inside {where if where != 'SK payload' else 'an SK payload'}")
    return Message(
        outer.spi_i, outer.spi_r, outer.exchange_type, outer.flags, outer.message_id,
        outer.payloads[:-1] + tuple(inner), outer.major_version, outer.minor_version, True,
    )
