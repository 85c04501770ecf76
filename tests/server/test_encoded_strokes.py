"""`server.encoded.EncodedStrokes` and `server.reads.strokes_body`, in process: the streamed answer
is byte for byte `StrokesResponse` over `CanvasDoc.strokes()` through adds, rewrites, erases and
invalid entries, in pieces of at most `CHUNK` bytes; pages cover the same strokes; the box follows."""

from __future__ import annotations

import json
import random

from pycrdt import Doc

from canvas import CanvasDoc, Stroke
from canvas.geometry import BBox, bbox, union
from server.encoded import EncodedStrokes
from server.http import StrokesResponse
from server.reads import CHUNK, position_after, strokes_body


def random_stroke(i: int, rng: random.Random) -> Stroke:
    n = rng.choice([1, 2, 50, 3000, 9000])
    points = [v for _ in range(n) for v in (rng.uniform(-500, 500), rng.uniform(-500, 500), rng.random())]
    return Stroke(id=f"s{i}", points=points, t=rng.randint(0, 4), run="r1" if i % 3 else None, author=f"a{i % 2}")


def expected(doc: CanvasDoc, room: str = "r") -> bytes:
    return StrokesResponse(room=room, strokes=doc.strokes()).model_dump_json(exclude_none=True).encode()


async def test_the_answer_is_what_strokes_gave_through_every_change():
    rng = random.Random(19)
    doc = CanvasDoc(Doc())
    doc.add_strokes([random_stroke(i, rng) for i in range(20)])
    doc.strokes_map["bad"] = {"id": "bad", "points": [1]}
    doc.strokes_map["ints"] = {"id": "ints", "points": [1, 2, 1], "t": 2}
    view = EncodedStrokes(doc.doc)
    await view.build()
    assert view.encodes == 21
    pieces = list(strokes_body("r", view))
    assert b"".join(pieces) == expected(doc)
    assert all(len(p) == CHUNK for p in pieces[:-1])
    doc.add_strokes([random_stroke(i, rng) for i in range(20, 30)])
    doc.erase(["s3", "s25", "ints"])
    doc.add_strokes([Stroke(id="s4", points=[0, 0, 0.5], t=9)])  # a rewrite moves it
    doc.strokes_map["s5"] = {"id": "s5", "points": "no"}  # rewritten invalid: gone, as strokes() skips it
    assert b"".join(strokes_body("r", view)) == expected(doc)
    assert view.encodes == 21 + 10 + 1
    assert view.bbox() == union(bbox(s.points) for s in doc.strokes())
    ids, after = [], None
    while True:
        page = json.loads(b"".join(strokes_body("r", view, position_after(view, after) if after else None, 4)))
        ids += [s["id"] for s in page["strokes"]]
        if (after := page.get("next")) is None:
            break
    assert ids == [s.id for s in doc.strokes()]
    doc.erase(doc.stroke_ids())
    assert b"".join(strokes_body("r", view)) == b'{"room":"r","strokes":[]}' and view.bbox() is None
    view.close()


async def test_a_reader_sees_changes_ahead_of_it_and_skips_erased_ones():
    doc = CanvasDoc(Doc())
    doc.add_strokes([Stroke(id=f"s{i}", points=[i, i, 0.5], t=i) for i in range(5)])
    view = EncodedStrokes(doc.doc)
    await view.build()
    reading = view.after(None)
    assert next(reading)[0][1] == "s0"
    doc.erase(["s1"])
    doc.add_strokes([Stroke(id="s9", points=[9, 9, 0.5], t=9)])
    assert [pos[1] for pos, _ in reading] == ["s2", "s3", "s4", "s9"]
    assert view.bbox() == BBox(0, 0, 9, 9)
