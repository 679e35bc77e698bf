"""The timers of a CHILD_SA's lifetime: soft (rekey), retry, hard (expire), linger (RFC 7296 §2.8, §2.25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.state import ChildSaState

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["on_soft", "on_retry", "on_hard", "on_linger"]


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
    if child.state is ChildSaState.DELETING or core.timers.deadline(("linger", spi)) is not None:
        return
    core.enqueue(sa, Work("delete_child", spi=spi, reason="expired"), now, front=True)


def on_linger(core: IkeCore, spi: bytes, now: float) -> None:
    """A rekeyed CHILD_SA's ``delete_rekeyed_delay`` is over: remove it (RFC 7296 §2.8)."""
    child = core.children.get(spi)
    if child is not None:
        core.remove_child(core.owner(child), child, "rekeyed")
