"""PRF, prf+ and key derivation formulae (RFC 7296 §2.13, §2.14, §2.17, §2.18)."""

from __future__ import annotations

import hmac

import pytest

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.prf import compute_rekey_skeyseed, compute_skeyseed, derive_child_keys, derive_ike_keys, prf, prf_plus
from ikesim.crypto.suites import Suite
from ikesim.wire.iana import EncrId, IntegId, KeGroup, PrfId


@pytest.mark.parametrize("prf_id,name", [(PrfId.PRF_HMAC_SHA2_256, "sha256"), (PrfId.PRF_HMAC_SHA2_384, "sha384"),
                                         (PrfId.PRF_HMAC_SHA2_512, "sha512")])
def test_prf_plus_is_chained_hmac(prf_id: PrfId, name: str) -> None:
    """prf+ = T1|T2|... with T1 = prf(K, S|0x01), Tn = prf(K, Tn-1|S|n), truncated to the length."""
    t1 = hmac.digest(b"K", b"S\x01", name)
    t2 = hmac.digest(b"K", t1 + b"S\x02", name)
    t3 = hmac.digest(b"K", t2 + b"S\x03", name)
    n = len(t1) * 2 + 5
    assert prf_plus(prf_id, b"K", b"S", n) == (t1 + t2 + t3)[:n]
    assert prf(prf_id, b"K", b"S") == hmac.digest(b"K", b"S", name)


def test_prf_plus_refuses_more_than_255_blocks() -> None:
    """prf+ stops at 255 iterations (RFC 7296 §2.13)."""
    assert len(prf_plus(PrfId.PRF_HMAC_SHA2_256, b"K", b"S", 255 * 32)) == 255 * 32
    with pytest.raises(ValueError):
        prf_plus(PrfId.PRF_HMAC_SHA2_256, b"K", b"S", 255 * 32 + 1)


def test_skeyseed_formulae() -> None:
    """SKEYSEED = prf(Ni|Nr, g^ir); rekey SKEYSEED = prf(SK_d, g^ir|Ni|Nr)."""
    p = PrfId.PRF_HMAC_SHA2_256
    assert compute_skeyseed(p, b"ni", b"nr", b"g") == hmac.digest(b"ninr", b"g", "sha256")
    assert compute_rekey_skeyseed(p, b"skd", b"g", b"ni", b"nr") == hmac.digest(b"skd", b"gninr", "sha256")


def test_ike_key_split_order_and_sizes() -> None:
    """The seven keys are cut from prf+(SKEYSEED, Ni|Nr|SPIi|SPIr) in order d, ai, ar, ei, er, pi, pr."""
    suite = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_384_192, PrfId.PRF_HMAC_SHA2_384, KeGroup.ECP_256)
    meter = OpCounter()
    keys = derive_ike_keys(suite, b"seed", b"ni", b"nr", b"I" * 8, b"R" * 8, meter)
    km = prf_plus(PrfId.PRF_HMAC_SHA2_384, b"seed", b"ninr" + b"I" * 8 + b"R" * 8, 48 * 3 + 48 * 2 + 32 * 2)
    sizes = [48, 48, 48, 32, 32, 48, 48]
    got = [keys.sk_d, keys.sk_ai, keys.sk_ar, keys.sk_ei, keys.sk_er, keys.sk_pi, keys.sk_pr]
    assert [len(k) for k in got] == sizes and b"".join(got) == km
    assert meter.snapshot() == {"prf_plus": 1}


def test_child_keys_with_and_without_pfs() -> None:
    """KEYMAT = prf+(SK_d, [g^ir|] Ni|Nr): encr_i, integ_i, encr_r, integ_r; GCM keys carry the salt."""
    p = PrfId.PRF_HMAC_SHA2_256
    gcm = derive_child_keys(p, b"skd", Suite(EncrId.ENCR_AES_GCM_16, 128), b"ni", b"nr")
    km = prf_plus(p, b"skd", b"ninr", 40)
    assert (gcm.encr_i, gcm.integ_i, gcm.encr_r, gcm.integ_r) == (km[:20], b"", km[20:], b"")
    cbc = derive_child_keys(p, b"skd", Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128),
                            b"ni", b"nr", shared=b"gir")
    km = prf_plus(p, b"skd", b"girninr", 96)
    assert (cbc.encr_i, cbc.integ_i, cbc.encr_r, cbc.integ_r) == (km[:16], km[16:48], km[48:64], km[64:])
