"""Which key exchange group a CREATE_CHILD_SA offers, and which proposal a responder picks (RFC 7296 §1.3, §2.7, §3.3.6).

strongSwan's choices, followed here:

- A CHILD_SA rekey offers the KE group negotiated for the SA it replaces (``child_create.c`` ``recreate_sa``); a new
  CHILD_SA, or the rekey of one made in IKE_AUTH (no KE), the group of the first configured proposal.
- An IKE_SA rekey offers the old IKE_SA's group with ``charon.prefer_previous_dh_group`` (default yes,
  ``ike_init.c``), else the first configured one.
- The group to offer is moved to the front of every proposal that has it, and proposals without it go last
  (``update_and_check_proposals``, ``promote_transform``).
- INVALID_KE_PAYLOAD names the group the responder wants (RFC 7296 §1.3, §1.2): the initiator retries once with it,
  if one of its proposals has it; a second INVALID_KE_PAYLOAD fails the exchange (``child_create.c`` ``retry``).
- A responder picks by its own preference (``charon.prefer_configured_proposals``, default yes): its proposals in
  order, each against the peer's in order, its own algorithm order within; with ``no`` the peer's order decides
  (``proposal_select``, ``PROPOSAL_PREFER_SUPPLIED``). The same in IKE_SA_INIT (``ike_init.c``), CREATE_CHILD_SA and
  the IKE_AUTH child; the group of the KE payload received plays no part in the choice (strongSwan selects one
  algorithm per transform type, ``select_algos``). A KE payload of another group than the picked one is
  answered INVALID_KE_PAYLOAD naming the picked group (``check_ke_method``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

from ikesim.crypto.suites import ProposalSpec, Suite, select_proposal
from ikesim.ike.profile import ke_group_name
from ikesim.wire.iana import KeGroup, ProtocolId, TransformType
from ikesim.wire.payloads import NotifyPayload, Proposal, Transform

__all__ = ["group_of_name", "rekey_group", "promote_group", "requested_group", "select_configured_first"]

_GROUP_BY_NAME = {ke_group_name(g): int(g) for g in KeGroup}


def group_of_name(name: str) -> int:
    """The KE group id of strongSwan's name for it (``ChildSa.pfs_group``); 0 for ``none`` or unknown (§3.3.2)."""
    if name in ("", "none"):
        return 0
    return _GROUP_BY_NAME.get(name, 0)


def rekey_group(first_group: int, groups: frozenset[int], previous: str) -> int:
    """The KE group a CHILD_SA rekey offers: the replaced SA's, if our proposals still have it, else the first
    configured one (RFC 7296 §1.3.3; strongSwan ``recreate_sa``)."""
    group = group_of_name(previous)
    return group if group and group in groups else first_group


def promote_group(specs: tuple[ProposalSpec, ...], group: int) -> tuple[ProposalSpec, ...]:
    """*specs* with *group* first in every proposal that has it and the proposals without it last (RFC 7296
    §3.3.6; strongSwan ``promote_transform``). Unchanged (the same objects) if nothing moves."""
    if not group or not specs or (specs[0].ke and int(specs[0].ke[0]) == group):
        return specs
    with_group, without = [], []
    for spec in specs:
        if any(int(g) == group for g in spec.ke):
            ke = tuple(sorted(spec.ke, key=lambda g: int(g) != group))
            with_group.append(replace(spec, ke=ke, text=f"{spec.text}#ke{group}"))
        else:
            without.append(spec)
    return tuple(with_group + without)


def requested_group(notify: NotifyPayload) -> int | None:
    """The group an INVALID_KE_PAYLOAD asks for: its two data octets (RFC 7296 §3.10.1); None if malformed."""
    data = notify.data
    return int.from_bytes(data, "big") if len(data) == 2 else None


def _rank(spec: ProposalSpec, t: Transform) -> int:
    """Where *spec* ranks transform *t* among its own algorithms of that type (lower: preferred)."""
    tt, tid = t.transform_type, t.transform_id
    order: Sequence[Any]
    if tt == TransformType.ENCR:
        order, key = spec.encr, (tid, t.key_length or 0)
    elif tt == TransformType.INTEG:
        order, key = spec.integ, tid
    elif tt == TransformType.PRF:
        order, key = spec.prf, tid
    elif tt == TransformType.KE:
        order, key = spec.ke, tid
    elif tt == TransformType.ESN:
        order, key = spec.esn, tid
    elif TransformType.ADDITIONAL_KEY_EXCHANGE_1 <= tt <= TransformType.ADDITIONAL_KEY_EXCHANGE_7 and spec.additional:
        order, key = spec.additional[tt - TransformType.ADDITIONAL_KEY_EXCHANGE_1], tid
    else:
        return 1 << 16
    for i, x in enumerate(order):
        if x == key:
            return i
    return 1 << 16


@lru_cache(maxsize=1024)
def _ranked(transforms: tuple[Transform, ...], spec: ProposalSpec) -> tuple[Transform, ...]:
    """*transforms* in *spec*'s order of preference, once per offered set and configured proposal (RFC 7296 §3.3.6)."""
    return tuple(sorted(transforms, key=lambda t: _rank(spec, t)))


def select_configured_first(offered: Sequence[Proposal], specs: Sequence[ProposalSpec], protocol: ProtocolId
                            ) -> tuple[Proposal, Suite] | None:
    """RFC 7296 §2.7 with the responder's preference (strongSwan ``prefer_configured_proposals = yes``): our
    proposals in order, each against the offered ones in order; within one, our algorithm order decides."""
    for spec in specs:
        for prop in offered:
            ranked = Proposal(prop.number, prop.protocol, prop.spi, _ranked(prop.transforms, spec))
            found = select_proposal((ranked,), (spec,), protocol)
            if found is not None:
                return found
    return None
