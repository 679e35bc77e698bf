"""EAP in IKE_AUTH (RFC 7296 §2.16) in the sans-IO core, as strongSwan's ``eap_authenticator.c`` and ``ike_auth.c``:
every IKE_AUTH round listed with its payloads and EAP messages, decrypted on the wire; the MSK and the AUTH values
made with it (or with SK_pi/SK_pr for EAP-MD5, which has no MSK); EAP-Failure and wrong passwords ending in
AUTHENTICATION_FAILED; unknown identities; a method mismatch answered with EAP-Nak; hostile EAP payloads."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hostile import reseal
from hypothesis import given, settings
from hypothesis import strategies as st
from ikepeers import CLIENT, CLIENT_ID, GATEWAY, GATEWAY_ID, LONG, PSK, Peers

from ikesim.crypto import eap as ec
from ikesim.crypto.auth import psk_auth, signed_octets
from ikesim.ike import events as ev
from ikesim.ike.config import AuthMethodName, ChildPolicy, Connection, Credentials, DaemonConfig, IkePolicy
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.profile import id_payload_fields
from ikesim.rng import Rng
from ikesim.sim.inspect import MessageInspector
from ikesim.types import Datagram
from ikesim.wire.codec import protect_message
from ikesim.wire.eap import EapCode, EapType, parse_eap
from ikesim.wire.iana import ExchangeType, HeaderFlag, PayloadType
from ikesim.wire.message import Message
from ikesim.wire.payloads import AuthPayload, EapPayload, IdPayload, NotifyPayload, SkPayload

USERS = (("client@sim.test", "s3cret"), ("carol", "carol-pw"))
CHILD = ChildPolicy(lifetime=LONG)

Line = tuple[str, str, int, tuple[str, ...]]
"""(sender, request|response, message ID, payloads; a notify as N(TYPE), an EAP payload as EAP(CODE/TYPE))."""


def _names(msg: Message) -> tuple[str, ...]:
    out = []
    for p in msg.payloads:
        if isinstance(p, NotifyPayload):
            out.append(f"N({p.notify_type.name})")
        elif isinstance(p, EapPayload):
            e = parse_eap(p.data)
            out.append(f"EAP({EapCode(e.code).name}/{EapType(e.type).name})" if e.type else
                       f"EAP({EapCode(e.code).name})")
        elif not isinstance(p, SkPayload):
            out.append(PayloadType(p.payload_type).name)
    return tuple(out)


@dataclass
class Wire:
    """Client and gateway joined by a hand-driven link that writes down each IKE_AUTH/INFORMATIONAL message."""

    p: Peers
    lines: list[Line] = field(default_factory=list)
    msgs: list[tuple[str, Message]] = field(default_factory=list)
    init: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.inspector = MessageInspector({"client": self.p.client, "gateway": self.p.gateway})

    def _line(self, sender: IkeDaemon, d: Datagram) -> Datagram:
        who = "client" if sender is self.p.client else "gateway"
        h = self.inspector.header(d.data)
        assert h is not None
        if h.exchange == ExchangeType.IKE_SA_INIT:
            self.init.append(h.ike)
            return d
        msg = self.inspector.open(who, h)
        names = _names(msg) if msg is not None else ("?",)
        self.lines.append((who, "response" if h.response else "request", h.message_id,
                           names if h.exchange == ExchangeType.IKE_AUTH else (h.exchange.name, *names)))
        if msg is not None:
            self.msgs.append((who, msg))
        return d

    def settle(self, now: float = 0.0) -> None:
        for _ in range(40):
            a = self.p.deliver(self.p.client, now, lambda d: self._line(self.p.client, d))
            b = self.p.deliver(self.p.gateway, now, lambda d: self._line(self.p.gateway, d))
            if not a and not b:
                return
        raise AssertionError("link did not settle")

    def eap(self, who: str) -> list:  # type: ignore[type-arg]
        """The EAP messages *who* sent, in order."""
        return [parse_eap(p.data) for w, m in self.msgs if w == who for p in m.payloads if isinstance(p, EapPayload)]

    def auth(self, who: str) -> list[bytes]:
        return [p.data for w, m in self.msgs if w == who for p in m.payloads if isinstance(p, AuthPayload)]


def make(method: AuthMethodName, server: str, *, secret: str = "s3cret", identity: str = "",
         identity_request: bool = False, aaa: bool = False, users: tuple[tuple[str, str], ...] = USERS,
         client_id: str = CLIENT_ID, seed: int = 3) -> Wire:
    """A client authenticating with *method* to a PSK gateway whose EAP server runs *server*."""
    rng = Rng(seed)
    c = Connection(name="vpn", local_id=client_id, remote_id=GATEWAY_ID, remote_addr=GATEWAY,
                   credentials=Credentials(method=method, psk=PSK, eap_secret=secret, eap_identity=identity),
                   ike=IkePolicy(lifetime=LONG), children=(CHILD,))
    g = Connection(name="vpn", local_id=GATEWAY_ID, credentials=Credentials(
        psk=PSK, eap_method=server, eap_users=users, eap_identity_request=identity_request, eap_aaa=aaa),
        ike=IkePolicy(lifetime=LONG), children=(CHILD,))
    p = Peers(IkeDaemon(DaemonConfig(name="client", addresses=(CLIENT,), connections=(c,)), rng=rng.child("client")),
              IkeDaemon(DaemonConfig(name="gateway", addresses=(GATEWAY,), connections=(g,)),
                        rng=rng.child("gateway")))
    return Wire(p)


def run(w: Wire) -> tuple[list[ev.IkeEvent], list[ev.IkeEvent]]:
    w.p.client.initiate("vpn", 0.0)
    w.settle()
    return w.p.events(w.p.client), w.p.events(w.p.gateway)


def of(events: list[ev.IkeEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


FIRST_REQ = ("IDi", "IDr", "SA", "TSi", "TSr")
LAST_RESP = ("AUTH", "SA", "TSi", "TSr")


def test_eap_md5_rounds_and_auth_with_sk_p() -> None:
    """EAP-MD5: three IKE_AUTH exchanges; no MSK, so both AUTHs are keyed with SK_pi/SK_pr (strongSwan keymat_v2)."""
    w = make(AuthMethodName.EAP_MD5, "md5")
    w.p.client.initiate("vpn", 0.0)
    w.settle()
    assert w.lines == [
        ("client", "request", 1, FIRST_REQ),
        ("gateway", "response", 1, ("IDr", "AUTH", "EAP(REQUEST/MD5)")),
        ("client", "request", 2, ("EAP(RESPONSE/MD5)",)),
        ("gateway", "response", 2, ("EAP(SUCCESS)",)),
        ("client", "request", 3, ("AUTH",)),
        ("gateway", "response", 3, LAST_RESP),
    ]
    req, = [e for e in w.eap("gateway") if e.code == EapCode.REQUEST]
    resp, = w.eap("client")
    assert resp.identifier == req.identifier and resp.data[0] == 16
    assert resp.data[1:] == ec.md5_chap_response(req.identifier, b"s3cret", req.data[1:17])
    c, g = w.p.events(w.p.client), w.p.events(w.p.gateway)
    (cc,), (gc,) = of(c, ev.EapCompleted), of(g, ev.EapCompleted)
    assert (cc.outcome, cc.rounds, cc.msk, cc.eap_identity) == ("success", 2, False, CLIENT_ID)
    assert (gc.outcome, gc.rounds, gc.msk, gc.eap_identity) == ("success", 2, False, CLIENT_ID)
    assert len(of(c, ev.IkeSaEstablished)) == len(of(g, ev.ChildSaInstalled)) == 1
    assert [e.eap_method for e in of(c, ev.EapRound) + of(g, ev.EapRound)] == ["md5"] * 3


def _expected_auths(w: Wire, msk: bytes, *, sk: bool) -> tuple[bytes, bytes]:
    """Both AUTH values recomputed from the IKE_SA_INIT messages, the keys and the MSK (RFC 7296 §2.16)."""
    keys, suite = w.keys
    idi = IdPayload(*id_payload_fields(CLIENT_ID)).body()
    idr = IdPayload(*id_payload_fields(GATEWAY_ID)).body()
    req, resp = w.init
    nonce_i, nonce_r = w.nonces
    auth_i = psk_auth(suite.prf_id, keys.sk_pi if sk else msk, signed_octets(req, nonce_r, suite.prf_id, keys.sk_pi, idi))
    auth_r = psk_auth(suite.prf_id, keys.sk_pr if sk else msk, signed_octets(resp, nonce_i, suite.prf_id, keys.sk_pr,
                                                                            idr))
    return auth_i, auth_r


def _capture_keys(w: Wire) -> None:
    """Deliver IKE_SA_INIT and the first IKE_AUTH request, then note the client's keys and nonces (read only)."""
    w.p.client.initiate("vpn", 0.0)
    w.p.deliver(w.p.client, 0.0, lambda d: w._line(w.p.client, d))
    w.p.deliver(w.p.gateway, 0.0, lambda d: w._line(w.p.gateway, d))
    (sa,) = w.p.client.sas.values()
    w.keys = (sa.keys, sa.suite)  # type: ignore[attr-defined]
    w.nonces = (sa.nonce_i, sa.nonce_r)  # type: ignore[attr-defined]
    w.settle()


