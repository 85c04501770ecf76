"""Every knob of `inhabit serve`, composed from the parts that own them, read once at start-up.

Each part declares its settings next to the code that reads them (`common.settings.setting`):
the rooms server's (`server.settings.ServerSettings`, with a connection's bounds, a room's
history and the cluster), the agent's, prompts', behaviours' and MCP's (in their `agent/`
packages). This model nests them, and is the only one that knows them all, since the server
and the agent do not import each other.

A setting's name is flat and unique across the parts, so the flags and the environment stay
what operators know (`--mcp-idle-s`, `INHABIT_REDIS_URL`), not pydantic-settings' nested
`INHABIT_MCP__IDLE_S`. Sources, strongest first: command-line flags (`inhabit/cli.py` makes
one per setting and passes those given), `INHABIT_<NAME>` environment variables, then the
defaults, which are safe: loopback, auth on. Nothing else in the code reads the environment
for our settings (the `anthropic` SDK reads its own `ANTHROPIC_*` variables).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.behaviours.settings import BehaviourLimits
from agent.limits.admission import PromptLimits
from agent.mcp.settings import McpLimits
from agent.runs.settings import AgentSettings
from server.settings import ServerSettings

ENV_PREFIX = "INHABIT_"


class Settings(BaseSettings):
    """The parts, each handed whole to the code that owns it (`inhabit/app.py`)."""

    model_config = SettingsConfigDict(extra="ignore")

    server: ServerSettings = Field(default_factory=ServerSettings)
    agent: AgentSettings = Field(default_factory=AgentSettings)
    prompts: PromptLimits = Field(default_factory=PromptLimits)
    behaviours: BehaviourLimits = Field(default_factory=BehaviourLimits)
    mcp: McpLimits = Field(default_factory=McpLimits)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, FlatEnvironment(settings_cls)

    @classmethod
    def from_flat(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from flat names (`{"mcp_idle_s": 5}`, what the flags give) over the environment."""
        return cls(**nest(values))


@dataclass(frozen=True)
class Knob:
    """One setting: its flat name, where it sits in `Settings`, and its field (default, bounds, help)."""

    name: str
    path: tuple[str, ...]
    field: FieldInfo
    part: type[BaseModel]

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper()

    @property
    def flags(self) -> list[str]:
        """`--name`, after a shorter alias when the field declares one (`--redis`)."""
        long = "--" + self.name.replace("_", "-")
        short = _extra(self.field).get("flag")
        return [short, long] if isinstance(short, str) else [long]


def knobs(model: type[BaseModel] = Settings, path: tuple[str, ...] = ()) -> Iterator[Knob]:
    """Every setting of `model` and its parts, depth first in declaration order."""
    for attr, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from knobs(annotation, (*path, attr))
        elif isinstance(name := _extra(field).get("setting"), str):
            yield Knob(name, (*path, attr), field, model)


def nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """Flat names and values -> the nested dict `Settings` validates; unknown names are dropped."""
    nested: dict[str, Any] = {}
    by_name = {k.name: k for k in knobs()}
    for name, value in values.items():
        if (knob := by_name.get(name)) is not None:
            *parents, leaf = knob.path
            at = nested
            for key in parents:
                at = at.setdefault(key, {})
            at[leaf] = value
    return nested


def flag_of(loc: tuple[int | str, ...]) -> str | None:
    """The flag (and variable) a validation error's location names, if it is one setting."""
    for knob in knobs():
        if knob.path == loc:
            return f"{knob.flags[-1]} ({knob.env})"
    return None


class FlatEnvironment(PydanticBaseSettingsSource):
    """`INHABIT_<NAME>` variables (any case), placed where their setting sits in the parts."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: `__call__` reads every setting at once

    def __call__(self) -> dict[str, Any]:
        env = {key.upper(): value for key, value in os.environ.items()}
        return nest({k.name: env[k.env] for k in knobs() if k.env in env})


def _extra(field: FieldInfo) -> dict[str, Any]:
    return field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
