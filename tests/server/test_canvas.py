"""The stroke schema, the typed document and the geometry helpers."""

import pytest
from pycrdt import Doc
from pydantic import ValidationError

from canvas import BBox, CanvasDoc, Message, Stroke, bbox, hit, length


def stroke(id: str, *xy: float, **kw) -> Stroke:
    pts: list[float] = []
    for i in range(0, len(xy), 2):
        pts += [xy[i], xy[i + 1], 0.5]
    return Stroke(id=id, points=pts, **kw)


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "a", "points": [1, 2]},  # not triplets
        {"id": "a", "points": []},
        {"id": "a", "points": [1, 2, 1.5]},  # pressure out of range
        {"id": "a", "points": [float("nan"), 2, 0.5]},
        {"id": "a b", "points": [1, 2, 0.5]},  # id charset
        {"id": "a", "points": [1, 2, 0.5], "color": "red"},
        {"id": "a", "points": [1, 2, 0.5], "width": 0},
        {"id": "a", "points": [1, 2, 0.5], "kind": "robot"},
    ],
)
def test_invalid_strokes_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Stroke.model_validate(bad)


def test_stroke_roundtrip_through_a_yjs_update() -> None:
    a = CanvasDoc()
    s = stroke("s1", 0, 0, 10, 5, color="#FF0000", author="ada", kind="agent", run="r1")
    a.add_strokes([s])
    a.post(Message(author="ada", text="hello"))
    b = CanvasDoc(Doc())
    b.doc.apply_update(a.doc.get_update())
    assert b.strokes() == [s]
    assert b.stroke("s1") is not None and b.stroke("s1").color == "#ff0000"
    assert [m.text for m in b.messages()] == ["hello"]
    assert b.strokes_map["s1"]["run"] == "r1"


def test_invalid_entries_from_other_peers_are_skipped_not_raised() -> None:
    d = CanvasDoc()
    d.strokes_map["junk"] = {"id": "junk", "points": "nope"}
    d.strokes_map["num"] = 42
    d.add_strokes([stroke("ok", 1, 1)])
    assert [s.id for s in d.strokes()] == ["ok"]


def test_apply_is_one_transaction() -> None:
    d = CanvasDoc()
    d.add_strokes([stroke("old", 0, 0)])
    seen: list[object] = []
    d.doc.observe(lambda event: seen.append(event))
    d.apply(adds=[stroke("n1", 1, 1), stroke("n2", 2, 2)], erases=["old"], messages=[Message(author="bot", kind="agent", text="done")])
    assert len(seen) == 1
    assert sorted(d.stroke_ids()) == ["n1", "n2"]
    assert d.erase(["missing"]) == 0


def test_geometry() -> None:
    pts = [0, 0, 0.5, 3, 4, 0.5, 3, 10, 0.5]
    assert bbox(pts) == BBox(0, 0, 3, 10)
    assert length(pts) == pytest.approx(11.0)
    assert bbox([1, 2, 5, -1], stride=2) == BBox(1, -1, 5, 2)
    box = BBox(2, 3, 4, 5)
    assert hit(box, pts) and not hit(BBox(10, 10, 20, 20), pts)
    assert box.intersects(BBox(4, 5, 9, 9)) and not box.intersects(BBox(4.1, 0, 9, 9))
    assert BBox(0, 0, 10, 10).contains(box) and not box.contains(BBox(0, 0, 10, 10))
    assert box.center == (3, 4) and box.width == 2 and box.height == 2
    with pytest.raises(ValueError):
        bbox([])
