"""IKE_AUTH: IDs, AUTH (PSK, RFC 7427 signatures), CERT, first CHILD_SA (RFC 7296 §1.2, §2.15)."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.serialization import Encoding

from ikesim.crypto.auth import (
    load_certificate,
    psk_auth,
    sign_auth,
    signed_octets,
    verify_auth,
    verify_certificate,
)
from ikesim.crypto.suites import Suite, select_proposal
from ikesim.errors import AuthenticationFailed, PeerError, TsUnacceptable
from ikesim.ike import childless, eap_auth, ha_sync, informational, mobike, resumption
from ikesim.ike import events as ev
from ikesim.ike.certreq import certreq_payloads
from ikesim.ike.childsa import choose_child, make_child, own_selectors, selectors_within
from ikesim.ike.config import AuthMethodName
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.profile import ChildProfile, id_payload_fields, id_to_text, proposals_to_wire
from ikesim.ike.proposal_check import check_chosen_proposal
from ikesim.ike.sa import IkeSa
from ikesim.wire.iana import AuthMethod, CertEncoding, ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    AuthPayload,
    CertPayload,
    IdiPayload,
    IdPayload,
    IdrPayload,
    NotifyPayload,
    Payload,
    Proposal,
    SaPayload,
    TrafficSelector,
    TsiPayload,
    TsrPayload,
)

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore

__all__ = ["start", "handle_request", "handle_response", "finish_request", "finish_response"]


def _auth_payloads(core: IkeCore, sa: IkeSa, id_payload: IdPayload, *, as_initiator: bool
                   ) -> list[Payload]:
    """[CERT] AUTH over our signed octets (RFC 7296 §2.15)."""
    keys, suite = sa.keys, sa.suite
    assert keys is not None and suite is not None and suite.prf_id is not None
    if as_initiator:
        octets = signed_octets(sa.init_request, sa.nonce_r, suite.prf_id, keys.sk_pi,
                               id_payload.body(), core.meter)
    else:
        octets = signed_octets(sa.init_response, sa.nonce_i, suite.prf_id, keys.sk_pr,
                               id_payload.body(), core.meter)
    if sa.resumption is not None:  # RFC 5723 §4.3.3: AUTH = prf(SK_px, <message octets>), no CERT
        return [resumption.auth_payload(sa, octets, as_initiator=as_initiator, meter=core.meter)]
    creds = sa.profile.connection.credentials
    if creds.method is AuthMethodName.PSK:
        return [AuthPayload(AuthMethod.SHARED_KEY_MIC,
                            psk_auth(suite.prf_id, creds.psk, octets, core.meter))]
    method, data = sign_auth(creds.private_key, octets, core.meter)
    certs = [CertPayload(CertEncoding.X509_CERTIFICATE_SIGNATURE, c.public_bytes(Encoding.DER))
             for c in (creds.certificate, *creds.intermediates)]  # RFC 7296 §3.6: end entity first
    return [*certs, AuthPayload(method, data)]


def _verify_peer(core: IkeCore, sa: IkeSa, msg: Message, id_payload: IdPayload | None, *,
                 peer_is_initiator: bool) -> str:
    """Check the peer's identity and AUTH (RFC 7296 §2.15); return "" or the failure reason."""
    auth = msg.get(AuthPayload)
    if id_payload is None or auth is None:
        return "missing ID or AUTH payload"
    peer_id = id_to_text(id_payload)
    conn = sa.profile.connection
    if conn.remote_id is not None and peer_id != conn.remote_id:
        return f"peer identity {peer_id!r} is not {conn.remote_id!r}"
    keys, suite = sa.keys, sa.suite
    assert keys is not None and suite is not None and suite.prf_id is not None
    if peer_is_initiator:
        octets = signed_octets(sa.init_request, sa.nonce_r, suite.prf_id, keys.sk_pi,
                               id_payload.body(), core.meter)
    else:
        octets = signed_octets(sa.init_response, sa.nonce_i, suite.prf_id, keys.sk_pr,
                               id_payload.body(), core.meter)
    if sa.resumption is not None:  # RFC 5723 §4.3.3
        return resumption.verify_auth(sa, auth, peer_id, octets, peer_is_initiator=peer_is_initiator, meter=core.meter)
    creds = conn.credentials
    if creds.peer_auth() is AuthMethodName.PSK:
        if auth.method != AuthMethod.SHARED_KEY_MIC:
            return f"expected PSK AUTH, got {auth.method.name}"
        expected = psk_auth(suite.prf_id, creds.psk, octets, core.meter)
        if not hmac.compare_digest(expected, auth.data):
            return "PSK AUTH mismatch"
    else:
        cert_payloads = msg.get_all(CertPayload)
        if not cert_payloads:
            return "no certificate"
        try:
            cert, *intermediates = [load_certificate(c.data) for c in cert_payloads]
            public_key = verify_certificate(cert, creds.trust_anchors, peer_id, tuple(intermediates))
        except AuthenticationFailed as exc:
            return f"certificate: {exc}"
        if not verify_auth(auth.method, auth.data, octets, public_key, core.meter):
            return "signature AUTH does not verify"
    sa.peer_id = peer_id
    return ""


