"""Events the sans-IO IKE core reports through ``IkeDaemon.next_event()``.

Slotted, keyword-only dataclasses named in the past tense (STYLE.md
rule 4). They carry identifiers and values, never live objects, and no
timestamp: the driver drains them right after each call and the metrics
collector stamps simulated time and node. They are values nobody mutates,
but not ``frozen``: a frozen dataclass sets each field through
``object.__setattr__``, which makes creating one twice as slow (frozen
``__init__`` was 8.7 % of a fleet's CPU, issue 12); nothing hashes them.

One field name has one type across all events (``local`` is always an ``Address``, ``group`` always a
name): the events table puts every field in one column, and parquet needs one type per column.

SPIs are ``bytes`` (8 for IKE, 4 for ESP). ``spi_i``/``spi_r`` always name
the IKE_SA concerned; for CHILD_SAs ``spi_in`` is the SPI this node chose
(its inbound SA), ``spi_out`` the one the peer chose.

The base class and ``SaKind`` are in ``ikesim.ike.event_base``, the mobility and reconnection events in
``ikesim.ike.mobility_events``, the high-availability ones in ``ikesim.ike.ha_events``,
EAP's in ``ikesim.ike.eap_events``; every event is importable from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ikesim.ike.eap_events import AaaRequested, EapCompleted, EapRound
from ikesim.ike.event_base import IkeEvent, SaKind
from ikesim.ike.ha_events import (
    ChildSaActivated,
    HaSyncNegotiated,
    IkeSaActivated,
    MessageIdsSynchronized,
    RequestAnswered,
)
from ikesim.ike.mobility_events import (
    IkeSaMoved,
    IkeSaReauthenticating,
    IkeSaReestablishing,
    IkeSaRoaming,
    LivenessProbeFailed,
    MobikeNegotiated,
    PeerAddressesUpdated,
    ReconnectEnded,
    ReconnectStep,
    TrapReinstalled,
)
from ikesim.ike.resumption_events import IkeSaResumed, TicketIssued, TicketRejected
from ikesim.types import Address

__all__ = [
    "SaKind",
    "IkeEvent",
    "ExchangeStarted",
    "ExchangeCompleted",
    "Retransmitted",
    "MessageDropped",
    "MessageFragmented",
    "MessageReassembled",
    "IkeSaInitRetried",
    "IkeSaEstablished",
    "IkeSaDeleted",
    "ChildSaInstalled",
    "ChildSaDeleted",
    "RekeyStarted",
    "RekeyCompleted",
    "RekeyCollision",
    "ExchangeCollision",
    "ChildSaOutboundInstalled",
    "SaExpired",
    "ChildSaLimitReached",
    "AuthFailed",
    "ProposalRejected",
    "NatDetected",
    "PeerAddressChanged",
    "IkeSaMoved",
    "MobikeNegotiated",
    "PeerAddressesUpdated",
    "IkeSaRoaming",
    "DeadPeerDetected",
    "ErrorNotifyReceived",
    "ErrorNotifySent",
    "ResponseRejected",
    "CookieRequired",
    "IkeSaKeysDerived",
    "EapRound",
    "EapCompleted",
    "AaaRequested",
    "IkeSaReestablishing",
    "IkeSaReauthenticating",
    "TrapReinstalled",
    "ReconnectStep",
    "ReconnectEnded",
    "LivenessProbeFailed",
    "HaSyncNegotiated",
    "IkeSaActivated",
    "ChildSaActivated",
    "MessageIdsSynchronized",
    "RequestAnswered",
    "TicketIssued",
    "TicketRejected",
    "IkeSaResumed",
]


@dataclass(slots=True, kw_only=True)
class ExchangeStarted(IkeEvent):
    """This node sent the first transmission of a request (RFC 7296 §1)."""

    exchange: str
    """IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA or INFORMATIONAL."""
    purpose: str
    """What the exchange is for: ike_sa_init, ike_auth, create_child, rekey_child, rekey_ike,
    delete_child, delete_ike, dpd, informational, mobike (RFC 4555: path test, UPDATE_SA_ADDRESSES, address list,
    return routability check), reconnect_child, liveness_probe (``ike.reconnect``), mid_sync (RFC 6311 message ID
    synchronization after a cluster takeover, ``ike.ha_sync``), resume (IKE_SESSION_RESUME) and ticket_request (an
    INFORMATIONAL asking for a new ticket; RFC 5723, ``ike.resumption``)."""
    message_id: int
    peer: Address
    reason: str = ""
    """Why a Delete is sent: ``rekeyed``, ``redundant`` (lost a collision), ``expired``, ``deleted_locally``;
    ``recreate`` for a CHILD_SA created anew after CHILD_SA_NOT_FOUND (RFC 7296 §2.25.1) or after its hard
    volume limit (``IkeDaemon.child_sa_limit_reached``); ``reauth`` for the old IKE_SA after an address change
    without MOBIKE; ``reestablish``, ``follow``, ``reconnect``, ``liveness_probe`` for a client's reconnect
    strategies (``ike.reestablish``, ``ike.reconnect``); ``childless`` for the first CHILD_SA of a childless IKE_SA
    (RFC 6023, ``ike.childless``)."""


@dataclass(slots=True, kw_only=True)
class ExchangeCompleted(IkeEvent):
    """A request this node sent has been answered, or given up on (RFC 7296 §2.1)."""

    exchange: str
    purpose: str
    message_id: int
    outcome: str
    """``ok``, the name of an error notify received (e.g. ``NO_PROPOSAL_CHOSEN``), ``timeout``
    (no answer after the last retransmission), ``aborted`` (the IKE_SA went away), ``childless_unsupported`` (a
    ``childless = force`` initiator whose responder did not offer RFC 6023) or ``mid_sync`` (a MOBIKE request
    ended by an RFC 6311 synchronization, started again under the new message ID, ``ike.ha_sync``)."""
    retransmissions: int


@dataclass(slots=True, kw_only=True)
class Retransmitted(IkeEvent):
    """A request was sent again, byte for byte (RFC 7296 §2.1); or, ``reason`` ``mid_sync``, its payloads sealed again
    under the message ID an RFC 6311 synchronization gave it (``ike.ha_sync``)."""

    exchange: str
    purpose: str
    message_id: int
    attempt: int
    """1 for the first retransmission (a resend to a peer's new address repeats the last number)."""
    reason: str = "timeout"
    """``timeout`` (the retransmission timer), or ``peer_moved``: resent at once to the peer's new
    address (RFC 7296 §2.23), the schedule unchanged; ``local_moved``: resent at once from our new address (RFC 4555
    §3.5); ``path_test``: a MOBIKE path test's transmission on every path (RFC 4555 §3.6, every 2.5 s); ``mid_sync``:
    sealed again under the message ID an RFC 6311 synchronization gave it, attempt 0, its schedule restarted."""


@dataclass(slots=True, kw_only=True)
class MessageDropped(IkeEvent):
    """An incoming datagram was discarded; ``reason`` says why (malformed, integrity, ...)."""

    reason: str
    src: Address
    dst: Address
    exchange: str = ""
    message_id: int = -1


@dataclass(slots=True, kw_only=True)
class MessageFragmented(IkeEvent):
    """An encrypted message too large for ``fragment_size`` was sent as SKF fragments (RFC 7383 §2.5)."""

    exchange: str
    message_id: int
    fragments: int
    """Total Fragments."""
    response: bool = False
    length: int = 0
    """Bytes the message would have had unfragmented."""


@dataclass(slots=True, kw_only=True)
class MessageReassembled(IkeEvent):
    """Every SKF fragment of a message arrived and verified; it is processed as one message (RFC 7383 §2.6)."""

    exchange: str
    message_id: int
    fragments: int
    response: bool = False


@dataclass(slots=True, kw_only=True)
class IkeSaInitRetried(IkeEvent):
    """IKE_SA_INIT restarted after COOKIE or INVALID_KE_PAYLOAD (RFC 7296 §2.6, §1.2)."""

    reason: str
    """``cookie`` or ``invalid_ke``."""
    group: str
    """KE group of the retried request, named as in ``IkeSaEstablished.group`` (``modp2048``, ``x25519``)."""


@dataclass(slots=True, kw_only=True)
class IkeSaEstablished(IkeEvent):
    """An IKE_SA is established: after IKE_AUTH, or a rekeyed IKE_SA (RFC 7296 §1.2, §1.3.2)."""

    initiator: bool
    """True if this node is the original initiator of this IKE_SA."""
    local: Address
    peer: Address
    local_id: str
    peer_id: str
    encr: str
    """Negotiated transforms, strongSwan-style (``aes256gcm16``)."""
    integ: str
    prf: str
    group: str
    rekey_of: bytes | None
    """Local SPI of the IKE_SA this one replaces, for a rekey."""
    rekey_at: float | None
    """Planned soft lifetime deadline (absolute seconds), None if never."""
    expire_at: float | None
    """Planned hard lifetime deadline (absolute seconds), None if never."""
    sk_ei: bytes = field(repr=False)
    """Key material, for the Wireshark key table (RFC 7296 §2.14); SK_e includes any salt. Never in repr."""
    sk_er: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)
    encr_wireshark: str
    """Wireshark's name for the encryption algorithm (ikev2_decryption_table)."""
    integ_wireshark: str


