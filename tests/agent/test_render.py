"""agent/contract/render.py's bounds, in process: what `view` promises about size holds for any room."""

from __future__ import annotations

import io
import random

from PIL import Image

from agent.contract.render import EMPTY_BOX, MAX_PNG_BYTES, MAX_PX, MIN_SIDE, check_box, render
from canvas import BBox, Stroke


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