def test_eap_md5_auth_values() -> None:
    """EAP-MD5's AUTHs: prf(prf(SK_pi, "Key Pad for IKEv2"), octets) and the same with SK_pr."""
    w = make(AuthMethodName.EAP_MD5, "md5")
    _capture_keys(w)
    auth_i, auth_r = _expected_auths(w, b"", sk=True)
    assert w.auth("client") == [auth_i]
    assert w.auth("gateway")[1:] == [auth_r]  # the first is the gateway's PSK AUTH


def test_eap_mschapv2_rounds_msk_and_auth() -> None:
    """EAP-MSCHAPv2: Challenge, Response, Success (S=), Success ack, EAP-Success, AUTH with the 64-octet MSK."""
    w = make(AuthMethodName.EAP_MSCHAPV2, "mschapv2")
    _capture_keys(w)
    assert w.lines == [
        ("client", "request", 1, FIRST_REQ),
        ("gateway", "response", 1, ("IDr", "AUTH", "EAP(REQUEST/MSCHAPV2)")),
        ("client", "request", 2, ("EAP(RESPONSE/MSCHAPV2)",)),
        ("gateway", "response", 2, ("EAP(REQUEST/MSCHAPV2)",)),
        ("client", "request", 3, ("EAP(RESPONSE/MSCHAPV2)",)),
        ("gateway", "response", 3, ("EAP(SUCCESS)",)),
        ("client", "request", 4, ("AUTH",)),
        ("gateway", "response", 4, LAST_RESP),
    ]
    challenge, success, done = w.eap("gateway")
    response, ack = w.eap("client")
    assert challenge.data[:4] == bytes((1, challenge.identifier, 0, 31)) and challenge.data[-10:] == b"strongSwan"
    auth_challenge = challenge.data[5:21]
    peer_challenge, nt = response.data[5:21], response.data[29:53]
    assert response.data[0] == 2 and response.data[54:] == CLIENT_ID.encode()
    assert nt == ec.generate_nt_response(auth_challenge, peer_challenge, CLIENT_ID.encode(), "s3cret")
    s = ec.generate_authenticator_response("s3cret", nt, peer_challenge, auth_challenge, CLIENT_ID.encode())
    assert success.data[0] == 3 and success.identifier == challenge.identifier + 1
    assert success.data[4:] == s.encode() + b" M=Welcome2strongSwan\x00"
    assert ack.data == b"\x03" and (done.code, done.identifier) == (EapCode.SUCCESS, ack.identifier)
    msk = ec.mschapv2_msk("s3cret", nt)
    auth_i, auth_r = _expected_auths(w, msk, sk=False)
    assert w.auth("client") == [auth_i] and w.auth("gateway")[1:] == [auth_r]
    c, g = w.p.events(w.p.client), w.p.events(w.p.gateway)
    assert [(e.outcome, e.rounds, e.msk) for e in of(c, ev.EapCompleted) + of(g, ev.EapCompleted)] == [
        ("success", 3, True), ("success", 3, True)]
    (cc,), (gc,) = of(c, ev.ChildSaInstalled), of(g, ev.ChildSaInstalled)
    assert cc.spi_in == gc.spi_out and cc.encr_key_out == gc.encr_key_in


