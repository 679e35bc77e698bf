"""Key exchange methods: MODP-2048..8192, ECP-256/384/521, brainpool, Curve25519/448 (RFC 7296 §3.4; RFC 3526; RFC 5903;
RFC 6954; RFC 8031) and ML-KEM-512/768/1024 (draft-ietf-ipsecme-ikev2-mlkem-08 §2; ``ikesim.crypto.mlkem``).

Private keys are built from bytes drawn from the injected ``Rng`` so a run
is reproducible bit for bit. ``new_key_exchange`` is the initiator's side
(for ML-KEM: ek out, decapsulation in); ``respond_key_exchange`` the
responder's, for any method (for ML-KEM: encapsulation to the peer's ek).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dh, ec, x448, x25519

from ikesim.crypto import mlkem
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.modp_primes import MODP_PRIMES
from ikesim.errors import ConfigError, InvalidKeyExchangeData
from ikesim.rng import Rng
from ikesim.wire.iana import KeGroup

__all__ = ["KeyExchange", "new_key_exchange", "respond_key_exchange", "key_exchange_from_private", "supported_groups",
           "MODP_2048_P"]

MODP_2048_P = int(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF",
    16,
)
"""RFC 3526 §3: the 2048-bit MODP group prime (generator 2)."""


class KeyExchange(Protocol):
    """One side of a key exchange."""

    group: int
    public_bytes: bytes

    def compute_shared(self, peer: bytes) -> bytes:
        """Compute g^ir from the peer's KE data (for ML-KEM: decapsulate the responder's ciphertext)."""
        ...


class _X25519:
    """RFC 8031: Curve25519 (group 31)."""

    __slots__ = ("group", "public_bytes", "_key", "_meter")

    def __init__(self, rng: Rng, meter: OpCounter | None) -> None:
        self.group = int(KeGroup.CURVE25519)
        self._key = x25519.X25519PrivateKey.from_private_bytes(rng.bytes(32))
        self.public_bytes = self._key.public_key().public_bytes_raw()
        self._meter = meter
        if meter is not None:
            meter.add("ke_keygen:31")

    def compute_shared(self, peer: bytes) -> bytes:
        """RFC 8031 §2: X25519(d, peer); an all-zero result is rejected."""
        if self._meter is not None:
            self._meter.add("ke_shared:31")
        if len(peer) != 32:
            raise InvalidKeyExchangeData(f"x25519 public value of {len(peer)} bytes")
        try:
            shared = self._key.exchange(x25519.X25519PublicKey.from_public_bytes(peer))
        except ValueError as exc:
            raise InvalidKeyExchangeData(f"x25519 exchange failed: {exc}") from None
        return shared


class _X448:
    """RFC 8031: Curve448 (group 32); KE data and shared secret are 56 raw little-endian bytes (RFC 7748 §5)."""

    __slots__ = ("group", "public_bytes", "_key", "_meter")

    def __init__(self, rng: Rng, meter: OpCounter | None, private: bytes | None = None) -> None:
        self.group = int(KeGroup.CURVE448)
        self._key = x448.X448PrivateKey.from_private_bytes(rng.bytes(56) if private is None else private)
        self.public_bytes = self._key.public_key().public_bytes_raw()
        self._meter = meter
        if meter is not None:
            meter.add("ke_keygen:32")

    def compute_shared(self, peer: bytes) -> bytes:
        """RFC 8031 §2: X448(d, peer); an all-zero result is rejected."""
        if self._meter is not None:
            self._meter.add("ke_shared:32")
        if len(peer) != 56:
            raise InvalidKeyExchangeData(f"x448 public value of {len(peer)} bytes")
        try:
            return self._key.exchange(x448.X448PublicKey.from_public_bytes(peer))
        except ValueError as exc:
            raise InvalidKeyExchangeData(f"x448 exchange failed: {exc}") from None


_ECP_CURVES: dict[int, tuple[ec.EllipticCurve, int, int, str]] = {
    int(KeGroup.ECP_256): (ec.SECP256R1(), 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551, 32,
                           "ECP-256"),
    int(KeGroup.ECP_384): (ec.SECP384R1(), int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973", 16), 48,
        "ECP-384"),
    int(KeGroup.ECP_521): (ec.SECP521R1(), int(
        "1" + "F" * 65 + "A51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409", 16), 66, "ECP-521"),
    int(KeGroup.ECP_256_BP): (ec.BrainpoolP256R1(), int(
        "A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7", 16), 32, "ECP-256-BP"),
    int(KeGroup.ECP_384_BP): (ec.BrainpoolP384R1(), int(
        "8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7CF3AB6AF6B7FC3103B883202E9046565", 16), 48,
        "ECP-384-BP"),
    int(KeGroup.ECP_512_BP): (ec.BrainpoolP512R1(), int(
        "AADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870553E5C414CA92619418661197FAC10471DB1D381085DDADDB"
        "58796829CA90069", 16), 64, "ECP-512-BP"),
}
"""Group -> (curve, group order n, coordinate bytes, name): RFC 5903 §3.1-3.3; brainpool RFC 6954 §2 (RFC 5639)."""


class _Ecp:
    """RFC 5903 §7: ECP-256/384/521 (groups 19, 20, 21) and, encoded alike (RFC 6954 §3), the brainpool curves
    (groups 28, 29, 30); KE data is x | y, each coordinate the field's length, the shared secret the x coordinate."""

    __slots__ = ("group", "public_bytes", "_key", "_meter", "_size", "_curve", "_name", "_ops")

    def __init__(self, group: int, rng: Rng, meter: OpCounter | None, private: int | None = None) -> None:
        self.group = group
        self._curve, n, self._size, self._name = _ECP_CURVES[group]
        d = 1 + rng.below(n - 1) if private is None else private
        self._key = ec.derive_private_key(d, self._curve)
        nums = self._key.public_key().public_numbers()
        self.public_bytes = nums.x.to_bytes(self._size, "big") + nums.y.to_bytes(self._size, "big")
        self._meter = meter
        self._ops = (f"ke_keygen:{group}", f"ke_shared:{group}")
        if meter is not None:
            meter.add(self._ops[0])

    def compute_shared(self, peer: bytes) -> bytes:
        """RFC 5903 §7: ECDH on the group's curve; the shared secret is the x coordinate (§9: checked on the curve)."""
        if self._meter is not None:
            self._meter.add(self._ops[1])
        if len(peer) != 2 * self._size:
            raise InvalidKeyExchangeData(f"{self._name} public value of {len(peer)} bytes")
        try:
            pub = ec.EllipticCurvePublicKey.from_encoded_point(self._curve, b"\x04" + peer)
            return self._key.exchange(ec.ECDH(), pub)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyExchangeData(f"{self._name} point invalid: {exc}") from None


