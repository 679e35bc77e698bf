"""NAT traversal over simulated NAT boxes: floating, mapping behaviours, timeouts, rebinding, reboots, firewalls."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from tshark_run import tshark as run_tshark

from ikesim.errors import ConfigError
from ikesim.ike.config import ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy, Lifetime
from ikesim.metrics.results import Results
from ikesim.rng import Rng
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario, load_scenario_text
from ikesim.sim.datagram import SimDatagram
from ikesim.sim.nat import KeepaliveStream, NatBox
from ikesim.sim.simulation import Simulation
from ikesim.types import Address

ROOT = Path(__file__).resolve().parents[2]
PSK = Credentials(psk=b"nat-test-psk")
OFF = Lifetime(rekey_time=0.0, life_time=0.0, rand_time=0.0)
CLIENT, GW, PUBLIC = "192.168.1.2", "198.51.100.1", "203.0.113.7"


def nat_sim(*, kind: str = "endpoint_independent", idle: float = 60.0, dpd: float = 30.0, keepalive: float = 20.0,
            drop_udp: tuple[int, ...] = ()) -> Simulation:
    """client (192.168.1.2) -5 ms- NAT (203.0.113.7) -20 ms- gateway; DPD every *dpd* s on both, no rekeys."""
    ike = IkePolicy(lifetime=OFF, dpd_delay=dpd, nat_keepalive=keepalive)
    child = ChildPolicy(lifetime=OFF)
    c = Connection(name="vpn", local_id="client@sim.test", remote_id="gw.sim.test", remote_addr=Address(GW),
                   credentials=PSK, ike=ike, children=(child,))
    g = Connection(name="vpn", local_id="gw.sim.test", remote_id="client@sim.test", credentials=PSK, ike=ike,
                   children=(child,))
    sim = Simulation(seed=3)
    sim.add_node(DaemonConfig("client", (Address(CLIENT),), (c,)))
    sim.add_node(DaemonConfig("gw", (Address(GW),), (g,)))
    sim.add_nat("nat", public=PUBLIC, inside=[CLIENT], kind=kind, idle_timeout=idle, drop_udp=drop_udp)
    sim.add_link("client", "nat", delay=0.005)
    sim.add_link("nat", "gw", delay=0.02)
    sim.schedule(0.0, "client", "initiate", connection="vpn")
    return sim


def ev(r: Results, name: str, node: str | None = None):  # noqa: ANN201
    e = r.events[r.events["event"] == name]
    return e if node is None else e[e["node"] == node]


def test_nat_is_detected_and_both_ends_float_to_4500() -> None:
    """IKE_SA_INIT on 500 through the NAT, then IKE_AUTH on 4500 with the 4-byte non-ESP marker counted."""
    r = nat_sim().run(1.0)
    det = ev(r, "NatDetected")
    assert det[["node", "local_behind_nat", "peer_behind_nat"]].values.tolist() == [["gw", False, True], ["client", True, False]]
    fl = ev(r, "NatTraversalStarted")
    created = ev(r, "NatEvent")
    port500, port4500 = (str(x) for x in created[created["kind"] == "mapping_created"]["new"])
    assert [(n, str(lo), str(p)) for n, lo, p in fl[["node", "local", "peer"]].values] == [
        ("client", f"{CLIENT}[4500]", f"{GW}[4500]"), ("gw", f"{GW}[4500]", port4500)]
    p = r.packets
    assert p[["exchange", "src", "dst"]].values.tolist() == [
        ["IKE_SA_INIT", f"{CLIENT}[500]", f"{GW}[500]"], ["IKE_SA_INIT", f"{GW}[500]", port500],
        ["IKE_AUTH", f"{CLIENT}[4500]", f"{GW}[4500]"], ["IKE_AUTH", f"{GW}[4500]", port4500]]
    assert (p["size"] - p["ike_length"]).tolist() == [28, 28, 32, 32]
    assert ev(r, "ChildSaInstalled")["node"].tolist() == ["gw", "client"]
    assert r.summary["invariant_violations"] == 0


def test_rebinding_breaks_the_return_path_until_the_client_speaks() -> None:
    """Rebind at 100 s: the gateway's DPD at 120.175 s is lost at the NAT; the client's DPD arrives at
    120.225 s from the new port and the gateway follows (RFC 7296 §2.23): 20.225 s broken."""
    sim = nat_sim()
    sim.nat_event(100.0, "nat", "rebind")
    r = sim.run(200.0)
    lost = r.packets[r.packets["fate"] == "nat_no_mapping"]
    assert lost[["time_sent", "node"]].round(6).values.tolist() == [[120.175, "gw"]]
    moved = ev(r, "PeerAddressChanged", "gw")
    assert moved["time"].round(6).tolist() == [120.225]
    row = r.nat_paths[r.nat_paths["kind"] == "rebind"].iloc[0]
    assert (row["old"], row["new"]) == (str(moved.iloc[0]["old"]), str(moved.iloc[0]["new"]))
    assert (row["broken_from"], round(row["restored_at"], 6), round(row["broken_s"], 6), row["sent_to_old"]) == (
        100.0, 120.225, 20.225, 1)
    assert r.summary["nat"]["return_path_broken_s"]["max"] == pytest.approx(20.225)
    # the lost DPD request goes again at once to the new port, not at the next timeout (124.175 s)
    assert ev(r, "Retransmitted", "gw")[["time", "reason"]].round(6).values.tolist() == [[120.225, "peer_moved"]]
    assert r.summary["invariant_violations"] == 0


def test_keepalives_keep_the_mapping_and_without_them_it_expires() -> None:
    """idle 60 s, DPD every 90 s: with keepalives every 20 s the 4500 mapping lives; without, it expires
    60 s after the last packet and the gateway's next DPD request is lost."""
    with_ka = nat_sim(dpd=90.0).run(300.0)
    expired = with_ka.nat_paths[with_ka.nat_paths["kind"] == "expired"]
    assert expired["inside"].tolist() == [f"{CLIENT}[500]"]  # only the IKE_SA_INIT mapping
    assert with_ka.summary["nat"]["keepalives"] == 13  # 20 s after the client's last datagram each time
    sent = with_ka.packets[with_ka.packets["node"] == "client"]
    gaps = sent["time_sent"].diff()[sent["ike_length"] == 1].round(6)
    assert len(gaps) == 13 and set(gaps) == {20.0}  # a DPD exchange in between defers the next keepalive
    no_ka = nat_sim(dpd=90.0, keepalive=0.0).run(300.0)
    paths = no_ka.nat_paths
    assert paths[["inside", "broken_from", "restored_at", "sent_to_old"]].round(6).fillna(-1).values.tolist() == [
        [f"{CLIENT}[4500]", 60.055, 90.125, 1],     # idle since IKE_AUTH; the gateway's DPD at 90.075 s is lost
        [f"{CLIENT}[4500]", 150.155, 180.175, 1],   # and again each cycle: the client's DPD re-opens it
        [f"{CLIENT}[4500]", 240.205, 270.225, 0],
        [f"{CLIENT}[500]", 60.005, -1, 0]]
    lost = no_ka.packets[no_ka.packets["fate"] == "nat_no_mapping"]
    assert lost["time_sent"].round(6).tolist() == [90.075, 180.175]
    assert no_ka.summary["nat"]["keepalives"] == 0 and no_ka.summary["nat"]["never_restored"] == 0


