"""Exporters: IPv4/UDP framing, the libpcap file parsed back, Wireshark key-table lines."""

from __future__ import annotations

import csv
import ipaddress
import os
import stat
import struct
from pathlib import Path

import pytest
from vectors import require_vectors

from ikesim.ike import events as ev
from ikesim.metrics.export import (
    PCAP_EPOCH,
    esp_sa_lines,
    esp_wireshark_names,
    ikev2_decryption_lines,
    ipv4_fragments,
    ipv4_udp_packet,
    write_pcap,
    write_secret,
)
from ikesim.types import Address


def _ones_sum(data: bytes) -> int:
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


@pytest.mark.parametrize(("sport", "dport", "marker"), [(500, 500, b""), (4500, 4500, b"\0\0\0\0"),
                                                        (1500, 4500, b"\0\0\0\0")])
def test_ipv4_udp_packet_headers(sport: int, dport: int, marker: bytes) -> None:
    """RFC 791/768 headers: lengths, TTL, protocol 17, addresses, a valid header checksum, the RFC 3948 marker."""
    payload = bytes(range(37))
    pkt = ipv4_udp_packet(Address("192.0.2.1", sport), Address("198.51.100.7", dport), payload, 0x1_2345)
    ihl_ver, _tos, total, ident, frag, ttl, proto, _csum, src, dst = struct.unpack(">BBHHHBBH4s4s", pkt[:20])
    assert (ihl_ver, total, ident, frag, ttl, proto) == (0x45, len(pkt), 0x2345, 0, 64, 17)
    assert _ones_sum(pkt[:20]) == 0xFFFF
    assert (str(ipaddress.IPv4Address(src)), str(ipaddress.IPv4Address(dst))) == ("192.0.2.1", "198.51.100.7")
    assert struct.unpack(">HHHH", pkt[20:28]) == (sport, dport, 8 + len(marker) + len(payload), 0)
    assert pkt[28:] == marker + payload
    assert len(pkt) == 28 + len(marker) + len(payload)


