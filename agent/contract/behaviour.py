"""THE JavaScript a behaviour's program sees, defined once: the globals `event`, `state` and
`behaviour` with `behaviour.stop/ask`, and `behaviours.list/remove` for the model's own runs.

Why one definition, as `agent/contract/canvas.py` is for `canvas`: the TypeScript declarations and
docs the model searches (`codemode.Reference`), `execute`'s extra inputs and the handlers'
argument validation all come from the objects below. What a behaviour and a firing ARE (the
records, triggers, limits) is `agent/behaviours/model.py`; what runs a firing is `agent/behaviours/firing.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, Field, TypeAdapter

from agent.contract.canvas import NoParams
from agent.contract.events import EVERY_MIN_S, REHEARSAL_EVENTS, EventView, MadeUpEvent, Status, Trigger
from agent.contract.people import WHO_IS_WHO
from agent.sandbox import Binding, Capability, RunRecord, Share, declarations
from agent.sandbox.capability import ts_type


@dataclass(frozen=True)
class Global:
    """A JS global holding data (the capability functions are `Capability` objects)."""

    name: str
    type: Any
    doc: str
    mutable: bool = False
    namespace: bool = False
    """Declared as a namespace of constants (its functions are capabilities in the same namespace)."""

    def declaration(self) -> str:
        schema = TypeAdapter(self.type).json_schema()
        defs = schema.get("$defs", {})
        doc = "\n".join(f" * {ln}".rstrip() for ln in self.doc.strip().splitlines())
        if not self.namespace:
            return f"/**\n{doc}\n */\ndeclare {'let' if self.mutable else 'const'} {self.name}: {ts_type(schema, defs)};\n"
        props = [f"  /** {p.get('description', '')} */\n  const {k}: {ts_type(p, defs)};" for k, p in schema.get("properties", {}).items()]
        return f"/**\n{doc}\n */\ndeclare namespace {self.name} {{\n" + "\n".join(props) + "\n}\n"

    def markdown(self) -> str:
        return f"### `{self.name}`\n\n{self.doc.strip()}\n\n```ts\n{self.declaration()}```\n"


class BehaviourIdentity(BaseModel):
    id: str = Field(description="this behaviour's id")
    name: str = Field(description="its name (installing again with this name replaces it)")


class StopParams(BaseModel):
    reason: str | None = Field(default=None, description="shown in the behaviour's card")


class AskParams(BaseModel):
    text: str = Field(description="what to ask the model, e.g. what is unclear")


class RemoveParams(BaseModel):
    id: str = Field(description="the behaviour's id or name")


class BehaviourInfo(BaseModel):
    id: str
    name: str
    on: list[Trigger]
    status: Status
    firings: int


EVENT = Global("event", EventView,
               "What made this firing happen. Strokes and chat lines this behaviour wrote itself never fire it. "
               "Events that arrive while it runs are merged into the next firing. `event.actor` is who caused it, as the "
               "server knows them; `event.actor.role === 'view'`: a viewer did, and this firing is read-only. `event.by` is a display name. "
               "canvas.people() says who is in the room when the firing runs.")
STATE = Global("state", dict[str, Any],
               "This behaviour's memory: a JSON object that persists between firings (and restarts). Mutate it "
               "(or assign a new object); it is saved when the firing succeeds. Starts as {} (a replacement keeps it).",
               mutable=True)
IDENTITY = Global("behaviour", BehaviourIdentity, "This behaviour: its `id` and `name` (and the functions below).", namespace=True)
STOP_CAP = Capability(name="behaviour.stop", params=StopParams, returns=None,
                      doc="Stop this behaviour after this firing (its writes still land): it fires no more.",
                      example="if (winner) { canvas.say(`${winner} wins!`); behaviour.stop('game over'); }")
ASK_CAP = Capability(name="behaviour.ask", params=AskParams, returns=None,
                     doc="Wake the model with this question, the behaviour's code, state and recent firings, so it "
                         "can judge what the code cannot (and replace or remove the behaviour). Rate-limited; use rarely.",
                     example="behaviour.ask('Someone drew a shape I do not recognise; should I treat it as a move?');")
LIST_CAP = Capability(name="behaviours.list", params=NoParams, returns=list[BehaviourInfo],
                      doc="The room's behaviours (read-only view).", example="behaviours.list().filter(b => b.status === 'active')")
REMOVE_CAP = Capability(name="behaviours.remove", params=RemoveParams, returns=bool,
                        doc="Remove a behaviour (by id or name) when this program succeeds; true if it exists.",
                        example="behaviours.remove('echo')")

FIRING_GLOBALS = (EVENT, STATE, IDENTITY)
FIRING_CAPS = (STOP_CAP, ASK_CAP)
MANAGE_CAPS = (LIST_CAP, REMOVE_CAP)

EXECUTE_PROPS: dict[str, Any] = {
    "on": {"type": "array", "items": {"anyOf": [{"type": "string", "enum": ["stroke", "erase", "message", "join", "leave", "press"]},
                                                 {"type": "object", "properties": {"every": {"type": "number", "minimum": EVERY_MIN_S}},
                                                  "required": ["every"]}]},
           "description": "install the program as a behaviour of the room: it runs now (event.type 'install') and then on "
                          "each of these triggers, without you (search 'behaviour')"},
    "name": {"type": "string", "description": "the behaviour's name; executing again with the same name replaces it"},
    "anyone": {"type": "boolean", "description": "let a viewer's event (their prompt echoed in the chat, their joining) fire it with "
                                                "write; default false: such a firing is read-only. Only when the user asks for it"},
    "rehearse": {"type": "array", "maxItems": REHEARSAL_EVENTS, "items": {"type": "object", "properties": {
                     "type": {"type": "string", "enum": ["stroke", "erase", "message", "join", "leave", "every"]}}, "required": ["type"]},
                 "description": "made-up events to rehearse the behaviour on, e.g. [{type: 'stroke', strokes: [{points: [[0,0],[9,9]]}], "
                                "by: 'sam'}]: it runs on install and then on each, against a copy of the room, and the result shows every "
                                "firing (writes, error with line, state). Nothing is written or installed: execute again without rehearse "
                                "to install (search 'rehearse')"},
}
"""`execute`'s extra inputs, offered only to runs that may install behaviours."""

