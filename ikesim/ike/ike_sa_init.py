"""IKE_SA_INIT, COOKIE and INVALID_KE retries, NAT detection (RFC 7296 §1.2, §2.6, §2.23)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.natd import natd_hash
from ikesim.crypto.prf import compute_skeyseed, derive_ike_keys
from ikesim.crypto.sk import make_sk_protectors
from ikesim.crypto.suites import select_proposal
from ikesim.errors import CryptoError, NoProposalChosen
from ikesim.ike import childless, fragmentation, ike_auth
from ikesim.ike import events as ev
from ikesim.ike.certreq import certreq_payloads
from ikesim.ike.exchange import Exchange
from ikesim.ike.ke_choice import select_configured_first
from ikesim.ike.natt import float_to_natt
from ikesim.ike.profile import ConnectionProfile, ke_group_name, proposals_to_wire
from ikesim.ike.proposal_check import check_chosen_proposal
from ikesim.ike.sa import ZERO_SPI, IkeSa
from ikesim.types import Address, Datagram
from ikesim.wire.codec import serialize_message
from ikesim.wire.iana import (
    ExchangeType,
    HeaderFlag,
    NotifyType,
    ProtocolId,
    TransformType,
)
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
)

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["initiate", "send_request", "handle_request", "handle_response", "response_drop_reason", "natd_payloads",
           "detect_nat", "answer_half_open"]

MAX_INIT_RETRIES = 3
"""How many COOKIE/INVALID_KE_PAYLOAD retries an initiator accepts before giving up."""


def natd_payloads(spi_i: bytes, spi_r: bytes, src: Address, dst: Address, core: IkeCore) -> list[Payload]:
    return [
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP,
                      data=natd_hash(spi_i, spi_r, src.ip, src.port, core.meter)),
        NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP,
                      data=natd_hash(spi_i, spi_r, dst.ip, dst.port, core.meter)),
    ]


def detect_nat(core: IkeCore, sa: IkeSa, msg: Message, src: Address, dst: Address) -> None:
    """RFC 7296 §2.23: compare the peer's NATD hashes with the real addresses; emit NatDetected."""
    src_hashes = [n.data for n in msg.get_all(NotifyPayload)
                  if n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP]
    dst_hashes = [n.data for n in msg.get_all(NotifyPayload)
                  if n.notify_type == NotifyType.NAT_DETECTION_DESTINATION_IP]
    if not src_hashes or not dst_hashes:
        return
    peer_ok = natd_hash(msg.spi_i, msg.spi_r, src.ip, src.port, core.meter) in src_hashes
    local_ok = natd_hash(msg.spi_i, msg.spi_r, dst.ip, dst.port, core.meter) in dst_hashes
    sa.nat_peer, sa.nat_local = not peer_ok, not local_ok
    if sa.nat_peer or sa.nat_local:
        # Hook: the float to port 4500 (RFC 7296 §2.23) comes in a later issue.
        core.emit(ev.NatDetected(**sa.ids(), local_behind_nat=sa.nat_local,
                                 peer_behind_nat=sa.nat_peer))


def initiate(core: IkeCore, profile: ConnectionProfile, local: Address, peer: Address,
             now: float) -> IkeSa:
    """Create an initiator IKE_SA and send IKE_SA_INIT (RFC 7296 §1.2)."""
    sa = IkeSa(profile, True, core.new_ike_spi(), ZERO_SPI, local, peer, now)
    core.sas[sa.spi_i] = sa
    sa.nonce_i = core.new_nonce(sa)
    sa.ke = new_key_exchange(profile.ike_group, core.rng_ke, core.meter)
    send_request(core, sa, now)
    return sa


