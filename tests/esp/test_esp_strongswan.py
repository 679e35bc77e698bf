"""ESP against strongSwan ground truth: tests/vectors/strongswan/esp_synthetic_real_keys.pcap and keys/esp_sa.

The 12 ESP-in-UDP packets (tunnel mode, ICMP inside) were built with the CHILD_SA keys of
two strongSwan 5.9.8 daemons; tshark verified every ICV (tests/vectors/README.md).
"""

from __future__ import annotations

import pytest
from vectors import key_table, read_pcap, require_vectors

from ikesim.crypto.suites import Suite
from ikesim.esp import EspDataPlane, InboundEspSa, OutboundEspSa, parse_inner
from ikesim.rng import Rng
from ikesim.types import Address
from ikesim.wire.iana import EncrId, IntegId

ESP_GCM = Suite(EncrId.ENCR_AES_GCM_16, 128)
ESP_CBC = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128)


@pytest.fixture(scope="module")
def vec():
    """(packets, SPI -> (suite, encryption key, integrity key)) from the capture and Wireshark's ESP table."""
    d = require_vectors()
    sas = {}
    for row in key_table(d / "keys" / "esp_sa"):
        spi = bytes.fromhex(row[3][2:])
        gcm = "GCM" in row[4]
        sas[spi] = (ESP_GCM if gcm else ESP_CBC, bytes.fromhex(row[5][2:]), b"" if gcm else bytes.fromhex(row[7][2:]))
    packets = [p for p in read_pcap(d / "esp_synthetic_real_keys.pcap") if p.is_esp]
    return packets, sas


def test_all_twelve_packets_decrypt_with_the_icv_checked(vec):
    """Each packet passes the ICV, has next header 4 and a 48-byte IPv4 packet between the two peers inside."""
    packets, sas = vec
    assert len(packets) == 12 and len(sas) == 6
    inbound = {spi: InboundEspSa(spi, suite, ek, ik) for spi, (suite, ek, ik) in sas.items()}
    seqs = []
    for p in packets:
        sa = inbound[p.payload[:4]]
        nh, inner = sa.unprotect(p.payload)  # type: ignore[misc]
        assert nh == 4
        assert parse_inner(inner) == (p.src_ip, p.dst_ip, 48)
        assert inner[9] == 1  # ICMP
        seqs.append(sa.window.top)
    assert seqs == [1, 2] * 6
    assert sorted((sa.packets, sa.bytes) for sa in inbound.values()) == [(2, 96)] * 6


def test_a_changed_byte_fails_the_icv(vec):
    """The same packets with their last byte changed are refused (the check is real)."""
    packets, sas = vec
    for p in packets:
        suite, ek, ik = sas[p.payload[:4]]
        bad = p.payload[:-1] + bytes([p.payload[-1] ^ 0x80])
        assert InboundEspSa(p.payload[:4], suite, ek, ik).unprotect(bad) == "icv_failure"


def test_reprotecting_gives_the_same_bytes(vec):
    """Same keys, SPI, IV and sequence number: our protect() reproduces every packet byte for byte."""
    packets, sas = vec
    same = 0
    for p in packets:
        spi, seq = p.payload[:4], int.from_bytes(p.payload[4:8], "big")
        suite, ek, ik = sas[spi]
        _, inner = InboundEspSa(spi, suite, ek, ik).unprotect(p.payload)  # type: ignore[misc]
        out = OutboundEspSa(spi, suite, ek, ik, rng=Rng(0), seq=seq - 1)
        iv = p.payload[8:16] if suite.aead else p.payload[8:24]
        assert out.protect(inner, iv=iv) == p.payload
        same += 1
    assert same == 12


def test_data_plane_receives_the_capture(vec):
    """Through EspDataPlane with the capture's addresses (NAT-T ports): every packet in, no peer moved."""
    packets, sas = vec
    planes: dict[str, EspDataPlane] = {}
    for p in packets:
        plane = planes.setdefault(p.dst_ip, EspDataPlane(Rng(0, p.dst_ip)))
        spi = p.payload[:4]
        if plane.inbound(spi) is None:
            suite, ek, ik = sas[spi]
            plane.add_inbound(spi, suite, ek, ik, peer=Address(p.src_ip, p.src_port))
        out = plane.unprotect(p.payload, Address(p.src_ip, p.src_port), Address(p.dst_ip, p.dst_port))
        assert not isinstance(out, str) and parse_inner(out[0]) == (p.src_ip, p.dst_ip, 48)
    assert sorted(planes) == ["127.0.0.1", "127.0.0.2"]
    assert all(plane.next_event() is None for plane in planes.values())
