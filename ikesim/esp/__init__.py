"""ikesim.esp: the sans-IO ESP data plane (RFC 4303; RFC 4106, RFC 3602, RFC 2404, RFC 4868; RFC 3948 framing).

``EspDataPlane`` is one host's SAD and its outbound SA per policy; ``OutboundEspSa`` and
``InboundEspSa`` protect and process packets; ``ReplayWindow`` is the anti-replay window
(with ESN, RFC 4303 Appendix A); ``inner_ipv4`` builds the inner packet of tunnel mode.
Drops are the string constants of ``ikesim.esp.drops``; events are ``EspLimitReached``
and ``EspPeerMoved``. ``ESP_PORT`` (0) marks plain ESP in an ``Address``, ``NATT_PORT``
(4500) UDP-encapsulated ESP.
"""

from __future__ import annotations

from ikesim.esp.drops import (
    ALL,
    ICV_FAILURE,
    MALFORMED,
    NO_SA,
    OUTSIDE_WINDOW,
    REPLAYED,
    SA_EXPIRED,
    SEQ_EXHAUSTED,
    UNKNOWN_SPI,
)
from ikesim.esp.events import EspEvent, EspLimitReached, EspPeerMoved
from ikesim.esp.plane import ESP_PORT, EspDataPlane, classify
from ikesim.esp.replay import ReplayWindow
from ikesim.esp.sa import SEQ_MAX, SEQ_MAX_ESN, EspLimits, InboundEspSa, OutboundEspSa
from ikesim.esp.tunnel import inner_ipv4, parse_inner

__all__ = [
    "EspDataPlane",
    "ESP_PORT",
    "classify",
    "EspLimits",
    "OutboundEspSa",
    "InboundEspSa",
    "SEQ_MAX",
    "SEQ_MAX_ESN",
    "ReplayWindow",
    "EspEvent",
    "EspLimitReached",
    "EspPeerMoved",
    "inner_ipv4",
    "parse_inner",
    "NO_SA",
    "SA_EXPIRED",
    "SEQ_EXHAUSTED",
    "UNKNOWN_SPI",
    "ICV_FAILURE",
    "REPLAYED",
    "OUTSIDE_WINDOW",
    "MALFORMED",
    "ALL",
]
