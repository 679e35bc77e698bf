"""EAP in IKE_AUTH: the multi-round exchange and the AUTH payloads made with the MSK (RFC 7296 §2.16).

As strongSwan (``eap_authenticator.c``, ``ike_auth.c``, ``child_create.c``):

- the initiator's first IKE_AUTH request has no AUTH: IDi [CERTREQ] [IDr] SA TSi TSr (and its notifies);
- the responder answers IDr [CERT] AUTH EAP(Request): EAP-Identity if configured, else the method's first Request;
- each further round is EAP(Response) -> EAP(Request | Success | Failure);
- after EAP-Success the initiator sends AUTH and the responder answers AUTH SA TSi TSr (and its notifies): both
  AUTHs are prf(prf(MSK, "Key Pad for IKEv2"), <signed octets>), or with SK_pi/SK_pr as the key when the method
  has no MSK (EAP-MD5; strongSwan ``keymat_v2.c`` ``get_psk_sig``);
- EAP-Failure: the responder sends it without a notify and deletes the IKE_SA; the initiator (on EAP-Failure or a
  method failure) sends INFORMATIONAL N(AUTHENTICATION_FAILED) and deletes it; the responder, still connecting,
  deletes the IKE_SA on that notify (strongSwan ``task_manager_v2.c`` -> ``ike_delete``).

An EAP server with ``eap_aaa`` waits for an AAA backend before each answer to an EAP Response: ``AaaRequested``,
then ``IkeDaemon.deliver_aaa`` (the driver's RADIUS model, ``sim.aaa``); retransmissions meanwhile are dropped.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ikesim.crypto.auth import psk_auth, signed_octets
from ikesim.errors import MalformedMessage
from ikesim.ike import events as ev
from ikesim.ike import ha_sync, informational, mobike, resumption
from ikesim.ike.certreq import certreq_payloads
from ikesim.ike.childsa import own_selectors
from ikesim.ike.config import AuthMethodName
from ikesim.ike.eap_methods import FAILURE, METHOD_TYPES, MORE, SUCCESS, EapPeer, EapServer, TlsModel
from ikesim.ike.profile import id_payload_fields, id_to_text, proposals_to_wire
from ikesim.ike.tls_sessions import session_cache
from ikesim.wire.eap import EapCode, EapMessage, EapType, parse_eap
from ikesim.wire.iana import AuthMethod, ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import (
    AuthPayload,
    EapPayload,
    IdiPayload,
    IdrPayload,
    NotifyPayload,
    Payload,
    SaPayload,
    TsiPayload,
    TsrPayload,
)

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.exchange import Exchange
    from ikesim.ike.sa import IkeSa

__all__ = ["AuthSteps", "EapSession", "start", "handle_response", "takes_request", "peer_gave_up", "deliver_aaa"]

_CHILD_ERRORS = frozenset({NotifyType.NO_PROPOSAL_CHOSEN, NotifyType.SINGLE_PAIR_REQUIRED, NotifyType.NO_ADDITIONAL_SAS,
                           NotifyType.INTERNAL_ADDRESS_FAILURE, NotifyType.FAILED_CP_REQUIRED,
                           NotifyType.TS_UNACCEPTABLE, NotifyType.INVALID_SELECTORS})
"""Error notifies that fail only the CHILD_SA, not IKE_AUTH (strongSwan ``ike_auth.c`` ``process_i``)."""

_CLIENT_TYPES = {AuthMethodName.EAP_MD5: EapType.MD5, AuthMethodName.EAP_MSCHAPV2: EapType.MSCHAPV2,
                 AuthMethodName.EAP_TLS: EapType.TLS}


@dataclass(frozen=True, slots=True)
class AuthSteps:
    """The parts of IKE_AUTH (``ike.ike_auth``) the EAP rounds use, handed in by it (RFC 7296 §1.2, §2.15)."""

    own_id: Callable[..., Any]
    auth_payloads: Callable[..., Any]
    verify_peer: Callable[..., str]
    finish_request: Callable[..., None]
    finish_response: Callable[..., None]


@dataclass(slots=True, eq=False)
class EapSession:
    """One IKE_SA's EAP conversation (``IkeSa.eap``)."""

    method: str
    peer: EapPeer | None = None
    server: EapServer | None = None
    rounds: int = 1
    id_body: bytes = b""
    """Body of the ID payload our AUTH signs: IDi (initiator) or IDr (responder)."""
    peer_id_body: bytes = b""
    first: Message | None = None
    """Responder: the first request, whose SA TSi TSr and notifies the last response answers."""
    verified: bool = False
    """Initiator: the responder's own AUTH checked (first response)."""
    complete: bool = False
    """EAP-Success sent (responder) or received and AUTH sent (initiator)."""
    pending: Message | None = None
    """Responder with AAA: the EAP Response waiting for the backend."""


