"""When behaviours fire: one room's events in, one firing at a time out.

Why here, in the agent peer, and not in the server: the agent is a peer like any other, so a
behaviour sees the room exactly as people do and writes through the same path and checks. The
peer's document emits every change with its transaction origin; `RoomBehaviours` turns them
into events for the behaviours whose triggers match (`agent.behaviours.intake`), merges what
arrives while a behaviour is busy or rate-limited into its next firing, and fires them one at a time.

Guards, in the order a firing meets them: its own writes never reach it (the document tags
them with its id); a rate limit per behaviour (events wait, merged); a CPU budget per behaviour
and per installing link (`agent.behaviours.cpu`: events wait, merged, and a behaviour that keeps
waiting for it pauses with a chat line saying why); its installer's link must
still be valid (else it pauses); a causal chain bound: every write of a firing carries the
firing's depth (1 + the depth of what caused it, people and schedules being 0), and a firing
deeper than `chain` pauses its behaviour with a chat line, so behaviours that keep triggering
each other stop within `chain` firings; and `failures` failed firings in a row pause it too.

Authority follows the actor: every event carries who caused it as the agent knows it
(`actors.Actors`), merged events the weakest role among them, and a firing acts with the grant
`agent.contract.events.firing_grant` gives (a viewer's event: read, unless the behaviour was
installed with `anyone`). A read-only firing's failures do not count towards pausing it, so a
viewer cannot pause an editor's behaviour by triggering it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.behaviours.actors import Actors
from agent.behaviours.cpu import CpuBook
from agent.behaviours.firing import event_global, run_firing, seed_of
from agent.behaviours.intake import Intake, Pending
from agent.behaviours.model import Behaviour, Firing, FiringSummary, Writes
from agent.behaviours.settings import BehaviourLimits
from agent.behaviours.store import BehaviourStore
from agent.contract.callsample import sample
from agent.contract.canvas import CanvasSession, Quotas
from agent.contract.events import Installer, PressedWidget, Status, firing_grant
from agent.contract.people import people_in
from agent.contract.room_view import RoomView
from agent.limits.admission import RateLimiter
from agent.sandbox import Limits, Sandbox
from canvas import Message, now_ms
from common.actor import Actor
from wire.client import CanvasClient

log = logging.getLogger("inhabit.agent")

KEPT_CHARS = 2000
"""Of a firing's result and console, what its record keeps (records are kept by the dozen)."""
RECENT = 5


class Metrics:
    """Firings across rooms, for /metrics: counts, and latency from event to commit."""

    def __init__(self) -> None:
        self.firings = 0
        self.failures = 0
        self.seconds = 0.0
        self.latencies: deque[float] = deque(maxlen=1000)
        self.cpu_paused = 0

    def record(self, ok: bool, seconds: float) -> None:
        self.firings += 1
        self.failures += 0 if ok else 1
        self.seconds += seconds
        self.latencies.append(seconds)

    def quantile(self, q: float) -> float:
        if not self.latencies:
            return 0.0
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))]


@dataclass
class Hosting:
    """What the plugin shares with every room's behaviours."""

    store: BehaviourStore
    sandbox: Sandbox
    limits: BehaviourLimits
    grant_problem: Callable[[Installer], str | None]
    """Why a behaviour may not act with its installer's grant now (expired, revoked), or None."""
    presence_of: Callable[[str, int], Actor | None] = field(default=lambda room, client_id: None)
    """The server's word on whose connection holds a presence client id in a room (None: it cannot say)."""
    metrics: Metrics = field(default_factory=Metrics)
    quotas: Quotas | None = None
    run_limits: Limits | None = None
    cpu: CpuBook = field(init=False)
    """The CPU budgets of every room's behaviours: one book for the node, so a '*' link's rooms share one."""

    def __post_init__(self) -> None:
        self.cpu = CpuBook(self.limits)


