"""Lifecycle states of IKE_SAs and CHILD_SAs as drawable transition tables (RFC 7296 §1, §2.8).

The lifecycle is kept apart from the exchanges in flight (STYLE.md rule 6):
an ``IkeSa`` is CONNECTING until IKE_AUTH completes, ESTABLISHED while in
use, REKEYED once a new IKE_SA replaced it (waiting for the Delete),
DELETING while its own Delete is in flight, and DELETED at the end.
"""

from __future__ import annotations

import enum

from ikesim.errors import LocalProtocolError

__all__ = [
    "IkeSaState",
    "IkeSaTrigger",
    "ChildSaState",
    "ChildSaTrigger",
    "IKE_SA_TRANSITIONS",
    "CHILD_SA_TRANSITIONS",
    "next_ike_state",
    "next_child_state",
]


class IkeSaState(enum.Enum):
    """Lifecycle of one IKE_SA (RFC 7296 §1.2, §1.3.2, §1.4.1)."""

    CONNECTING = "connecting"
    ESTABLISHED = "established"
    REKEYED = "rekeyed"
    DELETING = "deleting"
    DELETED = "deleted"


class IkeSaTrigger(enum.Enum):
    """What moves an IKE_SA from one lifecycle state to the next."""

    AUTHENTICATED = "authenticated"
    REPLACED = "replaced"
    DELETE_SENT = "delete_sent"
    REMOVED = "removed"


class ChildSaState(enum.Enum):
    """Lifecycle of one CHILD_SA pair (RFC 7296 §1.3.3, §2.8)."""

    INSTALLED = "installed"
    REKEYING = "rekeying"
    REKEYED = "rekeyed"
    DELETING = "deleting"
    DELETED = "deleted"


class ChildSaTrigger(enum.Enum):
    """What moves a CHILD_SA from one lifecycle state to the next."""

    REKEY_STARTED = "rekey_started"
    REKEY_FAILED = "rekey_failed"
    REPLACED = "replaced"
    DELETE_SENT = "delete_sent"
    REMOVED = "removed"


_S = IkeSaState
_T = IkeSaTrigger
IKE_SA_TRANSITIONS: dict[tuple[IkeSaState, IkeSaTrigger], IkeSaState] = {
    (_S.CONNECTING, _T.AUTHENTICATED): _S.ESTABLISHED,
    (_S.CONNECTING, _T.REMOVED): _S.DELETED,
    (_S.ESTABLISHED, _T.REPLACED): _S.REKEYED,
    (_S.ESTABLISHED, _T.DELETE_SENT): _S.DELETING,
    (_S.ESTABLISHED, _T.REMOVED): _S.DELETED,
    (_S.REKEYED, _T.DELETE_SENT): _S.REKEYED,
    (_S.REKEYED, _T.REMOVED): _S.DELETED,
    (_S.DELETING, _T.DELETE_SENT): _S.DELETING,
    (_S.DELETING, _T.REMOVED): _S.DELETED,
}
"""RFC 7296 §1.2 (established), §1.3.2 (replaced by a rekey), §1.4.1 (deleted)."""

_C = ChildSaState
_U = ChildSaTrigger
CHILD_SA_TRANSITIONS: dict[tuple[ChildSaState, ChildSaTrigger], ChildSaState] = {
    (_C.INSTALLED, _U.REKEY_STARTED): _C.REKEYING,
    (_C.INSTALLED, _U.REPLACED): _C.REKEYED,
    (_C.INSTALLED, _U.DELETE_SENT): _C.DELETING,
    (_C.INSTALLED, _U.REMOVED): _C.DELETED,
    (_C.REKEYING, _U.REKEY_FAILED): _C.INSTALLED,
    (_C.REKEYING, _U.REPLACED): _C.REKEYED,
    (_C.REKEYING, _U.DELETE_SENT): _C.DELETING,
    (_C.REKEYING, _U.REMOVED): _C.DELETED,
    (_C.REKEYED, _U.REKEY_FAILED): _C.INSTALLED,  # the peer deleted the new SA instead of the old one
    (_C.REKEYED, _U.DELETE_SENT): _C.REKEYED,
    (_C.REKEYED, _U.REMOVED): _C.DELETED,
    (_C.DELETING, _U.DELETE_SENT): _C.DELETING,
    (_C.DELETING, _U.REKEY_FAILED): _C.DELETING,
    (_C.DELETING, _U.REMOVED): _C.DELETED,
}
"""RFC 7296 §1.3.3 (rekey: new SA first, then delete the old one), §2.8, §1.4.1."""


_IKE_BY_VALUE = {(s._value_, t._value_): n for (s, t), n in IKE_SA_TRANSITIONS.items()}
_CHILD_BY_VALUE = {(s._value_, t._value_): n for (s, t), n in CHILD_SA_TRANSITIONS.items()}
"""The tables keyed by the members' values: a str hashes in C (and caches it), an Enum member's
``__hash__`` is Python code, and a fleet changes states millions of times."""


def next_ike_state(state: IkeSaState, trigger: IkeSaTrigger) -> IkeSaState:
    """Return the IKE_SA state after *trigger* (RFC 7296 §1.2, §1.4.1); raise if illegal."""
    try:
        return _IKE_BY_VALUE[state._value_, trigger._value_]
    except KeyError:
        raise LocalProtocolError(
            f"cannot handle {trigger.value} in IKE_SA state {state.value}"
        ) from None


def next_child_state(state: ChildSaState, trigger: ChildSaTrigger) -> ChildSaState:
    """Return the CHILD_SA state after *trigger* (RFC 7296 §1.3.3, §2.8); raise if illegal."""
    try:
        return _CHILD_BY_VALUE[state._value_, trigger._value_]
    except KeyError:
        raise LocalProtocolError(
            f"cannot handle {trigger.value} in CHILD_SA state {state.value}"
        ) from None