def test_eap_identity_round_first_when_asked() -> None:
    """With ``eap_identity_request`` the gateway asks EAP-Identity first; the MS-CHAPv2 name is that identity."""
    w = make(AuthMethodName.EAP_MSCHAPV2, "mschapv2", identity="carol", secret="carol-pw", identity_request=True)
    c, g = run(w)
    assert [line[3] for line in w.lines[1:3]] == [("IDr", "AUTH", "EAP(REQUEST/IDENTITY)"), ("EAP(RESPONSE/IDENTITY)",)]
    assert w.eap("client")[0].data == b"carol"
    assert [(e.outcome, e.rounds, e.eap_identity) for e in of(g, ev.EapCompleted)] == [("success", 4, "carol")]
    assert len(of(c, ev.IkeSaEstablished)) == 1


@pytest.mark.parametrize(("method", "server", "lines_after"), [
    (AuthMethodName.EAP_MD5, "md5", [
        ("client", "request", 2, ("EAP(RESPONSE/MD5)",)),
        ("gateway", "response", 2, ("EAP(FAILURE)",)),
        ("client", "request", 3, ("INFORMATIONAL", "N(AUTHENTICATION_FAILED)"))]),
    (AuthMethodName.EAP_MSCHAPV2, "mschapv2", [
        ("client", "request", 2, ("EAP(RESPONSE/MSCHAPV2)",)),
        ("gateway", "response", 2, ("EAP(REQUEST/MSCHAPV2)",)),  # MS-CHAPv2 Failure, E=691 R=1 (retryable)
        ("client", "request", 3, ("INFORMATIONAL", "N(AUTHENTICATION_FAILED)")),
        ("gateway", "response", 3, ("INFORMATIONAL",))]),
])
def test_wrong_password_gives_authentication_failed(method: AuthMethodName, server: str,
                                                    lines_after: list[Line]) -> None:
    """A wrong password: EAP-MD5 gets EAP-Failure (no notify, the gateway deletes the IKE_SA); MS-CHAPv2 a retryable
    Failure the client does not retry; the client sends INFORMATIONAL N(AUTHENTICATION_FAILED) (strongSwan)."""
    w = make(method, server, secret="wrong")
    c, g = run(w)
    assert w.lines[2:] == lines_after
    assert [e.reason for e in of(c, ev.IkeSaDeleted)] == ["auth_failed"]
    assert [e.reason for e in of(g, ev.IkeSaDeleted)] == ["auth_failed"]
    assert of(c, ev.IkeSaEstablished) == of(g, ev.IkeSaEstablished) == []
    assert [e.outcome for e in of(c, ev.EapCompleted)] == ["failure"]
    assert [e.by_us for e in of(c, ev.AuthFailed)] == [False]
    assert [e.by_us for e in of(g, ev.AuthFailed)] == [True if server == "md5" else False]
    if server == "mschapv2":
        failure = w.eap("gateway")[1]
        assert failure.data[0] == 4 and failure.data[4:16] == b"E=691 R=1 C="


