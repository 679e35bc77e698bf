"""CREATE_CHILD_SA rekeying the IKE_SA, both roles (RFC 7296 §1.3.2, §2.18, §2.25).

The new IKE_SA gets fresh SPIs, SKEYSEED from the old SK_d (§2.18), message
IDs from 0, and every CHILD_SA of the old one. The rekey initiator then
deletes the old IKE_SA with an INFORMATIONAL Delete sent on the old SA.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.prf import compute_rekey_skeyseed, derive_ike_keys
from ikesim.crypto.sk import make_sk_protectors
from ikesim.crypto.suites import Suite, select_proposal
from ikesim.errors import (
    CryptoError,
    InvalidKePayload,
    InvalidSyntax,
    NoProposalChosen,
    PeerError,
    TemporaryFailure,
)
from ikesim.ike import events as ev
from ikesim.ike.collision import Collision, lowest_nonce_is_ours
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.ke_choice import promote_group, requested_group, select_configured_first
from ikesim.ike.profile import proposals_to_wire
from ikesim.ike.proposal_check import check_chosen_proposal
from ikesim.ike.sa import IkeSa
from ikesim.ike.state import IkeSaState, IkeSaTrigger, next_ike_state
from ikesim.wire.iana import ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import KePayload, NoncePayload, NotifyPayload, SaPayload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["start", "handle_request", "handle_response"]

IKE_KE_RETRIES = 5
"""INVALID_KE_PAYLOAD answers an IKE rekey follows before it gives up (strongSwan ``ike_init.c`` MAX_RETRIES)."""


def _check_new_spi(spi: bytes) -> None:
    """RFC 7296 §3.3.1: an IKE rekey proposal carries the new IKE_SA's 8-byte SPI; §2.6: never zero."""
    if len(spi) != 8:
        raise InvalidSyntax(f"IKE rekey proposal with a {len(spi)}-byte SPI")
    if spi == bytes(8):
        raise InvalidSyntax("IKE rekey proposal with a zero SPI")


