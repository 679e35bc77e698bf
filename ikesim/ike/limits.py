"""CHILD_SA volume lifetimes and what the data plane reports: limits reached, ESP from a new address.

RFC 7296 §2.8 lets an SA be rekeyed or deleted after a number of bytes as well as after a time, and
RFC 4301 §4.4.2.1 keeps soft and hard byte (and packet) counts in each SAD entry. The data plane
(``ikesim.esp``) counts; the IKE daemon only learns that a limit was reached, the way the Linux kernel
tells strongSwan with XFRM_MSG_EXPIRE (``kernel_handler.c`` ``expire()``), and that authenticated
UDP-encapsulated ESP (RFC 3948 §2.1) came from a new address, as with XFRM_MSG_MAPPING (``mapping()``).

strongSwan semantics, from its sources (``src/libcharon``):

- ``config/child_cfg.c`` ``get_lifetime``/``apply_jitter`` and ``sa/child_sa.c`` ``install_internal``: each
  installed SA, inbound and outbound, gets its own soft limit ``rekey - k`` with ``k`` uniform in
  ``0 .. min(jitter, rekey - 1)`` (``rekey - (uint64)(min(jitter + 1, rekey) * U)``), bytes and packets alike;
  the hard limits are not jittered; 0 = no limit. Here both SAs' limits are drawn when the CHILD_SA is made, from
  a stream of their own (``IkeCore.volume_jitter``, which ``core`` calls, as it may not import this module), in
  strongSwan's order: inbound bytes, inbound packets, outbound bytes, outbound packets. The data plane counts each
  SA against its own limits and reports the first one reached (the kernel's XFRM_MSG_EXPIRE for that SA); the
  other SA's later soft expire finds the CHILD_SA rekeying, rekeyed or its rekey queued, and does nothing more.
- ``processing/jobs/rekey_child_sa_job.c`` and ``sa/ikev2/tasks/child_rekey.c`` ``build_i``: a soft
  expire queues a rekey, which does nothing unless the CHILD_SA is still INSTALLED when it starts.
- ``processing/jobs/delete_child_sa_job.c``, ``sa/ikev2/tasks/child_delete.c`` ``build_i`` with
  ``expired`` set: a hard expire deletes the CHILD_SA (Delete first in the queue, as
  ``task_manager_v2`` activates CHILD_DELETE before CHILD_CREATE), then queues its recreation
  (``queue_child_create``); a rekeyed SA (waiting for the peer's Delete, or lingering after ours) is
  dropped silently, with neither a Delete nor a new SA. ``child_create.c`` ``check_for_duplicate``
  skips the recreation if an INSTALLED CHILD_SA of the same configuration exists by then.
- ``processing/jobs/update_sa_job.c`` and ``sa/ike_sa.c`` ``update_hosts(NULL, new, 0)``: the IKE_SA's
  peer address follows only if the peer is behind a NAT (COND_NAT_THERE) and this end is not both
  behind a NAT and the original initiator; all its CHILD_SAs follow, and nothing is sent to the peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ikesim.errors import LocalProtocolError
from ikesim.ike import create_child_sa, informational
from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.types import Address

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.sa import ChildSa, IkeSa

__all__ = ["COUNTERS", "VolumeLimits", "volume_limits", "find_child",
           "child_sa_limit_reached", "esp_peer_moved", "start_delete_expired", "start_recreate"]

COUNTERS = ("bytes", "packets", "seq")
"""What the data plane counts against a limit: bytes, packets, or the sequence number space (RFC 4303 §3.3.3)."""


@dataclass(frozen=True, slots=True)
class VolumeLimits:
    """One CHILD_SA's volume limits as drawn when it was made, per SA (RFC 4301 §4.4.2.1); 0 = no limit."""

    rekey_bytes_in: int
    """Soft byte limit of the inbound SA, its own jitter draw: reported once it has accepted this many bytes."""
    rekey_bytes_out: int
    """Soft byte limit of the outbound SA, its own jitter draw: reported once it has protected this many bytes."""
    life_bytes: int
    """Hard byte limit of each SA: the SA is no longer used."""
    rekey_packets_in: int
    """Soft packet limit of the inbound SA, jitter applied."""
    rekey_packets_out: int
    """Soft packet limit of the outbound SA, jitter applied."""
    life_packets: int
    """Hard packet limit of each SA."""


def volume_limits(core: IkeCore, spi_in: bytes) -> VolumeLimits:
    """The volume limits of the CHILD_SA with inbound SPI *spi_in* (RFC 4301 §4.4.2.1); LocalProtocolError if unknown."""
    child = core.find_child(spi_in)
    return VolumeLimits(child.rekey_bytes_in, child.rekey_bytes_out, child.life_bytes, child.rekey_packets_in,
                        child.rekey_packets_out, child.life_packets)


def find_child(core: IkeCore, spi: bytes) -> ChildSa | None:
    """The CHILD_SA whose inbound, else outbound, SPI is *spi* (strongSwan ``child_sa_manager`` ``checkout``).

    An outbound SPI is the peer's choice, so two peers may have picked the same one; the kernel tells them
    apart by destination address, this lookup keeps the CHILD_SA installed last with it.
    """
    child = core.children.get(spi)
    if child is not None:
        return child
    index = core.spi_out_index()
    spi_in = index.get(spi)
    return core.children.get(spi_in) if spi_in is not None else None


