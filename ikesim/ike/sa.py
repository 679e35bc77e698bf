"""IKE_SA and CHILD_SA records: SPIs, nonces, keys, lifetimes (RFC 7296 §2.8, §2.14, §2.17).

These are the mutable per-SA state the daemon keeps; events carry copies of
identifiers, never these objects. ``IkeSaInfo`` is the frozen snapshot the
introspection API hands out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ikesim.crypto.prf import IkeKeys
from ikesim.crypto.suites import Suite
from ikesim.ike.exchange import Exchange, Work
from ikesim.ike.profile import ChildProfile, ConnectionProfile
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.types import Address
from ikesim.wire.payloads import TrafficSelector

__all__ = ["ChildSa", "IkeSa", "IkeSaInfo", "NO_ENTRIES", "ZERO_SPI", "PEER_DELETED_LIMIT"]

ZERO_SPI = bytes(8)
"""The responder SPI of an IKE_SA_INIT request (RFC 7296 §3.1)."""
PEER_DELETED_LIMIT = 16
"""Most unknown CHILD SPIs remembered from the peer's Deletes while one CREATE_CHILD_SA of ours is in
flight (only the one its response brings matters, RFC 7296 §1.4.1); the most recent are kept."""


NO_ENTRIES: Mapping[Any, Any] = MappingProxyType({})
"""The shared, read-only empty table ``IkeSa.reassembly`` and ``IkeSa.peer_deleted`` start as: most IKE_SAs
never hold an entry, and two empty dicts are 128 bytes per IKE_SA. Writers swap in a dict of their own."""


@dataclass(slots=True, eq=False)
class ChildSa:
    """One CHILD_SA pair (RFC 7296 §1.3, §2.17): our inbound SPI and the peer's."""

    profile: ChildProfile
    spi_in: bytes
    spi_out: bytes
    suite: Suite
    initiator: bool
    """True if this node initiated the exchange that created the pair."""
    local_ts: tuple[TrafficSelector, ...]
    remote_ts: tuple[TrafficSelector, ...]
    encr_key_in: bytes = field(repr=False)
    """ESP keys (RFC 7296 §2.17): never in the repr."""
    integ_key_in: bytes = field(repr=False)
    encr_key_out: bytes = field(repr=False)
    integ_key_out: bytes = field(repr=False)
    created_at: float
    ike_spi: bytes
    """Local SPI of the IKE_SA that currently owns this CHILD_SA."""
    pfs_group: str = "none"
    state: ChildSaState = ChildSaState.INSTALLED
    rekey_at: float | None = None
    expire_at: float | None = None
    delete_reason: str = ""
    """Why our Delete for it is in flight (``deleted_locally``, ``expired``, ``rekeyed``)."""
    replaced_by: bytes = b""
    """spi_in of the CHILD_SA that replaced it (rekey)."""
    rekey_bytes_in: int = 0
    """Soft byte limit of the inbound SA, its own jitter draw (RFC 4301 §4.4.2.1; strongSwan ``install_internal``)."""
    rekey_bytes_out: int = 0
    """Soft byte limit of the outbound SA, its own jitter draw."""
    life_bytes: int = 0
    """Hard byte limit of each SA (never jittered)."""
    rekey_packets_in: int = 0
    rekey_packets_out: int = 0
    life_packets: int = 0
    outbound: bool = False
    """True while this node sends with it (RFC 7296 §2.8: one outbound SA per CHILD_SA at a time)."""
    expired: bool = False
    """Hard lifetime reached: never used again, its Delete is queued (RFC 7296 §2.8)."""
    redundant: bool = False
    """Lost a simultaneous rekey (RFC 7296 §2.8.1): deleted by the peer that created it."""
    collision: Any = None
    """``Collision`` while the peer rekeys this SA at the same time as we do (RFC 7296 §2.8.1)."""
    peer_deleted: bool = False
    """The peer's Delete for it came while our rekey involving it was in flight: answered, but kept until that rekey
    concludes (RFC 7296 §1.4.1, §2.25.1; strongSwan ``CHILD_REKEY_OLD_SA_DELETED`` / ``CHILD_REKEY_OTHER_DELETED``).
    Never made outbound."""

    @property
    def name(self) -> str:
        """Name of the child configuration."""
        return self.profile.policy.name


