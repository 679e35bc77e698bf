"""The lifetime draws of IKE_SAs and CHILD_SAs as strongSwan's charon makes them (RFC 7296 §2.8).

RFC 7296 §2.8 leaves the rekey time to the implementation and asks for some randomness so that both ends do not
rekey at once. ikesim draws it the way charon does (strongSwan ``child_cfg.c``, ``child_sa.c``, ``peer_cfg.c``,
``ike_sa.c``), in whole seconds:

- **CHILD_SA** (``child_cfg.c`` ``apply_jitter``, ``child_sa.c`` ``install_internal``). Every SA installed in the
  kernel gets its own ``get_lifetime(jitter)``: soft = ``rekey - (uint64)(min(rand + 1, rekey) * U)``, U uniform in
  [0, 1), i.e. ``rekey`` minus a whole number 0 .. ``rand`` of seconds (20 s with rand 5 s: 15 .. 20 s, each 1/6);
  rand 0: ``rekey`` unchanged. A CHILD_SA is two SAs, inbound and outbound, installed at the same instant (charon on
  Linux installs the outbound SA at once, ``register_outbound`` with ``KERNEL_POLICY_SPI``; only its policy waits),
  each with its own draw, and the kernel's first soft expire rekeys the CHILD_SA: ``rekey_time = min`` of the two
  (``child_sa.c``: ``this->rekey_time = min(this->rekey_time, now + lifetime->time.rekey)``). Without jitter the
  outbound SA gets no soft limit at all ("avoid triggering multiple rekey events"): the same single time. The hard
  lifetime is ``life_time`` after the install, never jittered (``expire_time = now + lifetime->time.life``).
- **IKE_SA** (``peer_cfg.c`` ``get_rekey_time``/``get_reauth_time``, ``peer_cfg_create``, ``ike_sa.c`` ``set_state``
  ESTABLISHED): rekey = ``rekey_time - random() % rand_time`` (0 .. ``rand - 1`` seconds: rand 1 s jitters nothing),
  reauthentication ``reauth_time - random() % rand_time``, one draw each; ``rand_time`` is first cut to
  ``rekey_time`` and to ``reauth_time`` when it exceeds them. The hard lifetime is ``over_time`` after the earlier of
  the two *drawn* times (``STAT_DELETE = min(STAT_REKEY, STAT_REAUTH) + over_time``), ``over_time`` being
  ``life_time`` minus the nominal rekey time (``ike.reauth.over_time``).

Whole seconds: charon's configuration holds whole seconds (swanctl's ``parse_time`` reads an integer), ikesim's may
hold fractions (race scenarios use them). ikesim keeps the configured ``rekey_time``/``life_time``/``reauth_time``
(and ``rekey_fraction * life_time``) exactly and subtracts a whole number of seconds: ``rand_time`` counts in whole
seconds, truncated (a ``rand_time`` below 1 s jitters nothing). With whole-second configurations the draws are
exactly charon's. Draws come from the daemon's ``lifetime`` stream (``rng.child("lifetime")``), inbound SA first.

Other daemons' jitter, for writing their timers as ikesim lifetimes (no preset is offered):

- **strongSwan's Android app** is charon (``android_service.c``, libipsec for ESP, which also gives each SA its own
  soft expiry): the draws above with fixed values, IKE ``rekey_time`` 10 h, ``rand_time`` 10 min, ``over_time``
  30 min; CHILD ``rekey_time`` 2 h, ``life_time`` 2.5 h, ``rand_time`` 5 min.
- **libreswan pluto** (``rekeyfuzz.c`` ``fuzz_rekey_margin``, ``ikev2_parent.c``): one timer per IKE_SA or CHILD_SA,
  rekey at ``lifetime - margin``; the original initiator's margin is ``rekeymargin * (100 + f) / 100`` with f a
  whole number 0 .. ``rekeyfuzz`` percent (``get_rnd_uintmax() % (fuzz + 1)``), the responder's a fixed
  ``rekeymargin / 2``; defaults ``ikelifetime``/``ipsec-lifetime`` 8 h, ``rekeymargin`` 9 min, ``rekeyfuzz`` 100 %:
  the initiator rekeys 9 to 18 min before the end, the responder 4.5 min before it. In ikesim terms: per side
  ``rekey_fraction`` for the responder, ``rand_time`` 9 min from 7 h 51 min for the initiator.
"""

