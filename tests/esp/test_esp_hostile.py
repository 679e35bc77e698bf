"""Hostile bytes never raise: any input to unprotect gives a drop reason, and the SA state stays put."""

from __future__ import annotations

from esp_helpers import SPI, keys, pair
from hypothesis import given, settings
from hypothesis import strategies as st

from ikesim.crypto.suites import Suite
from ikesim.esp import ALL, EspDataPlane, classify, inner_ipv4
from ikesim.rng import Rng
from ikesim.types import NATT_PORT, Address
from ikesim.wire.iana import EncrId, EsnId, IntegId

SUITES = [
    Suite(EncrId.ENCR_AES_GCM_16, 128),
    Suite(EncrId.ENCR_AES_GCM_16, 256, esn=EsnId.ESN),
    Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128),
    Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA1_96, esn=EsnId.ESN),
    Suite(EncrId.ENCR_AES_CBC, 192, IntegId.AUTH_HMAC_SHA2_512_256),
]
suites = st.sampled_from(SUITES)


@settings(max_examples=400, deadline=None)
@given(suites, st.binary(max_size=200), st.booleans())
def test_random_bytes_are_dropped(suite, data, with_spi):
    """Arbitrary bytes, with or without the SA's SPI in front: a drop reason, window and counters untouched."""
    _, inb = pair(suite)
    packet = SPI + data if with_spi else data
    out = inb.unprotect(packet)
    assert out in ALL
    assert (inb.window.top, inb.packets, inb.bytes, inb.notes) == (0, 0, 0, [])


mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("append"), st.integers(1, 40), st.integers(0, 255)),
)


@settings(max_examples=400, deadline=None)
@given(suites, st.integers(28, 300), st.lists(mutation, min_size=1, max_size=3))
def test_mutated_genuine_packets_are_dropped(suite, size, edits):
    """A real packet with bytes flipped, cut off or appended is always dropped, never accepted or raised on."""
    out, inb = pair(suite)
    packet = bytearray(out.protect(inner_ipv4("10.0.0.1", "10.0.0.2", size)))  # type: ignore[arg-type]
    original = bytes(packet)
    for kind, where, value in edits:
        if kind == "flip" and packet:
            packet[where % len(packet)] ^= value
        elif kind == "cut":
            del packet[where % (len(packet) + 1) :]
        elif kind == "append":
            packet += bytes([value]) * where
    if bytes(packet) == original:  # flips that cancelled out
        return
    assert inb.unprotect(bytes(packet)) in ALL
    assert (inb.window.top, inb.packets) == (0, 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 65535), st.sampled_from([0, 500, NATT_PORT]))
def test_data_plane_never_raises(data, src_port, dst_port):
    """EspDataPlane.unprotect and classify take any bytes from any address."""
    plane = EspDataPlane(Rng(0, "hostile"))
    suite = SUITES[2]
    ek, ik = keys(suite)
    plane.add_inbound(SPI, suite, ek, ik, peer=Address("192.0.2.1", NATT_PORT))
    src, dst = Address("203.0.113.9", src_port), Address("198.51.100.1", dst_port)
    assert classify(data, dst) in ("esp", "ike", "keepalive")
    for packet in (data, SPI + data):
        assert plane.unprotect(packet, src, dst) in ALL
    assert plane.next_event() is None
