"""Per-node counting of cryptographic primitive operations.

Every primitive call in ``ikesim.crypto`` adds one to a named counter, so a
CPU model (or the benchmark's crypto floor) can turn counts into time.
Operation names (``ikesim.calibration.measure_op_costs`` times each one):

- ``ke_keygen:<group>``, ``ke_shared:<group>``: group 14-18, 19-21, 28-30, 31, 32 or 35-37 (ML-KEM:
  key generation from the seed, decapsulation); ``ke_encaps:<group>``: ML-KEM encapsulation (35-37);
- ``prf`` (one HMAC), ``prf_plus`` (one whole prf+ expansion);
- ``sk_seal:<encr>``, ``sk_open:<encr>``: encr ``aes128gcm16``, ``aes192gcm16``,
  ``aes256gcm16``, ``chacha20poly1305``, ``aes128``, ``aes192`` or ``aes256``;
- ``sign:<alg>``, ``verify:<alg>``: alg ``ecdsa`` (P-256) or ``ed25519``;
- ``hash``: one NAT-D or cookie hash.
"""

from __future__ import annotations

from collections import Counter

__all__ = ["OpCounter"]


class OpCounter:
    """Counts primitive operations by name."""

    __slots__ = ("counts",)

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, op: str, n: int = 1) -> None:
        """Count *n* operations named *op*."""
        self.counts[op] += n

    def snapshot(self) -> dict[str, int]:
        """A plain-dict copy of the counters."""
        return dict(self.counts)
