"""One host's ESP data plane: SAD, outbound SA per policy, events (RFC 4301 §4.4, RFC 3948)."""

from __future__ import annotations

import pytest
from esp_helpers import CBC256_SHA256, GCM128, keys

from ikesim.esp import (
    ESP_PORT,
    ICV_FAILURE,
    MALFORMED,
    NO_SA,
    SA_EXPIRED,
    UNKNOWN_SPI,
    EspDataPlane,
    EspLimitReached,
    EspLimits,
    EspPeerMoved,
    classify,
    inner_ipv4,
)
from ikesim.rng import Rng
from ikesim.types import NATT_PORT, Address, Datagram

GW = Address("198.51.100.1", NATT_PORT)
CLIENT = Address("192.0.2.10", NATT_PORT)
NATTED = Address("203.0.113.5", 61000)
SPI_A, SPI_B = bytes.fromhex("aa000001"), bytes.fromhex("bb000002")
INNER = inner_ipv4("10.1.0.1", "10.2.0.1", 64)
POLICY = ("conn", "child")


def planes(suite=GCM128, *, src=CLIENT, dst=GW, limits=None, window=32):
    """A client plane sending with SPI_A to a gateway plane that has SPI_A inbound from *src*."""
    ek, ik = keys(suite)
    client, gw = EspDataPlane(Rng(1, "client"), replay_window=window), EspDataPlane(Rng(1, "gw"), replay_window=window)
    client.set_outbound(POLICY, SPI_A, suite, ek, ik, src=src, dst=dst, limits=limits)
    gw.add_inbound(SPI_A, suite, ek, ik, peer=src, limits=limits)
    return client, gw


def test_classify():
    """RFC 3948 §2.2/§2.3: port 0 is ESP; on 4500 0xFF is a keepalive, a zero marker IKE, the rest ESP."""
    esp = Address("198.51.100.1", ESP_PORT)
    assert ESP_PORT == 0
    assert classify(b"\x00\x00\x00\x00anything", esp) == "esp"
    assert classify(b"\xff", GW) == "keepalive"
    assert classify(b"\x00\x00\x00\x00" + bytes(28), GW) == "ike"
    assert classify(SPI_A + bytes(40), GW) == "esp"
    assert classify(b"\xff\xff", GW) == "esp"
    assert classify(b"", GW) == "esp"
    assert classify(bytes(28), Address("198.51.100.1", 500)) == "ike"
    assert classify(b"\xff", Address("198.51.100.1", 500)) == "ike"


def test_protect_gives_a_datagram_with_the_policy_addresses():
    """UDP-encapsulated (port 4500): the datagram's data is the ESP packet itself, no non-ESP marker."""
    client, gw = planes()
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    assert (dg.src, dg.dst) == (CLIENT, GW)
    assert dg.data[:4] == SPI_A and dg.data[4:8] == (1).to_bytes(4, "big")
    assert classify(dg.data, dg.dst) == "esp"
    inner, sa = gw.unprotect(dg.data, dg.src, dg.dst)  # type: ignore[misc]
    assert inner == INNER and sa is gw.inbound(SPI_A) and sa.packets == 1


def test_plain_esp_uses_port_zero():
    """Port 0 on both ends: plain ESP, protocol 50."""
    src, dst = Address("192.0.2.10", ESP_PORT), Address("198.51.100.1", ESP_PORT)
    client, gw = planes(src=src, dst=dst)
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram) and (dg.src.port, dg.dst.port) == (0, 0)
    assert gw.unprotect(dg.data, dg.src, dg.dst)[0] == INNER  # type: ignore[index]


def test_no_sa_and_clear_outbound():
    """A policy without an outbound SA drops with NO_SA; clear_outbound takes the SA away."""
    client, _ = planes()
    assert client.protect(("other", "child"), INNER) == NO_SA
    client.clear_outbound(POLICY)
    assert client.outbound(POLICY) is None
    assert client.protect(POLICY, INNER) == NO_SA
    client.clear_outbound(POLICY)  # twice: nothing


