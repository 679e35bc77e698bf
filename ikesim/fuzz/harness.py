"""The daemon fuzz harness: feed mutated datagrams to established and half-open pairs, account for each.

Each datagram ``i`` of worker ``w`` is drawn from ``Rng(seed, "fuzz", w, i)``; pairs are built from
``Rng(seed, "pair", w, n)``. A run is therefore reproducible: the same (seed, workers, count) feeds the
same bytes, and a datagram that made an exception escape is replayed by running again up to its index.

Targets (one datagram each):

* ``request``: an established pair; the harness plays one peer (sealing with its IKE_SA's real keys)
  and sends the other a mutated request built from a template (CREATE_CHILD_SA for a CHILD_SA or IKE_SA
  rekey, new CHILD_SA, INFORMATIONAL delete / liveness, IKE_AUTH ...), with a message ID that is the
  expected one, the last one (a retransmission), older, newer or far off, and sometimes wrong SPIs.
* ``response``: the victim starts an exchange (liveness, CHILD_SA or IKE_SA rekey); the real peer
  answers, the answer is held back and mutated sealed answers are fed instead; the real one follows.
* ``fragment``: SKF fragments of a mutated request (RFC 7383): in order, reversed, duplicated,
  mismatched totals, number 0, number > total, total 0 or 65535.
* ``init_request`` / ``init_response``: IKE_SA_INIT to a gateway / to a client awaiting its answer.
* ``auth_request`` / ``auth_response``: sealed IKE_AUTH to a half-open gateway / a client awaiting it.

Any datagram may also get a byte-level mutation (truncation, bit flips, length fields, splicing); a
sealed datagram that does is no longer counted as sealed. The outcome of each datagram is read from the
victim's events and output: ``dropped:<reason>`` (MessageDropped), ``answered`` (it sent datagrams),
``processed`` (other events, or an SKF fragment held for reassembly), or ``unaccounted``. An exception
out of ``receive_datagram`` is recorded with its traceback and the run goes on with a rebuilt pair.
After each batch the established pair must still rekey a CHILD_SA and the IKE_SA.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence

from ikesim.errors import IkesimError
from ikesim.fuzz.checks import divergence, rekey_check
from ikesim.fuzz.mutate import mutate_bytes, mutate_payloads, pick
from ikesim.fuzz.pairs import CLIENT, GATEWAY, Pair, Template, capture_templates, make_pair
from ikesim.fuzz.plan import (
    _REQ_LABELS,
    _TARGET_TOTAL,
    _TARGETS,
    _Built,
    _Episode,
    _FragmentPlan,
    _held_fragments,
)
from ikesim.fuzz.seal import inner_plaintext, seal_fragment, seal_message, sender_protector
from ikesim.fuzz.stats import Escape, FuzzStats, normalize_reason
from ikesim.ike import events as ev
from ikesim.ike.daemon import IkeDaemon
from ikesim.ike.sa import IkeSa
from ikesim.ike.state import IkeSaState
from ikesim.rng import Rng
from ikesim.types import Address, Datagram
from ikesim.wire.codec import parse_message, serialize_message, unprotect_message
from ikesim.wire.iana import ExchangeType, HeaderFlag
from ikesim.wire.message import Message
from ikesim.wire.payloads import Payload

__all__ = ["FuzzStats", "Fuzzer", "Escape", "run_fuzz", "HANG_SECONDS"]

HANG_SECONDS = 2.0
"""A datagram whose ``receive_datagram`` takes longer than this (wall clock) is reported as a hang."""

class Fuzzer:
    """One worker's fuzz state: its pairs, templates and totals."""

    def __init__(self, seed: int, worker: int = 0, *, batch: int = 1000,
                 templates: tuple[Template, ...] | None = None) -> None:
        self.seed = seed
        self.worker = worker
        self.batch = batch
        self.stats = FuzzStats()
        self.templates = templates if templates is not None else capture_templates(Rng(seed, "templates"))
        self.pool: tuple[Payload, ...] = tuple(p for t in self.templates for p in t.payloads)
        self._pairs_built = 0
        self.now = 0.0
        self.est = self._new_established()
        self.half = self._new_half_open()
        self.waiting = self._new_waiting()
        self.episode: _Episode | None = None
        self.fragments: _FragmentPlan | None = None
        self.watch: dict[int, tuple[bytes, IkeDaemon, list[str]] | None] = {}
        """Indices to keep (datagram, victim, [outcome]) for, to replay a finding: fill the keys before ``run``."""
        self.hang_seconds = HANG_SECONDS
        self.before_receive: Callable[[IkeDaemon], None] | None = None
        """Test hook: called with the victim before each ``receive_datagram``."""

    # ------------------------------------------------------------------ pairs
    def _pair_rng(self, kind: str) -> Rng:
        self._pairs_built += 1
        return Rng(self.seed, "pair", str(self.worker), kind, str(self._pairs_built))

    def _new_established(self) -> Pair:
        pair = make_pair(self._pair_rng("established"))
        if not pair.establish(self.now):
            raise RuntimeError("fuzz pair did not establish")
        return pair

    def _new_half_open(self) -> tuple[Pair, bytes, bytes, tuple[Payload, ...]]:
        """Gateway half-open after IKE_SA_INIT, client awaiting its IKE_AUTH answer (request held back)."""
        pair = make_pair(self._pair_rng("half_open"))
        pair.client.initiate("vpn", self.now)
        (req,) = pair.client.datagrams_to_send(self.now)
        pair.gateway.receive_datagram(req.data, req.src, req.dst, self.now)
        (resp,) = pair.gateway.datagrams_to_send(self.now)
        pair.client.receive_datagram(resp.data, resp.src, resp.dst, self.now)
        auth = pair.client.datagrams_to_send(self.now)
        pair.drain()
        msg = parse_message(auth[0].data)
        gw_sa = pair.gateway.sas[msg.spi_r]
        inner = unprotect_message(auth[0].data, gw_sa.protect_in).payloads if len(auth) == 1 else ()
        return pair, req.data, msg.spi_i, inner

    def _new_waiting(self) -> tuple[Pair, Message]:
        """A client awaiting its IKE_SA_INIT answer (the gateway's real answer held back)."""
        pair = make_pair(self._pair_rng("waiting"))
        pair.client.initiate("vpn", self.now)
        (req,) = pair.client.datagrams_to_send(self.now)
        pair.gateway.receive_datagram(req.data, req.src, req.dst, self.now)
        (resp,) = pair.gateway.datagrams_to_send(self.now)
        pair.drain()
        return pair, parse_message(resp.data)

    def _rebuild(self, which: str, why: str) -> None:
        self.stats.rebuilt[f"{which}:{why}"] += 1
        if which == "established":
            self.est = self._new_established()
            self.episode = None
            self.fragments = None
        elif which == "half_open":
            self.half = self._new_half_open()
        else:
            self.waiting = self._new_waiting()

    # ------------------------------------------------------------------ run
    def run(self, count: int, start: int = 0) -> FuzzStats:
        """Feed datagrams ``start .. start+count-1``; check rekeying after every batch."""
        t0 = time.perf_counter()
        for i in range(start, start + count):
            self.feed(i)
            if (i + 1 - start) % self.batch == 0 or i == start + count - 1:
                self._checked_end_batch(i)
        self.stats.seconds += time.perf_counter() - t0
        return self.stats

    def feed(self, index: int) -> None:
        """Generate datagram *index*, deliver it, account for it."""
        rng = Rng(self.seed, "fuzz", str(self.worker), str(index))
        self.now += 0.001
        built = None
        for _ in range(3):
            built = self._generate(rng)
            if built is not None:
                break
        if built is None:
            self.stats.generation_fallbacks += 1
            pair = self.half[0]
            built = ("init_request", self.half[1], pair.gateway, CLIENT, GATEWAY, False, ["fallback"])
        target, data, victim, src, dst, sealed, muts = built
        if sealed and rng.below(100) < 12:
            data, name = mutate_bytes(rng, data)
            muts.append(name)
            sealed = False
        elif not sealed and rng.below(100) < 50:
            data, name = mutate_bytes(rng, data)
            muts.append(name)
        self.stats.datagrams += 1
        self.stats.sealed += sealed
        self.stats.targets[target] += 1
        self.stats.mutations.update(m.split(":", 2)[1] if m.startswith("semantic:") else m.split(":")[0]
                                    for group in muts for m in group.split(","))
        self._deliver(index, target, data, victim, src, dst, ",".join(muts))

    def _deliver(self, index: int, target: str, data: bytes, victim: IkeDaemon, src: Address, dst: Address,
                 muts: str) -> None:
        held_before = _held_fragments(victim) if target == "fragment" else ()
        t0 = time.perf_counter()
        try:
            if self.before_receive is not None:
                self.before_receive(victim)
            victim.receive_datagram(data, src, dst, self.now)
        except Exception as exc:  # the harness records every escape and goes on
            elapsed = time.perf_counter() - t0
            name = type(exc).__name__
            self.stats.escapes_by_type[name] += 1
            if len(self.stats.escapes) < 200:
                tb = "".join(traceback.format_exception(exc)[-6:])
                self.stats.escapes.append(Escape(self.seed, self.worker, index, target, muts, f"{name}: {exc}",
                                                 tb, data.hex()))
            self.stats.outcomes[f"escaped:{name}"] += 1
            self._drop_state_of(victim)
            return
        elapsed = time.perf_counter() - t0
        self.stats.slowest = max(self.stats.slowest, elapsed)
        if elapsed > self.hang_seconds:
            self.stats.hangs.append((self.worker, index, target, elapsed))
        outcome, out = self._classify(victim, target == "fragment", held_before)
        self.stats.outcomes[outcome] += 1
        if victim in (self.est.client, self.est.gateway):
            self._relay(index, victim, out)
        if outcome == "unaccounted" and len(self.stats.unaccounted) < 200:
            self.stats.unaccounted.append((self.worker, index, target, muts))
        if index in self.watch:
            self.watch[index] = (data, victim, [outcome])

    def _classify(self, victim: IkeDaemon, fragment: bool,
                  held_before: tuple[tuple[int, int, int], ...]) -> tuple[str, list[Datagram]]:
        """The datagram's outcome from the victim's events and output; and that output."""
        events = []
        while (e := victim.next_event()) is not None:
            events.append(e)
        out = victim.datagrams_to_send(self.now)
        drops = [e for e in events if isinstance(e, ev.MessageDropped)]
        if drops:
            return "dropped:" + normalize_reason(drops[0].reason), out
        if out:
            return "answered", out
        if events:
            return "processed", out
        if fragment and _held_fragments(victim) != held_before:
            return "processed:fragment_held", out
        return "unaccounted", out

    def _relay(self, index: int, victim: IkeDaemon, out: list[Datagram]) -> None:
        """Pass the victim's output to its real peer, as a network would, and keep the impersonated peer's
        message ID in step with what the victim accepted (the harness sent that request in its name).

        The peer drops answers to requests it never sent; requests the victim started (a Delete after a
        rekey it accepted, say) reach it, so the two ends stay in agreement. Exceptions count as escapes.
        """
        pair = self.est
        peer = pair.other(victim)
        try:
            cur = pair.current()
            if cur is not None:
                v_sa, p_sa = (cur[0], cur[1]) if victim is pair.client else (cur[1], cur[0])
                if p_sa.active is None and not p_sa.queue and p_sa.next_message_id < v_sa.peer_message_id:
                    p_sa.next_message_id = v_sa.peer_message_id
            for d in out:
                peer.receive_datagram(d.data, d.src, d.dst, self.now)
            pair.settle(self.now)
            pair.drain()
        except Exception as exc:  # the harness records every escape and goes on
            name = type(exc).__name__
            self.stats.escapes_by_type[name] += 1
            if len(self.stats.escapes) < 200:
                self.stats.escapes.append(Escape(self.seed, self.worker, index, "relay", "", f"{name}: {exc}",
                                                 "".join(traceback.format_exception(exc)[-6:]), ""))
            self._rebuild("established", "escape")

    def _drop_state_of(self, victim: IkeDaemon) -> None:
        """After an escape the victim's state is suspect: rebuild whatever it belongs to."""
        if victim in (self.est.client, self.est.gateway):
            self._rebuild("established", "escape")
        elif victim in (self.half[0].client, self.half[0].gateway):
            self._rebuild("half_open", "escape")
        else:
            self._rebuild("waiting", "escape")

    # ------------------------------------------------------------------ generation
    def _generate(self, rng: Rng) -> _Built | None:
        r = rng.below(_TARGET_TOTAL)
        target = _TARGETS[-1][1]
        for w, name in _TARGETS:
            if r < w:
                target = name
                break
            r -= w
        if self.fragments is not None:
            target = "fragment"
        muts: list[str] = []
        try:
            if target == "request":
                return self._generate_request(rng, muts)
            if target == "response":
                return self._generate_response(rng, muts)
            if target == "fragment":
                return self._generate_fragment(rng, muts)
            if target == "init_request":
                return self._generate_init_request(rng, muts)
            if target == "init_response":
                return self._generate_init_response(rng, muts)
            if target == "auth_request":
                return self._generate_auth(rng, muts, request=True)
            return self._generate_auth(rng, muts, request=False)
        except (ValueError, TypeError, OverflowError, KeyError, AttributeError):
            return None  # a mutant the serializers refuse: fall back to a plain one
        except IkesimError as exc:  # e.g. the held-back answer of an episode did not open: count, go on
            self.stats.generation_errors[type(exc).__name__] += 1
            self.episode = None
            return None

    def _sides(self, rng: Rng) -> tuple[IkeDaemon, IkeDaemon, IkeSa, IkeSa]:
        """(sender, victim, sender's IKE_SA, victim's IKE_SA) of the established pair's current IKE_SA."""
        pair = self.est
        cur = pair.current()
        if cur is None:  # a sealed DELETE or rekey the harness's peer never saw: set up a new IKE_SA
            self.fragments = None
            self.episode = None
            self.stats.reestablished["mid_batch"] += 1
            if not pair.establish(self.now) or (cur := pair.current()) is None:
                self._rebuild("established", "reestablish_failed")
                cur = self.est.current()
                assert cur is not None
        if rng.below(2):
            return self.est.client, self.est.gateway, cur[0], cur[1]
        return self.est.gateway, self.est.client, cur[1], cur[0]

    def _template(self, rng: Rng, *, response: bool, labels: Sequence[str] = _REQ_LABELS) -> Template:
        choices = [t for t in self.templates if t.response == response and t.label in labels]
        return choices[rng.below(len(choices))]

    def _mutated_inner(self, rng: Rng, payloads: tuple[Payload, ...], muts: list[str]) -> tuple[Payload, ...]:
        if rng.below(100) < 8:
            muts.append("unmutated")
            return payloads
        out, names = mutate_payloads(rng, payloads, self.pool)
        muts.extend(names)
        return out

    def _header(self, rng: Rng, s_sa: IkeSa, v_sa: IkeSa, exchange: int, mid: int, response: bool,
                muts: list[str]) -> tuple[bytes, bytes, int, int, int]:
        """(spi_i, spi_r, exchange, flags, message ID) with occasional wrong SPIs / flags / exchange type."""
        spi_i, spi_r = s_sa.spi_i, s_sa.spi_r
        flags = (HeaderFlag.INITIATOR if s_sa.initiator else 0) | (HeaderFlag.RESPONSE if response else 0)
        r = rng.below(100)
        if r < 4:
            spi_r, muts_name = rng.bytes(8), "wrong_spi_r"
        elif r < 8:
            spi_i, muts_name = rng.bytes(8), "wrong_spi_i"
        elif r < 10:
            spi_i, spi_r, muts_name = spi_r, spi_i, "swapped_spis"
        elif r < 12:
            spi_r, muts_name = bytes(8), "zero_spi_r"
        elif r < 15:
            flags, muts_name = flags ^ int(pick(rng, (0x08, 0x20, 0x10, 0x28))), "flags"
        elif r < 19:
            exchange, muts_name = int(pick(rng, (0, 33, 34, 35, 36, 37, 43, 240, 255))), "exchange_type"
        else:
            muts_name = ""
        if muts_name:
            muts.append(muts_name)
        return spi_i, spi_r, exchange, flags, mid

    def _message_id(self, rng: Rng, expected: int, muts: list[str]) -> int:
        r = rng.below(100)
        if r < 72:
            return expected
        if r < 80:
            muts.append("mid_retransmit")
            return max(expected - 1, 0)
        if r < 86:
            muts.append("mid_past")
            return rng.below(expected) if expected else 0
        if r < 94:
            muts.append("mid_future")
            return expected + 1 + rng.below(4)
        muts.append("mid_far")
        return int(pick(rng, (0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, rng.bits(32))))

    def _generate_request(self, rng: Rng, muts: list[str]) -> _Built:
        sender, victim, s_sa, v_sa = self._sides(rng)
        tpl = self._template(rng, response=False)
        muts.append(f"tpl_{tpl.label}")
        inner = self._mutated_inner(rng, tpl.payloads, muts)
        mid = self._message_id(rng, v_sa.peer_message_id, muts)
        spi_i, spi_r, exch, flags, mid = self._header(rng, s_sa, v_sa, tpl.exchange, mid, False, muts)
        data = seal_message(spi_i, spi_r, exch, flags, mid, inner, sender_protector(s_sa, rng))
        return "request", data, victim, s_sa.local, v_sa.local, True, muts

    def _generate_response(self, rng: Rng, muts: list[str]) -> _Built:
        ep = self.episode
        if ep is not None:
            v_sa = ep.victim.sas.get(ep.spi)
            if v_sa is None or v_sa.active is None or v_sa.active.message_id != ep.message_id:
                self.episode = ep = None
        if ep is None:
            ep = self._start_episode(rng)
            if ep is None:
                return self._generate_request(rng, muts)
        victim = ep.victim
        sender = self.est.other(victim)
        v_sa = victim.sas[ep.spi]
        s_sa = sender.sas.get(v_sa.peer_spi)
        if s_sa is None:
            self.episode = None
            return self._generate_request(rng, muts)
        if rng.below(3) == 0:
            tpl = self._template(rng, response=True)
            base, label = tpl.payloads, tpl.label
        else:
            base, label = ep.payloads, "real"
        muts.append(f"resp_{label}")
        inner = self._mutated_inner(rng, base, muts)
        mid = self._message_id(rng, ep.message_id, muts)
        spi_i, spi_r, exch, flags, mid = self._header(rng, s_sa, v_sa, ep.exchange, mid, True, muts)
        data = seal_message(spi_i, spi_r, exch, flags, mid, inner, sender_protector(s_sa, rng))
        return "response", data, victim, s_sa.local, v_sa.local, True, muts

    def _start_episode(self, rng: Rng) -> _Episode | None:
        """The victim starts an exchange; its request reaches the peer; the peer's answer is held back."""
        _sender, victim, _s_sa, v_sa = self._sides(rng)
        pair = self.est
        if v_sa.active is not None or v_sa.queue:
            return None
        kind = rng.below(10)
        if kind < 6:
            victim.check_liveness(v_sa.local_spi, self.now)
        elif kind < 9 and victim.child_sa_spis():
            victim.rekey_child_sa(victim.child_sa_spis()[0], self.now)
        else:
            victim.rekey_ike_sa(v_sa.local_spi, self.now)
        ex = v_sa.active
        if ex is None:
            pair.drain()
            return None
        pair.deliver(victim, self.now)
        real = pair.other(victim).datagrams_to_send(self.now)
        pair.drain()
        if len(real) != 1:
            return None
        payloads = unprotect_message(real[0].data, v_sa.protect_in).payloads
        self.episode = _Episode(victim, v_sa.local_spi, ex.message_id, ExchangeType(ex.exchange_type), real, payloads)
        return self.episode

    def _generate_fragment(self, rng: Rng, muts: list[str]) -> _Built:
        plan = self.fragments
        if plan is None or not plan.datagrams or plan.victim not in (self.est.client, self.est.gateway):
            plan = self.fragments = self._plan_fragments(rng)
        data = plan.datagrams.pop(0)
        if not plan.datagrams:
            self.fragments = None
        muts.append(plan.mutations)
        return "fragment", data, plan.victim, plan.src, plan.dst, True, muts

    def _plan_fragments(self, rng: Rng) -> _FragmentPlan:
        sender, victim, s_sa, v_sa = self._sides(rng)
        tpl = self._template(rng, response=False)
        pmuts = [f"tpl_{tpl.label}"]
        inner = self._mutated_inner(rng, tpl.payloads, pmuts) if rng.below(2) else tpl.payloads
        first, plain = inner_plaintext(inner)
        total = 2 + rng.below(4)
        size = max(1, -(-len(plain) // total))
        chunks = [plain[i * size:(i + 1) * size] for i in range(total)]
        numbers = list(range(1, total + 1))
        totals = [total] * total
        mode = str(pick(rng, ("in_order", "reversed", "duplicate", "mismatched_total", "number_zero",
                              "number_above_total", "total_zero", "total_huge", "too_many", "missing_last")))
        pmuts.append(f"skf_{mode}")
        if mode == "reversed":
            numbers.reverse()
            chunks.reverse()
        elif mode == "duplicate":
            numbers.insert(1, numbers[0])
            chunks.insert(1, chunks[0])
            totals.append(total)
        elif mode == "mismatched_total":
            totals[rng.below(total)] = total + int(pick(rng, (-1, 1, 2)))
        elif mode == "number_zero":
            numbers[rng.below(total)] = 0
        elif mode == "number_above_total":
            numbers[rng.below(total)] = total + 1
        elif mode == "total_zero":
            totals = [0] * total
        elif mode == "total_huge":
            totals = [int(pick(rng, (65, 255, 0xFFFF)))] * total
        elif mode == "too_many":
            totals = [65] * total
        elif mode == "missing_last":
            numbers, chunks, totals = numbers[:-1], chunks[:-1], totals[:-1]
        mid = self._message_id(rng, v_sa.peer_message_id, pmuts)
        flags = (HeaderFlag.INITIATOR if s_sa.initiator else 0)
        protector = sender_protector(s_sa, rng)
        datagrams = [seal_fragment(s_sa.spi_i, s_sa.spi_r, tpl.exchange, flags, mid,
                                   first if n == 1 else 0, n, t, c, protector)
                     for n, t, c in zip(numbers, totals, chunks, strict=False)]
        return _FragmentPlan(datagrams, victim, s_sa.local, v_sa.local, ",".join(pmuts))

    def _generate_init_request(self, rng: Rng, muts: list[str]) -> _Built:
        pair, init_req, spi_i, _inner = self.half
        msg = parse_message(init_req)
        payloads = self._mutated_inner(rng, msg.payloads, muts)
        r = rng.below(10)
        if r < 7:
            new_spi = rng.bytes(8)
        elif r < 9:
            new_spi = spi_i
            muts.append("existing_spi_i")
        else:
            new_spi = bytes(8)
            muts.append("zero_spi_i")
        mid = 0 if rng.below(10) else int(pick(rng, (1, 2, 0xFFFFFFFF)))
        flags = HeaderFlag.INITIATOR if rng.below(20) else HeaderFlag(int(pick(rng, (0, 0x20, 0x28))))
        mutant = Message(new_spi, bytes(8) if rng.below(20) else rng.bytes(8), ExchangeType.IKE_SA_INIT, flags,
                         mid, payloads)
        data = serialize_message(mutant)
        src = CLIENT if rng.below(4) == 0 else Address(f"10.{1 + rng.below(200)}.{rng.below(256)}.{1 + rng.below(250)}")
        return "init_request", data, pair.gateway, src, GATEWAY, False, muts

    def _generate_init_response(self, rng: Rng, muts: list[str]) -> _Built:
        pair, real = self.waiting
        sa = pair.client.sas.get(real.spi_i)
        if sa is None or sa.state is not IkeSaState.CONNECTING or sa.active is None or sa.active.purpose != "ike_sa_init":
            self._rebuild("waiting", "consumed")
            pair, real = self.waiting
        payloads = self._mutated_inner(rng, real.payloads, muts)
        spi_r = real.spi_r if rng.below(5) else rng.bytes(8)
        mid = 0 if rng.below(10) else 1
        mutant = Message(real.spi_i, spi_r, ExchangeType.IKE_SA_INIT, real.flags, mid, payloads)
        return "init_response", serialize_message(mutant), pair.client, GATEWAY, CLIENT, False, muts

    def _generate_auth(self, rng: Rng, muts: list[str], *, request: bool) -> _Built:
        pair, _init_req, spi_i, inner = self.half
        c_sa = pair.client.sas.get(spi_i)
        g_sa = pair.gateway.sas.get(c_sa.spi_r) if c_sa is not None else None
        if (c_sa is None or g_sa is None or c_sa.state is not IkeSaState.CONNECTING or c_sa.active is None
                or g_sa.state is not IkeSaState.CONNECTING or g_sa.peer_message_id != 1):
            self._rebuild("half_open", "consumed")
            return self._generate_auth(rng, muts, request=request)
        if request:
            base = inner if rng.below(3) else self._template(rng, response=False, labels=("ike_auth",)).payloads
            payloads = self._mutated_inner(rng, base, muts)
            spi_i_, spi_r, exch, flags, mid = self._header(rng, c_sa, g_sa, ExchangeType.IKE_AUTH,
                                                           self._message_id(rng, 1, muts), False, muts)
            data = seal_message(spi_i_, spi_r, exch, flags, mid, payloads, sender_protector(c_sa, rng))
            return "auth_request", data, pair.gateway, CLIENT, GATEWAY, True, muts
        base = self._template(rng, response=True, labels=("ike_auth",)).payloads
        payloads = self._mutated_inner(rng, base, muts)
        spi_i_, spi_r, exch, flags, mid = self._header(rng, g_sa, c_sa, ExchangeType.IKE_AUTH,
                                                       self._message_id(rng, 1, muts), True, muts)
        data = seal_message(spi_i_, spi_r, exch, flags, mid, payloads, sender_protector(g_sa, rng))
        return "auth_response", data, pair.client, GATEWAY, CLIENT, True, muts

    # ------------------------------------------------------------------ batches
    def _checked_end_batch(self, index: int) -> None:
        """``end_batch``; an exception from the daemons there (timers, settling) is an escape too."""
        try:
            self.end_batch()
        except Exception as exc:  # the harness records every escape and goes on
            name = type(exc).__name__
            self.stats.escapes_by_type[name] += 1
            self.stats.rekey_checks_failed += 1
            if len(self.stats.escapes) < 200:
                self.stats.escapes.append(Escape(self.seed, self.worker, index, "batch_end", "", f"{name}: {exc}",
                                                 "".join(traceback.format_exception(exc)[-6:]), ""))
            self.now += 100.0
            self._rebuild("established", "escape")
            self._rebuild("half_open", "batch")
            self._rebuild("waiting", "batch")

    def end_batch(self) -> None:
        """Finish pending episodes; check that the fuzzed daemons still rekey; fresh pairs for the next batch.

        If the current IKE_SA still agrees on both ends, it is rekeyed (a CHILD_SA, then the IKE_SA). If
        an authenticated hostile message made the ends disagree (a sealed DELETE or rekey the harness's
        peer never saw), the same two daemons set up a new IKE_SA and that one is rekeyed instead.
        """
        pair = self.est
        self.fragments = None
        ep = self.episode
        self.episode = None
        if ep is not None:
            v_sa = ep.victim.sas.get(ep.spi)
            if v_sa is not None and v_sa.active is not None and v_sa.active.message_id == ep.message_id:
                for d in ep.real:
                    ep.victim.receive_datagram(d.data, d.src, d.dst, self.now)
        pair.settle(self.now)
        self.now = pair.run_until(self.now + 60.0, self.now)
        pair.drain()
        why = divergence(pair)
        if why:
            self.stats.diverged[why] += 1
            self.stats.reestablished["batch_end"] += 1
            self.now += 1.0
            if not pair.establish(self.now):
                why = "fresh IKE_SA did not establish"
            else:
                why = ""
        failure = why
        if not failure:
            failure, self.now = rekey_check(pair, self.now)
        if failure:
            self.stats.rekey_checks_failed += 1
            if len(self.stats.rekey_failures) < 200:
                self.stats.rekey_failures.append(f"seed {self.seed} worker {self.worker} now {self.now}: {failure}")
        else:
            self.stats.rekey_checks_passed += 1
        self.now += 100.0
        self._rebuild("established", "batch")
        self._rebuild("half_open", "batch")
        self._rebuild("waiting", "batch")

def run_fuzz(count: int, seed: int, worker: int = 0, batch: int = 1000) -> FuzzStats:
    """Run one worker's share: *count* datagrams from stream (*seed*, *worker*)."""
    return Fuzzer(seed, worker, batch=batch).run(count)
