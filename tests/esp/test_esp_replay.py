"""The anti-replay window (RFC 4303 §3.4.3) and ESN inference (RFC 4303 Appendix A2)."""

from __future__ import annotations

import pytest

from ikesim.esp import OUTSIDE_WINDOW, REPLAYED, ReplayWindow

LOW = 2**32


def test_first_packet_of_a_fresh_window_is_accepted():
    """Before any packet, 1 is new and 0 (never sent, §3.3.3) lies left of the window."""
    w = ReplayWindow(32, esn=False)
    assert w.check(1) == 1
    assert w.check(0) == OUTSIDE_WINDOW
    assert (w.top, w.bitmap) == (0, 0)


def test_check_does_not_change_the_window():
    """check() only looks; the window moves on update() (after the ICV passed)."""
    w = ReplayWindow(32, esn=False)
    assert w.check(5) == 5
    assert w.check(5) == 5
    w.update(5)
    assert w.check(5) == REPLAYED
    assert (w.top, w.bitmap) == (5, 1)


@pytest.mark.parametrize("size", [32, 64, 1024])
def test_window_edges(size):
    """top - (size - 1) is the oldest number still inside; top - size is left of the window."""
    w = ReplayWindow(size, esn=False)
    top = 5000
    w.update(top)
    assert w.check(top - size + 1) == top - size + 1
    assert w.check(top - size) == OUTSIDE_WINDOW
    assert w.check(top) == REPLAYED
    assert w.check(top + 1) == top + 1
    w.update(top - size + 1)
    assert w.check(top - size + 1) == REPLAYED
    assert w.bitmap == 1 | (1 << (size - 1))


def test_duplicates_inside_the_window():
    """A number received once is REPLAYED on every later copy; its neighbours stay acceptable."""
    w = ReplayWindow(32, esn=False)
    for seq in (1, 3, 2, 7):
        w.update(seq)
    assert [w.check(s) for s in range(1, 9)] == [REPLAYED, REPLAYED, REPLAYED, 4, 5, 6, REPLAYED, 8]
    assert (w.top, w.bitmap) == (7, 0b1110001)


def test_slide_keeps_bits_that_stay_inside():
    """Sliding right by k shifts the bitmap by k; numbers shifted out become OUTSIDE_WINDOW."""
    w = ReplayWindow(32, esn=False)
    w.update(10)
    w.update(40)  # 10 is 30 back: still inside
    assert w.check(10) == REPLAYED
    assert w.check(9) == 9  # 31 back: the window's bottom
    assert w.check(8) == OUTSIDE_WINDOW
    w.update(42)  # 10 is 32 back now: outside
    assert w.check(10) == OUTSIDE_WINDOW
    assert w.check(11) == 11
    assert w.bitmap == 0b101  # bits 0 (42) and 2 (40); 10 was shifted out


def test_large_jump_clears_the_window():
    """A jump by more than the window leaves only the new top marked."""
    w = ReplayWindow(64, esn=False)
    for seq in range(1, 65):
        w.update(seq)
    assert w.bitmap == 2**64 - 1
    w.update(1_000_000)
    assert (w.top, w.bitmap) == (1_000_000, 1)
    assert w.check(64) == OUTSIDE_WINDOW
    assert w.check(999_999) == 999_999


def test_bitmap_stays_within_the_window_size():
    """The int bitmask never grows past size bits, however many packets arrive."""
    w = ReplayWindow(32, esn=False)
    for seq in range(1, 500, 3):
        w.update(seq)
    assert w.bitmap < 2**32
    assert w.top == 499


def test_size_zero_turns_anti_replay_off():
    """Window 0 (strongSwan replay_window = 0): duplicates and old numbers all pass."""
    w = ReplayWindow(0, esn=False)
    w.update(100)
    assert w.check(100) == 100
    assert w.check(1) == 1
    assert w.check(0) == 0
    assert (w.top, w.bitmap) == (100, 0)


def test_negative_size_is_refused():
    """A window cannot have a negative size."""
    with pytest.raises(ValueError):
        ReplayWindow(-1, esn=False)


