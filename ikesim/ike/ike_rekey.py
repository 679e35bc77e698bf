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
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.profile import proposals_to_wire
from ikesim.ike.sa import IkeSa
from ikesim.ike.state import IkeSaState, IkeSaTrigger, next_ike_state
from ikesim.wire.iana import ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import KePayload, NoncePayload, NotifyPayload, SaPayload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["start", "handle_request", "handle_response"]


def start(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Send an IKE_SA rekey: SA (new SPIi) Ni KEi (RFC 7296 §1.3.2)."""
    if sa.state is not IkeSaState.ESTABLISHED:
        return False
    suite = sa.suite
    assert suite is not None
    core.emit(ev.RekeyStarted(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                              old_spi_out=sa.peer_spi, trigger=work.trigger))
    new_spi = core.new_ike_spi()
    nonce = core.new_nonce(sa)
    ke = new_key_exchange(int(suite.ke_group), core.rng_ke, core.meter)
    inner = [SaPayload(proposals_to_wire(sa.profile.ike_specs, ProtocolId.IKE, new_spi)),
             NoncePayload(nonce), KePayload(ke.group, ke.public_bytes)]
    ex = core.request(sa, ExchangeType.CREATE_CHILD_SA, "rekey_ike", inner, now, work=work)
    ex.new_spi, ex.nonce, ex.ke = new_spi, nonce, ke
    core.sas[new_spi] = sa  # reserve the SPI until the answer arrives
    return True


def _new_sa(core: IkeCore, old: IkeSa, suite: Suite, *, initiator: bool, spi_i: bytes,
            spi_r: bytes, nonce_i: bytes, nonce_r: bytes, shared: bytes, now: float) -> IkeSa:
    """Derive the rekeyed IKE_SA (RFC 7296 §2.18) and move the CHILD_SAs to it (§1.3.2)."""
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
    core.sas[new.local_spi] = new
    for child in list(old.children.values()):
        old.children.pop(child.spi_in)
        new.children[child.spi_in] = child
        child.ike_spi = new.local_spi
    # Work queued on the old IKE_SA moves too, except its own deletion.
    for work in old.queue:
        if work.purpose != "delete_ike":
            new.queue.append(work)
    old.queue.clear()
    old.state = next_ike_state(old.state, IkeSaTrigger.REPLACED)
    old.replaced_by = new.local_spi
    core.cancel_ike_timers(old)
    core.establish(new, now, rekey_of=old.local_spi)
    return new


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, sa_payload: SaPayload,
                   now: float) -> None:
    """Responder of an IKE_SA rekey (RFC 7296 §1.3.2); TEMPORARY_FAILURE while busy (§2.25)."""
    if sa.state is not IkeSaState.ESTABLISHED:
        raise TemporaryFailure("IKE_SA is being rekeyed or deleted")
    if sa.active is not None:
        if sa.active.purpose == "rekey_ike":
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                        won=True, redundant_spi=b""))
        raise TemporaryFailure("an exchange of ours is in flight")
    if any(c.state.value in ("rekeying", "deleting") for c in sa.children.values()):
        raise TemporaryFailure("a CHILD_SA is being rekeyed or deleted")
    nonce, ke = msg.get(NoncePayload), msg.get(KePayload)
    if nonce is None or ke is None:
        raise InvalidSyntax("IKE rekey without Nonce or KE")
    chosen = select_proposal(sa_payload.proposals, sa.profile.ike_specs, ProtocolId.IKE)
    if chosen is None:
        core.emit(ev.ProposalRejected(**sa.ids(), local=True, exchange="CREATE_CHILD_SA",
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
    new = _new_sa(core, sa, suite, initiator=False, spi_i=proposal.spi, spi_r=spi_r,
                  nonce_i=nonce.data, nonce_r=nonce_r, shared=shared, now=now)
    core.emit(ev.RekeyCompleted(**new.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                new_spi=new.local_spi, initiator=False, collision=False))
    sa.delete_reason = "rekeyed"
    # If the initiator's Delete of the old IKE_SA never arrives, drop it once the peer
    # would have given up retransmitting it (RFC 7296 §2.1).
    give_up = sum(sa.profile.connection.ike.retransmit.timeouts())
    core.timers.arm(("stale_ike", sa.local_spi), now + give_up)


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """IKE_SA rekey initiator: build the new IKE_SA, then delete the old one (RFC 7296 §1.3.2)."""
    if core.sas.get(ex.new_spi) is sa:
        del core.sas[ex.new_spi]
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    try:
        if errors:
            raise PeerError(errors[0].notify_type.name)
        sa_payload, nonce, ke = msg.get(SaPayload), msg.get(NoncePayload), msg.get(KePayload)
        if sa_payload is None or nonce is None or ke is None or len(sa_payload.proposals) != 1:
            raise InvalidSyntax("incomplete IKE rekey response")
        proposal = sa_payload.proposals[0]
        suite = Suite.from_wire(proposal)
        if ke.group != ex.ke.group or int(suite.ke_group) != ex.ke.group or len(proposal.spi) != 8:
            raise InvalidSyntax("bad KE or SPI in IKE rekey response")
        try:
            shared = ex.ke.compute_shared(ke.data)
        except CryptoError as exc:
            raise InvalidSyntax(str(exc)) from None
    except PeerError as exc:
        outcome = errors[0].notify_type.name if errors else NotifyType(exc.notify_type).name
        core.complete(sa, ex, outcome)
        if outcome == "NO_PROPOSAL_CHOSEN":
            core.emit(ev.ProposalRejected(**sa.ids(), local=False, exchange="CREATE_CHILD_SA",
                                          purpose="rekey_ike"))
        if outcome == "TEMPORARY_FAILURE":
            core.emit(ev.RekeyCollision(**sa.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                        won=False, redundant_spi=b""))
            core.timers.arm(("retry_ike", sa.local_spi), core.collision_retry_at(sa, now))
        return
    core.complete(sa, ex, "ok")
    new = _new_sa(core, sa, suite, initiator=True, spi_i=ex.new_spi, spi_r=proposal.spi,
                  nonce_i=ex.nonce, nonce_r=nonce.data, shared=shared, now=now)
    core.emit(ev.RekeyCompleted(**new.ids(), kind=ev.SaKind.IKE, old_spi=sa.local_spi,
                                new_spi=new.local_spi, initiator=True, collision=False))
    # RFC 7296 §1.3.2: the initiator deletes the old IKE_SA on the old IKE_SA.
    core.enqueue(sa, Work("delete_ike", reason="rekeyed"), now)
    core.pump(new, now)