def test_unknown_identity_fails() -> None:
    """An EAP identity without a secret on the server: EAP-Failure, as a wrong password."""
    w = make(AuthMethodName.EAP_MD5, "md5", client_id="mallory@sim.test")
    c, g = run(w)
    assert w.lines[3] == ("gateway", "response", 2, ("EAP(FAILURE)",))
    assert [e.reason for e in of(g, ev.AuthFailed)] == ["EAP-md5 failed"]
    assert [e.reason for e in of(c, ev.AuthFailed)] == ["EAP-Failure"]


def test_method_mismatch_nak_then_failure() -> None:
    """The client wants MS-CHAPv2, the server offers MD5: EAP-Nak naming MSCHAPV2, then EAP-Failure (strongSwan
    ``server_process_eap``)."""
    w = make(AuthMethodName.EAP_MSCHAPV2, "md5")
    c, g = run(w)
    assert w.lines[1:4] == [("gateway", "response", 1, ("IDr", "AUTH", "EAP(REQUEST/MD5)")),
                            ("client", "request", 2, ("EAP(RESPONSE/NAK)",)),
                            ("gateway", "response", 2, ("EAP(FAILURE)",))]
    assert w.eap("client")[0].data == bytes((EapType.MSCHAPV2,))
    assert of(c, ev.IkeSaEstablished) == [] and [e.reason for e in of(g, ev.IkeSaDeleted)] == ["auth_failed"]


def test_gateway_without_eap_server_refuses_missing_auth() -> None:
    """No ``eap_method`` on the gateway: a first IKE_AUTH without AUTH gets N(AUTHENTICATION_FAILED)."""
    w = make(AuthMethodName.EAP_MD5, "")
    c, g = run(w)
    assert w.lines[1] == ("gateway", "response", 1, ("N(AUTHENTICATION_FAILED)",))
    assert [e.reason for e in of(c, ev.IkeSaDeleted)] == ["auth_failed"]


