"""tshark on the capture of an EAP-TLS reauthentication resumed with the abbreviated handshake (RFC 5216 §2.1.3,
RFC 5246 §7.3): every IKE_AUTH round of the full and of the abbreviated handshake decrypts with the key table the run
wrote, Wireshark's EAP dissector reads each EAP-TLS message (code, type, length, flags), and nothing is malformed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark

import ikesim
from ikesim.scenario.load import load_scenario_text

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

SCENARIO = """
name: eap-tls-fast-capture
seed: 5
duration: 3min
nodes:
  c: {addresses: [10.0.0.1]}
  g: {addresses: [10.0.0.2]}
links: [{between: [c, g], delay: 10ms}]
connections:
  vpn:
    initiator: c
    responder: g
    auth: {method: psk, psk: gwkey, eap: {method: tls, fast_reauth: true}}
    ike: {reauth_time: 2min, rand_time: 0s}
"""


def test_abbreviated_eap_tls_rounds_decrypt_and_dissect(tmp_path: Path) -> None:
    """The first authentication: Start, ClientHello, the server flight in 4 fragments (L then M flags, 3965 octets),
    the client's in 2 (1401), Finished, Success; the reauthentication 2 min later: Start, ClientHello (251),
    ServerHello + CCS + Finished in one unflagged fragment (156), CCS + Finished (57), Success."""
    ikesim.run(load_scenario_text(SCENARIO, "eap-tls-fast-capture.yaml")).write(tmp_path)
    assert tshark(tmp_path, "-Y", "_ws.malformed || _ws.expert.severity >= 6291456 || "
                  "(isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted)") == ""
    out = tshark(tmp_path, "-Y", "eap", "-T", "fields", "-e", "isakmp.messageid", "-e", "eap.code", "-e", "eap.type",
                 "-e", "eap.len", "-e", "eap.tls.flags", "-e", "eap.tls.len", "-E", "occurrence=f")
    rows = [tuple(line.split("\t")) for line in out.splitlines()]
    full = [("0x00000001", "1", "13", "6", "0x20", ""), ("0x00000002", "2", "13", "251", "0x00", ""),
            ("0x00000002", "1", "13", "1024", "0xc0", "3965"), ("0x00000003", "2", "13", "6", "0x00", ""),
            ("0x00000003", "1", "13", "1020", "0x40", ""), ("0x00000004", "2", "13", "6", "0x00", ""),
            ("0x00000004", "1", "13", "1020", "0x40", ""), ("0x00000005", "2", "13", "6", "0x00", ""),
            ("0x00000005", "1", "13", "929", "0x00", ""), ("0x00000006", "2", "13", "1024", "0xc0", "1401"),
            ("0x00000006", "1", "13", "6", "0x00", ""), ("0x00000007", "2", "13", "393", "0x00", ""),
            ("0x00000007", "1", "13", "57", "0x00", ""), ("0x00000008", "2", "13", "6", "0x00", ""),
            ("0x00000008", "3", "", "4", "", "")]
    abbreviated = [("0x00000001", "1", "13", "6", "0x20", ""), ("0x00000002", "2", "13", "251", "0x00", ""),
                   ("0x00000002", "1", "13", "156", "0x00", ""), ("0x00000003", "2", "13", "57", "0x00", ""),
                   ("0x00000003", "3", "", "4", "", "")]
    assert rows == full + abbreviated
    auth = tshark(tmp_path, "-Y", "isakmp.exchangetype == 35", "-T", "fields", "-e", "isakmp.messageid").split()
    assert len(auth) == 2 * (9 + 4)  # requests and responses: 9 exchanges, then 4
