"""Per-operation cost calibration of the crypto primitives on this machine.

Outside the sans-IO core (it reads the clock). ``measure_op_costs()`` times
each operation name that ``ikesim.crypto`` counts on its ``OpCounter`` and
returns median seconds (ML-KEM: OpenSSL's cost, what a gateway pays, not
the pure-Python encapsulation ikesim runs for reproducibility; see
``_mlkem_costs``); ``crypto_floor(counts, costs)`` turns a run's counts
into the time the crypto alone would take: the floor a simulation's wall
time is compared against.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial

from cryptography.hazmat.primitives.asymmetric import mlkem

from ikesim.crypto.auth import make_ca, sign_auth, verify_auth
from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.mlkem import MLKEM_GROUPS
from ikesim.crypto.natd import natd_hash
from ikesim.crypto.prf import prf, prf_plus
from ikesim.crypto.sk import SkProtector
from ikesim.crypto.suites import Suite
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, IntegId, PrfId

__all__ = ["measure_op_costs", "crypto_floor", "calibration_table"]

_MSG = bytes(200)
"""A typical SK plaintext size for rekey and informational messages."""


def _median(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def _mlkem_costs(rng: Rng, repeat: int) -> dict[str, float]:
    """FIPS 203 key generation, encapsulation and decapsulation (``ke_keygen``/``ke_encaps``/``ke_shared`` of 35-37)."""
    # ML-KEM-768/1024: OpenSSL through cryptography (its encapsulate() draws its own m, the same work as FIPS 203
    # Algorithm 17 on a given m). ML-KEM-512, which cryptography lacks: OpenSSL's ML-KEM-768 cost times kyber-py's
    # 512/768 cost ratio, both measured here (kyber-py, pure Python, is about 100x slower than OpenSSL).
    costs: dict[str, float] = {}
    seed = rng.bytes(64)
    for group, cls in ((36, mlkem.MLKEM768PrivateKey), (37, mlkem.MLKEM1024PrivateKey)):
        key = cls.from_seed_bytes(seed)
        pub = key.public_key()
        ct = pub.encapsulate()[1]
        costs[f"ke_keygen:{group}"] = _median(lambda c=cls: c.from_seed_bytes(seed).public_key().public_bytes_raw(), repeat)
        costs[f"ke_encaps:{group}"] = _median(pub.encapsulate, repeat)
        costs[f"ke_shared:{group}"] = _median(partial(key.decapsulate, ct), repeat)
    ops: dict[int, list[Callable[[], object]]] = {}
    for group in (35, 36):
        kem = MLKEM_GROUPS[group].kyber
        ek, dk = kem.key_derive(seed)
        ct = kem._encaps_internal(ek, seed[:32])[1]
        ops[group] = [partial(kem.key_derive, seed), partial(kem._encaps_internal, ek, seed[:32]),
                      partial(kem.decaps, dk, ct)]
    for op, small, large in zip(("ke_keygen", "ke_encaps", "ke_shared"), ops[35], ops[36], strict=True):
        # one call of each in turn, so both see the same load on a shared machine; milliseconds each
        ratios = [_median(small, 1) / _median(large, 1) for _ in range(max(3, repeat // 10))]
        costs[f"{op}:35"] = costs[f"{op}:36"] * statistics.median(ratios)
    return costs


def measure_op_costs(repeat: int = 200) -> dict[str, float]:
    """Median seconds per counted operation name (``ke_keygen:31``, ``sk_seal:aes256gcm16``, ...)."""
    rng = Rng(0, "calibration")
    costs: dict[str, float] = {}
    for group in (14, 15, 16, 17, 18, 19, 20, 21, 28, 29, 30, 31, 32):
        reps = max(10, repeat // 10) if 14 <= group <= 18 else repeat  # MODP: milliseconds each
        peer = new_key_exchange(group, rng.child("peer")).public_bytes
        costs[f"ke_keygen:{group}"] = _median(partial(new_key_exchange, group, rng), reps)
        kex = new_key_exchange(group, rng)
        costs[f"ke_shared:{group}"] = _median(partial(kex.compute_shared, peer), reps)
    costs.update(_mlkem_costs(rng.child("mlkem"), repeat))
    key = bytes(32)
    costs["prf"] = _median(lambda: prf(PrfId.PRF_HMAC_SHA2_256, key, bytes(64)), repeat)
    costs["prf_plus"] = _median(lambda: prf_plus(PrfId.PRF_HMAC_SHA2_256, key, bytes(80), 160), repeat)
    costs["hash"] = _median(lambda: natd_hash(bytes(8), bytes(8), "10.0.0.1", 500), repeat)
    aad = bytes(32)
    sk_suites = [Suite(EncrId.ENCR_AES_GCM_16, bits) for bits in (128, 192, 256)]
    sk_suites.append(Suite(EncrId.ENCR_CHACHA20_POLY1305, 0))
    sk_suites += [Suite(EncrId.ENCR_AES_CBC, bits, IntegId.AUTH_HMAC_SHA2_256_128) for bits in (128, 192, 256)]
    for suite in sk_suites:
        p = SkProtector(suite, bytes(suite.encr_key_size), bytes(suite.integ_key_size), rng)
        body = p.seal(aad, _MSG)
        costs[f"sk_seal:{suite.encr_name}"] = _median(partial(p.seal, aad, _MSG), repeat)
        costs[f"sk_open:{suite.encr_name}"] = _median(partial(p.open, aad, body), repeat)
    for alg in ("ecdsa", "ed25519"):
        priv, cert = make_ca(rng.child(alg), "calibration", alg)
        _m, sig = sign_auth(priv, _MSG)
        costs[f"sign:{alg}"] = _median(partial(sign_auth, priv, _MSG), repeat)
        costs[f"verify:{alg}"] = _median(partial(verify_auth, 14, sig, _MSG, cert.public_key()), repeat)
    return costs


def crypto_floor(counts: dict[str, int], costs: dict[str, float]) -> float:
    """Seconds the counted operations cost: sum(count * cost); unknown names raise KeyError."""
    return sum(n * costs[op] for op, n in counts.items())


def calibration_table(repeat: int = 200) -> dict[str, object]:
    """A JSON-ready calibration table for ``ikesim.sim.cpu``: this machine's costs and where they were measured."""
    import platform
    from importlib.metadata import version

    import cryptography

    return {
        "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(), "cryptography": cryptography.__version__, "kyber-py": version("kyber-py"),
        "unit": "seconds per operation (median)",
        "costs": {k: v for k, v in sorted(measure_op_costs(repeat).items())},
    }