@dataclass(slots=True, eq=False)
class IkeSa:
    """One IKE_SA (RFC 7296 §1.2, §2.14) and its message-ID window (§2.3)."""

    profile: ConnectionProfile
    initiator: bool
    """True if this node is the original initiator (sets the I flag, RFC 7296 §3.1)."""
    spi_i: bytes
    spi_r: bytes
    local: Address
    peer: Address
    created_at: float
    state: IkeSaState = IkeSaState.CONNECTING
    nonce_i: bytes = b""
    nonce_r: bytes = b""
    ke: Any = None
    """Our ``KeyExchange`` while IKE_SA_INIT is in progress."""
    suite: Suite | None = None
    keys: IkeKeys | None = None
    protect_out: Any = None
    protect_in: Any = None
    init_request: bytes = b""
    """The IKE_SA_INIT request bytes, signed by the initiator's AUTH (RFC 7296 §2.15)."""
    init_response: bytes = b""
    cookie: bytes = b""
    init_retries: int = 0
    """COOKIE / INVALID_KE_PAYLOAD retries of IKE_SA_INIT so far (RFC 7296 §1.2, §2.6)."""
    peer_id: str = ""
    next_message_id: int = 0
    """Message ID of our next request (RFC 7296 §2.3)."""
    peer_message_id: int = 0
    """Message ID we expect on the peer's next request."""
    last_response: tuple[bytes, ...] = ()
    """Cached datagrams of our response to the peer's request ``peer_message_id - 1`` (§2.1): one
    message, or all its SKF fragments (RFC 7383 §2.5)."""
    fragmentation: bool = False
    """Both ends sent N(IKEV2_FRAGMENTATION_SUPPORTED) in IKE_SA_INIT (RFC 7383 §2.3)."""
    reassembly: Mapping[bool, Any] = field(default_factory=lambda: NO_ENTRIES)
    """SKF fragments being collected, by ``is_response`` (``ikesim.ike.fragmentation``, RFC 7383 §2.6)."""
    active: Exchange | None = None
    """Our request in flight (window size 1, RFC 7296 §2.3)."""
    queue: list[Work] = field(default_factory=list)
    """Requests waiting for the window (a list: an empty deque is 760 bytes, one per IKE_SA of a fleet)."""
    children: dict[bytes, ChildSa] = field(default_factory=dict)
    rekey_at: float | None = None
    expire_at: float | None = None
    last_received_at: float = 0.0
    delete_reason: str = ""
    rekey_of: bytes | None = None
    replaced_by: bytes = b""
    nat_local: bool = False
    nat_peer: bool = False
    mobike: bool = False
    """Both ends sent N(MOBIKE_SUPPORTED) (RFC 4555 §3.1): the IKE_SA moves only by MOBIKE (``ike.mobike``)."""
    peer_addresses: tuple[str, ...] = ()
    """The peer's additional addresses (ADDITIONAL_IP4/6_ADDRESS, RFC 4555 §3.4)."""
    stale: bool = False
    """No usable local address to reach the peer from (strongSwan COND_STALE): waiting for one."""
    pending_move: Any = None
    """MOBIKE responder with a return routability check: (local, peer, method, nat) to move to once it passes."""
    mid_sync: bool = False
    """Both ends sent N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) in IKE_AUTH (RFC 6311): message IDs may be synchronized."""
    replay_sync: bool = False
    """Both ends sent N(IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED) in IKE_AUTH (RFC 6311)."""
    local_ts_ip: str = ""
    """After a MOBIKE move: our address before the first move, which ``dynamic`` selectors keep (RFC 4555 §1.1)."""
    peer_ts_ip: str = ""
    """A peer behind a NAT: its own (inner) address, learned from its TSi (RFC 7296 §2.23.1)."""
    half_open_key: tuple[bytes, Address] | None = None
    pending_child: Any = None
    """IKE_AUTH initiator: (ChildProfile, spi_in, TSi, TSr) of the CHILD_SA proposed with AUTH, selectors as sent."""
    eap: Any = None
    """``ike.eap_auth.EapSession`` while IKE_AUTH runs EAP (RFC 7296 §2.16); None otherwise."""
    collision: Any = None
    """``Collision`` while the peer rekeys this IKE_SA at the same time as we do (RFC 7296 §2.8.2)."""
    redundant: bool = False
    """Lost a simultaneous IKE_SA rekey (RFC 7296 §2.8.2): to be deleted."""
    resumption: Any = None
    """Set up by IKE_SESSION_RESUME (RFC 5723 §4.3.2): the client's ``ClientTicket`` or the gateway's ``TicketState``
    (``ike.resumption``); IKE_AUTH then authenticates with the resumed keys (§4.3.3)."""
    peer_deleted: Mapping[bytes, float] = field(default_factory=lambda: NO_ENTRIES)
    """CHILD SPIs the peer deleted before we knew them (a response still in flight), with the time:
    the response must not install an SA the peer no longer has (RFC 7296 §1.4.1, §2.25). Kept only
    while our CREATE_CHILD_SA is in flight (cleared by its response), the ``PEER_DELETED_LIMIT`` most recent."""

    @property
    def local_spi(self) -> bytes:
        """Our SPI of this IKE_SA: spi_i if we are the original initiator, else spi_r."""
        return self.spi_i if self.initiator else self.spi_r

    @property
    def peer_spi(self) -> bytes:
        """The peer's SPI of this IKE_SA."""
        return self.spi_r if self.initiator else self.spi_i

    @property
    def name(self) -> str:
        """Name of the connection."""
        return self.profile.connection.name

    def ids(self) -> dict[str, Any]:
        """The identifying fields every event carries."""
        return {"spi_i": self.spi_i, "spi_r": self.spi_r,
                "connection": self.profile.connection.name}


@dataclass(frozen=True, slots=True)
class IkeSaInfo:
    """A frozen snapshot of one IKE_SA for tests, invariant checkers and scenario actions."""

    spi_i: bytes
    spi_r: bytes
    state: str
    connection: str
    initiator: bool
    local: Address
    peer: Address
    children: tuple[bytes, ...]
    """spi_in of the CHILD_SAs this IKE_SA owns (installed ones and lingering rekeyed ones)."""
    rekey_at: float | None
    expire_at: float | None
    next_message_id: int
    peer_message_id: int
    nat_local: bool
    nat_peer: bool
