"""One host's ESP data plane: its SAD and the outbound SA of each policy (RFC 4301 §4.4), sans-IO.

Outer addressing convention (``ikesim.types.Address``): a port of ``NATT_PORT`` (4500)
means UDP-encapsulated ESP (RFC 3948: the datagram's data is the ESP packet as the UDP
payload, with no non-ESP marker); a port of ``ESP_PORT`` (0) means plain ESP, IP
protocol 50 (RFC 4303). Either way ``Datagram.data`` is the ESP packet itself.

What the plane has to tell its IKE daemon comes out of ``next_event()``:
``EspLimitReached`` (the kernel's XFRM_MSG_EXPIRE) and ``EspPeerMoved`` (XFRM_MSG_MAPPING).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

from ikesim.crypto.suites import Suite
from ikesim.esp.drops import MALFORMED, NO_SA, UNKNOWN_SPI
from ikesim.esp.events import EspEvent, EspPeerMoved
from ikesim.esp.sa import EspLimits, InboundEspSa, OutboundEspSa
from ikesim.rng import Rng
from ikesim.types import NATT_PORT, Address, Datagram

__all__ = ["EspDataPlane", "ESP_PORT", "classify"]

ESP_PORT = 0
"""Port of an ``Address`` that carries plain ESP (IP protocol 50, RFC 4303), which has no ports."""

_NON_ESP_MARKER = bytes(4)  # RFC 3948 §2.2
_KEEPALIVE = b"\xff"  # RFC 3948 §2.3


def classify(data: bytes, dst: Address) -> str:
    """RFC 3948 §2.2 / §2.3: what a datagram to *dst* carries: ``"esp"``, ``"ike"`` or ``"keepalive"``.

    Port 0: plain ESP. Port 4500: the single octet 0xFF is a NAT-keepalive, four zero
    octets (the non-ESP marker) start an IKE message, anything else is ESP (its SPI is
    never 0). Any other port: IKE.
    """
    port = dst.port
    if port == ESP_PORT:
        return "esp"
    if port == NATT_PORT:
        if data == _KEEPALIVE:
            return "keepalive"
        return "ike" if data[:4] == _NON_ESP_MARKER else "esp"
    return "ike"


class _Binding:
    """A policy's outbound SA and the outer addresses it sends with (RFC 4301 §4.4.1.2: SPD-S -> SAD)."""

    __slots__ = ("sa", "src", "dst")

    def __init__(self, sa: OutboundEspSa, src: Address, dst: Address) -> None:
        self.sa, self.src, self.dst = sa, src, dst