_MODP: dict[int, tuple[dh.DHParameterNumbers, int, int]] = {
    int(KeGroup.MODP_2048): (dh.DHParameterNumbers(MODP_2048_P, 2), 256, 320),
    **{g: (dh.DHParameterNumbers(prime, 2), prime.bit_length() // 8, bits) for g, (prime, bits) in MODP_PRIMES.items()},
}
"""Group -> (parameters, value bytes, private exponent bits): 320 for group 14 (ikesim's draw since its first
version), strongSwan's ``exp_len`` for 15-18."""


class _Modp:
    """RFC 3526 §3-§7: MODP groups 14-18 (2048-8192 bits); values are big-endian, the modulus' length.

    The private exponent comes from the Rng (its top bit set); OpenSSL does the
    modular exponentiations: g^x is computed as an "exchange" with the public
    value g, which is exactly g^x mod p.
    """

    __slots__ = ("group", "public_bytes", "_key", "_meter", "_numbers", "_size", "_name", "_ops")

    def __init__(self, group: int, rng: Rng, meter: OpCounter | None) -> None:
        self.group = group
        self._numbers, self._size, bits = _MODP[group]
        self._name = f"MODP-{self._size * 8}"
        x = rng.bits(bits) | (1 << (bits - 1))
        generator = dh.DHPublicNumbers(2, self._numbers)
        self._key = dh.DHPrivateNumbers(x, generator).private_key()
        self.public_bytes = self._key.exchange(generator.public_key()).rjust(self._size, b"\x00")
        self._meter = meter
        self._ops = (f"ke_keygen:{group}", f"ke_shared:{group}")
        if meter is not None:
            meter.add(self._ops[0])

    def compute_shared(self, peer: bytes) -> bytes:
        """RFC 7296 §2.14: g^ir, left-padded to the modulus length."""
        if self._meter is not None:
            self._meter.add(self._ops[1])
        if len(peer) != self._size:
            raise InvalidKeyExchangeData(f"{self._name} public value of {len(peer)} bytes")
        y = int.from_bytes(peer, "big")
        if y <= 1 or y >= self._numbers.p - 1:
            raise InvalidKeyExchangeData(f"{self._name} public value out of range")
        try:
            shared = self._key.exchange(dh.DHPublicNumbers(y, self._numbers).public_key())
        except ValueError as exc:
            raise InvalidKeyExchangeData(f"{self._name} exchange failed: {exc}") from None
        return shared.rjust(self._size, b"\x00")


_FACTORIES: dict[int, Callable[[Rng, OpCounter | None], KeyExchange]] = {
    int(KeGroup.CURVE25519): _X25519,
    int(KeGroup.ECP_256): partial(_Ecp, int(KeGroup.ECP_256)),
    **{g: partial(_Modp, g) for g in _MODP},
    int(KeGroup.ECP_384): partial(_Ecp, int(KeGroup.ECP_384)),
    int(KeGroup.ECP_521): partial(_Ecp, int(KeGroup.ECP_521)),
    **{g: partial(_Ecp, g) for g in (int(KeGroup.ECP_256_BP), int(KeGroup.ECP_384_BP), int(KeGroup.ECP_512_BP))},
    int(KeGroup.CURVE448): _X448,
    **{g: partial(mlkem.MlKemInitiator, g) for g in mlkem.MLKEM_GROUPS},
}


def supported_groups() -> tuple[int, ...]:
    """The key exchange groups this build implements."""
    return tuple(_FACTORIES)


def new_key_exchange(group: int, rng: Rng, meter: OpCounter | None = None) -> KeyExchange:
    """RFC 7296 §3.4: a fresh private key for *group*, drawn from *rng* (ML-KEM: the seed d || z, FIPS 203 §7.1)."""
    factory = _FACTORIES.get(int(group))
    if factory is None:
        raise ConfigError(f"unsupported key exchange group {group}")
    return factory(rng, meter)


def respond_key_exchange(group: int, rng: Rng, meter: OpCounter | None, peer: bytes) -> tuple[bytes, bytes]:
    """RFC 7296 §1.2, RFC 9370 §2.2, draft-ietf-ipsecme-ikev2-mlkem-08 §2.1: the responder's (KE data, shared secret)."""
    g = int(group)
    if g in mlkem.MLKEM_GROUPS:  # the ek checks, then encapsulation with m drawn from rng: (ciphertext, K)
        return mlkem.respond(g, rng, meter, peer)
    mine = new_key_exchange(g, rng, meter)  # the same draws, in the same order, as a responder's two calls
    return mine.public_bytes, mine.compute_shared(peer)


def key_exchange_from_private(group: int, private: bytes, meter: OpCounter | None = None) -> KeyExchange:
    """RFC 5903 §8 / RFC 7748 §6 / FIPS 203 §7.1: a key exchange from a private key (KATs); ECP big-endian, ML-KEM d || z."""
    g = int(group)
    if g in mlkem.MLKEM_GROUPS:
        return mlkem.MlKemInitiator(g, Rng(0, "unused"), meter, private)
    if g in _ECP_CURVES:
        return _Ecp(g, Rng(0, "unused"), meter, int.from_bytes(private, "big"))
    if g == int(KeGroup.CURVE448):
        return _X448(Rng(0, "unused"), meter, private)
    raise ConfigError(f"no known-answer constructor for key exchange group {group}")
