"""Scripted actions on a node at a time (``Simulation.schedule``): initiate, rekey, delete, DPD, pins, restart.

*sim* is the ``ikesim.sim.simulation.Simulation`` running them (typed ``Any``: that module imports this one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ikesim.errors import LocalProtocolError
from ikesim.metrics.recorder import ActionExecuted, ActionSkipped
from ikesim.sim.restart import restart_node

__all__ = ["ACTIONS", "PINS", "ScheduledAction", "run_action"]

ACTIONS = ("initiate", "rekey_child", "rekey_ike", "create_child", "delete_child", "delete_ike", "dpd",
           "pin_nonce", "pin_child_spi", "pin_ike_spi", "restart")

PINS = {"pin_nonce": "nonce", "pin_child_spi": "child_spi", "pin_ike_spi": "ike_spi"}
"""Pin actions -> the daemon's ``Rng.draw`` purpose they queue a value (a prefix) for."""


@dataclass(frozen=True, slots=True)
class ScheduledAction:
    """An action queued for a node at a time (``Simulation.schedule``)."""

    at: float
    node: str
    action: str
    connection: str | None
    child: str | None
    value: bytes = b""


def run_action(sim: Any, a: ScheduledAction) -> None:
    """Run scheduled action *a* on its node now, recording ``ActionExecuted`` or ``ActionSkipped`` (why not)."""
    node = sim.nodes[a.node]
    d = node.daemon
    now = sim.env.now
    conn = a.connection or ""
    try:
        if a.action in PINS:
            d.rng.force(PINS[a.action], a.value)
            target = a.value.hex()
        elif a.action == "restart":  # the daemon restarts with nothing (``ikesim.sim.restart``)
            target = restart_node(sim, a.node, now)
        elif a.action == "initiate":
            if a.connection is None:
                raise LocalProtocolError("initiate needs a connection")
            spi = d.initiate(a.connection, now)
            target = spi.hex()
        elif a.action in ("rekey_child", "delete_child"):
            spis = d.child_sa_spis(a.connection)
            if a.child is not None:
                spis = [s for s in spis if d.children[s].name == a.child]
            if not spis:
                raise LocalProtocolError(f"no installed CHILD_SA{f' {a.child!r}' if a.child else ''}")
            (d.rekey_child_sa if a.action == "rekey_child" else d.delete_child_sa)(spis[0], now)
            target = spis[0].hex()
        else:
            ikes = d.ike_sa_spis(a.connection)
            if not ikes:
                raise LocalProtocolError("no established IKE_SA")
            if a.action == "rekey_ike":
                d.rekey_ike_sa(ikes[0], now)
            elif a.action == "delete_ike":
                d.delete_ike_sa(ikes[0], now)
            elif a.action == "dpd":
                d.check_liveness(ikes[0], now)
            else:
                if a.child is None:
                    raise LocalProtocolError("create_child needs a child name")
                d.create_child_sa(ikes[0], a.child, now)
            target = ikes[0].hex()
    except LocalProtocolError as exc:
        sim.collector.record(ActionSkipped(action=a.action, connection=conn, reason=str(exc)), now=now, node=a.node)
        node.service()
        return
    sim.collector.record(ActionExecuted(action=a.action, connection=conn, target=target), now=now, node=a.node)
    node.service()
