"""The box type the model's API speaks in (`{x0, y0, x1, y1}`), shared by the stroke and widget
parts of the canvas API (`agent.contract.canvas`, `agent.contract.widgets`), so JS sees one `Box`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Box(BaseModel):
    """Axis-aligned box in canvas units (y grows downwards)."""

    model_config = ConfigDict(extra="forbid")
    x0: float
    y0: float
    x1: float
    y1: float