from __future__ import annotations

import math
from typing import Protocol

from ikesim.ike.config import Lifetime
from ikesim.rng import Rng

__all__ = ["apply_jitter", "child_deadlines", "ike_jitter", "ike_jittered", "ike_deadlines"]

class Seeded(Protocol):
    """What the draws need of the daemon (``IkeCore``; no import of it: ``core`` imports this module)."""

    @property
    def rng_lifetime(self) -> Rng:
        """The daemon's stream of lifetime draws, ``rng.child("lifetime")`` (RFC 7296 §2.8)."""


def apply_jitter(rekey: float, rand: float, u: float) -> float:
    """strongSwan ``apply_jitter`` for U = *u* in [0, 1): *rekey* minus ``(uint64)(min(rand + 1, rekey) * u)``
    whole seconds, *rand* cut to whole seconds; rand 0: *rekey* (RFC 7296 §2.8)."""
    whole = math.floor(rand)
    if whole <= 0:
        return rekey
    return rekey - int(min(whole + 1, rekey) * u)


def child_deadlines(core: Seeded, lifetime: Lifetime, now: float) -> tuple[float | None, float | None]:
    """(rekey_at, expire_at) of a CHILD_SA installed *now*: the earlier of its inbound and outbound SAs' soft
    lifetimes, one ``apply_jitter`` draw each, and ``life_time`` after *now* (RFC 7296 §2.8; ``child_sa.c``)."""
    soft = lifetime.soft_after()
    hard = lifetime.hard_after()
    rekey_at = None
    if soft is not None:
        if math.floor(lifetime.rand_time) > 0:
            rng = core.rng_lifetime
            soft = min(apply_jitter(soft, lifetime.rand_time, rng.random()),    # inbound SA
                       apply_jitter(soft, lifetime.rand_time, rng.random()))    # outbound SA
        rekey_at = now + soft
    return rekey_at, (now + hard if hard is not None else None)


def ike_jitter(lifetime: Lifetime, reauth_time: float) -> int:
    """strongSwan's IKE ``jitter_time``: ``rand_time`` in whole seconds, cut to ``rekey_time`` and to ``reauth_time``
    when it exceeds them (``peer_cfg_create``; RFC 7296 §2.8)."""
    jitter = math.floor(lifetime.rand_time)
    soft = lifetime.soft_after()
    for bound in (soft, reauth_time):
        if bound and jitter > bound:
            jitter = math.floor(bound)
    return max(0, jitter)


def ike_jittered(time: float, jitter: int, rng: Rng) -> float:
    """strongSwan ``get_rekey_time``/``get_reauth_time``: *time* minus ``random() % jitter`` whole seconds (0 .. jitter
    - 1); no draw without jitter (RFC 7296 §2.8, §2.8.3)."""
    if jitter <= 0:
        return time
    return time - rng.below(jitter)


def ike_deadlines(core: Seeded, lifetime: Lifetime, reauth_time: float,
                  now: float) -> tuple[float | None, float | None]:
    """(rekey_at, expire_at) of an IKE_SA established *now*: the drawn rekey time, and ``over_time`` after it (``ike_sa.c``
    ``set_state``; ``ike.reauth.arm`` bounds it by the reauthentication time); ``life_time`` after *now* when the
    IKE_SA is never rekeyed (RFC 7296 §2.8)."""
    soft = lifetime.soft_after()
    hard = lifetime.hard_after()
    if soft is None:
        return None, (now + hard if hard is not None else None)
    rekey_at = now + ike_jittered(soft, ike_jitter(lifetime, reauth_time), core.rng_lifetime)
    return rekey_at, (rekey_at + max(0.0, hard - soft) if hard is not None else None)