def _own_id(sa: IkeSa, cls: type[IdPayload]) -> IdPayload:
    id_type, data = id_payload_fields(sa.profile.connection.local_id)
    return cls(id_type, data)


def start(core: IkeCore, sa: IkeSa, now: float, *, without_child: bool = False) -> Exchange:
    """Send IKE_AUTH: IDi [CERT] [CERTREQ] [IDr] AUTH SA TSi TSr (RFC 7296 §1.2); without SA TSi TSr if *without_child*
    or no child is configured (RFC 6023 §3). An EAP client omits AUTH (RFC 7296 §2.16, ``ike.eap_auth``)."""
    if sa.profile.connection.credentials.method.is_eap and sa.resumption is None:  # RFC 5723 §4.3.3: no EAP
        return eap_auth.start(core, sa, now, without_child=without_child)
    idi = _own_id(sa, IdiPayload)
    inner: list[Payload] = [idi]
    auth = _auth_payloads(core, sa, idi, as_initiator=True)
    inner += auth[:-1]
    inner += certreq_payloads(sa.profile)
    conn = sa.profile.connection
    if conn.remote_id is not None:
        id_type, data = id_payload_fields(conn.remote_id)
        inner.append(IdrPayload(id_type, data))
    inner.append(auth[-1])
    child = None if without_child else sa.profile.first_child
    if child is not None:
        spi_in = core.new_child_spi()
        local_ts, remote_ts = own_selectors(sa, child)
        sa.pending_child = (child, spi_in, local_ts, remote_ts)  # the answer is checked against what we sent
        inner += [SaPayload(proposals_to_wire(child.specs, ProtocolId.ESP, spi_in, pfs=False)),
                  TsiPayload(local_ts), TsrPayload(remote_ts)]
    inner += mobike.auth_payloads(core, sa, request=True)  # RFC 4555 §3.1, §3.4
    inner += ha_sync.auth_payloads(sa, request=True)  # RFC 6311
    inner += resumption.ticket_request_payloads(sa)  # RFC 5723 §4.1
    return core.request(sa, ExchangeType.IKE_AUTH, "ike_auth", inner, now)


def _select_connection_by_idi(core: IkeCore, sa: IkeSa, idi: IdPayload | None) -> None:
    """Responder: switch to the connection whose remote identity is the IDi (RFC 7296 §2.15).

    IKE_SA_INIT carries no identity, so the responder chose a connection by
    proposal only; like strongSwan's peer-config lookup, IKE_AUTH re-selects
    among connections that accept the negotiated IKE suite, preferring an
    exact remote_id match over a wildcard one.
    """
    if idi is None or sa.suite is None:
        return
    peer_id = id_to_text(idi)
    current = sa.profile.connection
    if current.remote_id == peer_id:
        return
    offered = (sa.suite.to_wire(1, ProtocolId.IKE, b""),)
    wildcard = None
    for profile in core.responder_profiles.get(peer_id, ()):
        if select_proposal(offered, profile.ike_specs, ProtocolId.IKE) is not None:
            sa.profile = profile
            return
    for profile in core.responder_profiles.get(None, ()):
        if select_proposal(offered, profile.ike_specs, ProtocolId.IKE) is not None:
            wildcard = profile
            break
    if wildcard is not None and current.remote_id is not None:
        sa.profile = wildcard


def _refuse_childless(core: IkeCore, sa: IkeSa, msg: Message, inner: list[Payload], message_id: int) -> None:
    """Answer IDr [CERT] AUTH ... N(INVALID_SYNTAX) and delete the IKE_SA: a childless IKE_AUTH we do not allow, or a
    regular one when we allow only childless ones (RFC 6023 §3; strongSwan ``handle_childless``)."""
    inner += mobike.auth_payloads(core, sa, request=False, peer_offered=mobike.offered(msg))
    inner += ha_sync.auth_payloads(sa, request=False, msg=msg)
    inner.append(NotifyPayload(NotifyType.INVALID_SYNTAX))
    core.respond(sa, ExchangeType.IKE_AUTH, message_id, inner)
    core.emit(ev.ErrorNotifySent(**sa.ids(), notify=NotifyType.INVALID_SYNTAX.name, exchange="IKE_AUTH",
                                 message_id=message_id))
    core.remove_ike_sa(sa, "failed")


