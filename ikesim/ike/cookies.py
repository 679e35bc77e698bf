"""Responder protection against IKE_SA_INIT floods: cookies (RFC 7296 §2.6) and half-open limits.

A half-open IKE_SA is a responder IKE_SA that answered IKE_SA_INIT and waits for IKE_AUTH. The
rules and defaults are strongSwan charon's (``src/libcharon/network/receiver.c``,
``conf/options/charon.opt``): above ``cookie_threshold`` half-open IKE_SAs in all, or
``cookie_threshold_ip`` from one source IP, an IKE_SA_INIT without a valid COOKIE is answered
statelessly with N(COOKIE); cookies stay required until the threshold has not been reached for
``COOKIE_CALMDOWN_DELAY`` seconds; with ``block_threshold`` half-open IKE_SAs from one IP further
IKE_SA_INITs from it are dropped, and with ``init_limit_half_open`` in all, every one is.

The secret comes from the injected ``Rng`` (sans-IO) and is replaced every ``COOKIE_SECRET_SWITCH``
seconds after its first use; cookies made with the previous secret still verify (RFC 7296 §2.6).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections import Counter
from collections.abc import Iterator

from ikesim.crypto.meter import OpCounter
from ikesim.crypto.natd import cookie_value
from ikesim.rng import Rng

__all__ = ["HalfOpenTable", "CookieJar", "COOKIE_CALMDOWN_DELAY", "COOKIE_SECRET_SWITCH"]

COOKIE_CALMDOWN_DELAY = 10.0
"""Seconds cookies stay required after a threshold was last *reached*, so that the retransmissions of one
IKE_SA_INIT are not answered with and without a cookie in turn. strongSwan ``src/libcharon/network/receiver.c``
``COOKIE_CALMDOWN_DELAY`` 10; its ``cookie_required()`` stamps ``last_threshold[idx] = now`` only when the
half-open count is at the threshold, so IKE_SA_INITs below it do not extend the calm-down (checked against
strongSwan master, commit 3b902ea, 2026-05-12)."""
COOKIE_SECRET_SWITCH = 120.0
"""Seconds a cookie secret is used, from its first use, before a new one is drawn: strongSwan
``src/libcharon/network/receiver.c`` ``COOKIE_SECRET_SWITCH`` 120, checked in ``drop_ike_sa_init()`` each time
a COOKIE is sent (``secret_first_use``; commit 902fbd1, 2021, replaced the older ``COOKIE_REUSE`` count of 10000
uses). strongSwan's cookies also carry a time stamp and expire after ``COOKIE_LIFETIME`` 10 s; ikesim's carry a
secret version instead (RFC 7296 §2.6) and stay valid while their secret is the current or the previous one."""
_CALMDOWN_BUCKETS = 32
"""Source IPs share this many per-IP calm-down clocks (strongSwan's ``COOKIE_CALMDOWN_BUCKETS``): bounded state
under a flood from any number of addresses."""
_VERSION_LEN = 4


class HalfOpenTable:
    """Responder IKE_SAs waiting for IKE_AUTH, by local SPI, counted in all and per peer IP."""

    __slots__ = ("_ip_of", "_per_ip")

    def __init__(self) -> None:
        self._ip_of: dict[bytes, str] = {}
        self._per_ip: Counter[str] = Counter()

    def add(self, spi: bytes, ip: str) -> None:
        """Count the responder IKE_SA *spi* from peer *ip* as half-open."""
        self.discard(spi)
        self._ip_of[spi] = ip
        self._per_ip[ip] += 1

    def discard(self, spi: bytes) -> None:
        """*spi* is no longer half-open (established, or removed); nothing if it was not."""
        ip = self._ip_of.pop(spi, None)
        if ip is None:
            return
        self._per_ip[ip] -= 1
        if not self._per_ip[ip]:
            del self._per_ip[ip]

    def count_ip(self, ip: str) -> int:
        """Half-open IKE_SAs from peer *ip*."""
        return self._per_ip.get(ip, 0)

    def __len__(self) -> int:
        return len(self._ip_of)

    def __contains__(self, spi: object) -> bool:
        return spi in self._ip_of

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self._ip_of))


def _version(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()[:_VERSION_LEN]


class CookieJar:
    """The responder's cookie secrets and threshold clocks (RFC 7296 §2.6)."""

    __slots__ = ("_rng", "_secret", "_old_secret", "_first_use", "_bucket_key", "_last_reached")

    def __init__(self, rng: Rng) -> None:
        self._rng = rng
        self._secret = rng.bytes(32)
        self._old_secret = self._secret
        self._first_use: float | None = None
        self._bucket_key = rng.child("calmdown-buckets").bytes(16)
        self._last_reached: dict[int, float] = {}
        """Calm-down clock index (0: in all; 1..32: a bucket of source IPs) -> when its threshold was last reached."""

    def required(self, count: int, threshold: int | None, ip: str | None, now: float) -> bool:
        """Whether cookies are required: *count* half-open (in all, or from *ip*) reached *threshold*,
        or did within the last ``COOKIE_CALMDOWN_DELAY`` seconds (strongSwan ``receiver.c`` ``cookie_required()``:
        only reaching the threshold restarts the calm-down, not every IKE_SA_INIT)."""
        if threshold is None:
            return False
        index = 0
        if ip is not None:
            digest = hashlib.blake2b(ipaddress.ip_address(ip).packed, key=self._bucket_key, digest_size=1).digest()
            index = 1 + digest[0] % _CALMDOWN_BUCKETS
        if count >= threshold:
            self._last_reached[index] = now
            return True
        last = self._last_reached.get(index)
        return last is not None and now < last + COOKIE_CALMDOWN_DELAY

    def make(self, nonce_i: bytes, ip: str, spi_i: bytes, now: float, meter: OpCounter | None = None) -> bytes:
        """RFC 7296 §2.6: the COOKIE for this request, with the current secret (drawn anew when it is old)."""
        if self._first_use is None:
            self._first_use = now
        elif now - self._first_use > COOKIE_SECRET_SWITCH:
            self._old_secret, self._secret = self._secret, self._rng.bytes(32)
            self._first_use = now
        return cookie_value(self._secret, nonce_i, ip, spi_i, meter)

    def valid(self, cookie: bytes, nonce_i: bytes, ip: str, spi_i: bytes, meter: OpCounter | None = None) -> bool:
        """RFC 7296 §2.6: *cookie* is one this responder made for (Ni, IPi, SPIi) with its current or previous secret."""
        for secret in (self._secret, self._old_secret):
            if cookie[:_VERSION_LEN] == _version(secret):
                return hmac.compare_digest(cookie, cookie_value(secret, nonce_i, ip, spi_i, meter))
        return False
