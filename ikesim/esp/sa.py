"""ESP SAs, one object per direction: packet protection and processing (RFC 4303 §3.3, §3.4).

Transforms: AES-GCM with a 16-octet ICV (RFC 4106), ChaCha20-Poly1305 (RFC 7634 §2) and AES-CBC (RFC 3602) with
HMAC-SHA1-96 (RFC 2404) or HMAC-SHA2-256-128 / -384-192 / -512-256 (RFC 4868), each
with or without Extended Sequence Numbers (RFC 4303 §2.2.1, RFC 4304). Cipher and MAC
key objects are built once per SA; everything goes through ``cryptography``.

An SA counts the packets and inner-packet bytes it protected or accepted (what the
Linux kernel's XFRM lifetime counts: ``skb->len`` of the inner packet in tunnel mode)
against ``EspLimits`` and queues an ``EspLimitReached`` note in ``notes`` the first time
a soft and the first time a hard limit is reached. A packet that reaches a hard limit
still passes; the SA is expired from then on (``SA_EXPIRED``). The outbound sequence
number is a counter too (RFC 4303 §3.3.3: a new SA before the counter cycles): a soft
"seq" note ``seq_margin`` numbers before the last one, a hard one when the last is sent;
after it ``protect`` returns ``SEQ_EXHAUSTED``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.constant_time import bytes_eq
from cryptography.hazmat.primitives.hmac import HMAC

from ikesim.crypto.suites import Suite
from ikesim.esp.drops import ICV_FAILURE, MALFORMED, SA_EXPIRED, SEQ_EXHAUSTED, UNKNOWN_SPI
from ikesim.esp.events import EspLimitReached
from ikesim.esp.replay import ReplayWindow
from ikesim.rng import Rng
from ikesim.types import Address
from ikesim.wire.iana import EncrId, EsnId, IntegId

__all__ = ["EspLimits", "OutboundEspSa", "InboundEspSa", "INTEG_TRANSFORMS", "SEQ_MAX", "SEQ_MAX_ESN"]

SEQ_MAX = 0xFFFFFFFF
"""RFC 4303 §3.3.3: the last sequence number of an SA without ESN (2^32 - 1)."""
SEQ_MAX_ESN = 0xFFFFFFFFFFFFFFFF
"""RFC 4303 §3.3.3: the last sequence number of an SA with ESN (2^64 - 1)."""

INTEG_TRANSFORMS: dict[int, tuple[type[hashes.HashAlgorithm], int, int]] = {
    IntegId.AUTH_HMAC_SHA1_96: (hashes.SHA1, 20, 12),
    IntegId.AUTH_HMAC_SHA2_256_128: (hashes.SHA256, 32, 16),
    IntegId.AUTH_HMAC_SHA2_384_192: (hashes.SHA384, 48, 24),
    IntegId.AUTH_HMAC_SHA2_512_256: (hashes.SHA512, 64, 32),
}
"""Integrity id -> (hash, key bytes, ICV bytes): RFC 2404 §3, RFC 4868 §2.1.1 / §2.3."""

_PAD = bytes(range(1, 256))
"""RFC 4303 §2.4 default padding: the bytes 1, 2, 3, ..."""
_NEVER = 1 << 80
"""A limit that is never reached (larger than any counter)."""
_HEADER = 8  # SPI + sequence number (RFC 4303 §2)
_GCM_IV, _GCM_ICV, _GCM_ALIGN = 8, 16, 4  # RFC 4106 §3.1, §6; 4-octet alignment, RFC 4303 §2.4
_CBC_BLOCK = 16  # RFC 3602 §2.4: IV and block size
_IPV4 = 4  # Next Header of tunnel mode with an inner IPv4 packet (RFC 4303 §2.6)


@dataclass(frozen=True, slots=True)
class EspLimits:
    """RFC 4301 §4.4.2.1 lifetimes in packets and inner-packet bytes; 0 = no limit.

    A soft limit asks for a rekey (the SA still works); a hard one expires the SA.
    ``seq_margin``: the soft "seq" note comes this many numbers before the last
    sequence number (None: a tenth of the sequence space, as strongSwan derives
    ``rekey_packets`` from ``life_packets``).
    """

    soft_bytes: int = 0
    hard_bytes: int = 0
    soft_packets: int = 0
    hard_packets: int = 0
    seq_margin: int | None = None


_NO_LIMITS = EspLimits()


class _EspSa:
    """What both directions share: keys, transform, counters and limit notes."""

    __slots__ = ("spi", "suite", "esn", "bytes", "packets", "expired", "notes", "_aead", "_gcm", "_salt", "_aes",
                 "_cbc", "_hmac", "_icv", "_block", "_inbound", "_limits", "_seq_soft", "_seq_hard", "_soft_done",
                 "_hard_done", "_next_p", "_next_b", "_next_s")

    def __init__(self, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, limits: EspLimits | None,
                 inbound: bool, seq_max: int) -> None:
        if len(spi) != 4:
            raise ValueError(f"an ESP SPI has 4 bytes, not {len(spi)}")
        self.spi = bytes(spi)
        self.suite = suite
        self.esn = suite.esn == EsnId.ESN
        self.bytes = 0
        """Inner-packet bytes protected (outbound) or accepted (inbound)."""
        self.packets = 0
        self.expired = False
        """Hard limit reached, or expired by IKE: every further packet is dropped with ``SA_EXPIRED``."""
        self.notes: list[EspLimitReached] = []
        """Limit notes not yet collected (``EspDataPlane`` moves them to its event queue)."""
        self._inbound = inbound
        self._aead = suite.aead
        if len(encr_key) != suite.encr_key_size:
            raise ValueError(f"{suite.encr_name} needs a {suite.encr_key_size}-byte key, not {len(encr_key)}")
        if suite.encr_id in (EncrId.ENCR_AES_GCM_16, EncrId.ENCR_CHACHA20_POLY1305):
            # RFC 4106 §8.1 / RFC 7634 §4: key | 4-byte salt; nonce salt | 8-byte IV, AAD and 4-octet alignment alike
            cipher = AESGCM if suite.encr_id == EncrId.ENCR_AES_GCM_16 else ChaCha20Poly1305
            self._gcm = cipher(encr_key[:-4])
            self._salt = encr_key[-4:]
            self._icv, self._block = _GCM_ICV, _GCM_ALIGN
        elif suite.encr_id == EncrId.ENCR_AES_CBC:
            if suite.integ_id not in INTEG_TRANSFORMS:
                raise ValueError(f"ESP with AES-CBC needs a supported integrity transform, not {suite.integ_id!r}")
            algorithm, key_size, self._icv = INTEG_TRANSFORMS[suite.integ_id]
            if len(integ_key) != key_size:
                raise ValueError(f"{algorithm.name} HMAC needs a {key_size}-byte key, not {len(integ_key)}")
            self._aes = algorithms.AES(encr_key)
            chain = Cipher(self._aes, modes.CBC(bytes(_CBC_BLOCK)))
            self._cbc = chain.decryptor() if inbound else chain.encryptor()
            """The SA's running CBC context (never finalized): building one per packet costs more than the AES."""
            self._hmac = HMAC(integ_key, algorithm())  # keyed once; each packet copies it
            self._block = _CBC_BLOCK
        else:
            raise ValueError(f"unsupported ESP encryption transform {suite.encr_id!r}")
        self._arm(limits or _NO_LIMITS, seq_max)

    def _arm(self, limits: EspLimits, seq_max: int) -> None:
        """Set the thresholds the per-packet check compares against (RFC 4301 §4.4.2.1)."""
        self._limits = (limits.soft_packets or _NEVER, limits.soft_bytes or _NEVER,
                        limits.hard_packets or _NEVER, limits.hard_bytes or _NEVER)
        if self._inbound:
            self._seq_soft = self._seq_hard = _NEVER
        else:
            margin = seq_max // 10 if limits.seq_margin is None else limits.seq_margin
            self._seq_soft, self._seq_hard = max(seq_max - margin, 1), seq_max
        self._soft_done = self._hard_done = False
        self._rearm()

    def _rearm(self) -> None:
        """The smallest threshold not yet noted, per counter."""
        soft_p, soft_b, hard_p, hard_b = self._limits
        soft_s, hard_s = self._seq_soft, self._seq_hard
        if self._soft_done:
            soft_p = soft_b = soft_s = _NEVER
        if self._hard_done:
            hard_p = hard_b = hard_s = _NEVER
        self._next_p, self._next_b, self._next_s = min(soft_p, hard_p), min(soft_b, hard_b), min(soft_s, hard_s)

    def _reached(self, seq: int) -> None:
        """RFC 4301 §4.4.2.1: queue the soft and then the hard note the first time each is reached."""
        soft_p, soft_b, hard_p, hard_b = self._limits
        p, b = self.packets, self.bytes
        if not self._soft_done:
            counter = _first(p >= soft_p, b >= soft_b, seq >= self._seq_soft)
            if counter:
                self._soft_done = True
                self.notes.append(EspLimitReached(self.spi, self._inbound, False, counter))
        if not self._hard_done:
            counter = _first(p >= hard_p, b >= hard_b, seq >= self._seq_hard)
            if counter:
                self._hard_done = True
                self.notes.append(EspLimitReached(self.spi, self._inbound, True, counter))
                if counter != "seq":  # the last sequence number still went out; the next protect is refused
                    self.expired = True
        self._rearm()


