"""Fixtures for the wire codec tests: the strongSwan captures, their IKE keys, and toy protectors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from vectors import ike_messages, key_table, require_vectors
from wire_helpers import CAPTURES, REKEY_CAPTURE, CaptureOpener, XorProtector

from ikesim.wire.message import Message


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The strongSwan vectors directory shipped in tests/vectors (a missing one fails the test)."""
    return require_vectors()


@pytest.fixture(scope="session")
def rekey_messages(vectors_dir: Path) -> list[bytes]:
    """The 20 IKE messages of ike_gcm_cbc_rekey.pcap, in capture order."""
    return ike_messages(vectors_dir / REKEY_CAPTURE)


@pytest.fixture(scope="session")
def all_vector_messages(vectors_dir: Path) -> list[bytes]:
    """Every IKE message of the three captures."""
    return [m for name in CAPTURES for m in ike_messages(vectors_dir / name)]


@pytest.fixture
def xor_protector() -> XorProtector:
    """A fresh toy protector."""
    return XorProtector()


@pytest.fixture(scope="session")
def capture_opener(vectors_dir: Path) -> Callable[[Message, str], CaptureOpener]:
    """``opener(msg, key_table_path)``: a protector that opens *msg* with the Wireshark table's keys."""
    tables: dict[str, dict[str, list[str]]] = {}

    def make(msg: Message, table: str) -> CaptureOpener:
        if table not in tables:
            tables[table] = {row[0]: row for row in key_table(vectors_dir / table)}
        return CaptureOpener(tables[table][msg.spi_i.hex()], msg.from_original_initiator)

    return make
