"""Scripted actions on a node at a time (``Simulation.schedule``): initiate, rekey, delete, expire, forget, DPD, pins,
restart.

*sim* is the ``ikesim.sim.simulation.Simulation`` running them (typed ``Any``: that module imports this one).

Which SA an action acts on: without a selector, the first usable one of the connection (an installed or rekeying
CHILD_SA, an established IKE_SA), as always. ``spi`` picks the SA one of whose SPIs it is (a CHILD_SA's inbound or
outbound SPI on this node, an IKE_SA's spi_i or spi_r); ``ordinal`` n picks the n-th SA the node holds for the
connection (CHILD_SAs: of the ``child`` configuration if given), in installation order, counting SAs that are
rekeyed but still linger inbound and SAs being deleted. An action whose selector finds nothing, or whose SA is in a
state the action cannot apply to (a rekey of a rekeyed SA, a Delete of one whose Deletes were already exchanged and
that only lingers: ``forget_child`` drops such an SA early, ``expire_child`` ends its use), is recorded as
``ActionSkipped`` with the reason: an action never raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ikesim.errors import LocalProtocolError
from ikesim.ike.forget import forget_child_sa, forget_ike_sa
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.metrics.recorder import ActionExecuted, ActionSkipped
from ikesim.sim.restart import restart_node

__all__ = ["ACTIONS", "PINS", "CHILD_ACTIONS", "IKE_ACTIONS", "ScheduledAction", "run_action"]

ACTIONS = ("initiate", "rekey_child", "rekey_ike", "create_child", "delete_child", "delete_ike", "dpd",
           "pin_nonce", "pin_child_spi", "pin_ike_spi", "restart", "expire_child", "expire_ike", "forget_child",
           "forget_ike")
CHILD_ACTIONS = ("rekey_child", "delete_child", "expire_child", "forget_child")
"""Actions on one CHILD_SA (a ``spi`` selector is 4 bytes)."""
IKE_ACTIONS = ("rekey_ike", "delete_ike", "dpd", "create_child", "expire_ike", "forget_ike")
"""Actions on one IKE_SA (a ``spi`` selector is 8 bytes)."""

PINS = {"pin_nonce": "nonce", "pin_child_spi": "child_spi", "pin_ike_spi": "ike_spi"}
"""Pin actions -> the daemon's ``Rng.draw`` purpose they queue a value (a prefix) for."""

_USABLE_CHILD = (ChildSaState.INSTALLED, ChildSaState.REKEYING)


@dataclass(frozen=True, slots=True)
class ScheduledAction:
    """An action queued for a node at a time (``Simulation.schedule``)."""

    at: float
    node: str
    action: str
    connection: str | None
    child: str | None
    value: bytes = b""
    spi: bytes = b""
    """Selector: an SPI of the SA to act on (empty: none)."""
    ordinal: int | None = None
    """Selector: the n-th SA held (1-based), in installation order."""


def _child_target(d: Any, a: ScheduledAction) -> Any:
    """The CHILD_SA *a* acts on (module docstring); LocalProtocolError naming what was looked for if none."""
    named = f" {a.child!r}" if a.child else ""
    if not a.spi and a.ordinal is None:
        spis = [s for s in d.child_sa_spis(a.connection) if a.child is None or d.children[s].name == a.child]
        if not spis:
            raise LocalProtocolError(f"no installed CHILD_SA{named}")
        return d.children[spis[0]]
    held = [c for c in d.children.values() if c.state is not ChildSaState.DELETED
            and getattr(d.sas.get(c.ike_spi), "name", None) == a.connection and (a.child is None or c.name == a.child)]
    return _pick(held, a, f"CHILD_SA{named}", lambda c: (c.spi_in, c.spi_out))


def _ike_target(d: Any, a: ScheduledAction) -> Any:
    """The IKE_SA *a* acts on (module docstring); LocalProtocolError naming what was looked for if none."""
    if not a.spi and a.ordinal is None:
        ikes = d.ike_sa_spis(a.connection)
        if not ikes:
            raise LocalProtocolError("no established IKE_SA")
        return d.sas[ikes[0]]
    held = [sa for k, sa in d.sas.items() if k == sa.local_spi and sa.name == a.connection
            and sa.state is not IkeSaState.CONNECTING]
    return _pick(held, a, "IKE_SA", lambda sa: (sa.spi_i, sa.spi_r))


