"""`common.lapses.Lapses` on its own: only holders of a lapsed link are told, once, with why;
a link already lapsed when watched is told at the next look; unwatching stops it."""

from __future__ import annotations

import time

from common.access import RevocationList
from common.lapses import EXPIRED, REVOKED, Lapses


def test_holders_are_told_once_why_their_link_lapsed(tmp_path) -> None:
    revoked = RevocationList(tmp_path / "revoked.txt")
    lapses = Lapses(revoked)
    told: list[tuple[str, str]] = []
    lapses.watch("aaaaaaaaaaaa", None, lambda why: told.append(("a1", why)))
    lapses.watch("aaaaaaaaaaaa", None, lambda why: told.append(("a2", why)))
    stop_b = lapses.watch("bbbbbbbbbbbb", None, lambda why: told.append(("b", why)))
    lapses.watch("cccccccccccc", time.time() - 1, lambda why: told.append(("c", why)))  # expired already
    lapses.watch("dddddddddddd", time.time() + 3600, lambda why: told.append(("d", why)))
    lapses.look()
    assert told == [("c", EXPIRED)]
    revoked.add("aaaaaaaaaaaa")
    revoked.add("bbbbbbbbbbbb")
    stop_b()  # the connection ended before the look: not told
    lapses.look()
    assert sorted(told) == [("a1", REVOKED), ("a2", REVOKED), ("c", EXPIRED)]
    lapses.look()
    assert len(told) == 3 and len(lapses) == 1  # told once; only the unexpired link is still watched
    lapses.watch("aaaaaaaaaaaa", None, lambda why: told.append(("late", why)))  # revoked before it was watched
    lapses.look()
    assert told[-1] == ("late", REVOKED)
