"""Events of high availability: RFC 6311 negotiation and synchronization, and replicated SAs taken over.

Part of the event catalogue ``ikesim.ike.events`` (which re-exports them; same conventions): ``ike.ha_sync`` and
``ike.ha_state`` emit them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ikesim.ike.event_base import IkeEvent
from ikesim.types import Address

__all__ = ["HaSyncNegotiated", "IkeSaActivated", "ChildSaActivated", "MessageIdsSynchronized", "RequestAnswered"]


@dataclass(slots=True, kw_only=True)
class HaSyncNegotiated(IkeEvent):
    """Both ends sent N(IKEV2_MESSAGE_ID_SYNC_SUPPORTED) and/or N(IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED) in IKE_AUTH
    (RFC 6311): a cluster that takes this IKE_SA over may synchronize its message IDs (and replay counters)."""

    message_id_sync: bool
    replay_counter_sync: bool


@dataclass(slots=True, kw_only=True)
class IkeSaActivated(IkeEvent):
    """A cluster member made a replicated IKE_SA its own (a takeover, ``ike.ha_state``): established here from the
    state the old active member synchronized, with these message IDs (RFC 7296 §2.3) and CHILD_SAs."""

    initiator: bool
    local: Address
    peer: Address
    next_message_id: int
    peer_message_id: int
    child_count: int
    rekey_at: float | None
    expire_at: float | None


@dataclass(slots=True, kw_only=True)
class ChildSaActivated(IkeEvent):
    """A replicated CHILD_SA taken over with its IKE_SA (``IkeSaActivated``): the data plane installs both directions
    as for ``ChildSaInstalled``; the keys are the ones the pair was created with (RFC 7296 §2.17)."""

    child: str
    spi_in: bytes
    spi_out: bytes
    encr: str
    integ: str
    local_ts: str
    remote_ts: str
    outbound: bool
    rekey_at: float | None
    expire_at: float | None
    local: Address
    peer: Address
    encr_key_in: bytes
    integ_key_in: bytes
    encr_key_out: bytes
    integ_key_out: bytes


@dataclass(slots=True, kw_only=True)
class MessageIdsSynchronized(IkeEvent):
    """An RFC 6311 synchronization completed on this end: from now on our next request carries
    ``next_message_id`` and we expect ``peer_message_id`` on the peer's next one.

    ``role``: ``cluster`` (we sent the INFORMATIONAL on message ID 0 after a takeover) or ``peer`` (we answered it).
    ``replay_delta``: the IPSEC_REPLAY_COUNTER_SYNC increment (RFC 6311) the cluster asked for (0: none); on
    the peer the data plane advances the sequence numbers of this IKE_SA's outbound ESP SAs by it.
    ``resent``: the peer's request in flight was sent again under the new message ID (``ike.ha_sync``)."""

    role: str
    next_message_id: int
    peer_message_id: int
    replay_delta: int
    resent: bool


@dataclass(slots=True, kw_only=True)
class RequestAnswered(IkeEvent):
    """We answered the peer's request (RFC 7296 §2.1); emitted only by daemons with ``report_answers`` (a cluster
    member, whose ha plugin synchronizes the message IDs after each request, strongSwan ``ha_ike.c`` message_hook)."""

    exchange: str
    message_id: int
