"""``auth.eap.fast_reauth``: EAP-TLS session resumption (RFC 5216 §2.1.3, RFC 5246 §7.3) across reauthentications
(RFC 7296 §2.8.3) of a client behind a certificate gateway, measured in IKE_AUTH exchanges and gateway CPU; and the
schema of ``fast_reauth`` and ``tls_session_lifetime``."""

from __future__ import annotations

import pytest

from ikesim.errors import ConfigError
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario_text

PAIR = """
name: eap-tls-fast-reauth
seed: 5
duration: 10min
nodes:
  c: {addresses: [10.0.0.1]}
  g: {addresses: [10.0.0.2], cpu: {cores: 2}}
links: [{between: [c, g], delay: 10ms}]
connections:
  vpn:
    initiator: c
    responder: g
    auth: {method: ecdsa, eap: %s}
    ike: {reauth_time: 2min, rand_time: 0s}
"""


def _run(eap: str) -> tuple[list[tuple[float, int, bool]], list[int], list[float]]:
    """The gateway's EapCompleted (time, rounds, resumed); IKE_AUTH exchanges and gateway CPU (ms) per 2 min."""
    m = load_scenario_text(PAIR % eap)
    r = build_simulation(m).run(m.duration)
    ev = r.events
    done = ev[(ev.event == "EapCompleted") & (ev.node == "g")]
    ex = r.exchanges
    auth = ex[(ex.exchange == "IKE_AUTH") & (ex.initiator == "c")]
    jobs = r.processing[r.processing.node == "g"]
    windows = [(t, t + 120) for t in range(0, 600, 120)]
    return ([(round(float(t), 3), int(n), bool(x)) for t, n, x in zip(done.time, done.rounds, done.resumed, strict=True)],
            [int(((auth.start >= a) & (auth.start < b)).sum()) for a, b in windows],
            [round(float(jobs[(jobs.arrived >= a) & (jobs.arrived < b)].service.sum()) * 1e3, 3) for a, b in windows])


def test_fast_reauth_resumes_the_tls_session_at_each_reauthentication() -> None:
    """Every 2 min the client reauthenticates: without ``fast_reauth`` each is a full EAP-TLS handshake (9 IKE_AUTH
    exchanges, 0.86 ms of gateway CPU per 2 min with the old IKE_SA's Delete); with it the first only, then the
    abbreviated handshake (4 exchanges, 0.418 ms: no certificate checks, no ECDHE, no TLS signature)."""
    full = _run("{method: tls}")
    assert full == ([(0.171, 8, False), (120.371, 8, False), (240.572, 8, False), (360.773, 8, False),
                     (480.974, 8, False)], [9, 9, 9, 9, 9], [0.798, 0.84, 0.86, 0.86, 0.86])
    fast = _run("{method: tls, fast_reauth: true}")
    assert fast == ([(0.171, 8, False), (120.271, 3, True), (240.371, 3, True), (360.472, 3, True),
                     (480.572, 3, True)], [9, 4, 4, 4, 4], [0.798, 0.398, 0.418, 0.418, 0.418])


def test_session_lifetime_forces_a_full_handshake_again() -> None:
    """``tls_session_lifetime: 3min``: the session of 0 s is resumed at 2 min, expired at 4 min (full handshake and a
    new session), resumed at 6 min, expired at 8 min."""
    runs, auths, _ = _run("{method: tls, fast_reauth: true, tls_session_lifetime: 3min}")
    assert [(n, x) for _, n, x in runs] == [(8, False), (3, True), (8, False), (3, True), (8, False)]
    assert auths == [9, 4, 9, 4, 9]


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


@pytest.mark.parametrize(("eap", "message"), [
    ("{method: mschapv2, secret: pw, fast_reauth: true}", "fast_reauth .TLS session resumption. needs method tls, "
                                                          "not mschapv2"),
    ("{method: md5, secret: pw, fast_reauth: true}", "needs method tls, not md5"),
    ("{method: tls, tls_session_lifetime: 10min}", "tls_session_lifetime needs fast_reauth: true"),
    ("{method: tls, fast_reauth: true, tls_session_lifetime: 0s}", "tls_session_lifetime"),
    ("{method: tls, fast_reauth: yes-please}", "fast_reauth"),
])
def test_fast_reauth_validation(eap: str, message: str) -> None:
    """``fast_reauth`` only with EAP-TLS; ``tls_session_lifetime`` only with it, and more than 0 s."""
    with pytest.raises(ConfigError, match=message):
        build_simulation(load_scenario_text(BASE % eap))


def test_fast_reauth_maps_to_both_ends_credentials() -> None:
    """Both the EAP client's and the EAP server's Credentials get resumption and the lifetime in seconds."""
    from ikesim.scenario.build import daemon_configs
    m = load_scenario_text(BASE % "{method: tls, fast_reauth: true, tls_session_lifetime: 20min}")
    creds = {d.name: d.connections[0].credentials for d in daemon_configs(m)}
    assert {n: (c.eap_tls_resumption, c.eap_tls_session_lifetime) for n, c in creds.items()} == {
        "c": (True, 1200.0), "g": (True, 1200.0)}