def _method_name(eap_type: int) -> str:
    return {EapType.MD5: "md5", EapType.MSCHAPV2: "mschapv2", EapType.TLS: "tls"}.get(eap_type, str(eap_type))


def _eap_rng(core: IkeCore, sa: IkeSa):  # type: ignore[no-untyped-def]
    """A stream per IKE_SA for challenges and identifiers; new, so existing streams keep their bytes."""
    return core.rng.child("eap", sa.spi_i.hex())


def _msk_auth(core: IkeCore, sa: IkeSa, msk: bytes, id_body: bytes, *, initiator: bool) -> bytes:
    """RFC 7296 §2.16: AUTH = prf(prf(MSK, "Key Pad for IKEv2"), <signed octets>); SK_pi/SK_pr without an MSK."""
    keys, suite = sa.keys, sa.suite
    assert keys is not None and suite is not None and suite.prf_id is not None
    if initiator:
        octets = signed_octets(sa.init_request, sa.nonce_r, suite.prf_id, keys.sk_pi, id_body, core.meter)
        secret = msk or keys.sk_pi
    else:
        octets = signed_octets(sa.init_response, sa.nonce_i, suite.prf_id, keys.sk_pr, id_body, core.meter)
        secret = msk or keys.sk_pr
    return psk_auth(suite.prf_id, secret, octets, core.meter)


def _eap_payload(core: IkeCore, sa: IkeSa, session: EapSession, eap: EapMessage) -> EapPayload:
    """The EAP payload for *eap*, reported as an ``EapRound``."""
    data = eap.to_bytes()
    core.emit(ev.EapRound(**sa.ids(), eap_method=session.method, round=session.rounds, eap_code=EapCode(eap.code).name,
                          eap_type=EapType(eap.type).name if eap.type in EapType._value2member_map_ else
                          str(eap.type) if eap.type else "", eap_size=len(data)))
    return EapPayload(data)


def _completed(core: IkeCore, sa: IkeSa, session: EapSession, outcome: str, msk: bytes, identity: bytes, *,
               resumed: bool = False) -> None:
    core.emit(ev.EapCompleted(**sa.ids(), eap_method=session.method, outcome=outcome, rounds=session.rounds,
                              msk=bool(msk), eap_identity=identity.decode("utf-8", "replace"), resumed=resumed))


# ====================================================================== initiator
def start(core: IkeCore, sa: IkeSa, now: float, *, without_child: bool = False) -> Exchange:
    """Send the first IKE_AUTH request without AUTH: IDi [CERTREQ] [IDr] SA TSi TSr (RFC 7296 §2.16)."""
    conn = sa.profile.connection
    creds = conn.credentials
    id_type, data = id_payload_fields(conn.local_id)
    idi = IdiPayload(id_type, data)
    inner: list[Payload] = [idi, *certreq_payloads(sa.profile)]
    if conn.remote_id is not None:
        r_type, r_data = id_payload_fields(conn.remote_id)
        inner.append(IdrPayload(r_type, r_data))
    child = None if without_child else sa.profile.first_child
    if child is not None:
        spi_in = core.new_child_spi()
        local_ts, remote_ts = own_selectors(sa, child)
        sa.pending_child = (child, spi_in, local_ts, remote_ts)
        inner += [SaPayload(proposals_to_wire(child.specs, ProtocolId.ESP, spi_in, pfs=False)),
                  TsiPayload(local_ts), TsrPayload(remote_ts)]
    inner += mobike.auth_payloads(core, sa, request=True)
    inner += ha_sync.auth_payloads(sa, request=True)
    inner += resumption.ticket_request_payloads(sa)  # RFC 5723 §4.1: the ticket comes with the last response
    eap_type = _CLIENT_TYPES[creds.method]
    identity = (creds.eap_identity or conn.local_id).encode()
    peer = EapPeer(eap_type, identity, creds.eap_secret, _eap_rng(core, sa), core.meter, TlsModel(*creds.eap_tls_sizes))
    if eap_type == EapType.TLS and creds.eap_tls_resumption:  # RFC 5216 §2.1.3: offer the session we kept
        peer.offer = session_cache(core).offer(conn.name, now)
        peer.session_lifetime = creds.eap_tls_session_lifetime
    sa.eap = EapSession(_method_name(eap_type), id_body=idi.body(), peer=peer)
    return core.request(sa, ExchangeType.IKE_AUTH, "ike_auth", inner, now)


