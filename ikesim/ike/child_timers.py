"""The timers of a CHILD_SA's lifetime: soft (rekey), retry, hard (expire), linger (RFC 7296 §2.8, §2.25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.state import ChildSaState

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.sa import ChildSa, IkeSa

__all__ = ["on_soft", "on_retry", "on_hard", "on_linger", "lingering", "delete_pending"]


def lingering(core: IkeCore, child: ChildSa) -> bool:
    """True once the Delete exchange for a rekeyed CHILD_SA is over: only its inbound half is kept, for
    ``delete_rekeyed_delay`` s (RFC 7296 §2.8; strongSwan's ``CHILD_DELETED`` state)."""
    return core.timers.deadline(("linger", child.spi_in)) is not None


def delete_pending(sa: IkeSa, child: ChildSa) -> bool:
    """True if our own Delete for *child* was sent or is queued (RFC 7296 §1.4.1)."""
    return bool(child.delete_reason) or any(w.purpose == "delete_child" and w.spi == child.spi_in for w in sa.queue)


def on_soft(core: IkeCore, spi: bytes, now: float) -> None:
    """Soft lifetime: rekey the CHILD_SA (RFC 7296 §2.8)."""
    child = core.children.get(spi)
    if child is not None and child.state is ChildSaState.INSTALLED and not child.redundant:
        core.enqueue(core.owner(child), Work("rekey_child", spi=spi, trigger="soft_lifetime"),
                     now)


def on_retry(core: IkeCore, spi: bytes, now: float) -> None:
    """Retry a rekey that got TEMPORARY_FAILURE (RFC 7296 §2.25)."""
    child = core.children.get(spi)
    if child is not None and child.state is ChildSaState.INSTALLED:
        core.enqueue(core.owner(child), Work("rekey_child", spi=spi, trigger="retry"), now)


def on_hard(core: IkeCore, spi: bytes, now: float) -> None:
    """Hard lifetime: never send with it again, then delete it (RFC 7296 §2.8)."""
    child = core.children.get(spi)
    if child is None or child.state is ChildSaState.DELETED or child.expired:
        return
    sa = core.owner(child)
    child.expired = True
    core.emit(ev.SaExpired(**sa.ids(), kind=ev.SaKind.CHILD, spi=spi))
    core.hand_over_outbound(sa, child)
    if child.state is ChildSaState.DELETING or lingering(core, child):
        return
    if child.state is ChildSaState.REKEYED:
        if delete_pending(sa, child):
            return  # our Delete for the old SA is on its way (RFC 7296 §1.3.3)
        # We answered its rekey: the rekey initiator deletes it, we send no Delete of our own, which could cross a
        # delayed CREATE_CHILD_SA response (strongSwan child_delete build_i for a CHILD_REKEYED SA); it is gone now.
        core.remove_child(sa, child, "expired")
        return
    core.enqueue(sa, Work("delete_child", spi=spi, reason="expired"), now, front=True)


def on_linger(core: IkeCore, spi: bytes, now: float) -> None:
    """A rekeyed CHILD_SA's ``delete_rekeyed_delay`` is over: remove it (RFC 7296 §2.8)."""
    child = core.children.get(spi)
    if child is not None:
        core.remove_child(core.owner(child), child, "rekeyed")
