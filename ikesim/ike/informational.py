"""INFORMATIONAL: Deletes, liveness checks, error notifications (RFC 7296 §1.4, §2.4, §2.21)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike import child_timers, ha_sync, ike_rekey, mobike, resumption
from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.sa import PEER_DELETED_LIMIT, ChildSa, IkeSa
from ikesim.ike.state import (
    ChildSaState,
    ChildSaTrigger,
    IkeSaState,
    IkeSaTrigger,
    next_child_state,
    next_ike_state,
)
from ikesim.wire.iana import ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import DeletePayload, NotifyPayload, Payload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.exchange import Exchange

__all__ = [
    "start_delete_child",
    "start_delete_ike",
    "start_dpd",
    "start_delete_failed_child",
    "MAX_DELETE_SPIS",
    "send_notification",
    "handle_request",
    "handle_response",
]


MAX_DELETE_SPIS = 8192
"""Most SPIs named in one Delete answer: 32 KiB of SPIs, well inside a 64 KiB message (RFC 7296 §3.11)."""


def start_delete_child(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send D(ESP, our inbound SPI) (RFC 7296 §1.4.1, §3.11)."""
    child = core.children.get(work.spi)
    if child is None or child.ike_spi != sa.local_spi:
        return False
    if child.state is ChildSaState.DELETING or child_timers.lingering(core, child):
        return False  # already being deleted, or the Deletes for it were exchanged (RFC 7296 §1.4.1)
    child.state = next_child_state(child.state, ChildSaTrigger.DELETE_SENT)
    child.delete_reason = work.reason
    core.hand_over_outbound(sa, child)  # we stop sending with it now (RFC 7296 §1.4.1)
    ex = core.request(sa, ExchangeType.INFORMATIONAL, "delete_child",
                      [DeletePayload(ProtocolId.ESP, 4, (child.spi_in,))], now, work=work)
    ex.child = child
    return True


