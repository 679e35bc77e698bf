"""Reauthentication: ``IkePolicy.reauth_time`` and ``make_before_break``, as strongSwan (RFC 7296 §2.8.3).

RFC 7296 §2.8.3: an IKE_SA is rekeyed without a new authentication; to authenticate the peer again a new IKE_SA
is made from scratch (IKE_SA_INIT and IKE_AUTH) with new CHILD_SAs, and the old one is deleted. This mirrors
strongSwan (``ike_sa.c`` ``set_state``, ``reauth``, ``reestablish``, ``inherit_post``, ``retransmit``;
``rekey_ike_sa_job.c`` ``get_retry_delay``; ``task_manager_v2.c`` ``trigger_mbb_reauth``, ``queue_ike_reauth``;
``ike_reauth.c``, ``ike_reauth_complete.c``, ``ike_delete.c``, ``ike_rekey.c`` ``process_r``; ``peer_cfg.c``
``get_reauth_time``):

- Deadline (``arm``, when the IKE_SA is established): ``reauth_time - random() % rand_time`` whole seconds after it,
  drawn once from the daemon's own ``reauth`` stream (strongSwan jitters ``reauth_time`` with the IKE ``rand_time`` as
  it does ``rekey_time``, ``ike.lifetimes``). The hard lifetime becomes the earlier of the drawn rekey time and the
  reauthentication deadline, plus ``over_time`` (strongSwan ``STAT_DELETE = min(STAT_REKEY, STAT_REAUTH) +
  over_time``); ``over_time`` is ``life_time`` minus the nominal rekey time, or minus ``reauth_time`` when IKE
  rekeying is off. An IKE_SA made by an IKE rekey keeps the old one's deadline and draws none (``inherit_post``:
  "reauthentication timeout survives a rekeying"). With ``reauth_time`` 0 nothing is drawn or armed.
- When it comes (``on_timer``, ``IkeSaReauthenticating``): while an IKE_SA rekey is under way, or a CHILD_SA is
  neither INSTALLED nor REKEYED (a rekey or a Delete of it in flight), it is tried again ``collision_retry_base -
  U(0, collision_retry_jitter)`` later (``get_retry_delay``: 15 s minus up to 10 s), ``delayed``. An end that
  cannot initiate (no ``remote_addr``: a gateway's connection) does not reauthenticate, ``refused`` (strongSwan's
  responder when it cannot: "initiator did not reauthenticate as requested"; ikesim's gateway stands for the usual
  roadwarrior gateway that assigned virtual IPs or used EAP); its IKE_SA lives until its hard lifetime, by which
  the client has reauthenticated. Any other end, original initiator or not, reauthenticates (``ike_sa.reauth``).
- From then on the IKE_SA is *reauthenticating* (``COND_REAUTHENTICATING``): a scheduled IKE rekey of ours is
  skipped (``ike_sa.rekey`` returns INVALID_STATE), the peer's IKE rekey is answered TEMPORARY_FAILURE ("peer
  initiated rekeying, but we are reauthenticating"), CHILD_SA exchanges go on as usual.
- ``make_before_break`` (``trigger_mbb_reauth``): a new IKE_SA at once (``reestablish.reestablish``, reason
  ``reauth``) with the configurations of the CHILD_SAs not REKEYED or DELETED, the first by IKE_AUTH, the others by
  CREATE_CHILD_SA, and the CHILD_SA creations queued on the old IKE_SA moved over (one in flight stays); when the
  new IKE_SA has run them all (``ike_reauth_complete``: queued behind them, ``start_complete``) the old IKE_SA's
  Delete (reason ``reauth``) goes first in its queue. Traffic moves to each new CHILD_SA as it is installed (the
  data plane follows ``ChildSaInstalled``); the old CHILD_SAs go with the old IKE_SA. If the new IKE_SA fails, the
  old one stays, reauthenticating, until its hard lifetime.
- break-before-make (``ike_reauth``): the old IKE_SA's Delete (reason ``reauth``), queued ahead of CHILD_SA
  creations and rekeys (behind other Deletes, as ``TASK_IKE_REAUTH`` activates); once it is answered, or given up
  (``retransmit``: "delete during reauthentication failed, trying to reestablish IKE_SA anyway"), or crossed by the
  peer's Delete (``ike_delete`` ``build_r``), the new IKE_SA (``reestablish``, reason ``reauth``) leaves before the
  old IKE_SA's CHILD_SAs are removed.
- Without a CHILD_SA to re-create nothing is re-established (``reason`` ``no_children``): make-before-break leaves
  the IKE_SA as it is (reauthenticating) until its hard lifetime; break-before-make deletes it all the same.
- A reauthenticating IKE_SA whose request gets no answer is re-established whatever ``dpd_action`` says
  (``reestablish`` with ``COND_REAUTHENTICATING``); one the peer deletes is not (``ike_delete`` ``process_r``), nor
  does ``close_action`` apply.

Reauthenticating IKE_SAs are kept by local SPI in a table made on first use (a daemon that never reauthenticates
carries nothing); the entry goes when the IKE_SA is removed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.errors import TemporaryFailure
from ikesim.ike import events as ev
from ikesim.ike.config import Lifetime
from ikesim.ike.exchange import Work
from ikesim.ike.lifetimes import ike_jitter, ike_jittered
from ikesim.ike.reestablish import CREATING, children_to_recreate, reestablish
from ikesim.ike.state import ChildSaState, IkeSaState

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.sa import IkeSa

__all__ = ["MAKE_BEFORE_BREAK", "BREAK_BEFORE_MAKE", "over_time", "arm", "on_timer", "start_complete",
           "reauthenticating", "refuse_ike_rekey", "on_ike_sa_removed"]

MAKE_BEFORE_BREAK = "make_before_break"
BREAK_BEFORE_MAKE = "break_before_make"
_TABLE = "_reauth"
"""Key of the table in the core's ``__dict__``: local SPI of a reauthenticating IKE_SA -> its mode."""
_COMPLETE = "reauth_complete"
"""``Work.purpose`` queued on a make-before-break IKE_SA behind its CHILD_SA creations (``spi``: the old IKE SPI)."""
_STEADY = (ChildSaState.INSTALLED, ChildSaState.REKEYED)
"""CHILD_SA states that let a reauthentication start (``get_retry_delay``)."""
_BEFORE = ("delete_ike", "delete_child", "delete_expired_child", "delete_failed_child", "mobike")
"""Queued work a break-before-make Delete stays behind (tasks ``TASK_IKE_REAUTH`` activates after)."""


