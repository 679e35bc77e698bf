"""tshark on the capture of an HA failover: every IKE message (the RFC 6311 synchronizations on message ID 0 among
them) and every captured ESP packet decrypts with the key tables the run wrote, before and after the takeover, and
nothing is malformed. The member taking over uses the keys and SPIs the crashed one negotiated (``ike.ha_state``),
so the key tables of the original exchanges decrypt it; its outbound ESP sequence numbers jump by the margin.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark

import ikesim
from ikesim.metrics.export import PCAP_EPOCH
from ikesim.scenario.load import load_scenario_text

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

ESP_ON = ("-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE")
SCENARIO = """
name: ha-capture
seed: 5
duration: 50s
nodes:
  gw: {addresses: [198.51.100.1]}
clusters:
  gw:
    members: [gw-a, gw-b]
    failover: stateful
    esp_seq_margin: 1000
    events: [{at: 30s, crash: gw-a}]
fleet:
  clients: 4
  client_subnet: 10.1.0.0/24
  gateway: gw
  link: {delay: 10ms}
  start: {spread: 4s}
  connection:
    ike: {dpd_delay: 10s, dpd_action: restart, message_id_sync: true, replay_counter_sync: true}
  traffic: {direction: both, pattern: constant, rate: 2, size: 200, start: 10s}
data_plane: {capture_per_sa: 1000000}
"""


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ikesim.Results]:
    r = ikesim.run(load_scenario_text(SCENARIO, "ha-capture.yaml"))
    d = tmp_path_factory.mktemp("ha")
    r.write(d)
    return d, r


def test_every_ike_message_decrypts_the_synchronizations_included(out: tuple[Path, ikesim.Results]) -> None:
    """All encrypted IKE messages decrypt; each client's synchronization is there twice (request and answer) on
    message ID 0 with N(IKEV2_MESSAGE_ID_SYNC) (16422), the requests with N(IPSEC_REPLAY_COUNTER_SYNC) (16423)."""
    d, r = out
    assert r.ha["method"].tolist() == ["sync"] * 4
    assert tshark(d, *ESP_ON, "-Y", "_ws.malformed || esp.icv_bad == 1") == ""
    assert tshark(d, "-Y", "isakmp && isakmp.exchangetype != 34 && !isakmp.enc.decrypted") == ""
    encrypted = r.packets[r.packets["exchange"].notna() & (r.packets["exchange"] != "IKE_SA_INIT")]
    lines = tshark(d, "-Y", "isakmp.enc.decrypted", "-T", "fields", "-e", "isakmp.messageid",
                   "-e", "isakmp.notify.msgtype", "-E", "occurrence=a").splitlines()
    assert len(lines) == len(encrypted)
    syncs = [line for line in lines if "16422" in line.split("\t")[1].split(",")]
    assert len(syncs) == 8
    assert {line.split("\t")[0] for line in syncs} == {"0x00000000"}
    assert sum("16423" in line.split("\t")[1].split(",") for line in syncs) == 4  # the requests only


def test_every_captured_esp_packet_authenticates_and_the_survivor_jumped_its_sequence_numbers(
        out: tuple[Path, ikesim.Results]) -> None:
    """Every ESP frame decrypts with a good ICV; after the takeover the cluster's frames on each SA continue more than
    the margin (1000) past the last ones before the crash, and the clients' jump by the replay increment."""
    d, r = out
    rows = [line.split("\t") for line in tshark(d, *ESP_ON, "-Y", "esp", "-T", "fields", "-e", "frame.time_epoch",
                                                   "-e", "ip.src", "-e", "esp.spi", "-e", "esp.sequence",
                                                   "-e", "esp.icv_good", "-E", "occurrence=f").splitlines()]
    assert rows and all(icv == "1" for *_x, icv in rows)
    sent = r.traffic[(r.traffic["spi"] != "")]
    assert len(rows) == int((sent["fate"] != "member_down").sum()) == len(sent) - 12  # gw-a's 3 per SA after 30 s
    by_spi: dict[tuple[str, str], list[tuple[float, int]]] = {}
    for t, src, spi, seq, _icv in rows:
        by_spi.setdefault((spi, src.split(",")[0]), []).append((float(t) - PCAP_EPOCH, int(seq)))
    cluster, clients = [], []
    for (_spi, src), seen in sorted(by_spi.items()):
        if src == "198.51.100.1":
            cluster.append((max(s for t, s in seen if t < 30.0), min(s for t, s in seen if t > 30.0)))
        else:  # before and after the client answered the synchronization (31.1115 s)
            clients.append((max(s for t, s in seen if t < 31.11), min(s for t, s in seen if t > 31.12)))
    # 2 packets/s from 10 s: sequence number k is due at 10 + (k - 1) / 2 s. gw-a's last ESP synchronization (every
    # 1 s) ran at 29 s just before that instant's packet, with 38; gw-a then sent 39 (29 s) and 40 (29.5 s); 41,
    # due at 30 s, went with the crash. gw-b, taking over at 31.1 s, starts at 38 + 1000 + 1 = 1039: no number is
    # used twice and the peer's window (top 40) takes it.
    assert cluster == [(40, 1039)] * 4
    # the clients kept sending into the void until the takeover (41 at 30 s, 42, 43 by 31 s), then jumped by the
    # increment the cluster asked for with IPSEC_REPLAY_COUNTER_SYNC (4096, the cluster default): 43 + 4096 + 1
    assert clients == [(43, 4140)] * 4
