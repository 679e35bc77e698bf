"""EAP methods, peer and server side: Identity, MD5, MS-CHAPv2 for real, TLS as a model (RFC 3748, RFC 2759, RFC 5216).

Sans-IO state machines over ``wire.eap.EapMessage``, following strongSwan's plugins (``eap_identity``, ``eap_md5``,
``eap_mschapv2``, ``eap_tls``): a server method ``initiate()``s and then ``process()``es each Response into the next
Request, ``SUCCESS`` or ``FAILURE``; a peer method answers each Request, or returns None when it fails. Challenges
and identifiers come from the injected ``Rng``.

EAP-TLS is a model (RFC 5216 message flow, sizes and CPU), not TLS: the handshake messages are filler of realistic
size split into fragments with the L/M flags and acknowledged one by one (RFC 5216 §2.1.5), the premaster secret is
a real X25519 exchange whose public values ride in the ClientHello/ServerKeyExchange filler, and the signatures and
certificate checks TLS would do are counted on the meter (``sign:ecdsa``, ``verify:ecdsa``) without being computed.
The MSK is HMAC-SHA256 based, 64 octets, equal on both sides (RFC 5216 §2.3 in spirit).

Session resumption (RFC 5216 §2.1.3, RFC 5246 §7.3), when both ends have a ``tls_sessions`` cache: the server puts
a session ID in its ServerHello and caches the session after EAP-Success; the client offers it in its next
ClientHello (with no key share: TLS 1.2 sends it in ClientKeyExchange, so the model does too when it offers). A
server that still has the session answers ServerHello + ChangeCipherSpec + Finished (one fragment), the client
ChangeCipherSpec + Finished, then EAP-Success: no certificates, no ECDHE, no signatures, only the Finished HMACs
(``prf`` on the meter); the MSK comes from the cached master secret and both new randoms. Otherwise the full
handshake runs, with a new session ID (RFC 5246 §7.4.1.2).
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ikesim.crypto import eap as ec
from ikesim.crypto.meter import OpCounter
from ikesim.crypto.prf import prf
from ikesim.ike.tls_sessions import TlsSession, TlsSessionCache, finished
from ikesim.rng import Rng
from ikesim.wire.eap import EapCode, EapMessage, EapType
from ikesim.wire.iana import PrfId

__all__ = ["SUCCESS", "FAILURE", "MORE", "EapPeer", "EapServer", "TlsModel", "METHOD_TYPES"]

SUCCESS, FAILURE, MORE = "success", "failure", "more"

METHOD_TYPES = {"md5": EapType.MD5, "mschapv2": EapType.MSCHAPV2, "tls": EapType.TLS}
"""Server ``eap_method`` names -> EAP Type."""

_CHALLENGE = 16
_MS_HOST = b"strongSwan"
"""strongSwan's MS-CHAPv2 authenticator name (``MSCHAPV2_HOST_NAME``); ikesim answers with the same."""
_MS_SUCCESS_MSG = b" M=Welcome2strongSwan\x00"
_MS_MAX_RETRIES = 2
_OP_CHALLENGE, _OP_RESPONSE, _OP_SUCCESS, _OP_FAILURE = 1, 2, 3, 4
_CLIENT_HELLO = 245
"""Octets of the modelled ClientHello (~250)."""
_RESUMED_FLIGHT = 150
"""Octets of ServerHello + ChangeCipherSpec + Finished of an abbreviated handshake (RFC 5246 §7.3)."""


@dataclass(frozen=True, slots=True)
class TlsModel:
    """Sizes of the modelled EAP-TLS handshake (RFC 5216), in octets of TLS records."""

    server_chain: int = 3500
    """Server Certificate message: a chain of 3 certificates (end entity, intermediate, root) is 3–4 KB."""
    client_chain: int = 1200
    """Client Certificate message (one end-entity certificate)."""
    fragment_size: int = 1024
    """Largest EAP-TLS message (strongSwan ``charon.plugins.eap-tls.fragment_size``: 1024)."""
    chain_length: int = 3
    """Certificates each side checks in the other's chain (counted as ``verify:ecdsa``)."""


def _username(identity: bytes) -> bytes:
    """MS-CHAPv2 user name: the part after a ``DOMAIN\\`` prefix (strongSwan ``extract_username``)."""
    return identity.split(b"\\", 1)[1] if b"\\" in identity else identity


