"""scenarios/reconnect/methods.yaml at its small size: 20 road warriors move between Wi-Fi and LTE 22 times; per way
back (RFC 7296 §2.8.3 reauthentication with PSK, certificates, EAP-MSCHAPv2, EAP-TLS with and without fast_reauth;
RFC 5723 resumption; RFC 4555 MOBIKE) the exact exchanges, the handovers' method and time to restore, and the order
of the gateway's CPU per reconnect."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import ikesim

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "reconnect" / "methods.yaml"
MOVES = 22
"""Handovers of the small fleet (20 clients; two move twice), all after every client is up."""

FULL = {("delete_ike", "ok"): MOVES, ("ike_auth", "ok"): 42, ("ike_sa_init", "ok"): 42}
EXCHANGES = {
    "psk": FULL,
    "ecdsa": FULL,
    "eap-mschapv2": FULL | {("ike_auth", "ok"): 42 * 4},  # 4 IKE_AUTH rounds per IKE_SA
    "eap-tls": FULL | {("ike_auth", "ok"): 42 * 9},  # 9 rounds: Start, ClientHello, 4 server fragments, ...
    "eap-tls-fast": FULL | {("ike_auth", "ok"): 20 * 9 + MOVES * 4},  # the reconnects resume the TLS session
    "resume": {("delete_ike", "ok"): MOVES, ("ike_auth", "ok"): 42, ("ike_sa_init", "ok"): 20, ("resume", "ok"): MOVES},
    "mobike": {("ike_auth", "ok"): 20, ("ike_sa_init", "ok"): 20, ("mobike", "ok"): 3 * MOVES},
}
"""(purpose, outcome) -> count over the run: 20 first IKE_SAs, then one reconnect per move."""
RESTORE_P50 = {"psk": 0.1802, "ecdsa": 0.1803, "eap-mschapv2": 0.4903, "eap-tls": 1.0403, "eap-tls-fast": 0.4903,
               "resume": 0.1801, "mobike": 0.135}
"""Median seconds from Wi-Fi down to the tunnel working on LTE (90 ms round trips, RADIUS 20 ms per EAP round)."""


def cpu_per_reconnect(r: ikesim.Results) -> tuple[float, int]:
    """The gateway's busy seconds from when every client's first IKE_SA is up, per handover from then on."""
    e = r.events
    up = math.ceil(e[(e["event"] == "IkeSaEstablished") & (e["node"] != "gw")].groupby("node")["time"].min().max()) + 1
    jobs = r.processing[(r.processing["node"] == "gw") & (r.processing["arrived"] >= up)]
    moves = int((r.handovers["down_at"] >= up).sum())
    return float(jobs["service"].sum()) / moves, moves


@pytest.fixture(scope="module")
def runs() -> dict[str, ikesim.Results]:
    return {m: ikesim.run(ikesim.load_scenario(SCENARIO, variant=f"{m}-small")) for m in EXCHANGES}


@pytest.mark.parametrize("method", list(EXCHANGES))
def test_exchanges_and_time_to_restore(runs: dict[str, ikesim.Results], method: str) -> None:
    r = runs[method]
    assert r.exchanges.groupby(["purpose", "outcome"]).size().to_dict() == EXCHANGES[method]
    way = {"resume": "resume", "mobike": "mobike"}.get(method, "reestablish")
    assert r.handovers["method"].value_counts().to_dict() == {way: MOVES}
    assert r.handovers["retransmissions"].sum() == 0
    assert r.handovers["restore_s"].median() == pytest.approx(RESTORE_P50[method], abs=1e-4)
    assert cpu_per_reconnect(r)[1] == MOVES
    assert r.summary["invariant_violations"] == 0


def test_mobike_makes_no_ike_sa_and_resume_no_key_exchange(runs: dict[str, ikesim.Results]) -> None:
    """MOBIKE: no IKE_SA_INIT after the first ones; resume: IKE_SESSION_RESUME instead of IKE_SA_INIT."""
    after = {m: runs[m].exchanges[runs[m].exchanges["start"] >= 30] for m in ("mobike", "resume", "psk")}
    assert set(after["mobike"]["purpose"]) == {"mobike"}
    assert set(after["resume"]["purpose"]) == {"resume", "ike_auth", "delete_ike"}
    assert set(after["psk"]["purpose"]) == {"ike_sa_init", "ike_auth", "delete_ike"}


def test_cpu_per_reconnect_order(runs: dict[str, ikesim.Results]) -> None:
    """MOBIKE < resumption < PSK < ECDSA < EAP-MSCHAPv2 (= EAP-TLS resumed) < EAP-TLS, in gateway CPU per reconnect."""
    cpu = {m: cpu_per_reconnect(r)[0] for m, r in runs.items()}
    order = ["mobike", "resume", "psk", "ecdsa", "eap-mschapv2", "eap-tls"]
    assert [cpu[m] for m in order] == sorted(cpu[m] for m in order)
    assert cpu["eap-tls-fast"] < cpu["eap-tls"]
    assert cpu["resume"] < 0.7 * cpu["psk"] and cpu["mobike"] < 0.5 * cpu["resume"]
