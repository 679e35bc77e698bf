"""tshark as the oracle for the newly supported algorithms: every SK payload decrypts and every ESP ICV verifies
(AES-GCM-192, HMAC-SHA1-96, HMAC-SHA-384, PRF-SHA1/384 key derivation, ECP-384/521 and Curve448 shared secrets).
ChaCha20-Poly1305 has no name in Debian's tshark 4.0 (neither IKEv2 nor ESP): its key tables are checked as text."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

import ikesim
from ikesim.runner import write_results_atomically
from ikesim.scenario.load import load_scenario_text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from algorithm_scenario import SCENARIO  # noqa: E402
from tshark_run import tshark  # noqa: E402

_ESP = ("-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE")


def _run(tmp_path: Path, ike: str, esp: str) -> Path:
    out = tmp_path / "r"
    model = load_scenario_text(SCENARIO.replace("IKE", ike).replace("ESP", esp), "algorithms.yaml")
    write_results_atomically(ikesim.run(model), out)
    return out


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize(("ike", "esp", "ike_name"), [
    ("aes192gcm16-prfsha384-ecp521", "aes256-sha384-ecp384", '"AES-GCM-192 with 16 octet ICV [RFC5282]"'),
    ("aes256-sha1-prfsha1-x448", "aes128-sha1", '"HMAC_SHA1_96 [RFC2404]"'),
    ("aes128-sha384-prfsha384-ecp384", "aes192gcm16", '"HMAC_SHA2_384_192 [RFC4868]"'),
])
def test_tshark_decrypts_ike_and_verifies_esp(tmp_path: Path, ike: str, esp: str, ike_name: str) -> None:
    """5 IKE_SAs in the table; 42 of 44 IKE frames decrypt (all but IKE_SA_INIT), nothing malformed; all 158
    captured ESP packets pass Wireshark's ICV check, none fails."""
    out = _run(tmp_path, ike, esp)
    table = (out / "ikev2_decryption_table").read_text().splitlines()
    assert len(table) == 5 and all(ike_name in line for line in table)
    assert len(tshark(out, "-Y", "isakmp").splitlines()) == 44
    assert len(tshark(out, "-Y", "isakmp.enc.decrypted").splitlines()) == 42
    assert tshark(out, "-Y", "_ws.malformed") == ""
    assert len(tshark(out, *_ESP, "-Y", "esp").splitlines()) == 158
    assert len(tshark(out, *_ESP, "-Y", "esp.icv_good == 1").splitlines()) == 158
    assert tshark(out, *_ESP, "-Y", "esp.icv_bad == 1") == ""


def test_chacha20poly1305_key_tables(tmp_path: Path) -> None:
    """No ikev2_decryption_table line (Wireshark names no ChaCha20 for IKEv2: a line would be refused); esp_sa
    lines use Wireshark 4.2's name with the 36-byte key (key | salt, RFC 7634 §4)."""
    out = _run(tmp_path, "chacha20poly1305-prfsha256-x448", "chacha20poly1305")
    assert (out / "ikev2_decryption_table").read_text().strip() == ""
    esp = [line.split(",") for line in (out / "esp_sa").read_text().splitlines()]
    assert len(esp) == 14
    assert {(f[4], len(f[5]), f[6]) for f in esp} == {('"ChaCha20 with Poly1305 [RFC7634]"', 2 + 2 + 72, '"NULL"')}
