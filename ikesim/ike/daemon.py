"""IkeDaemon: sans-IO driver API, SPI demultiplexing, timer dispatch (RFC 7296 §2.1–§2.4, §2.21).

Driven the aioquic way: ``receive_datagram(data, src, dst, now)``,
``datagrams_to_send(now)``, ``get_timer()``, ``handle_timer(now)`` and
``next_event()``. Commands (``initiate``, ``rekey_child_sa``, ...) only queue
work; then call ``datagrams_to_send()``. No PeerError, codec or crypto error
ever leaves ``receive_datagram``: it becomes an error notify or a
``MessageDropped`` event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ikesim.crypto.meter import OpCounter
from ikesim.errors import (
    ChildSaNotFound,
    FragmentIgnored,
    IntegrityCheckFailed,
    InvalidSyntax,
    LocalProtocolError,
    MalformedInnerPayloads,
    MalformedMessage,
    PeerError,
    UnsupportedCriticalPayload,
)
from ikesim.ike import (
    child_timers,
    childless,
    create_child_sa,
    eap_auth,
    fragmentation,
    ha_state,
    ha_sync,
    ike_auth,
    ike_rekey,
    ike_sa_init,
    informational,
    limits,
    mobike,
    reauth,
    reconnect,
    reestablish,
    resume_exchange,
    resumption,
)
from ikesim.ike import events as ev
from ikesim.ike.closed_cache import answer_from_closed
from ikesim.ike.config import DaemonConfig
from ikesim.ike.core import IkeCore
from ikesim.ike.exchange import Work
from ikesim.ike.natt import KEEPALIVE, follow_peer
from ikesim.ike.sa import ZERO_SPI, IkeSa, IkeSaInfo
from ikesim.ike.state import ChildSaState, IkeSaState
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import ExchangeType, NotifyType, ProtocolId
from ikesim.wire.message import Message
from ikesim.wire.payloads import NotifyPayload, SaPayload, UnknownPayload
from ikesim.wire.verify import verify_payloads

__all__ = ["IkeDaemon", "IkeSaInfo"]

_USABLE_CHILD = (ChildSaState.INSTALLED, ChildSaState.REKEYING)


class IkeDaemon(IkeCore):
    """One node's IKEv2 daemon: many IKE_SAs, driven by datagrams, timers, commands (RFC 7296)."""

    def __init__(self, config: DaemonConfig, *, rng: Rng, meter: OpCounter | None = None) -> None:
        super().__init__(config, rng=rng, meter=meter)
        self.starters.update({
            "create_child": create_child_sa.start_create,
            "rekey_child": create_child_sa.start_rekey,
            "rekey_ike": ike_rekey.start,
            "delete_child": informational.start_delete_child,
            "delete_failed_child": informational.start_delete_failed_child,
            "delete_ike": informational.start_delete_ike,
            "dpd": informational.start_dpd,
            "delete_expired_child": limits.start_delete_expired,
            "recreate_child": limits.start_recreate,
            "mobike": mobike.start,
            "mid_sync": ha_sync.start,
            "reconnect_child": reconnect.start_child,
            "liveness_probe": reconnect.start_probe,
            "reauth_complete": reauth.start_complete,
            "ticket_request": resumption.start_refresh,
        })
        self._timer_handlers: dict[str, Callable[[bytes, float], None]] = {}
        """Handlers replacing the class's for one daemon, by timer kind (tests inject faults with it);
        the defaults are ``_TIMER_HANDLERS``, shared: a bound method per kind and daemon is 1.3 KB a client."""

    # ================================================================== driver
    def datagrams_to_send(self, now: float) -> list[Datagram]:
        """Datagrams queued since the last call, in order (aioquic's datagrams_to_send)."""
        out, self.outbox = self.outbox, []
        return out

    def get_timer(self) -> float | None:
        """The earliest absolute deadline of any kind (RFC 7296 §2.1, §2.4, §2.8)."""
        return self.timers.earliest()

    def next_event(self) -> ev.IkeEvent | None:
        """The next event, or None when there is none."""
        return self.events.pop(0) if self.events else None

    def handle_timer(self, now: float) -> None:
        """Fire every deadline at or before *now*; then call ``datagrams_to_send()``."""
        self.clock = now
        while True:
            key = self.timers.pop_due(now)
            if key is None:
                return
            kind, spi = key
            replaced = self._timer_handlers.get(kind)
            if replaced is None:
                _TIMER_HANDLERS[kind](self, spi, now)
            else:
                replaced(spi, now)

    # ================================================================== receive
    def _drop(self, msg: Message | None, src: Address, dst: Address, reason: str,
              sa: IkeSa | None = None) -> None:
        self.emit(ev.MessageDropped(
            spi_i=msg.spi_i if msg else ZERO_SPI, spi_r=msg.spi_r if msg else ZERO_SPI,
            connection=sa.name if sa else "", reason=reason, src=src, dst=dst,
            exchange=msg.exchange_type.name if msg else "",
            message_id=msg.message_id if msg else -1))

    def receive_datagram(self, data: bytes, src: Address, dst: Address, now: float) -> None:
        """Process one incoming datagram (RFC 7296 §2.1–§2.3); then call ``datagrams_to_send()``."""
        self.clock = now
        if data == KEEPALIVE:
            return  # RFC 3948 §2.3: a NAT keepalive (the transport strips the non-ESP marker of IKE on 4500)
        try:
            msg = parse_message(data)
        except MalformedMessage as exc:
            self._drop(None, src, dst, f"malformed: {exc}")
            return
        except UnsupportedCriticalPayload as exc:
            self._drop(None, src, dst, f"malformed: {exc}")
            return
        if msg.major_version != 2:
            self._drop(msg, src, dst, f"unsupported major version {msg.major_version}")
            return
        if msg.exchange_type == ExchangeType.IKE_SA_INIT:
            self._receive_init(msg, data, src, dst, now)
            return
        if msg.exchange_type == ExchangeType.IKE_SESSION_RESUME:  # RFC 5723 §4.3.2: routed like IKE_SA_INIT
            resume_exchange.receive(self, msg, data, src, dst, now)
            return
        theirs_i = msg.from_original_initiator
        local_spi = msg.spi_r if theirs_i else msg.spi_i
        sa = self.sas.get(local_spi)
        if (sa is None or sa.local_spi != local_spi or sa.initiator == theirs_i
                or sa.peer_spi != (msg.spi_i if theirs_i else msg.spi_r) or sa.protect_in is None):
            if not answer_from_closed(self, local_spi, msg, data, src, dst, now):
                self._drop(msg, src, dst, "unknown IKE SPI")
            return
        retransmit = False
        sync = sa.mid_sync and ha_sync.wants(sa, msg)  # RFC 6311: message ID 0, decided once decrypted
        if msg.is_response:
            ex = sa.active
            if (ex is None or ex.message_id != msg.message_id
                    or ex.exchange_type != msg.exchange_type):
                self._drop(msg, src, dst, "unexpected response", sa)
                return
        elif sync:
            pass
        elif msg.message_id == sa.peer_message_id - 1 and sa.last_response:
            retransmit = True
        elif msg.message_id != sa.peer_message_id:
            self._drop(msg, src, dst, f"unexpected message ID {msg.message_id}", sa)
            return
        try:
            if fragmentation.is_fragment(msg):  # RFC 7383 §2.6: collect, then process as one message
                reassembled = fragmentation.receive(self, sa, msg, data, now, retransmit=retransmit)
                if reassembled is None:
                    return
                full = reassembled
            else:
                full = unprotect_message(data, sa.protect_in, outer=msg)
        except IntegrityCheckFailed:
            self._drop(msg, src, dst, "integrity check failed", sa)
            return
        except FragmentIgnored as exc:
            self._drop(msg, src, dst, str(exc), sa)
            return
        except MalformedInnerPayloads as exc:  # authenticated: RFC 7296 §3.10.1 lets us say INVALID_SYNTAX
            if retransmit:
                self.outbox.extend(Datagram(d, dst, src) for d in sa.last_response)
            elif msg.is_request:
                self._respond_error(sa, msg, InvalidSyntax(str(exc)))
            else:
                self._reject_response(sa, msg, f"malformed: {exc}", now)
                self.pump(sa, now)
            return
        except MalformedMessage as exc:
            self._drop(msg, src, dst, f"malformed: {exc}", sa)
            return
        except UnsupportedCriticalPayload as exc:
            if msg.is_request and not retransmit:
                self._respond_error(sa, msg, exc)
            else:
                self._drop(msg, src, dst, f"malformed: {exc}", sa)
            return
        if sync and ha_sync.receive(self, sa, msg, full, src, dst, now):
            return
        sa.last_received_at = now
        self.arm_dpd(sa)
        self.rx = (src, dst)
        if retransmit:
            # RFC 7296 §2.1: the cached response (all fragments), unchanged, back to where the retransmission
            # came from (as strongSwan); §2.23: a retransmission never moves the IKE_SA to another address.
            self.outbox.extend(Datagram(d, dst, src) for d in sa.last_response)
            return
        if sa.mid_sync and full.is_request and ha_sync.syncing(sa):
            self._drop(msg, src, dst, "request while our IKEV2_MESSAGE_ID_SYNC is in flight", sa)
            return
        follow_peer(self, sa, src, dst)
        try:
            verify_payloads(full.payloads)  # strongSwan payload_t.verify(): SPI sizes, nonce, selectors
        except MalformedMessage as exc:
            if full.is_request:  # RFC 7296 §3.10.1: authenticated, so INVALID_SYNTAX may be answered
                self._respond_error(sa, full, InvalidSyntax(str(exc)))
            else:
                self._reject_response(sa, full, f"invalid payload: {exc}", now)
            self.pump(sa, now)
            return
        critical = next((p for p in full.payloads
                         if isinstance(p, UnknownPayload) and p.critical), None)
        if full.is_request:
            try:
                if critical is not None:
                    raise UnsupportedCriticalPayload(critical.type_number)
                self._dispatch_request(sa, full, src, dst, now)
            except PeerError as exc:
                self._respond_error(sa, full, exc)
        else:
            if critical is not None:
                self._drop(msg, src, dst, "unsupported critical payload in a response", sa)
                return
            self._dispatch_response(sa, full, now)
        self.pump(sa, now)

    def _receive_init(self, msg: Message, data: bytes, src: Address, dst: Address,
                      now: float) -> None:
        try:
            verify_payloads(msg.payloads)  # strongSwan payload_t.verify(); unencrypted: no INVALID_SYNTAX (§3.10.1)
        except MalformedMessage as exc:
            self._drop(msg, src, dst, f"invalid payload: {exc}")
            return
        if msg.is_request:
            if msg.spi_i == ZERO_SPI:
                self._drop(msg, src, dst, "zero initiator SPI")  # RFC 7296 §3.1: the SPI MUST NOT be zero
                return
            if msg.spi_r != ZERO_SPI or msg.message_id != 0 or not msg.from_original_initiator:
                self._drop(msg, src, dst, "unexpected IKE_SA_INIT request")
                return
            ike_sa_init.handle_request(self, msg, data, src, dst, now)
            return
        sa = self.sas.get(msg.spi_i)
        ex = sa.active if sa is not None else None
        if (sa is None or ex is None or not sa.initiator or sa.local_spi != msg.spi_i
                or sa.state is not IkeSaState.CONNECTING or ex.purpose != "ike_sa_init"
                or msg.message_id != 0):
            self._drop(msg, src, dst, "unexpected response", sa)
            return
        if any(isinstance(p, UnknownPayload) and p.critical for p in msg.payloads):
            self._drop(msg, src, dst, "unsupported critical payload in a response", sa)
            return
        reason = ike_sa_init.response_drop_reason(msg)  # RFC 7296 §2.6 (COOKIE length), §3.1 (zero SPIr)
        if reason:
            self._drop(msg, src, dst, reason, sa)
            return
        sa.last_received_at = now
        self._emit_error_notifies(sa, msg)
        ike_sa_init.handle_response(self, sa, ex, msg, data, src, dst, now)

    def _emit_error_notifies(self, sa: IkeSa, msg: Message) -> None:
        for n in msg.get_all(NotifyPayload):
            if n.notify_type.is_error:
                self.emit(ev.ErrorNotifyReceived(**sa.ids(), notify=n.notify_type.name,
                                                 exchange=msg.exchange_type.name,
                                                 message_id=msg.message_id))

    def _dispatch_request(self, sa: IkeSa, msg: Message, src: Address, dst: Address,
                          now: float) -> None:
        kind = msg.exchange_type
        if sa.state is IkeSaState.CONNECTING:
            if kind == ExchangeType.IKE_AUTH and not sa.initiator:
                ike_auth.handle_request(self, sa, msg, now)
            elif not eap_auth.peer_gave_up(self, sa, msg):  # RFC 7296 §2.16: N(AUTHENTICATION_FAILED) during EAP
                self._drop(msg, src, dst, f"{kind.name} request before IKE_AUTH", sa)
            return
        if kind == ExchangeType.CREATE_CHILD_SA:
            sa_payload = msg.get(SaPayload)
            if sa_payload is not None and sa_payload.proposals and \
                    sa_payload.proposals[0].protocol == ProtocolId.IKE:
                reauth.refuse_ike_rekey(self, sa)  # RFC 7296 §2.8.3: TEMPORARY_FAILURE while we reauthenticate
                ike_rekey.handle_request(self, sa, msg, sa_payload, now)
            else:
                create_child_sa.handle_request(self, sa, msg, now)
        elif kind == ExchangeType.INFORMATIONAL:
            informational.handle_request(self, sa, msg, now)
        else:
            self._drop(msg, src, dst, f"unexpected {kind.name} request", sa)

    def _dispatch_response(self, sa: IkeSa, msg: Message, now: float, *, report: bool = True) -> None:
        ex = sa.active
        assert ex is not None
        if report:
            self._emit_error_notifies(sa, msg)
        purpose = ex.purpose
        if purpose == "ike_auth":
            ike_auth.handle_response(self, sa, ex, msg, now)
        elif purpose == "mobike":
            mobike.handle_response(self, sa, ex, msg, now)
        elif purpose in ("create_child", "rekey_child"):
            create_child_sa.handle_response(self, sa, ex, msg, now)
        elif purpose == "rekey_ike":
            ike_rekey.handle_response(self, sa, ex, msg, now)
        else:
            informational.handle_response(self, sa, ex, msg, now)
        reconnect.on_response(self, sa, ex, msg, now)

    def _reject_response(self, sa: IkeSa, msg: Message, reason: str, now: float) -> None:
        """An authenticated response with an invalid payload fails our exchange (RFC 7296 §3.10.1, §2.21).

        Its retransmission would bring the same bytes (§2.1), so waiting is pointless. The purpose's
        handler sees the response as carrying INVALID_SYNTAX; a CHILD_SA exchange also deletes the SA
        the responder may have installed (as strongSwan's child_create does on a failed response).
        """
        ex = sa.active
        assert ex is not None
        self.emit(ev.ResponseRejected(**sa.ids(), exchange=msg.exchange_type.name, purpose=ex.purpose,
                                      message_id=msg.message_id, reason=reason))
        if ex.purpose in ("create_child", "rekey_child"):
            create_child_sa.reject_response(self, sa, ex, "INVALID_SYNTAX", now)
            return
        failed = Message(msg.spi_i, msg.spi_r, msg.exchange_type, msg.flags, msg.message_id,
                         (NotifyPayload(NotifyType.INVALID_SYNTAX),), encrypted=True)
        self._dispatch_response(sa, failed, now, report=False)

    def _respond_error(self, sa: IkeSa, msg: Message, exc: PeerError) -> None:
        """Answer a request with the error notify the PeerError names (RFC 7296 §2.21.2)."""
        notify = NotifyType(exc.notify_type)
        if isinstance(exc, ChildSaNotFound):
            payload = NotifyPayload(notify, ProtocolId(exc.protocol), exc.spi)
        else:
            payload = NotifyPayload(notify, data=exc.notify_data)
        self.respond(sa, msg.exchange_type, msg.message_id, [payload])
        self.emit(ev.ErrorNotifySent(**sa.ids(), notify=notify.name, exchange=msg.exchange_type.name,
                                     message_id=msg.message_id))

    # ================================================================== timers
    def _on_retransmit(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        ex = sa.active if sa is not None else None
        if sa is None or ex is None:
            return
        if reconnect.on_retransmit(self, sa, ex, now):
            return
        if ex.purpose == "mobike" and (mobike.retransmit(self, sa, ex, now) or mobike.on_timeout(self, sa, ex, now)):
            return
        if ex.purpose != "mobike" and ex.retransmit_due():
            ex.advance()
            # RFC 7296 §2.1: the same bytes (RFC 7383 §2.5: every fragment); RFC 4555 §3.5: from a usable address
            self.send_request(sa, ex.request)
            self.emit(ev.Retransmitted(**sa.ids(), exchange=ex.exchange_name, purpose=ex.purpose,
                                       message_id=ex.message_id, attempt=ex.attempts))
            self.timers.arm(("rtx", spi), ex.deadline)
            return
        # RFC 7296 §2.4: no answer after the last retransmission -> the IKE_SA is gone.
        self.complete(sa, ex, "timeout")
        if ex.purpose == "dpd":
            self.emit(ev.DeadPeerDetected(**sa.ids()))
            reason = "dpd_timeout"
        elif ex.purpose == "delete_ike":
            reason = sa.delete_reason or "deleted_locally"
        else:
            reason = "timeout"
        self.remove_ike_sa(sa, reason)

    def _on_dpd(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        if sa is None or sa.state is not IkeSaState.ESTABLISHED:
            return
        delay = sa.profile.connection.ike.dpd_delay
        if sa.active is not None or any(w.purpose == "dpd" for w in sa.queue):
            self.timers.arm(("dpd", spi), now + delay)  # traffic in flight checks liveness
            return
        last_in = self.last_esp_in(sa)
        if last_in is not None and last_in + delay > now:  # compared as armed: a deadline is never at or before now
            self.timers.arm(("dpd", spi), last_in + delay)  # ESP came in: the peer is alive (strongSwan's send_dpd)
            return
        self.enqueue(sa, Work("dpd"), now)

    def _on_ike_soft(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        if sa is not None and sa.state is IkeSaState.ESTABLISHED and not reauth.reauthenticating(self, sa):
            self.enqueue(sa, Work("rekey_ike", trigger="soft_lifetime"), now)

    def _on_retry_ike(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        if sa is not None and sa.state is IkeSaState.ESTABLISHED and not reauth.reauthenticating(self, sa):
            self.enqueue(sa, Work("rekey_ike", trigger="retry"), now)

    def _on_ike_hard(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        if sa is None or sa.state not in (IkeSaState.ESTABLISHED, IkeSaState.REKEYED):
            return
        self.emit(ev.SaExpired(**sa.ids(), kind=ev.SaKind.IKE, spi=spi))
        self.enqueue(sa, Work("delete_ike", reason="expired"), now, front=True)

    def _on_stale_ike(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        if sa is not None and sa.local_spi == spi and sa.state is IkeSaState.REKEYED:
            self.remove_ike_sa(sa, "rekeyed")

    def _on_redundant_ike(self, spi: bytes, now: float) -> None:
        """The peer never deleted the IKE_SA that lost a rekey collision: delete it (RFC 7296 §2.8.2)."""
        sa = self.sas.get(spi)
        if sa is not None and sa.local_spi == spi and sa.redundant and sa.state is IkeSaState.ESTABLISHED:
            self.enqueue(sa, Work("delete_ike", reason="redundant"), now, front=True)

    def _on_half_open(self, spi: bytes, now: float) -> None:
        sa = self.sas.get(spi)
        if sa is not None and sa.state is IkeSaState.CONNECTING:
            self.remove_ike_sa(sa, "timeout")

    def _on_closed(self, spi: bytes, now: float) -> None:
        """A removed IKE_SA's retransmission window is over: forget its response cache and keys (RFC 7296 §2.1)."""
        self.closed.pop(spi, None)

    def ike_sa_removing(self, sa: IkeSa, reason: str) -> None:
        """Before an IKE_SA goes: a reauthentication (``ike.reauth``), a client's reconnect (``ike.reconnect``), else
        dpd_action, close_action, keyingtries as strongSwan (RFC 7296 §2.4, §2.8.3)."""
        if reauth.on_ike_sa_removed(self, sa, reason) or reconnect.on_ike_sa_removed(self, sa, reason):
            return
        reestablish.on_ike_sa_removed(self, sa, reason)

    def reauthenticate(self, sa: IkeSa, now: float) -> None:
        """Our address under *sa* (no MOBIKE) is gone: reauthenticate from another (``reestablish.reauthenticate``)."""
        reestablish.reauthenticate(self, sa, now)

    def arm_reauth(self, sa: IkeSa, now: float) -> None:
        """Arm *sa*'s reauthentication deadline and bound its hard lifetime (``reauth.arm``, RFC 7296 §2.8.3)."""
        reauth.arm(self, sa, now)

    def roam_client(self, sa: IkeSa, now: float) -> None:
        """A client's ``roam`` strategy ``follow`` or ``smart`` after its address under *sa* went away (``ike.reconnect``)."""
        reconnect.roamed(self, sa, now)

    def establish(self, sa: IkeSa, now: float, *, rekey_of: bytes | None = None) -> None:
        """``IkeCore.establish``, then a client's first liveness probe is armed (``ike.reconnect``, RFC 7296 §2.4)."""
        super().establish(sa, now, rekey_of=rekey_of)
        reconnect.established(self, sa, now)

    # ================================================================== commands
    def initiate(self, connection: str, now: float) -> bytes:
        """Start IKE_SA_INIT (RFC 7296 §1.2); return spi_i. Then call ``datagrams_to_send()``."""
        profile = self.profiles.get(connection)
        if profile is None:
            raise LocalProtocolError(f"unknown connection {connection!r}")
        conn = profile.connection
        if conn.remote_addr is None:
            raise LocalProtocolError(f"connection {connection!r} has no remote_addr to initiate to")
        local = reestablish.local_address(self, conn)  # the configured one, else the best usable (RFC 4555 §3.5)
        return resume_exchange.initiate(self, profile, local, conn.remote_addr, now).spi_i  # RFC 5723 §4.3 if a ticket

    def rekey_child_sa(self, spi_in: bytes, now: float) -> None:
        """Queue a CHILD_SA rekey (RFC 7296 §1.3.3); then call ``datagrams_to_send()``."""
        child = self.find_child(spi_in)
        self.enqueue(self.owner(child), Work("rekey_child", spi=spi_in, trigger="command"), now)

    def rekey_ike_sa(self, local_spi: bytes, now: float) -> None:
        """Queue an IKE_SA rekey (RFC 7296 §1.3.2); then call ``datagrams_to_send()``."""
        self.enqueue(self.find_sa(local_spi), Work("rekey_ike", trigger="command"), now)

    def create_child_sa(self, local_spi: bytes, child: str, now: float) -> None:
        """Queue a new CHILD_SA *child* (RFC 7296 §1.3.1); then call ``datagrams_to_send()``."""
        sa = self.find_sa(local_spi)
        if child not in sa.profile.children:
            raise LocalProtocolError(f"connection {sa.name!r} has no child {child!r}")
        self.enqueue(sa, Work("create_child", child=child), now)

    def delete_child_sa(self, spi_in: bytes, now: float) -> None:
        """Queue the Delete of a CHILD_SA (RFC 7296 §1.4.1); then call ``datagrams_to_send()``."""
        child = self.find_child(spi_in)
        self.enqueue(self.owner(child), Work("delete_child", spi=spi_in, reason="deleted_locally"),
                     now)

    def delete_ike_sa(self, local_spi: bytes, now: float) -> None:
        """Queue the Delete of an IKE_SA (RFC 7296 §1.4.1); then call ``datagrams_to_send()``."""
        sa = self.find_sa(local_spi)
        self.enqueue(sa, Work("delete_ike", reason="deleted_locally"), now, front=True)

    def check_liveness(self, local_spi: bytes, now: float) -> None:
        """Queue an empty INFORMATIONAL (RFC 7296 §2.4); then call ``datagrams_to_send()``."""
        self.enqueue(self.find_sa(local_spi), Work("dpd"), now)

    def set_local_addresses(self, ips: Sequence[str], now: float) -> None:
        """The host's usable IP addresses changed (interfaces up or down), best first: every established IKE_SA
        roams as strongSwan's ``ike_sa.roam`` does (RFC 4555 §3.5–§3.6 with MOBIKE, a new IKE_SA from another
        address without it). Until the first call every configured address is usable. Then call
        ``datagrams_to_send()``."""
        mobike.set_local_addresses(self, tuple(ips), now)

    # ================================================================== data plane reports (``ike.limits``)
    def child_sa_limit_reached(self, spi: bytes, *, hard: bool, counter: str, now: float) -> None:
        """A CHILD_SA (either SPI) reached a soft or hard volume limit (RFC 7296 §2.8, RFC 4301 §4.4.2.1): soft rekeys
        it, hard expires and deletes it; an unknown SPI is ignored. Then call ``datagrams_to_send()``."""
        limits.child_sa_limit_reached(self, spi, hard=hard, counter=counter, now=now)

    def esp_peer_moved(self, spi_in: bytes, src: Address, now: float) -> None:
        """Authenticated UDP-encapsulated ESP (RFC 3948) of *spi_in* came from *src*: move the IKE_SA's peer there
        if strongSwan would (RFC 7296 §2.23); else, or for an unknown SPI, nothing happens."""
        limits.esp_peer_moved(self, spi_in, src, now)

    # ================================================================== introspection
    def ike_sa_spis(self, connection: str | None = None) -> list[bytes]:
        """Local SPIs of ESTABLISHED IKE_SAs (optionally of one connection)."""
        return [spi for spi, sa in self.sas.items()
                if sa.local_spi == spi and sa.state is IkeSaState.ESTABLISHED
                and (connection is None or sa.name == connection)]

    def child_sa_spis(self, connection: str | None = None) -> list[bytes]:
        """spi_in of installed CHILD_SAs (not lingering rekeyed or deleting ones)."""
        return [spi for spi, child in self.children.items()
                if child.state in _USABLE_CHILD
                and (connection is None or self.owner(child).name == connection)]

    def child_sa_volume_limits(self, spi_in: bytes) -> limits.VolumeLimits:
        """The byte and packet limits a CHILD_SA's inbound and outbound SAs drew (RFC 4301 §4.4.2.1); LocalProtocolError
        if unknown."""
        return limits.volume_limits(self, spi_in)

    def ike_sa_info(self, local_spi: bytes) -> IkeSaInfo:
        """A frozen snapshot of one IKE_SA; LocalProtocolError if unknown."""
        sa = self.find_sa(local_spi)
        return IkeSaInfo(sa.spi_i, sa.spi_r, sa.state.value, sa.name, sa.initiator, sa.local,
                         sa.peer, tuple(sa.children), sa.rekey_at, sa.expire_at,
                         sa.next_message_id, sa.peer_message_id, sa.nat_local, sa.nat_peer)

    def ha_record(self, local_spi: bytes) -> ha_state.IkeSaRecord | None:
        """What a cluster member replicates of one IKE_SA (``ike.ha_state``); None if it is not established here."""
        sa = self.sas.get(local_spi)
        return ha_state.export_ike_sa(sa) if sa is not None and sa.local_spi == local_spi else None

    def synchronize_message_ids(self, local_spi: bytes, now: float, *, replay_delta: int = 0) -> bool:
        """Start an RFC 6311 synchronization on an IKE_SA of ours (a member keeping it after a split brain); False if
        the IKE_SA did not negotiate it. LocalProtocolError if unknown."""
        self.clock = now
        return ha_sync.queue(self, self.find_sa(local_spi), now, replay_delta=replay_delta)

    def activate_ike_sa(self, record: ha_state.IkeSaRecord, now: float, *, replay_delta: int = 0) -> bytes:
        """Take a replicated IKE_SA over (a cluster failover); with RFC 6311 its message IDs are synchronized next
        (``ike.ha_sync``). Returns its local SPI; LocalProtocolError if it cannot be taken over."""
        self.clock = now
        return ha_state.activate(self, record, now, replay_delta=replay_delta).local_spi

    def deliver_aaa(self, local_spi: bytes, now: float) -> bool:
        """The AAA backend answered the EAP Response an ``AaaRequested`` named: answer it (``ike.eap_auth``)."""
        self.clock = now
        return eap_auth.deliver_aaa(self, self.find_sa(local_spi), now)


_TIMER_HANDLERS: dict[str, Callable[[IkeDaemon, bytes, float], None]] = {
    "rtx": IkeDaemon._on_retransmit,
    "dpd": IkeDaemon._on_dpd,
    "ike_soft": IkeDaemon._on_ike_soft,
    "ike_hard": IkeDaemon._on_ike_hard,
    "half_open": IkeDaemon._on_half_open,
    "stale_ike": IkeDaemon._on_stale_ike,
    "redundant_ike": IkeDaemon._on_redundant_ike,
    "retry_ike": IkeDaemon._on_retry_ike,
    "child_soft": child_timers.on_soft,
    "child_hard": child_timers.on_hard,
    "retry_child": child_timers.on_retry,
    "linger": child_timers.on_linger,
    "closed": IkeDaemon._on_closed,
    "probe": reconnect.on_probe_timer,
    "reconnect": reconnect.on_backoff_timer,
    "reauth": reauth.on_timer,
    resumption.REFRESH_TIMER: resumption.on_refresh_timer,
    childless.RETRY_TIMER: childless.on_retry_timer,
}
"""Timer kind -> handler (RFC 7296 §2.1 retransmissions, §2.4 DPD and liveness probes, §2.8 lifetimes, §2.8.3
reauthentication, §2.25 retries; ``reconnect``: the backoff of a smart reconnect)."""