def test_reboot_forgets_the_mapping_and_the_gateway_follows_the_new_one() -> None:
    sim = nat_sim()
    sim.nat_event(50.0, "nat", "reboot")
    r = sim.run(200.0)
    row = r.nat_paths[r.nat_paths["kind"] == "reboot"].iloc[0]
    assert row["new"] == "" and row["restored_by"] == "gw" and row["broken_s"] > 0
    created = ev(r, "NatEvent")
    assert created[created["kind"] == "mapping_created"]["inside"].tolist() == [
        f"{CLIENT}[500]", f"{CLIENT}[4500]", f"{CLIENT}[4500]"]
    assert r.summary["invariant_violations"] == 0


def test_firewall_dropping_4500_stops_ike_auth() -> None:
    """UDP 4500 dropped at the NAT's firewall: IKE_SA_INIT passes, IKE_AUTH and its 5 retransmissions do not."""
    r = nat_sim(drop_udp=(4500,)).run(300.0)
    ike = r.packets[r.packets["ike_length"] > 1]
    assert ike["fate"].tolist() == ["delivered", "delivered"] + ["firewall"] * 6
    keepalives = r.packets[r.packets["ike_length"] == 1]
    assert len(keepalives) > 0 and set(keepalives["fate"]) == {"firewall"}  # to 4500 as well
    assert ev(r, "IkeSaEstablished").empty
    assert len(ev(r, "Retransmitted", "client")) == 5


@pytest.mark.parametrize("kind,from_other_port,from_other_host", [
    ("endpoint_independent", True, True), ("address_dependent", True, False), ("symmetric", False, False)])
