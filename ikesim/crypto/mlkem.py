"""ML-KEM-512/768/1024 as IKEv2 key exchange methods 35-37 (FIPS 203; draft-ietf-ipsecme-ikev2-mlkem-08 §2).

The initiator's KE data is the encapsulation key ek, the responder's the
ciphertext c, the shared secret the 32-byte K, used like g^ir (draft §2,
§2.1 Table 1). Every random input comes from the injected ``Rng``:

- key generation: the 64-byte seed d || z (FIPS 203 §7.1, Algorithm 16),
  expanded by ``cryptography`` (OpenSSL) for ML-KEM-768/1024;
- encapsulation: the 32-byte m of FIPS 203 Algorithm 17, through
  ``kyber-py``'s ``_encaps_internal`` (``cryptography``'s ``encapsulate()``
  draws m itself, so a run would not be reproducible);
- decapsulation needs no randomness: ``cryptography`` for ML-KEM-768/1024.

``cryptography`` has no ML-KEM-512: ``kyber-py`` does all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import mlkem
from kyber_py.ml_kem import ML_KEM_512, ML_KEM_768, ML_KEM_1024

from ikesim.crypto.meter import OpCounter
from ikesim.errors import InvalidKeyExchangeData
from ikesim.rng import Rng
from ikesim.wire.iana import KeGroup

__all__ = ["MLKEM_GROUPS", "MlKemParams", "MlKemInitiator", "encapsulate", "modulus_ok", "respond"]

SEED_SIZE = 64
"""FIPS 203 §7.1: the key generation seed d || z."""
M_SIZE = 32
"""FIPS 203 Algorithm 17: the encapsulation randomness m."""


@dataclass(frozen=True, slots=True)
class MlKemParams:
    """One parameter set: its name, k (FIPS 203 §8 Table 2), ek and ciphertext sizes (draft §2.1 Table 1)."""

    name: str
    k: int
    ek_size: int
    ct_size: int
    kyber: Any
    """The ``kyber_py.ml_kem`` parameter-set object (encapsulation; all of ML-KEM-512)."""
    openssl: Any
    """``cryptography``'s private key class (key generation, decapsulation), None for ML-KEM-512."""


MLKEM_GROUPS: dict[int, MlKemParams] = {
    int(KeGroup.ML_KEM_512): MlKemParams("ML-KEM-512", 2, 800, 768, ML_KEM_512, None),
    int(KeGroup.ML_KEM_768): MlKemParams("ML-KEM-768", 3, 1184, 1088, ML_KEM_768, mlkem.MLKEM768PrivateKey),
    int(KeGroup.ML_KEM_1024): MlKemParams("ML-KEM-1024", 4, 1568, 1568, ML_KEM_1024, mlkem.MLKEM1024PrivateKey),
}
"""Group -> parameter set: IANA Transform Type 4 IDs 35-37 (draft §4)."""


class MlKemInitiator:
    """The side that sends ek (the initiator's KEi) and decapsulates the peer's ciphertext (draft §2.1)."""

    __slots__ = ("group", "public_bytes", "_params", "_dk", "_meter", "_op")

    def __init__(self, group: int, rng: Rng, meter: OpCounter | None, seed: bytes | None = None) -> None:
        self.group = group
        self._params = p = MLKEM_GROUPS[group]
        seed = rng.bytes(SEED_SIZE) if seed is None else seed
        if p.openssl is not None:
            self._dk: Any = p.openssl.from_seed_bytes(seed)
            self.public_bytes: bytes = self._dk.public_key().public_bytes_raw()
        else:
            self.public_bytes, self._dk = p.kyber.key_derive(seed)
        self._meter = meter
        self._op = f"ke_shared:{group}"
        if meter is not None:
            meter.add(f"ke_keygen:{group}")

    def compute_shared(self, peer: bytes) -> bytes:
        """FIPS 203 §7.3 (Algorithm 21): the ciphertext type check, then Decaps (implicit rejection, §6.3)."""
        p = self._params
        if len(peer) != p.ct_size:
            raise InvalidKeyExchangeData(f"{p.name} ciphertext of {len(peer)} bytes, expected {p.ct_size}")
        if self._meter is not None:
            self._meter.add(self._op)
        if p.openssl is not None:
            return bytes(self._dk.decapsulate(peer))
        return bytes(p.kyber.decaps(self._dk, peer))


def modulus_ok(params: MlKemParams, ek: bytes) -> bool:
    """FIPS 203 §7.2 modulus check: every 12-bit coefficient of ek[0:384k] is below q = 3329."""
    body = ek[: 384 * params.k]
    for i in range(0, len(body), 3):
        b0, b1, b2 = body[i], body[i + 1], body[i + 2]
        if (b0 | (b1 & 0x0F) << 8) >= 3329 or (b1 >> 4 | b2 << 4) >= 3329:
            return False
    return True


def encapsulate(group: int, ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """FIPS 203 §7.2 input checks, then Algorithm 17 with the given m: (ciphertext, K)."""
    p = MLKEM_GROUPS[group]
    if len(ek) != p.ek_size:
        raise InvalidKeyExchangeData(f"{p.name} encapsulation key of {len(ek)} bytes, expected {p.ek_size}")
    if not modulus_ok(p, ek):
        raise InvalidKeyExchangeData(f"{p.name} encapsulation key fails the FIPS 203 modulus check")
    if len(m) != M_SIZE:
        raise ValueError(f"ML-KEM encapsulation randomness of {len(m)} bytes")
    key, ct = p.kyber._encaps_internal(ek, m)
    return bytes(ct), bytes(key)


def respond(group: int, rng: Rng, meter: OpCounter | None, peer: bytes) -> tuple[bytes, bytes]:
    """Draft §2.1-2.2: the responder checks the initiator's ek and encapsulates to it with m from *rng*: (c, K)."""
    # m is drawn before the checks, so the draws never depend on the peer's data (as for a Diffie-Hellman
    # responder, whose key is drawn before the peer's value is checked)
    m = rng.bytes(M_SIZE)
    ct, key = encapsulate(group, peer, m)
    if meter is not None:
        meter.add(f"ke_encaps:{group}")
    return ct, key
