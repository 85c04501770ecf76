"""The `search` tool's answers: the canvas API reference, ranked, and never repeated in a conversation.

Why its own module: what the model reads about the API is most of what a run costs in input
characters, and two things keep that small. A query about a function (`canvas.strokes`,
`behaviour.stop`, "strokes filter") answers with that function's docs, not with every section that
happens to mention a word of it (a name match outweighs any number of word matches in a body, and
sections far below the best match are left out). And a section the conversation has already
received comes back as one line (`## canvas.draw — shown above`): the caller (a model run, an MCP
session) keeps a `seen` set of titles across its searches. Every section is generated from the
API's one definition (`agent.contract.canvas`, `agent.contract.behaviour`), never written twice.

Why hand-ranked, not a search library: about twenty short sections whose names are the query's
words; a few scoring rules say exactly what wins, where BM25 would need a corpus it does not have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.contract.behaviour import BEHAVIOUR_GUIDE, FIRING_CAPS, FIRING_GLOBALS, MANAGE_CAPS, behaviour_declarations
from agent.contract.canvas import ALL_CAPS, Grant, capabilities
from agent.sandbox import Capability

SHOWN = " — shown above"
"""What a section already sent in this conversation comes back as, after its title."""

DECLARATIONS = "All declarations"
"""The `seen` key of the full TypeScript listing (an empty query, or no match)."""

NAME, TITLE, KEYWORD, TEXT = 10, 3, 2, 1
"""Points per query word: it names the section (`canvas.strokes`, `strokes`), it is in the title, a
keyword, the body. A name outweighs a long body's incidental matches."""

CUTOFF = 0.5
"""Sections scoring under this share of the best match are left out."""


@dataclass(frozen=True)
class Section:
    title: str
    text: str
    keywords: str
    names: frozenset[str] = frozenset()
    """Query words that name this section (a function's full and short name)."""

    def score(self, words: list[str]) -> int:
        title, keywords, text = self.title.lower(), self.keywords.split(), self.text.lower()
        total = 0
        for w in words:
            total += NAME if w in self.names else 0
            total += TITLE if w in title else 0
            total += KEYWORD if w in keywords else 0
            total += TEXT if w in text else 0
        return total


def _names(name: str) -> frozenset[str]:
    return frozenset({name.lower(), name.split(".")[-1].lower()})


def _cap_section(cap: Capability) -> Section:
    return Section(cap.name, cap.markdown(), f"{cap.name} {cap.name.split('.')[-1]} {cap.doc}".lower(), _names(cap.name))


_GUIDE = [
    Section(
        "Coordinates and stroke shape",
        "Canvas units; x right, y DOWN. A stroke: {id, points: [[x,y],...], pressure?, color, width, author, kind, run?, bbox}. "
        "Length of a stroke: sum of Math.hypot between consecutive points. A stroke is near-horizontal when its bbox is "
        "much wider than tall, near-vertical when much taller than wide.",
        "coordinates units y down axis bbox box shape geometry length horizontal vertical point",
    ),
    Section(
        "Example: summarise the room",
        "```js\nconst s = canvas.strokes();\n({count: s.length, bounds: canvas.bounds(),\n  strokes: s.map(k => ({id: k.id, kind: k.kind, n: k.points.length, bbox: k.bbox}))})\n```",
        "summary summarise overview look see read list strokes bounds example",
    ),
    Section(
        "Example: draw shapes",
        "```js\nfunction circle(cx, cy, r, n = 40) { const p = []; for (let i = 0; i <= n; i++) { const a = 2 * Math.PI * i / n; p.push([cx + r * Math.cos(a), cy + r * Math.sin(a)]); } return p; }\n"
        "const id = canvas.draw({points: circle(100, 100, 30), color: '#1e1e1e', width: 4});\n"
        "canvas.draw({points: [[0, 0], [50, 50]]}); // a line\nid\n```",
        "draw circle line shape polygon rectangle example write",
    ),
    Section(
        "Errors and limits",
        "A thrown error (or a TypeError for bad arguments) aborts the run and nothing is written. Each run has a time limit "
        "(a few seconds) and quotas on strokes and points drawn; quota errors say which. Keep results small.",
        "error errors limit limits quota timeout throw typeerror",
    ),
]


def sections(caps: tuple[Capability, ...], behaviours: bool = False) -> list[Section]:
    """The reference's sections in order (on a tie, the earlier one ranks first)."""
    out = [_cap_section(cap) for cap in caps]
    if behaviours:  # the guide before the globals: "behaviour" names both, and the guide is where to start
        out.append(Section("Behaviours: programs that keep running", BEHAVIOUR_GUIDE,
                           "behaviour behaviours on trigger triggers install replace remove stop event state every schedule game keep",
                           frozenset({"behaviour", "behaviours", "guide"})))
        for g in FIRING_GLOBALS:
            out.append(Section(f"{g.name} (in a behaviour)", g.markdown(), f"{g.name} behaviour behaviours global {g.doc}".lower(), _names(g.name)))
        out += [_cap_section(cap) for cap in FIRING_CAPS + MANAGE_CAPS]
    writes = any(c.name == "canvas.draw" for c in caps)
    return out + [g for g in _GUIDE if writes or "canvas.draw" not in g.text]


class Reference:
    """The searchable API reference for a grant (and, for runs that may install them, the
    behaviour globals and functions), generated from their one definition."""

    def __init__(self, grant: Grant, behaviours: bool = False) -> None:
        self.caps = capabilities(grant)
        self.sections = sections(self.caps, behaviours)
        from agent.sandbox import declarations

        self.declarations = declarations(list(self.caps)) + (behaviour_declarations() if behaviours else "")

    def rank(self, query: str, limit: int = 4) -> list[Section]:
        """The sections that answer `query`, best first: at most `limit`, none far below the best."""
        words = _words(query)
        scored = sorted((-s.score(words), i, s) for i, s in enumerate(self.sections))
        best = -scored[0][0] if scored else 0
        return [s for neg, _, s in scored[:limit] if best and -neg >= CUTOFF * best]

    def search(self, query: str, limit: int = 4, seen: set[str] | None = None) -> str:
        """The answer to a `search` call. `seen`: the titles this conversation has already received
        (updated here); those come back as one line each. None: a one-off search, everything in full."""
        if not _words(query):
            return self._listing(seen) + "\nSearch a name (e.g. 'draw') for docs and examples."
        found = self.rank(query, limit)
        if not found:
            missing = "" if len(self.caps) == len(ALL_CAPS) else " (this run is read-only: draw/erase/say are not granted)"
            return f"No match for {query!r}{missing}. " + self._listing(seen)
        out = []
        for s in found:
            out.append(f"## {s.title}{SHOWN}" if seen is not None and s.title in seen else f"## {s.title}\n{s.text}")
            if seen is not None:
                seen.add(s.title)
        return "\n\n".join(out)

    def _listing(self, seen: set[str] | None) -> str:
        if seen is not None and DECLARATIONS in seen:
            return f"{DECLARATIONS}{SHOWN}."
        if seen is not None:
            seen.add(DECLARATIONS)
        return f"{DECLARATIONS}:\n```ts\n" + self.declarations + "\n```"


def _words(query: str) -> list[str]:
    return [w.strip(".") for w in re.findall(r"[a-z0-9_.]+", (query or "").lower()) if len(w.strip(".")) > 1]