def send_request(core: IkeCore, sa: IkeSa, now: float) -> Exchange:
    """Send IKE_SA_INIT: [N(COOKIE)] SA KE Ni N(NATD_S) N(NATD_D) [CERTREQ] (RFC 7296 §1.2)."""
    payloads: list[Payload] = []
    if sa.cookie:
        payloads.append(NotifyPayload(NotifyType.COOKIE, data=sa.cookie))
    payloads += [
        SaPayload(proposals_to_wire(sa.profile.ike_specs, ProtocolId.IKE, b"")),
        KePayload(sa.ke.group, sa.ke.public_bytes),
        NoncePayload(sa.nonce_i),
        *natd_payloads(sa.spi_i, ZERO_SPI, sa.local, sa.peer, core),
    ]  # RFC 7296 §1.2: the initiator's CERTREQ goes in IKE_AUTH, not here
    if sa.profile.connection.ike.fragmentation:
        payloads.append(fragmentation.supported_notify())  # RFC 7383 §2.3

    msg = Message(sa.spi_i, ZERO_SPI, ExchangeType.IKE_SA_INIT, HeaderFlag.INITIATOR, 0,
                  tuple(payloads))
    data = serialize_message(msg)
    sa.init_request = data
    sa.next_message_id = 1
    return core.start_request(sa, ExchangeType.IKE_SA_INIT, "ike_sa_init", data, 0, now)


def _stateless_reply(core: IkeCore, msg: Message, src: Address, dst: Address,
                     notify: NotifyPayload) -> None:
    reply = Message(msg.spi_i, ZERO_SPI, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE, 0,
                    (notify,))
    core.outbox.append(Datagram(serialize_message(reply), dst, src))


def _drop_init(core: IkeCore, msg: Message, src: Address, dst: Address, reason: str) -> None:
    core.emit(ev.MessageDropped(spi_i=msg.spi_i, spi_r=msg.spi_r, connection="", reason=reason, src=src, dst=dst,
                                exchange="IKE_SA_INIT", message_id=0))


def _admit(core: IkeCore, msg: Message, nonce_i: bytes, src: Address, dst: Address, now: float) -> bool:
    """Flood protection before any state or DH (RFC 7296 §2.6; strongSwan's receiver): demand a COOKIE
    above the half-open thresholds, drop above the per-IP block threshold or the global limit."""
    cfg, half_open, jar = core.config, core.half_open, core.cookies
    total, from_ip = len(half_open), half_open.count_ip(src.ip)
    if jar.required(total, cfg.cookie_threshold, None, now):
        threshold = "cookie_threshold"
    elif jar.required(from_ip, cfg.cookie_threshold_ip, src.ip, now):
        threshold = "cookie_threshold_ip"
    else:
        threshold = ""
    if threshold:
        # RFC 7296 §2.6: the COOKIE must be the first payload.
        first = msg.payloads[0] if msg.payloads else None
        sent = first.data if isinstance(first, NotifyPayload) and first.notify_type == NotifyType.COOKIE else None
        if sent is None or not jar.valid(sent, nonce_i, src.ip, msg.spi_i, core.meter):
            cookie = jar.make(nonce_i, src.ip, msg.spi_i, now, core.meter)
            _stateless_reply(core, msg, src, dst, NotifyPayload(NotifyType.COOKIE, data=cookie))
            core.emit(ev.CookieRequired(spi_i=msg.spi_i, spi_r=ZERO_SPI, connection="", src=src, dst=dst,
                                        threshold=threshold, half_open=total, half_open_ip=from_ip,
                                        invalid_cookie=sent is not None))
            return False
    block = cfg.block_threshold
    if block is not None and cfg.cookie_threshold_ip is not None and block <= cfg.cookie_threshold_ip:
        block = cfg.cookie_threshold_ip + 1  # strongSwan: the block threshold stays above the per-IP cookie one
    if block is not None and from_ip >= block:
        _drop_init(core, msg, src, dst, f"per-IP half-open limit of {block} reached")
        return False
    limit = cfg.init_limit_half_open
    if limit is not None and total >= limit:
        _drop_init(core, msg, src, dst, f"half-open limit of {limit} reached")
        return False
    return True


def _match_connection(core: IkeCore, src: Address, dst: Address) -> ConnectionProfile | None:
    for profile in core.profiles.values():
        conn = profile.connection
        if conn.local_addr is not None and conn.local_addr.ip != dst.ip:
            continue
        if conn.remote_addr is not None and conn.remote_addr.ip != src.ip:
            continue
        return profile
    return None


def _ke_group_first(offered: tuple[Proposal, ...], group: int) -> tuple[Proposal, ...]:
    """The offer with the KE payload's group moved before the other KE transforms of each proposal.

    RFC 7296 §1.2: a responder accepts the KE if its group is the one of the proposal it selects, so
    among the groups it accepts in a proposal it picks the one the initiator already sent a KE for
    (which proposal is selected does not change).
    """
    out = []
    for p in offered:
        ke_first = sorted(p.transforms, key=lambda t: not (t.transform_type == TransformType.KE
                                                           and t.transform_id == group))
        out.append(replace(p, transforms=tuple(ke_first)))
    return tuple(out)