def _first(packets: bool, nbytes: bool, seq: bool) -> str:
    """The counter named in a note when several reach their limit with one packet: packets, bytes, seq."""
    return "packets" if packets else "bytes" if nbytes else "seq" if seq else ""


class OutboundEspSa(_EspSa):
    """One outbound ESP SA (RFC 4303 §3.3): numbers, pads, encrypts and authenticates inner packets."""

    __slots__ = ("seq", "_seq_max", "_rng", "_trailers")

    def __init__(self, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, *, rng: Rng,
                 limits: EspLimits | None = None, seq: int = 0) -> None:
        seq_max = SEQ_MAX_ESN if suite.esn == EsnId.ESN else SEQ_MAX
        super().__init__(spi, suite, encr_key, integ_key, limits, False, seq_max)
        if not 0 <= seq <= seq_max:
            raise ValueError(f"sequence number {seq} out of range 0 .. {seq_max}")
        self.seq = seq
        """The last sequence number sent (0: none yet)."""
        self._seq_max = seq_max
        self._rng = rng
        self._trailers = [_PAD[:p] + bytes((p, _IPV4)) for p in range(self._block)]
        """Padding, Pad Length and Next Header for each pad length, with Next Header 4 (the common case)."""

    def protect(self, inner: bytes, *, next_header: int = _IPV4, iv: bytes | None = None) -> bytes | str:
        """RFC 4303 §3.3: the ESP packet (SPI | Sequence Number | IV | ciphertext | ICV) carrying *inner*, or a drop.

        *iv* pins the IV (tests); without it AES-GCM uses the 64-bit sequence number
        (RFC 4106 §3.1: a counter is allowed) and AES-CBC makes an unpredictable one (RFC 3602
        §2.1) by encrypting 16 bytes drawn from the SA's ``rng`` as the first block of the
        SA's running CBC chain: the IV is that ciphertext block (an IV made with the forward
        cipher, NIST SP 800-38A Appendix C, as Linux's eseqiv made them). Returns
        ``SA_EXPIRED`` or ``SEQ_EXHAUSTED`` (RFC 4303 §3.3.3) instead of a packet.
        """
        if self.expired:
            return SA_EXPIRED
        seq = self.seq + 1
        if seq > self._seq_max:
            return self._exhausted()
        n = len(inner)
        pad = -(n + 2) % self._block
        trailer = self._trailers[pad] if next_header == _IPV4 else _PAD[:pad] + bytes((pad, next_header))
        header = self.spi + (seq & SEQ_MAX).to_bytes(4, "big")
        if self._aead:
            if iv is None:
                iv = seq.to_bytes(_GCM_IV, "big")
            elif len(iv) != _GCM_IV:
                raise ValueError(f"an AES-GCM ESP IV has {_GCM_IV} bytes, not {len(iv)}")
            aad = self.spi + seq.to_bytes(8, "big") if self.esn else header  # RFC 4106 §5
            packet = header + iv + self._gcm.encrypt(self._salt + iv, inner + trailer, aad)
        else:
            if iv is None:  # the running chain encrypts 16 drawn bytes into the IV, then the payload under it
                signed = header + self._cbc.update(self._rng.bytes(_CBC_BLOCK) + inner + trailer)
            elif len(iv) == _CBC_BLOCK:
                enc = Cipher(self._aes, modes.CBC(iv)).encryptor()
                signed = header + iv + enc.update(inner + trailer) + enc.finalize()
            else:
                raise ValueError(f"an AES-CBC IV has {_CBC_BLOCK} bytes, not {len(iv)}")
            mac = self._hmac.copy()
            mac.update(signed)
            if self.esn:  # RFC 4303 §3.3.2.1: the high-order 32 bits are authenticated, not sent
                mac.update((seq >> 32).to_bytes(4, "big"))
            packet = signed + mac.finalize()[: self._icv]
        self.seq = seq
        self.packets += 1
        self.bytes += n
        if self.packets >= self._next_p or self.bytes >= self._next_b or seq >= self._next_s:
            self._reached(seq)
        return packet

    def _exhausted(self) -> str:
        """RFC 4303 §3.3.3: the counter would cycle; the hard "seq" note if not queued yet, and the drop."""
        if not self._hard_done:
            self._reached(self._seq_max)
        return SEQ_EXHAUSTED