def _local_failure(core: IkeCore, sa: IkeSa, ex: Exchange, reason: str, now: float, *, by_us: bool) -> None:
    """strongSwan ``ike_auth.c`` ``local_auth_failed``/``peer_auth_failed``: INFORMATIONAL N(AUTHENTICATION_FAILED),
    then the IKE_SA is gone (RFC 7296 §2.21.2)."""
    core.complete(sa, ex, "AUTHENTICATION_FAILED")
    core.emit(ev.AuthFailed(**sa.ids(), by_us=by_us, reason=reason))
    informational.send_notification(core, sa, NotifyType.AUTHENTICATION_FAILED, now)
    core.remove_ike_sa(sa, "auth_failed")


def _next_request(core: IkeCore, sa: IkeSa, ex: Exchange, inner: list[Payload], now: float) -> None:
    """Close this round and send the next IKE_AUTH request (RFC 7296 §2.16)."""
    core.complete(sa, ex, "ok")
    core.request(sa, ExchangeType.IKE_AUTH, "ike_auth", inner, now)


def handle_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float, steps: AuthSteps) -> None:
    """Initiator: one IKE_AUTH response of the EAP conversation (RFC 7296 §2.16; strongSwan ``process_i``)."""
    session: EapSession = sa.eap
    peer = session.peer
    assert peer is not None
    errors = [n for n in msg.get_all(NotifyPayload) if n.notify_type.is_error]
    fatal = [n for n in errors if n.notify_type not in _CHILD_ERRORS]
    if fatal:  # strongSwan: an error notify not about the CHILD_SA fails the IKE_SA, nothing sent
        outcome = fatal[0].notify_type.name
        core.complete(sa, ex, outcome)
        if outcome == "AUTHENTICATION_FAILED":
            core.emit(ev.AuthFailed(**sa.ids(), by_us=False, reason="peer rejected our AUTH"))
        core.remove_ike_sa(sa, "auth_failed" if outcome == "AUTHENTICATION_FAILED" else "failed")
        return
    if session.complete:  # the last response: the responder's AUTH with the MSK, and the CHILD_SA
        auth = msg.get(AuthPayload)
        expected = _msk_auth(core, sa, peer.msk, session.peer_id_body, initiator=False)
        if auth is None or not hmac.compare_digest(auth.data, expected):
            _local_failure(core, sa, ex, "EAP AUTH of the responder does not verify", now, by_us=True)
            return
        sa.eap = None
        steps.finish_response(core, sa, ex, msg, errors, now)
        return
    if not session.verified:  # the first response: IDr [CERT] AUTH of the responder's own method
        idr = msg.get(IdrPayload)
        failure = steps.verify_peer(core, sa, msg, idr, peer_is_initiator=False)
        if failure:
            _local_failure(core, sa, ex, failure, now, by_us=True)
            return
        assert idr is not None
        session.verified, session.peer_id_body = True, idr.body()
    payload = msg.get(EapPayload)
    if payload is None:
        _local_failure(core, sa, ex, "no EAP payload", now, by_us=True)
        return
    eap = parse_eap(payload.data)  # checked by wire.verify
    if eap.code == EapCode.REQUEST:
        answer = peer.process(eap, now)
        if answer is None:
            _completed(core, sa, session, FAILURE, b"", peer.identity)
            _local_failure(core, sa, ex, f"EAP-{session.method} method failed", now, by_us=False)
            return
        session.rounds += 1
        _next_request(core, sa, ex, [_eap_payload(core, sa, session, answer)], now)
        return
    if eap.code == EapCode.SUCCESS and peer.state != "start" and (peer.msk or peer.type == EapType.MD5):
        _completed(core, sa, session, SUCCESS, peer.msk, peer.identity, resumed=peer.resumed)
        if peer.session_lifetime > 0:  # keep the TLS session for the next authentication (RFC 5216 §2.1.3)
            session_cache(core).keep(sa.profile.connection.name, peer.session)
        session.complete = True
        session.rounds += 1
        data = _msk_auth(core, sa, peer.msk, session.id_body, initiator=True)
        _next_request(core, sa, ex, [AuthPayload(AuthMethod.SHARED_KEY_MIC, data)], now)
        return
    _completed(core, sa, session, FAILURE, b"", peer.identity)
    reason = "EAP-Failure" if eap.code == EapCode.FAILURE else f"unexpected EAP {EapCode(eap.code).name}"
    _local_failure(core, sa, ex, reason, now, by_us=False)