@dataclass(slots=True, kw_only=True)
class IkeSaDeleted(IkeEvent):
    """An IKE_SA is gone from this node."""

    reason: str
    """``rekeyed``, ``deleted_locally``, ``deleted_by_peer``, ``expired``, ``timeout``
    (retransmissions exhausted), ``dpd_timeout``, ``auth_failed``, ``failed``; ``forgotten`` (dropped
    silently, no Delete: ``ikesim.ike.forget``)."""


@dataclass(slots=True, kw_only=True)
class ChildSaInstalled(IkeEvent):
    """A CHILD_SA pair is installed (RFC 7296 §1.3.1, §2.17)."""

    child: str
    """Name of the child configuration."""
    spi_in: bytes
    spi_out: bytes
    initiator: bool
    """True if this node initiated the exchange that created it."""
    encr: str
    integ: str
    pfs_group: str
    """Group used for PFS in this exchange, ``none`` if none (and for IKE_AUTH children)."""
    local_ts: str
    remote_ts: str
    outbound: bool
    """True if this node sends with it right away; False for the responder of a rekey, which switches
    outbound once the peer deletes the old SA (``ChildSaOutboundInstalled``)."""
    rekey_of: bytes | None
    """spi_in of the CHILD_SA this one replaces, for a rekey."""
    rekey_of_out: bytes | None
    """spi_out of the CHILD_SA this one replaces, for a rekey."""
    rekey_at: float | None
    expire_at: float | None
    local: Address
    peer: Address
    encr_key_in: bytes = field(repr=False)
    """ESP keys (RFC 7296 §2.17); for AEAD the salt is appended to the key. Never in repr."""
    integ_key_in: bytes = field(repr=False)
    encr_key_out: bytes = field(repr=False)
    integ_key_out: bytes = field(repr=False)


