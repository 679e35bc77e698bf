"""The quickstart scenario end to end: reproducibility and tshark as an independent oracle."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

import ikesim
from ikesim.runner import write_results_atomically

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "scenarios" / "quickstart.yaml"


@pytest.fixture(scope="module")
def quick_6h(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qs") / "quickstart"
    write_results_atomically(ikesim.run(QUICK, until=6 * 3600.0), out)
    return out


def test_quickstart_summary_is_sane(quick_6h: Path) -> None:
    """Six hours: one establishment, CHILD rekeys about hourly, one IKE rekey, losses recovered."""
    s = json.loads((quick_6h / "summary.json").read_text())
    assert s["exchanges_by_type"]["ike_sa_init"] == 1 and s["exchanges_by_type"]["ike_auth"] == 1
    assert 5 <= s["rekeys"]["child"] <= 7 and s["rekeys"]["ike"] == 1
    assert s["exchange_outcomes"] == {"ok": sum(s["exchanges_by_type"].values())} and s["exchanges_failed"] == 0
    assert s["auth_failures"] == 0 and s["messages_dropped"] == 0
    # every lost datagram of a two-message exchange is recovered by retransmitting the request
    assert s["retransmissions"] >= s["datagrams"]["lost"]
    assert s["datagrams"]["sent"] == s["datagrams"]["delivered"] + s["datagrams"]["lost"]
    assert s["rekey_latency"]["child"]["initiator"]["p50"] == pytest.approx(0.05)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    """Two runs with one seed write byte-identical capture.pcap, events.parquet and summary.json."""
    a, b = tmp_path / "a", tmp_path / "b"
    write_results_atomically(ikesim.run(QUICK, until=3 * 3600.0, seed=42), a)
    write_results_atomically(ikesim.run(QUICK, until=3 * 3600.0, seed=42), b)
    for name in ("capture.pcap", "events.parquet", "exchanges.parquet", "sas.parquet", "summary.json",
                 "ikev2_decryption_table"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_other_seed_changes_spis_and_nonces(tmp_path: Path) -> None:
    """A different seed changes the IKE SPIs and the nonces on the wire (read back from capture.pcap)."""
    from vectors import ike_messages

    from ikesim.wire.codec import parse_message
    from ikesim.wire.payloads import NoncePayload

    def first_init(seed: int) -> tuple[bytes, bytes, bytes]:
        out = tmp_path / f"s{seed}-{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        ikesim.run(QUICK, until=60.0, seed=seed).write(out)
        request, response = (parse_message(m) for m in ike_messages(out / "capture.pcap")[:2])
        return request.spi_i, request.get(NoncePayload).data, response.get(NoncePayload).data

    s1, s2 = first_init(1), first_init(2)
    assert s1[0] != s2[0] and s1[1] != s2[1] and s1[2] != s2[2]
    assert first_init(1) == s1


def _tshark(capture: Path, keydir: Path, *args: str) -> str:
    env = {"WIRESHARK_CONFIG_DIR": str(keydir), "PATH": "/usr/bin:/bin", "HOME": str(keydir)}
    res = subprocess.run(["tshark", "-r", str(capture), *args], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed (CI installs it)")
def test_tshark_decodes_and_decrypts_quickstart(quick_6h: Path, tmp_path: Path) -> None:
    """tshark finds no malformed packet, decrypts every SK payload, sees IDi/AUTH/SA/TSi and REKEY_SA."""
    keydir = tmp_path / "ws"
    keydir.mkdir()
    shutil.copy(quick_6h / "ikev2_decryption_table", keydir / "ikev2_decryption_table")
    shutil.copy(quick_6h / "esp_sa", keydir / "esp_sa")
    cap = quick_6h / "capture.pcap"
    assert _tshark(cap, keydir, "-Y", "_ws.malformed") == ""
    rows = _tshark(cap, keydir, "-Y", "isakmp", "-T", "fields", "-e", "isakmp.exchangetype",
                   "-e", "isakmp.enc.decrypted").splitlines()
    enc = [r for r in rows if not r.startswith("34")]
    assert rows and len(enc) == len(rows) - 2
    assert all(r.split("\t")[1] for r in enc), "an SK payload did not decrypt"
    # the user traffic's ESP (the first packets of each SA): every one decrypts, with a good ICV
    esp = _tshark(cap, keydir, "-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
                  "-Y", "esp", "-T", "fields", "-e", "esp.spi", "-e", "esp.pad_len", "-e", "esp.icv_good").splitlines()
    assert esp and all(r.split("\t")[1] != "" and r.split("\t")[2] in ("1", "True") for r in esp), esp[:3]
    auth = _tshark(cap, keydir, "-Y", "isakmp.exchangetype == 35", "-V")
    for needle in ("Payload: Identification - Initiator (35)", "Payload: Authentication (39)",
                   "Payload: Security Association (33)", "Payload: Traffic Selector - Initiator (44)",
                   "ID_RFC822_ADDR", "Shared Key Message Integrity Code"):
        assert auth.count(needle) >= 1, needle
    assert auth.count("Payload: Identification - Initiator (35)") == 1  # one IKE_AUTH request
    fields = ("isakmp.flag_r", "isakmp.id.type", "isakmp.auth.method", "isakmp.ts.type", "isakmp.prop.protoid")
    auth_rows = [r.split("\t") for r in _tshark(cap, keydir, "-Y", "isakmp.exchangetype == 35", "-T", "fields",
                                                 *(x for f in fields for x in ("-e", f))).splitlines()]
    # request: IDi ID_RFC822_ADDR (3) + IDr ID_FQDN (2), AUTH PSK (2), TSi/TSr IPv4 ranges (7), ESP SA (3);
    # response: IDr ID_FQDN, AUTH PSK, the narrowed TSs, the chosen ESP proposal
    assert auth_rows == [["0", "3,2", "2", "7,7", "3"], ["1", "2", "2", "7,7", "3"]]
    rows = _tshark(cap, keydir, "-Y", "isakmp.exchangetype == 36 && isakmp.flag_r == 0", "-T", "fields",
                   "-e", "ip.src", "-e", "isakmp.ispi", "-e", "isakmp.messageid", "-e", "isakmp.prop.protoid",
                   "-e", "isakmp.notify.msgtype").splitlines()
    child = {tuple(r.split("\t")[:3]): r.split("\t")[4] for r in rows if r.split("\t")[3] == "3"}
    ike = {tuple(r.split("\t")[:3]) for r in rows if r.split("\t")[3] == "1"}
    summary = json.loads((quick_6h / "summary.json").read_text())
    assert len(child) >= summary["rekeys"]["child"] >= 5 and len(ike) >= summary["rekeys"]["ike"] == 1
    assert all("16393" in notes.split(",") for notes in child.values()), child  # REKEY_SA in every CHILD rekey


@pytest.mark.slow
def test_full_quickstart_24h(tmp_path: Path) -> None:
    """The full 24 h quickstart through the CLI (slow)."""
    from ikesim.cli import main

    assert main(["run", str(QUICK), "--out", str(tmp_path / "q"), "--quiet"]) == 0