# ====================================================================== responder
def _fail_request(core: IkeCore, sa: IkeSa, msg: Message, reason: str, eap: EapPayload | None = None) -> None:
    """strongSwan ``build_r``: EAP-Failure alone, or N(AUTHENTICATION_FAILED); the IKE_SA is deleted."""
    core.respond(sa, ExchangeType.IKE_AUTH, msg.message_id,
                 [eap] if eap is not None else [NotifyPayload(NotifyType.AUTHENTICATION_FAILED)])
    if eap is None:
        core.emit(ev.ErrorNotifySent(**sa.ids(), notify="AUTHENTICATION_FAILED", exchange="IKE_AUTH",
                                     message_id=msg.message_id))
    core.emit(ev.AuthFailed(**sa.ids(), by_us=True, reason=reason))
    core.remove_ike_sa(sa, "auth_failed")


def takes_request(core: IkeCore, sa: IkeSa, msg: Message, now: float, steps: AuthSteps) -> bool:
    """Responder: handle *msg* here if it starts EAP (no AUTH, an EAP server configured) or continues it."""
    session: EapSession | None = sa.eap
    if session is None:
        creds = sa.profile.connection.credentials
        if msg.get(AuthPayload) is not None or creds.eap_method not in METHOD_TYPES:
            return False
        _begin(core, sa, msg, steps)
        return True
    if session.pending is not None:  # the AAA backend has not answered: the peer retransmitted
        src, dst = core.rx
        core.emit(ev.MessageDropped(**sa.ids(), reason="waiting for the AAA backend", src=src, dst=dst,
                                    exchange="IKE_AUTH", message_id=msg.message_id))
        return True
    session.rounds += 1
    if session.complete:
        _final(core, sa, session, msg, now, steps)
        return True
    payload = msg.get(EapPayload)
    if payload is None:
        _fail_request(core, sa, msg, "no EAP payload")
        return True
    if sa.profile.connection.credentials.eap_aaa:
        session.pending = msg
        server = session.server
        assert server is not None
        core.emit(ev.AaaRequested(**sa.ids(), eap_method=session.method, round=session.rounds,
                                  eap_identity=server.peer_identity.decode("utf-8", "replace")))
        return True
    _serve(core, sa, session, msg, payload, now)
    return True


