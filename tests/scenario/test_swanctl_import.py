"""``ikesim import``: swanctl.conf connections -> a scenario that loads, runs, and means what charon would do."""

from __future__ import annotations

import json
from pathlib import Path
from string import Template

import pytest

from ikesim.cli import main
from ikesim.errors import ConfigError
from ikesim.ike.config import Lifetime
from ikesim.scenario.build import daemon_configs
from ikesim.scenario.load import load_scenario, load_scenario_text
from ikesim.scenario.swanctl_import import strongswan_ike_times
from ikesim.scenario.swanctl_scenario import import_swanctl, render_yaml

HERE = Path(__file__).resolve().parent / "swanctl"
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = [["moon.conf", "sun.conf"], ["rw-gateway.conf"], ["eap-gateway.conf", "eap-client.conf"], ["templates.conf"],
            ["charon-mobike.conf"], ["charon-esp.conf"]]


@pytest.fixture
def interop_conf(tmp_path: Path) -> Path:
    """tests/interop's charon swanctl.conf (tools/interop/swanctl.conf.in), rendered as the harness renders it."""
    text = Template((ROOT / "tools" / "interop" / "swanctl.conf.in").read_text()).substitute(
        charon_ip="127.0.0.1", ikesim_ip="127.0.0.2", ikesim_port=1500, psk="s3cret")
    path = tmp_path / "charon.conf"
    path.write_text(text)
    return path


def _import(*names: str) -> dict:
    return import_swanctl([HERE / n for n in names]).scenario


def test_site_to_site_pair_keeps_each_ends_settings() -> None:
    """Two files: the trapping end initiates; the other's different proposals, lifetimes, DPD go to its ``peers``."""
    s = _import("moon.conf", "sun.conf")
    assert s["nodes"] == {"moon": {"addresses": ["192.168.0.1"]}, "sun": {"addresses": ["192.168.0.2"]}}
    assert s["connections"] == {"net-net": {
        "initiator": "moon", "responder": "sun", "auth": {"method": "psk", "psk": "imported-net-net-psk"},
        "ids": {"initiator": "moon.strongswan.org", "responder": "sun.strongswan.org"},
        "ike": {"proposals": ["aes256gcm16-prfsha384-ecp384", "aes128-sha256-modp2048"], "mobike": True,
                "childless": "allow", "dpd_delay": "30s", "rekey_time": "2h", "over_time": "12min", "rand_time": "10min",
                "dpd_action": "restart", "close_action": "start"},
        "children": {"net-net": {"proposals": ["aes256gcm16-ecp384"], "local_ts": ["10.1.0.0/16"],
                                 "remote_ts": ["10.2.0.0/16"], "rekey_time": "20min", "life_time": "30min",
                                 "rand_time": "10min", "rekey_bytes": 512 * 2**20, "life_bytes": int(512 * 2**20 * 1.1),
                                 "rand_bytes": int(512 * 2**20 * 1.1) - 512 * 2**20}},
        "start_action": "trap",
        "peers": {"sun": {
            "ike": {"proposals": ["aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384"], "dpd_delay": "1min",
                    "keyingtries": 0, "rekey_time": "3h", "over_time": "18min", "rand_time": "18min",
                    "close_action": "none"},
            "children": {"net-net": {"rekey_time": "25min", "life_time": "1650s", "rand_time": "2min", "rekey_bytes": 0,
                                     "life_bytes": 0, "rand_bytes": 0}}}},
    }}
    assert s["traffic"] == [{"connection": "net-net", "direction": "both", "pattern": "constant", "rate": 1, "size": 1000}]


def test_site_to_site_values_reach_each_daemon_exactly() -> None:
    """Each node's daemon gets its own file's values, strongSwan's defaults filled in as charon fills them."""
    m = load_scenario_text(render_yaml(import_swanctl([HERE / "moon.conf", HERE / "sun.conf"])), "moon.yaml")
    c = {d.name: d.connections[0] for d in daemon_configs(m)}
    moon, sun = c["moon"], c["sun"]
    assert moon.ike.lifetime == Lifetime(rekey_time=7200.0, life_time=7920.0, rand_time=600.0)
    assert sun.ike.lifetime == Lifetime(rekey_time=10800.0, life_time=11880.0, rand_time=1080.0)
    assert (moon.ike.dpd_delay, sun.ike.dpd_delay, moon.ike.keyingtries, sun.ike.keyingtries) == (30.0, 60.0, 1, 0)
    assert (moon.ike.close_action, sun.ike.close_action, moon.ike.dpd_action, sun.ike.dpd_action) == \
        ("restart", "none", "restart", "restart")
    assert sun.ike.proposals == ("aes128-sha256-modp2048", "aes256gcm16-prfsha384-ecp384")
    (mc,), (sc,) = moon.children, sun.children
    assert mc.lifetime == Lifetime(rekey_time=1200.0, life_time=1800.0, rand_time=600.0, rekey_bytes=536870912,
                                   life_bytes=590558003, rand_bytes=53687091)
    assert sc.lifetime == Lifetime(rekey_time=1500.0, life_time=1650.0, rand_time=120.0)
    assert (mc.local_ts, mc.remote_ts, sc.local_ts, sc.remote_ts) == \
        (("10.1.0.0/16",), ("10.2.0.0/16",), ("10.2.0.0/16",), ("10.1.0.0/16",))


