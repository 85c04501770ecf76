"""agent/contract/render.py's bounds, in process: what `view` promises about size holds for any room."""

from __future__ import annotations

import io
import random
import time

from PIL import Image

from agent.contract.render import EMPTY_BOX, MAX_PNG_BYTES, MAX_PX, MIN_SIDE, check_box, render
from canvas import BBox, Stroke, Widget
from canvas.schema import MAX_WIDGET_TEXT, MAX_WIDGETS


def test_an_empty_room_and_a_tiny_box() -> None:
    empty = render([])
    assert empty.box == EMPTY_BOX and (empty.width, empty.height) == (512, 384)
    dot = Stroke(id="dot", points=[5, 5, 0.5, 5, 5, 0.5], color="#2f9e44", width=2)
    tiny = render([dot], BBox(4, 4, 6, 6), 400)  # a 2-unit box is grown to MIN_SIDE about its centre
    assert tiny.box == BBox(5 - MIN_SIDE / 2, 5 - MIN_SIDE / 2, 5 + MIN_SIDE / 2, 5 + MIN_SIDE / 2)
    img = Image.open(io.BytesIO(tiny.png)).convert("RGB")
    assert img.getpixel((200, 200)) == (0x2F, 0x9E, 0x44)  # the dot, drawn as a round cap, at the centre
    assert check_box(BBox(0, 0, 0, 10)) and check_box(BBox(0, 0, 2e6, 10)) and check_box(BBox(0, 0, 1, 1)) is None


def test_a_busy_room_is_drawn_smaller_within_the_byte_bound() -> None:
    """Ink past INK_BUDGET shrinks the picture (so its cost stays bounded); a calm room gets the size asked for."""
    rnd = random.Random(3)
    noise = [Stroke(id=f"n{i}", points=[c for _ in range(400) for c in (rnd.uniform(0, 3000), rnd.uniform(0, 3000), 0.5)],
                    color=f"#{rnd.randrange(1 << 24):06x}", width=rnd.uniform(10, 60)) for i in range(200)]
    view = render(noise, None, MAX_PX)
    assert max(view.width, view.height) < MAX_PX and len(view.png) <= MAX_PNG_BYTES and view.strokes == 200
    calm = render([Stroke(id="c", points=[0, 0, 0.5, 3000, 3000, 0.5], width=4)], None, MAX_PX)
    assert max(calm.width, calm.height) == MAX_PX


def _ink(img: Image.Image, color: tuple[int, int, int]) -> set[tuple[int, int]]:
    w, h = img.size
    return {(x, y) for y in range(h) for x in range(w) if img.getpixel((x, y)) == color}


def test_a_stroke_costs_one_point_per_pixel_of_travel_and_lands_where_it_is() -> None:
    """A 10,000-point stroke across 1,000 canvas units is drawn through ~one point per pixel, on its path."""
    zigzag = [c for i in range(10_000) for c in (i / 10, 300 + (i % 2) * 0.4, 0.5)]  # (0,300) -> (1000,300), jittering
    line = Stroke(id="z", points=zigzag, color="#2f9e44", width=4)
    far = Stroke(id="f", points=[500, 600, 0.5, 500, 700, 0.5], color="#1971c2", width=4)
    view = render([line, far], BBox(0, 0, 1000, 1000), 500)
    assert view.strokes == 2 and view.note is None
    assert view.points <= 2 * 500 + 4, view.points  # was 10,002 points: now about one per output pixel
    img = Image.open(io.BytesIO(view.png)).convert("RGB")
    green, blue = _ink(img, (0x2F, 0x9E, 0x44)), _ink(img, (0x19, 0x71, 0xC2))
    assert {x for x, y in green} >= set(range(2, 498)) and all(148 <= y <= 152 for x, y in green), sorted(green)[:5]
    assert blue and all(248 <= x <= 252 and 298 <= y <= 352 for x, y in blue)


