"""Childless IKE_SAs: N(CHILDLESS_IKEV2_SUPPORTED), IKE_AUTH without SA, TSi and TSr (RFC 6023).

The decisions follow strongSwan's ``childless`` option (``ike_cfg.h`` ``childless_t``; ``ike_init.c``,
``child_create.c`` ``defer_child_sa`` and ``handle_childless``, ``ike_auth.c``), one value per connection
(``IkePolicy.childless``):

- ``never``: the responder sends no N(CHILDLESS_IKEV2_SUPPORTED) and answers a childless IKE_AUTH request with
  N(INVALID_SYNTAX) (after IDr and AUTH), then deletes the IKE_SA; the initiator puts its first CHILD_SA in IKE_AUTH.
- ``allow``: the responder sends the notify in its IKE_SA_INIT response and accepts a childless IKE_AUTH; the
  initiator still puts its first CHILD_SA in IKE_AUTH.
- ``prefer``: as ``allow``; the initiator goes childless if the responder sent the notify.
- ``force``: as ``prefer``, but an initiator whose responder did not send the notify gives the IKE_SA up before
  IKE_AUTH, and a responder answers an IKE_AUTH request that carries SA, TSi or TSr with N(INVALID_SYNTAX).

Only the responder sends the notify (strongSwan ``ike_init.c``: ``!this->initiator``). A connection without child
configurations always sends a childless IKE_AUTH, whatever the responder said (strongSwan initiating without a
``child_cfg`` has no child_create task to check it). An initiator that receives N(INVALID_SYNTAX) in the IKE_AUTH
response gives the IKE_SA up without a word (strongSwan ``ike_auth.c`` ``process_i``: an error notify not about the
CHILD_SA fails the IKE_SA).

After a childless IKE_AUTH the initiator creates its first CHILD_SA at once with CREATE_CHILD_SA (with KE when its
proposals ask for PFS), ahead of any queued work: strongSwan's deferred child_create task. A TEMPORARY_FAILURE answer
(RFC 7296 §2.25: the peer is rekeying or deleting the IKE_SA) is retried after ``collision_retry_base`` minus up to
``collision_retry_jitter`` seconds (strongSwan ``schedule_delayed_retry``: 15 s minus up to 10), on the IKE_SA that
then carries the connection (a rekey of the IKE_SA meanwhile moves it, as strongSwan's ``adopt_child_tasks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike.exchange import Work
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.wire.iana import NotifyType
from ikesim.wire.message import Message
from ikesim.wire.payloads import NotifyPayload, SaPayload, TsiPayload, TsrPayload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.profile import ConnectionProfile
    from ikesim.ike.sa import IkeSa

__all__ = [
    "POLICIES",
    "TRIGGER",
    "RETRY_TIMER",
    "supported_notify",
    "peer_supports",
    "first_child_deferred",
    "initiator_gives_up",
    "responder_refuses",
    "refused",
    "create_first_child",
    "retry_first_child",
    "on_retry_timer",
]

POLICIES = ("never", "allow", "prefer", "force")
"""The values of ``IkePolicy.childless`` (strongSwan ``childless``: CHILDLESS_NEVER, _ALLOW, _PREFER, _FORCE)."""
TRIGGER = "childless"
"""``Work.trigger`` of the CREATE_CHILD_SA of the first CHILD_SA (``ExchangeStarted.reason``)."""
RETRY_TIMER = "childless_retry"
"""Timer kind, keyed by the local IKE SPI: create the first CHILD_SA again after TEMPORARY_FAILURE."""

_LIVE = (ChildSaState.INSTALLED, ChildSaState.REKEYING)


def supported_notify() -> NotifyPayload:
    """N(CHILDLESS_IKEV2_SUPPORTED): protocol 0, no SPI, no data (RFC 6023 §4), in the IKE_SA_INIT response."""
    return NotifyPayload(NotifyType.CHILDLESS_IKEV2_SUPPORTED)


def peer_supports(msg: Message) -> bool:
    """The IKE_SA_INIT response carries N(CHILDLESS_IKEV2_SUPPORTED) (RFC 6023 §3)."""
    return any(n.notify_type == NotifyType.CHILDLESS_IKEV2_SUPPORTED for n in msg.get_all(NotifyPayload))


def first_child_deferred(profile: ConnectionProfile, msg: Message) -> bool:
    """Initiator: IKE_AUTH without the first CHILD_SA, created by CREATE_CHILD_SA after it (RFC 6023 §3).

    strongSwan ``defer_child_sa``: ``prefer`` or ``force``, and the responder sent the notify."""
    policy = profile.connection.ike.childless
    return (policy == "prefer" or policy == "force") and profile.first_child is not None and peer_supports(msg)


def initiator_gives_up(profile: ConnectionProfile, msg: Message) -> bool:
    """Initiator with ``force``: the responder cannot do a childless IKE_AUTH, so none is sent (RFC 6023 §3).

    strongSwan ``defer_child_sa``: "peer does not support childless IKE_SA initiation", the IKE_SA destroyed."""
    return (profile.connection.ike.childless == "force" and profile.first_child is not None
            and not peer_supports(msg))


def responder_refuses(policy: str, msg: Message) -> bool:
    """Responder: the IKE_AUTH request is childless and *policy* is ``never``, or it is not and *policy* is ``force``.

    RFC 6023 §3; strongSwan ``child_create.c`` ``handle_childless`` (childless: no SA, no TSi and no TSr)."""
    if policy == "allow" or policy == "prefer":
        return False
    childless = msg.get(SaPayload) is None and msg.get(TsiPayload) is None and msg.get(TsrPayload) is None
    return childless if policy == "never" else (policy == "force" and not childless)


def refused(errors: list[NotifyPayload]) -> bool:
    """Initiator: the IKE_AUTH response carries N(INVALID_SYNTAX), a responder's childless refusal (RFC 6023 §3)."""
    return any(n.notify_type == NotifyType.INVALID_SYNTAX for n in errors)