def handle_request(core: IkeCore, msg: Message, data: bytes, src: Address, dst: Address,
                   now: float) -> None:
    """Responder side of IKE_SA_INIT (RFC 7296 §1.2), with cookies (§2.6) and INVALID_KE (§1.2)."""
    key = (msg.spi_i, src)
    known = core.responder_index.get(key)
    if known is not None:
        sa = core.sas.get(known)
        if sa is not None and sa.init_request == data and sa.init_response:
            core.outbox.append(Datagram(sa.init_response, dst, src))
            return
    sa_payload, ke, nonce = msg.get(SaPayload), msg.get(KePayload), msg.get(NoncePayload)
    if sa_payload is None or ke is None or nonce is None:
        core.emit(ev.MessageDropped(spi_i=msg.spi_i, spi_r=msg.spi_r, connection="",
                                    reason="malformed: IKE_SA_INIT without SA, KE or Nonce",
                                    src=src, dst=dst, exchange="IKE_SA_INIT", message_id=0))
        return
    if not _admit(core, msg, nonce.data, src, dst, now):
        return
    profile = _match_connection(core, src, dst)
    if profile is None:
        core.emit(ev.MessageDropped(spi_i=msg.spi_i, spi_r=msg.spi_r, connection="",
                                    reason="no matching connection", src=src, dst=dst,
                                    exchange="IKE_SA_INIT", message_id=0))
        return
    name = profile.connection.name
    if profile.connection.ike.prefer_configured_proposals:  # strongSwan's default (ike_init.c, ``ke_choice``)
        chosen = select_configured_first(sa_payload.proposals, profile.ike_specs, ProtocolId.IKE)
    else:
        chosen = select_proposal(_ke_group_first(sa_payload.proposals, ke.group), profile.ike_specs, ProtocolId.IKE)
    if chosen is None:
        core.emit(ev.ProposalRejected(spi_i=msg.spi_i, spi_r=ZERO_SPI, connection=name, by_us=True,
                                      exchange="IKE_SA_INIT", purpose="ike_sa_init"))
        _stateless_reply(core, msg, src, dst, NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN))
        return
    proposal, suite = chosen
    if ke.group != suite.ke_group:
        # RFC 7296 §1.2: INVALID_KE_PAYLOAD names the group of the selected proposal; the KE is not for it.
        _stateless_reply(core, msg, src, dst, NotifyPayload(
            NotifyType.INVALID_KE_PAYLOAD, data=int(suite.ke_group).to_bytes(2, "big")))
        return
    sa = IkeSa(profile, False, msg.spi_i, core.new_ike_spi(), dst, src, now)
    sa.nonce_i = nonce.data
    sa.nonce_r = core.new_nonce(sa)
    sa.suite = suite
    try:
        my_ke = new_key_exchange(int(suite.ke_group), core.rng_ke, core.meter)
        shared = my_ke.compute_shared(ke.data)
    except CryptoError as exc:
        core.emit(ev.MessageDropped(spi_i=msg.spi_i, spi_r=msg.spi_r, connection=name,
                                    reason=f"malformed: {exc}", src=src, dst=dst,
                                    exchange="IKE_SA_INIT", message_id=0))
        return
    _derive(core, sa, shared)
    sa.init_request = data
    sa.peer_message_id = 1
    detect_nat(core, sa, msg, src, dst)
    sa.fragmentation = profile.connection.ike.fragmentation and fragmentation.offered(msg)  # RFC 7383 §2.3
    reply = Message(sa.spi_i, sa.spi_r, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE, 0, (
        SaPayload((suite.to_wire(proposal.number, ProtocolId.IKE, b""),)),
        KePayload(my_ke.group, my_ke.public_bytes),
        NoncePayload(sa.nonce_r),
        *natd_payloads(sa.spi_i, sa.spi_r, dst, src, core),
        *([fragmentation.supported_notify()] if sa.fragmentation else []),
        *certreq_payloads(profile),
        *([childless.supported_notify()] if profile.connection.ike.childless != "never" else []),  # RFC 6023 §3
    ))
    answer_half_open(core, sa, key, reply, src, now)


