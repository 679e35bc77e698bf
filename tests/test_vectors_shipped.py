"""The strongSwan vectors ship inside the repository, and a missing one fails the tests instead of skipping them."""

from __future__ import annotations

from pathlib import Path

import pytest
import vectors

ROOT = Path(__file__).resolve().parents[1]


def test_vectors_are_inside_the_repository() -> None:
    """tests/vectors/strongswan holds the captures, key tables and logs the vector tests read, with a README."""
    assert vectors.require_vectors() == ROOT / "tests" / "vectors" / "strongswan"
    for name in ("ike_gcm_cbc_rekey.pcap", "esp_synthetic_real_keys.pcap", "scapy_sa_init_vs_strongswan.pcap",
                 "charon-init.log", "charon-resp.log", "keys/ikev2_decryption_table", "keys/esp_sa",
                 "childfail/ike_port500_childfail.pcap", "childfail/ikev2_decryption_table", "childfail/charon-resp.log"):
        assert (vectors.VECTORS_DIR / name).stat().st_size > 0, name
    assert "How they were made" in (ROOT / "tests" / "vectors" / "README.md").read_text()


def test_missing_vectors_fail_the_test(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without the files, require_vectors fails (pytest.fail), naming the directory; it never skips."""
    monkeypatch.setattr(vectors, "VECTORS_DIR", tmp_path)
    with pytest.raises(pytest.fail.Exception, match="strongSwan vectors missing from"):
        vectors.require_vectors()