def handle_request(core: IkeCore, sa: IkeSa, msg: Message, now: float) -> None:
    """Responder: verify the initiator, answer IDr [CERT] AUTH SA TSi TSr (RFC 7296 §1.2, §2.15)."""
    _select_connection_by_idi(core, sa, msg.get(IdiPayload))
    if eap_auth.takes_request(core, sa, msg, now, _EAP_STEPS):  # RFC 7296 §2.16: no AUTH, or an EAP round
        return
    failure = _verify_peer(core, sa, msg, msg.get(IdiPayload), peer_is_initiator=True)
    if failure:
        core.respond(sa, ExchangeType.IKE_AUTH, msg.message_id,
                     [NotifyPayload(NotifyType.AUTHENTICATION_FAILED)])
        core.emit(ev.AuthFailed(**sa.ids(), by_us=True, reason=failure))
        core.remove_ike_sa(sa, "auth_failed")
        return
    idr = _own_id(sa, IdrPayload)
    finish_request(core, sa, msg, [idr, *_auth_payloads(core, sa, idr, as_initiator=False)], msg.message_id, now)


def finish_request(core: IkeCore, sa: IkeSa, msg: Message, inner: list[Payload], message_id: int, now: float) -> None:
    """Responder, the initiator authenticated: answer *inner* (IDr [CERT] AUTH) plus the first CHILD_SA for the SA TSi
    TSr of *msg* (with EAP the first request, RFC 7296 §2.16) as response *message_id*; establish (RFC 7296 §1.2)."""
    if childless.responder_refuses(sa.profile.connection.ike.childless, msg):
        _refuse_childless(core, sa, msg, inner, message_id)
        return
    child = None
    rejected = False
    sa_payload = msg.get(SaPayload)
    if sa_payload is not None:
        try:
            profile, proposal, suite, tsi, tsr = choose_child(
                sa, sa_payload, msg.get(TsiPayload), msg.get(TsrPayload), with_ke=False,
                prefer_configured=sa.profile.connection.ike.prefer_configured_proposals)
        except PeerError as exc:
            inner.append(NotifyPayload(NotifyType(exc.notify_type)))
            rejected = exc.notify_type == NotifyType.NO_PROPOSAL_CHOSEN
        else:
            spi_in = core.new_child_spi()
            child = make_child(core, sa, profile, suite, spi_in=spi_in, spi_out=proposal.spi,
                               initiator=False, nonce_i=sa.nonce_i, nonce_r=sa.nonce_r,
                               shared=None, local_ts=tsr, remote_ts=tsi, now=now)
            answer = suite.to_wire(proposal.number, ProtocolId.ESP, spi_in)
            inner += [SaPayload((answer,)), TsiPayload(tsi), TsrPayload(tsr)]
    inner += mobike.auth_payloads(core, sa, request=False, peer_offered=mobike.offered(msg))  # RFC 4555 §3.1
    inner += ha_sync.auth_payloads(sa, request=False, msg=msg)  # RFC 6311
    inner += resumption.ticket_payloads(core, sa, msg, now)  # RFC 5723 §4.2
    core.respond(sa, ExchangeType.IKE_AUTH, message_id, inner)
    core.establish(sa, now)
    mobike.process_auth(core, sa, msg)
    ha_sync.process_auth(core, sa, msg)
    resumption.process_auth(core, sa, msg, now)
    if child is not None:
        core.install_child(sa, child, now)
    elif rejected:
        core.emit(ev.ProposalRejected(**sa.ids(), by_us=True, exchange="IKE_AUTH",
                                      purpose="ike_auth"))