def _soft_handling(sa: IkeSa, child: ChildSa) -> str:
    """What a soft limit does to *child* (RFC 7296 §2.8): ``rekey``, or why not (strongSwan ``child_rekey`` ``build_i``)."""
    if child.expired:
        return "expired"
    if child.redundant:
        return "redundant"
    if child.state is not ChildSaState.INSTALLED:
        return child.state.value  # rekeying, rekeyed, deleting
    if sa.state is not IkeSaState.ESTABLISHED:
        return f"ike_sa_{sa.state.value}"
    if any(w.purpose == "rekey_child" and w.spi == child.spi_in for w in sa.queue):
        return "rekey_queued"
    return "rekey"


def child_sa_limit_reached(core: IkeCore, spi: bytes, *, hard: bool, counter: str, now: float) -> None:
    """A CHILD_SA reached a soft or hard volume limit (RFC 7296 §2.8, RFC 4301 §4.4.2.1; strongSwan kernel ``expire()``).

    *spi* is either SPI of the pair; an unknown one is ignored. Soft: rekey it, trigger ``soft_<counter>``,
    unless it is no longer INSTALLED or a rekey is queued already. Hard: never send with it again, then
    delete it and create it anew (``start_delete_expired``).
    """
    if counter not in COUNTERS:
        raise LocalProtocolError(f"unknown counter {counter!r} (expected one of {', '.join(COUNTERS)})")
    child = find_child(core, spi)
    if child is None:
        return
    sa = core.owner(child)
    if hard:
        handling = "expired" if child.expired else "expire"
    else:
        handling = _soft_handling(sa, child)
    core.emit(ev.ChildSaLimitReached(**sa.ids(), child=child.name, spi_in=child.spi_in, spi_out=child.spi_out,
                                     counter=counter, hard=hard, handling=handling))
    if handling == "rekey":
        core.enqueue(sa, Work("rekey_child", spi=child.spi_in, trigger=f"soft_{counter}"), now)
    elif handling == "expire":
        _expire(core, sa, child, now)


def _expire(core: IkeCore, sa: IkeSa, child: ChildSa, now: float) -> None:
    """Hard limit: the SA is unusable from now on; queue its deletion ahead of other work (RFC 7296 §2.8, §1.4.1)."""
    child.expired = True
    core.emit(ev.SaExpired(**sa.ids(), kind=ev.SaKind.CHILD, spi=child.spi_in))
    core.hand_over_outbound(sa, child)
    core.cancel_child_timers(child)
    if child.state is not ChildSaState.DELETING:  # else our Delete is on its way already
        core.enqueue(sa, Work("delete_expired_child", spi=child.spi_in, reason="expired"), now, front=True)


def start_delete_expired(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Delete a CHILD_SA past its hard limit and queue its recreation (RFC 7296 §1.4.1; strongSwan ``child_delete``).

    Decided when the window opens, as strongSwan's task does: a rekeyed SA goes without a Delete or a new SA
    (the peer deletes it, or we did); one being deleted is left to that Delete.
    """
    child = core.children.get(work.spi)
    if child is None or child.ike_spi != sa.local_spi or child.state is ChildSaState.DELETING:
        return False
    if child.state is ChildSaState.REKEYED:
        core.remove_child(sa, child, "expired")
        return False
    informational.start_delete_child(core, sa, Work("delete_child", spi=child.spi_in, reason="expired"), now)
    sa.queue.append(Work("recreate_child", child=child.name, trigger="recreate"))
    return True


def start_recreate(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Create a CHILD_SA anew after its hard limit, unless one of its configuration is INSTALLED (RFC 7296 §1.3.1).

    strongSwan ``child_create`` ``check_for_duplicate``; the request is a plain CREATE_CHILD_SA, reason ``recreate``.
    """
    if any(c.name == work.child and c.state is ChildSaState.INSTALLED for c in sa.children.values()):
        return False
    return create_child_sa.start_create(core, sa, Work("create_child", child=work.child, trigger="recreate"), now)


def esp_peer_moved(core: IkeCore, spi_in: bytes, src: Address, now: float) -> None:
    """Authenticated UDP-encapsulated ESP (RFC 3948 §2.1) of *spi_in* came from *src*: follow it if strongSwan would.

    RFC 7296 §2.23: an end not behind a NAT SHOULD dynamically update the peer's address from a validated
    packet. strongSwan (``update_sa_job.c``, ``ike_sa.c`` ``update_hosts``) updates the IKE_SA owning the
    CHILD_SA, and so all its CHILD_SAs, if the peer is behind a NAT, unless this end is behind one too and
    the original initiator (a responder behind a NAT is taken to be behind a static one). Nothing is sent;
    ``PeerAddressChanged`` says so, and the next request goes to *src*. Anything else is ignored.
    """
    child = core.children.get(spi_in)
    if child is None:
        return
    sa = core.owner(child)
    if src == sa.peer or not sa.nat_peer or (sa.nat_local and sa.initiator):
        return
    old, sa.peer = sa.peer, src
    core.emit(ev.PeerAddressChanged(**sa.ids(), old=old, new=src))