def answer_half_open(core: IkeCore, sa: IkeSa, key: tuple[bytes, Address], reply: Message, src: Address,
                     now: float) -> None:
    """Keep the responder's new half-open IKE_SA (RFC 7296 §2.6; RFC 5723 §4.3.2 alike) and send its first
    response, kept for retransmitted requests (§2.1)."""
    sa.init_response = serialize_message(reply)
    sa.last_response = (sa.init_response,)
    core.sas[sa.spi_r] = sa
    core.responder_index[key] = sa.spi_r
    sa.half_open_key = key
    core.half_open.add(sa.spi_r, src.ip)
    core.timers.arm(("half_open", sa.spi_r), now + core.config.half_open_timeout)
    core.send(sa, sa.init_response)


def _derive(core: IkeCore, sa: IkeSa, shared: bytes) -> None:
    suite = sa.suite
    assert suite is not None and suite.prf_id is not None
    skeyseed = compute_skeyseed(suite.prf_id, sa.nonce_i, sa.nonce_r, shared, core.meter)
    sa.keys = derive_ike_keys(suite, skeyseed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r,
                              core.meter)
    core.emit(ev.IkeSaKeysDerived(  # for the key table even if IKE_AUTH fails (RFC 7296 §2.14)
        **sa.ids(), initiator=sa.initiator, sk_ei=sa.keys.sk_ei, sk_er=sa.keys.sk_er, sk_ai=sa.keys.sk_ai,
        sk_ar=sa.keys.sk_ar, encr_wireshark=suite.wireshark_ike_encr, integ_wireshark=suite.wireshark_ike_integ))
    sa.protect_out, sa.protect_in = make_sk_protectors(suite, sa.keys, sa.initiator, core.rng_iv,
                                                       core.meter)


def _fail(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, reason: str = "failed") -> None:
    core.complete(sa, ex, outcome)
    core.remove_ike_sa(sa, reason)


def _reject(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, reason: str) -> None:
    """A response we cannot use fails the IKE_SA: ResponseRejected, deleted, nothing sent (as strongSwan)."""
    core.complete(sa, ex, outcome)
    core.emit(ev.ResponseRejected(**sa.ids(), exchange="IKE_SA_INIT", purpose="ike_sa_init", message_id=0,
                                  reason=reason))
    core.remove_ike_sa(sa, "failed")


def _retry(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, reason: str, now: float) -> None:
    core.complete(sa, ex, outcome)
    core.emit(ev.IkeSaInitRetried(**sa.ids(), reason=reason, group=ke_group_name(sa.ke.group)))
    send_request(core, sa, now)


COOKIE_LENGTHS = range(1, 65)
"""RFC 7296 §2.6: a cookie is 1 to 64 octets (strongSwan ``notify_payload.c`` verify: same bounds)."""


