"""Crypto cost calibration covers every op name the crypto layer counts."""

from __future__ import annotations

from ikesim.calibration import crypto_floor, measure_op_costs
from ikesim.crypto.auth import make_ca, psk_auth, sign_auth, verify_auth
from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.natd import natd_hash
from ikesim.crypto.prf import derive_ike_keys
from ikesim.crypto.sk import SkProtector
from ikesim.crypto.suites import Suite
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, IntegId, KeGroup, PrfId


def test_costs_cover_every_counted_op_and_floor_sums() -> None:
    """Every op name a metered workload produces has a positive measured cost; the floor is sum(count*cost)."""
    meter, rng = OpCounter(), Rng(1)
    for g in (14, 19, 31):
        a, b = new_key_exchange(g, rng, meter), new_key_exchange(g, rng)
        a.compute_shared(b.public_bytes)
    for suite in (Suite(EncrId.ENCR_AES_GCM_16, 128), Suite(EncrId.ENCR_AES_GCM_16, 256),
                  Suite(EncrId.ENCR_AES_CBC, 128, IntegId.AUTH_HMAC_SHA2_256_128),
                  Suite(EncrId.ENCR_AES_CBC, 192, IntegId.AUTH_HMAC_SHA2_384_192),
                  Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128)):
        p = SkProtector(suite, bytes(suite.encr_key_size), bytes(suite.integ_key_size), rng, meter)
        p.open(b"", p.seal(b"", b"x"))
    ike = Suite(EncrId.ENCR_AES_GCM_16, 128, prf_id=PrfId.PRF_HMAC_SHA2_256, ke_group=KeGroup.CURVE25519)
    derive_ike_keys(ike, bytes(32), b"n", b"n", bytes(8), bytes(8), meter)
    psk_auth(PrfId.PRF_HMAC_SHA2_256, b"k", b"o", meter)
    natd_hash(bytes(8), bytes(8), "10.0.0.1", 500, meter)
    for alg in ("ecdsa", "ed25519"):
        key, cert = make_ca(rng, "CA", alg)
        _, sig = sign_auth(key, b"o", meter)
        verify_auth(14, sig, b"o", cert.public_key(), meter)
    costs = measure_op_costs(repeat=3)
    counts = meter.snapshot()
    assert set(counts) <= set(costs) and all(c > 0 for c in costs.values())
    assert crypto_floor(counts, costs) == sum(n * costs[op] for op, n in counts.items())
    assert crypto_floor({"prf": 3}, {"prf": 0.5}) == 1.5 and crypto_floor({}, costs) == 0