@dataclass(slots=True, kw_only=True)
class ChildSaDeleted(IkeEvent):
    """A CHILD_SA pair is gone from this node (inbound SA removed)."""

    child: str
    spi_in: bytes
    spi_out: bytes
    reason: str
    """``rekeyed``, ``deleted_locally``, ``deleted_by_peer``, ``expired``, ``ike_deleted``,
    ``redundant`` (lost a collision); ``forgotten`` (dropped silently, no Delete: ``ikesim.ike.forget``);
    ``member_crashed`` (a cluster member's state was lost, recorded by ``ikesim.sim.cluster``, never emitted by
    a daemon)."""


@dataclass(slots=True, kw_only=True)
class RekeyStarted(IkeEvent):
    """This node triggered a rekey (RFC 7296 §1.3.2, §1.3.3)."""

    kind: SaKind
    old_spi: bytes
    """CHILD: spi_in of the SA being rekeyed; IKE: this node's SPI of the IKE_SA."""
    old_spi_out: bytes
    """CHILD: spi_out of the SA being rekeyed; IKE: the peer's SPI."""
    trigger: str
    """``soft_lifetime``, ``command``, ``retry``; ``soft_bytes``, ``soft_packets``, ``soft_seq`` when the data plane
    reported a soft volume limit (``IkeDaemon.child_sa_limit_reached``)."""