def _wanted(sa: IkeSa, name: str) -> bool:
    """*sa* has no live CHILD_SA of configuration *name* and none is being created (RFC 6023 §3)."""
    if any(c.name == name and c.state in _LIVE for c in sa.children.values()):
        return False
    ex = sa.active
    if ex is not None and ex.purpose == "create_child" and ex.child_profile is not None \
            and ex.child_profile.policy.name == name:
        return False
    return not any(w.purpose == "create_child" and w.child == name for w in sa.queue)


def create_first_child(core: IkeCore, sa: IkeSa, now: float) -> None:
    """After a childless IKE_AUTH: CREATE_CHILD_SA for the first CHILD_SA, ahead of queued work (RFC 6023 §3)."""
    first = sa.profile.first_child
    if first is not None:
        core.enqueue(sa, Work("create_child", child=first.policy.name, trigger=TRIGGER), now, front=True)


def retry_first_child(core: IkeCore, sa: IkeSa, now: float) -> None:
    """TEMPORARY_FAILURE for the first CHILD_SA: try again later (RFC 7296 §2.25; strongSwan ``schedule_delayed_retry``)."""
    core.timers.arm((RETRY_TIMER, sa.local_spi), core.collision_retry_at(sa, now))


def _carrier(core: IkeCore, spi: bytes) -> IkeSa | None:
    """The established IKE_SA that carries on the IKE_SA *spi*: itself, or the one that rekeyed it (RFC 7296 §1.3.2).

    A rekeyed IKE_SA names its successor while it lingers; once deleted, the successor is the IKE_SA whose
    ``rekey_of`` it is (looked for only then: a retry is rare)."""
    for _ in range(64):  # a chain of rekeys, each at most once per retry wait
        sa = core.sas.get(spi)
        if sa is not None and sa.local_spi == spi:
            if sa.state is IkeSaState.ESTABLISHED and not sa.redundant:
                return sa
            if sa.state is not IkeSaState.REKEYED or not sa.replaced_by:
                return None
            spi = sa.replaced_by
            continue
        successor = next((s for s in core.sas.values() if s.rekey_of == spi and not s.redundant), None)
        if successor is None:
            return None
        spi = successor.local_spi
    return None


def on_retry_timer(core: IkeCore, spi: bytes, now: float) -> None:
    """Create the first CHILD_SA again on the IKE_SA that now carries the connection (RFC 6023 §3, RFC 7296 §2.25)."""
    sa = _carrier(core, spi)
    if sa is None:
        return
    first = sa.profile.first_child
    if first is not None and _wanted(sa, first.policy.name):
        core.enqueue(sa, Work("create_child", child=first.policy.name, trigger=TRIGGER), now)
