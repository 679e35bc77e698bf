"""Per-node counting of cryptographic primitive operations.

Every primitive call in ``ikesim.crypto`` adds one to a named counter, so a
CPU model (or the benchmark's crypto floor) can turn counts into time.
Operation names: ``ke_keygen:<group>``, ``ke_shared:<group>``, ``prf``,
``prf_plus``, ``sk_seal:<encr>``, ``sk_open:<encr>``, ``sign:<alg>``,
``verify:<alg>``, ``hash``.
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
