"""What one room's behaviours may cost: the behaviours' part of the settings.

Its own module, importing nothing but pydantic, so that `inhabit`'s commands can build their
flags from it without importing the sandbox (`model` does).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from common.settings import setting


class BehaviourLimits(BaseModel):
    """What one room's behaviours may cost.

    `code_chars` and `asks_per_minute` are fixed bounds, not settings."""

    per_room: int = setting(8, "behaviours one room may have (installing one more is refused)", name="behaviours_per_room", ge=1)
    firings_per_minute: int = setting(60, "firings of one behaviour per minute (more events wait, merged)",
                                      name="behaviour_firings_per_minute", ge=1)
    failures: int = setting(3, "failed firings in a row before a behaviour pauses itself", name="behaviour_failures", ge=1)
    state_bytes: int = setting(16 * 1024, "largest state (JSON) one behaviour keeps; a firing that leaves more fails and writes nothing",
                               name="behaviour_state_bytes", ge=256)
    firings_kept: int = setting(50, "firing records kept per behaviour", name="behaviour_firings_kept", ge=1)
    chain: int = setting(8, "firings in a row caused by behaviours' writes (no person in between) before the loop guard pauses "
                         "the behaviour", name="behaviour_chain", ge=1)
    cpu_s_per_minute: float = setting(6.0, "CPU seconds per minute one behaviour's firings may use (past it they wait, merged)",
                                      name="behaviour_cpu_s_per_minute", gt=0)
    link_cpu_s_per_minute: float = setting(15.0, "CPU seconds per minute the behaviours installed by one link may use together, in "
                                           "every room of the link (a '*' link's rooms share it; per node in cluster mode)",
                                           name="link_behaviour_cpu_s_per_minute", gt=0)
    cpu_pause_s: float = setting(180.0, "seconds in a row a behaviour's firings keep waiting for CPU budget before it pauses "
                                 "(with a chat line; an editor can resume it)", name="behaviour_cpu_pause_s", gt=0)
    presses_per_minute: int = setting(60, "button presses per minute one link may make, in all rooms (past it: 429 with Retry-After)",
                                      name="presses_per_minute", ge=1)
    button_presses_per_minute: int = setting(120, "presses per minute one button takes, from everyone together (past it: 429)",
                                             name="button_presses_per_minute", ge=1)
    code_chars: int = Field(default=64_000, ge=100, description="size of a behaviour's program")
    asks_per_minute: int = Field(default=2, ge=1, description="behaviour.ask() model calls per behaviour per minute")
