"""The hosted agent's settings: the model it calls, what one run may cost, how long it stays.

Its own module, importing nothing but pydantic, so that `inhabit`'s commands can build their
flags from it without importing the model loop and the sandbox.
"""

from __future__ import annotations

from pydantic import BaseModel

from common.settings import setting

DEFAULT_MODEL = "claude-sonnet-5"


class AgentSettings(BaseModel):
    """The hosted agent: the model it calls, what one run may cost, how long it stays in a quiet room.

    The model loop reads the caps, the plugin `idle_s`; fields without a flag are fixed bounds."""

    model: str = setting(DEFAULT_MODEL, "Messages API model the agent uses", name="model")
    max_turns: int = setting(8, "model calls per agent run", name="max_turns", ge=1)
    max_tokens: int = 4096
    """Output tokens per model call."""
    max_total_tokens: int = setting(200_000, "input + output tokens per agent run (checked before each model call: past it the run ends)",
                                    name="max_run_tokens", ge=1)
    timeout_s: float = 120.0
    max_retries: int = 1
    max_run_s: float = setting(300.0, "wall-time bound on one whole agent run (model calls and executes); past it the run is stopped",
                               name="agent_run_s", gt=0)
    max_tool_calls: int = setting(24, "tool calls (search, execute, view) per agent run, all turns together; past it the run ends",
                                  name="agent_tool_calls", ge=1)
    sandbox_workers: int = setting(0, "threads that run agent programs (prompts' and MCP executes, behaviours), all rooms together; "
                                   "0: twice the cores, at most 8", name="sandbox_workers", ge=0)
    sandbox_link_runs: int = setting(1, "programs one link may have running at once, all rooms together (a room's hosted agent "
                                     "counts as one link of its room); more wait their turn", name="sandbox_link_runs", ge=1)
    sandbox_room_runs: int = setting(2, "programs one room may have running at once; more wait their turn (rooms take turns)",
                                     name="sandbox_room_runs", ge=1)
    sandbox_link_cpu_s: float = setting(10.0, "CPU-seconds of programs one link may run per minute, all rooms together (more: the "
                                        "execute is refused, saying when to retry)", name="sandbox_link_cpu_s", gt=0)
    sandbox_room_cpu_s: float = setting(20.0, "CPU-seconds of programs one room's links may run per minute (more: the execute is "
                                        "refused, saying when to retry)", name="sandbox_room_cpu_s", gt=0)
    idle_s: float = setting(300.0, "seconds a hosted agent stays in a room without prompts (longer while its behaviours react to "
                            "people there)", name="agent_idle_s", gt=0)
    record_bytes: int = setting(64 * 1024, "largest run record (and behaviour firing record) in bytes of JSON: calls are kept as counts "
                                "plus the first and last 20, and past this programs, texts and stroke ids are cut", name="run_record_bytes",
                                ge=16 * 1024)
    room_record_bytes: int = setting(8 << 20, "bytes of run records kept per room (the oldest finished ones go first; 200 at most by count)",
                                     name="run_room_bytes", ge=64 * 1024)