def _pick(held: list[Any], a: ScheduledAction, what: str, spis: Callable[[Any], tuple[bytes, bytes]]) -> Any:
    """The SA of *held* that *a*'s ``spi`` (one of ``spis(sa)``) or ``ordinal`` (1-based) names; LocalProtocolError
    saying what was looked for if none."""
    if a.spi:
        found = [x for x in held if a.spi in spis(x)]
        if not found:
            raise LocalProtocolError(f"no target: no {what} with SPI {a.spi.hex()}")
        return found[0]
    assert a.ordinal is not None
    if a.ordinal > len(held):
        raise LocalProtocolError(f"no target: {what} #{a.ordinal} asked, {len(held)} held")
    return held[a.ordinal - 1]


def _on_child(d: Any, a: ScheduledAction, now: float) -> str:
    """Run a CHILD_SA action (RFC 7296 §1.3.3 rekey, §1.4.1 delete, §2.8 hard lifetime, or forget); its target SPI."""
    child = _child_target(d, a)
    spi = child.spi_in
    state = child.state.value
    if a.action == "rekey_child":
        if child.state not in _USABLE_CHILD:
            raise LocalProtocolError(f"CHILD_SA {spi.hex()} is {state}: nothing to rekey")
        d.rekey_child_sa(spi, now)
    elif a.action == "delete_child":
        if child.state is ChildSaState.DELETING:
            raise LocalProtocolError(f"CHILD_SA {spi.hex()} is already being deleted")
        linger = d.timers.deadline(("linger", spi))
        if linger is not None:  # RFC 7296 §1.4.1: its Deletes were exchanged; forget_child drops it early
            raise LocalProtocolError(f"CHILD_SA {spi.hex()} is rekeyed and deleted with the peer, lingering inbound "
                                     f"until {linger:g} s")
        d.delete_child_sa(spi, now)
    elif a.action == "expire_child":
        if child.expired:
            raise LocalProtocolError(f"CHILD_SA {spi.hex()} has already expired")
        d.timers.arm(("child_hard", spi), now)  # its hard lifetime is reached now (RFC 7296 §2.8)
        d.handle_timer(now)
    else:
        forget_child_sa(d, spi, now)
    return str(spi.hex())


def _on_ike(d: Any, a: ScheduledAction, now: float) -> str:
    """Run an IKE_SA action (RFC 7296 §1.3.2 rekey, §1.4.1 delete, §2.4 DPD, §1.3.1 new CHILD_SA, §2.8 hard lifetime,
    or forget); its local SPI."""
    sa = _ike_target(d, a)
    spi = sa.local_spi
    if a.action in ("rekey_ike", "dpd", "create_child") and sa.state is not IkeSaState.ESTABLISHED:
        raise LocalProtocolError(f"IKE_SA {spi.hex()} is {sa.state.value}")
    if a.action == "rekey_ike":
        d.rekey_ike_sa(spi, now)
    elif a.action == "delete_ike":
        d.delete_ike_sa(spi, now)
    elif a.action == "dpd":
        d.check_liveness(spi, now)
    elif a.action == "expire_ike":
        d.timers.arm(("ike_hard", spi), now)  # its hard lifetime is reached now (RFC 7296 §2.8)
        d.handle_timer(now)
    elif a.action == "forget_ike":
        forget_ike_sa(d, spi, now)
    else:
        if a.child is None:
            raise LocalProtocolError("create_child needs a child name")
        d.create_child_sa(spi, a.child, now)
    return str(spi.hex())


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
        elif a.action in CHILD_ACTIONS:
            target = _on_child(d, a, now)
        else:
            target = _on_ike(d, a, now)
    except LocalProtocolError as exc:
        sim.collector.record(ActionSkipped(action=a.action, connection=conn, reason=str(exc)), now=now, node=a.node)
        node.service()
        return
    sim.collector.record(ActionExecuted(action=a.action, connection=conn, target=target), now=now, node=a.node)
    node.service()