def test_roadwarrior_gateway_with_certificates() -> None:
    """One gateway file: the road warrior (remote %any) dials in from 192.0.2.1; 3DES and pools are listed."""
    imported = import_swanctl([HERE / "rw-gateway.conf"])
    assert imported.scenario["nodes"] == {"rw-gateway": {"addresses": ["192.168.0.1"]},
                                          "remote": {"addresses": ["192.0.2.1"]}}
    assert imported.scenario["connections"]["rw"] == {
        "initiator": "remote", "responder": "rw-gateway", "auth": {"method": "ecdsa"},
        "ids": {"initiator": "192.0.2.1", "responder": "moon.strongswan.org"},
        "ike": {"proposals": ["aes128gcm16-prfsha256-x25519"], "mobike": True, "childless": "allow", "dpd_delay": "1min",
                "rekey_time": "4h", "over_time": "24min", "rand_time": "24min"},
        "children": {"net": {"proposals": ["aes128gcm16-x25519", "aes256-sha256-modp3072"], "remote_ts": ["10.1.0.0/16"],
                             "rekey_time": "45min", "life_time": "2970s", "rand_time": "270s"}},
        "start_action": "start"}
    conf = str(HERE / "rw-gateway.conf")
    assert [u.split(": ", 2)[:2] for u in imported.unsupported] == [
        [f"{conf}:4", "pools = rw_pool"], [f"{conf}:22", "send_certreq = no"], [f"{conf}:25", "proposals"]]
    assert "proposal 3des-md5-modp1024" in imported.unsupported[2]


def test_eap_pair() -> None:
    """The EAP client initiates; the gateway's eap_id = %any asks for the identity; reauthentication only."""
    s = _import("eap-gateway.conf", "eap-client.conf")
    c = s["connections"]["rw-eap"]
    assert (c["initiator"], c["responder"]) == ("eap-client", "eap-gateway")
    assert c["auth"] == {"method": "ecdsa", "eap": {"method": "mschapv2", "secret": "imported-rw-eap-eap",
                                                     "identity": "carol", "identity_request": True}}
    assert c["ike"] == {"proposals": ["aes256gcm16-prfsha256-x25519"], "mobike": True, "childless": "allow",
                        "rekey_time": 0, "reauth_time": "2h", "life_time": 0, "over_time": "12min", "rand_time": "12min"}
    assert "peers" not in c


def test_templates_and_includes() -> None:
    """A connection from a template section and an included file; life_time only: rekey_time = life / 1.1, truncated."""
    c = _import("templates.conf")["connections"]["branch"]
    assert c["ike"] == {"proposals": ["aes256-sha256-x25519"], "mobike": False, "childless": "allow",
                        "rekey_time": "1h", "over_time": "5min", "rand_time": "5min"}
    assert c["children"] == {"lan": {"proposals": ["aes256-sha256"], "local_ts": ["172.16.1.0/24"],
                                     "remote_ts": ["172.16.0.0/16"], "rekey_time": "1799s", "life_time": "33min",
                                     "rand_time": 0}}
    assert (c["initiator"], c["start_action"]) == ("templates", "start")


def test_interop_charon_config(interop_conf: Path) -> None:
    """tests/interop's charon: three connections, all answered by charon, ports and send_cert listed."""
    imported = import_swanctl([interop_conf])
    conns = imported.scenario["connections"]
    assert list(conns) == ["sim-psk", "sim-cert", "sim-rev"]
    assert {n: (c["initiator"], c["responder"], c["auth"]["method"]) for n, c in conns.items()} == {
        "sim-psk": ("remote", "charon", "psk"), "sim-cert": ("remote", "charon", "ecdsa"),
        "sim-rev": ("remote", "charon", "psk")}
    assert conns["sim-psk"]["children"] == {"net": {
        "proposals": ["aes256gcm16", "aes128gcm16-x25519", "aes256-sha256", "chacha20poly1305", "aes256-sha384"],
        "remote_ts": ["dynamic"],
        "local_ts": ["dynamic"], "rekey_time": 0, "life_time": 0, "rand_time": 0}}
    assert conns["sim-psk"]["ike"]["dpd_action"] == "clear"  # dpd_action = none: charon's clear
    listed = [u.split(": ", 2)[1] for u in imported.unsupported]
    assert listed == ["remote_port = 1500", "remote_port = 1500", "send_cert = always", "remote_port = 1500"]


def test_subnet_addresses_skip_a_taken_host() -> None:
    """remote_addrs 198.51.100.0/24 with the local host at .1: the remote end gets .2 (charon's MOBIKE config)."""
    s = _import("charon-mobike.conf")
    assert s["nodes"] == {"charon-mobike": {"addresses": ["198.51.100.1"]}, "remote": {"addresses": ["198.51.100.2"]}}
    assert [c["ike"]["mobike"] for c in s["connections"].values()] == [True, True]