def _ms(code: int, ident: int, opcode: int, ms_id: int, body: bytes) -> EapMessage:
    """RFC 2759 §3 packet inside EAP Type 26: OpCode | MS-CHAPv2-ID | MS-Length | body."""
    return EapMessage(code, ident, EapType.MSCHAPV2, struct.pack("!BBH", opcode, ms_id, 4 + len(body)) + body)


@dataclass(slots=True)
class _TlsSide:
    """One side of the modelled EAP-TLS handshake: outgoing flight in fragments, incoming flight reassembled."""

    rng: Rng
    model: TlsModel
    meter: OpCounter | None
    key: X25519PrivateKey | None = None
    random: bytes = b""
    outgoing: list[bytes] = field(default_factory=list)
    total: int = 0
    received: bytearray = field(default_factory=bytearray)
    first: bool = True

    def flight(self, body: bytes) -> None:
        """Split a flight of TLS records into EAP-TLS fragments (RFC 5216 §2.1.5)."""
        room = self.model.fragment_size - 10  # EAP header, Type, Flags, TLS Message Length
        self.total = len(body)
        self.outgoing = [body[i:i + room] for i in range(0, len(body), room)] or [b""]
        self.first = True

    def next_fragment(self) -> bytes:
        """Flags [TLS Message Length] Data of the next fragment: L on the first of several, M on all but the last
        (RFC 5216 §3.1)."""
        frag = self.outgoing.pop(0)
        first, self.first = self.first, False
        more = bool(self.outgoing)
        if first and more:
            return bytes((0xC0,)) + struct.pack("!I", self.total) + frag
        return bytes((0x40 if more else 0,)) + frag

    def key_share(self) -> bytes:
        """Draw the X25519 private value and return the public one (RFC 7748)."""
        self.key = X25519PrivateKey.from_private_bytes(self.rng.draw("tls_key", 32))
        if self.meter is not None:
            self.meter.add("ke_keygen:31")
        return self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def premaster(self, peer_public: bytes) -> bytes:
        """The X25519 shared secret (RFC 7748 §6.1)."""
        assert self.key is not None
        if self.meter is not None:
            self.meter.add("ke_shared:31")
        return self.key.exchange(X25519PublicKey.from_public_bytes(peer_public))


def _tls_msk(premaster: bytes, client_random: bytes, server_random: bytes) -> bytes:
    """Model of RFC 5216 §2.3: 64 octets from the premaster secret and both randoms (HMAC-SHA256 expansion)."""
    seed = b"client EAP encryption" + client_random + server_random
    return b"".join(prf(PrfId.PRF_HMAC_SHA2_256, premaster, bytes((i,)) + seed) for i in (1, 2))


def _hello(random: bytes, slot: bytes, session_id: bytes, size: int) -> bytes:
    """A modelled hello flight of *size* octets: 0x16 | random | 32-octet slot (key share, or the server Finished of
    an abbreviated handshake) | session_id<0..32> | filler (RFC 5246 §7.4.1.2, §7.4.1.3)."""
    head = b"\x16" + random + slot + bytes((len(session_id),)) + session_id
    return head + bytes(size - len(head))


def _session_id(flight: bytes) -> bytes:
    """The session_id of a modelled hello flight; b"" if none (RFC 5246 §7.4.1.2)."""
    n = flight[65] if len(flight) > 65 else 0
    return flight[66:66 + n] if n <= 32 else b""


def _parse_tls(data: bytes) -> tuple[int, bytes] | None:
    """RFC 5216 §3.1: (flags, fragment) of an EAP-TLS Type-Data; None if truncated."""
    if not data:
        return None
    flags = data[0]
    if flags & 0x80:
        if len(data) < 5:
            return None
        return flags, data[5:]
    return flags, data[1:]


