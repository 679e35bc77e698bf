"""Key exchange methods: MODP-2048, ECP-256, Curve25519 (RFC 7296 §3.4; RFC 3526; RFC 5903; RFC 8031).

Private keys are built from bytes drawn from the injected ``Rng`` so a run
is reproducible bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dh, ec, x25519

from ikesim.crypto.meter import OpCounter
from ikesim.errors import ConfigError, InvalidKeyExchangeData
from ikesim.rng import Rng
from ikesim.wire.iana import KeGroup

__all__ = ["KeyExchange", "new_key_exchange", "supported_groups", "MODP_2048_P"]

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
        """Compute g^ir from the peer's KE data."""
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


class _Ecp256:
    """RFC 5903 §7: ECP-256 (group 19); KE data is x | y, shared secret is x."""

    __slots__ = ("group", "public_bytes", "_key", "_meter")

    _N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

    def __init__(self, rng: Rng, meter: OpCounter | None) -> None:
        self.group = int(KeGroup.ECP_256)
        d = 1 + rng.below(self._N - 1)
        self._key = ec.derive_private_key(d, ec.SECP256R1())
        nums = self._key.public_key().public_numbers()
        self.public_bytes = nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")
        self._meter = meter
        if meter is not None:
            meter.add("ke_keygen:19")

    def compute_shared(self, peer: bytes) -> bytes:
        """RFC 5903 §7: ECDH on P-256; the shared secret is the x coordinate."""
        if self._meter is not None:
            self._meter.add("ke_shared:19")
        if len(peer) != 64:
            raise InvalidKeyExchangeData(f"ECP-256 public value of {len(peer)} bytes")
        try:
            pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + peer)
            return self._key.exchange(ec.ECDH(), pub)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise InvalidKeyExchangeData(f"ECP-256 point invalid: {exc}") from None


_MODP_2048_NUMBERS = dh.DHParameterNumbers(MODP_2048_P, 2)


class _Modp2048:
    """RFC 3526 §3: 2048-bit MODP (group 14); values are 256-byte big-endian.

    The private exponent (320 bits) comes from the Rng; OpenSSL does the
    modular exponentiations: g^x is computed as an "exchange" with the public
    value g, which is exactly g^x mod p.
    """

    __slots__ = ("group", "public_bytes", "_key", "_meter")

    def __init__(self, rng: Rng, meter: OpCounter | None) -> None:
        self.group = int(KeGroup.MODP_2048)
        x = rng.bits(320) | (1 << 319)
        generator = dh.DHPublicNumbers(2, _MODP_2048_NUMBERS)
        self._key = dh.DHPrivateNumbers(x, generator).private_key()
        self.public_bytes = self._key.exchange(generator.public_key()).rjust(256, b"\x00")
        self._meter = meter
        if meter is not None:
            meter.add("ke_keygen:14")

    def compute_shared(self, peer: bytes) -> bytes:
        """RFC 7296 §2.14: g^ir, left-padded to the modulus length."""
        if self._meter is not None:
            self._meter.add("ke_shared:14")
        if len(peer) != 256:
            raise InvalidKeyExchangeData(f"MODP-2048 public value of {len(peer)} bytes")
        y = int.from_bytes(peer, "big")
        if y <= 1 or y >= MODP_2048_P - 1:
            raise InvalidKeyExchangeData("MODP-2048 public value out of range")
        try:
            shared = self._key.exchange(dh.DHPublicNumbers(y, _MODP_2048_NUMBERS).public_key())
        except ValueError as exc:
            raise InvalidKeyExchangeData(f"MODP-2048 exchange failed: {exc}") from None
        return shared.rjust(256, b"\x00")


_FACTORIES: dict[int, Callable[[Rng, OpCounter | None], KeyExchange]] = {
    int(KeGroup.CURVE25519): _X25519,
    int(KeGroup.ECP_256): _Ecp256,
    int(KeGroup.MODP_2048): _Modp2048,
}


def supported_groups() -> tuple[int, ...]:
    """The key exchange groups this build implements."""
    return tuple(_FACTORIES)


def new_key_exchange(group: int, rng: Rng, meter: OpCounter | None = None) -> KeyExchange:
    """RFC 7296 §3.4: a fresh private key for *group*, drawn from *rng*."""
    factory = _FACTORIES.get(int(group))
    if factory is None:
        raise ConfigError(f"unsupported key exchange group {group}")
    return factory(rng, meter)