def test_non_esn_accepts_the_last_number():
    """Without ESN the window runs up to 2^32 - 1 (RFC 4303 §3.3.3)."""
    w = ReplayWindow(32, esn=False)
    w.update(LOW - 2)
    assert w.check(LOW - 1) == LOW - 1
    w.update(LOW - 1)
    assert w.check(LOW - 1) == REPLAYED


# --- ESN: RFC 4303 Appendix A2.1 -----------------------------------------------------------------------


def test_esn_case_a_same_subspace():
    """Case A (Tl >= W - 1): Seql >= Tl - W + 1 keeps Th, a smaller Seql is taken as the next subspace."""
    w = ReplayWindow(32, esn=True)
    w.update(LOW + 100)  # Th = 1, Tl = 100
    assert w.check(90) == LOW + 90
    assert w.check(69) == LOW + 69  # Tl - W + 1: the window's bottom
    assert w.check(200) == LOW + 200
    assert w.check(50) == 2 * LOW + 50  # below the bottom: Th + 1 (far ahead; the ICV decides)


def test_esn_high_bits_increment_across_2_32():
    """The first numbers past 2^32 - 1 arrive as 0, 1, 2 ... and are inferred as 2^32, 2^32 + 1 ..."""
    w = ReplayWindow(32, esn=True)
    w.update(LOW - 2)  # Th = 0, Tl = 2^32 - 2
    assert w.check(LOW - 1 & 0xFFFFFFFF) == LOW - 1
    assert w.check(0) == LOW
    assert w.check(3) == LOW + 3
    w.update(LOW + 3)
    assert (w.top, w.bitmap & 1) == (LOW + 3, 1)


def test_esn_case_b_packet_from_before_the_wrap_arrives_after_it():
    """Case B (Tl < W - 1): a late Seql just below 2^32 belongs to Th - 1 and is checked in the window."""
    w = ReplayWindow(32, esn=True)
    w.update(LOW - 1 - 10)
    w.update(LOW + 3)  # Th = 1, Tl = 3: the window spans 2^32 - 28 .. 2^32 + 3
    assert w.check(0xFFFFFFFF) == LOW - 1
    assert w.check(0xFFFFFFFF - 27) == LOW - 28  # the window's bottom, (Tl - W + 1) mod 2^32
    assert w.check(0xFFFFFFFF - 28) == LOW + 0xFFFFFFFF - 28  # below it: Th, i.e. far ahead
    assert w.check(0xFFFFFFFF - 10) == REPLAYED
    assert w.check(2) == LOW + 2
    w.update(LOW - 1)
    assert w.check(0xFFFFFFFF) == REPLAYED
    assert w.bitmap == 1 | (1 << 4) | (1 << 14)


def test_esn_fresh_window_refuses_numbers_below_zero():
    """At the start (T = 0) a Seql near 2^32 infers Seqh = -1: left of every valid number."""
    w = ReplayWindow(32, esn=True)
    assert w.check(1) == 1
    assert w.check(0xFFFFFFF0) == OUTSIDE_WINDOW
    assert w.check(0) == OUTSIDE_WINDOW


def test_esn_top_of_the_64_bit_space():
    """2^64 - 1 is the last number; nothing is inferred beyond it."""
    w = ReplayWindow(32, esn=True)
    w.update(2**64 - 5)
    assert w.check(0xFFFFFFFF) == 2**64 - 1
    w.update(2**64 - 1)
    assert w.check(0) == OUTSIDE_WINDOW  # would be 2^64
    assert w.check(0xFFFFFFFE) == 2**64 - 2


def test_esn_with_anti_replay_off_still_infers_high_bits():
    """Window 0 with ESN: no replay check, but the high bits still follow the highest authenticated number."""
    w = ReplayWindow(0, esn=True)
    w.update(LOW - 1)
    assert w.check(0) == LOW
    w.update(LOW)
    assert w.check(0) == LOW  # a duplicate passes
    assert w.check(5) == LOW + 5
