"""h11's fuzz rule for the codec: any bytes either parse or raise MalformedMessage — never another exception.

Whatever does parse must also survive a second trip: re-serializing it and
parsing again gives the same value (reserved bits are dropped on the way).
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wire_strategies import KNOWN_TYPES, messages

from ikesim.errors import MalformedMessage
from ikesim.wire.codec import parse_message, parse_payloads, peek_header, serialize_message, serialize_payloads
from ikesim.wire.message import Message


def parse_or_none(data: bytes) -> Message | None:
    """Parse *data*; None on MalformedMessage. Any other exception fails the test. Parsed values are stable."""
    try:
        m = parse_message(data)
    except MalformedMessage:
        return None
    assert parse_message(serialize_message(m)) == m
    return m


def payload_offsets(raw: bytes) -> list[int]:
    """Offsets of the generic payload headers of a well-formed message (walked by hand, not by the codec)."""
    out, off = [], 28
    while off + 4 <= len(raw):
        out.append(off)
        length = int.from_bytes(raw[off + 2 : off + 4], "big")
        if length < 4:
            break
        off += length
    return out


def fix_length(raw: bytearray) -> bytes:
    """Rewrite the header Length to the datagram size, so parsing goes past the header check."""
    if len(raw) >= 28:
        raw[24:28] = len(raw).to_bytes(4, "big")
    return bytes(raw)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_malformed(data: bytes) -> None:
    """Random datagrams parse or raise MalformedMessage; peek_header agrees on what is a header."""
    parse_or_none(data)
    try:
        peek_header(data)
    except MalformedMessage:
        assert len(data) < 28


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 255), st.binary(max_size=300))
def test_random_chain_behind_a_valid_header(first: int, chain: bytes) -> None:
    """A correct header followed by random payload bytes reaches the payload parsers and obeys the rule."""
    header = bytes(16) + bytes([first, 0x20, 37, 0x08]) + bytes(4) + (28 + len(chain)).to_bytes(4, "big")
    parse_or_none(header + chain)


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(sorted(KNOWN_TYPES)), st.binary(max_size=120), st.booleans())
def test_every_payload_parser_on_random_bodies(ptype: int, body: bytes, critical: bool) -> None:
    """Each payload type's parser, fed a random body of a consistent length, parses or raises MalformedMessage."""
    chain = bytes([0, 0x80 if critical else 0]) + (4 + len(body)).to_bytes(2, "big") + body
    try:
        payloads = parse_payloads(ptype, chain)
    except MalformedMessage:
        return
    assert serialize_payloads(payloads)[0] == ptype
    assert parse_payloads(ptype, serialize_payloads(payloads)[1]) == payloads


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(0, 7)),
    st.tuples(st.just("byte"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.integers(0, 255)),
    st.tuples(st.just("length"), st.integers(0, 10_000), st.integers(0, 0xFFFF)),
)


def mutate(raw: bytes, edits: list[tuple[str, int, int]]) -> bytearray:
    """Apply bit flips, byte sets, truncations, insertions and payload-length edits to a copy of *raw*."""
    out = bytearray(raw)
    for kind, where, value in edits:
        if kind == "length":
            offsets = payload_offsets(bytes(out))
            if offsets:
                off = offsets[where % len(offsets)]
                out[off + 2 : off + 4] = value.to_bytes(2, "big")
            continue
        if not out:
            continue
        i = where % len(out)
        if kind == "flip":
            out[i] ^= 1 << value
        elif kind == "byte":
            out[i] = value
        elif kind == "truncate":
            del out[i:]
        else:
            out.insert(i, value)
    return out


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), edits=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_strongswan_messages(all_vector_messages: list[bytes], data: st.DataObject,
                                     edits: list[tuple[str, int, int]]) -> None:
    """Bit flips, truncations, insertions and length edits of real messages parse or raise MalformedMessage."""
    raw = data.draw(st.sampled_from(all_vector_messages))
    mutated = mutate(raw, edits)
    parse_or_none(bytes(mutated))
    parse_or_none(fix_length(mutated))


@settings(max_examples=250, deadline=None)
@given(messages, st.lists(mutation, min_size=1, max_size=3))
def test_mutated_generated_messages(m: Message, edits: list[tuple[str, int, int]]) -> None:
    """Mutations of generated messages (TS, CP, Delete, SKF, attributes...) parse or raise MalformedMessage."""
    mutated = mutate(serialize_message(m), edits)
    parse_or_none(fix_length(mutated))


def test_mutation_helpers_do_what_they_say() -> None:
    """The length edit lands on a generic payload header, and fix_length rewrites the header Length."""
    raw = bytes(16) + bytes([40, 0x20, 34, 8]) + bytes(4) + (28 + 8).to_bytes(4, "big") + b"\x00\x00\x00\x08abcd"
    assert payload_offsets(raw) == [28]
    assert mutate(raw, [("length", 5, 0x1234)])[30:32] == b"\x12\x34"
    assert fix_length(bytearray(raw[:30]))[24:28] == (30).to_bytes(4, "big")