def test_set_outbound_replaces_the_sa():
    """A rekey installs a new outbound SA: its SPI on the wire, its own sequence numbers from 1."""
    client, gw = planes()
    client.protect(POLICY, INNER)
    client.protect(POLICY, INNER)
    ek, ik = keys(GCM128, seed=9)
    new = client.set_outbound(POLICY, SPI_B, GCM128, ek, ik, src=CLIENT, dst=GW)
    assert client.outbound(POLICY) is new
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram) and dg.data[:8] == SPI_B + (1).to_bytes(4, "big")
    assert gw.unprotect(dg.data, dg.src, dg.dst) == UNKNOWN_SPI
    gw.add_inbound(SPI_B, GCM128, ek, ik, peer=CLIENT)
    assert gw.unprotect(dg.data, dg.src, dg.dst)[0] == INNER  # type: ignore[index]


def test_move_outbound_keeps_the_sa():
    """MOBIKE / NAT: new addresses, same SA and sequence numbers."""
    client, _ = planes()
    sa = client.outbound(POLICY)
    client.protect(POLICY, INNER)
    moved = Address("192.0.2.99", NATT_PORT)
    client.move_outbound(POLICY, moved, GW)
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram) and dg.src == moved and dg.data[4:8] == (2).to_bytes(4, "big")
    assert client.outbound(POLICY) is sa
    client.move_outbound(("no", "such"), moved, GW)  # a policy without an SA: nothing


def test_expire_marks_inbound_and_outbound_by_spi():
    """expire(spi) expires the inbound SA with that SPI and every outbound SA sending with it."""
    client, gw = planes()
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    gw.expire(SPI_A)
    client.expire(SPI_A)
    assert gw.unprotect(dg.data, dg.src, dg.dst) == SA_EXPIRED
    assert client.protect(POLICY, INNER) == SA_EXPIRED
    client.expire(SPI_B)  # unknown: nothing
    gw.expire(SPI_B)


def test_expire_follows_rebinding():
    """After a policy moved to another SPI, expiring the old SPI leaves the new SA alone."""
    client, _ = planes()
    ek, ik = keys(GCM128, seed=9)
    client.set_outbound(POLICY, SPI_B, GCM128, ek, ik, src=CLIENT, dst=GW)
    client.expire(SPI_A)
    assert isinstance(client.protect(POLICY, INNER), Datagram)
    client.expire(SPI_B)
    assert client.protect(POLICY, INNER) == SA_EXPIRED


def test_remove_inbound():
    """A removed SA's packets are UNKNOWN_SPI; removing twice is harmless."""
    client, gw = planes()
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    gw.remove_inbound(SPI_A)
    gw.remove_inbound(SPI_A)
    assert gw.inbound(SPI_A) is None
    assert gw.unprotect(dg.data, dg.src, dg.dst) == UNKNOWN_SPI


def test_short_data_is_malformed_or_unknown():
    """Under 4 bytes there is no SPI (MALFORMED); a known SPI with a short body is the SA's MALFORMED."""
    _, gw = planes()
    assert gw.unprotect(b"\xaa\x00\x00", CLIENT, GW) == MALFORMED
    assert gw.unprotect(SPI_A, CLIENT, GW) == MALFORMED
    assert gw.unprotect(SPI_B + bytes(60), CLIENT, GW) == UNKNOWN_SPI


def test_peer_moved_for_udp_encapsulated_sa():
    """RFC 3948: a packet that passes the ICV from a new source moves the peer and says so, once."""
    client, gw = planes()
    client.move_outbound(POLICY, NATTED, GW)  # the client's NAT rebound
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    assert gw.unprotect(dg.data, dg.src, dg.dst)[0] == INNER  # type: ignore[index]
    assert gw.next_event() == EspPeerMoved(SPI_A, CLIENT, NATTED)
    assert gw.next_event() is None
    assert gw.inbound(SPI_A).peer == NATTED  # type: ignore[union-attr]
    dg2 = client.protect(POLICY, INNER)
    assert isinstance(dg2, Datagram)
    gw.unprotect(dg2.data, dg2.src, dg2.dst)
    assert gw.next_event() is None