class RoomBehaviours:
    """One room's behaviours while its agent peer is there."""

    def __init__(self, room: str, client: CanvasClient, hosting: Hosting, *, author: str,
                 ask: Callable[[Behaviour, str, list[FiringSummary]], bool], actors: Actors | None = None,
                 view: RoomView | None = None) -> None:
        """`ask(behaviour, text, recent firings)`: wake the model; the last of `recent` is the asking
        firing, whose grant the run gets (read when a viewer caused it). `view`: the room's strokes as
        the peer keeps them (`RoomView`, following the client's document); one is made if not given."""
        self.room, self.client, self.h, self.author = room, client, hosting, author
        self.actors = actors or Actors()
        """Who is behind each event (and how deep in a chain of behaviours each firing's writes are)."""
        self.limits = hosting.limits
        self._own_view = view is None
        self.mirror = view if view is not None else RoomView(client.doc).follow()
        """The room's strokes, parsed once (`agent.contract.room_view`)."""
        self._ask = ask
        self._rate = RateLimiter(self.limits.firings_per_minute)
        self._asks = RateLimiter(self.limits.asks_per_minute)
        self._recent: dict[str, deque[FiringSummary]] = {}  # behaviour id -> its last few firings (for asks)
        self._wake = asyncio.Event()
        self.intake = Intake(room, hosting.store, self.actors, self._wake.set)
        """What waits to fire: each behaviour's events, merged (`agent.behaviours.intake`)."""
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe: list[Callable[[], None]] = []
        self.busy = False
        self.last_active = time.monotonic()

    # lifecycle -----------------------------------------------------------------------

    def start(self) -> RoomBehaviours:
        doc = self.client.doc
        messages = doc.messages_array.observe(self.intake.on_messages)
        self._unsubscribe = [self.mirror.on_change(self.intake.on_strokes), lambda: doc.messages_array.unobserve(messages),
                             self.client.on_presence_ids(self.intake.on_presence)]
        # people here when the agent arrives are joining: it came because somebody did
        self.intake.on_presence(self.client.awareness(), {})
        self._task = asyncio.create_task(self._work())
        return self

    async def close(self) -> None:
        for undo in self._unsubscribe:
            with contextlib.suppress(Exception):
                undo()
        if self.behaviours():  # what they have seen (or missed while paused) is not new when the agent is back
            self.h.store.save_seen(self.room, list(self.mirror.strokes))
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        if self._own_view:
            self.mirror.close()

    def idle(self) -> bool:
        return not self.busy and not self.intake.pending

    def people(self) -> list[dict[str, Any]]:
        """Who is in the room now (`canvas.people()`): the peer's presence, with the server's word on each connection."""
        return people_in(self.client, lambda cid: self.h.presence_of(self.room, cid))

    def behaviours(self) -> list[Behaviour]:
        return self.h.store.list(self.room)

    def _reacts_to(self, kind: str) -> bool:
        return any(b.status == "active" and kind in b.on for b in self.behaviours())

    async def _catch_up(self) -> None:
        """Strokes drawn while the agent was away (a person is often quicker than the agent's
        arrival, and a restart sends it away) reach the behaviours as one event.

        What was seen is saved as the agent leaves and used once: after a crash (or, in cluster
        mode, its node's death) there is none, and strokes drawn meanwhile fire nothing, rather
        than an older list making strokes already fired on look new."""
        seen = await self.h.store.seen(self.room)
        if seen is None:
            return
        self.h.store.forget_seen(self.room)
        if not self._reacts_to("stroke"):
            return
        for s in [s for i, s in self.mirror.strokes.items() if i not in seen]:
            self.intake.offer("stroke", now_ms(), self.actors.of_stroke(s), self.actors.depth_of(s.behaviour, s.run), s.behaviour, stroke=s.id)

    # events in (`intake`) --------------------------------------------------------------

    def tick(self, bid: str) -> None:
        """A schedule is due for behaviour `bid`."""
        b = self.h.store.get(self.room, bid)
        if b is not None and b.status == "active":
            self.intake.add(b, "every", now_ms(), None, 0)

    def press(self, b: Behaviour, widget: PressedWidget, actor: Actor, *, anyone: bool) -> None:
        """Someone pressed one of `b`'s buttons (`agent.behaviours.presses` checked who may): a "press"
        event for it, merged like any other. On a button made with `anyone` a viewer's press counts as
        its installer's (the button's visible opt-in), so the firing acts with the installer's grant;
        `event.actor` still says who pressed."""
        self.intake.add(b, "press", now_ms(), actor, 0, widget=widget, role="edit" if anyone else None)

    # firings out ---------------------------------------------------------------------

    async def _work(self) -> None:
        try:
            await self._catch_up()
        except Exception:
            log.exception("room %s: catching up with strokes drawn while the agent was away", self.room)
        while True:
            chosen, wait = self._next()
            if chosen is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self._wake.wait()
                continue
            b, p = chosen
            self.busy = True
            try:
                await self._fire(b, p)
            except Exception:
                log.exception("room %s: firing behaviour %s", self.room, b.id)
            finally:
                self.busy = False
                self.last_active = time.monotonic()

    def _next(self) -> tuple[tuple[Behaviour, Pending] | None, float | None]:
        """The first waiting behaviour its rate limit and CPU budgets let fire, else how long until one may."""
        soonest: float | None = None
        for bid in list(self.intake.pending):
            b = self.h.store.get(self.room, bid)
            if b is None or b.status != "active":
                del self.intake.pending[bid]  # paused, stopped or removed meanwhile: its events are void
                continue
            wait = self._rate.wait(bid)
            if wait == 0:
                held = self.h.cpu.check(b, self._wake.set)
                if held.why is not None:
                    self.h.metrics.cpu_paused += 1
                    self.set_status(b, "paused", held.why, say=f"Behaviour “{b.name}” paused: {held.why}. An editor can resume it in the panel.")
                    continue
                wait = held.wait
            if wait == 0:
                self._rate.take(bid)
                return (b, self.intake.pending.pop(bid)), None
            soonest = wait if soonest is None else min(soonest, wait)
        return None, soonest

    async def _fire(self, b: Behaviour, p: Pending) -> None:
        problem = self.h.grant_problem(b.installer)
        if problem is not None:
            return self.set_status(b, "paused", problem, say=f"Behaviour “{b.name}” paused: {problem}.")
        depth = p.depth + 1
        if depth > self.limits.chain:
            why = f"it kept reacting to behaviours' writes ({self.limits.chain} firings in a row with no person in between)"
            return self.set_status(b, "paused", why, say=f"Behaviour “{b.name}” paused: {why}. Resume it in the panel, or ask @agent to fix it.")
        version, seq = b.version, b.firings + 1
        fid = f"{b.id}.{seq}-{secrets.token_hex(2)}"
        event = p.event()
        grant, read_only = firing_grant("edit", p.role, anyone=b.anyone)  # the installer's link is an edit link (checked above)
        strokes = self.mirror.snapshot()
        session = CanvasSession(strokes, author=self.author, run_id=fid, grant=grant, quotas=self.h.quotas, behaviour=b.id,
                                id_prefix=fid, clock_ms=event.t, views=self.mirror.views, people=self.people,
                                widgets=self.client.doc.widgets())
        state_before, started = b.state, now_ms()
        ahead = self.h.cpu.start(b)
        try:
            out = await run_firing(self.h.sandbox, b.code, event=event_global(event, strokes), state=state_before, session=session,
                                   behaviour_id=b.id, name=b.name, seed=seed_of(fid), clock_ms=event.t, limits=self.h.run_limits,
                                   state_bytes=self.limits.state_bytes)
        except BaseException:
            self.h.cpu.fired(b, ahead, ahead)  # its cost unknown: what was charged ahead stays
            raise
        self.h.cpu.fired(b, out.record.stats.cpu_ms / 1e3, ahead)
        if self.h.store.get(self.room, b.id) is not b or b.status != "active" or b.version != version:
            return  # removed, paused or replaced while it ran: its writes are dropped
        rec = out.record
        if out.ok:
            if session.dirty:  # its writes are the behaviour's, caused by whoever caused this firing
                self.actors.note(fid, depth, Actor(id=b.id, name=b.name, kind="behaviour", role=p.role))
                session.commit(self.client.doc)
            b.state, b.failures = out.state or {}, 0
        elif grant == "write":  # a viewer cannot pause an editor's behaviour by making read-only firings fail
            b.failures += 1
        written = out.ok and session.dirty
        calls, call_counts, calls_dropped = sample(rec.calls)
        firing = Firing(id=fid, behaviour=b.id, room=self.room, version=version, event=event, state_before=state_before, seed=rec.stats.seed,
                        clock_ms=event.t, depth=depth, grant=grant, read_only=read_only, ok=out.ok, error=rec.error, result=_preview(rec.result), console=_tail(rec.console),
                        calls=calls, call_counts=call_counts, calls_dropped=calls_dropped, ms=rec.stats.wall_ms,
                        cpu_ms=rec.stats.cpu_ms, started=started,
                        writes=Writes(drawn=[s.id for s in session.added], erased=session.erased, said=[m.text for m in session.said],
                                      placed=list(session.widgets.made), removed=session.widgets.removed) if written else Writes(),
                        stopped=out.requests.stop if out.ok else None, asked=out.requests.ask if out.ok else None)
        b.firings, b.last, b.updated = seq, firing.summary(), now_ms()
        self._recent.setdefault(b.id, deque(maxlen=RECENT)).append(b.last)
        self.h.metrics.record(out.ok, time.perf_counter() - p.since)
        self.h.store.save_firing(firing)
        if not out.ok and b.failures >= self.limits.failures:
            err = rec.error.message if rec.error else "unknown error"
            why = f"it failed {b.failures} times in a row (last: {err[:300]})"
            return self.set_status(b, "failed", why, say=f"Behaviour “{b.name}” paused: {why}. Ask @agent to fix it, or resume it in the panel.")
        if out.ok and out.requests.stop:
            return self.set_status(b, "stopped", out.requests.stop)
        self.h.store.save(b)
        if out.ok and out.requests.ask:
            self._asked(b, out.requests.ask)

    def _asked(self, b: Behaviour, text: str) -> None:
        """`behaviour.ask()`: a model run with the firing's grant (a viewer-caused firing wakes a read-only run)."""
        if self._asks.wait(b.id):
            log.info("room %s: behaviour %s asked too often; not asked", self.room, b.id)
            return
        if self._ask(b, text, list(self._recent.get(b.id, ()))):
            self._asks.take(b.id)

    def remove(self, b: Behaviour) -> None:
        self.intake.pending.pop(b.id, None)
        self.h.cpu.forget(b.id)
        self.h.store.remove(b)

    def set_status(self, b: Behaviour, status: Status, reason: str | None, *, say: str | None = None) -> None:
        b.status, b.reason, b.updated = status, reason, now_ms()
        if status == "active":
            b.failures = 0
        self.intake.pending.pop(b.id, None)
        self.h.cpu.forget(b.id)
        self.h.store.save(b)
        if say:
            line = Message(author=self.author, kind="agent", text=say[:2000], behaviour=b.id)
            self.actors.vouch(line.id, Actor(id=b.id, name=b.name, kind="behaviour", role="edit"))
            self.client.doc.post(line)


def _preview(result: Any) -> Any:
    text = json.dumps(result, default=str)
    return result if len(text) <= KEPT_CHARS else text[:KEPT_CHARS] + f"… [{len(text) - KEPT_CHARS} more chars]"


def _tail(lines: list[str]) -> list[str]:
    """The last console lines, about KEPT_CHARS of them."""
    out: list[str] = []
    size = 0
    for line in reversed(lines):
        if size + len(line) > KEPT_CHARS:
            out.append("… [earlier output cut]" if out else "…" + line[-KEPT_CHARS:])
            break
        out.append(line)
        size += len(line)
    return out[::-1]