def start(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send an IKE_SA rekey: SA (new SPIi) Ni KEi (RFC 7296 §1.3.2)."""
    if sa.state is not IkeSaState.ESTABLISHED:
        return False
    suite = sa.suite
    assert suite is not None
    core.emit(ev.RekeyStarted(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                              old_spi_out=sa.peer_spi, trigger=work.trigger))
    # strongSwan charon.prefer_previous_dh_group (default yes): the old IKE_SA's group, else the first configured.
    previous = sa.profile.connection.ike.prefer_previous_dh_group
    _send(core, sa, work, now, int(suite.ke_group) if previous else sa.profile.ike_group)
    return True


def _send(core: IkeCore, sa: IkeSa, work: Work | None, now: float, group: int) -> Exchange:
    """SA (new SPIi, *group* promoted, ``ke_choice``) Ni KEi(*group*) (RFC 7296 §1.3.2, §3.3.6)."""
    new_spi = core.new_ike_spi()
    nonce = core.new_nonce(sa)
    ke = new_key_exchange(group, core.rng_ke, core.meter)
    inner = [SaPayload(proposals_to_wire(promote_group(sa.profile.ike_specs, group), ProtocolId.IKE, new_spi)),
             NoncePayload(nonce), KePayload(ke.group, ke.public_bytes)]
    ex = core.request(sa, ExchangeType.CREATE_CHILD_SA, "rekey_ike", inner, now, work=work)
    ex.new_spi, ex.nonce, ex.ke = new_spi, nonce, ke
    core.sas[new_spi] = sa  # reserve the SPI until the answer arrives
    return ex


def _derive_sa(core: IkeCore, old: IkeSa, suite: Suite, *, initiator: bool, spi_i: bytes,
               spi_r: bytes, nonce_i: bytes, nonce_r: bytes, shared: bytes, now: float) -> IkeSa:
    """Derive and establish the rekeyed IKE_SA (RFC 7296 §2.18); it owns no CHILD_SA yet."""
    old_suite, old_keys = old.suite, old.keys
    assert old_suite is not None and old_keys is not None and old_suite.prf_id is not None
    assert suite.prf_id is not None
    skeyseed = compute_rekey_skeyseed(old_suite.prf_id, old_keys.sk_d, shared, nonce_i, nonce_r,
                                      core.meter)
    keys = derive_ike_keys(suite, skeyseed, nonce_i, nonce_r, spi_i, spi_r, core.meter)
    new = IkeSa(old.profile, initiator, spi_i, spi_r, old.local, old.peer, now)
    new.nonce_i, new.nonce_r, new.suite, new.keys = nonce_i, nonce_r, suite, keys
    new.protect_out, new.protect_in = make_sk_protectors(suite, keys, initiator, core.rng_iv,
                                                         core.meter)
    new.peer_id, new.nat_local, new.nat_peer = old.peer_id, old.nat_local, old.nat_peer
    new.peer_ts_ip, new.local_ts_ip = old.peer_ts_ip, old.local_ts_ip
    new.mobike, new.peer_addresses = old.mobike, old.peer_addresses  # RFC 4555 §3.1: negotiated once, inherited
    new.mid_sync, new.replay_sync = old.mid_sync, old.replay_sync  # RFC 6311: negotiated in IKE_AUTH, inherited
    new.fragmentation = old.fragmentation  # RFC 7383 §2.3: negotiated once; strongSwan inherits EXT_IKE_FRAGMENTATION
    core.sas[new.local_spi] = new
    core.establish(new, now, rekey_of=old.local_spi)
    return new


def adopt(core: IkeCore, old: IkeSa, new: IkeSa, now: float) -> None:
    """Move the CHILD_SAs and queued work of *old* to *new*; *old* is REKEYED (RFC 7296 §1.3.2)."""
    for child in list(old.children.values()):
        old.children.pop(child.spi_in)
        new.children[child.spi_in] = child
        child.ike_spi = new.local_spi
    # Work queued on the old IKE_SA moves too, except its own deletion.
    for work in old.queue:
        if work.purpose not in ("delete_ike", "rekey_ike"):  # the new IKE_SA needs no rekey yet
            new.queue.append(work)
    old.queue.clear()
    if old.state is IkeSaState.ESTABLISHED:
        old.state = next_ike_state(old.state, IkeSaTrigger.REPLACED)
    old.replaced_by = new.local_spi
    old.collision = None
    core.cancel_ike_timers(old)


def _await_delete(core: IkeCore, old: IkeSa, now: float) -> None:
    """Drop the old IKE_SA if the peer's Delete never arrives (RFC 7296 §2.1, §2.8.2)."""
    old.delete_reason = "rekeyed"
    give_up = sum(old.profile.connection.ike.retransmit.timeouts())
    core.timers.arm(("stale_ike", old.local_spi), now + give_up)


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, sa_payload: SaPayload,
                   now: float) -> None:
    """Responder of an IKE_SA rekey (RFC 7296 §1.3.2, §2.8.2); TEMPORARY_FAILURE while busy (§2.25.2)."""
    if sa.state is IkeSaState.REKEYED and core.sas.get(sa.replaced_by) is not None \
            and core.sas[sa.replaced_by].initiator and not sa.redundant:
        # Our rekey finished before the peer's request arrived (RFC 7296 §2.8.2, §2.25.2).
        core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi, won=True,
                                    redundant_spi=b"", resolution="temporary_failure"))
        raise TemporaryFailure("IKE_SA was rekeyed already")
    if sa.state is not IkeSaState.ESTABLISHED or sa.collision is not None:
        core.emit(ev.ExchangeCollision(**sa.ids(), case="ike_closing" if sa.collision is None
                                       else "duplicate_rekey", spi=sa.local_spi))
        raise TemporaryFailure("IKE_SA is being rekeyed or deleted")
    active = sa.active
    if active is not None and active.purpose != "rekey_ike":
        # RFC 7296 §2.25.2: another exchange of ours is in flight (a CHILD_SA rekey, a Delete...).
        case = "rekey_vs_delete" if active.purpose == "delete_ike" else "child_vs_ike_rekey"
        core.emit(ev.ExchangeCollision(**sa.ids(), case=case, spi=sa.local_spi))
        raise TemporaryFailure("an exchange of ours is in flight")
    if any(c.state.value in ("rekeying", "deleting") for c in sa.children.values()):
        core.emit(ev.ExchangeCollision(**sa.ids(), case="child_vs_ike_rekey", spi=sa.local_spi))
        raise TemporaryFailure("a CHILD_SA is being rekeyed or deleted")
    nonce, ke = msg.get(NoncePayload), msg.get(KePayload)
    if nonce is None or ke is None:
        raise InvalidSyntax("IKE rekey without Nonce or KE")
    for offered in sa_payload.proposals:
        _check_new_spi(offered.spi)
    if sa.profile.connection.ike.prefer_configured_proposals:  # strongSwan's default (``ke_choice``)
        chosen = select_configured_first(sa_payload.proposals, sa.profile.ike_specs, ProtocolId.IKE)
    else:
        chosen = select_proposal(sa_payload.proposals, sa.profile.ike_specs, ProtocolId.IKE)
    if chosen is None:
        core.emit(ev.ProposalRejected(**sa.ids(), by_us=True, exchange="CREATE_CHILD_SA",
                                      purpose="rekey_ike"))
        raise NoProposalChosen("no acceptable IKE proposal for the rekey")
    proposal, suite = chosen
    if ke.group != suite.ke_group:
        raise InvalidKePayload(int(suite.ke_group))
    my_ke = new_key_exchange(int(suite.ke_group), core.rng_ke, core.meter)
    try:
        shared = my_ke.compute_shared(ke.data)
    except CryptoError as exc:
        raise InvalidSyntax(str(exc)) from None
    nonce_r = core.new_nonce(sa)
    spi_r = core.new_ike_spi()
    inner = [SaPayload((suite.to_wire(proposal.number, ProtocolId.IKE, spi_r),)),
             NoncePayload(nonce_r), KePayload(my_ke.group, my_ke.public_bytes)]
    core.respond(sa, ExchangeType.CREATE_CHILD_SA, msg.message_id, inner)
    new = _derive_sa(core, sa, suite, initiator=False, spi_i=proposal.spi, spi_r=spi_r,
                     nonce_i=nonce.data, nonce_r=nonce_r, shared=shared, now=now)
    if active is not None:
        # RFC 7296 §2.8.2: simultaneous IKE_SA rekey; decide once our own request is answered.
        sa.collision = Collision(peer_new=new, peer_nonces=(nonce.data, nonce_r))
        return
    adopt(core, sa, new, now)
    core.emit(ev.RekeyCompleted(**new.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                new_spi=new.local_spi, initiator=False, collision=False))
    _await_delete(core, sa, now)