def _begin(core: IkeCore, sa: IkeSa, msg: Message, steps: AuthSteps) -> None:
    """The first request: IDr [CERT] AUTH EAP(first Request) (RFC 7296 §2.16; strongSwan ``server_initiate_eap``)."""
    idi = msg.get(IdiPayload)
    conn = sa.profile.connection
    if idi is None:
        _fail_request(core, sa, msg, "missing IDi payload")
        return
    peer_id = id_to_text(idi)
    if conn.remote_id is not None and peer_id != conn.remote_id:
        _fail_request(core, sa, msg, f"peer identity {peer_id!r} is not {conn.remote_id!r}")
        return
    sa.peer_id = peer_id
    creds = conn.credentials
    server = EapServer(METHOD_TYPES[creds.eap_method], dict(creds.eap_users), _eap_rng(core, sa),
                       creds.eap_identity_request, peer_id.encode(), core.meter, TlsModel(*creds.eap_tls_sizes))
    if server.type == EapType.TLS and creds.eap_tls_resumption:  # RFC 5216 §2.1.3: session IDs and the cache
        server.sessions, server.session_lifetime = session_cache(core), creds.eap_tls_session_lifetime
    idr = steps.own_id(sa, IdrPayload)
    session = sa.eap = EapSession(creds.eap_method, server=server, id_body=idr.body(), peer_id_body=idi.body(),
                                  first=msg)
    inner = [idr, *steps.auth_payloads(core, sa, idr, as_initiator=False),
             _eap_payload(core, sa, session, server.initiate())]
    core.respond(sa, ExchangeType.IKE_AUTH, msg.message_id, inner)


def _serve(core: IkeCore, sa: IkeSa, session: EapSession, msg: Message, payload: EapPayload, now: float) -> None:
    """An EAP Response: answer the next Request, EAP-Success, or EAP-Failure (strongSwan ``server_process_eap``)."""
    server = session.server
    assert server is not None
    try:
        eap = parse_eap(payload.data)
    except MalformedMessage:  # wire.verify let it through only if the AAA wait came in between: never
        _fail_request(core, sa, msg, "malformed EAP payload")
        return
    answer, status = server.process(eap, now)
    out = _eap_payload(core, sa, session, answer)
    if status == MORE:
        core.respond(sa, ExchangeType.IKE_AUTH, msg.message_id, [out])
        return
    _completed(core, sa, session, status, server.msk, server.peer_identity, resumed=server.resumed)
    if status == FAILURE:
        _fail_request(core, sa, msg, f"EAP-{session.method} failed", out)
        return
    session.complete = True
    core.respond(sa, ExchangeType.IKE_AUTH, msg.message_id, [out])


def _final(core: IkeCore, sa: IkeSa, session: EapSession, msg: Message, now: float, steps: AuthSteps) -> None:
    """After EAP-Success: check the initiator's AUTH, answer AUTH SA TSi TSr (RFC 7296 §2.16)."""
    server = session.server
    assert server is not None and session.first is not None
    auth = msg.get(AuthPayload)
    expected = _msk_auth(core, sa, server.msk, session.peer_id_body, initiator=True)
    if auth is None or not hmac.compare_digest(auth.data, expected):
        _fail_request(core, sa, msg, "EAP AUTH of the initiator does not verify")
        return
    mine = _msk_auth(core, sa, server.msk, session.id_body, initiator=False)
    first = session.first
    sa.eap = None
    steps.finish_request(core, sa, first, [AuthPayload(AuthMethod.SHARED_KEY_MIC, mine)], msg.message_id, now)


def deliver_aaa(core: IkeCore, sa: IkeSa, now: float) -> bool:
    """The AAA backend answered the EAP Response *sa* waits with: answer it now (RFC 7296 §2.16); False if none."""
    session: EapSession | None = sa.eap
    if session is None or session.pending is None:
        return False
    msg, session.pending = session.pending, None
    payload = msg.get(EapPayload)
    assert payload is not None
    _serve(core, sa, session, msg, payload, now)
    return True


def peer_gave_up(core: IkeCore, sa: IkeSa, msg: Message) -> bool:
    """Responder in EAP: an INFORMATIONAL N(AUTHENTICATION_FAILED) deletes the connecting IKE_SA (strongSwan
    ``task_manager_v2.c`` -> ``ike_delete``); True if *msg* was that."""
    if sa.eap is None or sa.initiator or msg.exchange_type != ExchangeType.INFORMATIONAL or not any(
            n.notify_type == NotifyType.AUTHENTICATION_FAILED for n in msg.get_all(NotifyPayload)):
        return False
    core.respond(sa, ExchangeType.INFORMATIONAL, msg.message_id, [])
    core.emit(ev.AuthFailed(**sa.ids(), by_us=False, reason="peer failed EAP"))
    core.remove_ike_sa(sa, "auth_failed")
    return True
