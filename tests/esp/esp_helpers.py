"""Shared values for the ESP tests: every supported transform, and SA pairs with fixed keys."""

from __future__ import annotations

from ikesim.crypto.suites import Suite
from ikesim.esp import EspLimits, InboundEspSa, OutboundEspSa
from ikesim.esp.sa import INTEG_TRANSFORMS
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId, EsnId, IntegId

SPI = bytes.fromhex("c0a80001")
GCM128 = Suite(EncrId.ENCR_AES_GCM_16, 128)
GCM256 = Suite(EncrId.ENCR_AES_GCM_16, 256)
CBC256_SHA256 = Suite(EncrId.ENCR_AES_CBC, 256, IntegId.AUTH_HMAC_SHA2_256_128)


def all_suites() -> list[Suite]:
    """Every transform set the ESP SAs support: AES-GCM-16 and AES-CBC with each HMAC, each with and without ESN."""
    out = []
    for esn in (EsnId.NO_ESN, EsnId.ESN):
        out += [Suite(EncrId.ENCR_AES_GCM_16, bits, esn=esn) for bits in (128, 192, 256)]
        out += [Suite(EncrId.ENCR_AES_CBC, bits, integ, esn=esn)
                for bits in (128, 192, 256) for integ in INTEG_TRANSFORMS]
    return out


def suite_id(suite: Suite) -> str:
    """A readable test id: ``aes128gcm16-esn``, ``aes256-sha1-noesn``."""
    integ = "sha1" if suite.integ_id == IntegId.AUTH_HMAC_SHA1_96 else suite.integ_name
    return "-".join(p for p in (suite.encr_name, integ, "esn" if suite.esn == EsnId.ESN else "noesn") if p)


def keys(suite: Suite, seed: int = 7) -> tuple[bytes, bytes]:
    """Fixed encryption and integrity keys of the right sizes for *suite*."""
    rng = Rng(seed, "esp-test-keys")
    integ = INTEG_TRANSFORMS[suite.integ_id][1] if suite.integ_id in INTEG_TRANSFORMS else 0
    return rng.bytes(suite.encr_key_size), rng.bytes(integ)


def pair(suite: Suite, *, window: int = 32, seq: int = 0, limits: EspLimits | None = None,
         in_limits: EspLimits | None = None, seed: int = 7) -> tuple[OutboundEspSa, InboundEspSa]:
    """An outbound SA and the matching inbound SA (same SPI and keys)."""
    ek, ik = keys(suite, seed)
    out = OutboundEspSa(SPI, suite, ek, ik, rng=Rng(seed, "esp-test-iv"), limits=limits, seq=seq)
    inb = InboundEspSa(SPI, suite, ek, ik, window=window, limits=in_limits)
    return out, inb