class InboundEspSa(_EspSa):
    """One inbound ESP SA (RFC 4303 §3.4): checks, authenticates and decrypts ESP packets."""

    __slots__ = ("window", "peer", "_min_len")

    def __init__(self, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, *, window: int = 32,
                 limits: EspLimits | None = None, peer: Address | None = None) -> None:
        seq_max = SEQ_MAX_ESN if suite.esn == EsnId.ESN else SEQ_MAX
        super().__init__(spi, suite, encr_key, integ_key, limits, True, seq_max)
        self.window = ReplayWindow(window, self.esn)
        self.peer = peer
        """The address the peer sends from (``ikesim.types.Address``; ``EspDataPlane`` keeps it current)."""
        iv = _GCM_IV if self._aead else _CBC_BLOCK
        self._min_len = _HEADER + iv + self._block + self._icv
        """Header, IV, the smallest padded payload (Pad Length and Next Header, aligned) and the ICV."""

    def unprotect(self, packet: bytes) -> tuple[int, bytes] | str:
        """RFC 4303 §3.4: (Next Header, inner packet) of the ESP *packet*, or why it was dropped; never raises.

        Order: lengths, sequence number (§3.4.3, the window infers the ESN), ICV (§3.4.4),
        decryption, padding (§2.4: Pad Length within the payload, the default pad bytes);
        only then is the window updated and the packet counted.
        """
        if self.expired:
            return SA_EXPIRED
        n = len(packet)
        if n < self._min_len:
            return MALFORMED
        if packet[:4] != self.spi:
            return UNKNOWN_SPI
        seq = self.window.check(int.from_bytes(packet[4:8], "big"))
        if isinstance(seq, str):
            return seq
        if self._aead:
            if (n - _HEADER - _GCM_IV - _GCM_ICV) % _GCM_ALIGN:
                return MALFORMED
            aad = self.spi + seq.to_bytes(8, "big") if self.esn else packet[:_HEADER]
            nonce = self._salt + packet[_HEADER : _HEADER + _GCM_IV]  # RFC 4106 §4: salt | IV
            try:
                plain = self._gcm.decrypt(nonce, packet[_HEADER + _GCM_IV :], aad)
            except InvalidTag:
                return ICV_FAILURE
        else:
            end = n - self._icv
            if (end - _HEADER - _CBC_BLOCK) % _CBC_BLOCK:
                return MALFORMED
            mac = self._hmac.copy()
            mac.update(packet[:end])
            if self.esn:
                mac.update((seq >> 32).to_bytes(4, "big"))
            if not bytes_eq(mac.finalize()[: self._icv], bytes(packet[end:])):
                return ICV_FAILURE
            # The running chain decrypts IV | ciphertext: the IV block's output is dropped; it chains into the next.
            plain = self._cbc.update(packet[_HEADER:end])[_CBC_BLOCK:]
        pad = plain[-2]
        cut = len(plain) - 2 - pad
        if cut < 0 or plain[cut:-2] != _PAD[:pad]:
            return MALFORMED
        self.window.update(seq)
        self.packets += 1
        self.bytes += cut
        if self.packets >= self._next_p or self.bytes >= self._next_b:
            self._reached(0)
        return plain[-1], plain[:cut]
