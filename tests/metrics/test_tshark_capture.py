"""tshark as the oracle for what the capture and key tables say: IP fragments on the wire, failed IKE_AUTHs decrypt.

- A datagram a link IP-fragments is in capture.pcap as its IPv4 fragments (RFC 791 §3.2); tshark reassembles them
  and decrypts the IKE message inside. The capture is the sender's view, so fragments a black-hole link drops are
  there too.
- The decryption table has every IKE_SA that derived keys (``IkeSaKeysDerived``), so the IKE_AUTH of a PSK
  mismatch decrypts and shows N(AUTHENTICATION_FAILED) (RFC 7296 §2.21.2).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from metrics_helpers import psk_mismatch_run
from tshark_run import tshark

import ikesim

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("-T", "fields", "-e", "frame.number", "-e", "ip.id", "-e", "ip.flags.mf", "-e", "isakmp.exchangetype",
          "-e", "isakmp.enc.decrypted", "-e", "isakmp.notify.msgtype")


def _fragmentation_off(tmp_path: Path, *, black_hole: bool) -> list[list[str]]:
    """fragmentation-off.yaml (IKE_AUTH of ~1.9 KB, no RFC 7383) on MTU 1500, written; tshark's rows per frame."""
    text = (ROOT / "scenarios" / "fragmentation-off.yaml").read_text()
    if not black_hole:
        text = text.replace(", drop_fragments: true", "")
    r = ikesim.run(text)
    assert r.summary["sas"]["ike_established"] == (0 if black_hole else 2)
    r.write(tmp_path)
    return [line.split("\t") for line in tshark(tmp_path, *FIELDS).splitlines()]


def test_ip_fragmented_ike_auth_is_in_the_capture_as_fragments_and_decrypts(tmp_path: Path) -> None:
    """Both IKE_AUTH messages: a 1500-byte first fragment (MF set) and a last one of the same IP ID, reassembled
    by tshark into an IKE_AUTH that decrypts; IKE_SA_INIT stays whole. Nothing is malformed."""
    rows = _fragmentation_off(tmp_path, black_hole=False)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        ("1", "0x0001", "0", "34"), ("2", "0x0002", "0", "34"),
        ("3", "0x0003", "1", ""), ("4", "0x0003", "0", "35"),
        ("5", "0x0004", "1", ""), ("6", "0x0004", "0", "35")]
    assert rows[3][4] and rows[5][4]  # the reassembled IKE_AUTH request and response decrypt
    assert tshark(tmp_path, "-Y", "ip.flags.mf == 1", "-T", "fields", "-e", "frame.len").split() == ["1500", "1500"]
    reassembled = tshark(tmp_path, "-Y", "ip.fragment.count", "-T", "fields", "-e", "frame.number", "-e", "ip.fragment")
    assert reassembled.split() == ["4", "3,4", "6", "5,6"]
    assert tshark(tmp_path, "-Y", "_ws.malformed") == ""


def test_fragments_a_black_hole_drops_are_in_the_capture_and_decrypt(tmp_path: Path) -> None:
    """drop_fragments: the sender's IKE_AUTH and its 5 retransmissions are each 2 fragments in the capture; the
    IKE_SA never establishes, yet each reassembled request decrypts with the keys IKE_SA_INIT derived."""
    rows = _fragmentation_off(tmp_path, black_hole=True)
    assert len(rows) == 2 + 6 * 2
    assert [r[2] for r in rows[2:]] == ["1", "0"] * 6
    assert [r[3] for r in rows[2:]] == ["", "35"] * 6
    assert all(r[4] for r in rows[3::2])


def test_ike_auth_of_a_psk_mismatch_decrypts(tmp_path: Path) -> None:
    """PSK mismatch: no IKE_SA is established, yet both IKE_AUTH frames decrypt and the response is
    N(AUTHENTICATION_FAILED) (24)."""
    r = psk_mismatch_run()
    assert r.summary["sas"]["ike_established"] == 0
    r.write(tmp_path)
    rows = [line.split("\t") for line in tshark(tmp_path, *FIELDS).splitlines()]
    assert [r[3] for r in rows] == ["34", "34", "35", "35"]
    assert rows[2][4] and rows[3][4]
    assert rows[3][5] == "24"