BEHAVIOUR_GUIDE = """\
A behaviour is a program that keeps running in the room after your turn: the server runs it on \
every matching event, with no model call, for as long as it is active. Install one with \
execute({code, on, name}): `on` lists triggers ("stroke": strokes added by anyone but this \
behaviour; "erase"; "message": chat lines; "join"/"leave": people arriving/leaving; "press": \
someone pressed one of this behaviour's buttons (event.widget, event.by); {"every": seconds}, at \
least 5). The program runs once at once with event.type "install" (so you \
see it work on the room as it is) and, if that succeeds, it is installed; the result says its id.
In every firing the program sees `event`, `state` (JSON that persists: keep game state there), \
`canvas` (with your grant) and `behaviour` (id, name, stop(reason), ask(text)). Each firing is \
one transaction: if it throws nothing is written; after 3 failures in a row it pauses. Time is \
the event's time (Date.now() is frozen) and Math.random is seeded per firing. A behaviour never \
fires on its own strokes; behaviours that keep triggering each other are paused.
Authority follows the actor: a firing acts with the weaker of your installer's grant and the grant of whoever caused it (event.actor: {id, name, kind, role}). When a viewer caused it (their prompt echoed in the chat, their joining; merged events count as a viewer's if any was), canvas.draw/erase/say are unavailable and behaviour.ask() wakes a read-only run that cannot install; the same holds for any trigger. Check event.actor.role === 'view' to skip writing. Only if the user wants viewers to drive it, install with anyone: true (shown on its card).
Buttons: canvas.button({x, y, label}) works only in a behaviour's program (its install run or a \
firing) and belongs to that behaviour; with "press" in `on`, a press fires it with event.type \
'press'. Edit links may press; view links only if made with anyone: true (the firing then has \
your grant). Keep the ids of your texts and buttons in `state` and change them with canvas.update.
Replace a behaviour: execute again with the same `name` (new code and triggers; its state and \
id stay). Remove one: behaviours.remove(idOrName) in a program. People can pause, resume and \
remove behaviours in the chat panel.
```js
// on: ["stroke"], name: "echo"
for (const s of event.strokes ?? []) {
  const b = s.bbox; canvas.draw({points: [[b.x0, b.y1 + 10], [b.x1, b.y1 + 10]], color: '#d12d2d'});
}
state.seen = (state.seen ?? 0) + (event.strokes?.length ?? 0);
```
Rehearse before it goes live: add `rehearse`, made-up events of the real shapes ({type: "stroke", \
strokes: [{points, color?, width?, author?, kind?}], by?}, {type: "erase", erased: [ids]}, \
{type: "message", message: {text, author?}}, {type: "join"|"leave", by?}, {type: "every"}; \
role: "view" acts as a viewer). The program runs on install, then on each event in order, against \
a scratch copy of the room (made-up strokes added, earlier writes applied, `state` carried over). \
The result lists each firing: the event, ok or the error with line and column, what it would \
draw (ids, bboxes), erase and say, and the state after. Nothing is written or installed: execute \
again without `rehearse` to install.
```js
// execute({name: "dots", on: ["stroke"], code: <below>, rehearse: [
//   {type: "stroke", by: "sam", strokes: [{points: [[100, 100]]}]},
//   {type: "stroke", by: "sam", strokes: [{points: [[200, 120]]}]}]})  -> 3 firings; the last draws a line
for (const d of (event.strokes ?? []).filter(s => s.points.length <= 2)) {
  if (state.last) canvas.draw({points: [state.last, d.points[0]], color: '#2d6cd1'});
  state.last = d.points[0];
}
```
Who is here: canvas.people() (name, kind, role, cursor). """ + WHO_IS_WHO + "\n"


