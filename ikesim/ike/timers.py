"""A deadline book: deadlines by key, the earliest for ``get_timer()`` (RFC 7296 §2.1, §2.8).

It has no clock of its own: keys are armed with absolute times and popped
when the driver says the time has come. Re-arming a key replaces its
deadline; stale heap entries are skipped lazily, so arm and cancel are O(log n).
"""

from __future__ import annotations

import heapq

__all__ = ["DeadlineBook", "TimerKey"]

TimerKey = tuple[str, bytes]
"""(kind, SPI): e.g. ``("rtx", local_spi)``, ``("child_soft", spi_in)``."""


class DeadlineBook:
    """Absolute deadlines indexed by a hashable key."""

    __slots__ = ("_deadlines", "_heap", "_seq")

    def __init__(self) -> None:
        self._deadlines: dict[TimerKey, float] = {}
        self._heap: list[tuple[float, int, TimerKey]] = []
        self._seq = 0

    def arm(self, key: TimerKey, at: float) -> None:
        """Set (or move) the deadline of *key* to the absolute time *at*."""
        self._deadlines[key] = at
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, key))

    def cancel(self, key: TimerKey) -> None:
        """Forget the deadline of *key*, if any."""
        self._deadlines.pop(key, None)

    def deadline(self, key: TimerKey) -> float | None:
        """The armed deadline of *key*, or None."""
        return self._deadlines.get(key)

    def _clean(self) -> None:
        heap = self._heap
        deadlines = self._deadlines
        while heap:
            at, _, key = heap[0]
            if deadlines.get(key) == at:
                return
            heapq.heappop(heap)

    def earliest(self) -> float | None:
        """The earliest armed deadline, or None when nothing is armed."""
        heap = self._heap
        if heap:
            at, _, key = heap[0]
            if self._deadlines.get(key) == at:  # asked after every driver call: skip _clean when current
                return at
            self._clean()
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> TimerKey | None:
        """Pop one key whose deadline is at or before *now* (earliest first), or None."""
        heap = self._heap
        if not heap or heap[0][0] > now:
            return None  # even the earliest entry, stale or not, is later: nothing is due
        self._clean()
        if not heap or heap[0][0] > now:
            return None
        _, _, key = heapq.heappop(heap)
        del self._deadlines[key]
        return key

    def __len__(self) -> int:
        return len(self._deadlines)
