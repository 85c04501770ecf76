"""The app `inhabit serve` runs: the rooms server with the agent and the MCP endpoint plugged in,
each handed its part of the settings."""

from __future__ import annotations

from starlette.applications import Starlette

from agent.mcp.endpoint import McpPlugin
from agent.plugin import AgentPlugin
from server.app import create_app

from .settings import Settings


def build_app(settings: Settings) -> Starlette:
    agent = AgentPlugin(settings=settings.agent, limits=settings.prompts, behaviours=settings.behaviours)
    mcp = McpPlugin(agent, limits=settings.mcp)  # records its runs in the agent's store: one /runs, one undo
    return create_app(settings.server, [agent, mcp])
