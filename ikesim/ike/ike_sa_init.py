"""IKE_SA_INIT, COOKIE and INVALID_KE retries, NAT detection (RFC 7296 §1.2, §2.6, §2.23)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ikesim.crypto.auth import cert_request_hash
from ikesim.crypto.ke import new_key_exchange
from ikesim.crypto.natd import cookie_value, natd_hash
from ikesim.crypto.prf import compute_skeyseed, derive_ike_keys
from ikesim.crypto.sk import make_sk_protectors
from ikesim.crypto.suites import Suite, select_proposal
from ikesim.errors import CryptoError, PeerError
from ikesim.ike import events as ev
from ikesim.ike import fragmentation
from ikesim.ike.config import AuthMethodName
from ikesim.ike.exchange import Exchange
from ikesim.ike.natt import float_to_natt
from ikesim.ike.profile import ConnectionProfile, proposals_to_wire
from ikesim.ike.sa import ZERO_SPI, IkeSa
from ikesim.types import Address, Datagram
from ikesim.wire.codec import serialize_message
from ikesim.wire.iana import (
    ExchangeType,
    HeaderFlag,
    KeGroup,
    NotifyType,
    ProtocolId,
    TransformType,
)
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    CertReqPayload,
    KePayload,
    NoncePayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
)

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["initiate", "send_request", "handle_request", "handle_response"]

MAX_INIT_RETRIES = 3
"""How many COOKIE/INVALID_KE_PAYLOAD retries an initiator accepts before giving up."""
HALF_OPEN_TIMEOUT = 30.0
"""Seconds a responder keeps an IKE_SA without IKE_AUTH (strongSwan half_open_timeout)."""


def _natd(spi_i: bytes, spi_r: bytes, src: Address, dst: Address, core: IkeCore) -> list[Payload]:
    return [
        NotifyPayload(NotifyType.NAT_DETECTION_SOURCE_IP,
                      data=natd_hash(spi_i, spi_r, src.ip, src.port, core.meter)),
        NotifyPayload(NotifyType.NAT_DETECTION_DESTINATION_IP,
                      data=natd_hash(spi_i, spi_r, dst.ip, dst.port, core.meter)),
    ]


def certreq_payloads(profile: ConnectionProfile) -> list[Payload]:
    creds = profile.connection.credentials
    if creds.method is AuthMethodName.PSK or not creds.trust_anchors:
        return []
    data = b"".join(cert_request_hash(ca) for ca in creds.trust_anchors)
    return [CertReqPayload(data=data)]


def _detect_nat(core: IkeCore, sa: IkeSa, msg: Message, src: Address, dst: Address) -> None:
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
        *_natd(sa.spi_i, ZERO_SPI, sa.local, sa.peer, core),
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


def _match_connection(core: IkeCore, src: Address, dst: Address) -> ConnectionProfile | None:
    for profile in core.profiles.values():
        conn = profile.connection
        if conn.local_addr is not None and conn.local_addr.ip != dst.ip:
            continue
        if conn.remote_addr is not None and conn.remote_addr.ip != src.ip:
            continue
        return profile
    return None


def _offered_groups(p: Proposal) -> set[int]:
    return {int(t.transform_id) for t in p.transforms if t.transform_type == TransformType.KE}


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
    profile = _match_connection(core, src, dst)
    if profile is None:
        core.emit(ev.MessageDropped(spi_i=msg.spi_i, spi_r=msg.spi_r, connection="",
                                    reason="no matching connection", src=src, dst=dst,
                                    exchange="IKE_SA_INIT", message_id=0))
        return
    name = profile.connection.name
    threshold = core.config.cookie_threshold
    if threshold is not None and len(core.half_open) >= threshold:
        # RFC 7296 §2.6: answer statelessly with a COOKIE unless the request carries a valid one.
        expected = cookie_value(core.cookie_secret, nonce.data, src.ip, msg.spi_i, core.meter)
        first = msg.payloads[0] if msg.payloads else None
        if not (isinstance(first, NotifyPayload) and first.notify_type == NotifyType.COOKIE
                and first.data == expected):
            _stateless_reply(core, msg, src, dst, NotifyPayload(NotifyType.COOKIE, data=expected))
            return
    chosen = select_proposal(sa_payload.proposals, profile.ike_specs, ProtocolId.IKE)
    if chosen is None:
        core.emit(ev.ProposalRejected(spi_i=msg.spi_i, spi_r=ZERO_SPI, connection=name, local=True,
                                      exchange="IKE_SA_INIT", purpose="ike_sa_init"))
        _stateless_reply(core, msg, src, dst, NotifyPayload(NotifyType.NO_PROPOSAL_CHOSEN))
        return
    proposal, suite = chosen
    if ke.group != suite.ke_group:
        # RFC 7296 §1.2: use the KE the initiator sent if that group is acceptable in the proposal.
        if ke.group in _offered_groups(proposal) and ke.group in profile.ike_groups:
            suite = _with_group(suite, ke.group)
        else:
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
    _detect_nat(core, sa, msg, src, dst)
    sa.fragmentation = profile.connection.ike.fragmentation and fragmentation.offered(msg)  # RFC 7383 §2.3
    reply = Message(sa.spi_i, sa.spi_r, ExchangeType.IKE_SA_INIT, HeaderFlag.RESPONSE, 0, (
        SaPayload((suite.to_wire(proposal.number, ProtocolId.IKE, b""),)),
        KePayload(my_ke.group, my_ke.public_bytes),
        NoncePayload(sa.nonce_r),
        *_natd(sa.spi_i, sa.spi_r, dst, src, core),
        *([fragmentation.supported_notify()] if sa.fragmentation else []),
        *certreq_payloads(profile),
    ))
    sa.init_response = serialize_message(reply)
    sa.last_response = (sa.init_response,)
    core.sas[sa.spi_r] = sa
    core.responder_index[key] = sa.spi_r
    sa.half_open_key = key
    core.half_open.add(sa.spi_r)
    core.timers.arm(("half_open", sa.spi_r), now + HALF_OPEN_TIMEOUT)
    core.send(sa, sa.init_response)


def _with_group(suite: Suite, group: int) -> Suite:
    return replace(suite, ke_group=KeGroup(group))


def _derive(core: IkeCore, sa: IkeSa, shared: bytes) -> None:
    suite = sa.suite
    assert suite is not None and suite.prf_id is not None
    skeyseed = compute_skeyseed(suite.prf_id, sa.nonce_i, sa.nonce_r, shared, core.meter)
    sa.keys = derive_ike_keys(suite, skeyseed, sa.nonce_i, sa.nonce_r, sa.spi_i, sa.spi_r,
                              core.meter)
    sa.protect_out, sa.protect_in = make_sk_protectors(suite, sa.keys, sa.initiator, core.rng_iv,
                                                       core.meter)


def _fail(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, reason: str = "failed") -> None:
    core.complete(sa, ex, outcome)
    core.remove_ike_sa(sa, reason)


def _retry(core: IkeCore, sa: IkeSa, ex: Exchange, outcome: str, reason: str, now: float) -> None:
    core.complete(sa, ex, outcome)
    core.emit(ev.IkeSaInitRetried(**sa.ids(), reason=reason, group=int(sa.ke.group)))
    send_request(core, sa, now)


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
            core.emit(ev.ProposalRejected(**sa.ids(), local=False, exchange="IKE_SA_INIT",
                                          purpose="ike_sa_init"))
        core.remove_ike_sa(sa, "failed")
        return
    sa_payload, ke, nonce = msg.get(SaPayload), msg.get(KePayload), msg.get(NoncePayload)
    if sa_payload is None or ke is None or nonce is None or len(sa_payload.proposals) != 1:
        _fail(core, sa, ex, "INVALID_SYNTAX")
        return
    try:
        suite = Suite.from_wire(sa_payload.proposals[0])
    except PeerError as exc:
        _fail(core, sa, ex, NotifyType(exc.notify_type).name)
        return
    if int(suite.ke_group) != sa.ke.group or ke.group != sa.ke.group:
        _fail(core, sa, ex, "INVALID_KE_PAYLOAD")
        return
    try:
        shared = sa.ke.compute_shared(ke.data)
    except CryptoError:
        _fail(core, sa, ex, "INVALID_SYNTAX")
        return
    sa.spi_r = msg.spi_r
    sa.nonce_r = nonce.data
    sa.suite = suite
    sa.init_response = data
    sa.fragmentation = sa.profile.connection.ike.fragmentation and fragmentation.offered(msg)  # RFC 7383 §2.3
    _derive(core, sa, shared)
    sa.ke = None
    core.complete(sa, ex, "ok")
    _detect_nat(core, sa, msg, src, dst)
    if sa.nat_local or sa.nat_peer:
        float_to_natt(core, sa)  # RFC 7296 §2.23: IKE_AUTH on goes to port 4500
    from ikesim.ike import ike_auth

    ike_auth.start(core, sa, now)
