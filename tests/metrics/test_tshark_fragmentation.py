"""tshark as an independent oracle for IKE fragmentation (RFC 7383): the SKF fragments decode, reassemble, decrypt.

The run is the fragmentation-rfc7383 scenario without its ``drop_fragments`` link option (the MTU of
1500 already keeps the unfragmented IKE_AUTH off the path), so it does not depend on that option.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark

import ikesim
from ikesim.metrics.results import Results

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

ROOT = Path(__file__).resolve().parents[2]


_tshark = tshark


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path]:
    """The fragmentation scenario (CA -> 3 intermediates -> end entity over MTU 1500), written to a directory."""
    text = (ROOT / "scenarios" / "fragmentation-rfc7383.yaml").read_text().replace(", drop_fragments: true", "")
    r = ikesim.run(text)
    out = tmp_path_factory.mktemp("tshark-frag")
    r.write(out)
    return r, out


def test_run_fragments_both_ike_auth_messages(written: tuple[Results, Path]) -> None:
    """Both ends establish; the IKE_AUTH request and response went out as 2 fragments each."""
    r, _out = written
    assert r.summary["sas"]["ike_established"] == 2
    events = r.events
    assert (events["event"] == "MessageFragmented").sum() == 2
    assert (events["event"] == "MessageReassembled").sum() == 2


def test_no_malformed_packets(written: tuple[Results, Path]) -> None:
    """tshark flags no frame as malformed: 2 IKE_SA_INIT frames and 4 SKF fragments."""
    _r, out = written
    assert _tshark(out, "-Y", "_ws.malformed") == ""
    assert len(_tshark(out, "-T", "fields", "-e", "frame.number").split()) == 6


def test_fragments_are_shown_and_each_decrypts(written: tuple[Results, Path]) -> None:
    """Frames 3-6 are IKE_AUTH fragments 1/2 and 2/2 (Wireshark's SKF fields), each decrypted with the exported keys."""
    _r, out = written
    rows = [line.split("\t") for line in
            _tshark(out, "-T", "fields", "-e", "isakmp.exchangetype", "-e", "isakmp.frag.number",
                    "-e", "isakmp.frag.total", "-e", "isakmp.enc.decrypted").splitlines()]
    assert [row[:3] for row in rows[2:]] == [["35", "1", "2"], ["35", "2", "2"]] * 2
    assert all(row[3] for row in rows[2:])


def test_reassembled_ike_auth_shows_ids_and_the_certificate_chain(written: tuple[Results, Path]) -> None:
    """After reassembly tshark shows IDi, 4 CERT payloads (end entity + 3 intermediates), AUTH, SA, TSi/TSr."""
    _r, out = written
    summary = _tshark(out, "-Y", "isakmp.exchangetype == 35")
    assert summary.count("(reassembled)") == 2
    request = _tshark(out, "-Y", "frame.number == 4", "-V")  # fragment 2/2 of the request: the reassembled message
    for needle in ("Payload: Identification - Initiator (35)", "alice@corp.sim.test", "Payload: Authentication (39)",
                   "Payload: Security Association (33)", "Payload: Traffic Selector - Initiator (44)"):
        assert needle in request, needle
    assert request.count("Payload: Certificate (37)") == 4
    response = _tshark(out, "-Y", "frame.number == 6", "-V")
    assert "Payload: Identification - Responder (36)" in response
    assert response.count("Payload: Certificate (37)") == 4