def test_mapping_behaviours_filter_inbound(kind: str, from_other_port: bool, from_other_host: bool) -> None:
    """RFC 4787 behaviours: who may send back through a mapping the inside host opened to 198.51.100.1:4500."""
    nat = NatBox("n", public=PUBLIC, kind=kind, idle_timeout=60.0, inside=frozenset({CLIENT}), rng=Rng(1, "nat"))
    out = nat.outbound(SimDatagram(1, Address(CLIENT, 4500), Address(GW, 4500), b"x"), 0.0)
    assert out.src.ip == PUBLIC and out.dst == Address(GW, 4500)
    back = nat.inbound(SimDatagram(2, Address(GW, 4500), out.src, b"y"), 1.0)
    assert back is not None and back.dst == Address(CLIENT, 4500)
    assert (nat.inbound(SimDatagram(3, Address(GW, 500), out.src, b"y"), 1.0) is not None) is from_other_port
    assert (nat.inbound(SimDatagram(4, Address("198.51.100.9", 4500), out.src, b"y"), 1.0) is not None) is from_other_host
    second = nat.outbound(SimDatagram(5, Address(CLIENT, 4500), Address(GW, 500), b"z"), 2.0)
    assert (second.src == out.src) is (kind != "symmetric")
    assert nat.inbound(SimDatagram(6, Address(GW, 4500), out.src, b"y"), 62.5) is None  # idle > 60 s


def test_keepalive_stream_counts_and_last_instant() -> None:
    ka = KeepaliveStream(start=10.0, interval=20.0)
    assert (ka.last_before(29.0), ka.last_before(30.0), ka.last_before(75.0), ka.count(75.0)) == (None, 30.0, 70.0, 3)


def test_nat_scenario_files_load_and_errors_name_the_key() -> None:
    m = load_scenario(ROOT / "scenarios" / "nat-rebinding.yaml")
    assert (m.nats["home"].rebind, m.nats["home"].reboot, m.nats["home"].idle_timeout) == ([3600.0, 9000.0], [10800.0], 120.0)
    sim = build_simulation(m)
    assert set(sim.boxes) == {"home"}
    text = (ROOT / "scenarios" / "network" / "nat-firewall-4500.yaml").read_text()
    with pytest.raises(ConfigError, match=r"x.yaml:11: nats.home.inside\[0\]: unknown node 'laptop'"):
        load_scenario_text(text.replace("inside: [client]", "inside: [laptop]"), "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml:11: nats.home.type: 'full_cone' is not one of 'endpoint_independent', "):
        load_scenario_text(text.replace("inside: [client]}", "inside: [client], type: full_cone}"), "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml:13: routers.isp.drop_udp: UDP port 70000 is outside"):
        load_scenario_text(text.replace("[4500]", "[70000]"), "x.yaml")


def test_rebinding_scenario_restores_every_path() -> None:
    """The shipped scenario: 2 rebinds and a reboot, each return path restored by the gateway, 0 violations."""
    m = load_scenario(ROOT / "scenarios" / "nat-rebinding.yaml")
    r = build_simulation(m).run(m.duration)
    nat = r.summary["nat"]
    assert (nat["rebinds"], nat["reboots"], nat["never_restored"], nat["return_path_broken_s"]["n"]) == (2, 1, 0, 3)
    assert r.summary["invariant_violations"] == 0 and r.summary["sas"]["ike_established"] >= 4


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_decodes_and_decrypts_the_nat_t_capture(tmp_path: Path) -> None:
    """IKE on UDP 4500 behind the non-ESP marker: no malformed frame, every SK payload decrypts."""
    sim = nat_sim()
    sim.schedule(40.0, "client", "rekey_child", connection="vpn")
    r = sim.run(100.0)
    r.write(tmp_path)

    def tshark(*args: str) -> str:
        return run_tshark(tmp_path, *args)

    assert tshark("-Y", "_ws.malformed") == ""
    rows = [line.split("\t") for line in tshark("-Y", "udp.port == 4500 && isakmp", "-T", "fields", "-e",
                                                 "isakmp.exchangetype", "-e", "isakmp.enc.decrypted").splitlines()]
    p = r.packets
    ike_4500 = p[(p["dst"].str.endswith("[4500]") | p["src"].str.endswith("[4500]")) & (p["ike_length"] > 1)]
    assert len(rows) == len(ike_4500) and len(p) - len(p[p["ike_length"] > 1]) > 0  # NAT keepalives are not IKE
    keepalives = tshark("-Y", "udp.port == 4500 && !isakmp", "-T", "fields", "-e", "udp.length").split()
    assert keepalives and set(keepalives) == {"9"}  # 8-byte UDP header + the 0xFF octet, no non-ESP marker
    assert {row[0] for row in rows} == {"35", "36", "37"} and all(row[1] for row in rows)


def test_network_scenarios_pass_check() -> None:
    """scenarios/network/ states its own expectations (e.g. the firewall drops exactly 12 datagrams)."""
    from ikesim.cli import main

    assert main(["check", str(ROOT / "scenarios" / "network"), "--quiet"]) == 0