def over_time(lifetime: Lifetime, reauth_time: float) -> float | None:
    """strongSwan's ``over_time``: how long an IKE_SA outlives its rekey or reauthentication time (RFC 7296 §2.8.3):
    ``life_time`` minus the nominal rekey time (minus ``reauth_time`` without IKE rekeying); None: no hard lifetime."""
    hard = lifetime.hard_after()
    if hard is None:
        return None
    soft = lifetime.soft_after()
    return max(0.0, hard - (soft if soft is not None else reauth_time))


def _table(core: IkeCore) -> dict[bytes, str]:
    """Local SPI of each reauthenticating IKE_SA -> ``make_before_break`` or ``break_before_make``."""
    table: dict[bytes, str] = vars(core).setdefault(_TABLE, {})
    return table


def reauthenticating(core: IkeCore, sa: IkeSa) -> bool:
    """*sa* is being reauthenticated (strongSwan ``COND_REAUTHENTICATING``, RFC 7296 §2.8.3)."""
    table: dict[bytes, str] | None = vars(core).get(_TABLE)
    return table is not None and sa.local_spi in table


def arm(core: IkeCore, sa: IkeSa, now: float) -> None:
    """Arm the reauthentication deadline of the IKE_SA just established and bound its hard lifetime by it (RFC 7296
    §2.8.3; strongSwan ``set_state``, ``inherit_post``); call after ``rekey_at``/``expire_at`` are drawn."""
    ike = sa.profile.connection.ike
    lifetime = ike.lifetime
    inherited = core.timers.deadline(("reauth", sa.rekey_of)) if sa.rekey_of is not None else None
    if inherited is not None:
        reauth_at = inherited
    else:
        jitter = ike_jitter(lifetime, ike.reauth_time)
        reauth_at = now + (ike_jittered(ike.reauth_time, jitter, core.rng_reauth) if jitter else ike.reauth_time)
    core.timers.arm(("reauth", sa.local_spi), reauth_at)
    over = over_time(lifetime, ike.reauth_time)
    if over is not None and sa.expire_at is not None:
        sa.expire_at = min(sa.expire_at, reauth_at + over)


def _busy(sa: IkeSa) -> str:
    """What keeps a reauthentication from starting now, or "" (strongSwan ``get_retry_delay``)."""
    if sa.state is not IkeSaState.ESTABLISHED:
        return sa.state.value
    ex = sa.active
    if (ex is not None and ex.purpose == "rekey_ike") or sa.collision is not None:
        return "ike_rekeying"
    for child in sa.children.values():
        if child.state not in _STEADY:
            return f"child_{child.state.value}"
    return ""