# ====================================================================== peer
@dataclass(slots=True)
class EapPeer:
    """The EAP peer of an IKE_AUTH initiator (RFC 7296 §2.16; strongSwan ``eap_authenticator.c`` client side)."""

    type: EapType
    identity: bytes
    secret: str
    rng: Rng
    meter: OpCounter | None = None
    tls: TlsModel = field(default_factory=TlsModel)
    state: str = "start"
    msk: bytes = b""
    """The MSK once the method succeeded; b"" for EAP-MD5 (no MSK: AUTH then uses SK_pi, strongSwan ``keymat_v2``)."""
    offer: TlsSession | None = None
    """EAP-TLS: the session offered in ClientHello (RFC 5246 §7.4.1.2), None for a full handshake."""
    session_lifetime: float = 0.0
    """EAP-TLS: seconds the session the server gives stays resumable; 0 = resumption off, none kept."""
    session: TlsSession | None = None
    """EAP-TLS: the session to keep after EAP-Success (the one resumed, or the full handshake's if it had an ID)."""
    resumed: bool = False
    """EAP-TLS: the abbreviated handshake ran (RFC 5246 §7.3)."""
    _ms: dict[str, bytes] = field(default_factory=dict)
    _tls: _TlsSide | None = None

    def process(self, req: EapMessage, now: float = 0.0) -> EapMessage | None:
        """Answer an EAP Request; None if the method failed (the caller fails IKE_AUTH)."""
        if req.type == EapType.IDENTITY:
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.IDENTITY, self.identity)
        if req.type != self.type:  # RFC 3748 §5.3.1: Nak naming the type we want
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.NAK, bytes((self.type,)))
        if self.type == EapType.MD5:
            return self._md5(req)
        if self.type == EapType.MSCHAPV2:
            return self._mschapv2(req)
        return self._tls_step(req, now)

    def _md5(self, req: EapMessage) -> EapMessage | None:
        """RFC 3748 §5.4: Value-Size | MD5(Identifier | secret | Challenge)."""
        d = req.data
        if not d or d[0] + 1 > len(d):
            return None
        value = ec.md5_chap_response(req.identifier, self.secret.encode(), d[1:1 + d[0]], self.meter)
        self.state = "answered"
        return EapMessage(EapCode.RESPONSE, req.identifier, EapType.MD5, bytes((16,)) + value)

    def _mschapv2(self, req: EapMessage) -> EapMessage | None:
        """RFC 2759 §4–§6 peer: Challenge -> Response, Success (S= checked) -> Success ack, Failure -> fail."""
        d = req.data
        if len(d) < 4:
            return None
        opcode, ms_id = d[0], d[1]
        if self.state == "start" and opcode == _OP_CHALLENGE:
            if len(d) < 4 + 1 + _CHALLENGE + 1 or d[4] != _CHALLENGE:
                return None
            auth_challenge = d[5:5 + _CHALLENGE]
            peer_challenge = self.rng.draw("eap_challenge", _CHALLENGE)
            user = _username(self.identity)
            nt = ec.generate_nt_response(auth_challenge, peer_challenge, user, self.secret, self.meter)
            self._ms["expect"] = ec.generate_authenticator_response(
                self.secret, nt, peer_challenge, auth_challenge, user, self.meter).encode()
            self._ms["msk"] = ec.mschapv2_msk(self.secret, nt, self.meter)
            self.state = "responded"
            body = bytes((49,)) + peer_challenge + bytes(8) + nt + b"\x00" + self.identity
            return _ms(EapCode.RESPONSE, req.identifier, _OP_RESPONSE, ms_id, body)
        if self.state == "responded" and opcode == _OP_SUCCESS:
            message = d[4:].split(b"\x00", 1)[0]
            tokens = [t[2:] for t in message.split(b" ") if t.startswith(b"S=")]
            if not tokens or not hmac.compare_digest(b"S=" + tokens[-1].upper(), self._ms["expect"]):
                return None
            self.msk = self._ms["msk"]
            self.state = "done"
            # RFC 2759 §6 (strongSwan): the Success Response is the short header OpCode only
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.MSCHAPV2, bytes((_OP_SUCCESS,)))
        return None  # a Failure (strongSwan never retries) or anything unexpected

    def _tls_step(self, req: EapMessage, now: float) -> EapMessage | None:
        """RFC 5216 §2.1 peer: ClientHello after Start, acknowledge server fragments, send our flight, ack Finished."""
        parsed = _parse_tls(req.data)
        if parsed is None:
            return None
        flags, frag = parsed
        side = self._tls
        if flags & 0x20:  # Start
            side = self._tls = _TlsSide(self.rng, self.tls, self.meter)
            side.random = self.rng.draw("tls_random", 32)
            offer = self.offer  # resuming: the key share waits for ClientKeyExchange (RFC 5246 §7.4.7)
            slot = bytes(32) if offer is not None else side.key_share()
            side.flight(_hello(side.random, slot, offer.session_id if offer is not None else b"", _CLIENT_HELLO))
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.TLS, side.next_fragment())
        if side is None:
            return None
        if side.outgoing and not frag:  # server acknowledged our fragment
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.TLS, side.next_fragment())
        side.received += frag
        if flags & 0x40:  # more to come: acknowledge (RFC 5216 §2.1.5)
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.TLS, b"\x00")
        flight = bytes(side.received)
        side.received = bytearray()
        if self.state == "start":  # ServerHello..ServerHelloDone: random, key share, chain
            if len(flight) < 65:
                return None
            server_random, server_public = flight[1:33], flight[33:65]
            offer, session_id = self.offer, _session_id(flight)
            if offer is not None and session_id == offer.session_id:
                return self._tls_resumed(req, side, offer, flight)
            if self.meter is not None:  # certificate chain and ServerKeyExchange signature; our CertificateVerify
                self.meter.add("verify:ecdsa", self.tls.chain_length + 1)
                self.meter.add("sign:ecdsa")
            public = side.key_share() if side.key is None else b""  # the share our ClientHello did not carry
            master = side.premaster(server_public)
            self.msk = _tls_msk(master, side.random, server_random)
            if session_id and self.session_lifetime > 0:  # RFC 5246 §7.4.1.2: the server's new session
                self.session = TlsSession(session_id, master, self.identity, now + self.session_lifetime)
            self.state = "finished"
            # Certificate, ClientKeyExchange, CertificateVerify, ChangeCipherSpec, Finished
            side.flight(b"\x16" + public + bytes(self.tls.client_chain + 200 - len(public)))
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.TLS, side.next_fragment())
        if self.state == "finished":  # server CCS + Finished: acknowledge with an empty message
            self.state = "done"
            return EapMessage(EapCode.RESPONSE, req.identifier, EapType.TLS, b"\x00")
        return None

    def _tls_resumed(self, req: EapMessage, side: _TlsSide, offer: TlsSession, flight: bytes) -> EapMessage | None:
        """RFC 5246 §7.3 abbreviated handshake, client: check the server's Finished, answer ChangeCipherSpec +
        Finished; the MSK from the cached master secret and both new randoms (RFC 5216 §2.1.3)."""
        server_random = flight[1:33]
        if self.meter is not None:
            self.meter.add("prf", 2)  # the server's Finished checked, ours computed
        if not hmac.compare_digest(flight[33:45], finished(offer.master, b"server finished", side.random,
                                                           server_random)):
            return None
        self.msk = _tls_msk(offer.master, side.random, server_random)
        self.session, self.resumed, self.state = offer, True, "resumed"
        side.flight(b"\x14" + finished(offer.master, b"client finished", side.random, server_random) + bytes(38))
        return EapMessage(EapCode.RESPONSE, req.identifier, EapType.TLS, side.next_fragment())