def response_drop_reason(msg: Message) -> str:
    """Why the initiator drops this IKE_SA_INIT response unread ("" if it does not), before any state changes.

    RFC 7296 §2.6: a COOKIE of other than 1..64 octets is not one to echo. §3.1: the responder's SPI is never
    zero, except in a stateless answer that creates no IKE_SA: N(COOKIE) (§2.6), N(INVALID_KE_PAYLOAD) (§1.2)
    or another error notify without an SA payload (§1.3, §2.21.1).
    """
    notifies = msg.get_all(NotifyPayload)
    cookie = next((n for n in notifies if n.notify_type == NotifyType.COOKIE), None)
    if cookie is not None and len(cookie.data) not in COOKIE_LENGTHS:
        return f"COOKIE of {len(cookie.data)} octets, not 1..64"
    stateless = msg.get(SaPayload) is None and any(
        n.notify_type == NotifyType.COOKIE or n.notify_type.is_error for n in notifies)
    if msg.spi_r == ZERO_SPI and not stateless:
        return "zero responder SPI"
    return ""


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, data: bytes,
                    src: Address, dst: Address, now: float) -> None:
    """Initiator side of the IKE_SA_INIT response (RFC 7296 §1.2, §2.6)."""
    notifies = msg.get_all(NotifyPayload)
    by_type = {n.notify_type: n for n in notifies}
    retries = sa.init_retries
    if NotifyType.COOKIE in by_type and msg.get(SaPayload) is None:
        if retries >= MAX_INIT_RETRIES:
            _fail(core, sa, ex, "COOKIE")
            return
        sa.init_retries += 1
        sa.cookie = by_type[NotifyType.COOKIE].data
        _retry(core, sa, ex, "COOKIE", "cookie", now)
        return
    if NotifyType.INVALID_KE_PAYLOAD in by_type:
        raw = by_type[NotifyType.INVALID_KE_PAYLOAD].data
        group = int.from_bytes(raw[:2], "big") if len(raw) >= 2 else 0
        if retries >= MAX_INIT_RETRIES or group not in sa.profile.ike_groups:
            _fail(core, sa, ex, "INVALID_KE_PAYLOAD")
            return
        sa.init_retries += 1
        # RFC 7296 §1.2: retry with the requested group, same SPIi and nonce (as strongSwan).
        sa.ke = new_key_exchange(group, core.rng_ke, core.meter)
        _retry(core, sa, ex, "INVALID_KE_PAYLOAD", "invalid_ke", now)
        return
    errors = [n for n in notifies if n.notify_type.is_error]
    if errors:
        outcome = errors[0].notify_type.name
        core.complete(sa, ex, outcome)
        if errors[0].notify_type == NotifyType.NO_PROPOSAL_CHOSEN:
            core.emit(ev.ProposalRejected(**sa.ids(), by_us=False, exchange="IKE_SA_INIT",
                                          purpose="ike_sa_init"))
        core.remove_ike_sa(sa, "failed")
        return
    sa_payload, ke, nonce = msg.get(SaPayload), msg.get(KePayload), msg.get(NoncePayload)
    if sa_payload is None or ke is None or nonce is None:
        _reject(core, sa, ex, "INVALID_SYNTAX", "IKE_SA_INIT response without SA, KE or Nonce")
        return
    offered = proposals_to_wire(sa.profile.ike_specs, ProtocolId.IKE, b"")
    try:
        # RFC 7296 §3.3.6; §3.3.1: no SPI in IKE_SA_INIT proposals.
        _, suite = check_chosen_proposal(offered, sa_payload, protocol=ProtocolId.IKE, spi_size=0)
    except NoProposalChosen as exc:
        _reject(core, sa, ex, "invalid_proposal", str(exc))  # strongSwan: "peer's proposal selection invalid"
        return
    if int(suite.ke_group) != sa.ke.group or ke.group != sa.ke.group:
        # RFC 7296 §1.2: a responder that wants another group answers INVALID_KE_PAYLOAD, it does not switch.
        _reject(core, sa, ex, "INVALID_KE_PAYLOAD",
                f"answer group {int(suite.ke_group)} and KE group {int(ke.group)}, our KE is group {sa.ke.group}")
        return
    try:
        shared = sa.ke.compute_shared(ke.data)
    except CryptoError as exc:
        _reject(core, sa, ex, "INVALID_SYNTAX", f"KE data: {exc}")
        return
    sa.spi_r = msg.spi_r
    if sa.profile.connection.ike.childless == "force" and childless.initiator_gives_up(sa.profile, msg):
        _reject(core, sa, ex, "childless_unsupported", "peer does not support childless IKE_SA initiation")
        return  # RFC 6023 §3; strongSwan ``defer_child_sa``: nothing more is sent
    sa.nonce_r = nonce.data
    sa.suite = suite
    sa.init_response = data
    sa.fragmentation = sa.profile.connection.ike.fragmentation and fragmentation.offered(msg)  # RFC 7383 §2.3
    _derive(core, sa, shared)
    sa.ke = None
    core.complete(sa, ex, "ok")
    detect_nat(core, sa, msg, src, dst)
    natt = any(n.notify_type == NotifyType.NAT_DETECTION_SOURCE_IP for n in msg.get_all(NotifyPayload))
    if sa.nat_local or sa.nat_peer or (natt and sa.profile.connection.ike.mobike):
        # RFC 7296 §2.23: IKE_AUTH on goes to port 4500; with MOBIKE even without a NAT, as strongSwan's
        # ike_natd.c does (RFC 4555 §3.3: no later exchange could move it there)
        float_to_natt(core, sa)
    deferred = sa.profile.connection.ike.childless != "never" and childless.first_child_deferred(sa.profile, msg)
    ike_auth.start(core, sa, now, without_child=deferred)  # RFC 6023 §3: without the first CHILD_SA if deferred
