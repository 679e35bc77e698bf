"""SK payload protection, one object per direction (RFC 7296 §3.14; RFC 5282 for AES-GCM; RFC 7634 §3 for ChaCha20-Poly1305).

``SkProtector`` implements ``ikesim.wire.message.Protector``. Cipher key
objects are built once per SA direction; IVs come from the injected ``Rng``.
"""

from __future__ import annotations

import hmac
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.prf import IkeKeys
from ikesim.crypto.suites import INTEG_SPECS, Suite
from ikesim.errors import IntegrityCheckFailed, MalformedMessage
from ikesim.rng import Rng
from ikesim.wire.iana import EncrId

__all__ = ["SkProtector", "make_sk_protectors"]

_GCM_IV = 8
_GCM_ICV = 16
_CBC_BLOCK = 16


@lru_cache(maxsize=64)
def _op_names(encr_name: str) -> tuple[str, str]:
    """The meter's operation names for one cipher, shared by every SA direction (RFC 7296 §3.14)."""
    return f"sk_seal:{encr_name}", f"sk_open:{encr_name}"


class SkProtector:
    """Protects or unprotects SK payload bodies for one direction of one IKE_SA."""

    __slots__ = ("_aead", "_gcm", "_salt", "_cbc_key", "_integ_key", "_hash", "_icv", "_rng", "_meter", "_op_seal", "_op_open")

    def __init__(self, suite: Suite, sk_e: bytes, sk_a: bytes, rng: Rng, meter: OpCounter | None = None) -> None:
        self._aead = suite.aead
        self._rng = rng
        self._meter = meter
        self._op_seal, self._op_open = _op_names(suite.encr_name)
        if self._aead:  # AES-GCM (RFC 5282 §7.1) and ChaCha20-Poly1305 (RFC 7634 §3): key | 4-byte salt, 8-byte IV
            cipher = ChaCha20Poly1305 if suite.encr_id == EncrId.ENCR_CHACHA20_POLY1305 else AESGCM
            self._gcm = cipher(sk_e[:-4])
            self._salt = sk_e[-4:]
            self._icv = _GCM_ICV
        else:
            self._cbc_key = algorithms.AES(sk_e)  # built once; a Cipher per IV is unavoidable
            self._integ_key = sk_a
            self._hash, _, self._icv = INTEG_SPECS[suite.integ_id]

    def sealed_length(self, plaintext_length: int) -> int:
        """IV + ciphertext (plaintext, padding, Pad Length) + ICV (RFC 7296 §3.14)."""
        if self._aead:
            return _GCM_IV + plaintext_length + 1 + self._icv
        padded = (plaintext_length + 1 + _CBC_BLOCK - 1) // _CBC_BLOCK * _CBC_BLOCK
        return _CBC_BLOCK + padded + self._icv

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        """RFC 7296 §3.14 / RFC 5282 §3 / RFC 7634 §3: pad, encrypt, authenticate; return IV | ciphertext | ICV."""
        if self._meter is not None:
            self._meter.add(self._op_seal)
        if self._aead:
            iv = self._rng.bytes(_GCM_IV)
            return iv + self._gcm.encrypt(self._salt + iv, plaintext + b"\x00", aad)
        pad = (-(len(plaintext) + 1)) % _CBC_BLOCK
        iv = self._rng.bytes(_CBC_BLOCK)
        enc = Cipher(self._cbc_key, modes.CBC(iv)).encryptor()
        ct = enc.update(plaintext + bytes(pad) + bytes([pad])) + enc.finalize()
        icv = hmac.digest(self._integ_key, aad + iv + ct, self._hash)[: self._icv]
        return iv + ct + icv

    def open(self, aad: bytes, body: bytes) -> bytes:
        """RFC 7296 §3.14 / RFC 5282 §3 / RFC 7634 §3: verify the ICV, decrypt, strip the padding."""
        if self._meter is not None:
            self._meter.add(self._op_open)
        if self._aead:
            if len(body) < _GCM_IV + 1 + self._icv:
                raise MalformedMessage("SK payload too short for an AEAD")
            iv = body[:_GCM_IV]
            try:
                pt = self._gcm.decrypt(self._salt + iv, body[_GCM_IV:], aad)
            except InvalidTag:
                raise IntegrityCheckFailed("AEAD ICV mismatch") from None
        else:
            if len(body) < _CBC_BLOCK * 2 + self._icv or (len(body) - self._icv) % _CBC_BLOCK:
                raise MalformedMessage("SK payload length is not IV + whole blocks + ICV")
            ct_end = len(body) - self._icv
            expected = hmac.digest(self._integ_key, aad + body[:ct_end], self._hash)[: self._icv]
            if not hmac.compare_digest(expected, body[ct_end:]):
                raise IntegrityCheckFailed("HMAC ICV mismatch")
            dec = Cipher(self._cbc_key, modes.CBC(body[:_CBC_BLOCK])).decryptor()
            pt = dec.update(body[_CBC_BLOCK:ct_end]) + dec.finalize()
        pad = pt[-1]
        if pad + 1 > len(pt):
            raise MalformedMessage("SK Pad Length exceeds the plaintext")
        return pt[: len(pt) - pad - 1]


def make_sk_protectors(
    suite: Suite, keys: IkeKeys, initiator: bool, rng: Rng, meter: OpCounter | None = None
) -> tuple[SkProtector, SkProtector]:
    """RFC 7296 §2.14: (outbound, inbound); the original initiator sends with SK_ei/SK_ai."""
    ini = SkProtector(suite, keys.sk_ei, keys.sk_ai, rng, meter)
    res = SkProtector(suite, keys.sk_er, keys.sk_ar, rng, meter)
    return (ini, res) if initiator else (res, ini)
