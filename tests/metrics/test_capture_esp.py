"""tshark as the independent oracle for the ESP in capture.pcap: every captured packet decrypts and authenticates.

Runs scenarios/traffic/esp-raw.yaml (plain ESP, IP protocol 50, RFC 4303) and esp-natt.yaml (the client behind a
NAT: ESP in UDP 4500 without the non-ESP marker, RFC 3948), each with an AES-GCM-256 (RFC 4106) and an
AES-CBC-256 + HMAC-SHA-256-128 (RFC 3602, RFC 4868) CHILD_SA rekeyed three times. The capture holds the first
``capture_per_sa`` (4) packets of each SA; Wireshark decrypts them with ``esp.enable_encryption_decode`` and checks
their ICVs with ``esp.enable_authentication_check``.

Two questions, two tests:
- the key tables a run writes (``esp_sa``) decrypt every captured ESP packet;
- the ESP bytes are what the run says: each frame's SPI, sequence number, padding, outer and inner addresses and
  lengths, and the capture's SPIs are exactly the CHILD_SAs of the run's ``sas`` table. This one reads the keys
  from ``esp_sa`` with ``*`` for both addresses (Wireshark's wildcard), so it checks the packets whatever the
  table's address columns say.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from tshark_run import tshark

import ikesim
from ikesim.metrics.results import Results
from ikesim.scenario.load import load_scenario

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

ROOT = Path(__file__).resolve().parents[2]
ESP_ON = ("-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE")
FIELDS = ("esp.spi", "esp.sequence", "esp.icv_good", "esp.icv_bad", "esp.pad_len", "ip.proto", "ip.src", "ip.dst",
          "ip.len", "udp.srcport", "udp.dstport")
CASES = [("esp-raw", "gcm"), ("esp-raw", "cbc"), ("esp-natt", "gcm"), ("esp-natt", "cbc")]
PER_SA = 4
"""``data_plane.capture_per_sa`` of both scenarios."""


@dataclass(frozen=True)
class Run:
    """One scenario variant, run and written."""

    name: str
    variant: str
    """``gcm`` or ``cbc``."""
    results: Results
    out: Path
    addresses: dict[str, str]
    """Node name -> its first address (the inner packets' source or destination)."""


@pytest.fixture(scope="module")
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The scenario variant, run and written to a directory of its own."""
    scenario, variant = request.param
    model = load_scenario(ROOT / "scenarios" / "traffic" / f"{scenario}.yaml", variant=variant)
    r = ikesim.run(model)
    out = tmp_path_factory.mktemp(f"{scenario}-{variant}")
    r.write(out)
    return Run(scenario, variant, r, out, {name: node.addresses[0] for name, node in model.nodes.items()})


def esp_rows(out: Path) -> list[dict[str, str]]:
    """tshark's fields of every ESP frame of out/capture.pcap, decrypted with out's key tables."""
    args = [*ESP_ON, "-Y", "esp", "-T", "fields", "-E", "occurrence=a"]
    for f in FIELDS:
        args += ["-e", f]
    return [dict(zip(FIELDS, line.split("\t"), strict=True)) for line in tshark(out, *args).splitlines()]


def captured(r: Results) -> pd.DataFrame:
    """The packets the capture holds: the first ``PER_SA`` each SA protected, in the order they were sent."""
    t = r.traffic.sort_values("packet")
    return t[t["spi"] != ""].groupby("spi", sort=False).head(PER_SA)


def wildcard_tables(run: Run) -> Path:
    """A copy of the run's capture and key tables whose esp_sa lines match any source and destination address."""
    out = run.out / "wildcard"
    out.mkdir(exist_ok=True)
    for name in ("capture.pcap", "ikev2_decryption_table"):
        shutil.copy(run.out / name, out / name)
    lines = []
    for line in (run.out / "esp_sa").read_text().splitlines():
        fields = line.split(",")
        assert len(fields) == 8 and fields[0] == '"IPv4"', line
        lines.append(",".join([fields[0], '"*"', '"*"', *fields[3:]]))
    (out / "esp_sa").write_text("\n".join(lines) + "\n")
    return out


def _endpoints(events: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Outbound SPI -> (local, peer) of the node that sends with it, as ``ip[port]`` (its ChildSaInstalled)."""
    inst = events[events["event"] == "ChildSaInstalled"]
    return {row.spi_out: (row.local, row.peer) for row in inst.itertuples()}


def _split(endpoint: str) -> tuple[str, str]:
    """``198.51.100.1[4500]`` -> ("198.51.100.1", "4500")."""
    ip, port = endpoint.rstrip("]").split("[")
    return ip, port


@pytest.mark.parametrize("run", CASES, ids=[f"{s}-{v}" for s, v in CASES], indirect=True)
def test_the_written_esp_sa_table_decrypts_every_captured_esp_packet(run: Run) -> None:
    """RFC 4303 §3.4 as Wireshark checks it: all 32 ESP frames decrypt (Pad Length and the inner IPv4 header are
    shown), each ICV is good, none is bad, and nothing in the capture is malformed."""
    rows = esp_rows(run.out)
    assert len(rows) == 32 == len(captured(run.results))
    decrypted = [r for r in rows if r["esp.pad_len"] != "" and len(r["ip.src"].split(",")) == 2]
    assert len(decrypted) == len(rows)
    assert [r["esp.icv_good"] for r in rows] == ["1"] * 32
    assert [r["esp.icv_bad"] for r in rows] == ["0"] * 32
    assert tshark(run.out, *ESP_ON, "-Y", "_ws.malformed || esp.icv_bad == 1") == ""


@pytest.mark.parametrize("run", CASES, ids=[f"{s}-{v}" for s, v in CASES], indirect=True)
def test_each_esp_frame_is_the_packet_the_run_sent(run: Run) -> None:
    """Per frame, exactly: the SPI of the SA that protected it and sequence numbers 1..4 per SA (RFC 4303 §3.3.3),
    Pad Length -(n + 2) mod 4 (AES-GCM, RFC 4106 §3) or mod 16 (AES-CBC, RFC 3602 §2.4) for an inner packet of n
    bytes, the outer header of the sender's view (IP protocol 50; or UDP 4500 after NAT-T, RFC 3948 §2.1), the
    inner IPv4 + UDP Discard header between the nodes' addresses; good ICVs; the capture's SPIs are the 8 CHILD_SA
    SPIs of the sas table (4 pairs: the first and three rekeys)."""
    r = run.results
    rows = esp_rows(wildcard_tables(run))
    sent = captured(r)
    endpoints = _endpoints(r.events)
    block, iv = (4, 8) if run.variant == "gcm" else (16, 16)
    expected = []
    for spi, pkts in sent.groupby("spi", sort=False):
        local, peer = endpoints[spi]
        (src, sport), (dst, dport) = _split(local), _split(peer)
        for seq, pkt in enumerate(pkts.itertuples(), start=1):
            n = pkt.size
            pad = -(n + 2) % block
            esp = 8 + iv + n + pad + 2 + 16
            inner_src, inner_dst = run.addresses[pkt.sender], run.addresses[pkt.receiver]
            nat_t = sport == "4500"
            expected.append({
                "esp.spi": f"0x{spi}", "esp.sequence": str(seq), "esp.icv_good": "1", "esp.icv_bad": "0",
                "esp.pad_len": str(pad), "ip.proto": "17,17" if nat_t else "50,17",
                "ip.src": f"{src},{inner_src}", "ip.dst": f"{dst},{inner_dst}",
                "ip.len": f"{20 + (8 if nat_t else 0) + esp},{n}",
                "udp.srcport": f"{sport},9" if nat_t else "9", "udp.dstport": f"{dport},9" if nat_t else "9"})
    key = ("esp.spi", "esp.sequence")
    assert sorted(rows, key=lambda x: [x[k] for k in key]) == sorted(expected, key=lambda x: [x[k] for k in key])
    sas = r.sas[r.sas["kind"] == "child"]
    assert len(sas) == 8 and set(sas["delete_reason"].dropna()) == {"rekeyed"}
    assert {row["esp.spi"] for row in rows} == {f"0x{s}" for s in sas["spi_in"]} == {f"0x{s}" for s in sas["spi_out"]}
    assert set(r.traffic["spi"]) == set(sas["spi_in"])
    assert tshark(run.out / "wildcard", *ESP_ON, "-Y", "_ws.malformed || esp.icv_bad == 1") == ""
