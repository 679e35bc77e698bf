"""Simultaneous rekeying: who keeps which SA (RFC 7296 §2.8.1, §2.8.2).

When both peers rekey the same SA at once, both exchanges complete and
create two new SAs. The one created with the lowest of the four nonces is
redundant: the peer that initiated it deletes it, and the peer that
initiated the other one deletes the old SA. Each peer records the peer's
exchange when it answers it (``Collision``) and decides once its own
exchange is answered, whichever order the messages arrive in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Collision", "lowest_nonce_is_ours", "RESOLUTIONS"]

RESOLUTIONS = ("nonces", "temporary_failure", "child_sa_not_found", "peer_deleted")
"""How a rekey collision was settled: by comparing nonces (§2.8.1), because one side's request was refused with
TEMPORARY_FAILURE after its peer's rekey had already finished and while the peer's Delete of the old SA was in flight
(§2.25.1), with CHILD_SA_NOT_FOUND once that Delete exchange was over (§2.25.1, as strongSwan answers), or by the
peer's Delete of the old SA arriving before our own exchange was answered."""


@dataclass(slots=True, eq=False)
class Collision:
    """The peer's rekey of an SA we are rekeying ourselves (RFC 7296 §2.8.1, §2.8.2)."""

    peer_new: Any
    """The SA the peer's exchange created (a ``ChildSa`` or an ``IkeSa``); we answered it."""
    peer_nonces: tuple[bytes, bytes]
    """(Ni, Nr) of the peer's exchange: the peer's nonce and ours."""


def lowest_nonce_is_ours(own: tuple[bytes, bytes], peer: tuple[bytes, bytes], *, tie_ours: bool) -> bool:
    """True if the lowest of the four nonces belongs to our own exchange (RFC 7296 §2.8.1).

    "Lowest" is an octet-by-octet comparison where a nonce that is a prefix of another is lower: exactly
    Python's ``bytes`` ordering. *tie_ours* settles the (2^-128) case of equal minima identically on both
    peers: pass True on the original initiator of the IKE_SA.
    """
    own_min, peer_min = min(own), min(peer)
    if own_min == peer_min:
        return tie_ours
    return own_min < peer_min
