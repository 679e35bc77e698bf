"""CREATE_CHILD_SA for CHILD_SAs: new and rekey, both roles (RFC 7296 §1.3.1, §1.3.3, §2.25)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.suites import Suite
from ikesim.errors import (
    ChildSaNotFound,
    CryptoError,
    InvalidKePayload,
    InvalidSyntax,
    NoProposalChosen,
    PeerError,
    TemporaryFailure,
    TsUnacceptable,
)
from ikesim.ike import child_timers, childless
from ikesim.ike import events as ev
from ikesim.ike.childsa import choose_child, make_child, own_selectors, selectors_within
from ikesim.ike.collision import Collision, lowest_nonce_is_ours
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.ke_choice import promote_group, rekey_group, requested_group
from ikesim.ike.profile import ke_group_name, proposals_to_wire
from ikesim.ike.proposal_check import check_chosen_proposal
from ikesim.ike.sa import NO_ENTRIES, ChildSa, IkeSa
from ikesim.ike.state import ChildSaState, ChildSaTrigger, IkeSaState, next_child_state
from ikesim.wire.iana import ExchangeType, KeGroup, NotifyType, ProtocolId, TransformType
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TsiPayload,
    TsrPayload,
)

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["start_create", "start_rekey", "handle_request", "handle_response", "reject_response"]


def _send(core: IkeCore, sa: IkeSa, work: Work, profile, child: ChildSa | None,  # noqa: ANN001
          now: float, ke_group: int | None = None) -> Exchange:
    """Build and send our CREATE_CHILD_SA request; *ke_group* overrides the group chosen by ``ke_choice``."""
    spi_in = core.new_child_spi()
    nonce = core.new_nonce(sa)
    group = ke_group
    if group is None:
        group = profile.pfs_group if child is None else rekey_group(profile.pfs_group, profile.groups, child.pfs_group)
    ke = None
    if group:
        ke = new_key_exchange(group, core.rng_ke, core.meter)
    if child is not None:
        local_ts, remote_ts = child.local_ts, child.remote_ts
    else:
        local_ts, remote_ts = own_selectors(sa, profile)
    inner: list[Payload] = []
    if child is not None:
        inner.append(NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, child.spi_in))
    inner += [SaPayload(proposals_to_wire(promote_group(profile.specs, group), ProtocolId.ESP, spi_in)),
              NoncePayload(nonce)]
    if ke is not None:
        inner.append(KePayload(ke.group, ke.public_bytes))
    inner += [TsiPayload(local_ts), TsrPayload(remote_ts)]
    purpose = "rekey_child" if child is not None else "create_child"
    ex = core.request(sa, ExchangeType.CREATE_CHILD_SA, purpose, inner, now, work=work)
    ex.child, ex.new_spi, ex.nonce, ex.ke, ex.child_profile = child, spi_in, nonce, ke, profile
    ex.local_ts, ex.remote_ts = local_ts, remote_ts
    return ex


def start_create(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send CREATE_CHILD_SA for a new CHILD_SA: SA Ni [KEi] TSi TSr (RFC 7296 §1.3.1)."""
    profile = sa.profile.children.get(work.child)
    if profile is None:
        return False
    _send(core, sa, work, profile, None, now)
    return True