@pytest.mark.parametrize("files", FIXTURES, ids=lambda f: "+".join(f))
def test_imported_scenarios_load_and_run(files: list[str], tmp_path: Path) -> None:
    """Each import writes a scenario that ``ikesim run`` runs, with IKE_SAs established."""
    out = tmp_path / "s.yaml"
    assert main(["import", *[str(HERE / f) for f in files], "--out", str(out), "--quiet", "--duration", "3min"]) == 0
    assert out.read_text().startswith("# Imported by 'ikesim import' from ")
    load_scenario(out)
    assert main(["run", str(out), "--out", str(tmp_path / "res"), "--quiet", "--trace", "summary"]) == 0
    summary = json.loads((tmp_path / "res" / "summary.json").read_text())
    established = {"moon.conf": 2, "rw-gateway.conf": 2, "eap-gateway.conf": 2, "templates.conf": 2,
                   "charon-mobike.conf": 4, "charon-esp.conf": 2}[files[0]]  # both ends count each IKE_SA
    assert (summary["sas"]["ike_established"], summary["invariant_violations"], summary["auth_failures"]) == \
        (established, 0, 0)


def test_never_overwrites_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing --out is left alone (exit 2) unless --force is given."""
    out = tmp_path / "s.yaml"
    out.write_text("mine\n")
    assert main(["import", str(HERE / "templates.conf"), "--out", str(out)]) == 2
    assert out.read_text() == "mine\n"
    assert f"{out} exists: give --force to overwrite it" in capsys.readouterr().err
    assert main(["import", str(HERE / "templates.conf"), "--out", str(out), "--force"]) == 0
    assert out.read_text().startswith("# Imported")


@pytest.mark.parametrize(("text", "message"), [
    ("connections {\n c {\n  rekey_time = 1.5h\n }\n}\n", "bad.conf:3: rekey_time = 1.5h: not a time: a whole number "
                                                            "with s, m, h or d (e.g. 4h, 30m, 90s)"),
    ("connections {\n c {\n  version = 1\n }\n}\n", "bad.conf:3: version = 1: IKEv1 is not simulated: ikesim speaks IKEv2"),
    ("connections {\n c {\n  mobike = perhaps\n }\n}\n", "bad.conf:3: mobike = perhaps: expected yes or no"),
    ("connections {\n c {\n  children { x { rekey_bytes = 1q } }\n }\n}\n", "bad.conf:3: rekey_bytes = 1q: rekey_bytes '1q' is not a size"),
    ("connections {\n c {\n", "bad.conf:3: section 'c' (line 2) is not closed with '}'"),
    ("secrets { }\n", "bad.conf: no connections { } section with a connection in it"),
])
def test_bad_input_names_file_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                           message: str) -> None:
    """Input ikesim cannot read exits 2 with a message naming file, line and key; nothing is written."""
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    assert main(["import", str(conf), "--out", str(tmp_path / "s.yaml")]) == 2
    assert capsys.readouterr().err.startswith(f"ikesim: error: {tmp_path}/{message}")
    assert not (tmp_path / "s.yaml").exists()


def test_strongswan_ike_time_defaults() -> None:
    """charon's load_conn: rekey 4 h without rekey/reauth, over 10 % of the longer, rand min(over, shorter / 2)."""
    assert strongswan_ike_times({}) == {"rekey_time": 14400, "reauth_time": 0, "over_time": 1440, "rand_time": 1440}
    assert strongswan_ike_times({"reauth_time": 3600}) == {"rekey_time": 0, "reauth_time": 3600, "over_time": 360,
                                                           "rand_time": 360}
    assert strongswan_ike_times({"rekey_time": 100, "reauth_time": 3600}) == {
        "rekey_time": 100, "reauth_time": 3600, "over_time": 360, "rand_time": 50}
    assert strongswan_ike_times({"rekey_time": 45}) == {"rekey_time": 45, "reauth_time": 0, "over_time": 4, "rand_time": 4}


def test_more_than_two_files_is_refused() -> None:
    """One file, or one per peer."""
    with pytest.raises(ConfigError, match="give one swanctl.conf, or two"):
        import_swanctl([HERE / "moon.conf"] * 3)


@pytest.mark.parametrize(("value", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("4h", 14400), ("1d", 86400),
                                                ("2 H", 7200), ("0x10", 16), ("010m", 480), ("0", 0)])
def test_times_are_read_as_charon_reads_them(value: str, seconds: int) -> None:
    """``parse_time``: strtoul(v, 0) (0x hex, 0 octal), optional spaces, then s, m, h or d."""
    from ikesim.scenario.swanctl import Setting
    from ikesim.scenario.swanctl_import import parse_time

    assert parse_time(Setting(value, "f.conf", 1), "rekey_time") == seconds
