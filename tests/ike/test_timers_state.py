"""The deadline book and the lifecycle transition tables (RFC 7296 §2.1, §2.8)."""

from __future__ import annotations

import heapq

import pytest

from ikesim.errors import LocalProtocolError
from ikesim.ike import timers
from ikesim.ike.state import (
    ChildSaState,
    ChildSaTrigger,
    IkeSaState,
    IkeSaTrigger,
    next_child_state,
    next_ike_state,
)
from ikesim.ike.timers import DeadlineBook
from ikesim.rng import Rng


def test_deadline_book_orders_rearms_and_cancels() -> None:
    """Re-arming moves a deadline, cancel forgets it, pop_due returns due keys earliest first."""
    book = DeadlineBook()
    a, b, c = ("rtx", b"a"), ("rtx", b"b"), ("dpd", b"c")
    book.arm(a, 5.0)
    book.arm(b, 3.0)
    book.arm(a, 1.0)
    book.arm(c, 2.0)
    book.cancel(c)
    assert book.earliest() == 1.0 and len(book) == 2 and book.deadline(a) == 1.0
    assert book.pop_due(0.5) is None
    assert book.pop_due(10.0) == a and book.pop_due(10.0) == b
    assert book.pop_due(10.0) is None and book.earliest() is None


class _EagerBook:
    """The reference: every arm pushed, stale entries skipped (the book before lazy re-arms)."""

    def __init__(self) -> None:
        self.current: dict[tuple[str, bytes], tuple[float, int]] = {}
        self.heap: list[tuple[float, int, tuple[str, bytes]]] = []
        self.seq = 0

    def arm(self, key: tuple[str, bytes], at: float) -> None:
        self.seq += 1
        self.current[key] = (at, self.seq)
        heapq.heappush(self.heap, (at, self.seq, key))

    def pop_due(self, now: float) -> tuple[str, bytes] | None:
        while self.heap and self.current.get(self.heap[0][2]) != self.heap[0][:2]:
            heapq.heappop(self.heap)
        if not self.heap or self.heap[0][0] > now:
            return None
        key = heapq.heappop(self.heap)[2]
        del self.current[key]
        return key


def test_deadline_book_pops_in_arm_order_despite_lazy_rearms(monkeypatch: pytest.MonkeyPatch) -> None:
    """A deadline moved later pushes nothing, yet keys pop as if every arm had been pushed:
    by deadline, ties in the order they were armed (the driver's order of events must not change).
    No slack: the heap is rebuilt from the current entries often, which must not change the order either."""
    monkeypatch.setattr(timers, "_SLACK", 0)
    rng = Rng(3, "book")
    book, ref = DeadlineBook(), _EagerBook()
    keys = [("dpd", bytes([i])) for i in range(8)]
    now = 0.0
    for step in range(3000):
        key = keys[rng.below(len(keys))]
        choice = rng.below(10)
        if choice < 6:
            at = now + rng.below(6)  # few distinct deadlines: many ties
            book.arm(key, at)
            ref.arm(key, at)
        elif choice < 8:
            book.cancel(key)
            ref.current.pop(key, None)
        else:
            now += 1.0
            while (got := book.pop_due(now)) is not None:
                assert got == ref.pop_due(now), step
            assert ref.pop_due(now) is None


def test_transition_tables() -> None:
    """Legal transitions follow the tables; an illegal one raises LocalProtocolError."""
    s = next_ike_state(IkeSaState.CONNECTING, IkeSaTrigger.AUTHENTICATED)
    assert s is IkeSaState.ESTABLISHED
    assert next_child_state(ChildSaState.REKEYING, ChildSaTrigger.REPLACED) is ChildSaState.REKEYED
    with pytest.raises(LocalProtocolError, match="cannot handle replaced"):
        next_ike_state(IkeSaState.CONNECTING, IkeSaTrigger.REPLACED)
    with pytest.raises(LocalProtocolError):
        next_child_state(ChildSaState.DELETED, ChildSaTrigger.REKEY_STARTED)
