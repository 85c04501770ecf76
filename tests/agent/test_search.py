"""`search` ranks a function's docs first and, within one conversation, sends a section once.

Unit checks of `agent.contract.reference` (no server): the model loop and MCP sessions each keep
the `seen` set; tests/agent/test_tasks.py checks both end to end."""

from __future__ import annotations

import pytest

from agent.contract.reference import DECLARATIONS, SHOWN, Reference


def titles(answer: str) -> list[str]:
    return [line[3:] for line in answer.splitlines() if line.startswith("## ")]


@pytest.mark.parametrize(("query", "first"), [
    ("canvas.strokes", "canvas.strokes"),
    ("strokes filter", "canvas.strokes"),
    ("behaviour.stop", "behaviour.stop"),
    ("stop", "behaviour.stop"),
    ("draw circle", "canvas.draw"),
    ("state", "state (in a behaviour)"),
    ("behaviour", "Behaviours: programs that keep running"),
])
def test_a_query_about_a_function_answers_with_its_docs_first(query: str, first: str) -> None:
    found = titles(Reference("write", behaviours=True).search(query))
    assert found[0] == first, found
    if first != "Behaviours: programs that keep running":
        assert "Behaviours: programs that keep running" not in found  # the long guide is not dragged in by a word


def test_a_section_already_sent_in_the_conversation_comes_back_as_one_line() -> None:
    ref, seen = Reference("write", behaviours=True), set[str]()
    first = ref.search("behaviour", seen=seen)
    assert "A behaviour is a program" in first
    again = ref.search("behaviours", seen=seen)
    assert again.splitlines()[0] == f"## Behaviours: programs that keep running{SHOWN}" and "A behaviour is a program" not in again
    mixed = ref.search("event stroke", seen=seen)  # new sections in full, old ones as a line
    assert "## event (in a behaviour)\n" in mixed
    everything = ref.search("", seen=seen)
    assert ref.declarations in everything and DECLARATIONS in seen
    assert ref.search("", seen=seen).startswith(f"{DECLARATIONS}{SHOWN}")
    assert ref.declarations not in ref.search("zzqx", seen=seen)
    # another conversation (or a one-off search) gets everything in full
    assert "A behaviour is a program" in ref.search("behaviour", seen=set()) and "A behaviour is a program" in ref.search("behaviour")


def test_repeated_searches_cost_a_fraction() -> None:
    ref, seen = Reference("write", behaviours=True), set[str]()
    queries = ["behaviour", "behaviour event stroke", "behaviour state previous"]
    once = sum(len(ref.search(q)) for q in queries)
    conversation = sum(len(ref.search(q, seen=seen)) for q in queries)
    assert conversation < 0.7 * once, (conversation, once)
