"""Seeded, named random streams (STYLE.md rule 9).

``Rng(seed).child("node", "gw1", "ike")`` derives an independent stream from a
BLAKE2b digest of the seed and the names, never from ``hash()``, so adding a
node never shifts another node's draws. The generator is a counter-mode
BLAKE2b DRBG: deterministic across platforms and Python versions. It imports
nothing from ``random``, ``secrets`` or ``os``; the sans-IO core receives an
``Rng`` and draws SPIs, nonces, IVs, private keys and jitter from it.
"""

from __future__ import annotations

import hashlib
import struct

__all__ = ["Rng"]

_BLOCK = 64


class Rng:
    """A deterministic random stream identified by a seed and a path of names."""

    __slots__ = ("seed", "path", "_key", "_counter", "_buffer", "_pos", "_forced")

    def __init__(self, seed: int, *path: str) -> None:
        self.seed = int(seed)
        self.path: tuple[str, ...] = tuple(str(p) for p in path)
        self._key: bytes | None = None
        """Derived from the seed and the path on the first draw: a fleet builds streams it never draws from."""
        self._counter = 0
        self._buffer = b""
        self._pos = 0
        self._forced: dict[str, list[bytes]] | None = None

    def child(self, *names: str) -> Rng:
        """Return the independent stream named ``self.path + names``."""
        return Rng(self.seed, *self.path, *names)

    def _derive_key(self) -> bytes:
        h = hashlib.blake2b(digest_size=32, person=b"ikesim-rng-v1")
        h.update(struct.pack(">Q", self.seed))  # seeds are 0 .. 2^64 - 1 (same bytes as ">q" for 0 .. 2^63 - 1)
        for name in self.path:
            encoded = name.encode()
            h.update(struct.pack(">I", len(encoded)))
            h.update(encoded)
        self._key = h.digest()
        return self._key

    def _refill(self) -> None:
        self._buffer = hashlib.blake2b(
            self._counter.to_bytes(16, "big"), key=self._key or self._derive_key(), digest_size=_BLOCK
        ).digest()
        self._counter += 1
        self._pos = 0

    def bytes(self, n: int) -> bytes:
        """Return *n* random bytes."""
        pos = self._pos
        end = pos + n
        if 0 < n and end <= len(self._buffer):  # the common case: a slice of the current block
            self._pos = end
            return self._buffer[pos:end]
        out = bytearray()
        while n > 0:
            if self._pos >= len(self._buffer):
                self._refill()
            take = min(n, len(self._buffer) - self._pos)
            out += self._buffer[self._pos : self._pos + take]
            self._pos += take
            n -= take
        return bytes(out)

    def bits(self, k: int) -> int:
        """Return a random integer with *k* random bits."""
        if k <= 0:
            return 0
        value = int.from_bytes(self.bytes((k + 7) // 8), "big")
        return value >> ((8 - k % 8) % 8)

    def below(self, n: int) -> int:
        """Return a uniform integer in ``[0, n)`` (rejection sampling, no modulo bias)."""
        if n <= 0:
            raise ValueError("below() needs n > 0")
        k = n.bit_length()
        while True:
            r = self.bits(k)
            if r < n:
                return r

    def random(self) -> float:
        """Return a uniform float in ``[0, 1)`` with 53 random bits (``bits(53)``, inlined: jitter per request)."""
        pos = self._pos
        end = pos + 7
        if end <= len(self._buffer):
            self._pos = end
            return (int.from_bytes(self._buffer[pos:end], "big") >> 3) / 9007199254740992.0
        return self.bits(53) / 9007199254740992.0

    def uniform(self, a: float, b: float) -> float:
        """Return a uniform float in ``[a, b)``."""
        return a + (b - a) * self.random()

    def force(self, purpose: str, value: bytes) -> None:
        """Queue *value* to be returned by the next ``draw(purpose, ...)`` (pinned nonces)."""
        if self._forced is None:
            self._forced = {}
        self._forced.setdefault(purpose, []).append(value)

    def draw(self, purpose: str, n: int) -> bytes:
        """Return *n* bytes for *purpose*; a value queued with ``force`` comes first.

        A forced value shorter than *n* is a prefix: the rest is drawn at random.
        """
        queue = self._forced.get(purpose) if self._forced is not None else None
        if queue:
            prefix = queue.pop(0)[:n]
            return prefix + self.bytes(n - len(prefix))
        return self.bytes(n)
