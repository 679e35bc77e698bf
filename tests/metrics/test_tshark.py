"""tshark as an independent oracle: the capture and key tables of a real two-daemon run decode and decrypt."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from metrics_helpers import scripted_run
from tshark_run import tshark

from ikesim.metrics.results import Results

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")


_tshark = tshark


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Results, Path]:
    """The scripted run (CHILD rekeys, an IKE rekey, deletes, DPD), written to a directory."""
    r = scripted_run()
    out = tmp_path_factory.mktemp("tshark")
    r.write(out)
    return r, out


def test_no_malformed_packets(written: tuple[Results, Path]) -> None:
    """tshark flags no frame as malformed."""
    _r, out = written
    assert _tshark(out, "-Y", "_ws.malformed") == ""
    assert len(_tshark(out, "-T", "fields", "-e", "frame.number").split()) == 24


def test_every_sk_payload_decrypts_including_after_the_ike_rekey(written: tuple[Results, Path]) -> None:
    """Every frame but the two IKE_SA_INIT ones carries an SK payload that decrypts with the exported keys."""
    r, out = written
    rows = [line.split("\t") for line in
            _tshark(out, "-T", "fields", "-e", "isakmp.ispi", "-e", "isakmp.exchangetype",
                    "-e", "isakmp.enc.decrypted").splitlines()]
    assert [row[1] for row in rows[:2]] == ["34", "34"]
    assert all(row[2] for row in rows[2:]), [i + 1 for i, row in enumerate(rows[2:], 2) if not row[2]]
    assert len({row[0] for row in rows}) == 2  # frames on the original and the rekeyed IKE_SA


def test_ike_auth_shows_identities_auth_sa_and_traffic_selectors(written: tuple[Results, Path]) -> None:
    """The decrypted IKE_AUTH request and response show IDi/IDr, PSK AUTH, SA and TSi/TSr."""
    _r, out = written
    text = _tshark(out, "-Y", "isakmp.exchangetype == 35", "-V")
    for needle in ("Payload: Identification - Initiator (35)", "Payload: Identification - Responder (36)",
                   "Payload: Authentication (39)", "Shared Key Message Integrity Code",
                   "Payload: Security Association (33)", "Payload: Traffic Selector - Initiator (44)",
                   "Payload: Traffic Selector - Responder (45)", "client@sim.test"):
        assert needle in text, needle
    assert text.count("Payload: Authentication (39)") == 2


def test_rekey_sa_notify_marks_exactly_the_child_rekey_requests(written: tuple[Results, Path]) -> None:
    """REKEY_SA (16393) appears in exactly the CREATE_CHILD_SA requests of the CHILD rekeys, nowhere else."""
    r, out = written
    frames = {int(x) for x in _tshark(out, "-Y", "isakmp.notify.msgtype == 16393", "-T", "fields",
                                      "-e", "frame.number").split()}
    rekeys = r.exchanges[r.exchanges["purpose"] == "rekey_child"]
    p = r.packets
    expected = set()
    for spi_i, mid in zip(rekeys["spi_i"], rekeys["message_id"], strict=True):
        hit = p[(p["spi_i"] == spi_i) & (p["message_id"] == mid) & ~p["response"] & (p["exchange"] == "CREATE_CHILD_SA")]
        expected |= set(hit["id"])
    assert len(expected) == 2 and frames == expected


def test_ike_rekey_carries_a_new_ike_sa_proposal(written: tuple[Results, Path]) -> None:
    """The IKE rekey's CREATE_CHILD_SA request decrypts to an SA proposal with an 8-byte SPI and a KE payload."""
    r, out = written
    ex = r.exchanges[r.exchanges["purpose"] == "rekey_ike"].iloc[0]
    p = r.packets
    frame = int(p[(p["spi_i"] == ex["spi_i"]) & (p["message_id"] == ex["message_id"]) & ~p["response"]
                  & (p["exchange"] == "CREATE_CHILD_SA")]["id"].iloc[0])
    text = _tshark(out, "-Y", f"frame.number == {frame}", "-V")
    assert "Protocol ID: IKE (1)" in text and "SPI Size: 8" in text and "Payload: Key Exchange (34)" in text
