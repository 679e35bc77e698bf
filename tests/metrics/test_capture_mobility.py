"""tshark on the captures of mobility runs: every IKE message (MOBIKE path tests and UPDATE_SA_ADDRESSES included)
and every captured ESP packet decrypts with the key tables the run wrote, before and after the moves, and nothing is
malformed (RFC 4555; the ``esp_sa`` table has ``*`` addresses, so a moved SA still matches).

Runs scenarios/mobility/nat-appears.yaml (plain ESP on the office LAN, UDP-encapsulated ESP behind the hotspot's
NAT, then plain again) and the MOBIKE and reauthentication variants of wifi-to-lte.yaml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark

import ikesim
from ikesim.scenario.load import load_scenario

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

ROOT = Path(__file__).resolve().parents[2]
ESP_ON = ("-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE")
CASES = [("nat-appears", None), ("wifi-to-lte", "mobike-break-before-make"), ("wifi-to-lte", "reauth-make-before-break")]


@pytest.fixture(scope="module", params=CASES, ids=[f"{s}-{v}" if v else s for s, v in CASES])
def out(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ikesim.Results]:
    scenario, variant = request.param
    m = load_scenario(ROOT / "scenarios" / "mobility" / f"{scenario}.yaml", variant=variant)
    # capture every ESP packet (not only each SA's first 20): a MOBIKE move keeps the SAs
    m = m.model_copy(update={"data_plane": m.data_plane.model_copy(update={"capture_per_sa": 10**6})})
    r = ikesim.run(m)
    d = tmp_path_factory.mktemp(scenario)
    r.write(d)
    return d, r


def test_every_ike_message_decrypts_and_nothing_is_malformed(out: tuple[Path, ikesim.Results]) -> None:
    """Each encrypted IKE message of the capture decrypts (as many as the run sent, on every path), MOBIKE's
    INFORMATIONALs with their notifies among them; nothing is malformed and no ESP ICV is bad."""
    d, r = out
    assert tshark(d, *ESP_ON, "-Y", "_ws.malformed || esp.icv_bad == 1") == ""
    assert tshark(d, "-Y", "isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted") == ""
    lines = tshark(d, "-Y", "isakmp.enc.decrypted", "-T", "fields", "-e", "ip.src", "-e", "isakmp.notify.msgtype",
                   "-E", "occurrence=a").splitlines()
    encrypted = r.packets[r.packets["exchange"].notna() & (r.packets["exchange"] != "IKE_SA_INIT")]
    assert len(lines) == len(encrypted) > 4
    sources = {line.split("\t")[0] for line in lines}
    assert len(sources) >= 3  # the host's two paths (their NATs' addresses where there is one) and the gateway
    notifies = {n for line in lines for n in line.split("\t")[1].split(",") if n}
    if r.summary["exchanges_by_type"].get("mobike"):
        assert {"16400", "16401", "16388", "16389"} <= notifies  # UPDATE_SA_ADDRESSES, COOKIE2, NAT_D x2


def test_every_captured_esp_packet_authenticates_before_and_after_the_move(out: tuple[Path, ikesim.Results]) -> None:
    """Every captured ESP frame is decrypted with a good ICV, and the frames come from both of the host's paths."""
    d, r = out
    rows = [line.split("\t") for line in tshark(d, *ESP_ON, "-Y", "esp", "-T", "fields", "-e", "esp.icv_good",
                                                   "-e", "ip.src", "-E", "occurrence=f").splitlines()]
    assert rows and all(icv == "1" for icv, _src in rows)
    outer = {src for _icv, src in rows}
    assert len(outer - {"198.51.100.1"}) >= 2, outer  # before and after the move
    assert len(rows) == int((r.traffic["spi"] != "").sum())  # every packet protected is in the capture
