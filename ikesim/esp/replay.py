"""The receiver's anti-replay window (RFC 4303 §3.4.3), with Extended Sequence Numbers (RFC 4303 Appendix A).

The window is the highest authenticated sequence number ``top`` (T) and an int bitmask:
bit *i* set means ``top - i`` was received. Use is two-step, as RFC 4303 §3.4.3 and
Appendix A2.2 order it: ``check`` the 32 low-order bits from the wire before the
integrity check (it returns the full, inferred sequence number, which the ICV covers
with ESN, §2.2.1), and ``update`` the window with it only after the ICV passed.
"""

from __future__ import annotations

from ikesim.esp.drops import OUTSIDE_WINDOW, REPLAYED

__all__ = ["ReplayWindow"]

_LOW = 0xFFFFFFFF
_SPACE = 1 << 32


class ReplayWindow:
    """One inbound SA's anti-replay window of *size* packets (0: anti-replay off); *esn*: 64-bit numbers."""

    __slots__ = ("size", "esn", "top", "bitmap", "_mask", "_infer_w")

    def __init__(self, size: int, esn: bool) -> None:
        if size < 0:
            raise ValueError(f"replay window size must be >= 0, not {size}")
        self.size = size
        self.esn = esn
        self.top = 0
        """T: the highest sequence number authenticated so far (0: none yet; the first one sent is 1)."""
        self.bitmap = 0
        """Bit *i* set: sequence number ``top - i`` was received (only the low ``size`` bits are kept)."""
        self._mask = (1 << size) - 1
        self._infer_w = max(size, 1)
        """W of RFC 4303 A2.1; with anti-replay off the high bits are still inferred, against T alone."""

    def check(self, seq_low: int) -> int | str:
        """RFC 4303 §3.4.3 / A2.1: the full sequence number of *seq_low* (the wire's 32 bits), or why it is refused.

        Returns ``OUTSIDE_WINDOW`` for a number left of the window (and for the never-sent 0,
        or an ESN inferred below 0 or above 2^64 - 1), ``REPLAYED`` for one already received.
        The window itself is not changed: call ``update`` once the ICV has passed.
        """
        seq = self._infer(seq_low) if self.esn else seq_low
        if seq < 0:
            return OUTSIDE_WINDOW
        top = self.top
        if seq > top or self.size == 0:
            return seq
        diff = top - seq
        if diff >= self.size or seq == 0:
            return OUTSIDE_WINDOW
        if (self.bitmap >> diff) & 1:
            return REPLAYED
        return seq

    def _infer(self, seq_low: int) -> int:
        """RFC 4303 A2.1: infer Seqh from Seql and T; -1 where the inferred number cannot exist."""
        top, w = self.top, self._infer_w
        th, tl = top >> 32, top & _LOW
        if tl >= w - 1:  # Case A: the window lies within one sequence number subspace
            seqh = th if seq_low >= tl - w + 1 else th + 1
        else:  # Case B: the window spans two subspaces
            seqh = th - 1 if seq_low >= (tl - w + 1) % _SPACE else th
        if seqh < 0 or seqh > _LOW:
            return -1
        return (seqh << 32) | seq_low

    def update(self, seq: int) -> None:
        """RFC 4303 §3.4.3: mark the authenticated full sequence number *seq* received, sliding the window right."""
        top = self.top
        if seq > top:
            shift = seq - top
            self.bitmap = ((self.bitmap << shift) | 1) & self._mask if shift < self.size else 1 & self._mask
            self.top = seq
        elif top - seq < self.size:
            self.bitmap |= 1 << (top - seq)
