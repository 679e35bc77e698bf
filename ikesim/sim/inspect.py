"""Look inside an IKE datagram in flight: header fields and, decrypted, what it carries (RFC 7296 §3).

Fault scripts (``ikesim.sim.faults``) pick messages by what they carry, for
example a REKEY_SA notify or a Delete payload, which sit inside the
encrypted SK payload. The inspector decrypts with protectors of its own,
built from the sending node's IKE_SA keys (the network-side view a
Wireshark key table gives); it never uses a daemon's protectors, so
inspecting costs the daemons no crypto operations and draws nothing from
their random streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ikesim.crypto.sk import SkProtector
from ikesim.errors import IkesimError
from ikesim.rng import Rng
from ikesim.wire.codec import parse_message, peek_header, unprotect_message
from ikesim.wire.iana import ExchangeType, HeaderFlag, NotifyType, PayloadType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import DeletePayload, NotifyPayload, Payload, SkPayload

if TYPE_CHECKING:
    from ikesim.ike.daemon import IkeDaemon

__all__ = ["Header", "MessageInspector", "CARRY_NAMES", "carry_names"]

NON_ESP_MARKER = bytes(4)
"""RFC 3948 §2.2: IKE on UDP 4500 is preceded by four zero octets."""

_DELETE_NAMES = {"DELETE", "DELETE_CHILD", "DELETE_IKE"}


def _carry_universe() -> frozenset[str]:
    notify = {n.name for n in NotifyType}
    payload = {p.name for p in PayloadType if p.name not in ("NONE", "SK", "SKF")}
    return frozenset(notify | payload | _DELETE_NAMES)


CARRY_NAMES = _carry_universe()
"""Everything ``carries`` may name: a notify type (REKEY_SA, TEMPORARY_FAILURE ...), a payload type
(KE, NONCE, SA, TSi ...), DELETE (any Delete payload), DELETE_CHILD (ESP/AH) or DELETE_IKE."""


@dataclass(frozen=True, slots=True)
class Header:
    """The cleartext IKE header fields a fault rule can match (RFC 7296 §3.1)."""

    spi_i: bytes
    spi_r: bytes
    exchange: ExchangeType
    response: bool
    from_initiator: bool
    """I flag: sent by the original initiator of the IKE_SA."""
    message_id: int
    ike: bytes
    """The IKE message (without a non-ESP marker)."""


def carry_names(payloads: tuple[Payload, ...]) -> frozenset[str]:
    """Names of the payloads, notify types and Delete kinds in *payloads* (see ``CARRY_NAMES``)."""
    names: set[str] = set()
    for p in payloads:
        if isinstance(p, NotifyPayload):
            names.update((NotifyType(p.notify_type).name, "NOTIFY"))
        elif isinstance(p, DeletePayload):
            names.update(("DELETE", "DELETE_IKE" if p.protocol == ProtocolId.IKE else "DELETE_CHILD"))
        else:
            names.add(PayloadType(p.payload_type).name)
    return frozenset(names)


class MessageInspector:
    """Parses datagrams and decrypts their SK payload with keys looked up on the sending node."""

    def __init__(self, daemons: dict[str, IkeDaemon]) -> None:
        self._daemons = daemons
        self._protectors: dict[tuple[bytes, bytes, bool], SkProtector] = {}
        """(spi_i, spi_r, from initiator) -> a protector opening that direction."""
        self._rng = Rng(0, "inspector")  # only for the protector's unused seal(); never a daemon's stream

    @staticmethod
    def header(data: bytes) -> Header | None:
        """The IKE header of *data*, or None for anything that is not an IKE message (ESP, garbage)."""
        ike = data[4:] if data[:4] == NON_ESP_MARKER else data
        try:
            spi_i, spi_r, xchg, flags, mid = peek_header(ike)
        except IkesimError:
            return None
        return Header(spi_i, spi_r, ExchangeType(xchg), bool(flags & HeaderFlag.RESPONSE),
                      bool(flags & HeaderFlag.INITIATOR), mid, ike)

    def open(self, sender: str, h: Header) -> Message | None:
        """The message with its SK payload decrypted (None if it cannot be parsed or its keys are unknown)."""
        try:
            msg = parse_message(h.ike)
        except IkesimError:
            return None
        if not msg.payloads or type(msg.payloads[-1]) is not SkPayload:
            return msg
        protector = self._protector(sender, h)
        if protector is None:
            return None
        try:
            return unprotect_message(h.ike, protector, outer=msg)
        except IkesimError:
            return None

    def carries(self, sender: str, h: Header) -> frozenset[str] | None:
        """What the message carries, decrypted (None if it cannot be parsed or its keys are unknown)."""
        msg = self.open(sender, h)
        return None if msg is None else carry_names(msg.payloads)

    def _protector(self, sender: str, h: Header) -> SkProtector | None:
        key = (h.spi_i, h.spi_r, h.from_initiator)
        p = self._protectors.get(key)
        if p is not None:
            return p
        daemon = self._daemons.get(sender)
        if daemon is None:
            return None
        local_spi = h.spi_i if h.from_initiator else h.spi_r
        sa = daemon.sas.get(local_spi)
        if sa is None and local_spi in daemon.closed:
            sa = daemon.closed[local_spi][0]
        if sa is None or sa.keys is None or sa.suite is None or (sa.spi_i, sa.spi_r) != (h.spi_i, h.spi_r):
            return None
        k = sa.keys
        sk_e, sk_a = (k.sk_ei, k.sk_ai) if h.from_initiator else (k.sk_er, k.sk_ar)
        p = SkProtector(sa.suite, sk_e, sk_a, self._rng, meter=None)
        self._protectors[key] = p
        return p
