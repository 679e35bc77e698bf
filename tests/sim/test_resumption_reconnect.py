"""RFC 5723 session resumption where clients come back: a stateless HA failover (the cluster's members share the
ticket key, ``ikesim.sim.cluster_setup``) and an address change without MOBIKE (``ike.reestablish``)."""

from __future__ import annotations

from pathlib import Path

import ikesim
from ikesim.scenario.load import load_scenario_text

ROOT = Path(__file__).resolve().parents[2]

HA = """
name: ha-resume
seed: 5
duration: 4min
nodes:
  gw: {addresses: [198.51.100.1]}
clusters:
  gw:
    members: [gw-a, gw-b]
    failover: stateless
    events: [{at: 30s, crash: gw-a}]
fleet:
  clients: 4
  client_subnet: 10.1.0.0/24
  gateway: gw
  link: {delay: 10ms}
  start: {spread: 4s}
  connection:
    ike: {dpd_delay: 10s, dpd_action: restart, resumption: RESUMPTION}
"""


def test_stateless_failover_resumes_with_the_cluster_key() -> None:
    """gw-b never saw the tickets gw-a issued, but derives the same keys: every client resumes (method ``resume``)."""
    r = ikesim.run(load_scenario_text(HA.replace("RESUMPTION", "true"), "ha-resume.yaml"))
    assert r.exchanges.groupby(["purpose", "outcome"]).size().to_dict() == {
        ("dpd", "ok"): 48, ("dpd", "timeout"): 4, ("ike_auth", "ok"): 8, ("ike_sa_init", "ok"): 4, ("resume", "ok"): 4}
    assert r.ha["method"].tolist() == ["resume"] * 4
    assert r.summary["ha"]["by_method"] == {"resume": 4}


def test_stateless_failover_without_resumption_reauthenticates() -> None:
    r = ikesim.run(load_scenario_text(HA.replace("RESUMPTION", "false"), "ha-resume.yaml"))
    assert r.ha["method"].tolist() == ["reauth"] * 4
    assert (r.exchanges["purpose"] == "resume").sum() == 0


def test_address_change_without_mobike_resumes() -> None:
    """wifi-to-lte without MOBIKE: the new IKE_SA from the LTE address is resumed; the old one is deleted as before."""
    text = (ROOT / "scenarios" / "mobility" / "wifi-to-lte.yaml").read_text().replace(
        "ike: {mobike: ${mobike}, dpd_delay: 30s, rekey_time: 0}",
        "ike: {mobike: ${mobike}, dpd_delay: 30s, rekey_time: 0, resumption: true}")
    r = ikesim.run(load_scenario_text(text, "wifi-to-lte.yaml", variant="reauth-make-before-break"))
    assert r.exchanges.groupby(["purpose", "outcome"]).size().to_dict() == {
        ("delete_ike", "ok"): 1, ("ike_auth", "ok"): 2, ("ike_sa_init", "ok"): 1, ("resume", "ok"): 1}
    assert r.handovers["method"].tolist() == ["resume"]


def test_resumption_under_cookies_keeps_the_invariants() -> None:
    """A gateway demanding COOKIEs (``cookie_threshold: always``): each IKE_SESSION_RESUME is answered N(COOKIE) and
    sent again with it on message ID 0, which the message-ID invariant allows as for IKE_SA_INIT (RFC 7296 §2.6)."""
    text = (ROOT / "scenarios" / "reconnect" / "gateway-restart.yaml").read_text().replace(
        "cpu: {cores: 2}, ticket_secret:", "cpu: {cores: 2}, cookie_threshold: always, ticket_secret:")
    r = ikesim.run(load_scenario_text(text, "gateway-restart.yaml", variant="resume-small"))
    resume = r.exchanges[r.exchanges["purpose"] == "resume"]["outcome"].value_counts().to_dict()
    assert resume == {"COOKIE": 20, "ok": 20}
    assert r.summary["invariant_violations"] == 0
    assert (r.events["event"] == "IkeSaResumed").sum() == 40  # both ends of each of the 20 clients
