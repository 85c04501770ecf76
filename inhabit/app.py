"""The app `inhabit serve` runs: the rooms server with the agent and the MCP endpoint plugged in."""

from __future__ import annotations

from starlette.applications import Starlette

from agent.behaviours.model import BehaviourLimits
from agent.limits.admission import PromptLimits
from agent.mcp.endpoint import McpLimits, McpPlugin
from agent.plugin import AgentPlugin
from agent.runs.loop import ModelSettings
from common.settings import Settings
from server.app import create_app


def model_settings(settings: Settings) -> ModelSettings:
    """The agent's per-run caps, from the one settings model."""
    return ModelSettings(model=settings.model, max_turns=settings.max_turns, max_total_tokens=settings.max_run_tokens,
                         max_run_s=settings.agent_run_s, max_tool_calls=settings.agent_tool_calls)


def prompt_limits(settings: Settings) -> PromptLimits:
    """The agent's bounds against prompt floods, from the one settings model."""
    return PromptLimits(per_token=settings.prompts_per_minute, per_room=settings.room_prompts_per_minute,
                        queue=settings.prompt_queue, peers=settings.agent_peers)


def behaviour_limits(settings: Settings) -> BehaviourLimits:
    """What one room's behaviours may cost, from the one settings model."""
    return BehaviourLimits(per_room=settings.behaviours_per_room, firings_per_minute=settings.behaviour_firings_per_minute,
                           failures=settings.behaviour_failures, state_bytes=settings.behaviour_state_bytes,
                           firings_kept=settings.behaviour_firings_kept, chain=settings.behaviour_chain)


def mcp_limits(settings: Settings) -> McpLimits:
    """What MCP clients may hold and do, from the one settings model."""
    return McpLimits(sessions=settings.mcp_sessions, room_sessions=settings.mcp_room_sessions, token_sessions=settings.mcp_token_sessions,
                     idle_s=settings.mcp_idle_s, calls_per_minute=settings.mcp_calls_per_minute, body_bytes=settings.mcp_body_bytes)


def build_app(settings: Settings) -> Starlette:
    agent = AgentPlugin(model=model_settings(settings), idle_s=settings.agent_idle_s, limits=prompt_limits(settings),
                        behaviours=behaviour_limits(settings))
    mcp = McpPlugin(agent, limits=mcp_limits(settings))  # records its runs in the agent's store: one /runs, one undo
    return create_app(settings, [agent, mcp])
