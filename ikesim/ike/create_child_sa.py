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
)
from ikesim.ike import events as ev
from ikesim.ike.childsa import choose_child, make_child, own_selectors
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.profile import proposals_to_wire
from ikesim.ike.sa import ChildSa, IkeSa
from ikesim.ike.state import ChildSaState, ChildSaTrigger, IkeSaState, next_child_state
from ikesim.wire.iana import ExchangeType, KeGroup, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TsiPayload,
    TsrPayload,
)

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["start_create", "start_rekey", "handle_request", "handle_response"]


def _group_name(group: int) -> str:
    names = {31: "x25519", 14: "modp2048", 19: "ecp256", 0: "none"}
    return names.get(int(group), KeGroup(group).name.lower())


def _send(core: IkeCore, sa: IkeSa, work: Work, profile, child: ChildSa | None,  # noqa: ANN001
          now: float) -> Exchange:
    spi_in = core.new_child_spi()
    nonce = core.new_nonce(sa)
    ke = None
    if profile.pfs_group:
        ke = new_key_exchange(profile.pfs_group, core.rng_ke, core.meter)
    if child is not None:
        local_ts, remote_ts = child.local_ts, child.remote_ts
    else:
        local_ts, remote_ts = own_selectors(sa, profile)
    inner: list[Payload] = []
    if child is not None:
        inner.append(NotifyPayload(NotifyType.REKEY_SA, ProtocolId.ESP, child.spi_in))
    inner += [SaPayload(proposals_to_wire(profile.specs, ProtocolId.ESP, spi_in)),
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
    if child is None or child.state is not ChildSaState.INSTALLED or child.ike_spi != sa.local_spi:
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


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> None:
    """Responder for a new or rekeyed CHILD_SA (RFC 7296 §1.3.1, §1.3.3, §2.25)."""
    rekey = next((n for n in msg.get_all(NotifyPayload) if n.notify_type == NotifyType.REKEY_SA),
                 None)
    old: ChildSa | None = None
    if sa.state is not IkeSaState.ESTABLISHED:
        raise TemporaryFailure("IKE_SA is being rekeyed or deleted")
    if rekey is not None:
        old = core.child_by_spi_out(sa, rekey.spi)
        if old is None or old.state in (ChildSaState.REKEYED, ChildSaState.DELETED):
            raise ChildSaNotFound(rekey.spi)
        if old.state in (ChildSaState.REKEYING, ChildSaState.DELETING):
            # RFC 7296 §2.25: rekeying what we are rekeying or deleting ourselves.
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                        won=True, redundant_spi=b""))
            raise TemporaryFailure("CHILD_SA is being rekeyed or deleted")
    nonce = msg.get(NoncePayload)
    if nonce is None:
        raise InvalidSyntax("CREATE_CHILD_SA without Nonce")
    try:
        profile, proposal, suite, tsi, tsr = choose_child(
            sa, msg.get(SaPayload), msg.get(TsiPayload), msg.get(TsrPayload), with_ke=True,
            only=old.profile if old is not None else None)
    except NoProposalChosen:
        core.emit(ev.ProposalRejected(**sa.ids(), local=True, exchange="CREATE_CHILD_SA",
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
                       pfs_group=_group_name(suite.ke_group) if shared else "none")
    inner: list[Payload] = [SaPayload((suite.to_wire(proposal.number, ProtocolId.ESP, spi_in),)),
                            NoncePayload(nonce_r)]
    if my_ke is not None:
        inner.append(KePayload(my_ke.group, my_ke.public_bytes))
    inner += [TsiPayload(tsi), TsrPayload(tsr)]
    core.respond(sa, ExchangeType.CREATE_CHILD_SA, msg.message_id, inner)
    core.install_child(sa, child, now, rekey_of=old)
    if old is not None:
        core.retire_child(old, child)
        core.emit(ev.RekeyCompleted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                    new_spi=child.spi_in, initiator=False, collision=False))


def _rekey_failed(core: IkeCore, sa: IkeSa, ex: Exchange, now: float, notify: int) -> None:
    child: ChildSa | None = ex.child
    if child is None or child.state is not ChildSaState.REKEYING:
        return
    child.state = next_child_state(child.state, ChildSaTrigger.REKEY_FAILED)
    if notify == NotifyType.CHILD_SA_NOT_FOUND:
        # RFC 7296 §2.25: the peer no longer has it; so we remove it too.
        core.remove_child(sa, child, "deleted_by_peer")
    elif notify == NotifyType.TEMPORARY_FAILURE:
        core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=child.spi_in,
                                    won=False, redundant_spi=b""))
        core.timers.arm(("retry_child", child.spi_in), core.collision_retry_at(sa, now))


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Initiator: install the new CHILD_SA; a rekey then deletes the old one (RFC 7296 §1.3.3)."""
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    if errors:
        notify = errors[0].notify_type
        core.complete(sa, ex, notify.name)
        if notify == NotifyType.NO_PROPOSAL_CHOSEN:
            core.emit(ev.ProposalRejected(**sa.ids(), local=False, exchange="CREATE_CHILD_SA",
                                          purpose=ex.purpose))
        _rekey_failed(core, sa, ex, now, notify)
        return
    sa_payload, nonce = msg.get(SaPayload), msg.get(NoncePayload)
    tsi, tsr = msg.get(TsiPayload), msg.get(TsrPayload)
    try:
        if sa_payload is None or nonce is None or tsi is None or tsr is None \
                or len(sa_payload.proposals) != 1:
            raise InvalidSyntax("incomplete CREATE_CHILD_SA response")
        proposal = sa_payload.proposals[0]
        suite = Suite.from_wire(proposal)
        shared = None
        if ex.ke is not None:
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
                       pfs_group=_group_name(ex.ke.group) if shared else "none")
    old: ChildSa | None = ex.child
    core.install_child(sa, child, now, rekey_of=old)
    if old is None:
        return
    if old.state is ChildSaState.REKEYING:
        core.retire_child(old, child)
    core.emit(ev.RekeyCompleted(**sa.ids(), kind=ev.SaKind.CHILD, old_spi=old.spi_in,
                                new_spi=child.spi_in, initiator=True, collision=False))
    if old.state is not ChildSaState.DELETED:
        # RFC 7296 §1.3.3 / §2.8: the initiator of the rekey deletes the old CHILD_SA.
        core.enqueue(sa, Work("delete_child", spi=old.spi_in, reason="rekeyed"), now, front=True)