def test_aaa_backend_holds_each_answer_and_drops_retransmissions() -> None:
    """``eap_aaa``: each answer to an EAP Response waits for ``deliver_aaa``; a retransmission meanwhile is dropped."""
    w = make(AuthMethodName.EAP_MD5, "md5", aaa=True)
    c, g = run(w)
    assert [type(e).__name__ for e in g] == ["EapRound", "AaaRequested"]
    assert w.lines[-1] == ("client", "request", 2, ("EAP(RESPONSE/MD5)",))
    (req,) = of(g, ev.AaaRequested)
    assert (req.round, req.eap_identity) == (2, CLIENT_ID)
    t = w.p.client.get_timer()
    assert t == 4.0
    w.p.client.handle_timer(t)
    w.p.deliver(w.p.client, t)
    assert [e.reason for e in of(w.p.events(w.p.gateway), ev.MessageDropped)] == ["waiting for the AAA backend"]
    spi = req.spi_r  # the gateway's SPI of the connecting IKE_SA
    assert w.p.gateway.deliver_aaa(spi, 5.0) and not w.p.gateway.deliver_aaa(spi, 5.0)
    w.settle(5.0)
    assert len(of(w.p.events(w.p.client), ev.IkeSaEstablished)) == 1


def test_eap_tls_model_sizes_rounds_and_cpu() -> None:
    """EAP-TLS model: a 3.5 KB server chain in 1 KB fragments, each acknowledged; 9 IKE_AUTH exchanges; both sides
    derive the same MSK; the TLS signatures and checks are counted on the meter (RFC 5216)."""
    from ikesim.crypto.meter import OpCounter
    w = make(AuthMethodName.EAP_TLS, "tls")
    meters = OpCounter(), OpCounter()
    w.p.client.meter, w.p.gateway.meter = meters
    c, g = run(w)
    assert [e.rounds for e in of(c, ev.EapCompleted)] == [8]
    assert len(of(c, ev.IkeSaEstablished)) == 1 and len([x for x in w.lines if x[1] == "request"]) == 9
    sizes = [(e.eap_code, e.eap_size) for e in of(g, ev.EapRound)]
    assert sizes == [("REQUEST", 6), ("REQUEST", 1024), ("REQUEST", 1020), ("REQUEST", 1020), ("REQUEST", 929),
                     ("REQUEST", 6), ("REQUEST", 57), ("SUCCESS", 4)]
    client_ops, gateway_ops = (m.snapshot() for m in meters)
    assert (client_ops["sign:ecdsa"], client_ops["verify:ecdsa"], client_ops["ke_shared:31"]) == (1, 4, 2)
    assert (gateway_ops["sign:ecdsa"], gateway_ops["verify:ecdsa"], gateway_ops["ke_shared:31"]) == (1, 3, 2)


def _hostile(w: Wire, data: bytes) -> tuple[list[ev.IkeEvent], list[ev.IkeEvent]]:
    """Replace the client's second IKE_AUTH request by one with EAP payload *data*, sealed with the client's keys."""
    w.p.client.initiate("vpn", 0.0)
    for _ in range(2):
        w.p.deliver(w.p.client, 0.0)
        w.p.deliver(w.p.gateway, 0.0)
    w.p.client.datagrams_to_send(0.0)  # the real round-2 request is lost
    (sa,) = w.p.client.sas.values()
    head = Message(sa.spi_i, sa.spi_r, ExchangeType.IKE_AUTH, HeaderFlag.INITIATOR, 2)
    w.p.gateway.receive_datagram(protect_message(head, (EapPayload(data),), sa.protect_out), CLIENT, GATEWAY, 0.0)
    w.p.deliver(w.p.gateway, 0.0)
    return w.p.events(w.p.client), w.p.events(w.p.gateway)


@pytest.mark.parametrize("data", [b"", b"\x02", b"\x02\x01\x00\x09\x04", b"\x03\x01\x00\x05\x00", b"\x09\x01\x00\x04",
                                  b"\x02\x01\x00\x04"])
def test_hostile_eap_payload_is_invalid_syntax(data: bytes) -> None:
    """A malformed EAP payload in an authenticated request: N(INVALID_SYNTAX) answered, no exception."""
    w = make(AuthMethodName.EAP_MD5, "md5")
    c, g = _hostile(w, data)
    assert [e.notify for e in of(g, ev.ErrorNotifySent)] == ["INVALID_SYNTAX"]


