"""Shared helpers for the wire tests: capture names and two ``Protector`` implementations."""

from __future__ import annotations

import hmac

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ikesim.errors import IntegrityCheckFailed, MalformedMessage

REKEY_CAPTURE = "ike_gcm_cbc_rekey.pcap"
CHILDFAIL_CAPTURE = "childfail/ike_port500_childfail.pcap"
SCAPY_CAPTURE = "scapy_sa_init_vs_strongswan.pcap"
CAPTURES = (REKEY_CAPTURE, CHILDFAIL_CAPTURE, SCAPY_CAPTURE)


class XorProtector:
    """A toy ``Protector``: XOR "cipher" and a 16-byte ICV (a keyed BLAKE2 of aad || ciphertext).

    Records every ``aad`` it seals so tests can check the framing. Its ICV
    really covers the aad, so a changed header is detected on ``open``.
    """

    ICV = 16

    def __init__(self, key: int = 0x5A) -> None:
        self.key = key
        self.sealed_aads: list[bytes] = []
        self.opened_aads: list[bytes] = []

    def _icv(self, aad: bytes, ciphertext: bytes) -> bytes:
        return hmac.digest(bytes([self.key]) * 16, aad + ciphertext, "blake2s")[: self.ICV]

    def sealed_length(self, plaintext_length: int) -> int:
        """Ciphertext as long as the plaintext, plus the ICV."""
        return plaintext_length + self.ICV

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:
        """XOR, then append the ICV."""
        self.sealed_aads.append(aad)
        ciphertext = bytes(b ^ self.key for b in plaintext)
        return ciphertext + self._icv(aad, ciphertext)

    def open(self, aad: bytes, body: bytes) -> bytes:
        """Check the ICV, then XOR back."""
        self.opened_aads.append(aad)
        if len(body) < self.ICV:
            raise MalformedMessage("toy SK body shorter than its ICV")
        ciphertext, icv = body[: -self.ICV], body[-self.ICV :]
        if not hmac.compare_digest(icv, self._icv(aad, ciphertext)):
            raise IntegrityCheckFailed("toy ICV mismatch")
        return bytes(b ^ self.key for b in ciphertext)


class CaptureOpener:
    """Opens the SK payloads of the captures with the logged keys, using ``cryptography`` directly.

    Independent of ``ikesim.crypto`` on purpose: it checks the codec's framing
    (aad = everything before the IV) against real strongSwan ciphertext.
    AES-GCM per RFC 5282 (SK_e = key || 4-byte salt, 8-byte IV, 16-byte ICV);
    AES-CBC + HMAC-SHA2-256-128 per RFC 7296 §3.14.
    """

    def __init__(self, row: list[str], from_initiator: bool) -> None:
        self.sk_e = bytes.fromhex(row[2] if from_initiator else row[3])
        sk_a = row[5] if from_initiator else row[6]
        self.sk_a = bytes.fromhex(sk_a) if sk_a else b""
        self.gcm = row[4].startswith("AES-GCM")

    def sealed_length(self, plaintext_length: int) -> int:  # pragma: no cover - never sealing
        """Not used: the captures are only opened."""
        raise NotImplementedError

    def seal(self, aad: bytes, plaintext: bytes) -> bytes:  # pragma: no cover - never sealing
        """Not used: the captures are only opened."""
        raise NotImplementedError

    def open(self, aad: bytes, body: bytes) -> bytes:
        """Verify and decrypt; strip the padding and the Pad Length octet."""
        if self.gcm:
            key, salt = self.sk_e[:-4], self.sk_e[-4:]
            padded = AESGCM(key).decrypt(salt + body[:8], body[8:], aad)
        else:
            iv, ciphertext, icv = body[:16], body[16:-16], body[-16:]
            if not hmac.compare_digest(icv, hmac.digest(self.sk_a, aad + iv + ciphertext, "sha256")[:16]):
                raise IntegrityCheckFailed("HMAC-SHA2-256-128 mismatch")
            dec = Cipher(algorithms.AES(self.sk_e), modes.CBC(iv)).decryptor()
            padded = dec.update(ciphertext) + dec.finalize()
        return padded[: len(padded) - 1 - padded[-1]]