# ====================================================================== server
@dataclass(slots=True)
class EapServer:
    """The EAP server of an IKE_AUTH responder (strongSwan ``eap_authenticator.c`` server side and the methods)."""

    type: EapType
    users: dict[str, str]
    rng: Rng
    identity_request: bool
    peer_identity: bytes
    """The EAP identity: IDi until an EAP-Identity Response names another."""
    meter: OpCounter | None = None
    tls: TlsModel = field(default_factory=TlsModel)
    current: int = 0
    """EAP Type of the method running (IDENTITY first if asked for)."""
    identifier: int = 0
    state: str = "start"
    msk: bytes = b""
    retries: int = 0
    sessions: TlsSessionCache | None = None
    """EAP-TLS: the daemon's session cache when resumption is on (``ike.tls_sessions``); None: no session IDs."""
    session_lifetime: float = 3600.0
    """EAP-TLS: seconds a session the server caches stays resumable."""
    resumed: bool = False
    """EAP-TLS: the abbreviated handshake ran (RFC 5246 §7.3)."""
    _challenge: bytes = b""
    _ms_id: int = 0
    _tls: _TlsSide | None = None
    _client_random: bytes = b""
    _master: bytes = b""
    _session_id: bytes = b""

    def _new_identifier(self) -> int:
        """A non-zero random identifier, as strongSwan's methods draw (``random()``)."""
        while True:
            ident = self.rng.draw("eap_identifier", 1)[0]
            if ident:
                return ident

    def initiate(self) -> EapMessage:
        """The first Request: EAP-Identity if configured, else the method's (strongSwan ``server_initiate_eap``)."""
        if self.identity_request and self.current == 0:
            self.current = EapType.IDENTITY
            self.identifier = self._new_identifier()
            return EapMessage(EapCode.REQUEST, self.identifier, EapType.IDENTITY)
        self.current = self.type
        self.identifier = self._new_identifier()
        if self.type == EapType.MD5:
            self._challenge = self.rng.draw("eap_challenge", _CHALLENGE)
            return EapMessage(EapCode.REQUEST, self.identifier, EapType.MD5, bytes((_CHALLENGE,)) + self._challenge)
        if self.type == EapType.MSCHAPV2:
            self._challenge = self.rng.draw("eap_challenge", _CHALLENGE)
            self._ms_id = self.identifier
            return _ms(EapCode.REQUEST, self.identifier, _OP_CHALLENGE, self._ms_id,
                       bytes((_CHALLENGE,)) + self._challenge + _MS_HOST)
        return EapMessage(EapCode.REQUEST, self.identifier, EapType.TLS, b"\x20")  # EAP-TLS Start

    def _failure(self, resp: EapMessage) -> tuple[EapMessage, str]:
        return EapMessage(EapCode.FAILURE, resp.identifier), FAILURE

    def process(self, resp: EapMessage, now: float = 0.0) -> tuple[EapMessage, str]:
        """The next message for a Response and ``MORE``, ``SUCCESS`` or ``FAILURE`` (strongSwan
        ``server_process_eap``): a Nak or another type than the running one fails, so does a wrong identifier."""
        if resp.code != EapCode.RESPONSE or resp.type != self.current or resp.identifier != self.identifier:
            return self._failure(resp)
        if self.current == EapType.IDENTITY:
            if resp.data:
                self.peer_identity = resp.data
            return self.initiate(), MORE
        if self.current == EapType.MD5:
            return self._md5(resp)
        if self.current == EapType.MSCHAPV2:
            return self._mschapv2(resp)
        return self._tls_step(resp, now)

    def _secret(self, identity: bytes) -> str | None:
        return self.users.get(identity.decode("utf-8", "replace"))

    def _md5(self, resp: EapMessage) -> tuple[EapMessage, str]:
        """RFC 3748 §5.4 server: compare the response value with MD5(Identifier | secret | Challenge)."""
        d, secret = resp.data, self._secret(self.peer_identity)
        if not d or d[0] + 1 > len(d) or secret is None:
            return self._failure(resp)
        expected = ec.md5_chap_response(self.identifier, secret.encode(), self._challenge, self.meter)
        if d[0] < 16 or not hmac.compare_digest(d[1:17], expected):
            return self._failure(resp)
        return EapMessage(EapCode.SUCCESS, resp.identifier), SUCCESS

    def _mschapv2(self, resp: EapMessage) -> tuple[EapMessage, str]:
        """RFC 2759 server: check the NT-Response, send S=; a wrong one gets a retryable Failure (E=691 R=1, at most
        2 retries, strongSwan ``process_server_retry``; its 2 s sleep is not modelled); the Success ack ends it."""
        d = resp.data
        if len(d) < 1:
            return self._failure(resp)
        if self.state == "success_sent" and d[0] == _OP_SUCCESS:
            return EapMessage(EapCode.SUCCESS, resp.identifier), SUCCESS
        if self.state != "start" or d[0] != _OP_RESPONSE or len(d) < 4 + 1 + 49 or d[4] != 49:
            return self._failure(resp)
        peer_challenge, nt, name = d[5:5 + _CHALLENGE], d[5 + 24:5 + 48], d[4 + 1 + 49:]
        secret = self._secret(name)
        user = _username(name)
        if secret is not None:
            expected = ec.generate_nt_response(self._challenge, peer_challenge, user, secret, self.meter)
            if hmac.compare_digest(expected, nt):
                self.msk = ec.mschapv2_msk(secret, nt, self.meter)
                s = ec.generate_authenticator_response(secret, nt, peer_challenge, self._challenge, user, self.meter)
                self.state = "success_sent"
                self.identifier = (self.identifier + 1) % 256
                return _ms(EapCode.REQUEST, self.identifier, _OP_SUCCESS, self._ms_id, s.encode() + _MS_SUCCESS_MSG), \
                    MORE
        self.retries += 1
        if self.retries > _MS_MAX_RETRIES:
            return self._failure(resp)
        self._challenge = self.rng.draw("eap_challenge", _CHALLENGE)
        self.identifier = (self.identifier + 1) % 256
        ms_id, self._ms_id = self._ms_id, (self._ms_id + 1) % 256
        return _ms(EapCode.REQUEST, self.identifier, _OP_FAILURE, ms_id,
                   b"E=691 R=1 C=" + self._challenge.hex().upper().encode()), MORE

    def _tls_step(self, resp: EapMessage, now: float) -> tuple[EapMessage, str]:
        """RFC 5216 §2.1 server: ServerHello..Done after ClientHello, acks, CCS+Finished, then EAP-Success."""
        parsed = _parse_tls(resp.data)
        if parsed is None:
            return self._failure(resp)
        flags, frag = parsed
        side = self._tls
        if side is None:
            side = self._tls = _TlsSide(self.rng, self.tls, self.meter)
        self.identifier = (self.identifier + 1) % 256
        if side.outgoing and not frag:  # the peer acknowledged our fragment
            return EapMessage(EapCode.REQUEST, self.identifier, EapType.TLS, side.next_fragment()), MORE
        side.received += frag
        if flags & 0x40:
            return EapMessage(EapCode.REQUEST, self.identifier, EapType.TLS, b"\x00"), MORE
        flight = bytes(side.received)
        side.received = bytearray()
        if self.state == "start":  # ClientHello: random and key share
            if len(flight) < 65:
                return self._failure(resp)
            self._client_random, client_public = flight[1:33], flight[33:65]
            side.random = self.rng.draw("tls_random", 32)
            offered = _session_id(flight)
            cache = self.sessions
            cached = cache.lookup(offered, self.peer_identity, now) if cache is not None and offered else None
            if cached is not None:
                return self._tls_resume(side, cached)
            public = side.key_share()
            if any(client_public):  # else it comes in ClientKeyExchange (the client offered a session)
                self._master = side.premaster(client_public)
                self.msk = _tls_msk(self._master, self._client_random, side.random)
            if self.meter is not None:
                self.meter.add("sign:ecdsa")  # ServerKeyExchange
            self._session_id = cache.new_id() if cache is not None else b""
            side.flight(_hello(side.random, public, self._session_id, 65 + self.tls.server_chain + 400))
            self.state = "hello_sent"
            return EapMessage(EapCode.REQUEST, self.identifier, EapType.TLS, side.next_fragment()), MORE
        if self.state == "hello_sent":  # client Certificate .. Finished
            if not self._master:  # the client's key share, in ClientKeyExchange
                try:
                    self._master = side.premaster(flight[1:33])
                except ValueError:  # short or low-order
                    return self._failure(resp)
                self.msk = _tls_msk(self._master, self._client_random, side.random)
            if self.meter is not None:
                self.meter.add("verify:ecdsa", self.tls.chain_length)  # client chain + CertificateVerify
            side.flight(b"\x14" + bytes(50))  # ChangeCipherSpec + Finished
            self.state = "finished_sent"
            return EapMessage(EapCode.REQUEST, self.identifier, EapType.TLS, side.next_fragment()), MORE
        if self.state == "finished_sent":
            if self.sessions is not None and self._session_id:  # resumable from now on (RFC 5246 §7.4.1.2)
                self.sessions.store(TlsSession(self._session_id, self._master, self.peer_identity,
                                               now + self.session_lifetime))
            return EapMessage(EapCode.SUCCESS, resp.identifier), SUCCESS
        if self.state == "resumed_sent":  # the client's ChangeCipherSpec + Finished
            if self.meter is not None:
                self.meter.add("prf")
            expected = finished(self._master, b"client finished", self._client_random, side.random)
            if not hmac.compare_digest(flight[1:13], expected):
                return self._failure(resp)
            return EapMessage(EapCode.SUCCESS, resp.identifier), SUCCESS
        return self._failure(resp)

    def _tls_resume(self, side: _TlsSide, session: TlsSession) -> tuple[EapMessage, str]:
        """RFC 5246 §7.3 abbreviated handshake, server: ServerHello with the cached session ID, ChangeCipherSpec and
        Finished in one flight; the MSK from the cached master secret and both new randoms (RFC 5216 §2.1.3)."""
        if self.meter is not None:
            self.meter.add("prf")  # our Finished
        self._master, self._session_id, self.resumed = session.master, session.session_id, True
        self.msk = _tls_msk(session.master, self._client_random, side.random)
        fin = finished(session.master, b"server finished", self._client_random, side.random)
        side.flight(_hello(side.random, fin + bytes(20), session.session_id, _RESUMED_FLIGHT))
        self.state = "resumed_sent"
        return EapMessage(EapCode.REQUEST, self.identifier, EapType.TLS, side.next_fragment()), MORE