def test_a_picture_keeps_to_its_point_budget_and_its_time_limit() -> None:
    rnd = random.Random(5)
    walks = []
    for i in range(20):
        x, y, pts = rnd.uniform(0, 2000), rnd.uniform(0, 2000), []
        for _ in range(5_000):
            x, y = x + rnd.uniform(-4, 4), y + rnd.uniform(-4, 4)
            pts += (x, y, 0.5)
        walks.append(Stroke(id=f"w{i}", points=pts, color="#e8590c", width=8))
    t = time.perf_counter()
    thin = render(walks, None, MAX_PX, points=2_000)
    assert thin.strokes == 20 and thin.points <= 2_000 + 2 * 20, thin.points  # thinned evenly: every n-th point, ends kept
    assert time.perf_counter() - t < 2.0
    img = Image.open(io.BytesIO(thin.png)).convert("RGB")
    for w in walks:  # each walk still shows where it starts
        x, y = ((w.points[0] - thin.box.x0) / thin.units_per_px, (w.points[1] - thin.box.y0) / thin.units_per_px)
        near = [img.getpixel((min(thin.width - 1, max(0, round(x) + dx)), min(thin.height - 1, max(0, round(y) + dy))))
                for dx in (-2, -1, 0, 1, 2) for dy in (-2, -1, 0, 1, 2)]
        assert any(r > 200 and g < 150 and b < 100 for r, g, b in near), near  # orange, blended at most with the background
    late = render(walks, None, 256, deadline_s=0)  # past its time limit: what was drawn (nothing here), and a note
    assert late.strokes == 0 and late.note is not None and "time limit" in late.note and late.png


def test_texts_and_buttons_are_drawn_where_they_are_over_the_strokes() -> None:
    score = Widget(id="score", type="text", x=100, y=100, text="X 0 – O 0\nsecond line", size=30, color="#1e1e1e")
    button = Widget(id="go", type="button", x=100, y=300, text="New game", size=30, color="#1971c2")
    under = Stroke(id="under", points=[0, 400, 0.5, 500, 400, 0.5], color="#2f9e44", width=8)
    view = render([under], BBox(0, 0, 500, 500), 500, widgets=[score, button])
    assert (view.strokes, view.widgets, view.note) == (1, 2, None)
    img = Image.open(io.BytesIO(view.png)).convert("RGB")
    inked = lambda x0, y0, x1, y1: sum(max(img.getpixel((x, y))) < 140 for y in range(y0, y1) for x in range(x0, x1))  # noqa: E731
    assert inked(100, 100, 260, 140) > 150 and inked(100, 140, 300, 180) > 150  # both lines of the text, in its box
    assert inked(0, 0, 95, 500) == 0 and inked(100, 185, 500, 295) == 0  # and nowhere else
    blue = _ink(img, (0x19, 0x71, 0xC2))
    assert blue and all(98 <= x <= 300 and 298 <= y <= 360 for x, y in blue)  # the button: outline and label in its colour
    assert img.getpixel((105, 320))[0] > 240  # a button is filled (white), not see-through


def test_text_is_bounded_in_time_and_too_small_text_is_a_bar() -> None:
    """A room's worth of the longest texts at the largest size is laid out only where it shows."""
    walls = [Widget(id=f"w{i}", type="text", x=-5e5, y=i * 1000.0, text="W" * MAX_WIDGET_TEXT, size=1000) for i in range(MAX_WIDGETS)]
    view = render([], BBox(0, 0, 2000, 2000), MAX_PX, widgets=walls)
    assert view.widgets == 3 and view.note is None  # the three that touch the box, drawn within the time limit
    tiny = render([], BBox(0, 0, 10_000, 10_000), 200, widgets=[Widget(id="t", type="text", x=100, y=100, text="small print", size=10)])
    img = Image.open(io.BytesIO(tiny.png)).convert("RGB")
    assert tiny.widgets == 1 and any(img.getpixel((x, y)) != (0xFB, 0xFB, 0xFC) for x in range(0, 6) for y in range(0, 6))
