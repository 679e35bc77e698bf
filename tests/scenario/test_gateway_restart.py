"""scenarios/reconnect/gateway-restart.yaml (RFC 5723 session resumption after a gateway restart), small variants."""

from __future__ import annotations

from pathlib import Path

import pytest

import ikesim
from ikesim.scenario.build import build_simulation
from ikesim.scenario.load import load_scenario

PATH = Path(__file__).resolve().parents[2] / "scenarios" / "reconnect" / "gateway-restart.yaml"


@pytest.fixture(scope="module")
def runs() -> dict[str, ikesim.Results]:
    return {v: ikesim.run(load_scenario(PATH, variant=v)) for v in ("full-small", "resume-small")}


def test_without_resumption_every_client_runs_ike_sa_init_again(runs: dict[str, ikesim.Results]) -> None:
    """20 clients: 20 IKE_SA_INIT + IKE_AUTH at the start, and 20 more after the restart (DPD timeout, restart)."""
    r = runs["full-small"]
    counts = r.exchanges.groupby(["purpose", "outcome"]).size().to_dict()
    assert counts == {("dpd", "ok"): 866, ("dpd", "timeout"): 20, ("ike_auth", "ok"): 40, ("ike_sa_init", "ok"): 40}
    assert r.summary["crypto_ops"]["ke_keygen:31"] == 80
    assert r.summary["sas"] == {"ike_established": 80, "child_installed": 80, "ike_deleted": 40, "child_deleted": 40}


def test_with_resumption_every_client_resumes(runs: dict[str, ikesim.Results]) -> None:
    """The same storm with tickets: IKE_SESSION_RESUME instead of IKE_SA_INIT, no key exchange (RFC 5723 §5.1), every
    tunnel back, each client with a new ticket (40 TicketIssued at the gateway: 20 first ones, 20 after resuming)."""
    r = runs["resume-small"]
    counts = r.exchanges.groupby(["purpose", "outcome"]).size().to_dict()
    assert counts == {("dpd", "ok"): 866, ("dpd", "timeout"): 20, ("ike_auth", "ok"): 40, ("ike_sa_init", "ok"): 20,
                      ("resume", "ok"): 20}
    assert r.summary["crypto_ops"]["ke_keygen:31"] == 40
    gw = r.events[r.events.node == "gw"]["event"].value_counts().to_dict()
    assert (gw["IkeSaResumed"], gw["TicketIssued"], gw.get("TicketRejected", 0)) == (20, 40, 0)
    restart = r.events[(r.events.event == "ActionExecuted") & (r.events.node == "gw")]
    assert list(restart["action"]) == ["restart"] and list(restart["target"]) == ["boot1"]
    lost = r.events[(r.events.event == "IkeSaDeleted") & (r.events.node == "gw")]
    assert set(lost["reason"]) == {"restarted"} and len(lost) == 20
    assert r.summary["sas"] == {"ike_established": 80, "child_installed": 80, "ike_deleted": 40, "child_deleted": 40}
    assert r.summary["invariant_violations"] == 0


def test_resumption_costs_the_gateway_less(runs: dict[str, ikesim.Results]) -> None:
    """Same exchanges and jobs; the resumed reconnects skip the X25519 and half the PRFs of a full one."""
    full, resume = (runs[v].summary for v in ("full-small", "resume-small"))
    assert full["crypto_ops"]["prf"] - resume["crypto_ops"]["prf"] == 80
    assert resume["cpu"]["gw"]["busy_s"] < full["cpu"]["gw"]["busy_s"]


def test_10k_variant_loads_and_builds() -> None:
    """The study's variant: 10,000 clients on a 2-core gateway (too big to run here)."""
    m = load_scenario(PATH, variant="resume-10k")
    sim = build_simulation(m)
    assert len(sim.nodes) == 10_001 and sim.nodes["gw"].cpu is not None
    assert sim.nodes["gw"].daemon.config.ticket_secret == b"gw persisted ticket key"
