"""Client reconnect strategies: ``IkePolicy.roam`` and local liveness probes (RFC 7296 §2.4, §2.23; RFC 4555).

A *client* is an end whose connection has a ``remote_addr`` (the only kind that can initiate again). Its path under
an established IKE_SA breaks when the host's address goes away (``IkeDaemon.set_local_addresses``; ``mobike._roam``
calls ``IkeCore.roam_client``) or when one of its liveness probes gets no answer. ``roam`` says what it does then:

- ``reauth`` (default): strongSwan's ``ike_sa.roam``: MOBIKE if negotiated, else a new IKE_SA from another address
  (``IkeDaemon.reauthenticate``); ``ike.mobike`` does it, this module only for a failed probe.
- ``follow``: without MOBIKE, the IKE_SA stays; our address moves to the best usable one (``IkeSaMoved``, method
  ``follow``: the data plane moves its ESP too) and a liveness check (an empty INFORMATIONAL, ``ExchangeStarted``
  reason ``follow``, the configured schedule) leaves from there at once, or the request in flight is sent again
  from there (``Retransmitted`` reason ``local_moved``). The peer follows only if it sees us behind a NAT (RFC 7296
  §2.23, ``natt.follow_peer``). Else its answer goes to the old address; that of a retransmission comes back (it
  is answered to where it came from, RFC 7296 §2.1), so our checks succeed while the peer's ESP and requests still
  go to the old address: the peer's DPD, then ours, decide (``dpd_action``).
- ``keep``: without MOBIKE, nothing is done (strongSwan with a statically configured local address): DPD or a
  timeout notices.
- ``smart``: the steps VPN clients describe, each announced by ``ReconnectStep`` (``spi_i``/``spi_r``: the IKE_SA
  whose path broke, in every step), the run closed by ``ReconnectEnded``:

  1. ``create_child``: the IKE_SA stays; without MOBIKE our address moves as with ``follow``; a request in flight is
     sent again from there; CREATE_CHILD_SA for every child configuration the IKE_SA has (RFC 7296 §1.3.1) leaves
     on the *step schedule*: ``STEP_WAITS``, 4 transmissions 2.5 s apart (strongSwan's path-test interval,
     ``ROUTABILITY_CHECK_INTERVAL``), given up 10 s after the first; the request in flight is given the same
     schedule from then on. An answer restores the tunnel where it shows that the peer now sends to us: without
     MOBIKE if our address did not change or the peer follows us (it sees us behind a NAT and is not behind one,
     RFC 7296 §2.23); else it answered only because a retransmission is answered to where it came from (RFC 7296
     §2.1; a strongSwan peer answers every request there), its ESP still goes to the old address, and step 3
     follows at once. With MOBIKE an answer on the IKE_SA's own path restores it; one from another path proves
     only that path (a MOBIKE peer moves on UPDATE_SA_ADDRESSES alone, RFC 4555 §3.5): step 2 follows. Each CHILD_SA
     that came up replaces the old one of its configuration, which is deleted (``ChildSaDeleted`` reason
     ``reconnect``). No answer: step 2 with MOBIKE, else step 3 (the old IKE_SA deleted).
  2. ``mobike`` (MOBIKE only): the path test and UPDATE_SA_ADDRESSES (RFC 4555 §3.5, §3.6): ``mobike.queue``'s
     ``check``, queued first. When step 1's request got no answer it may never have reached the peer, and a later
     request would lie outside the peer's window (RFC 7296 §2.3): that request itself becomes the path test (sent
     on every path every 2.5 s, ten times, as strongSwan's ``enable_probing`` of the MOBIKE task in flight), and
     the ``check`` follows its answer. The update's answer restores the tunnel; a refusal, or no answer, is step 3.
  3. ``reestablish``: new IKE_SAs of the connection (``IkeSaReestablishing`` action ``restart``, then ``retry``)
     with every child configuration the old one had (``reestablish.children_to_recreate``), each one's
     IKE_SA_INIT on the step schedule, until one is established or ``keyingtries`` attempts are used up (0:
     forever); attempt n+1 starts ``backoff(n)`` = min(1 s x 2^(n-1), 60 s) after attempt n was given up:
     1, 2, 4, ... 32, 60, 60 s (exponential backoff, capped; AOSP's platform IKEv2 VPN waits 1, 2, 5, 30, 60 s,
     then 5 and 15 min). The old IKE_SA gets its Delete once the first new one is under way (as
     ``IkeDaemon.reauthenticate``) if it is still up; when step 2's path test gave up it is already gone
     (break-before-make, as ``dpd_action = restart``).

  A second break during steps 1-2 starts the run again (``ReconnectEnded`` outcome ``superseded``).

With MOBIKE negotiated ``reauth``, ``follow`` and ``keep`` all use MOBIKE: strongSwan keeps a static path only
without MOBIKE, and RFC 4555 §3.5 turns the §2.23 follow off. A responder (no ``remote_addr``) keeps strongSwan's
behaviour whatever ``roam`` says.

Local liveness probes (``IkePolicy.liveness_probe`` > 0, clients only): after that many seconds without inbound
IKE or ESP (the data plane's use stats, as DPD counts them, RFC 7296 §2.4) an empty INFORMATIONAL (``ExchangeStarted``
purpose ``dpd``, reason ``liveness_probe``) leaves on ``PROBE_WAITS``: 3 transmissions 1 s apart, given up 3 s
after the first. While another request is in flight none is sent (the request checks liveness, as DPD). A probe
that gets no answer is a broken path (``LivenessProbeFailed``): its local address is taken out of the host's usable
list (``IkeCore.usable``) while another one is left, as a source address the peer cannot be reached from, until
the host next reports its addresses; then:

- MOBIKE (``roam`` not ``smart``): the probe itself becomes the path test from the best remaining address to every
  peer address (RFC 4555 §3.6); an answer from another path is followed by the ``check`` that moves the IKE_SA. No
  answer: DPD's outcome (``DeadPeerDetected``, ``dpd_action``);
- ``smart``: the steps above (the probe is step 1's request in flight);
- ``follow``: our address moves and the probe is sent again from there on the configured schedule;
- ``reauth``: a new IKE_SA from the best remaining address, then the old one's Delete from there (as
  ``IkeDaemon.reauthenticate``; ``IkeSaReestablishing`` reason ``liveness_probe``);
- ``keep``, or no other usable address (``follow``, ``reauth``): the peer is taken as dead (``DeadPeerDetected``,
  ``dpd_action``), as DPD would find, sooner.

strongSwan has no local probe: its DPD on a MOBIKE IKE_SA is a MOBIKE task whose retransmissions test every path once
the kernel's source address for the peer changes (``ike_mobike.c`` ``transmit``, ``task_manager_v2.c``
``retransmit``), and ``charon.check_current_path`` sends a DPD on a roam event. A run is kept per IKE_SA (by local
SPI, in a table made on first use); the table entry of step 3 follows the newest attempt's SPI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ikesim.ike import create_child_sa, mobike, resume_exchange
from ikesim.ike import events as ev
from ikesim.ike.exchange import Work
from ikesim.ike.reestablish import children_to_recreate, local_address, reestablish
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.types import Address
from ikesim.wire.iana import ExchangeType
from ikesim.wire.payloads import NotifyPayload

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.ike.exchange import Exchange
    from ikesim.ike.profile import ConnectionProfile
    from ikesim.ike.sa import IkeSa
    from ikesim.wire.message import Message

__all__ = [
    "STRATEGIES",
    "STEP_WAITS",
    "PROBE_WAITS",
    "BACKOFF_FIRST",
    "BACKOFF_MAX",
    "backoff",
    "roamed",
    "start_child",
    "start_probe",
    "established",
    "on_probe_timer",
    "on_backoff_timer",
    "on_retransmit",
    "on_response",
    "on_ike_sa_removed",
]

STRATEGIES = ("reauth", "follow", "keep", "smart")
"""Values of ``IkePolicy.roam``."""
STEP_WAITS = (mobike.ROUTABILITY_CHECK_INTERVAL,) * 4
"""Waits after each transmission of a step-1 request and of a step-3 IKE_SA_INIT: sent at 0, 2.5, 5 and 7.5 s, given
up at 10 s (strongSwan's path-test interval, ``ROUTABILITY_CHECK_INTERVAL``)."""
PROBE_WAITS = (1.0, 1.0, 1.0)
"""Waits after each transmission of a liveness probe: sent at 0, 1 and 2 s, given up at 3 s."""
BACKOFF_FIRST = 1.0
"""Seconds between the first step-3 attempt being given up and the second; doubled for every further one."""
BACKOFF_MAX = 60.0
"""Longest wait between two step-3 attempts (seconds)."""

_TABLE = "_reconnect"
"""Key of the run table in the core's ``__dict__`` (made on first use)."""
_CHILD = "reconnect_child"
"""``Work.purpose`` of a step-1 CREATE_CHILD_SA (its exchange's purpose is ``create_child``)."""
_PROBE = "liveness_probe"
"""``Work.purpose`` of a liveness probe (its exchange's purpose is ``dpd``)."""
_ESTABLISHED = IkeSaState.ESTABLISHED


@dataclass(slots=True)
class _Run:
    """One smart reconnect of a connection (strategy ``smart``)."""

    ids: dict[str, Any]
    """``IkeSa.ids()`` of the IKE_SA whose path broke: every ``ReconnectStep``/``ReconnectEnded`` names it."""
    reason: str
    """``address_change`` or ``liveness_probe``."""
    step: str = "create_child"
    attempt: int = 1
    profile: Any = None
    """Step 3: the connection's ``ConnectionProfile``."""
    children: tuple[str, ...] = ()
    """Step 3: the child configurations to bring back."""
    moved: bool = False
    """Step 1 moved our address (without MOBIKE)."""


def backoff(attempt: int) -> float:
    """Seconds from step-3 attempt *attempt* being given up to the next one: 1, 2, 4, ... capped at 60."""
    return min(BACKOFF_FIRST * 2.0 ** (attempt - 1), BACKOFF_MAX)


def _table(core: IkeCore) -> dict[bytes, _Run]:
    """The run table: local SPI of an IKE_SA (step 3: of the newest attempt) -> its run."""
    table: dict[bytes, _Run] = vars(core).setdefault(_TABLE, {})
    return table


def _run_of(core: IkeCore, sa: IkeSa) -> _Run | None:
    """The run of *sa*, if any (no table is made)."""
    table: dict[bytes, _Run] | None = vars(core).get(_TABLE)
    return table.get(sa.local_spi) if table else None


def _client(sa: IkeSa) -> bool:
    """The connection can initiate (has a ``remote_addr``): only a client runs ``roam`` strategies and probes."""
    return sa.profile.connection.remote_addr is not None


def _strategy(sa: IkeSa) -> str:
    """The ``roam`` strategy that applies to *sa* (``reauth`` for a responder)."""
    return sa.profile.connection.ike.roam if _client(sa) else "reauth"


def _end(core: IkeCore, run: _Run, outcome: str) -> None:
    """Close a run: ``ReconnectEnded``."""
    core.emit(ev.ReconnectEnded(**run.ids, step=run.step, attempt=run.attempt, outcome=outcome))


def _retime(core: IkeCore, sa: IkeSa, ex: Exchange, waits: tuple[float, ...], now: float) -> None:
    """From now on *ex* retransmits after *waits* (the transmission just made is the first); RFC 7296 §2.1 leaves
    the schedule to the implementation. Retransmissions counted so far stay counted."""
    ex.timeouts = ex.timeouts[: ex.attempts + 1] + waits[1:]
    ex.deadline = now + waits[0]
    core.timers.arm(("rtx", sa.local_spi), ex.deadline)


def _move_local(core: IkeCore, sa: IkeSa) -> bool:
    """Without MOBIKE: our end of *sa* (and its CHILD_SAs' ESP) moves to the best usable address, the port kept;
    dynamic selectors keep the old address (RFC 4555 §1.1, as ``mobike``). False if it is there already."""
    usable = mobike.usable_ips(core)
    if not usable or usable[0] == sa.local.ip:
        return False
    mobike.move(core, sa, Address(usable[0], sa.local.port), sa.peer, "follow", None)
    return True


def _exclude(core: IkeCore, ip: str) -> None:
    """Take *ip* out of the host's usable addresses while another one is left (a failed probe's source)."""
    usable = mobike.usable_ips(core)
    if ip in usable and len(usable) > 1:
        core.usable = tuple(a for a in usable if a != ip)


def _in_flight(sa: IkeSa) -> Exchange | None:
    """Our request in flight that waits for an answer, if any."""
    ex = sa.active
    return ex if ex is not None and not ex.fire_and_forget else None


def _to_path_test(core: IkeCore, sa: IkeSa, ex: Exchange, now: float) -> bool:
    """Send *ex* on every path from now on, every 2.5 s, ten times (RFC 4555 §3.6; strongSwan ``enable_probing``)."""
    ex.probing = True
    ex.attempts = 0
    return mobike.retransmit(core, sa, ex, now)


def _check_first(core: IkeCore, sa: IkeSa, now: float) -> None:
    """A MOBIKE path test and update ahead of everything queued, unless one is under way (RFC 4555 §3.5, §3.6)."""
    ex = sa.active
    if (ex is not None and ex.purpose == "mobike" and "check" in ex.flags.split()) or any(
            w.purpose == "mobike" and "check" in w.flags.split() for w in sa.queue):
        return
    core.enqueue(sa, Work("mobike", flags="check"), now, front=True)


def _followed(sa: IkeSa) -> bool:
    """Without MOBIKE the peer follows our new address: it sees us behind a NAT and is not behind one itself (RFC 7296
    §2.23; ``natt.follow_peer``, strongSwan ``update_hosts``)."""
    return sa.nat_local and not sa.nat_peer


# ---------------------------------------------------------------------- roam strategies
def roamed(core: IkeCore, sa: IkeSa, now: float) -> None:
    """Our address under the client IKE_SA *sa* went away and ``roam`` is ``follow`` or ``smart`` (``mobike._roam``
    decided): run that strategy (RFC 7296 §2.23; RFC 4555 §3.5)."""
    if _strategy(sa) == "smart":
        _start_run(core, sa, "address_change", now)
    else:
        _follow(core, sa, now)


def _follow(core: IkeCore, sa: IkeSa, now: float) -> None:
    """Move our address and send a liveness check (or our request in flight) from there (RFC 7296 §2.4, §2.23)."""
    _move_local(core, sa)
    ex = _in_flight(sa)
    if ex is not None:
        core.resend_request(sa, ex, "local_moved")
    else:
        core.enqueue(sa, Work("dpd", reason="follow"), now)


def _start_run(core: IkeCore, sa: IkeSa, reason: str, now: float) -> None:
    """Smart reconnect of *sa*, step 1 (CREATE_CHILD_SA from the new address, RFC 7296 §1.3.1, §2.23)."""
    if any(w.purpose == "delete_ike" for w in sa.queue):
        return  # the IKE_SA is going away (an earlier run's step 3)
    table = _table(core)
    old = table.pop(sa.local_spi, None)
    if old is not None:
        _end(core, old, "superseded")
    run = _Run(ids=sa.ids(), reason=reason)
    table[sa.local_spi] = run
    sa.queue[:] = [w for w in sa.queue if w.purpose != _CHILD]
    names = [n for n in children_to_recreate(sa) if n in sa.profile.children]
    if not names:  # nothing to create: go on with the next step
        if sa.mobike:
            _step_mobike(core, sa, run, now)
        else:
            _step_reestablish(core, sa, run, now, delete_old=True)
        return
    core.emit(ev.ReconnectStep(**run.ids, step="create_child", attempt=1, reason=reason))
    run.moved = not sa.mobike and _move_local(core, sa)
    ex = _in_flight(sa)
    if ex is not None and not ex.probing:
        if ex.purpose == "mobike":
            _to_path_test(core, sa, ex, now)  # as ``mobike`` does with a MOBIKE request whose address went away
        else:
            core.resend_request(sa, ex, "local_moved")
            _retime(core, sa, ex, STEP_WAITS, now)
    busy = ex.work.child if ex is not None and ex.work is not None and ex.work.purpose == _CHILD else None
    sa.queue[0:0] = [Work(_CHILD, child=n, reason="reconnect") for n in names if n != busy]
    core.pump(sa, now)


def _step_mobike(core: IkeCore, sa: IkeSa, run: _Run, now: float) -> None:
    """Step 2: a MOBIKE path test and update, first in the queue (RFC 4555 §3.5, §3.6)."""
    run.step = "mobike"
    core.emit(ev.ReconnectStep(**run.ids, step="mobike", attempt=1, reason=run.reason))
    _check_first(core, sa, now)


def _step_reestablish(core: IkeCore, sa: IkeSa, run: _Run, now: float, *, delete_old: bool) -> None:
    """Step 3, attempt 1: a new IKE_SA with *sa*'s child configurations (RFC 7296 §1.2); then, if *delete_old*, the
    Delete of *sa* (RFC 7296 §1.4.1), as ``IkeDaemon.reauthenticate`` does. Without a new IKE_SA (nothing to bring
    back) *sa* is left to DPD."""
    table = _table(core)
    table.pop(sa.local_spi, None)
    run.step, run.attempt = "reestablish", 1
    run.profile, run.children = sa.profile, children_to_recreate(sa)
    core.emit(ev.ReconnectStep(**run.ids, step="reestablish", attempt=1, reason=run.reason))
    new = _initiate(core, run, sa.local_spi, "reconnect", "restart", now)
    if new is None:
        _end(core, run, "failed")
        return
    table[new.local_spi] = run
    if delete_old:
        core.enqueue(sa, Work("delete_ike", reason="reconnect"), now, front=True)


def _initiate(core: IkeCore, run: _Run, old_spi: bytes, reason: str, action: str, now: float) -> IkeSa | None:
    """IKE_SA_INIT of a new IKE_SA of the run's connection on the step schedule; its other child configurations
    queued behind IKE_AUTH (RFC 7296 §1.2; as ``reestablish``). None: nothing to bring back, or nowhere to send."""
    profile: ConnectionProfile = run.profile
    conn = profile.connection
    if conn.remote_addr is None or not run.children:
        return None
    mark = len(core.events)
    new = resume_exchange.initiate(core, profile, local_address(core, conn), conn.remote_addr, now)  # RFC 5723 §4.3
    first = profile.first_child
    made = [first.policy.name] if first is not None else []
    for name in run.children:
        if name not in made and name in profile.children:
            made.append(name)
            new.queue.append(Work("create_child", child=name, trigger="reestablish"))
    core.events.insert(mark, ev.IkeSaReestablishing(**new.ids(), old_spi=old_spi, reason=reason, action=action,
                                                    attempt=run.attempt, children=" ".join(made)))
    ex = new.active
    if ex is not None:
        _retime(core, new, ex, STEP_WAITS, now)
    return new


def on_backoff_timer(core: IkeCore, spi: bytes, now: float) -> None:
    """Step 3: the backoff after a failed attempt (SA *spi*) is over: the next attempt (RFC 7296 §1.2, §2.4)."""
    table: dict[bytes, _Run] | None = vars(core).get(_TABLE)
    run = table.pop(spi, None) if table else None
    if table is None or run is None or run.step != "reestablish":
        return
    run.attempt += 1
    core.emit(ev.ReconnectStep(**run.ids, step="reestablish", attempt=run.attempt, reason=run.reason))
    new = _initiate(core, run, spi, "timeout", "retry", now)
    if new is None:
        _end(core, run, "failed")
        return
    table[new.local_spi] = run


# ---------------------------------------------------------------------- requests of our own
def start_child(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """Step 1: CREATE_CHILD_SA for one child configuration, on the step schedule (RFC 7296 §1.3.1, §2.1)."""
    if not create_child_sa.start_create(core, sa, work, now):
        return False
    ex = sa.active
    assert ex is not None
    _retime(core, sa, ex, STEP_WAITS, now)
    return True


def start_probe(core: IkeCore, sa: IkeSa, work: Work, now: float) -> bool:
    """A liveness probe: an empty INFORMATIONAL on the probe schedule (RFC 7296 §2.4)."""
    ex = core.request(sa, ExchangeType.INFORMATIONAL, "dpd", [], now, work=work)
    _retime(core, sa, ex, PROBE_WAITS, now)
    return True


def established(core: IkeCore, sa: IkeSa, now: float) -> None:
    """*sa* was established: a client with ``liveness_probe`` arms its first probe (RFC 7296 §2.4)."""
    interval = sa.profile.connection.ike.liveness_probe
    if interval > 0 and _client(sa):
        core.timers.arm(("probe", sa.local_spi), now + interval)


def _last_inbound(core: IkeCore, sa: IkeSa) -> float:
    """When IKE or ESP last arrived on *sa* (the data plane's use stats, as DPD reads them, RFC 7296 §2.4)."""
    esp = core.last_esp_in(sa)
    return sa.last_received_at if esp is None else max(esp, sa.last_received_at)


def on_probe_timer(core: IkeCore, spi: bytes, now: float) -> None:
    """``liveness_probe`` seconds of inbound silence may be over: probe, or look again later (RFC 7296 §2.4)."""
    sa = core.sas.get(spi)
    if sa is None or sa.local_spi != spi or sa.state is not _ESTABLISHED:
        return
    interval = sa.profile.connection.ike.liveness_probe
    last_in = _last_inbound(core, sa)
    if last_in + interval > now:
        core.timers.arm(("probe", spi), last_in + interval)
        return
    core.timers.arm(("probe", spi), now + interval)
    if sa.active is not None or sa.queue or _run_of(core, sa) is not None:
        return  # a request in flight (or about to be) checks liveness; a reconnect is under way
    core.enqueue(sa, Work(_PROBE, reason=_PROBE), now)


def _probe_failed(core: IkeCore, sa: IkeSa, ex: Exchange, now: float) -> bool:
    """A liveness probe got no answer: the path is broken; act as ``roam`` says (see the module docstring)."""
    strategy = _strategy(sa)
    src = core.request_source(sa)
    others = [ip for ip in mobike.usable_ips(core) if ip != src.ip]
    if sa.mobike and strategy != "smart":
        action = "mobike"
    elif strategy == "smart":
        action = "smart"
    elif strategy == "keep" or not others or (strategy == "reauth" and not children_to_recreate(sa)):
        action = "dead"
    else:
        action = strategy
    if action != "dead":
        _exclude(core, src.ip)
    core.emit(ev.LivenessProbeFailed(**sa.ids(), local=src, peer=sa.peer,
                                     addresses=" ".join(mobike.usable_ips(core)), action=action))
    if action == "dead":
        return False  # the daemon gives up on it as on DPD: DeadPeerDetected, dpd_action
    if action == "mobike":
        return _to_path_test(core, sa, ex, now)
    if action == "smart":
        _start_run(core, sa, _PROBE, now)
        return True
    if action == "follow":
        _move_local(core, sa)
        core.resend_request(sa, ex, "local_moved")
        _retime(core, sa, ex, tuple(sa.profile.connection.ike.retransmit.timeouts()), now)
        return True
    # reauth, as ``IkeDaemon.reauthenticate``: a new IKE_SA, then the old one's Delete from the new address.
    core.complete(sa, ex, "timeout")
    reestablish(core, sa, _PROBE, now)
    _move_local(core, sa)
    core.enqueue(sa, Work("delete_ike", reason="reauth"), now, front=True)
    return True


# ---------------------------------------------------------------------- daemon hooks
def on_retransmit(core: IkeCore, sa: IkeSa, ex: Exchange, now: float) -> bool:
    """*ex*'s deadline: True if handled here (a path test of ours, a failed probe, step 1 given up), False: the
    daemon retransmits or gives up as usual (RFC 7296 §2.1, §2.4)."""
    if ex.purpose == "mobike":
        return False
    if ex.probing:
        return mobike.retransmit(core, sa, ex, now)  # False: ten path tests unanswered, given up as usual
    if ex.retransmit_due():
        return False
    run = _run_of(core, sa)
    if run is None or run.step != "create_child" or sa.state is not _ESTABLISHED:
        work = ex.work
        return work is not None and work.purpose == _PROBE and _probe_failed(core, sa, ex, now)
    # Step 1 got no answer (its CREATE_CHILD_SA, or the request in flight it took over).
    sa.queue[:] = [w for w in sa.queue if w.purpose != _CHILD]
    if sa.mobike:
        run.step = "mobike"
        core.emit(ev.ReconnectStep(**run.ids, step="mobike", attempt=1, reason=run.reason))
        return _to_path_test(core, sa, ex, now)
    core.complete(sa, ex, "timeout")
    _step_reestablish(core, sa, run, now, delete_old=True)
    return True


def _retire_replaced(core: IkeCore, sa: IkeSa, ex: Exchange, now: float) -> None:
    """Step 1 installed a new CHILD_SA: delete the old ones of its configuration (RFC 7296 §1.4.1)."""
    new = core.children.get(ex.new_spi)
    if new is None or new.ike_spi != sa.local_spi:
        return
    for old in list(sa.children.values()):
        if old is not new and old.name == new.name and old.state is ChildSaState.INSTALLED and not old.expired:
            core.enqueue(sa, Work("delete_child", spi=old.spi_in, reason="reconnect"), now)


def _update_pending(sa: IkeSa) -> bool:
    """A MOBIKE update is in flight or queued on *sa* (RFC 4555 §3.5)."""
    ex = sa.active
    if ex is not None and ex.purpose == "mobike" and "update" in ex.flags.split():
        return True
    return any(w.purpose == "mobike" and "update" in w.flags.split() for w in sa.queue)


def on_response(core: IkeCore, sa: IkeSa, ex: Exchange, msg: Message, now: float) -> None:
    """Our request *ex* on *sa* was answered by *msg* and handled: advance a reconnect (RFC 7296 §2.23; RFC 4555
    §3.5, §3.6)."""
    work = ex.work
    step1 = work is not None and work.purpose == _CHILD
    probed = ex.probing and ex.purpose != "mobike"
    table: dict[bytes, _Run] | None = vars(core).get(_TABLE)
    run = table.get(sa.local_spi) if table else None
    if run is None and not step1 and not probed:
        return  # the common case: nothing of ours
    if run is not None and run.step == "reestablish":
        if ex.purpose == "ike_auth" and sa.state is _ESTABLISHED:
            del _table(core)[sa.local_spi]
            _end(core, run, "restored")
        return
    if sa.state is not _ESTABLISHED:
        return
    if step1 or probed:
        if step1 and run is not None and run.step == "create_child" and run.moved and not _followed(sa):
            # Answered, but the peer cannot have followed us (a retransmission is answered to where it came from,
            # RFC 7296 §2.1; a strongSwan peer answers every request there): its ESP still goes to the old address.
            _step_reestablish(core, sa, run, now, delete_old=True)
            return
        elsewhere = sa.mobike and core.rx != (sa.peer, sa.local)
        if run is not None and not elsewhere and (
                (step1 and run.step == "create_child") or (probed and run.step == "mobike")):
            del _table(core)[sa.local_spi]
            _end(core, run, "restored")
        elif run is not None and elsewhere and run.step == "create_child":
            run.step = "mobike"
            core.emit(ev.ReconnectStep(**run.ids, step="mobike", attempt=1, reason=run.reason))
        if elsewhere:
            _check_first(core, sa, now)  # the answer proves another path: move there (RFC 4555 §3.6)
        if step1:
            _retire_replaced(core, sa, ex, now)
        return
    if run is None or run.step != "mobike" or ex.purpose != "mobike":
        return
    if any(n.notify_type.is_error for n in msg.get_all(NotifyPayload)):
        _step_reestablish(core, sa, run, now, delete_old=True)  # refused (e.g. UNACCEPTABLE_ADDRESSES, §3.9)
    elif "update" in ex.flags.split() or not _update_pending(sa):
        del _table(core)[sa.local_spi]
        _end(core, run, "restored")


def on_ike_sa_removed(core: IkeCore, sa: IkeSa, reason: str) -> bool:
    """*sa* is about to be removed for *reason* (the time is ``core.clock``). True: a reconnect takes care of it and
    ``dpd_action``/``keyingtries`` must not (``reestablish.on_ike_sa_removed``)."""
    if sa.profile.connection.ike.liveness_probe > 0:
        core.timers.cancel(("probe", sa.local_spi))
    table: dict[bytes, _Run] | None = vars(core).get(_TABLE)
    run = table.pop(sa.local_spi, None) if table else None
    if table is None or run is None:
        return False
    now = core.clock
    if run.step == "reestablish":
        if sa.state is not IkeSaState.CONNECTING:
            return False
        tries = run.profile.connection.ike.keyingtries
        if reason == "timeout" and (tries == 0 or run.attempt < tries):
            table[sa.local_spi] = run
            core.timers.arm(("reconnect", sa.local_spi), now + backoff(run.attempt))
        else:
            _end(core, run, "failed")
        return True
    if sa.state is _ESTABLISHED and reason in ("timeout", "dpd_timeout", "cookie2_mismatch"):
        _step_reestablish(core, sa, run, now, delete_old=False)  # step 1 or 2 found no path
        return True
    _end(core, run, "aborted")
    return False
