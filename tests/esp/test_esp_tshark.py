"""tshark as an independent oracle: Wireshark's ESP dissector decrypts and authenticates what protect() builds.

Covers every transform without ESN (Wireshark 4.0's ESP table has no ESN column): AES-GCM-16
with 128/192/256-bit keys and AES-CBC-128/256 with each HMAC, as plain ESP in IPv4.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from esp_helpers import keys

from ikesim.crypto.suites import Suite
from ikesim.esp import OutboundEspSa, inner_ipv4
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, IntegId

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

INTEG_NAMES = {
    IntegId.AUTH_HMAC_SHA1_96: "HMAC-SHA-1-96 [RFC2404]",
    IntegId.AUTH_HMAC_SHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
    IntegId.AUTH_HMAC_SHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
    IntegId.AUTH_HMAC_SHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
}
SUITES = [Suite(EncrId.ENCR_AES_GCM_16, bits) for bits in (128, 192, 256)] + [
    Suite(EncrId.ENCR_AES_CBC, bits, integ) for bits in (128, 256) for integ in INTEG_NAMES]
SRC, DST = "192.0.2.1", "198.51.100.1"
SIZES = (28, 45, 200)


def _write_pcap(path: Path, frames: list[bytes]) -> None:
    """A classic pcap of raw IPv4 frames (link type 101)."""
    with path.open("wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101))
        for i, frame in enumerate(frames):
            f.write(struct.pack("<IIII", i, 0, len(frame), len(frame)) + frame)


def test_wireshark_decrypts_and_authenticates_every_transform(tmp_path: Path) -> None:
    """Each packet's ICV is good, padding and inner UDP/IP decode; a packet with its last byte changed is bad."""
    rows: list[str] = []
    frames: list[bytes] = []
    expected: list[list[str] | None] = []
    for k, suite in enumerate(SUITES):
        spi = (0x1000 + k).to_bytes(4, "big")
        ek, ik = keys(suite, seed=k)
        out = OutboundEspSa(spi, suite, ek, ik, rng=Rng(k, "tshark-iv"))
        encr = "AES-GCM with 16 octet ICV [RFC4106]" if suite.aead else "AES-CBC [RFC3602]"
        integ = INTEG_NAMES.get(suite.integ_id, "NULL")
        rows.append(f'"IPv4","{SRC}","{DST}","0x{spi.hex()}","{encr}","0x{ek.hex()}","{integ}",'
                    f'"{"0x" + ik.hex() if ik else ""}"')
        block = 4 if suite.aead else 16
        for seq, n in enumerate(SIZES, start=1):
            esp = out.protect(inner_ipv4("10.1.0.1", "10.2.0.1", n, ident=n))
            assert isinstance(esp, bytes)
            frames.append(inner_ipv4(SRC, DST, 20 + len(esp), proto=50)[:20] + esp)
            expected.append([f"0x{spi.hex()}", str(seq), "1", "0", str(-(n + 2) % block), "9", f"{20 + len(esp)},{n}"])
        frames.append(frames[-1][:-1] + bytes([frames[-1][-1] ^ 1]))  # the last ICV byte changed
        expected.append(None)  # its ICV fails
    conf = tmp_path / "ws"
    conf.mkdir()
    (conf / "esp_sa").write_text("\n".join(rows) + "\n")
    _write_pcap(tmp_path / "esp.pcap", frames)
    env = {"WIRESHARK_CONFIG_DIR": str(conf), "HOME": str(conf), "PATH": "/usr/bin:/bin"}
    res = subprocess.run(
        ["tshark", "-r", str(tmp_path / "esp.pcap"), "-o", "esp.enable_encryption_decode:TRUE",
         "-o", "esp.enable_authentication_check:TRUE", "-T", "fields", "-e", "esp.spi", "-e", "esp.sequence",
         "-e", "esp.icv_good", "-e", "esp.icv_bad", "-e", "esp.pad_len", "-e", "udp.dstport", "-e", "ip.len"],
        capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    got = [line.split("\t") for line in res.stdout.splitlines()]
    for row, want in zip(got, expected, strict=True):
        if want is None:
            assert row[2:4] == ["0", "1"], row  # icv_good false, icv_bad true
        else:
            assert row == want
