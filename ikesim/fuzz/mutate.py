"""Mutators for the daemon fuzz harness: structure level (payloads, fields) and byte level (raw datagrams).

Every choice is drawn from an ``ikesim.rng.Rng``, so a mutant is a pure function of the stream it was
drawn from: the same (seed, index) gives the same bytes. Structure mutators return a new tuple of
payloads (frozen dataclasses rebuilt with ``dataclasses.replace``); byte mutators return new bytes and
a short name of what they did, for the report.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from ikesim.fuzz.semantic import semantic_mutation
from ikesim.rng import Rng
from ikesim.wire.payloads import Payload, UnknownPayload

__all__ = ["pick", "mutate_payloads", "mutate_bytes", "INT_EDGES", "BYTE_MUTATORS", "PAYLOAD_MUTATORS"]

INT_EDGES = (0, 1, 2, 3, 4, 7, 8, 15, 16, 17, 31, 32, 63, 64, 127, 128, 255, 256, 257, 0x7FFF, 0xFFFF, 0x10000,
             0x7FFFFFFF, 0xFFFFFFFF)
"""Boundary values tried for integer fields (counts, lengths, numbers, types)."""

T = TypeVar("T")
_UNKNOWN_TYPES = (0, 1, 32, 49, 50, 127, 128, 200, 255)  # reserved / unassigned / private-use payload types
_HEADER_LENGTH_OFFSET = 24  # RFC 7296 §3.1: Length is the last 4 octets of the 28-octet header


def pick(rng: Rng, items: Sequence[T]) -> T:
    """One element of *items*, uniformly."""
    return items[rng.below(len(items))]


# --- structure level -----------------------------------------------------------------------------------


def _mutate_bytes_value(rng: Rng, value: bytes) -> bytes:
    choice = rng.below(7)
    if choice == 0:
        return b""
    if choice == 1:
        return value[: rng.below(len(value) + 1)]
    if choice == 2:
        return value + rng.bytes(1 + rng.below(64))
    if choice == 3 and value:
        i = rng.below(len(value))
        return value[:i] + bytes([value[i] ^ (1 << rng.below(8))]) + value[i + 1 :]
    if choice == 4:
        return rng.bytes(int(pick(rng, (1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 255, 256, 257, 300))))
    if choice == 5:
        return value * 2
    return b"\xff" * len(value)


def _mutate_value(rng: Rng, value: object, depth: int) -> object:
    """A mutated copy of one field value (int, enum, bytes, tuple of values or nested dataclass)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):  # also IntEnum: the serializers take any int
        if rng.below(3) == 0:
            return int(value) + int(pick(rng, (-1, 1)))
        return int(pick(rng, INT_EDGES))
    if isinstance(value, bytes):
        return _mutate_bytes_value(rng, value)
    if isinstance(value, tuple):
        return _mutate_sequence(rng, value, depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mutate_dataclass(rng, value, depth + 1)
    return value


def _mutate_sequence(rng: Rng, items: tuple[object, ...], depth: int) -> tuple[object, ...]:
    seq = list(items)
    choice = rng.below(6)
    if choice == 0 and seq:
        del seq[rng.below(len(seq))]
    elif choice == 1 and seq:
        i = rng.below(len(seq))
        seq[i:i] = [seq[i]] * (1 + rng.below(3 if rng.below(8) else 300))  # sometimes far past a count field
    elif choice == 2 and len(seq) > 1:
        i, j = rng.below(len(seq)), rng.below(len(seq))
        seq[i], seq[j] = seq[j], seq[i]
    elif choice == 3:
        seq = []
    elif seq:
        i = rng.below(len(seq))
        seq[i] = _mutate_value(rng, seq[i], depth)
    return tuple(seq)


def _mutate_dataclass(rng: Rng, obj: object, depth: int = 0) -> object:
    fields = [f.name for f in dataclasses.fields(obj) if f.init]  # type: ignore[arg-type]
    if not fields or depth > 4:
        return obj
    name = str(pick(rng, fields))
    value = getattr(obj, name)
    new = _mutate_value(rng, value, depth)
    if isinstance(value, enum.Enum) and not isinstance(new, enum.Enum) and isinstance(new, int):
        new = int(new)
    return dataclasses.replace(obj, **{name: new})  # type: ignore[type-var]


def _drop_payload(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    if payloads:
        del payloads[rng.below(len(payloads))]
    return "drop_payload"


def _duplicate_payload(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    if payloads:
        i = rng.below(len(payloads))
        payloads.insert(rng.below(len(payloads) + 1), payloads[i])
    return "duplicate_payload"


def _swap_payloads(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    if len(payloads) > 1:
        i, j = rng.below(len(payloads)), rng.below(len(payloads))
        payloads[i], payloads[j] = payloads[j], payloads[i]
    return "swap_payloads"


def _unknown_payload(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    critical = rng.below(2) == 1
    p = UnknownPayload(int(pick(rng, _UNKNOWN_TYPES)), rng.bytes(rng.below(40)), critical)
    payloads.insert(rng.below(len(payloads) + 1), p)
    return "unknown_critical_payload" if critical else "unknown_payload"


def _critical_bit(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    if payloads:
        i = rng.below(len(payloads))
        p = payloads[i]
        payloads[i] = dataclasses.replace(p, critical=not getattr(p, "critical", False))  # type: ignore[call-arg]
    return "critical_bit"


def _foreign_payload(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    if pool:
        payloads.insert(rng.below(len(payloads) + 1), pool[rng.below(len(pool))])
    return "foreign_payload"


def _field(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    if payloads:
        i = rng.below(len(payloads))
        payloads[i] = cast(Payload, _mutate_dataclass(rng, payloads[i]))
        return f"field:{type(payloads[i]).__name__}"
    return "field"


def _empty(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    payloads.clear()
    return "no_payloads"


def _semantic(rng: Rng, payloads: list[Payload], pool: Sequence[Payload]) -> str:
    return "semantic:" + semantic_mutation(rng, payloads)


PayloadMutator = Callable[[Rng, list[Payload], Sequence[Payload]], str]
PAYLOAD_MUTATORS: tuple[tuple[int, PayloadMutator], ...] = (
    (40, _semantic), (30, _field), (8, _drop_payload), (8, _duplicate_payload), (4, _swap_payloads), (8, _unknown_payload),
    (5, _critical_bit), (8, _foreign_payload), (1, _empty),
)
"""(weight, mutator) pairs for payload lists."""
_PAYLOAD_WEIGHT = sum(w for w, _ in PAYLOAD_MUTATORS)


def _weighted(rng: Rng, table: Sequence[tuple[int, PayloadMutator]], total: int) -> PayloadMutator:
    r = rng.below(total)
    for w, f in table:
        if r < w:
            return f
        r -= w
    return table[-1][1]


def mutate_payloads(rng: Rng, payloads: Sequence[Payload], pool: Sequence[Payload] = (),
                    rounds: int | None = None) -> tuple[tuple[Payload, ...], list[str]]:
    """Apply 1-3 structure mutations to *payloads*; *pool* supplies payloads of other messages."""
    out = list(payloads)
    names = []
    for _ in range(rounds if rounds is not None else 1 + rng.below(2)):
        names.append(_weighted(rng, PAYLOAD_MUTATORS, _PAYLOAD_WEIGHT)(rng, out, pool))
    return tuple(out), names


# --- byte level ----------------------------------------------------------------------------------------


def _truncate(rng: Rng, data: bytes) -> bytes:
    return data[: rng.below(len(data))] if data else data


def _truncate_fix_length(rng: Rng, data: bytes) -> bytes:
    """Truncate and patch the header Length, so the payload walker (not the length check) meets the cut."""
    if len(data) <= 28:
        return _truncate(rng, data)
    cut = 28 + rng.below(len(data) - 28)
    out = bytearray(data[:cut])
    struct.pack_into(">I", out, _HEADER_LENGTH_OFFSET, cut)
    return bytes(out)


def _bit_flip(rng: Rng, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(1 + rng.below(4)):
        i = rng.below(len(out))
        out[i] ^= 1 << rng.below(8)
    return bytes(out)


def _header_byte(rng: Rng, data: bytes) -> bytes:
    """Overwrite one header octet (next payload, version, exchange type, flags, message ID)."""
    if len(data) < 28:
        return _bit_flip(rng, data)
    out = bytearray(data)
    out[16 + rng.below(8)] = rng.below(256)
    return bytes(out)


def _length_field(rng: Rng, data: bytes) -> bytes:
    """Overwrite a 16-bit generic payload Length or the 32-bit header Length with an edge value."""
    if len(data) < 32 or rng.below(4) == 0:
        if len(data) >= 28:
            out = bytearray(data)
            struct.pack_into(">I", out, _HEADER_LENGTH_OFFSET, int(pick(rng, INT_EDGES)) & 0xFFFFFFFF)
            return bytes(out)
        return data
    offsets = _payload_header_offsets(data)
    out = bytearray(data)
    off = offsets[rng.below(len(offsets))] if offsets else 28
    struct.pack_into(">H", out, off + 2, int(pick(rng, INT_EDGES)) & 0xFFFF)
    return bytes(out)


def _payload_header_offsets(data: bytes) -> list[int]:
    """Offsets of the outer generic payload headers, walked as far as the lengths allow."""
    out: list[int] = []
    nxt, off = data[16], 28
    while nxt and off + 4 <= len(data) and len(out) < 64:
        out.append(off)
        length = struct.unpack_from(">H", data, off + 2)[0]
        if nxt in (46, 53) or length < 4:  # SK / SKF are last
            break
        nxt, off = data[off], off + length
    return out


def _splice(rng: Rng, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    i, j = sorted((rng.below(len(data)), rng.below(len(data))))
    return data[:i] + data[j:] if rng.below(2) else data[:j] + data[i:j] + data[j:]


def _append(rng: Rng, data: bytes) -> bytes:
    return data + rng.bytes(1 + rng.below(64))


def _random(rng: Rng, data: bytes) -> bytes:
    return rng.bytes(rng.below(200))


ByteMutator = Callable[[Rng, bytes], bytes]
BYTE_MUTATORS: dict[str, ByteMutator] = {
    "truncate": _truncate, "truncate_fix_length": _truncate_fix_length, "bit_flip": _bit_flip,
    "header_byte": _header_byte, "length_field": _length_field, "splice": _splice, "append": _append,
    "random": _random,
}
"""Byte-level mutators by name."""
_BYTE_NAMES = tuple(BYTE_MUTATORS)


def mutate_bytes(rng: Rng, data: bytes) -> tuple[bytes, str]:
    """One byte-level mutation of *data*; returns (mutant, mutator name)."""
    name = str(pick(rng, _BYTE_NAMES))
    return BYTE_MUTATORS[name](rng, data), name
