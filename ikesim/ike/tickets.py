"""Session resumption tickets: IKE_SA state sealed by the gateway under a rotating key (RFC 5723 §4, §6.3, Appendix A).

A ticket follows RFC 5723 Appendix A.1 ("ticket by value"): an authenticated header, then the encrypted state.

    format_version (1) = 1 | reserved (3) = 0 | key_id (8) | IV (12) | AES-256-GCM(state) | ICV (16)

The header is the AEAD's associated data. ``key_id`` is the number of the rotation period the key was used in: the
key of period *n* is ``HMAC-SHA256(secret, "ikesim ticket key" | n)``, so members of a cluster that share the secret
(``DaemonConfig.ticket_secret``) derive the same keys without exchanging them, and a restarted gateway that kept it
still opens its tickets (RFC 5723 §6.3 leaves key management to the gateway; this is the decision). A key issues
tickets for ``ticket_key_rotation`` seconds and is accepted while a ticket it sealed may still be valid.

The state (Appendix A.1's ``ikev2_state``, with what ikesim needs to re-create the CHILD_SAs) is a sequence of
length-prefixed fields; a ticket that does not parse is rejected like a forged one, never an exception.
"""

from __future__ import annotations

import hmac
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["TicketState", "TicketKeys", "InvalidTicket", "encode_state", "decode_state", "HEADER_SIZE", "ICV_SIZE"]

FORMAT_VERSION = 1
"""RFC 5723 Appendix A.1: ``format_version`` 1."""
_HEADER = struct.Struct(">B3xQ")
IV_SIZE = 12
ICV_SIZE = 16
HEADER_SIZE = _HEADER.size + IV_SIZE
_LABEL = b"ikesim ticket key"
_TIMES = struct.Struct(">dd")


class InvalidTicket(Exception):
    """A ticket the gateway does not accept (RFC 5723 §4.3.2: answered N(TICKET_NACK)); ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class TicketState:
    """What a ticket carries (RFC 5723 Appendix A.1 ``ikev2_state``): IDs, SPIs, the IKE suite, SK_d, auth, expiry."""

    connection: str
    id_i: str
    id_r: str
    spi_i: bytes
    spi_r: bytes
    auth_method: str
    """The initiator's authentication method in the original IKE_AUTH (``psk``, ``pubkey``, ...)."""
    transforms: tuple[tuple[int, int, int], ...]
    """The IKE_SA's suite as (transform type, transform id, key length or 0) (Appendix A.1: "the full SAr payload")."""
    sk_d: bytes
    children: tuple[str, ...]
    """Child configurations the client had when the ticket was issued (re-created after resumption, §5)."""
    issued_at: float
    expires_at: float


def _put(out: list[bytes], data: bytes) -> None:
    out.append(struct.pack(">H", len(data)))
    out.append(data)


def encode_state(state: TicketState) -> bytes:
    """The plaintext of a ticket (RFC 5723 Appendix A.1): length-prefixed fields, then the two times."""
    out: list[bytes] = []
    for text in (state.connection, state.id_i, state.id_r, state.auth_method):
        _put(out, text.encode())
    _put(out, state.spi_i)
    _put(out, state.spi_r)
    _put(out, state.sk_d)
    _put(out, b"".join(struct.pack(">BHH", t, i, k) for t, i, k in state.transforms))
    _put(out, "\n".join(state.children).encode())
    out.append(_TIMES.pack(state.issued_at, state.expires_at))
    return b"".join(out)


def decode_state(data: bytes) -> TicketState:
    """Parse ``encode_state``'s output; InvalidTicket("malformed state") on anything else (RFC 5723 §4.3.2)."""
    fields: list[bytes] = []
    o = 0
    try:
        for _ in range(9):
            (n,) = struct.unpack_from(">H", data, o)
            o += 2
            if o + n > len(data):
                raise InvalidTicket("malformed state")
            fields.append(data[o:o + n])
            o += n
        if len(data) - o != _TIMES.size:
            raise InvalidTicket("malformed state")
        issued, expires = _TIMES.unpack_from(data, o)
        connection, id_i, id_r, auth = (f.decode() for f in fields[:4])
        raw = fields[7]
        if len(raw) % 5 or len(fields[4]) != 8 or len(fields[5]) != 8 or not fields[6]:
            raise InvalidTicket("malformed state")
        transforms = tuple(struct.unpack_from(">BHH", raw, k) for k in range(0, len(raw), 5))
        children = tuple(fields[8].decode().split("\n")) if fields[8] else ()
    except (struct.error, UnicodeDecodeError) as exc:
        raise InvalidTicket("malformed state") from exc
    return TicketState(connection, id_i, id_r, fields[4], fields[5], auth, transforms, fields[6], children,
                       issued, expires)


class TicketKeys:
    """The gateway's ticket keys, one per rotation period, derived from its secret (RFC 5723 §6.3, Appendix A.1)."""

    def __init__(self, secret: bytes, rotation: float, accept: float) -> None:
        self.secret = secret
        self.rotation = rotation
        """Seconds one key issues tickets."""
        self.accept = accept
        """Seconds a key is accepted after its period ends: the longest ticket lifetime of the gateway."""
        self._aeads: dict[int, AESGCM] = {}

    def key_id(self, now: float) -> int:
        """The period that issues tickets at *now* (RFC 5723 Appendix A.1 ``key_id``)."""
        return int(now // self.rotation)

    def _aead(self, key_id: int) -> AESGCM:
        aead = self._aeads.get(key_id)
        if aead is None:
            if len(self._aeads) > 16:
                self._aeads.clear()
            key = hmac.digest(self.secret, _LABEL + key_id.to_bytes(8, "big"), "sha256")
            aead = self._aeads[key_id] = AESGCM(key)
        return aead

    def seal(self, state: TicketState, iv: bytes, now: float) -> bytes:
        """Encrypt *state* under the current key with *iv* (12 octets, never reused under one key)."""
        header = _HEADER.pack(FORMAT_VERSION, self.key_id(now)) + iv
        return header + self._aead(self.key_id(now)).encrypt(iv, encode_state(state), header)

    def open(self, ticket: bytes, now: float) -> TicketState:
        """Check and decrypt a ticket (RFC 5723 §4.3.2): InvalidTicket with the reason if the key is unknown or
        retired, the ICV fails (another key, tampered), the state does not parse or the ticket has expired."""
        if len(ticket) < HEADER_SIZE + ICV_SIZE:
            raise InvalidTicket("malformed ticket")
        version, key_id = _HEADER.unpack_from(ticket)
        if version != FORMAT_VERSION:
            raise InvalidTicket(f"ticket format {version}")
        current = self.key_id(now)
        if key_id > current:
            raise InvalidTicket("unknown ticket key")
        if (key_id + 1) * self.rotation + self.accept < now:
            raise InvalidTicket("ticket key retired")
        header, iv = ticket[:HEADER_SIZE], ticket[_HEADER.size:HEADER_SIZE]
        try:
            plain = self._aead(key_id).decrypt(iv, ticket[HEADER_SIZE:], header)
        except InvalidTag as exc:
            raise InvalidTicket("ticket integrity check failed") from exc
        state = decode_state(plain)
        if state.expires_at <= now:
            raise InvalidTicket("ticket expired")
        return state
