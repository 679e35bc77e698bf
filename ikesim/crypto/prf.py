"""PRF, prf+ and IKEv2 key derivation (RFC 7296 §2.13, §2.14, §2.17, §2.18)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.suites import PRF_HASHES, Suite

__all__ = [
    "IkeKeys",
    "ChildKeys",
    "prf",
    "prf_plus",
    "compute_skeyseed",
    "compute_rekey_skeyseed",
    "derive_ike_keys",
    "derive_child_keys",
]


@dataclass(frozen=True, slots=True)
class IkeKeys:
    """The seven IKE_SA keys (RFC 7296 §2.14); never in the repr."""

    sk_d: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)
    sk_ei: bytes = field(repr=False)
    sk_er: bytes = field(repr=False)
    sk_pi: bytes = field(repr=False)
    sk_pr: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ChildKeys:
    """CHILD_SA keying material per direction (RFC 7296 §2.17); GCM keys include the salt. Never in the repr."""

    encr_i: bytes = field(repr=False)
    integ_i: bytes = field(repr=False)
    encr_r: bytes = field(repr=False)
    integ_r: bytes = field(repr=False)


def prf(prf_id: int, key: bytes, data: bytes, meter: OpCounter | None = None) -> bytes:
    """RFC 7296 §2.13: prf(K, S) with HMAC-SHA1 or HMAC-SHA2 (RFC 2104, RFC 4868 §2.1)."""
    if meter is not None:
        meter.add("prf")
    return hmac.digest(key, data, PRF_HASHES[prf_id][0])


_HASHES = {"sha1": hashes.SHA1(), "sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}
_OCTETS = [bytes([n]) for n in range(256)]


def prf_plus(prf_id: int, key: bytes, seed: bytes, length: int, meter: OpCounter | None = None) -> bytes:
    """RFC 7296 §2.13: prf+ (K,S) = T1 | T2 | ... with Tn = prf(K, Tn-1 | S | n).

    The HMAC is keyed once and copied per block: the key schedule is the same for every Tn.
    """
    if meter is not None:
        meter.add("prf_plus")
    name, size = PRF_HASHES[prf_id]
    blocks = -(-length // size)
    if blocks > 255:
        raise ValueError("prf+ cannot produce that much keying material")
    keyed = HMAC(key, _HASHES[name])
    out = []
    t = b""
    for n in range(1, blocks + 1):
        h = keyed.copy()
        h.update(t + seed + _OCTETS[n])
        t = h.finalize()
        out.append(t)
    return b"".join(out)[:length]


def compute_skeyseed(
    prf_id: int, nonce_i: bytes, nonce_r: bytes, shared: bytes, meter: OpCounter | None = None
) -> bytes:
    """RFC 7296 §2.14: SKEYSEED = prf(Ni | Nr, g^ir)."""
    return prf(prf_id, nonce_i + nonce_r, shared, meter)


def compute_rekey_skeyseed(
    prf_id: int, old_sk_d: bytes, shared: bytes, nonce_i: bytes, nonce_r: bytes,
    meter: OpCounter | None = None,
) -> bytes:
    """RFC 7296 §2.18: SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)."""
    return prf(prf_id, old_sk_d, shared + nonce_i + nonce_r, meter)


def derive_ike_keys(
    suite: Suite, skeyseed: bytes, nonce_i: bytes, nonce_r: bytes, spi_i: bytes, spi_r: bytes,
    meter: OpCounter | None = None,
) -> IkeKeys:
    """RFC 7296 §2.14: {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)."""
    assert suite.prf_id is not None
    p, a, e = suite.prf_key_size, suite.integ_key_size, suite.encr_key_size
    km = prf_plus(suite.prf_id, skeyseed, nonce_i + nonce_r + spi_i + spi_r, 3 * p + 2 * a + 2 * e, meter)
    o = 0
    parts = []
    for size in (p, a, a, e, e, p, p):
        parts.append(km[o : o + size])
        o += size
    return IkeKeys(*parts)


def derive_child_keys(
    prf_id: int, sk_d: bytes, child_suite: Suite, nonce_i: bytes, nonce_r: bytes,
    shared: bytes | None = None, meter: OpCounter | None = None,
) -> ChildKeys:
    """RFC 7296 §2.17: KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr); initiator->responder keys first."""
    e, a = child_suite.encr_key_size, child_suite.integ_key_size
    seed = (shared or b"") + nonce_i + nonce_r
    km = prf_plus(prf_id, sk_d, seed, 2 * (e + a), meter)
    return ChildKeys(km[:e], km[e : e + a], km[e + a : 2 * e + a], km[2 * e + a :])