def start_delete_failed_child(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send D(ESP, SPI we offered) for a CHILD_SA we refused to install (RFC 7296 §1.4.1; strongSwan child_create)."""
    core.request(sa, ExchangeType.INFORMATIONAL, "delete_failed_child",
                 [DeletePayload(ProtocolId.ESP, 4, (work.spi,))], now, work=work)
    return True


def start_delete_ike(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send D(IKE) on the IKE_SA to delete it and its CHILD_SAs (RFC 7296 §1.4.1)."""
    sa.state = next_ike_state(sa.state, IkeSaTrigger.DELETE_SENT)
    sa.delete_reason = work.reason
    core.cancel_ike_timers(sa)
    for child in sa.children.values():  # deleting the IKE_SA deletes its CHILD_SAs: stop sending (§1.4.1)
        child.outbound = False
    core.request(sa, ExchangeType.INFORMATIONAL, "delete_ike",
                 [DeletePayload(ProtocolId.IKE, 0, ())], now, work=work)
    return True


def start_dpd(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send an empty INFORMATIONAL as a liveness check (RFC 7296 §2.4)."""
    core.request(sa, ExchangeType.INFORMATIONAL, "dpd", [], now, work=work)
    return True


def send_notification(core: IkeCore, sa: IkeSa, notify: NotifyType, now: float) -> None:
    """Send an INFORMATIONAL carrying an error notify, not waiting for it (RFC 7296 §2.21.2)."""
    if sa.active is not None:
        core.complete(sa, sa.active, "aborted")
    ex = core.request(sa, ExchangeType.INFORMATIONAL, "informational", [NotifyPayload(notify)],
                      now)
    ex.fire_and_forget = True


def _restore_replaced(core: IkeCore, sa: IkeSa, new: ChildSa) -> None:
    """The peer deletes the SA our answer to its rekey created, not the old one: its rekey failed (it refused
    our answer), so the old SA is in use again and can be rekeyed (RFC 7296 §1.3.3, §2.8; strongSwan's rekey
    initiator deletes the SA of a response it refuses)."""
    for old in sa.children.values():
        if old.replaced_by == new.spi_in and old.state is ChildSaState.REKEYED and not new.outbound:
            old.state = next_child_state(old.state, ChildSaTrigger.REKEY_FAILED)
            old.replaced_by = b""
            if old.rekey_at is not None:
                core.timers.arm(("child_soft", old.spi_in), old.rekey_at)
            return


def _remember_peer_deleted(sa: IkeSa, spi_out: bytes, now: float) -> None:
    """Keep the ``PEER_DELETED_LIMIT`` most recent unknown SPIs the peer deleted (RFC 7296 §1.4.1, §2.25).

    The newest are kept, not the first: a burst of bogus SPIs must not push out the real one that follows.
    """
    if not isinstance(sa.peer_deleted, dict):
        sa.peer_deleted = {}  # it starts as the shared empty table (``ike.sa.NO_ENTRIES``)
    deleted = sa.peer_deleted
    deleted.pop(spi_out, None)
    while len(deleted) >= PEER_DELETED_LIMIT:
        del deleted[next(iter(deleted))]
    deleted[spi_out] = now


def _delete_children(core: IkeCore, sa: IkeSa, spis: tuple[bytes, ...], now: float
                     ) -> list[bytes]:
    """Peer deleted these CHILD_SAs (its inbound SPIs); return our SPIs to put in our Delete (§1.4.1)."""
    answer: list[bytes] = []
    for spi_out in dict.fromkeys(spis):  # an SPI named twice is deleted (and answered) once
        child = core.child_by_spi_out(sa, spi_out)
        if child is None:
            active = sa.active
            if active is not None and active.purpose in ("create_child", "rekey_child"):
                _remember_peer_deleted(sa, spi_out, now)  # our response may still bring it (§2.25)
            continue
        if child.state is ChildSaState.DELETING:
            # RFC 7296 §1.4.1, §2.25.1: crossing Deletes; our own Delete already names it.
            core.emit(ev.ExchangeCollision(**sa.ids(), case="delete_vs_delete", spi=child.spi_in,
                                           spi_out=child.spi_out))
            core.remove_child(sa, child, child.delete_reason or "deleted_locally")
            continue
        if child.state is ChildSaState.REKEYED and (child.delete_reason or child_timers.lingering(core, child)):
            # RFC 7296 §1.4.1: our own Delete for the rekeyed SA went out already (crossing Deletes), or the Deletes
            # were exchanged and only its inbound half lingers: the answer does not name it again (strongSwan
            # child_delete process_payloads skips CHILD_DELETING and CHILD_DELETED SAs).
            if not child_timers.lingering(core, child):
                core.emit(ev.ExchangeCollision(**sa.ids(), case="delete_vs_delete", spi=child.spi_in,
                                               spi_out=child.spi_out))
            continue
        answer.append(child.spi_in)
        if _keep_while_rekeying(core, sa, child):
            continue
        _restore_replaced(core, sa, child)
        if child.state is ChildSaState.REKEYED:
            core.linger_child(sa, child, now)
            continue
        core.remove_child(sa, child, "redundant" if child.redundant else "deleted_by_peer")
    return answer


def _keep_while_rekeying(core: IkeCore, sa: IkeSa, child: ChildSa) -> bool:
    """The peer deletes the SA our rekey in flight replaces, or the SA its colliding rekey created: answer as usual
    but keep it until our rekey concludes, which then decides its fate (RFC 7296 §2.25.1, §2.8.1; strongSwan
    child_delete ``keep_while_rekeying``). ``peer_deleted`` marks it. The old SA stays outbound meanwhile, unless we
    answered the peer's colliding rekey of it: then the peer's new SA takes over outbound at once."""
    if child.state is ChildSaState.REKEYING:
        # RFC 7296 §2.25.1: the peer deletes what we are rekeying: it started its Delete before our request arrived
        # (it answers TEMPORARY_FAILURE or CHILD_SA_NOT_FOUND), won a collision, or answered us and deleted anyway.
        core.emit(ev.ExchangeCollision(**sa.ids(), case="delete_vs_rekey", spi=child.spi_in,
                                       spi_out=child.spi_out))
        if child.expired:
            return False  # past its hard lifetime (RFC 7296 §2.8): nothing to keep, it goes now
        child.peer_deleted = True
        col = child.collision
        if col is not None:
            # We answered the peer's rekey of it: the peer's new SA is in place on both ends, send with it now and
            # keep the old one inbound only (strongSwan child_delete: "conclude the rekeying ... to switch to the
            # new outbound SA"); our own rekey still decides which SA survives.
            core.activate_outbound(sa, col.peer_new, child)
        return True
    ex = sa.active
    old = ex.child if ex is not None and ex.purpose == "rekey_child" else None
    if old is not None and old.state is ChildSaState.REKEYING and old.collision is not None \
            and old.collision.peer_new is child:
        child.peer_deleted = True  # the peer's own new SA of the collision (§2.8.1): redundant, or it gave it up
        return True
    return False


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> None:
    """Answer an INFORMATIONAL request: Deletes, error notifies, liveness (RFC 7296 §1.4, §2.4), MOBIKE (RFC 4555)."""
    if msg.message_id == 0 and not sa.mid_sync and ha_sync.is_sync(msg):
        # strongSwan ike_mid_sync.c pre_process: "unexpected IKEV2_MESSAGE_ID_SYNC notify, ignored" (no answer)
        src, dst = core.rx
        core.emit(ev.MessageDropped(**sa.ids(), reason="unexpected IKEV2_MESSAGE_ID_SYNC notify, ignored", src=src,
                                    dst=dst, exchange="INFORMATIONAL", message_id=0))
        return
    deletes = msg.get_all(DeletePayload)
    if not deletes and mobike.wants(sa, msg):
        mobike.handle_request(core, sa, msg, now)
        return
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    for n in errors:
        core.emit(ev.ErrorNotifyReceived(**sa.ids(), notify=n.notify_type.name,
                                         exchange="INFORMATIONAL", message_id=msg.message_id))
    if any(d.protocol == ProtocolId.IKE for d in deletes):
        core.respond(sa, ExchangeType.INFORMATIONAL, msg.message_id, [])
        if sa.collision is not None:
            # RFC 7296 §2.8.2: the peer won our simultaneous rekey and deletes the old IKE_SA before
            # our own request was answered: its new IKE_SA takes the CHILD_SAs.
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi, won=False,
                                        redundant_spi=b"", resolution="peer_deleted"))
            ike_rekey.peer_rekey_survives(core, sa, now)
        elif sa.state is IkeSaState.DELETING:
            core.emit(ev.ExchangeCollision(**sa.ids(), case="delete_vs_delete", spi=sa.local_spi))
        elif sa.active is not None and sa.active.purpose != "dpd":
            core.emit(ev.ExchangeCollision(**sa.ids(), case="delete_vs_rekey" if sa.active.purpose in
                                           ("rekey_ike", "rekey_child") else "ike_closing", spi=sa.local_spi))
        if sa.redundant:
            reason = "redundant"
        elif sa.state is IkeSaState.REKEYED:
            reason = "rekeyed"
        elif sa.state is IkeSaState.DELETING:
            reason = sa.delete_reason  # crossing Deletes (RFC 7296 §2.25.2)
        else:
            reason = "deleted_by_peer"
        core.remove_ike_sa(sa, reason)
        return
    if any(n.notify_type == NotifyType.AUTHENTICATION_FAILED for n in errors):
        core.respond(sa, ExchangeType.INFORMATIONAL, msg.message_id, [])
        core.emit(ev.AuthFailed(**sa.ids(), by_us=False, reason="peer rejected our AUTH"))
        core.remove_ike_sa(sa, "auth_failed")
        return
    ours: dict[bytes, None] = {}
    for d in deletes:
        if d.protocol in (ProtocolId.ESP, ProtocolId.AH):
            ours.update(dict.fromkeys(_delete_children(core, sa, d.spis, now)))
    inner: list[Payload] = []
    if ours:
        # RFC 7296 §3.11: a 16-bit count, and the answer must fit one message: name what fits (the rest
        # is deleted all the same; the peer deleted its half already).
        inner.append(DeletePayload(ProtocolId.ESP, 4, tuple(ours)[:MAX_DELETE_SPIS]))
    inner += resumption.refresh_payloads(core, sa, msg, now)  # RFC 5723 §4.1: a new ticket on N(TICKET_REQUEST)
    core.respond(sa, ExchangeType.INFORMATIONAL, msg.message_id, inner)


def _finish_child_delete(core: IkeCore, sa: IkeSa, child: ChildSa, now: float) -> None:
    if child.state is ChildSaState.DELETED:
        return
    if child.delete_reason == "redundant":
        core.remove_child(sa, child, "redundant")
    elif child.delete_reason == "rekeyed" or child.state is ChildSaState.REKEYED:
        core.linger_child(sa, child, now)
    else:
        core.remove_child(sa, child, child.delete_reason or "deleted_locally")


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Our INFORMATIONAL was answered (RFC 7296 §1.4.1, §2.4; an RFC 6311 synchronization: ``ha_sync``)."""
    if ex.purpose == "mid_sync":
        ha_sync.handle_response(core, sa, ex, msg, now)
        return
    if ex.purpose == "ticket_request":  # RFC 5723 §4.2
        resumption.handle_refresh_response(core, sa, ex, msg, now)
        return
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    core.complete(sa, ex, errors[0].notify_type.name if errors else "ok")
    if ex.purpose == "delete_ike":
        core.remove_ike_sa(sa, sa.delete_reason or "deleted_locally")
    elif ex.purpose == "delete_child" and ex.child is not None:
        _finish_child_delete(core, sa, ex.child, now)


def queue_delete_child(core: IkeCore, sa: IkeSa, child: ChildSa, reason: str, now: float) -> None:
    """Queue the Delete of *child* ahead of other work (RFC 7296 §1.4.1)."""
    core.enqueue(sa, Work("delete_child", spi=child.spi_in, reason=reason), now, front=True)