@dataclass(slots=True, kw_only=True)
class RekeyCompleted(IkeEvent):
    """A rekey finished on this node: the new SA is installed (initiator or responder)."""

    kind: SaKind
    old_spi: bytes
    new_spi: bytes
    """CHILD: new spi_in; IKE: this node's SPI of the new IKE_SA."""
    initiator: bool
    collision: bool


@dataclass(slots=True, kw_only=True)
class ChildSaOutboundInstalled(IkeEvent):
    """This node now sends with a CHILD_SA it installed earlier as a rekey responder (RFC 7296 §2.8)."""

    child: str
    spi_in: bytes
    spi_out: bytes
    replaces: bytes
    """spi_in of the SA it took over from (empty if none was left)."""


@dataclass(slots=True, kw_only=True)
class RekeyCollision(IkeEvent):
    """Both peers rekeyed the same SA at once (RFC 7296 §2.8.1, §2.8.2); each peer reports it once."""

    kind: SaKind
    old_spi: bytes
    """CHILD: spi_in of the SA both rekeyed; IKE: this node's SPI of it."""
    won: bool
    """True if the new SA this node's exchange created survives."""
    redundant_spi: bytes
    """This node's SPI of the redundant SA (empty when the losing request was refused, not answered)."""
    resolution: str
    """``nonces`` (§2.8.1), ``temporary_failure`` (one rekey had finished first, §2.25.1), ``child_sa_not_found``
    (one rekey and its Delete had finished first, §2.25.1) or ``peer_deleted``."""


@dataclass(slots=True, kw_only=True)
class ExchangeCollision(IkeEvent):
    """A request met an exchange of ours on the same SA (RFC 7296 §2.25, §2.25.1, §2.25.2, §1.4.1).

    ``case``: ``rekey_vs_delete`` (rekey of an SA we are deleting: TEMPORARY_FAILURE),
    ``delete_vs_rekey`` (the peer deletes what we are rekeying), ``delete_vs_delete`` (crossing Deletes),
    ``child_vs_ike_rekey`` (a CHILD_SA exchange meets an IKE_SA rekey: TEMPORARY_FAILURE),
    ``rekey_of_unknown`` (CHILD_SA_NOT_FOUND), ``duplicate_rekey`` (the peer rekeys an SA it already
    rekeyed: TEMPORARY_FAILURE, or CHILD_SA_NOT_FOUND once the Deletes for it were exchanged),
    ``ike_closing`` (a request on an IKE_SA we are deleting or that was rekeyed),
    ``ike_rekey_vs_reauth`` (an IKE_SA rekey of an IKE_SA we reauthenticate: TEMPORARY_FAILURE, ``ike.reauth``).
    """

    case: str
    spi: bytes
    """CHILD: this node's spi_in of the SA concerned; IKE: this node's SPI."""
    spi_out: bytes = b""
    """CHILD: the peer's SPI of it (so both peers' reports name the same pair)."""


@dataclass(slots=True, kw_only=True)
class SaExpired(IkeEvent):
    """An SA reached its hard lifetime (RFC 7296 §2.8) and is removed."""

    kind: SaKind
    spi: bytes
    """CHILD: spi_in; IKE: local SPI."""


@dataclass(slots=True, kw_only=True)
class ChildSaLimitReached(IkeEvent):
    """The data plane reported that a CHILD_SA reached a soft or hard volume limit (RFC 7296 §2.8, RFC 4301
    §4.4.2.1), as the Linux kernel reports XFRM_MSG_EXPIRE to strongSwan; emitted before what it causes."""

    child: str
    spi_in: bytes
    spi_out: bytes
    counter: str
    """What reached its limit: ``bytes``, ``packets`` or ``seq`` (the sequence number space)."""
    hard: bool
    """True for the hard limit (the SA is no longer used), False for the soft one (time to rekey)."""
    handling: str
    """``rekey`` (a rekey is queued); ``expire`` (hard: never sent with again; deleted and created anew, but a
    rekeyed SA is only dropped and one being deleted only left to that Delete); or why nothing more is done:
    ``rekey_queued``, ``rekeying``, ``rekeyed``, ``deleting``, ``redundant``, ``expired``, ``ike_sa_<state>``
    (soft, on an IKE_SA that is not established)."""


