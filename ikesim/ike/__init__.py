"""ikesim.ike: the sans-IO IKEv2 state machine (RFC 7296).

The driver-facing class is ``IkeDaemon``; its events live in
``ikesim.ike.events`` and its configuration in ``ikesim.ike.config``.
``IkeDaemon`` and ``IkeSaInfo`` are imported lazily so that importing the
configuration alone stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ikesim.ike.daemon import IkeDaemon, IkeSaInfo

__all__ = ["IkeDaemon", "IkeSaInfo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from ikesim.ike import daemon

        return getattr(daemon, name)
    raise AttributeError(f"module 'ikesim.ike' has no attribute {name!r}")