def test_peer_not_moved_by_a_forgery_or_plain_esp():
    """A packet failing the ICV from a new source moves nothing; plain ESP SAs never report a move."""
    client, gw = planes()
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    forged = dg.data[:-1] + bytes([dg.data[-1] ^ 1])
    assert gw.unprotect(forged, NATTED, GW) == ICV_FAILURE
    assert gw.next_event() is None and gw.inbound(SPI_A).peer == CLIENT  # type: ignore[union-attr]
    src, dst = Address("192.0.2.10", ESP_PORT), Address("198.51.100.1", ESP_PORT)
    c2, g2 = planes(src=src, dst=dst)
    dg = c2.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    assert g2.unprotect(dg.data, Address("192.0.2.77", ESP_PORT), dst)[0] == INNER  # type: ignore[index]
    assert g2.next_event() is None


def test_limit_events_in_order():
    """Soft then hard limit notes come out of next_event() in order, for both directions."""
    limits = EspLimits(soft_packets=2, hard_packets=3)
    client, gw = planes(limits=limits)
    dgs = [client.protect(POLICY, INNER) for _ in range(4)]
    assert dgs[3] == SA_EXPIRED
    assert [client.next_event() for _ in range(3)] == [
        EspLimitReached(SPI_A, False, False, "packets"), EspLimitReached(SPI_A, False, True, "packets"), None]
    for dg in dgs[:3]:
        assert isinstance(dg, Datagram)
        gw.unprotect(dg.data, dg.src, dg.dst)
    assert [gw.next_event() for _ in range(3)] == [
        EspLimitReached(SPI_A, True, False, "packets"), EspLimitReached(SPI_A, True, True, "packets"), None]


def test_outbound_iv_streams_are_deterministic_and_leave_the_parent_alone():
    """Same seed, same datagrams; CBC IVs come from child streams, so the plane's own stream is not drawn."""
    a, _ = planes(CBC256_SHA256)
    b, _ = planes(CBC256_SHA256)
    da, db = a.protect(POLICY, INNER), b.protect(POLICY, INNER)
    assert da == db and isinstance(da, Datagram)
    parent = Rng(1, "client")
    plane = EspDataPlane(parent)
    ek, ik = keys(CBC256_SHA256)
    plane.set_outbound(POLICY, SPI_A, CBC256_SHA256, ek, ik, src=CLIENT, dst=GW)
    plane.protect(POLICY, INNER)
    assert parent.bytes(16) == Rng(1, "client").bytes(16)


def test_add_inbound_uses_the_plane_window():
    """Every inbound SA gets the plane's replay window size (0: anti-replay off)."""
    client, gw = planes(window=0)
    dg = client.protect(POLICY, INNER)
    assert isinstance(dg, Datagram)
    assert gw.inbound(SPI_A).window.size == 0  # type: ignore[union-attr]
    assert gw.unprotect(dg.data, dg.src, dg.dst)[0] == INNER  # type: ignore[index]
    assert gw.unprotect(dg.data, dg.src, dg.dst)[0] == INNER  # type: ignore[index]  # a replay passes


@pytest.mark.parametrize("suite", [GCM128, CBC256_SHA256])
def test_two_planes_talk_both_ways(suite):
    """Each side sends with the other's inbound SPI; 50 packets each way arrive in order."""
    ek, ik = keys(suite)
    ek2, ik2 = keys(suite, seed=11)
    c, g = EspDataPlane(Rng(3, "c")), EspDataPlane(Rng(3, "g"))
    c.set_outbound("p", SPI_A, suite, ek, ik, src=CLIENT, dst=GW)
    g.add_inbound(SPI_A, suite, ek, ik, peer=CLIENT)
    g.set_outbound("p", SPI_B, suite, ek2, ik2, src=GW, dst=CLIENT)
    c.add_inbound(SPI_B, suite, ek2, ik2, peer=GW)
    for i in range(50):
        inner = inner_ipv4("10.1.0.1", "10.2.0.1", 28 + i, ident=i)
        up, down = c.protect("p", inner), g.protect("p", inner)
        assert isinstance(up, Datagram) and isinstance(down, Datagram)
        assert g.unprotect(up.data, up.src, up.dst)[0] == inner  # type: ignore[index]
        assert c.unprotect(down.data, down.src, down.dst)[0] == inner  # type: ignore[index]
    assert c.outbound("p").seq == g.outbound("p").seq == 50  # type: ignore[union-attr]