@dataclass(slots=True, kw_only=True)
class AuthFailed(IkeEvent):
    """Authentication failed: ``by_us`` True when this node rejected the peer's AUTH (RFC 7296 §2.15)."""

    by_us: bool
    reason: str


@dataclass(slots=True, kw_only=True)
class ProposalRejected(IkeEvent):
    """No acceptable proposal (RFC 7296 §2.7); ``by_us`` True when this node rejected it."""

    by_us: bool
    exchange: str
    purpose: str


@dataclass(slots=True, kw_only=True)
class NatDetected(IkeEvent):
    """NAT_DETECTION_* hashes did not match (RFC 7296 §2.23)."""

    local_behind_nat: bool
    peer_behind_nat: bool


@dataclass(slots=True, kw_only=True)
class NatTraversalStarted(IkeEvent):
    """The IKE_SA moved to UDP 4500 with the non-ESP marker after NAT detection (RFC 7296 §2.23, RFC 3948)."""

    local: Address
    peer: Address
    old_local: Address
    old_peer: Address


@dataclass(slots=True, kw_only=True)
class PeerAddressChanged(IkeEvent):
    """An authenticated message came from a new peer address (RFC 7296 §2.23)."""

    old: Address
    new: Address


@dataclass(slots=True, kw_only=True)
class DeadPeerDetected(IkeEvent):
    """A liveness check got no answer (RFC 7296 §2.4)."""


@dataclass(slots=True, kw_only=True)
class ErrorNotifyReceived(IkeEvent):
    """An error notify arrived in a response or INFORMATIONAL (RFC 7296 §3.10.1)."""

    notify: str
    exchange: str
    message_id: int


@dataclass(slots=True, kw_only=True)
class ErrorNotifySent(IkeEvent):
    """This node answered a request with an error notify (RFC 7296 §2.21.2, §2.25)."""

    notify: str
    """e.g. ``TEMPORARY_FAILURE``, ``CHILD_SA_NOT_FOUND``, ``NO_PROPOSAL_CHOSEN``."""
    exchange: str
    message_id: int


@dataclass(slots=True, kw_only=True)
class ResponseRejected(IkeEvent):
    """This node refused a response and failed the exchange: e.g. a chosen proposal it did not offer
    (RFC 7296 §3.3.6: the initiator MUST check the responder's choice). Nothing is sent (as strongSwan),
    except, for a CREATE_CHILD_SA, the Delete of the CHILD_SA the responder may have installed (§1.4.1)."""

    exchange: str
    purpose: str
    message_id: int
    reason: str
    """What was wrong, e.g. ``answer proposal number 3 was not offered``."""


@dataclass(slots=True, kw_only=True)
class CookieRequired(IkeEvent):
    """The responder answered an IKE_SA_INIT request statelessly with N(COOKIE) (RFC 7296 §2.6)."""

    src: Address
    dst: Address
    threshold: str
    """``cookie_threshold`` (half-open IKE_SAs in all) or ``cookie_threshold_ip`` (from this source IP)."""
    half_open: int
    """Responder half-open IKE_SAs at the time, in all."""
    half_open_ip: int
    """... from this source IP."""
    invalid_cookie: bool = False
    """The request carried a COOKIE, but not one this responder made for it (or it is too old)."""


@dataclass(slots=True, kw_only=True)
class IkeSaKeysDerived(IkeEvent):
    """IKE_SA_INIT derived this IKE_SA's keys (RFC 7296 §2.14), before IKE_AUTH: a failing IKE_AUTH is still decryptable.

    Rekeyed IKE_SAs get their keys and ``IkeSaEstablished`` together (§2.18), so only IKE_SA_INIT emits this.
    The keys are never in the repr.
    """

    initiator: bool
    """True if this node is the original initiator of this IKE_SA."""
    sk_ei: bytes = field(repr=False)
    """SK_ei (any salt included), for the Wireshark key table."""
    sk_er: bytes = field(repr=False)
    sk_ai: bytes = field(repr=False)
    sk_ar: bytes = field(repr=False)
    encr_wireshark: str
    """Wireshark's name for the encryption algorithm (ikev2_decryption_table)."""
    integ_wireshark: str

