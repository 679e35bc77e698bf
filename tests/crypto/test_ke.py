"""Key exchange groups 14, 19, 31 (RFC 7296 §3.4; RFC 3526; RFC 5903; RFC 8031)."""

from __future__ import annotations

import pytest

from ikesim.crypto.ke import new_key_exchange
from ikesim.errors import InvalidKeyExchangeData
from ikesim.rng import Rng


@pytest.mark.parametrize("group", [14, 19, 31])
def test_key_exchange_agrees_and_is_seeded(group: int) -> None:
    """Both sides derive the same g^ir; the same seed gives the same public value."""
    a, b = new_key_exchange(group, Rng(1, "a")), new_key_exchange(group, Rng(1, "b"))
    assert a.compute_shared(b.public_bytes) == b.compute_shared(a.public_bytes)
    assert new_key_exchange(group, Rng(1, "a")).public_bytes == a.public_bytes
    assert new_key_exchange(group, Rng(2, "a")).public_bytes != a.public_bytes


@pytest.mark.parametrize("group,bad", [
    (31, b"\x00" * 31), (31, b"\x00" * 32), (19, b"\x01" * 64), (19, b"\x00" * 10), (14, b"\x00" * 256),
    (14, (1).to_bytes(256, "big")),
])
def test_invalid_peer_key_exchange_data(group: int, bad: bytes) -> None:
    """Wrong lengths, off-curve points, small-order and degenerate values raise InvalidKeyExchangeData."""
    with pytest.raises(InvalidKeyExchangeData):
        new_key_exchange(group, Rng(3)).compute_shared(bad)
