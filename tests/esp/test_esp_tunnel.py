"""The inner IPv4 packet of tunnel mode (RFC 4303 §3.1.2, RFC 791, RFC 768)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ikesim.esp import inner_ipv4, parse_inner


def _ones_complement_sum(data: bytes) -> int:
    """RFC 1071 §4.1, word by word: the folded 16-bit one's complement sum."""
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_smallest_packet_exact_bytes():
    """28 bytes: IPv4 header (TTL 64, UDP, checksum 0x66cf) and a UDP header 9 -> 9, length 8, checksum 0."""
    pkt = inner_ipv4("10.0.0.1", "10.0.0.2", 28)
    assert pkt.hex() == "4500001c00000000401166cf0a0000010a000002" "0009000900080000"


def test_identification_and_checksum():
    """The Identification field is set and the header checksum verifies (RFC 1071: the sum is 0xFFFF)."""
    pkt = inner_ipv4("192.0.2.1", "198.51.100.7", 40, ident=0x1234)
    assert pkt[:20].hex() == "450000281234000040117c55c0000201c6336407"
    assert len(pkt) == 40
    assert _ones_complement_sum(pkt[:20]) == 0xFFFF
    assert pkt[20:28] == bytes.fromhex("0009000900140000") and pkt[28:] == bytes(12)


def test_identification_wraps_modulo_2_16():
    """A packet counter beyond 65535 wraps into the 16-bit Identification field."""
    assert inner_ipv4("10.0.0.1", "10.0.0.2", 28, ident=65536 + 5) == inner_ipv4("10.0.0.1", "10.0.0.2", 28, ident=5)
    assert inner_ipv4("10.0.0.1", "10.0.0.2", 28, ident=65536 + 5)[4:6] == b"\x00\x05"


@pytest.mark.parametrize("size", [28, 29, 200, 1400, 65535])
def test_total_length_and_parse_round_trip(size):
    """The packet has exactly *size* bytes, its Total Length says so, and parse_inner reads it back."""
    pkt = inner_ipv4("10.1.2.3", "10.4.5.6", size, ident=size)
    assert len(pkt) == size
    assert int.from_bytes(pkt[2:4], "big") == size
    assert int.from_bytes(pkt[24:26], "big") == size - 20  # UDP length
    assert parse_inner(pkt) == ("10.1.2.3", "10.4.5.6", size)


def test_other_protocol_has_zero_payload():
    """With proto 1 (ICMP) the header says 1 and everything after it is zero."""
    pkt = inner_ipv4("10.0.0.1", "10.0.0.2", 48, proto=1)
    assert pkt[9] == 1 and pkt[20:] == bytes(28)
    assert _ones_complement_sum(pkt[:20]) == 0xFFFF
    assert parse_inner(pkt) == ("10.0.0.1", "10.0.0.2", 48)


@pytest.mark.parametrize("size", [0, 27, 65536])
def test_size_out_of_range(size):
    """An inner packet is 28 .. 65535 bytes."""
    with pytest.raises(ValueError):
        inner_ipv4("10.0.0.1", "10.0.0.2", size)


def test_parse_inner_refuses_invalid_headers():
    """Too short, not version 4, IHL < 5, total length beyond the data or below the header, bad checksum."""
    good = inner_ipv4("10.0.0.1", "10.0.0.2", 60)
    assert parse_inner(good[:19]) is None
    assert parse_inner(b"\x65" + good[1:]) is None
    assert parse_inner(b"\x44" + good[1:]) is None
    assert parse_inner(good[:59]) is None  # Total Length 60 > 59 bytes
    assert parse_inner(good[:10] + bytes([good[10] ^ 1]) + good[11:]) is None
    short_total = bytearray(good)
    short_total[2:4] = (19).to_bytes(2, "big")
    assert parse_inner(bytes(short_total)) is None
    assert parse_inner(good + b"trailing") == ("10.0.0.1", "10.0.0.2", 60)  # data beyond Total Length is allowed


def test_parse_inner_reads_options():
    """A header with options (IHL 6) is valid when its checksum covers them."""
    hdr = bytearray(bytes.fromhex("46000020000000004011000001020304050607080000000000000000"))
    hdr += bytes(4)
    csum = ~_ones_complement_sum(bytes(hdr[:24])) & 0xFFFF
    hdr[10:12] = csum.to_bytes(2, "big")
    assert parse_inner(bytes(hdr)) == ("1.2.3.4", "5.6.7.8", 32)


@given(st.binary(max_size=80))
def test_parse_inner_never_raises(data):
    """Any bytes give a tuple or None."""
    out = parse_inner(data)
    assert out is None or (isinstance(out, tuple) and len(out) == 3)
