"""A node's IKE daemon restarts (the ``restart`` action): every IKE_SA and CHILD_SA it held is gone at once.

The new daemon has the same configuration and a new random stream (``node/<name>/ike/boot<n>``), so it draws new
SPIs and nonces, and, unless ``DaemonConfig.ticket_secret`` is set, a new RFC 5723 ticket key: the tickets it issued
before the restart are then refused (N(TICKET_NACK)) and clients fall back to a full IKE_SA_INIT. Peers learn of the
restart only by its silence (RFC 7296 §2.4: DPD, retransmissions) or by INVALID_IKE_SPI drops, as with a real reboot.
The lost SAs are recorded as deleted (``restarted``) and the data plane forgets their ESP SAs, like a cluster member's
crash (``ikesim.sim.cluster``). A downtime is modelled with a link's ``down`` window.
"""

from __future__ import annotations

from typing import Any

from ikesim.ike import events as ev
from ikesim.ike.daemon import IkeDaemon

__all__ = ["restart_node"]

_BOOTS = "_restart_boots"


def restart_node(sim: Any, name: str, now: float) -> str:
    """Replace node *name*'s daemon with a fresh one (RFC 7296 §2.4: the peers find out by silence); returns the boot
    number as text (the action's target)."""
    node = sim.nodes[name]
    old: IkeDaemon = node.daemon
    boots: dict[str, int] = vars(sim).setdefault(_BOOTS, {})
    boot = boots[name] = boots.get(name, 0) + 1
    lost: list[ev.IkeEvent] = []
    for spi, sa in sorted(old.sas.items()):
        if spi != sa.local_spi:
            continue
        for child in sa.children.values():
            lost.append(ev.ChildSaDeleted(**sa.ids(), child=child.name, spi_in=child.spi_in, spi_out=child.spi_out,
                                          reason="restarted"))
        lost.append(ev.IkeSaDeleted(**sa.ids(), reason="restarted"))
    plane = node.plane
    for e in lost:
        if plane is not None:
            plane.on_event(e, now)
        sim.collector.record(e, now=now, node=name)
    new = IkeDaemon(old.config, rng=sim.rng.child("node", name, "ike", f"boot{boot}"), meter=node.meter)
    new.report_answers = old.report_answers
    node.daemon = new
    if plane is not None:
        plane.daemon = new
        new.child_use = plane.last_in.get
    return f"boot{boot}"
