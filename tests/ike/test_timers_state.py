"""The deadline book and the lifecycle transition tables (RFC 7296 §2.1, §2.8)."""

from __future__ import annotations

import pytest

from ikesim.errors import LocalProtocolError
from ikesim.ike.state import (
    ChildSaState,
    ChildSaTrigger,
    IkeSaState,
    IkeSaTrigger,
    next_child_state,
    next_ike_state,
)
from ikesim.ike.timers import DeadlineBook


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


def test_transition_tables() -> None:
    """Legal transitions follow the tables; an illegal one raises LocalProtocolError."""
    s = next_ike_state(IkeSaState.CONNECTING, IkeSaTrigger.AUTHENTICATED)
    assert s is IkeSaState.ESTABLISHED
    assert next_child_state(ChildSaState.REKEYING, ChildSaTrigger.REPLACED) is ChildSaState.REKEYED
    with pytest.raises(LocalProtocolError, match="cannot handle replaced"):
        next_ike_state(IkeSaState.CONNECTING, IkeSaTrigger.REPLACED)
    with pytest.raises(LocalProtocolError):
        next_child_state(ChildSaState.DELETED, ChildSaTrigger.REKEY_STARTED)