class EspDataPlane:
    """RFC 4301 §4.4: the SAD (inbound SAs by SPI) and one outbound SA per policy, driven by an IKE daemon."""

    __slots__ = ("replay_window", "_rng", "_sad", "_out", "_out_spi", "_events", "_made")

    def __init__(self, rng: Rng, *, replay_window: int = 32) -> None:
        self.replay_window = replay_window
        """Anti-replay window of every inbound SA, in packets (0: off, strongSwan's ``replay_window = 0``)."""
        self._rng = rng
        self._sad: dict[bytes, InboundEspSa] = {}
        self._out: dict[Hashable, _Binding] = {}
        self._out_spi: dict[bytes, dict[Hashable, None]] = {}
        """Outbound SPI -> the policies sending with it (for ``expire``)."""
        self._events: deque[EspEvent] = deque()
        self._made = 0
        """Outbound SAs made so far: names each one's IV stream (child of ``rng``, drawn only by AES-CBC)."""

    # --- SAD: inbound SAs ---------------------------------------------------------------------------

    def add_inbound(self, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, *, peer: Address,
                    limits: EspLimits | None = None) -> InboundEspSa:
        """RFC 4301 §4.4.2: install the inbound SA *spi* (replacing one with that SPI); *peer* sends from there."""
        sa = InboundEspSa(spi, suite, encr_key, integ_key, window=self.replay_window, limits=limits, peer=peer)
        self._sad[sa.spi] = sa
        return sa

    def remove_inbound(self, spi: bytes) -> None:
        """RFC 4301 §4.4.2: remove the inbound SA *spi* (nothing if there is none)."""
        self._sad.pop(spi, None)

    def inbound(self, spi: bytes) -> InboundEspSa | None:
        """The inbound SA with SPI *spi*, if installed."""
        return self._sad.get(spi)

    # --- SPD -> outbound SA -------------------------------------------------------------------------

    def set_outbound(self, policy: Hashable, spi: bytes, suite: Suite, encr_key: bytes, integ_key: bytes, *,
                     src: Address, dst: Address, limits: EspLimits | None = None) -> OutboundEspSa:
        """RFC 4301 §4.4.1.2 / RFC 7296 §2.8: *policy* now sends with a new outbound SA *spi* from *src* to *dst*."""
        self._made += 1
        rng = self._rng.child("esp-out", spi.hex(), str(self._made))
        sa = OutboundEspSa(spi, suite, encr_key, integ_key, rng=rng, limits=limits)
        self._unbind(policy)
        self._out[policy] = _Binding(sa, src, dst)
        self._out_spi.setdefault(sa.spi, {})[policy] = None
        return sa

    def clear_outbound(self, policy: Hashable) -> None:
        """*policy* has no outbound SA any more (nothing if it had none)."""
        self._unbind(policy)

    def _unbind(self, policy: Hashable) -> None:
        """Forget *policy*'s outbound SA, in both maps."""
        old = self._out.pop(policy, None)
        if old is not None:
            policies = self._out_spi.get(old.sa.spi)
            if policies is not None:
                policies.pop(policy, None)
                if not policies:
                    del self._out_spi[old.sa.spi]

    def outbound(self, policy: Hashable) -> OutboundEspSa | None:
        """The outbound SA *policy* sends with, if any."""
        binding = self._out.get(policy)
        return binding.sa if binding is not None else None

    def move_outbound(self, policy: Hashable, src: Address, dst: Address) -> None:
        """RFC 4555 / RFC 7296 §2.23: *policy*'s outbound SA sends from *src* to *dst* now (nothing if it has none)."""
        binding = self._out.get(policy)
        if binding is not None:
            binding.src, binding.dst = src, dst

    def expire(self, spi: bytes) -> None:
        """RFC 4301 §4.4.2.1: the inbound SA *spi* and every outbound SA with SPI *spi* drop all further packets."""
        sa = self._sad.get(spi)
        if sa is not None:
            sa.expired = True
        for policy in self._out_spi.get(spi, ()):
            self._out[policy].sa.expired = True

    # --- packets ------------------------------------------------------------------------------------

    def protect(self, policy: Hashable, inner: bytes) -> Datagram | str:
        """RFC 4301 §5.1 / RFC 4303 §3.3: *inner* as an ESP packet of *policy*'s outbound SA, or a drop reason."""
        binding = self._out.get(policy)
        if binding is None:
            return NO_SA
        sa = binding.sa
        out = sa.protect(inner)
        if sa.notes:
            self._collect(sa)
        if isinstance(out, str):
            return out
        return Datagram(out, binding.src, binding.dst)

    def unprotect(self, data: bytes, src: Address, dst: Address) -> tuple[bytes, InboundEspSa] | str:
        """RFC 4301 §5.2 / RFC 4303 §3.4: the inner packet of the ESP packet *data* and its SA, or a drop reason.

        The SPI is looked up first (``UNKNOWN_SPI``). A UDP-encapsulated packet that passed
        the ICV but came from another address than the SA's peer moves the peer there and
        queues ``EspPeerMoved`` (RFC 3948 §3; the kernel's XFRM_MSG_MAPPING).
        """
        if len(data) < 4:
            return MALFORMED
        sa = self._sad.get(bytes(data[:4]))
        if sa is None:
            return UNKNOWN_SPI
        out = sa.unprotect(data)
        if sa.notes:
            self._collect(sa)
        if isinstance(out, str):
            return out
        if dst.port != ESP_PORT:
            peer = sa.peer
            if peer is not None and src != peer and peer.port != ESP_PORT:
                self._events.append(EspPeerMoved(sa.spi, peer, src))
                sa.peer = src
        return out[1], sa

    def _collect(self, sa: InboundEspSa | OutboundEspSa) -> None:
        """Move *sa*'s limit notes to the event queue (RFC 4301 §4.4.2.1: the SA tells IKE)."""
        self._events.extend(sa.notes)
        sa.notes.clear()

    def next_event(self) -> EspEvent | None:
        """The oldest event not yet taken (limit reached, peer moved), or None."""
        return self._events.popleft() if self._events else None
