"""A node that silently loses an SA (a crashed or misbehaving peer): no Delete is sent (RFC 7296 §1.4.1, §2.4, §2.25.1).

RFC 7296 §1.4.1 asks a node to delete SAs with an INFORMATIONAL exchange; a node that crashes, or a buggy one,
just stops holding them. These commands model that: the SA is gone from the node's tables, its timers stop, no
message leaves, and the only trace is the usual deletion event with reason ``forgotten``. The peer finds out as
RFC 7296 says it will: a rekey or Delete naming the forgotten CHILD_SA is answered with CHILD_SA_NOT_FOUND or an
empty Delete (§2.25.1, §1.4.1), ESP to it is dropped (RFC 4303 §3.4.2), and requests on a forgotten IKE_SA go
unanswered until liveness checks give up (§2.4). Nothing is re-established: the node does not know it lost
anything (strongSwan re-establishes only after a failure it saw, ``ike.reestablish``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike import events as ev
from ikesim.ike.state import IkeSaState

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["FORGOTTEN", "forget_child_sa", "forget_ike_sa"]

FORGOTTEN = "forgotten"
"""``ChildSaDeleted.reason`` / ``IkeSaDeleted.reason`` of an SA a node dropped without a Delete."""


def forget_child_sa(core: IkeCore, spi_in: bytes, now: float) -> None:
    """Drop the CHILD_SA with inbound SPI *spi_in* silently (no Delete, RFC 7296 §1.4.1); LocalProtocolError if unknown.

    Any of our exchanges about it stays in flight and is answered as the peer sees fit; then call
    ``datagrams_to_send()`` (nothing is sent by this command itself)."""
    core.clock = now
    child = core.find_child(spi_in)
    child.replaced_by = b""  # its outbound role is not handed to a replacement: the node simply lost it
    core.remove_child(core.owner(child), child, FORGOTTEN)


def forget_ike_sa(core: IkeCore, local_spi: bytes, now: float) -> None:
    """Drop an IKE_SA and its CHILD_SAs silently (RFC 7296 §2.4: the peer learns by silence); LocalProtocolError if
    unknown. No Delete, no re-establishment, no response cache kept (RFC 7296 §2.1): the state is lost."""
    core.clock = now
    sa = core.find_sa(local_spi)
    if sa.active is not None:
        core.complete(sa, sa.active, "aborted")
    sa.queue.clear()
    for child in list(sa.children.values()):
        child.replaced_by = b""
        core.remove_child(sa, child, FORGOTTEN)
    core.cancel_ike_timers(sa)
    core.timers.cancel(("rtx", sa.local_spi))
    sa.state = IkeSaState.DELETED
    for key in [k for k, v in core.sas.items() if v is sa]:
        del core.sas[key]
    core.half_open.discard(sa.local_spi)
    if sa.half_open_key is not None:
        core.responder_index.pop(sa.half_open_key, None)
    for key in [k for k, v in core.responder_index.items() if v == sa.local_spi]:
        del core.responder_index[key]
    core.emit(ev.IkeSaDeleted(**sa.ids(), reason=FORGOTTEN))
