"""Fixtures for the sans-IO IKE tests (helpers live in ``ikepeers``)."""

from __future__ import annotations

import pytest
from ikepeers import Peers, make_peers


@pytest.fixture
def peers() -> Peers:
    """Client and gateway with PSK auth and default policies."""
    return make_peers()