def peer_rekey_survives(core: IkeCore, old: IkeSa, now: float) -> bool:
    """Our IKE_SA rekey lost or was refused: the peer's new IKE_SA takes over (RFC 7296 §2.8.2)."""
    col: Collision | None = old.collision
    if col is None or col.peer_new.state is IkeSaState.DELETED:
        return False
    new: IkeSa = col.peer_new
    adopt(core, old, new, now)
    core.emit(ev.RekeyCompleted(**new.ids(), kind=ev.SaKind.IKE, old_spi=old.local_spi,
                                new_spi=new.local_spi, initiator=False, collision=True))
    _await_delete(core, old, now)
    core.pump(new, now)
    return True


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """IKE_SA rekey initiator: build the new IKE_SA, settle a collision, delete the old one (§1.3.2, §2.8.2)."""
    if core.sas.get(ex.new_spi) is sa:
        del core.sas[ex.new_spi]
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    try:
        if errors:
            raise PeerError(errors[0].notify_type.name)
        sa_payload, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
        if sa_payload is None or nonce is None or ke is None or len(sa_payload.proposals) != 1:
            raise InvalidSyntax("incomplete IKE rekey response")
        _check_new_spi(sa_payload.proposals[0].spi)
        offered = proposals_to_wire(promote_group(sa.profile.ike_specs, ex.ke.group), ProtocolId.IKE, ex.new_spi)
        try:  # RFC 7296 §3.3.6: the answer must be one of the proposals we offered
            proposal, suite = check_chosen_proposal(offered, sa_payload, protocol=ProtocolId.IKE, spi_size=8)
        except NoProposalChosen as exc:
            core.emit(ev.ResponseRejected(**sa.ids(), exchange="CREATE_CHILD_SA", purpose="rekey_ike",
                                          message_id=msg.message_id, reason=str(exc)))
            raise InvalidSyntax(str(exc)) from None
        if ke.group != ex.ke.group or int(suite.ke_group) != ex.ke.group:
            raise InvalidSyntax("bad KE in IKE rekey response")
        try:
            shared = ex.ke.compute_shared(ke.data)
        except CryptoError as exc:
            raise InvalidSyntax(str(exc)) from None
    except PeerError as exc:
        outcome = errors[0].notify_type.name if errors else NotifyType(exc.notify_type).name
        core.complete(sa, ex, outcome)
        group = requested_group(errors[0]) if outcome == "INVALID_KE_PAYLOAD" else None
        if group and group in sa.profile.ike_groups and group != ex.ke.group and ex.ke_retries < IKE_KE_RETRIES:
            # RFC 7296 §1.3, §1.2: retry at once with the group the responder asks for (strongSwan ike_init.c gives
            # up after MAX_RETRIES = 5; an honest responder needs one).
            _send(core, sa, ex.work, now, group).ke_retries = ex.ke_retries + 1
            return
        if outcome == "NO_PROPOSAL_CHOSEN":
            core.emit(ev.ProposalRejected(**sa.ids(), by_us=False, exchange="CREATE_CHILD_SA",
                                          purpose="rekey_ike"))
        if outcome == "TEMPORARY_FAILURE" and sa.collision is not None:
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                        won=False, redundant_spi=b"", resolution="temporary_failure"))
            if peer_rekey_survives(core, sa, now):
                return
        if errors:
            # The peer refused (TEMPORARY_FAILURE, NO_PROPOSAL_CHOSEN, ...): keep the old IKE_SA and try again
            # later (RFC 7296 §2.25; strongSwan ike_rekey ``schedule_delayed_rekey`` after any failure).
            core.timers.arm(("retry_ike", sa.local_spi), core.collision_retry_at(sa, now))
        sa.collision = None
        return
    core.complete(sa, ex, "ok")
    own = _derive_sa(core, sa, suite, initiator=True, spi_i=ex.new_spi, spi_r=proposal.spi,
                     nonce_i=ex.nonce, nonce_r=nonce.data, shared=shared, now=now)
    col: Collision | None = sa.collision
    if col is not None:
        peer_new: IkeSa = col.peer_new
        if lowest_nonce_is_ours((ex.nonce, nonce.data), col.peer_nonces, tie_ours=sa.initiator):
            # RFC 7296 §2.8.2: ours is redundant; we delete it, the peer deletes the old IKE_SA.
            own.redundant = True
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi, won=False,
                                        redundant_spi=own.local_spi, resolution="nonces"))
            if not peer_rekey_survives(core, sa, now):
                sa.collision = None
                adopt(core, sa, own, now)  # the peer's IKE_SA is gone already: keep ours
                own.redundant = False
                core.enqueue(sa, Work("delete_ike", reason="rekeyed"), now)
                return
            core.enqueue(own, Work("delete_ike", reason="redundant"), now)
            return
        peer_new.redundant = True
        core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi, won=True,
                                    redundant_spi=peer_new.local_spi, resolution="nonces"))
        # The peer deletes its redundant IKE_SA; if it never does, we do (strongSwan waits 30 s).
        core.timers.arm(("redundant_ike", peer_new.local_spi),
                        now + sa.profile.connection.ike.collision_delete_timeout)
    adopt(core, sa, own, now)
    core.emit(ev.RekeyCompleted(**own.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                new_spi=own.local_spi, initiator=True, collision=col is not None))
    # RFC 7296 §1.3.2: the initiator deletes the old IKE_SA on the old IKE_SA.
    core.enqueue(sa, Work("delete_ike", reason="rekeyed"), now)
    core.pump(own, now)