def _check_child_answer(profile: ChildProfile, spi_in: bytes, local_ts: tuple[TrafficSelector, ...],
                        remote_ts: tuple[TrafficSelector, ...], sa_payload: SaPayload, tsi: TsiPayload,
                        tsr: TsrPayload) -> tuple[Proposal, Suite]:
    """The first CHILD_SA's answer is a subset of our offer (RFC 7296 §3.3.6) with selectors within those we sent
    (§2.9), not within selectors computed anew: a ``dynamic`` one follows the IKE_SA's addresses, which may move."""
    offered = proposals_to_wire(profile.specs, ProtocolId.ESP, spi_in, pfs=False)
    proposal, suite = check_chosen_proposal(offered, sa_payload, protocol=ProtocolId.ESP, spi_size=4)
    if not selectors_within(tsi.selectors, local_ts) or not selectors_within(tsr.selectors, remote_ts):
        raise TsUnacceptable("response traffic selectors are not within those proposed")
    return proposal, suite


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Initiator: verify the responder, establish the IKE_SA and first CHILD_SA (RFC 7296 §1.2)."""
    if sa.eap is not None:  # RFC 7296 §2.16: an EAP round (``ike.eap_auth``)
        eap_auth.handle_response(core, sa, ex, msg, now, _EAP_STEPS)
        return
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    if msg.get(AuthPayload) is None:
        outcome = errors[0].notify_type.name if errors else "INVALID_SYNTAX"
        core.complete(sa, ex, outcome)
        if outcome == "AUTHENTICATION_FAILED":
            core.emit(ev.AuthFailed(**sa.ids(), by_us=False, reason="peer rejected our AUTH"))
            core.remove_ike_sa(sa, "auth_failed")
        else:
            core.remove_ike_sa(sa, "failed")
        return
    if errors and childless.refused(errors):
        # RFC 6023 §3: the responder refused our (non-)childless IKE_AUTH; strongSwan ``ike_auth.c`` fails the IKE_SA
        # on an error notify not about the CHILD_SA, before checking AUTH, and sends nothing.
        core.complete(sa, ex, NotifyType.INVALID_SYNTAX.name)
        core.remove_ike_sa(sa, "failed")
        return
    failure = _verify_peer(core, sa, msg, msg.get(IdrPayload), peer_is_initiator=False)
    if failure:
        core.complete(sa, ex, "AUTHENTICATION_FAILED")
        core.emit(ev.AuthFailed(**sa.ids(), by_us=True, reason=failure))
        informational.send_notification(core, sa, NotifyType.AUTHENTICATION_FAILED, now)
        core.remove_ike_sa(sa, "auth_failed")
        return
    finish_response(core, sa, ex, msg, errors, now)


def finish_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, errors: list[NotifyPayload],
                    now: float) -> None:
    """Initiator, the responder authenticated: establish the IKE_SA and the first CHILD_SA from *msg* (RFC 7296 §1.2;
    with EAP the last IKE_AUTH response, §2.16)."""
    # RFC 7296 §2.15: the IKE_SA_INIT messages are signed octets only until both AUTHs are checked; the
    # initiator never answers an IKE_SA_INIT again, so it keeps neither (the responder keeps its pair for
    # retransmitted IKE_SA_INIT requests, ``ike_sa_init.handle_request``).
    sa.init_request = sa.init_response = b""
    core.complete(sa, ex, "ok")
    core.establish(sa, now)
    mobike.process_auth(core, sa, msg)
    ha_sync.process_auth(core, sa, msg)
    resumption.process_auth(core, sa, msg, now)  # RFC 5723 §4.2: keep the ticket
    pending = sa.pending_child
    sa.pending_child = None
    if pending is None:
        childless.create_first_child(core, sa, now)  # RFC 6023 §3: a childless IKE_AUTH; none if none configured
        return
    profile, spi_in, local_ts, remote_ts = pending
    sa_payload, tsi, tsr = msg.get(SaPayload), msg.get(TsiPayload), msg.get(TsrPayload)
    if sa_payload is None or tsi is None or tsr is None:
        if any(n.notify_type == NotifyType.NO_PROPOSAL_CHOSEN for n in errors):
            core.emit(ev.ProposalRejected(**sa.ids(), by_us=False, exchange="IKE_AUTH",
                                          purpose="ike_auth"))
        return
    try:
        proposal, suite = _check_child_answer(profile, spi_in, local_ts, remote_ts, sa_payload, tsi, tsr)
    except PeerError as exc:
        # strongSwan child_create: keep the IKE_SA, delete the CHILD_SA the responder installed (RFC 7296 §1.4.1).
        core.emit(ev.ResponseRejected(**sa.ids(), exchange="IKE_AUTH", purpose="ike_auth",
                                      message_id=msg.message_id, reason=str(exc)))
        core.enqueue(sa, Work("delete_failed_child", spi=spi_in, reason="failed"), now, front=True)
        return
    child = make_child(core, sa, profile, suite, spi_in=spi_in, spi_out=proposal.spi,
                       initiator=True, nonce_i=sa.nonce_i, nonce_r=sa.nonce_r, shared=None,
                       local_ts=tsi.selectors, remote_ts=tsr.selectors, now=now)
    core.install_child(sa, child, now)


_EAP_STEPS = eap_auth.AuthSteps(_own_id, _auth_payloads, _verify_peer, finish_request, finish_response)
"""What ``ike.eap_auth`` uses of IKE_AUTH, handed in (it cannot import this module: no import cycles)."""
