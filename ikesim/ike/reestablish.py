"""Re-establishment after failure: ``dpd_action``, ``close_action`` and ``keyingtries``, as strongSwan (RFC 7296 §2.4).

RFC 7296 §2.4 lets an implementation that finds its peer dead, or whose IKE_SA the peer deleted, start over with
a new IKE_SA; what it does is configuration. This mirrors strongSwan (``ike_sa.c`` ``reestablish``,
``reestablish_children``, ``retransmit``; ``ike_delete.c`` ``process_r``; ``trap_manager.c`` ``install``):

- When an IKE_SA is removed (``IkeCore.remove_ike_sa`` first calls its ``ike_sa_removing`` hook, which
  ``IkeDaemon`` implements with ``on_ike_sa_removed``; the core cannot import this module, which needs
  ``ike_sa_init``. So the new IKE_SA_INIT leaves at the very instant, before the old IKE_SA's deletion events,
  as strongSwan re-establishes before it destroys the old IKE_SA):

  - an initiation (IKE_SA_INIT or IKE_AUTH) of ours that got no answer (reason ``timeout``) is tried again
    at once, with a new SPI, nonce and KE, until ``keyingtries`` attempts in all (0: forever), as strongSwan's
    ``retransmit`` does in IKE_CONNECTING ("peer not responding, trying again (2/3)"): no wait between attempts,
    each attempt has the full retransmission schedule (strongSwan defaults: 165.1 s);
  - an ESTABLISHED IKE_SA whose liveness check or any other request got no answer (``dpd_timeout``, ``timeout``)
    follows ``dpd_action``; one the peer deleted (``deleted_by_peer``, not a rekey or a redundant one) follows
    ``close_action``: ``restart`` re-establishes (``reestablish``), ``trap`` emits ``TrapReinstalled`` per child
    configuration (the driver's data plane re-arms the trap), ``clear``/``none`` does nothing. An IKE_SA whose
    Delete we had queued is not re-established (strongSwan: "explicitly been deleted in the mean time"); an
    IKE_SA that was still connecting never follows dpd_action (only keyingtries), nor one being deleted or rekeyed.

- ``reestablish`` makes a new IKE_SA for the same connection from the host's best usable address to the
  connection's ``remote_addr``, re-creating the child configurations the old one had (CHILD_SAs not rekeyed or
  deleted, and CHILD_SAs it was creating or was to create: strongSwan ``adopt_child_tasks``): the connection's
  first child configuration with IKE_AUTH, every other one by CREATE_CHILD_SA once the IKE_SA is up. Without
  CHILD_SAs to re-create nothing is re-established (strongSwan: ``restart`` stays false). Reauthentication
  (``ike.reauth``, RFC 7296 §2.8.3) makes its new IKE_SA with it too.

- Only a connection with a ``remote_addr`` re-establishes or is trapped: it is the only kind that can initiate.
  strongSwan refuses only an "asymmetric setup" (a responder that assigned virtual IPs or used EAP), which
  ikesim has no way to express; a gateway's connection (no ``remote_addr``) can only clear, as strongSwan's
  ``%any`` responder, whose trap install fails ("remote address unknown").

Attempts are counted per new IKE_SA (local SPI -> attempt) in a table made on first use, so a daemon that never
retries carries nothing; the entry goes when that IKE_SA is removed. A re-establishment starts at attempt 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ikesim.ike import events as ev
from ikesim.ike import resume_exchange
from ikesim.ike.exchange import Work
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.types import Address

if TYPE_CHECKING:
    from ikesim.ike.config import Connection
    from ikesim.ike.core import IkeCore
    from ikesim.ike.sa import IkeSa

__all__ = ["DPD_ACTIONS", "CLOSE_ACTIONS", "CREATING", "reestablish", "reauthenticate", "on_ike_sa_removed",
           "children_to_recreate", "local_address"]

DPD_ACTIONS = ("clear", "trap", "restart")
"""Values of ``IkePolicy.dpd_action`` (swanctl.conf ``dpd_action``)."""
CLOSE_ACTIONS = ("none", "trap", "restart")
"""Values of ``IkePolicy.close_action`` (swanctl.conf ``close_action``; its ``start`` is ``restart``)."""

_TRIES = "_keyingtry"
"""Key of the attempt table in the core's ``__dict__`` (made on first use)."""
_GONE = (ChildSaState.REKEYED, ChildSaState.DELETED)
"""CHILD_SAs strongSwan's ``reestablish_children`` skips."""
CREATING = ("create_child", "recreate_child")
"""Queued work that creates a CHILD_SA (strongSwan TASK_CHILD_CREATE, adopted by the new IKE_SA)."""


def _attempts(core: IkeCore) -> dict[bytes, int]:
    """The attempt table: local SPI of an IKE_SA this module initiated -> its attempt number."""
    table: dict[bytes, int] = vars(core).setdefault(_TRIES, {})
    return table


def local_address(core: IkeCore, conn: Connection) -> Address:
    """Where a new IKE_SA of *conn* leaves from: its configured ``local_addr`` while usable, else the host's best usable
    address (``core.usable``, every configured one until told otherwise), else ``local_addr`` or the first configured
    address (strongSwan ``resolve_hosts``: the configured address, else the kernel's source address for the peer)."""
    usable = core.usable if core.usable is not None else tuple(a.ip for a in core.config.addresses)
    fixed = conn.local_addr
    if fixed is not None and fixed.ip in usable:
        return fixed
    if usable:
        best = usable[0]
        return next((a for a in core.config.addresses if a.ip == best), Address(best))
    return fixed or core.config.addresses[0]


