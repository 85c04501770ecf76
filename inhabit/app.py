"""The app `inhabit serve` runs: the rooms server with the agent plugged in."""

from __future__ import annotations

from starlette.applications import Starlette

from agent.loop import ModelSettings
from agent.plugin import AgentPlugin
from common.settings import Settings
from server.app import create_app


def model_settings(settings: Settings) -> ModelSettings:
    """The agent's per-run caps, from the one settings model."""
    return ModelSettings(model=settings.model, max_turns=settings.max_turns, max_total_tokens=settings.max_run_tokens)


def build_app(settings: Settings) -> Starlette:
    agent = AgentPlugin(model=model_settings(settings), idle_s=settings.agent_idle_s)
    return create_app(settings, [agent])
