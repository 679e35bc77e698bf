"""The initiator's check of the responder's chosen proposal (RFC 7296 §2.7, §3.3.6).

RFC 7296 §3.3.6: the responder MUST answer with exactly one proposal, a subset of one the initiator
offered (same proposal number and protocol, one transform of each offered type, each one that was
offered); the initiator MUST check this. Used for IKE_SA_INIT responses, and fits CREATE_CHILD_SA
responses (``spi_size`` 4 for ESP, 8 for an IKE rekey; ``optional`` for a KE type the configuration
lets the responder leave out).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache

from ikesim.crypto.suites import Suite
from ikesim.errors import NoProposalChosen
from ikesim.wire.iana import ProtocolId, TransformType
from ikesim.wire.payloads import Proposal, SaPayload, Transform

__all__ = ["check_chosen_proposal"]


def _type_name(transform_type: int) -> str:
    try:
        return TransformType(transform_type).name
    except ValueError:
        return str(transform_type)


def check_chosen_proposal(offered: Sequence[Proposal], answer: SaPayload, *, protocol: ProtocolId,
                          spi_size: int, optional: Collection[int] = ()) -> tuple[Proposal, Suite]:
    """RFC 7296 §3.3.6: the answer's one proposal and its Suite; NoProposalChosen naming what was not offered.

    *spi_size* is the SPI length the answer must carry (RFC 7296 §3.3.1: 0 in IKE_SA_INIT, 8 for an
    IKE rekey, 4 for ESP); *optional* are transform types of the offer the answer may leave out.
    """
    if len(answer.proposals) != 1:
        raise NoProposalChosen(f"answer carries {len(answer.proposals)} proposals, not exactly one")
    chosen = answer.proposals[0]
    if chosen.protocol != protocol:
        raise NoProposalChosen(f"answer protocol {int(chosen.protocol)}, offered {protocol.name}")
    if len(chosen.spi) != spi_size:
        raise NoProposalChosen(f"answer SPI of {len(chosen.spi)} bytes, expected {spi_size}")
    offer = next((p for p in offered if p.number == chosen.number and p.protocol == protocol), None)
    if offer is None:
        raise NoProposalChosen(f"answer proposal number {chosen.number} was not offered")
    problem = _transforms_problem(offer.transforms, chosen.transforms, frozenset(optional))
    if problem:
        raise NoProposalChosen(problem)
    return chosen, Suite.from_wire(chosen)


@lru_cache(maxsize=1024)
def _transforms_problem(offered: tuple[Transform, ...], answered: tuple[Transform, ...],
                        optional: frozenset[int]) -> str:
    """RFC 7296 §3.3.6: what is wrong with *answered* as a choice from *offered* ('' if nothing).

    Cached: offers come from the configuration and answers repeat at every rekey.
    """
    seen: set[int] = set()
    for t in answered:
        kind = int(t.transform_type)
        if kind in seen:
            return f"answer has several {_type_name(kind)} transforms"
        seen.add(kind)
        if t not in offered:
            return f"answer {_type_name(kind)} transform {t.transform_id} was not offered"
    missing = {int(t.transform_type) for t in offered} - seen - optional
    if missing:
        return f"answer has no {_type_name(min(missing))} transform"
    return ""