def children_to_recreate(sa: IkeSa, *, active: bool = True) -> tuple[str, ...]:
    """Child configurations to bring up again with a new IKE_SA, each once, in order (strongSwan
    ``reestablish_children``: CHILD_SAs not REKEYED or DELETED; ``adopt_child_tasks``: creations in flight or queued).
    Without *active* a creation in flight is left out (strongSwan ``trigger_mbb_reauth`` adopts only queued ones)."""
    names = [child.name for child in sa.children.values() if child.state not in _GONE]
    ex = sa.active
    if active and ex is not None and ex.purpose == "create_child" and ex.child_profile is not None:
        names.append(ex.child_profile.policy.name)
    names += [w.child for w in sa.queue if w.purpose in CREATING]
    return tuple(dict.fromkeys(names))


def _initiate(core: IkeCore, old: IkeSa, children: tuple[str, ...], reason: str, action: str, attempt: int,
              now: float) -> IkeSa | None:
    """IKE_SA_INIT of a new IKE_SA of *old*'s connection; the other *children* queued behind IKE_AUTH (RFC 7296 §1.2)."""
    profile = old.profile
    conn = profile.connection
    if conn.remote_addr is None:
        return None
    first = profile.first_child
    mark = len(core.events)
    new = resume_exchange.initiate(core, profile, local_address(core, conn), conn.remote_addr, now,
                                   resume=reason != "reauth")  # RFC 5723: a reauthentication checks credentials anew
    made = [first.policy.name] if first is not None else []
    for name in children:
        if name not in made and name in profile.children:
            made.append(name)
            new.queue.append(Work("create_child", child=name, trigger="reestablish"))  # started once established
    _attempts(core)[new.local_spi] = attempt
    core.events.insert(mark, ev.IkeSaReestablishing(
        **new.ids(), old_spi=old.local_spi, reason=reason, action=action, attempt=attempt, children=" ".join(made)))
    return new


def reestablish(core: IkeCore, sa: IkeSa, reason: str, now: float, *, children: tuple[str, ...] | None = None,
                action: str = "restart") -> IkeSa | None:
    """Set up a new IKE_SA for *sa*'s connection with every child configuration *sa* had (RFC 7296 §1.2, §2.4).

    strongSwan ``ike_sa.reestablish`` (``reestablish_children``: each CHILD_SA's configuration queued on the new
    IKE_SA, the first one created with IKE_AUTH). *sa* itself is left alone (the caller removes it, before or
    after). *children* (default ``children_to_recreate``) and *action* go to ``IkeSaReestablishing`` (``ike.reauth``
    gives its own). Returns the new IKE_SA (attempt 1 of ``keyingtries``), or None: no ``remote_addr`` to initiate
    to, or no CHILD_SA to re-create. Then call ``datagrams_to_send()``.
    """
    if children is None:
        children = children_to_recreate(sa)
    if not children:
        return None
    return _initiate(core, sa, children, reason, action, 1, now)


def reauthenticate(core: IkeCore, sa: IkeSa, now: float) -> None:
    """Our address under *sa* (no MOBIKE) is gone: a new IKE_SA from the best usable address, then the old one's
    Delete, sent from there too (strongSwan ``roam``: ``resolve_hosts`` moves the old IKE_SA's local address, then
    ``reauth``, make-before-break by default: ``charon.make_before_break = yes``)."""
    if reestablish(core, sa, "address_change", now) is None:
        return
    if core.usable:
        sa.local = Address(core.usable[0], sa.local.port)
    core.enqueue(sa, Work("delete_ike", reason="reauth"), now, front=True)


def _trap(core: IkeCore, sa: IkeSa, reason: str) -> None:
    """Re-install the trap policy of every child configuration *sa* had (strongSwan ``trap_manager.install``)."""
    if sa.profile.connection.remote_addr is None:
        return  # strongSwan: "installing trap failed, remote address unknown"
    for name in children_to_recreate(sa):
        core.emit(ev.TrapReinstalled(**sa.ids(), child=name, reason=reason))


def on_ike_sa_removed(core: IkeCore, sa: IkeSa, reason: str) -> None:
    """An IKE_SA is about to be removed for *reason*: retry, re-establish or trap as configured (RFC 7296 §2.4).

    Called by ``IkeDaemon.ike_sa_removing`` before anything of *sa* is torn down; the time is ``core.clock``.
    """
    table = vars(core).get(_TRIES)
    attempt = table.pop(sa.local_spi, 1) if table else 1
    ike = sa.profile.connection.ike
    if ike.dpd_action == "clear" and ike.close_action == "none" and ike.keyingtries == 1:
        return  # strongSwan's defaults: nothing to do (and the common case)
    if sa.profile.connection.remote_addr is None:
        return
    state = sa.state
    if state is IkeSaState.CONNECTING:
        # strongSwan ike_sa.retransmit, IKE_CONNECTING: "peer not responding, trying again (n/keyingtries)".
        tries = ike.keyingtries
        if reason == "timeout" and sa.initiator and (tries == 0 or attempt < tries):
            _initiate(core, sa, children_to_recreate(sa), reason, "retry", attempt + 1, core.clock)
        return
    if state is not IkeSaState.ESTABLISHED or any(w.purpose == "delete_ike" for w in sa.queue):
        return
    if reason in ("dpd_timeout", "timeout"):
        action = ike.dpd_action
    elif reason == "deleted_by_peer":
        action = ike.close_action
    else:
        return
    if action == "restart":
        reestablish(core, sa, reason, core.clock)
    elif action == "trap":
        _trap(core, sa, reason)
