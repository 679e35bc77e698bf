"""A deadline book: deadlines by key, the earliest for ``get_timer()`` (RFC 7296 §2.1, §2.8).

It has no clock of its own: keys are armed with absolute times and popped
when the driver says the time has come. Each arm is an entry ``(at, seq, key)``;
the book maps every key to its current entry, and the heap holds, for every key,
an entry no later than its current one. Moving a deadline later (DPD after every
message, RFC 7296 §2.4) pushes nothing: the earlier entry is swapped for the current
one when it reaches the top. Entries order by (at, seq) as if each arm had been
pushed, so the pop order is the same. Stale entries are skipped lazily, and the heap
is rebuilt from the current entries when stale ones outnumber them.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush, heapreplace

__all__ = ["DeadlineBook", "TimerKey"]

TimerKey = tuple[str, bytes]
"""(kind, SPI): e.g. ``("rtx", local_spi)``, ``("child_soft", spi_in)``."""

_Entry = tuple[float, int, TimerKey]

_SLACK = 64
"""Stale heap entries tolerated beyond the number of armed keys before the heap is rebuilt."""


class DeadlineBook:
    """Absolute deadlines indexed by a hashable key."""

    __slots__ = ("_current", "_heap", "_seq", "_limit")

    def __init__(self) -> None:
        self._current: dict[TimerKey, _Entry] = {}
        self._heap: list[_Entry] = []
        self._seq = 0
        self._limit = _SLACK
        """Heap size at which ``_rebuild`` looks for stale entries again."""

    def arm(self, key: TimerKey, at: float) -> None:
        """Set (or move) the deadline of *key* to the absolute time *at*."""
        self._seq += 1
        current = self._current
        old = current.get(key)
        if old is None:
            current[key] = entry = (at, self._seq, key)
        else:
            current[key] = entry = (at, self._seq, old[2])  # one key object per armed key, not per arm
            if at >= old[0]:
                return  # later: the heap's earlier entry stands in until it surfaces
        heap = self._heap
        heappush(heap, entry)
        if len(heap) > self._limit:
            self._rebuild()

    def _rebuild(self) -> None:
        """Drop the stale entries once they outnumber the armed keys (amortised O(1) per arm)."""
        if len(self._heap) > 2 * len(self._current) + _SLACK:
            self._heap = list(self._current.values())
            heapify(self._heap)
        self._limit = 2 * len(self._heap) + _SLACK

    def cancel(self, key: TimerKey) -> None:
        """Forget the deadline of *key*, if any."""
        self._current.pop(key, None)

    def deadline(self, key: TimerKey) -> float | None:
        """The armed deadline of *key*, or None."""
        entry = self._current.get(key)
        return entry[0] if entry is not None else None

    def _top(self) -> _Entry | None:
        """The current entry at the top of the heap: stale ones dropped, moved ones replaced."""
        heap = self._heap
        current = self._current
        while heap:
            top = heap[0]
            entry = current.get(top[2])
            if entry is top:
                return top
            if entry is not None and entry > top:  # moved later without a push
                heapreplace(heap, entry)
            else:
                heappop(heap)
        return None

    def earliest(self) -> float | None:
        """The earliest armed deadline, or None when nothing is armed."""
        heap = self._heap
        if heap:
            first = heap[0]
            if self._current.get(first[2]) is first:  # asked after every driver call: the common case
                return first[0]
        top = self._top()
        return top[0] if top is not None else None

    def pop_due(self, now: float) -> TimerKey | None:
        """Pop one key whose deadline is at or before *now* (earliest first), or None."""
        heap = self._heap
        if not heap or heap[0][0] > now:
            return None  # even the earliest entry, stale or not, is later: nothing is due
        top = self._top()
        if top is None or top[0] > now:
            return None
        heappop(heap)
        del self._current[top[2]]
        return top[2]

    def __len__(self) -> int:
        return len(self._current)
