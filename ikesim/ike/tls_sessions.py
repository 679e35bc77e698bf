"""EAP-TLS session resumption state of one daemon: the server's session cache, the client's session per connection
(RFC 5216 §2.1.3, RFC 5246 §7.3 and §7.4.1.2; strongSwan libtls ``tls_cache.c``).

- The EAP server caches a session once its full handshake ended in EAP-Success: the session ID it picked in
  ServerHello (32 octets, drawn from the daemon's own ``tls_session`` stream so the others keep their bytes), the
  master secret, the EAP identity it is bound to, and its expiry. Lookups past the expiry or for another identity
  miss (as ``tls_cache.c`` ``lookup``: age from the full handshake, bound to an identity); an abbreviated handshake
  does not extend a session's life.
- The EAP client keeps the last session per connection and offers it in the next ClientHello while it has not
  expired by its own clock; a full handshake replaces it (RFC 5246 §7.4.1.2: the server picked a new ID).
- The state hangs off the daemon (``vars(core)``, as ``ike.resumption``): a restarted daemon is a new object, so a
  restart loses it, and each member of a cluster has its own.

In the model the master secret is the X25519 premaster (the model's MSK is keyed with it; RFC 5246 §8.1's PRF step
is folded in); the Finished messages of the abbreviated handshake carry a real 12-octet verify_data computed from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ikesim.crypto.prf import prf
from ikesim.wire.iana import PrfId

if TYPE_CHECKING:
    from ikesim.ike.core import IkeCore
    from ikesim.rng import Rng

__all__ = ["DEFAULT_LIFETIME", "SESSION_ID_SIZE", "TlsSession", "TlsSessionCache", "session_cache", "finished"]

DEFAULT_LIFETIME = 3600.0
"""Seconds a session may be resumed after its full handshake (FreeRADIUS ``cache_tls_session`` ttl; strongSwan's
``tls_cache`` takes ``max_age`` from its user)."""
SESSION_ID_SIZE = 32
"""RFC 5246 §7.4.1.2: session_id<0..32>; servers that cache use all 32 octets."""
_STATE = "_tls_sessions"


@dataclass(frozen=True, slots=True)
class TlsSession:
    """A resumable TLS session (RFC 5246 §7.3): its ID, master secret, the EAP identity it is bound to, expiry."""

    session_id: bytes
    master: bytes = field(repr=False)
    identity: bytes
    expires_at: float


@dataclass(slots=True, eq=False)
class TlsSessionCache:
    """One daemon's sessions: by session ID (EAP server), by connection name (EAP client)."""

    core: IkeCore = field(repr=False)
    rng: Rng | None = field(default=None, repr=False)
    by_id: dict[bytes, TlsSession] = field(default_factory=dict)
    by_connection: dict[str, TlsSession] = field(default_factory=dict)

    def new_id(self) -> bytes:
        """A fresh session ID for ServerHello from the daemon's ``tls_session`` stream (RFC 5246 §7.4.1.3)."""
        if self.rng is None:
            self.rng = self.core.rng.child("tls_session")
        return self.rng.draw("tls_session_id", SESSION_ID_SIZE)

    def store(self, session: TlsSession) -> None:
        """Server: cache *session* after a successful full handshake (RFC 5246 §7.4.1.2)."""
        self.by_id[session.session_id] = session

    def lookup(self, session_id: bytes, identity: bytes, now: float) -> TlsSession | None:
        """Server: the session to resume, if cached, unexpired and bound to *identity* (strongSwan ``lookup``)."""
        s = self.by_id.get(session_id)
        if s is None or now > s.expires_at or s.identity != identity:
            return None
        return s

    def offer(self, connection: str, now: float) -> TlsSession | None:
        """Client: the session to offer in ClientHello for *connection*, if unexpired (RFC 5246 §7.4.1.2)."""
        s = self.by_connection.get(connection)
        return s if s is not None and now <= s.expires_at else None

    def keep(self, connection: str, session: TlsSession | None) -> None:
        """Client: after EAP-Success keep *session* (None: the server gave no ID, forget the old one)."""
        if session is None:
            self.by_connection.pop(connection, None)
        else:
            self.by_connection[connection] = session


def session_cache(core: IkeCore) -> TlsSessionCache:
    """This daemon's EAP-TLS sessions, created on first use; gone with the daemon (RFC 5216 §2.1.3)."""
    cache: TlsSessionCache | None = vars(core).get(_STATE)
    if cache is None:
        cache = vars(core)[_STATE] = TlsSessionCache(core)
    return cache


def finished(master: bytes, label: bytes, client_random: bytes, server_random: bytes) -> bytes:
    """Model of RFC 5246 §7.4.9: 12 octets of verify_data, HMAC-SHA256(master, label | randoms)."""
    return prf(PrfId.PRF_HMAC_SHA2_256, master, label + client_random + server_random)[:12]