def start_rekey(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send a CHILD_SA rekey: N(REKEY_SA) SA Ni [KEi] TSi TSr (RFC 7296 §1.3.3)."""
    child = core.children.get(work.spi)
    if (child is None or child.state is not ChildSaState.INSTALLED or child.ike_spi != sa.local_spi
            or child.expired or child.redundant):
        return False  # rekeyed by the peer, or deleted, meanwhile
    core.emit(ev.RekeyStarted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=child.spi_in,
                              old_spi_out=child.spi_out, trigger=work.trigger))
    child.state = next_child_state(child.state, ChildSaTrigger.REKEY_STARTED)
    _send(core, sa, work, child.profile, child, now)
    return True


def _peer_ke(msg: Message, suite: Suite) -> bytes | None:
    """RFC 7296 §1.3: KE present iff the chosen proposal has a KE group; must match it."""
    ke = msg.get(KePayload)
    group = int(suite.ke_group)
    if group == KeGroup.NONE:
        return None
    if ke is None:
        raise NoProposalChosen("PFS required but no KE payload")
    if ke.group != group:
        raise InvalidKePayload(group)
    return ke.data


def _refuse_rekey(core: IkeCore, sa: IkeSa, old: ChildSa | None, spi_out: bytes) -> None:
    """RFC 7296 §2.25.1: decide whether a rekey request for *old* can be answered; raise if not."""
    if old is None or old.state is ChildSaState.DELETED:
        core.emit(ev.ExchangeCollision(**sa.ids(), case="rekey_of_unknown", spi=b"", spi_out=spi_out))
        raise ChildSaNotFound(spi_out)
    if child_timers.lingering(core, old):
        # RFC 7296 §2.25.1: the Delete exchange for it is over and only its inbound half is kept: it is not found
        # (strongSwan child_rekey ``find_child`` ignores CHILD_DELETED SAs).
        new = core.children.get(old.replaced_by)
        if new is not None and new.initiator and not old.redundant:
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in, won=True,
                                        redundant_spi=b"", resolution="child_sa_not_found"))
        else:
            core.emit(ev.ExchangeCollision(**sa.ids(), case="duplicate_rekey", spi=old.spi_in,
                                           spi_out=old.spi_out))
        raise ChildSaNotFound(spi_out)
    if old.state is ChildSaState.DELETING or old.expired:
        core.emit(ev.ExchangeCollision(**sa.ids(), case="rekey_vs_delete", spi=old.spi_in,
                                       spi_out=old.spi_out))
        raise TemporaryFailure("CHILD_SA is being deleted")
    if old.state is ChildSaState.REKEYED:
        new = core.children.get(old.replaced_by)
        if new is not None and new.initiator and not old.redundant:
            # Our rekey of it finished before the peer's request arrived (RFC 7296 §2.8.1, §2.25.1).
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in, won=True,
                                        redundant_spi=b"", resolution="temporary_failure"))
        else:
            core.emit(ev.ExchangeCollision(**sa.ids(), case="duplicate_rekey", spi=old.spi_in,
                                           spi_out=old.spi_out))
        raise TemporaryFailure("CHILD_SA was rekeyed already")
    if old.state is ChildSaState.REKEYING and old.collision is not None:
        core.emit(ev.ExchangeCollision(**sa.ids(), case="duplicate_rekey", spi=old.spi_in,
                                       spi_out=old.spi_out))
        raise TemporaryFailure("CHILD_SA is being rekeyed by both peers already")


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> None:
    """Responder for a new or rekeyed CHILD_SA (RFC 7296 §1.3.1, §1.3.3, §2.8.1, §2.25)."""
    rekey = next((n for n in msg.get_all(NotifyPayload) if n.notify_type == NotifyType.REKEY_SA),
                 None)
    old: ChildSa | None = None
    if sa.state is not IkeSaState.ESTABLISHED:
        core.emit(ev.ExchangeCollision(**sa.ids(), case="ike_closing", spi=sa.local_spi))
        raise TemporaryFailure("IKE_SA is being rekeyed or deleted")
    if (sa.active is not None and sa.active.purpose == "rekey_ike") or sa.collision is not None:
        # RFC 7296 §2.25.2: a CHILD_SA exchange while we rekey the IKE_SA.
        core.emit(ev.ExchangeCollision(**sa.ids(), case="child_vs_ike_rekey", spi=sa.local_spi))
        raise TemporaryFailure("the IKE_SA is being rekeyed")
    if rekey is not None:
        old = core.child_by_spi_out(sa, rekey.spi)
        _refuse_rekey(core, sa, old, rekey.spi)
    nonce = msg.get(NoncePayload)
    if nonce is None:
        raise InvalidSyntax("CREATE_CHILD_SA without Nonce")
    try:
        profile, proposal, suite, tsi, tsr = choose_child(
            sa, msg.get(SaPayload), msg.get(TsiPayload), msg.get(TsrPayload), with_ke=True,
            only=old.profile if old is not None else None,
            prefer_configured=sa.profile.connection.ike.prefer_configured_proposals)
    except NoProposalChosen:
        core.emit(ev.ProposalRejected(**sa.ids(), by_us=True, exchange="CREATE_CHILD_SA",
                                      purpose="rekey_child" if old else "create_child"))
        raise
    peer_ke = _peer_ke(msg, suite)
    shared = None
    my_ke = None
    if peer_ke is not None:
        my_ke = new_key_exchange(int(suite.ke_group), core.rng_ke, core.meter)
        try:
            shared = my_ke.compute_shared(peer_ke)
        except CryptoError as exc:
            raise InvalidSyntax(str(exc)) from None
    nonce_r = core.new_nonce(sa)
    spi_in = core.new_child_spi()
    child = make_child(core, sa, profile, suite, spi_in=spi_in, spi_out=proposal.spi,
                       initiator=False, nonce_i=nonce.data, nonce_r=nonce_r, shared=shared,
                       local_ts=tsr, remote_ts=tsi, now=now,
                       pfs_group=ke_group_name(suite.ke_group) if shared else "none")
    inner: list[Payload] = [SaPayload((suite.to_wire(proposal.number, ProtocolId.ESP, spi_in),)),
                            NoncePayload(nonce_r)]
    if my_ke is not None:
        inner.append(KePayload(my_ke.group, my_ke.public_bytes))
    inner += [TsiPayload(tsi), TsrPayload(tsr)]
    core.respond(sa, ExchangeType.CREATE_CHILD_SA, msg.message_id, inner)
    # A rekey responder keeps sending with the old SA until the peer deletes it (RFC 7296 §2.8), unless
    # configured to switch as soon as it answers (``responder_switch: early``).
    early = old is not None and profile.policy.responder_switch == "early" and old.state is not ChildSaState.REKEYING
    core.install_child(sa, child, now, rekey_of=old, outbound=old is None or early)
    if old is None:
        return
    if old.state is ChildSaState.REKEYING:
        # RFC 7296 §2.8.1: simultaneous rekey; answer as usual, decide once ours is answered.
        old.collision = Collision(peer_new=child, peer_nonces=(nonce.data, nonce_r))
        return
    core.retire_child(old, child)
    core.emit(ev.RekeyCompleted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                new_spi=child.spi_in, initiator=False, collision=False))


def _peer_rekey_survives(core: IkeCore, sa: IkeSa, old: ChildSa, now: float) -> None:
    """Our rekey of *old* lost or was refused: the peer's new SA replaces it (RFC 7296 §2.8.1, §2.25.1).

    If the peer's Delete for *old* came while we waited, it was answered: *old* lingers now and the peer's SA takes
    over outbound; if the peer deleted its own new SA meanwhile, that one goes too (strongSwan child_rekey
    ``handle_collision``, ``CHILD_REKEY_REPLACEMENT_DELETED``)."""
    col: Collision = old.collision
    new: ChildSa = col.peer_new
    if new.state is ChildSaState.DELETED:
        return
    if old.state is ChildSaState.REKEYING:
        core.retire_child(old, new)
    elif old.state is ChildSaState.DELETED:
        core.activate_outbound(sa, new)  # the old SA went meanwhile (its hard lifetime)
    core.emit(ev.RekeyCompleted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                new_spi=new.spi_in, initiator=False, collision=True))
    if new.peer_deleted:
        core.remove_child(sa, new, "deleted_by_peer")
    if old.peer_deleted and old.state is ChildSaState.REKEYED:
        core.linger_child(sa, old, now)


def _has_child(sa: IkeSa, name: str) -> bool:
    """True if *sa* has a live CHILD_SA of configuration *name*, or one is about to be created."""
    live = (ChildSaState.INSTALLED, ChildSaState.REKEYING)
    if any(c.name == name and c.state in live for c in sa.children.values()):
        return True
    return any(w.purpose == "create_child" and w.child == name for w in sa.queue)


def _rekey_failed(core: IkeCore, sa: IkeSa, ex: Exchange, now: float, notify: int, *,
                  retry_later: bool = False) -> None:
    """Our CREATE_CHILD_SA failed with *notify*: keep, retry, replace or drop the old SA (RFC 7296 §2.25.1).

    *retry_later*: the peer refused our rekey with an error notify (TEMPORARY_FAILURE, NO_PROPOSAL_CHOSEN,
    TS_UNACCEPTABLE, a second INVALID_KE_PAYLOAD, ...): the old SA stays in use and the rekey is tried again after
    ``collision_retry_base`` s less up to ``collision_retry_jitter`` s (strongSwan child_rekey
    ``schedule_delayed_rekey``; RFC 7296 §2.25)."""
    child: ChildSa | None = ex.child
    if child is None:
        return
    if (child.collision is not None and child.state is ChildSaState.REKEYING
            and (notify == NotifyType.TEMPORARY_FAILURE
                 or (notify == NotifyType.CHILD_SA_NOT_FOUND and child.peer_deleted))):
        # RFC 7296 §2.25.1: the peer finished its rekey of this SA first; its new SA is the one. It answers
        # TEMPORARY_FAILURE while its Delete of the old SA is in flight, CHILD_SA_NOT_FOUND once that is done
        # (strongSwan child_rekey ``ignore_child_sa_failure`` / ``ignore_child_sa_not_found``).
        resolution = "temporary_failure" if notify == NotifyType.TEMPORARY_FAILURE else "child_sa_not_found"
        core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=child.spi_in, won=False,
                                    redundant_spi=b"", resolution=resolution))
        _peer_rekey_survives(core, sa, child, now)
        return
    if notify == NotifyType.CHILD_SA_NOT_FOUND:
        # RFC 7296 §2.25.1: silently delete the CHILD_SA if it still exists and create a new one
        # from scratch if it does not (also when the peer's Delete, e.g. at its hard lifetime,
        # overtook our rekey request).
        if child.state is ChildSaState.REKEYING:
            child.state = next_child_state(child.state, ChildSaTrigger.REKEY_FAILED)
            core.remove_child(sa, child, "deleted_by_peer")
        elif child.state is not ChildSaState.DELETED:
            return
        if sa.state is IkeSaState.ESTABLISHED and not _has_child(sa, child.name):
            core.enqueue(sa, Work("create_child", child=child.name, trigger="recreate"), now)
        return
    if child.state is not ChildSaState.REKEYING:
        return
    child.state = next_child_state(child.state, ChildSaTrigger.REKEY_FAILED)
    if child.peer_deleted:
        # The peer started deleting it before our request arrived and answered TEMPORARY_FAILURE: its Delete,
        # answered already, stands (RFC 7296 §2.25.1; strongSwan ``ignore_child_sa_failure``).
        core.remove_child(sa, child, "deleted_by_peer")
        return
    if retry_later and not child.expired:
        core.timers.arm(("retry_child", child.spi_in), core.collision_retry_at(sa, now))


def _retry_with_group(core: IkeCore, sa: IkeSa, ex: Exchange, notify: NotifyPayload, now: float) -> bool:
    """INVALID_KE_PAYLOAD: send the request again at once with the group the responder asks for, if one of our
    proposals has it and we did not retry already (RFC 7296 §1.3, §1.2; strongSwan child_create ``retry``). A rekey
    stays one rekey: the old SA stays REKEYING, no second RekeyStarted."""
    group = requested_group(notify)
    if ex.ke_retries or not group or group not in ex.child_profile.groups or (ex.ke is not None and group == ex.ke.group):
        return False
    child: ChildSa | None = ex.child
    if child is not None and child.state is not ChildSaState.REKEYING:
        return False
    retry = _send(core, sa, ex.work, ex.child_profile, child, now, ke_group=group)
    retry.ke_retries = 1
    return True


def _dispose_old(core: IkeCore, sa: IkeSa, old: ChildSa, now: float) -> None:
    """The rekey initiator deletes the old SA (RFC 7296 §1.3.3, §2.8); if the peer's Delete for it came first,
    it was answered already and the old SA only lingers (strongSwan child_rekey: "peer sent an incorrect delete")."""
    if old.state is ChildSaState.DELETED:
        return
    if old.peer_deleted:
        core.linger_child(sa, old, now)
        return
    core.enqueue(sa, Work("delete_child", spi=old.spi_in, reason="rekeyed"), now, front=True)


def _install_own(core: IkeCore, sa: IkeSa, ex: Exchange, child: ChildSa, peer_nonce: bytes, now: float) -> None:
    """Initiator: install the CHILD_SA our exchange created and settle any collision (RFC 7296 §2.8.1).

    *peer_nonce* is the responder's Nr of our exchange: with ours, it decides a collision. A new SA the peer
    deleted already (``peer_deleted``) is installed inbound only, never outbound (RFC 7296 §1.4.1).
    """
    old: ChildSa | None = ex.child
    col: Collision | None = old.collision if old is not None else None
    if old is None or col is None:
        core.install_child(sa, child, now, rekey_of=old, outbound=not child.peer_deleted)
        if old is None:
            return
        if old.state is ChildSaState.REKEYING:
            core.retire_child(old, child)
        core.emit(ev.RekeyCompleted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                    new_spi=child.spi_in, initiator=True, collision=False))
        _dispose_old(core, sa, old, now)
        return
    peer_new: ChildSa = col.peer_new
    ours_lowest = lowest_nonce_is_ours((ex.nonce, peer_nonce), col.peer_nonces, tie_ours=sa.initiator)
    if ours_lowest:
        # RFC 7296 §2.8.1: ours is redundant; we delete it, the peer deletes the old SA.
        core.install_child(sa, child, now, rekey_of=old, outbound=False)
        child.redundant = True
        core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in, won=False,
                                    redundant_spi=child.spi_in, resolution="nonces"))
        _peer_rekey_survives(core, sa, old, now)
        core.enqueue(sa, Work("delete_child", spi=child.spi_in, reason="redundant"), now, front=True)
        return
    # Ours survives: we delete the old SA; the peer deletes its redundant one.
    peer_new.redundant = True
    core.install_child(sa, child, now, rekey_of=old, outbound=not child.peer_deleted)
    core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in, won=True,
                                redundant_spi=peer_new.spi_in, resolution="nonces"))
    if old.state is ChildSaState.REKEYING:
        core.retire_child(old, child)
    core.emit(ev.RekeyCompleted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                new_spi=child.spi_in, initiator=True, collision=True))
    if peer_new.peer_deleted:
        core.remove_child(sa, peer_new, "redundant")  # its Delete came while we waited (answered already)
    _dispose_old(core, sa, old, now)


def reject_response(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, now: float) -> None:
    """Fail our CREATE_CHILD_SA on a response we refuse: nothing installed, the old SA kept (RFC 7296 §2.21).

    The responder may have installed its half already: delete it by our SPI, as strongSwan's
    child_create does for a failed response (RFC 7296 §1.4.1).
    """
    core.complete(sa, ex, outcome)
    _rekey_failed(core, sa, ex, now, NotifyType[outcome])
    if sa.state is IkeSaState.ESTABLISHED:
        core.enqueue(sa, Work("delete_failed_child", spi=ex.new_spi, reason="failed"), now, front=True)


def _check_response(ex: Exchange, sa_payload: SaPayload, tsi: TsiPayload, tsr: TsrPayload
                    ) -> tuple[Proposal, Suite]:
    """The answer's proposal and suite, checked against our offer (RFC 7296 §2.9, §3.3.6); raises PeerError."""
    specs = promote_group(ex.child_profile.specs, ex.ke.group if ex.ke is not None else 0)  # as sent (``_send``)
    offered = proposals_to_wire(specs, ProtocolId.ESP, ex.new_spi)
    # strongSwan 6.0 (check_ke_method): with ``none`` among our KE methods a non-PFS answer is agreed, the KE dropped.
    pfs_optional = any(KeGroup.NONE in spec.ke for spec in ex.child_profile.specs)
    optional = () if ex.ke is not None and not pfs_optional else (int(TransformType.KE),)
    proposal, suite = check_chosen_proposal(offered, sa_payload, protocol=ProtocolId.ESP, spi_size=4,
                                            optional=optional)
    # RFC 7296 §2.9: the responder may only narrow what we proposed.
    if not selectors_within(tsi.selectors, ex.local_ts) or not selectors_within(tsr.selectors, ex.remote_ts):
        raise TsUnacceptable("response traffic selectors are not within those proposed")
    return proposal, suite


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Initiator: install the new CHILD_SA; a rekey then deletes the old one (RFC 7296 §1.3.3, §2.8.1)."""
    # RFC 7296 §1.4.1: SPIs the peer deleted while this exchange was in flight matter only to it.
    peer_deleted = set(sa.peer_deleted)
    sa.peer_deleted = NO_ENTRIES
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    if errors:
        notify = errors[0].notify_type
        core.complete(sa, ex, notify.name)
        if notify == NotifyType.NO_PROPOSAL_CHOSEN:
            core.emit(ev.ProposalRejected(**sa.ids(), by_us=False, exchange="CREATE_CHILD_SA",
                                          purpose=ex.purpose))
        if notify == NotifyType.INVALID_KE_PAYLOAD and _retry_with_group(core, sa, ex, errors[0], now):
            return
        _rekey_failed(core, sa, ex, now, notify, retry_later=True)
        if notify == NotifyType.TEMPORARY_FAILURE and ex.work is not None and ex.work.trigger == childless.TRIGGER:
            childless.retry_first_child(core, sa, now)  # RFC 7296 §2.25 (strongSwan ``schedule_delayed_retry``)
        return
    sa_payload, nonce = msg.get(SaPayload), msg.get(NoncePayload)
    tsi, tsr = msg.get(TsiPayload), msg.get(TsrPayload)
    if sa_payload is None or nonce is None or tsi is None or tsr is None:
        core.complete(sa, ex, NotifyType.INVALID_SYNTAX.name)  # nothing to install (RFC 7296 §1.3)
        _rekey_failed(core, sa, ex, now, NotifyType.INVALID_SYNTAX)
        return
    try:
        proposal, suite = _check_response(ex, sa_payload, tsi, tsr)
    except PeerError as exc:
        core.emit(ev.ResponseRejected(**sa.ids(), exchange="CREATE_CHILD_SA", purpose=ex.purpose,
                                      message_id=msg.message_id, reason=str(exc)))
        reject_response(core, sa, ex, NotifyType(exc.notify_type).name, now)
        return
    try:
        shared = None
        if ex.ke is not None and suite.ke_group != KeGroup.NONE:
            ke = msg.get(KePayload)
            if ke is None or ke.group != ex.ke.group or int(suite.ke_group) != ex.ke.group:
                raise InvalidSyntax("KE missing or of another group")
            try:
                shared = ex.ke.compute_shared(ke.data)
            except CryptoError as exc:
                raise InvalidSyntax(str(exc)) from None
    except PeerError as exc:
        core.complete(sa, ex, NotifyType(exc.notify_type).name)
        _rekey_failed(core, sa, ex, now, exc.notify_type)
        return
    core.complete(sa, ex, "ok")
    child = make_child(core, sa, ex.child_profile, suite, spi_in=ex.new_spi, spi_out=proposal.spi,
                       initiator=True, nonce_i=ex.nonce, nonce_r=nonce.data, shared=shared,
                       local_ts=tsi.selectors, remote_ts=tsr.selectors, now=now,
                       pfs_group=ke_group_name(ex.ke.group) if shared else "none")
    # RFC 7296 §1.4.1: the peer's Delete for this SA overtook our response: never sent with, removed at once
    # (strongSwan child_rekey ``is_our_replacement_deleted``).
    child.peer_deleted = child.spi_out in peer_deleted
    _install_own(core, sa, ex, child, nonce.data, now)
    if child.peer_deleted:
        core.remove_child(sa, child, "deleted_by_peer")
