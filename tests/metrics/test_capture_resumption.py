"""tshark on the capture of a gateway restart with RFC 5723 session resumption: Wireshark decodes IKE_SESSION_RESUME
(exchange type 38) with its Nonce and N(TICKET_OPAQUE), and decrypts the IKE_AUTH that follows with the keys the run
wrote (derived from the ticket's SK_d, RFC 5723 §5.1), whose AUTH is a Shared Key MIC (§4.3.3); a rejected ticket
(N(TICKET_NACK), a restart that lost the ticket key) is decoded too, and nothing is malformed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark

import ikesim
from ikesim.scenario.load import load_scenario_text

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

SCENARIO = """
name: resume-capture
seed: 3
duration: 4min
nodes:
  gw: {addresses: [198.51.100.1]SECRET}
fleet:
  clients: 3
  client_subnet: 10.1.0.0/24
  gateway: gw
  link: {delay: 10ms}
  start: {spread: 3s}
  connection:
    ike: {dpd_delay: 5s, dpd_action: restart, resumption: true, retransmit: {timeout: 1s, tries: 2}}
actions:
  - {at: 30s, node: gw, action: restart}
"""


def _run(tmp: Path, secret: bool) -> tuple[Path, ikesim.Results]:
    text = SCENARIO.replace("SECRET", ", ticket_secret: kept" if secret else "")
    r = ikesim.run(load_scenario_text(text, "resume-capture.yaml"))
    r.write(tmp)
    return tmp, r


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ikesim.Results]:
    return _run(tmp_path_factory.mktemp("kept"), True)


@pytest.fixture(scope="module")
def lost(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ikesim.Results]:
    return _run(tmp_path_factory.mktemp("lost"), False)


def _fields(d: Path, filt: str, *fields: str) -> list[list[str]]:
    args = [a for f in fields for a in ("-e", f)]
    out = tshark(d, "-Y", filt, "-T", "fields", *args, "-E", "occurrence=a")
    return [line.split("\t") for line in out.splitlines()]


def test_resume_exchange_is_decoded_and_the_ike_auth_after_it_decrypts(kept: tuple[Path, ikesim.Results]) -> None:
    d, r = kept
    assert tshark(d, "-Y", "_ws.malformed") == ""
    assert tshark(d, "-Y", "isakmp && isakmp.exchangetype != 34 && isakmp.exchangetype != 38 "
                           "&& !isakmp.enc.decrypted") == ""
    resume = _fields(d, "isakmp.exchangetype == 38", "isakmp.rspi", "isakmp.flags", "isakmp.nextpayload",
                     "isakmp.notify.msgtype")
    assert len(resume) == 6  # 3 requests, 3 answers
    requests = [row for row in resume if row[0] == "0000000000000000"]
    assert len(requests) == 3
    assert all(row[3].split(",") == ["16413", "16388", "16389"] for row in requests)  # TICKET_OPAQUE, NATD_S, NATD_D
    answers = [row for row in resume if row[0] != "0000000000000000"]
    assert all(row[3].split(",") == ["16388", "16389"] for row in answers)
    # the IKE_AUTH after each resumption: Shared Key MIC (2) both ways, TICKET_REQUEST then TICKET_LT_OPAQUE
    spis = {row[0] for row in answers}
    auth = _fields(d, "isakmp.exchangetype == 35 && isakmp.enc.decrypted", "isakmp.rspi", "isakmp.auth.method",
                   "isakmp.notify.msgtype")
    after = [row for row in auth if row[0] in spis]
    assert len(after) == 6
    assert {row[1] for row in after} == {"2"}
    assert sorted(row[2] for row in after) == ["16409"] * 3 + ["16410"] * 3
    assert (r.exchanges["purpose"] == "resume").sum() == 3


def test_rejected_ticket_is_decoded_and_the_fallback_decrypts(lost: tuple[Path, ikesim.Results]) -> None:
    d, r = lost
    assert tshark(d, "-Y", "_ws.malformed") == ""
    assert tshark(d, "-Y", "isakmp && isakmp.exchangetype != 34 && isakmp.exchangetype != 38 "
                           "&& !isakmp.enc.decrypted") == ""
    nacks = _fields(d, "isakmp.exchangetype == 38 && isakmp.flags == 0x20", "isakmp.rspi", "isakmp.notify.msgtype")
    assert nacks == [["0000000000000000", "16412"]] * 3  # N(TICKET_NACK), no SPIr
    outcomes = r.exchanges[r.exchanges["purpose"] == "resume"]["outcome"].tolist()
    assert outcomes == ["TICKET_NACK"] * 3
    assert (r.exchanges["purpose"] == "ike_sa_init").sum() == 6
