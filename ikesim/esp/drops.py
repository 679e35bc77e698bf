"""Why the ESP data plane dropped a packet (RFC 4303 §3.3, §3.4): one string constant per reason.

The reasons are plain ``str`` values so that a drop is cheap to return (``protect`` and
``unprotect`` return either a packet or one of these) and goes into a table column as is.
"""

from __future__ import annotations

__all__ = [
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

NO_SA = "no_sa"
"""Sender: the policy has no outbound SA (RFC 4301 §5.1: no SA yet, the packet is discarded)."""
SA_EXPIRED = "sa_expired"
"""Sender or receiver: the SA reached its hard lifetime, or was expired by IKE (RFC 4301 §4.4.2.1)."""
SEQ_EXHAUSTED = "seq_exhausted"
"""Sender: the next sequence number would cycle (RFC 4303 §3.3.3)."""
UNKNOWN_SPI = "unknown_spi"
"""Receiver: no inbound SA has this SPI (RFC 4303 §3.4.2)."""
ICV_FAILURE = "icv_failure"
"""Receiver: the integrity check (HMAC ICV or the AES-GCM tag) failed (RFC 4303 §3.4.4)."""
REPLAYED = "replayed"
"""Receiver: the sequence number was already received, inside the window (RFC 4303 §3.4.3)."""
OUTSIDE_WINDOW = "outside_window"
"""Receiver: the sequence number lies left of the anti-replay window (RFC 4303 §3.4.3)."""
MALFORMED = "malformed"
"""Receiver: too short, a ciphertext not a whole number of blocks, bad padding or pad length (RFC 4303 §2.4)."""

ALL = (NO_SA, SA_EXPIRED, SEQ_EXHAUSTED, UNKNOWN_SPI, ICV_FAILURE, REPLAYED, OUTSIDE_WINDOW, MALFORMED)
"""Every drop reason, senders' first."""