@pytest.mark.parametrize("data", [
    b"\x02\x00\x00\x05\x04",  # MD5 response without a value, wrong identifier
    b"\x01\x01\x00\x05\x04",  # a Request from the client
    b"\x03\x01\x00\x04",  # a Success from the client
])
def test_hostile_eap_message_is_eap_failure(data: bytes) -> None:
    """Well-formed but wrong EAP from the client: EAP-Failure and the IKE_SA deleted (strongSwan server_process_eap)."""
    w = make(AuthMethodName.EAP_MD5, "md5")
    c, g = _hostile(w, data)
    assert [e.reason for e in of(g, ev.IkeSaDeleted)] == ["auth_failed"]
    assert [(e.eap_code, e.round) for e in of(g, ev.EapRound)][-1] == ("FAILURE", 2)


def test_hostile_eap_request_to_the_client_fails_it() -> None:
    """A truncated MD5 challenge in the gateway's first response: the client's method fails, AUTHENTICATION_FAILED."""
    from ikesim.ike.eap_methods import EapPeer
    from ikesim.wire.eap import EapMessage
    peer = EapPeer(EapType.MD5, b"me", "pw", Rng(1))
    assert peer.process(EapMessage(EapCode.REQUEST, 1, EapType.MD5, b"\x10abc")) is None
    ms = EapPeer(EapType.MSCHAPV2, b"me", "pw", Rng(1))
    assert ms.process(EapMessage(EapCode.REQUEST, 1, EapType.MSCHAPV2, b"\x01")) is None
    assert ms.process(EapMessage(EapCode.REQUEST, 1, EapType.MSCHAPV2, b"\x03\x01\x00\x10S=00")) is None
    tls = EapPeer(EapType.TLS, b"me", "pw", Rng(1))
    assert tls.process(EapMessage(EapCode.REQUEST, 1, EapType.TLS, b"")) is None
    assert tls.process(EapMessage(EapCode.REQUEST, 1, EapType.TLS, b"\x80\x00")) is None


def _eap_bytes() -> st.SearchStrategy[bytes]:
    """Random bytes, and EAP packets with a consistent Length and random Code/Type/data (past the framing checks)."""
    framed = st.builds(lambda code, ident, typ, data: bytes((code, ident)) + (5 + len(data)).to_bytes(2, "big")
                       + bytes((typ,)) + data, st.integers(0, 6), st.integers(0, 255),
                       st.sampled_from([1, 3, 4, 13, 26, 0, 255]), st.binary(max_size=80))
    return st.one_of(st.binary(max_size=60), framed)


@settings(max_examples=150, deadline=None)
@given(data=_eap_bytes(), method=st.sampled_from([AuthMethodName.EAP_MD5, AuthMethodName.EAP_MSCHAPV2,
                                                   AuthMethodName.EAP_TLS]))
def test_fuzzed_eap_never_escapes(data: bytes, method: AuthMethodName) -> None:
    """Any EAP payload, authenticated, in the client's second request or in the gateway's first response: each side
    answers, fails the IKE_SA or drops; no exception leaves ``receive_datagram``."""
    server = {AuthMethodName.EAP_MD5: "md5", AuthMethodName.EAP_MSCHAPV2: "mschapv2", AuthMethodName.EAP_TLS: "tls"}
    w = make(method, server[method])
    _hostile(w, data)  # at the gateway
    w = make(method, server[method])
    w.p.client.initiate("vpn", 0.0)
    w.p.deliver(w.p.client, 0.0)
    w.p.deliver(w.p.gateway, 0.0)
    w.p.deliver(w.p.client, 0.0)
    (resp,) = w.p.gateway.datagrams_to_send(0.0)
    bad = reseal(w.p.gateway, w.p.client, resp,
                 lambda ps: [EapPayload(data) if isinstance(p, EapPayload) else p for p in ps])
    w.p.client.receive_datagram(bad.data, bad.src, bad.dst, 0.0)
    c = w.p.events(w.p.client)
    assert of(c, ev.IkeSaEstablished) == []
    assert of(c, ev.IkeSaDeleted) or of(c, ev.ExchangeStarted) or of(c, ev.ResponseRejected)
