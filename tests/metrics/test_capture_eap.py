"""tshark on the capture of EAP in IKE_AUTH (RFC 7296 §2.16): every IKE_AUTH round decrypts with the key table the
run wrote, Wireshark's EAP dissector reads the EAP messages inside (codes, types, the MS-CHAPv2 opcodes and the
MD5 challenge), and nothing is malformed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark

import ikesim
from ikesim.scenario.load import load_scenario_text

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

SCENARIO = """
name: eap-capture
seed: 3
duration: 5s
nodes:
  c: {addresses: [10.0.0.1]}
  g: {addresses: [10.0.0.2]}
links: [{between: [c, g], delay: 5ms}]
connections:
  vpn:
    initiator: c
    responder: g
    auth: {method: psk, psk: gwkey, eap: {method: %s, secret: pw, identity_request: true}}
"""


def _run(tmp: Path, method: str) -> Path:
    r = ikesim.run(load_scenario_text(SCENARIO % method, "eap-capture.yaml"))
    r.write(tmp)
    return tmp


def _eap_rows(d: Path) -> list[tuple[str, ...]]:
    out = tshark(d, "-Y", "eap", "-T", "fields", "-e", "isakmp.messageid", "-e", "eap.code", "-e", "eap.type",
                 "-E", "occurrence=f")
    return [tuple(line.split("\t")) for line in out.splitlines()]


def test_mschapv2_rounds_decrypt_and_dissect(tmp_path: Path) -> None:
    """EAP-Identity, then MS-CHAPv2 Challenge/Response/Success/ack, EAP-Success: 5 IKE_AUTH exchanges, all decrypted;
    Wireshark sees EAP code/type in each, in order."""
    d = _run(tmp_path, "mschapv2")
    assert tshark(d, "-Y", "_ws.malformed || (isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted)") == ""
    assert _eap_rows(d) == [
        ("0x00000001", "1", "1"), ("0x00000002", "2", "1"),
        ("0x00000002", "1", "26"), ("0x00000003", "2", "26"),
        ("0x00000003", "1", "26"), ("0x00000004", "2", "26"),
        ("0x00000004", "3", ""),
    ]
    opcodes = tshark(d, "-Y", "eap.ms_chap_v2.opcode", "-T", "fields", "-e", "eap.ms_chap_v2.opcode").split()
    assert opcodes == ["1", "2", "3", "3"]
    names = tshark(d, "-Y", "eap.ms_chap_v2.name", "-T", "fields", "-e", "eap.ms_chap_v2.name").split()
    assert names == ["strongSwan", "client@sim.test"]


def test_md5_rounds_decrypt_and_dissect(tmp_path: Path) -> None:
    """EAP-Identity, MD5-Challenge and its response, EAP-Success, then AUTH: Wireshark reads the 16-octet values."""
    d = _run(tmp_path, "md5")
    assert tshark(d, "-Y", "_ws.malformed || (isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted)") == ""
    assert _eap_rows(d) == [("0x00000001", "1", "1"), ("0x00000002", "2", "1"), ("0x00000002", "1", "4"),
                            ("0x00000003", "2", "4"), ("0x00000003", "3", "")]
    sizes = tshark(d, "-Y", "eap.md5.value_size", "-T", "fields", "-e", "eap.md5.value_size").split()
    assert sizes == ["16", "16"]
