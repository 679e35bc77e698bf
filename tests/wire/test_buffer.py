"""The bounds-checked Reader and the Writer (ikesim.wire.buffer)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ikesim.errors import MalformedMessage
from ikesim.wire.buffer import Reader, Writer


def test_reader_pulls_big_endian_fields_in_order() -> None:
    """Each pull returns the network-byte-order value and advances by its width."""
    r = Reader(bytes.fromhex("01 0203 04050607 08090a0b0c0d0e0f ffee"))
    assert r.pull_uint8() == 0x01
    assert r.pull_uint16() == 0x0203
    assert r.pull_uint32() == 0x04050607
    assert r.pull_uint64() == 0x08090A0B0C0D0E0F
    assert (r.pos, r.remaining, r.at_end) == (15, 2, False)
    assert r.pull_bytes(2) == b"\xff\xee"
    assert r.at_end and r.remaining == 0


@pytest.mark.parametrize(("need", "pull"), [
    (1, lambda r: r.pull_uint8()),
    (2, lambda r: r.pull_uint16()),
    (4, lambda r: r.pull_uint32()),
    (8, lambda r: r.pull_uint64()),
    (9, lambda r: r.pull_bytes(9)),
    (9, lambda r: r.pull_struct(struct.Struct(">QB"))),
    (9, lambda r: r.pull_reader(9)),
    (9, lambda r: r.skip(9)),
])
def test_reader_underflow_raises_malformed_and_does_not_move(need: int, pull: Callable[[Reader], object]) -> None:
    """A pull one byte past the window raises MalformedMessage and leaves the cursor where it was."""
    r = Reader(bytes(20), 5, 5 + need - 1)
    with pytest.raises(MalformedMessage):
        pull(r)
    assert r.pos == 5
    r = Reader(bytes(20), 5, 5 + need)
    pull(r)
    assert r.pos == 5 + need


def test_reader_rejects_negative_lengths() -> None:
    """A negative count (e.g. computed from a bad length field) is malformed, not a slice surprise."""
    with pytest.raises(MalformedMessage):
        Reader(b"abcd").pull_bytes(-1)


def test_reader_window_hides_bytes_outside_it() -> None:
    """A Reader over data[pos:end] neither sees the prefix nor reads past end."""
    r = Reader(b"abcdefgh", 2, 5)
    assert r.pull_rest() == b"cde"
    with pytest.raises(MalformedMessage):
        r.pull_uint8()


def test_reader_rejects_a_window_outside_the_buffer() -> None:
    """Constructing a Reader with a bad window is a caller error (ValueError), not a malformed message."""
    with pytest.raises(ValueError):
        Reader(b"abc", 2, 4)
    with pytest.raises(ValueError):
        Reader(b"abc", 3, 2)


def test_pull_reader_splits_a_bounded_sub_cursor() -> None:
    """pull_reader(n) returns a cursor over the next n bytes and skips them in the parent."""
    r = Reader(b"\x00\x03xyzrest")
    n = r.pull_uint16()
    sub = r.pull_reader(n)
    assert sub.pull_bytes(3) == b"xyz" and sub.at_end
    assert r.pull_rest() == b"rest"


def test_pull_struct_unpacks_several_fields_at_once() -> None:
    """pull_struct unpacks a whole layout and advances by its size."""
    r = Reader(bytes.fromhex("80 0e 0080 ff"))
    assert r.pull_struct(struct.Struct(">BBH")) == (0x80, 0x0E, 0x80)
    assert r.pos == 4


def test_expect_end_reports_trailing_bytes() -> None:
    """expect_end passes at the end of the window and raises with leftovers."""
    r = Reader(b"ab")
    r.pull_uint8()
    with pytest.raises(MalformedMessage, match="1 unexpected trailing"):
        r.expect_end("thing")
    r.pull_uint8()
    r.expect_end()


def test_writer_pushes_and_back_patches_lengths() -> None:
    """A length written as a placeholder is patched after the contents are known."""
    w = Writer()
    w.push_uint8(0x21)
    at = w.tell()
    w.push_uint16(0)
    w.push_uint32(0xDEADBEEF)
    w.push_uint64(1)
    w.push_bytes(b"xy")
    w.push_struct(struct.Struct(">BH"), 7, 0x0102)
    w.patch_uint16(at, len(w))
    assert w.getvalue() == bytes.fromhex("21 0014 deadbeef 0000000000000001 7879 07 0102")
    w.patch_uint32(3, 0)
    assert w.getvalue()[3:7] == bytes(4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 2, 4, 8]), st.integers(0, 2**64 - 1)), max_size=20))
def test_writer_then_reader_round_trip(fields: list[tuple[int, int]]) -> None:
    """Whatever the Writer pushes, a Reader pulls back unchanged, then sits at the end."""
    w = Writer()
    push = {1: w.push_uint8, 2: w.push_uint16, 4: w.push_uint32, 8: w.push_uint64}
    for width, value in fields:
        push[width](value % (1 << (8 * width)))
    r = Reader(w.getvalue())
    pull = {1: r.pull_uint8, 2: r.pull_uint16, 4: r.pull_uint32, 8: r.pull_uint64}
    assert [pull[width]() for width, _ in fields] == [v % (1 << (8 * width)) for width, v in fields]
    assert r.at_end