def on_timer(core: IkeCore, spi: bytes, now: float) -> None:
    """The IKE_SA's reauthentication time came: delay, refuse, or start it (RFC 7296 §2.8.3; strongSwan
    ``rekey_ike_sa_job`` with reauth, ``ike_sa.reauth``, ``task_manager.queue_ike_reauth``)."""
    sa = core.sas.get(spi)
    if sa is None or sa.local_spi != spi:
        return
    busy = _busy(sa)
    if busy:
        ike = sa.profile.connection.ike
        jitter = core.rng_reauth.uniform(0.0, ike.collision_retry_jitter) if ike.collision_retry_jitter > 0 else 0.0
        retry_at = now + max(0.0, ike.collision_retry_base - jitter)
        core.timers.arm(("reauth", spi), retry_at)
        core.emit(ev.IkeSaReauthenticating(**sa.ids(), action="delayed", reason=busy, retry_at=retry_at))
        return
    if sa.profile.connection.remote_addr is None:
        core.emit(ev.IkeSaReauthenticating(**sa.ids(), action="refused", reason="responder"))
        return
    mbb = sa.profile.connection.ike.make_before_break
    mode = MAKE_BEFORE_BREAK if mbb else BREAK_BEFORE_MAKE
    _table(core)[spi] = mode
    children = children_to_recreate(sa, active=not mbb)
    core.emit(ev.IkeSaReauthenticating(**sa.ids(), action=mode, reason="" if children else "no_children"))
    if mbb:
        if not children:
            return  # strongSwan: "unable to reauthenticate IKE_SA, no CHILD_SA to recreate"; stays reauthenticating
        new = reestablish(core, sa, "reauth", now, children=children, action=mode)
        if new is None:
            return
        sa.queue[:] = [w for w in sa.queue if w.purpose not in CREATING]  # adopted by the new IKE_SA
        new.queue.append(Work(_COMPLETE, spi=spi))
        return
    at = next((i for i, w in enumerate(sa.queue) if w.purpose not in _BEFORE), len(sa.queue))
    sa.queue.insert(at, Work("delete_ike", reason="reauth"))
    core.pump(sa, now)


def start_complete(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """The new IKE_SA *sa* ran its CHILD_SA creations: queue the old IKE_SA's Delete (RFC 7296 §2.8.3; strongSwan
    ``ike_reauth_complete``). Sends nothing on *sa* (returns False)."""
    old = core.sas.get(work.spi)
    if old is not None and old.local_spi == work.spi and old.state is IkeSaState.ESTABLISHED:
        core.enqueue(old, Work("delete_ike", reason="reauth"), now, front=True)
    return False


def refuse_ike_rekey(core: IkeCore, sa: IkeSa) -> None:
    """The peer rekeys an IKE_SA we reauthenticate: TEMPORARY_FAILURE (RFC 7296 §2.25.2; strongSwan ``ike_rekey``
    ``process_r``: "peer initiated rekeying, but we are reauthenticating"; one being deleted is refused as such)."""
    if sa.state is IkeSaState.ESTABLISHED and reauthenticating(core, sa):
        core.emit(ev.ExchangeCollision(**sa.ids(), case="ike_rekey_vs_reauth", spi=sa.local_spi))
        raise TemporaryFailure("the IKE_SA is being reauthenticated")


def on_ike_sa_removed(core: IkeCore, sa: IkeSa, reason: str) -> bool:
    """*sa* is about to be removed for *reason* (the time is ``core.clock``): a break-before-make reauthentication
    makes its new IKE_SA now (RFC 7296 §2.8.3). True: *sa* was reauthenticating, and ``dpd_action``/``close_action``
    must not act (strongSwan ``reestablish`` with ``COND_REAUTHENTICATING``)."""
    table: dict[bytes, str] | None = vars(core).get(_TABLE)
    mode = table.pop(sa.local_spi, None) if table else None
    if mode is None:
        return False
    ours = mode == BREAK_BEFORE_MAKE and sa.state is IkeSaState.DELETING and sa.delete_reason == "reauth"
    lost = sa.state is IkeSaState.ESTABLISHED and reason in ("timeout", "dpd_timeout")
    if ours or lost:
        reestablish(core, sa, "reauth", core.clock, action=mode)
    return True
