"""Authenticated hostile messages for the sans-IO tests: real exchanges, re-sealed with the SA's own keys.

An authenticated peer is modelled by taking the message a daemon really sent, decrypting it with the
other end's keys, changing its payloads, and sealing it again with the sender's IKE_SA (``IkeCore.seal``),
so the changed message passes the ICV check and reaches the inner parser and the state machine.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from ikepeers import Peers

from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.sa import IkeSa
from ikesim.types import Datagram
from ikesim.wire.codec import parse_message, unprotect_message
from ikesim.wire.iana import PayloadType
from ikesim.wire.message import Message
from ikesim.wire.payloads import Payload

Mutate = Callable[[list[Payload]], list[Payload]]


def only_sa(d: IkeDaemon) -> IkeSa:
    """The one IKE_SA object of *d* (skipping an SPI reserved by an IKE rekey in flight)."""
    (sa,) = {id(s): s for s in d.sas.values()}.values()
    return sa


def sa_of(d: IkeDaemon, datagram: Datagram) -> IkeSa:
    """*d*'s IKE_SA that *datagram* belongs to (by its header's SPIs)."""
    head = parse_message(datagram.data)
    return next(s for s in d.sas.values() if (s.spi_i, s.spi_r) == (head.spi_i, head.spi_r))


def reseal(sender: IkeDaemon, receiver: IkeDaemon, datagram: Datagram, mutate: Mutate) -> Datagram:
    """*datagram* (sent by *sender*) with its inner payloads changed by *mutate*, sealed with *sender*'s keys."""
    msg = opened(receiver, datagram)
    data = sender.seal(sa_of(sender, datagram), msg.exchange_type, msg.message_id, msg.is_response,
                       mutate(list(msg.payloads)))
    return Datagram(data, datagram.src, datagram.dst)


def opened(receiver: IkeDaemon, datagram: Datagram) -> Message:
    """The decrypted message *datagram* carries to *receiver*."""
    return unprotect_message(datagram.data, sa_of(receiver, datagram).protect_in)


def hostile_request(p: Peers, mutate: Mutate, now: float) -> Message:
    """The client's pending request, changed by *mutate*, delivered to the gateway; the gateway's decrypted answer."""
    (req,) = p.client.datagrams_to_send(now)
    bad = reseal(p.client, p.gateway, req, mutate)
    p.gateway.receive_datagram(bad.data, bad.src, bad.dst, now)
    (resp,) = p.gateway.datagrams_to_send(now)
    return opened(p.client, resp)


def hostile_response(p: Peers, mutate: Mutate, now: float) -> None:
    """The client's pending request to the gateway; its answer, changed by *mutate*, back to the client."""
    (req,) = p.client.datagrams_to_send(now)
    p.gateway.receive_datagram(req.data, req.src, req.dst, now)
    (resp,) = p.gateway.datagrams_to_send(now)
    bad = reseal(p.gateway, p.client, resp, mutate)
    p.client.receive_datagram(bad.data, bad.src, bad.dst, now)


def replace(payloads: list[Payload], kind: type[Payload], new: Payload) -> list[Payload]:
    """*payloads* with the first one of class *kind* replaced by *new*."""
    i = next(i for i, x in enumerate(payloads) if type(x) is kind)
    return payloads[:i] + [new] + payloads[i + 1:]


def seal_raw(sender: IkeDaemon, sa: IkeSa, msg: Message, first_payload: int, plaintext: bytes) -> bytes:
    """An SK message with *msg*'s header around raw *plaintext* (any bytes, even a malformed chain), sealed
    with *sa*'s keys (RFC 7296 §3.14: the header and SK generic header are the associated data)."""
    sealed_length = sa.protect_out.sealed_length(len(plaintext))
    head = sender.header(sa, msg.exchange_type, msg.message_id, msg.is_response)
    aad = (struct.pack(">8s8sBBBBII", head.spi_i, head.spi_r, PayloadType.SK, 0x20, head.exchange_type,
                       head.flags, head.message_id, 28 + 4 + sealed_length)
           + struct.pack(">BBH", first_payload, 0, 4 + sealed_length))
    return aad + sa.protect_out.seal(aad, plaintext)
