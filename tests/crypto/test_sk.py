"""SK payload protection edge cases (RFC 7296 §3.14, RFC 5282 §3)."""

from __future__ import annotations

import hmac

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.prf import IkeKeys, prf_plus
from ikesim.crypto.sk import SkProtector, make_sk_protectors
from ikesim.crypto.suites import Suite
from ikesim.errors import IntegrityCheckFailed, MalformedMessage
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, IntegId, KeGroup, PrfId

GCM = Suite(EncrId.ENCR_AES_GCM_16, 256)
CBC = Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128)
KE, KA = bytes(range(36)), bytes(range(100, 132))


def test_gcm_layout_matches_rfc5282() -> None:
    """GCM body = 8-byte IV | AES-GCM(salt|IV, plaintext|0x00, aad); salt = last 4 key bytes."""
    body = SkProtector(GCM, KE, b"", Rng(1)).seal(b"AAD", b"hello")
    iv = body[:8]
    assert iv == Rng(1).bytes(8)
    assert AESGCM(KE[:32]).decrypt(KE[32:] + iv, body[8:], b"AAD") == b"hello\x00"


def test_cbc_layout_matches_rfc7296() -> None:
    """CBC body = 16-byte IV | AES-CBC(plaintext|pad|padlen) | HMAC-SHA-256 truncated to 16 over aad|IV|ct."""
    p = SkProtector(CBC, KE[:16], KA, Rng(2))
    body = p.seal(b"AAD", b"x" * 20)
    assert len(body) == 16 + 32 + 16
    dec = Cipher(algorithms.AES(KE[:16]), modes.CBC(body[:16])).decryptor()
    pt = dec.update(body[16:48]) + dec.finalize()
    assert pt[:20] == b"x" * 20 and pt[-1] == 11
    assert body[48:] == hmac.digest(KA, b"AAD" + body[:48], "sha256")[:16]


@pytest.mark.parametrize("suite,body", [
    (GCM, bytes(24)),            # shorter than IV + pad length + ICV
    (CBC, bytes(16 + 16)),       # IV and ICV only, no cipher block
    (CBC, bytes(16 + 20 + 16)),  # ciphertext not a whole number of blocks
])
def test_bad_lengths_are_malformed(suite: Suite, body: bytes) -> None:
    """Bodies of impossible length raise MalformedMessage before any decryption."""
    with pytest.raises(MalformedMessage):
        SkProtector(suite, KE[: suite.encr_key_size], KA, Rng(3)).open(b"", body)


def test_pad_length_beyond_plaintext_is_malformed() -> None:
    """A correctly authenticated body whose Pad Length exceeds the plaintext raises MalformedMessage."""
    iv = bytes(16)
    enc = Cipher(algorithms.AES(KE[:16]), modes.CBC(iv)).encryptor()
    ct = enc.update(bytes(15) + b"\x40") + enc.finalize()
    body = iv + ct + hmac.digest(KA, b"A" + iv + ct, "sha256")[:16]
    p = SkProtector(CBC, KE[:16], KA, Rng(4))
    with pytest.raises(MalformedMessage):
        p.open(b"A", body)
    with pytest.raises(IntegrityCheckFailed):
        p.open(b"B", body)


SUITES = [
    Suite(EncrId.ENCR_AES_GCM_16, 128, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519),
    Suite(EncrId.ENCR_AES_GCM_16, 256, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519),
    Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128, PrfId.PRF_HMAC_SHA2_256, KeGroup.MODP_2048),
    Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_384_192, PrfId.PRF_HMAC_SHA2_384, KeGroup.ECP_256),
    Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_512_256, PrfId.PRF_HMAC_SHA2_512, KeGroup.ECP_256),
]


@pytest.mark.parametrize("suite", SUITES, ids=lambda s: s.text)
def test_sk_round_trip_tamper_and_determinism(suite: Suite) -> None:
    """Seal/open round-trips for every length, sealed_length is exact, tampering fails, IVs are seeded."""
    km = prf_plus(PrfId.PRF_HMAC_SHA2_256, b"k" * 32, b"seed", 400)
    keys = IkeKeys(km[:32], km[32:32 + suite.integ_key_size], km[32:32 + suite.integ_key_size],
                   km[100:100 + suite.encr_key_size], km[140:140 + suite.encr_key_size], b"", b"")
    meter = OpCounter()
    out_i, in_i = make_sk_protectors(suite, keys, True, Rng(9, "i"), meter)
    out_r, in_r = make_sk_protectors(suite, keys, False, Rng(9, "r"))
    aad = b"H" * 32
    for n in (0, 1, 15, 16, 17, 100):
        body = out_i.seal(aad, bytes(range(n)))
        assert len(body) == out_i.sealed_length(n)
        assert in_r.open(aad, body) == bytes(range(n))
        with pytest.raises(IntegrityCheckFailed):
            in_r.open(aad[:-1] + b"X", body)
    assert meter.counts[f"sk_seal:{suite.encr_name}"] == 6
    again = SkProtector(suite, keys.sk_ei, keys.sk_ai, Rng(9, "i")).seal(aad, b"x")
    assert again == SkProtector(suite, keys.sk_ei, keys.sk_ai, Rng(9, "i")).seal(aad, b"x")