def behaviour_declarations() -> str:
    """TypeScript for the firing globals and the behaviour functions."""
    return "".join(g.declaration() for g in FIRING_GLOBALS) + declarations(FIRING_CAPS + MANAGE_CAPS)


# ---- what the model loop is handed when its run may install behaviours -----------------------------

NO_INSTALLER = ("this prompt came from a chat line, and the agent cannot tell whose link wrote it, so it cannot install "
                "behaviours (they act with their installer's grant); ask from the page's chat box or POST /prompts with an edit link")


class Installs(Protocol):
    """A run's install capability (`agent/behaviours/scheduler.py` makes them; only for edit grants with a
    known installer, so a viewer's run never holds one)."""

    @property
    def can_install(self) -> bool:
        """Whether `install` may be used (else only `manage`)."""
        ...

    async def install(self, code: str, on: list[Trigger], name: str, *, run_id: str, anyone: bool = False) -> tuple[dict[str, Any], RunRecord]:
        """Run `code` once as an install firing; if it succeeds, install (or replace) it. `anyone`:
        a viewer's event may fire it with write (else such firings are read-only)."""
        ...

    async def rehearse(self, code: str, on: list[Trigger], name: str, events: list[MadeUpEvent], *, share: Share,
                       anyone: bool = False) -> dict[str, Any]:
        """Run `code` on its install event and then on each made-up event against a scratch copy
        of the room, in `share`'s turn of the sandbox; nothing is written or installed. Returns
        the tool result (`agent.behaviours.rehearsal.rehearse`)."""
        ...

    def manage(self) -> tuple[list[Binding], Callable[[], list[str]]]:
        """`behaviours.*` bindings for one execute, and a callable applying its removals
        (returns the removed ids) once the program has succeeded."""
        ...
