"""ChaCha20-Poly1305 in the SK payload and in ESP: RFC 7634 Appendix A (ESP) and Appendix B (IKEv2) examples."""

from __future__ import annotations

import pytest

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.sk import SkProtector
from ikesim.crypto.suites import Suite, parse_proposal
from ikesim.errors import IntegrityCheckFailed
from ikesim.esp import InboundEspSa, OutboundEspSa
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, ProtocolId, TransformType

CHACHA = Suite(EncrId.ENCR_CHACHA20_POLY1305, 0)
KEY = bytes.fromhex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f" "a0a1a2a3")
"""RFC 7634 Appendix A/B: the 32-byte key followed by the 4-byte salt (KEYMAT / SK_e is 36 bytes, §4)."""
IV = bytes.fromhex("1011121314151617")


class _FixedIv:
    """An Rng stand-in that hands out the RFC's IV."""

    def bytes(self, n: int) -> bytes:
        assert n == 8
        return IV


def test_ikev2_example_rfc7634_appendix_b() -> None:
    """SK payload of an INFORMATIONAL: AAD = IKE header | SK header; the plaintext gets a Pad Length of 0."""
    aad = bytes.fromhex("c0c1c2c3c4c5c6c7d0d1d2d3d4d5d6d7" "2e202500000000090000004529000029")
    notify = bytes.fromhex("0000000c000040010000000a")
    meter = OpCounter()
    sk = SkProtector(CHACHA, KEY, b"", _FixedIv(), meter)  # type: ignore[arg-type]
    body = sk.seal(aad, notify)
    assert body.hex() == "1011121314151617" "610394701f8d017f7c129248896b71bfe25236efd7cdc67066906315b2"
    assert sk.sealed_length(len(notify)) == len(body) == 8 + 13 + 16
    assert sk.open(aad, body) == notify
    with pytest.raises(IntegrityCheckFailed, match="AEAD ICV mismatch"):
        sk.open(aad[:-1] + b"\x28", body)
    assert meter.snapshot() == {"sk_seal:chacha20poly1305": 1, "sk_open:chacha20poly1305": 2}


ESP_PLAIN = bytes.fromhex(
    "45000054a6f200004001e778c6336405c0000205" "08005b7a3a080000553bec100007362708090a0b0c0d0e0f1011121314151617"
    "18191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637")
"""RFC 7634 Appendix A: the inner packet (an ICMP echo request); padding 01 02, Pad Length 2, Next Header 4 follow."""
ESP_CIPHER = bytes.fromhex(
    "24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c614ee8099d52844eb61aa95dfab4c02f7"
    "2aa71e7c4c4f64c9befe2facc638e8f3cbec163fac469b502773f6fb94e664da9165b82829f641e076aaa8266b7fb0f7"
    "b11b369907e1ad43")


def test_esp_example_rfc7634_appendix_a() -> None:
    """SPI 0x01020304, sequence number 5, IV 0x1011..17: the packet is header | IV | ciphertext | tag, bit for bit."""
    out = OutboundEspSa(bytes.fromhex("01020304"), CHACHA, KEY, b"", rng=Rng(0), seq=4)
    packet = out.protect(ESP_PLAIN, iv=IV)
    assert packet == bytes.fromhex("0102030400000005") + IV + ESP_CIPHER
    inbound = InboundEspSa(bytes.fromhex("01020304"), CHACHA, KEY, b"")
    assert inbound.unprotect(packet) == (4, ESP_PLAIN)


def test_esp_chacha_round_trip_with_counter_iv() -> None:
    """Without a pinned IV the 64-bit sequence number is the IV (RFC 7634 §2); every packet decrypts in order."""
    out = OutboundEspSa(b"\x00\x00\x10\x01", CHACHA, KEY, b"", rng=Rng(0))
    inbound = InboundEspSa(b"\x00\x00\x10\x01", CHACHA, KEY, b"")
    for n in range(1, 4):
        packet = out.protect(bytes(range(n * 10)))
        assert isinstance(packet, bytes) and packet[8:16] == n.to_bytes(8, "big")
        assert inbound.unprotect(packet) == (4, bytes(range(n * 10)))


def test_chacha_suite_sizes_names_and_wire() -> None:
    """Transform id 28 without a Key Length attribute (RFC 7634 §2); 36 key bytes; strongSwan and Wireshark names."""
    spec = parse_proposal("chacha20poly1305-prfsha256-x25519", ProtocolId.IKE)
    (encr, *_rest) = spec.to_wire(1, ProtocolId.IKE, b"").transforms
    assert (encr.transform_type, encr.transform_id, encr.attributes) == (TransformType.ENCR, 28, ())
    assert (CHACHA.aead, CHACHA.encr_key_size, CHACHA.integ_key_size, CHACHA.encr_name) == (
        True, 36, 0, "chacha20poly1305")
    assert (CHACHA.wireshark_esp_encr, CHACHA.wireshark_esp_integ) == ("ChaCha20 with Poly1305 [RFC7634]", "NULL")
    assert CHACHA.wireshark_ike_encr == ""  # Wireshark's IKEv2 table has no ChaCha20 (4.0 and master)