def test_pcap_parses_back_with_fixed_epoch(tmp_path: Path) -> None:
    """Classic libpcap, LINKTYPE_RAW; ts = 2026-01-01 + simulated time (µs); one record per datagram."""
    a, b = Address("10.0.0.1"), Address("10.0.0.2")
    recs = [(1, 0.0, a, b, b"x" * 10), (2, 1.5, b, a, b"y" * 300), (3, 86400.0000015, a, b, b"z")]
    f = tmp_path / "c.pcap"
    write_pcap(f, recs)
    data = f.read_bytes()
    magic, major, minor, zone, sigfigs, snap, link = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, zone, sigfigs, snap, link) == (0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    assert PCAP_EPOCH == 1767225600  # 2026-01-01T00:00:00Z
    off, got = 24, []
    while off < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        pkt = data[off + 16:off + 16 + incl]
        got.append((sec - PCAP_EPOCH, usec, incl == orig == len(pkt), pkt[28:]))
        off += 16 + incl
    assert off == len(data)
    assert got == [(0, 0, True, b"x" * 10), (1, 500000, True, b"y" * 300), (86400, 2, True, b"z")]


def test_pcap_of_a_run_has_one_record_per_datagram_including_lost(tmp_path: Path) -> None:
    """Every datagram, lost or not, is in the capture at its send time."""
    from ikesim.ike.config import Connection, Credentials, DaemonConfig
    from ikesim.sim.simulation import Simulation

    psk = Credentials(psk=b"pcap-test-psk-0123456")
    sim = Simulation(seed=3)
    sim.add_node(DaemonConfig("c", (Address("10.0.0.1"),), (
        Connection(name="v", local_id="c@x.test", remote_id="g@x.test", remote_addr=Address("10.0.0.2"),
                   credentials=psk),)))
    sim.add_node(DaemonConfig("g", (Address("10.0.0.2"),), (Connection(name="v", local_id="g@x.test",
                                                                        credentials=psk),)))
    sim.add_link("c", "g", delay=0.01, loss=0.4)
    sim.schedule(0.0, "c", "initiate", connection="v")
    r = sim.run(120.0)
    r.write(tmp_path)
    data = (tmp_path / "capture.pcap").read_bytes()
    off, times = 24, []
    while off < len(data):
        sec, usec, incl, _orig = struct.unpack("<IIII", data[off:off + 16])
        times.append(sec - PCAP_EPOCH + usec / 1e6)
        off += 16 + incl
    assert len(times) == len(r.packets) and (r.packets["fate"] == "lost").sum() > 0
    assert times == pytest.approx(r.packets["time_sent"].tolist(), abs=1e-6)


def test_ikev2_decryption_lines_have_the_strongswan_table_shape(tmp_path: Path) -> None:
    """Our lines parse like Wireshark's own table from strongSwan: 8 fields, quoted names, one per IKE_SA."""
    from metrics_helpers import scripted_run

    r = scripted_run(until=100.0)
    est = [e for _t, _n, e in r.raw_events if isinstance(e, ev.IkeSaEstablished)]
    lines = ikev2_decryption_lines(est)
    assert len(est) == 4 and len(lines) == 2  # both nodes report each IKE_SA once
    ours = list(csv.reader(lines))
    theirs = [row for row in csv.reader((require_vectors() / "keys" / "ikev2_decryption_table").read_text().splitlines())
              if row and not row[0].startswith("#")]
    assert {len(row) for row in theirs} == {len(row) for row in ours} == {8}
    assert {row[4] for row in theirs if "GCM" in row[4]} >= {"AES-GCM-128 with 16 octet ICV [RFC5282]"}
    first = list({(e.spi_i, e.spi_r): e for e in reversed(est)}.values())[::-1]
    for row, e in zip(ours, first, strict=True):
        assert row == [e.spi_i.hex(), e.spi_r.hex(), e.sk_ei.hex(), e.sk_er.hex(),
                       "AES-GCM-256 with 16 octet ICV [RFC5282]", "", "", "NONE [RFC4306]"]
        assert len(row[2]) == 2 * (32 + 4)
    assert all(line.count('"') == 4 for line in lines)


def test_esp_sa_lines_one_per_direction() -> None:
    """Each CHILD_SA gives two esp_sa lines (out: local->peer with spi_out, in: peer->local with spi_in)."""
    e = ev.ChildSaInstalled(
        spi_i=b"\1" * 8, spi_r=b"\2" * 8, connection="v", child="net", spi_in=b"\xaa" * 4, spi_out=b"\xbb" * 4,
        initiator=True, encr="aes128", integ="sha256", pfs_group="none", local_ts="", remote_ts="", outbound=True, rekey_of=None,
        rekey_of_out=None, rekey_at=None, expire_at=None, local=Address("10.0.0.1"), peer=Address("10.0.0.2"),
        encr_key_in=b"\x01" * 16, integ_key_in=b"\x02" * 32, encr_key_out=b"\x03" * 16, integ_key_out=b"\x04" * 32)
    lines = esp_sa_lines([(e, *esp_wireshark_names(e.encr, e.integ)), (e, "x", "y")])
    assert lines == [
        f'"IPv4","10.0.0.1","10.0.0.2","0xbbbbbbbb","AES-CBC [RFC3602]","0x{"03" * 16}",'
        f'"HMAC-SHA-256-128 [RFC4868]","0x{"04" * 32}"',
        f'"IPv4","10.0.0.2","10.0.0.1","0xaaaaaaaa","AES-CBC [RFC3602]","0x{"01" * 16}",'
        f'"HMAC-SHA-256-128 [RFC4868]","0x{"02" * 32}"',
    ]
    theirs = [row for row in csv.reader((require_vectors() / "keys" / "esp_sa").read_text().splitlines())
              if row and not row[0].startswith("#")]
    assert {len(row) for row in theirs} == {len(row) for row in csv.reader(lines)} == {8}


@pytest.mark.parametrize(("encr", "integ", "names"), [
    ("aes256gcm16", "", ("AES-GCM with 16 octet ICV [RFC4106]", "NULL")),
    ("aes128gcm12", "", ("AES-GCM with 12 octet ICV [RFC4106]", "NULL")),
    ("aes128gcm8", "", ("AES-GCM with 8 octet ICV [RFC4106]", "NULL")),
    ("aes256", "sha384", ("AES-CBC [RFC3602]", "HMAC-SHA-384-192 [RFC4868]")),
    ("aes128", "sha512", ("AES-CBC [RFC3602]", "HMAC-SHA-512-256 [RFC4868]")),
])
def test_esp_wireshark_names(encr: str, integ: str, names: tuple[str, str]) -> None:
    """strongSwan ESP transform names map to Wireshark's esp_sa algorithm names."""
    assert esp_wireshark_names(encr, integ) == names


def test_results_without_events_still_build() -> None:
    """An empty run gives empty tables with their columns and a zeroed summary."""
    from metrics_helpers import results_of

    r = results_of([], name="e", seed=1, run=2, duration=5.0)
    assert len(r.events) == len(r.exchanges) == len(r.sas) == len(r.packets) == 0
    assert {"time_sent", "fate", "time_delivered", "exchange"} <= set(r.packets.columns)
    assert r.summary["datagrams"]["sent"] == 0 and r.summary["rekeys"] == {"child": 0, "ike": 0}


def test_ipv4_fragments_follow_rfc_791() -> None:
    """A 1000-byte payload on MTU 576 on port 4500: fragments of 572 and 480 IP bytes, one ID, MF, offsets 0 and 69."""
    a, b = Address("10.0.0.1", 4500), Address("10.0.0.2", 4500)
    payload = bytes(range(256)) * 3 + bytes(232)
    frags = ipv4_fragments(a, b, payload, 0x1_0007, 576)
    whole = ipv4_udp_packet(a, b, payload, 0x1_0007)
    assert [len(f) for f in frags] == [20 + 552, 20 + 1012 - 552]
    fields = [struct.unpack(">HHH", f[2:8]) for f in frags]
    assert fields == [(572, 0x0007, 0x2000 | 0), (480, 0x0007, 552 // 8)]
    assert all(_ones_sum(f[:20]) == 0xFFFF for f in frags)
    assert all(f[12:20] == whole[12:20] and f[9] == 17 for f in frags)
    assert b"".join(f[20:] for f in frags) == whole[20:]  # reassembled: the unfragmented UDP datagram
    assert ipv4_fragments(a, b, payload, 7, 1500) == [ipv4_udp_packet(a, b, payload, 7)]


def test_write_pcap_writes_a_fragmented_datagram_as_its_fragments(tmp_path: Path) -> None:
    """A datagram id with a recorded MTU becomes its fragments, all at the send time; the others stay whole."""
    a, b = Address("10.0.0.1"), Address("10.0.0.2")
    f = tmp_path / "c.pcap"
    write_pcap(f, [(1, 0.5, a, b, b"x" * 1600), (2, 1.0, b, a, b"y" * 10)], {1: 1500})
    data, off, got = f.read_bytes(), 24, []
    while off < len(data):
        sec, usec, incl, _orig = struct.unpack("<IIII", data[off:off + 16])
        got.append((sec - PCAP_EPOCH, usec, incl, struct.unpack(">H", data[off + 16 + 6:off + 16 + 8])[0]))
        off += 16 + incl
    assert got == [(0, 500000, 1500, 0x2000), (0, 500000, 20 + 8 + 1600 - 1480, 1480 // 8), (1, 0, 38, 0)]


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_write_secret_creates_mode_0600_whatever_the_umask(tmp_path: Path, umask: int) -> None:
    """Key tables are created 0600 (owner only), also over an existing 0644 file, whose text is replaced."""
    old = os.umask(umask)
    try:
        write_secret(tmp_path / "new", "k1\n")
        (tmp_path / "old").write_text("previous table, longer than the new one\n")
        os.chmod(tmp_path / "old", 0o644)
        write_secret(tmp_path / "old", "k2\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "old").st_mode) == 0o600
    assert (tmp_path / "new").read_text() == "k1\n" and (tmp_path / "old").read_text() == "k2\n"
