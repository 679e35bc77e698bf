"""Sealing fuzzed payloads with a pair's real keys: SK messages and SKF fragments (RFC 7296 §3.14, RFC 7383 §2.5).

The harness plays one peer of a pair: it builds the SK protector of that peer's IKE_SA (its suite and
SK_e/SK_a for the direction it sends in) from the harness's own ``Rng`` (so the daemon's streams are not
touched), and seals mutated inner payloads with it. The victim then authenticates and decrypts the
datagram and its inner parser sees the mutant. Fragments are sealed by hand, so that Fragment Number and
Total Fragments may carry values ``protect_fragment`` refuses (0, number > total, 65535).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ikesim.crypto.sk import make_sk_protectors
from ikesim.ike.sa import IkeSa
from ikesim.rng import Rng
from ikesim.wire.codec import protect_message, serialize_payloads
from ikesim.wire.iana import HeaderFlag, PayloadType
from ikesim.wire.message import IKE_HEADER_LENGTH, Message, Protector
from ikesim.wire.payloads import Payload

__all__ = ["sender_protector", "seal_message", "seal_fragment", "pack_header", "inner_plaintext"]

_HEADER = struct.Struct(">8s8sBBBBII")


def sender_protector(sa: IkeSa, rng: Rng) -> Protector:
    """The outbound SK protector of *sa* (the impersonated sender's IKE_SA), drawing IVs from *rng*."""
    assert sa.suite is not None and sa.keys is not None
    return make_sk_protectors(sa.suite, sa.keys, sa.initiator, rng)[0]


def pack_header(spi_i: bytes, spi_r: bytes, first: int, exchange: int, flags: int, message_id: int,
                length: int, version: int = 0x20) -> bytes:
    """RFC 7296 §3.1: a 28-octet IKE header with any field values."""
    return _HEADER.pack(spi_i, spi_r, first, version, exchange, flags, message_id, length)


def seal_message(spi_i: bytes, spi_r: bytes, exchange: int, flags: int, message_id: int,
                 inner: Sequence[Payload], protector: Protector) -> bytes:
    """An SK message carrying *inner*, authenticated and encrypted by *protector* (RFC 7296 §3.14)."""
    head = Message(spi_i, spi_r, exchange, HeaderFlag(flags & 0x38), message_id)  # type: ignore[arg-type]
    return protect_message(head, tuple(inner), protector)


def seal_fragment(spi_i: bytes, spi_r: bytes, exchange: int, flags: int, message_id: int, first_payload: int,
                  number: int, total: int, chunk: bytes, protector: Protector) -> bytes:
    """One SKF fragment with any Fragment Number / Total Fragments, sealed by *protector* (RFC 7383 §2.5)."""
    sealed_length = protector.sealed_length(len(chunk))
    length = 8 + sealed_length
    aad = (pack_header(spi_i, spi_r, PayloadType.SKF, exchange, flags & 0x38, message_id, IKE_HEADER_LENGTH + length)
           + struct.pack(">BBHHH", first_payload, 0, length, number & 0xFFFF, total & 0xFFFF))
    return aad + protector.seal(aad, chunk)


def inner_plaintext(inner: Sequence[Payload]) -> tuple[int, bytes]:
    """The first payload type and serialized chain of *inner* (what SK/SKF encrypt)."""
    return serialize_payloads(inner)
