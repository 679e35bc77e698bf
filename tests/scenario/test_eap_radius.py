"""scenarios/reconnect/eap-tls-radius.yaml: an EAP-TLS fleet through an idle and a loaded RADIUS server
(``ikesim.sim.aaa``), and the scenario schema of ``auth.eap`` and ``aaa:``."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario_text, load_variants

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "reconnect" / "eap-tls-radius.yaml"


def test_loaded_radius_delays_the_storm() -> None:
    """40 EAP-TLS clients in 2 s: each handshake waits for RADIUS 7 times (rounds 2-8); with 2 slots of 50 ms the
    queue reaches 34 and the last client is up at 7.2 s instead of 2.5 s (and the half-open IKE_SAs waiting on RADIUS
    pass the cookie threshold of 30: 10 clients are asked for a COOKIE)."""
    out = {}
    for name, m in load_variants(SCENARIO.read_text(), str(SCENARIO)):
        assert not isinstance(m, ConfigError), m
        sim = build_simulation(m)
        ev = sim.run(m.duration).events
        est = ev[(ev.event == "IkeSaEstablished") & (ev.node == "gw")]
        aaa = sim.aaa_servers["radius"]  # type: ignore[attr-defined]
        done = ev[(ev.event == "EapCompleted") & (ev.node == "gw")]
        out[name] = (len(est), round(float(est.time.max()), 3), aaa.served, aaa.max_queue,
                     round(statistics.median(aaa.waits), 3), int((ev.event == "CookieRequired").sum()),
                     sorted(set(done.rounds.astype(int))), sorted(set(done.outcome)))
    assert out == {"idle": (40, 2.481, 280, 1, 0.0, 0, [8], ["success"]),
                   "loaded": (40, 7.198, 280, 34, 0.66, 10, [8], ["success"])}


BASE = """
name: eap
duration: 10s
nodes:
  c: {addresses: [10.0.0.1]}
  g: {addresses: [10.0.0.2]}
links: [{between: [c, g], delay: 5ms}]
connections:
  vpn:
    initiator: c
    responder: g
    auth: {method: psk, psk: gwkey, eap: %s}
"""


def test_eap_mschapv2_connection_runs() -> None:
    """``auth.eap`` with MS-CHAPv2 against a PSK gateway: 4 IKE_AUTH exchanges, an MSK on both ends."""
    m = load_scenario_text(BASE % "{method: mschapv2, secret: pw}")
    ev = build_simulation(m).run(m.duration).events
    done = ev[ev.event == "EapCompleted"]
    assert sorted(zip(done.node, done.outcome, done.rounds.astype(int), done.msk.astype(bool), strict=True)) == [
        ("c", "success", 3, True), ("g", "success", 3, True)]
    assert (ev.event == "IkeSaEstablished").sum() == 2


@pytest.mark.parametrize(("eap", "message"), [
    ("{method: md5}", "needs a non-empty secret"),
    ("{method: tls, secret: x}", "takes no secret"),
    ("{method: leap, secret: x}", "method"),
    ("{method: md5, secret: x, aaa: nowhere}", "not one of aaa"),
])
def test_eap_validation(eap: str, message: str) -> None:
    """Bad ``auth.eap`` settings are ConfigErrors naming the problem."""
    with pytest.raises(ConfigError, match=message):
        m = load_scenario_text(BASE % eap)
        build_simulation(m)


def test_eap_client_gets_a_ticket_and_resumes_without_eap() -> None:
    """RFC 5723 with EAP: N(TICKET_REQUEST) rides in the first IKE_AUTH request, the ticket in the last response
    (after EAP-Success and AUTH); after a Delete, ``initiate`` resumes with IKE_SESSION_RESUME and one IKE_AUTH
    authenticated with the resumed keys, no EAP round (§4.3.3)."""
    text = (BASE % "{method: mschapv2, secret: pw}") + """    ike: {resumption: true}
actions:
  - {at: 5s, node: c, action: delete_ike, connection: vpn}
  - {at: 6s, node: c, action: initiate, connection: vpn}
"""
    m = load_scenario_text(text)
    r = build_simulation(m).run(m.duration)
    ex = r.exchanges[r.exchanges.node == "c"] if "node" in r.exchanges.columns else r.exchanges
    assert list(zip(ex.purpose, ex.outcome, strict=True)) == [
        ("ike_sa_init", "ok"), ("ike_auth", "ok"), ("ike_auth", "ok"), ("ike_auth", "ok"), ("ike_auth", "ok"),
        ("delete_ike", "ok"), ("resume", "ok"), ("ike_auth", "ok")]
    ev = r.events
    assert (ev.event == "EapCompleted").sum() == 2  # the first IKE_SA only, one per end
    issued = ev[ev.event == "TicketIssued"]
    assert sorted(issued.node) == ["c", "c", "g", "g"]  # the first IKE_AUTH's ticket, and the resumed one's
    assert sorted(ev[ev.event == "IkeSaResumed"].node) == ["c", "g"]
