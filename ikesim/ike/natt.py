"""NAT traversal in the IKE core: floating to UDP 4500, the non-ESP marker, peer address updates.

RFC 7296 §2.23 and RFC 3948: once IKE_SA_INIT has detected a NAT on either
side, the initiator sends everything from IKE_AUTH on from and to port 4500.
There each IKE message is prefixed with four zero octets (the non-ESP marker)
that tell it from ESP; the marker is the transport's business
(``ikesim.udp``, and the simulated network counts its 4 bytes), so the
daemon always handles bare IKE messages. The end not behind a NAT follows the peer to a new
address or port when an authenticated, new message arrives from there (a
NAT rebinding), and answers every request to where it came from. NAT
keepalives (RFC 3948 §2.3) are a transport matter and live in the sim
layer (``ikesim.sim.nat``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike import events as ev
from ikesim.ike.transport import KEEPALIVE, NATT_PORT, NON_ESP_MARKER, CoreOutlet
from ikesim.types import Address

if TYPE_CHECKING:
    from ikesim.ike.sa import IkeSa

__all__ = ["NATT_PORT", "NON_ESP_MARKER", "KEEPALIVE", "float_to_natt", "follow_peer"]


def float_to_natt(core: CoreOutlet, sa: IkeSa) -> None:
    """RFC 7296 §2.23: a NAT was detected, so the initiator moves the IKE_SA to port 4500 on both ends."""
    if sa.local.port == NATT_PORT:
        return
    old_local, old_peer = sa.local, sa.peer
    sa.local = Address(sa.local.ip, NATT_PORT)
    sa.peer = Address(sa.peer.ip, NATT_PORT)
    core.emit(ev.NatTraversalStarted(**sa.ids(), local=sa.local, peer=sa.peer, old_local=old_local, old_peer=old_peer))


def follow_peer(core: CoreOutlet, sa: IkeSa, src: Address, dst: Address) -> None:
    """After a new authenticated message on *sa* from *src* to *dst*: float with the peer or follow its new address.

    RFC 7296 §2.23: the responder moves to port 4500 when the initiator does; an end that is not behind a
    NAT but whose peer is updates the peer's address from a new authenticated message. Never call it for a
    retransmission (a replayed request could move the IKE_SA anywhere, RFC 7296 §2.23, RFC 4555 §5).
    """
    if dst.port == NATT_PORT and sa.local.port != NATT_PORT:
        old_local, old_peer = sa.local, sa.peer
        sa.local, sa.peer = dst, src
        core.emit(ev.NatTraversalStarted(**sa.ids(), local=dst, peer=src, old_local=old_local, old_peer=old_peer))
        return
    if src == sa.peer or not sa.nat_peer or sa.nat_local or sa.mobike:
        return  # with MOBIKE only UPDATE_SA_ADDRESSES moves the IKE_SA (RFC 4555 §3.5; strongSwan update_hosts)
    old = sa.peer
    sa.peer = src
    core.emit(ev.PeerAddressChanged(**sa.ids(), old=old, new=src))
    ex = sa.active
    if ex is not None and not ex.fire_and_forget:
        # Our request in flight went to the old address: send it again now rather than at the next timeout.
        core.send_all(sa, ex.request)
        core.emit(ev.Retransmitted(**sa.ids(), exchange=ex.exchange_name, purpose=ex.purpose,
                                   message_id=ex.message_id, attempt=ex.attempts, reason="peer_moved"))
