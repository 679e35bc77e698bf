"""NAT detection hashes and stateless cookies (RFC 7296 §2.23, §2.6)."""

from __future__ import annotations

import hashlib

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.natd import cookie_value, natd_hash


def test_natd_hash_is_sha1_over_spis_ip_port() -> None:
    """natd_hash = SHA-1(SPIi | SPIr | IP | Port) for IPv4 and IPv6, counted as one hash op."""
    meter = OpCounter()
    spi_i, spi_r = bytes(range(8)), bytes(8)
    v4 = natd_hash(spi_i, spi_r, "192.0.2.7", 4500, meter)
    assert v4 == hashlib.sha1(spi_i + spi_r + bytes([192, 0, 2, 7]) + b"\x11\x94").digest()
    v6 = natd_hash(spi_i, spi_r, "2001:db8::1", 500)
    assert v6 == hashlib.sha1(spi_i + spi_r + bytes.fromhex("20010db8" + "00" * 11 + "01") + b"\x01\xf4").digest()
    assert meter.counts["hash"] == 1
    assert natd_hash(spi_i, spi_r, "192.0.2.7", 4501) != v4


def test_cookie_depends_on_every_input_and_carries_secret_version() -> None:
    """Cookie = version(secret) | SHA-256(Ni | IPi | SPIi | secret): deterministic, input-sensitive."""
    base = cookie_value(b"s1", b"N" * 32, "10.0.0.1", b"I" * 8)
    assert len(base) == 36 and base == cookie_value(b"s1", b"N" * 32, "10.0.0.1", b"I" * 8)
    assert base[4:] == hashlib.sha256(b"N" * 32 + bytes([10, 0, 0, 1]) + b"I" * 8 + b"s1").digest()
    variants = [
        cookie_value(b"s2", b"N" * 32, "10.0.0.1", b"I" * 8),
        cookie_value(b"s1", b"M" * 32, "10.0.0.1", b"I" * 8),
        cookie_value(b"s1", b"N" * 32, "10.0.0.2", b"I" * 8),
        cookie_value(b"s1", b"N" * 32, "10.0.0.1", b"J" * 8),
    ]
    assert all(v != base for v in variants)
    assert variants[0][:4] != base[:4] and variants[1][:4] == base[:4]
