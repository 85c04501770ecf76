"""The settings: one model per part, composed in `inhabit/settings.py`, and the flags and
`INHABIT_*` variables operators know, generated from the parts' fields (in process, no server)."""

from __future__ import annotations

import os

import pytest

from inhabit.cli import build_parser, main
from inhabit.settings import Settings, knobs

FLAGS_BEFORE_THE_PARTS = {
    "--agent-idle-s", "--agent-peers", "--agent-run-s", "--agent-tool-calls", "--awareness-bytes", "--awareness-ids", "--behaviour-chain",
    "--behaviour-failures", "--behaviour-firings-kept", "--behaviour-firings-per-minute", "--behaviour-state-bytes", "--behaviours-per-room",
    "--compact-bytes", "--compact-every", "--data", "--database", "--database-url", "--host", "--lease-s", "--log-level", "--max-doc-bytes",
    "--max-message", "--max-run-tokens", "--max-turns", "--mcp-body-bytes", "--mcp-calls-per-minute", "--mcp-idle-s", "--mcp-room-sessions",
    "--mcp-sessions", "--mcp-token-sessions", "--model", "--node-ttl-s", "--open", "--pg-pool", "--ping-interval", "--port", "--prompt-queue",
    "--prompts-per-minute", "--public-url", "--recv-bytes-per-s", "--recv-messages-per-s", "--redis", "--redis-url", "--room-prompts-per-minute",
    "--secret", "--send-queue-bytes", "--snapshot-every-s", "--stream-max-entries", "--stream-window-s", "--unload-grace", "--versions-kept",
}
"""Every flag of `inhabit serve` when the settings were one flat model (without -h/--help)."""

ENV_BEFORE_THE_PARTS = {
    "INHABIT_AGENT_IDLE_S", "INHABIT_AGENT_PEERS", "INHABIT_AGENT_RUN_S", "INHABIT_AGENT_TOOL_CALLS", "INHABIT_AWARENESS_BYTES",
    "INHABIT_AWARENESS_IDS", "INHABIT_BEHAVIOURS_PER_ROOM", "INHABIT_BEHAVIOUR_CHAIN", "INHABIT_BEHAVIOUR_FAILURES",
    "INHABIT_BEHAVIOUR_FIRINGS_KEPT", "INHABIT_BEHAVIOUR_FIRINGS_PER_MINUTE", "INHABIT_BEHAVIOUR_STATE_BYTES", "INHABIT_COMPACT_BYTES",
    "INHABIT_COMPACT_EVERY", "INHABIT_DATA", "INHABIT_DATABASE_URL", "INHABIT_HOST", "INHABIT_LEASE_S", "INHABIT_LOG_LEVEL",
    "INHABIT_MAX_DOC_BYTES", "INHABIT_MAX_MESSAGE", "INHABIT_MAX_RUN_TOKENS", "INHABIT_MAX_TURNS", "INHABIT_MCP_BODY_BYTES",
    "INHABIT_MCP_CALLS_PER_MINUTE", "INHABIT_MCP_IDLE_S", "INHABIT_MCP_ROOM_SESSIONS", "INHABIT_MCP_SESSIONS", "INHABIT_MCP_TOKEN_SESSIONS",
    "INHABIT_MODEL", "INHABIT_NODE_TTL_S", "INHABIT_OPEN", "INHABIT_PG_POOL", "INHABIT_PING_INTERVAL", "INHABIT_PORT",
    "INHABIT_PROMPTS_PER_MINUTE", "INHABIT_PROMPT_QUEUE", "INHABIT_PUBLIC_URL", "INHABIT_RECV_BYTES_PER_S", "INHABIT_RECV_MESSAGES_PER_S",
    "INHABIT_REDIS_URL", "INHABIT_ROOM_PROMPTS_PER_MINUTE", "INHABIT_SECRET", "INHABIT_SEND_QUEUE_BYTES", "INHABIT_SNAPSHOT_EVERY_S",
    "INHABIT_STREAM_MAX_ENTRIES", "INHABIT_STREAM_WINDOW_S", "INHABIT_UNLOAD_GRACE", "INHABIT_VERSIONS_KEPT",
}
"""Every variable `inhabit serve` read when the settings were one flat model."""

ADDED_SINCE = {
    "mcp_link_sessions", "allowed_origins",  # issue 18: MCP sessions per link across rooms; origins besides the server's own
    "run_record_bytes", "run_room_bytes",  # issue 19: run records bounded in bytes, each and per room
    "http_reads_per_minute", "http_read_concurrency", "http_write_timeout_s",  # issue 19: HTTP reads per link, write timeout
    "chat_lines", "chat_doc_bytes", "chat_bytes_per_minute", "chat_kept_bytes",  # issue 19: chat bounds
    "data_bytes", "room_versions_bytes", "room_runs_bytes", "room_firings_bytes", "room_ttl", "disk_sweep_s",  # issue 19: disk
    "sandbox_workers", "sandbox_link_runs", "sandbox_room_runs", "sandbox_link_cpu_s", "sandbox_room_cpu_s", "render_link_cpu_s", "render_room_cpu_s", "render_s",  # issue 19: fair shares of the sandbox and the renderer
    "behaviour_cpu_s_per_minute", "link_behaviour_cpu_s_per_minute", "behaviour_cpu_pause_s",  # issue 19: behaviours' CPU budget
    "presses_per_minute", "button_presses_per_minute",  # issue 22: button presses per link and per button
    "widget_doc_bytes",  # issue 22: a room's widgets bounded in bytes
}
"""Settings added since the settings were one flat model."""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.upper().startswith("INHABIT_"):
            monkeypatch.delenv(name)


def serve_flags() -> set[str]:
    serve = build_parser()._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    return {flag for action in serve._actions for flag in action.option_strings} - {"-h", "--help"}


def test_flags_and_variables_are_the_ones_operators_know():
    assert serve_flags() == FLAGS_BEFORE_THE_PARTS | {"--" + name.replace("_", "-") for name in ADDED_SINCE}
    assert {knob.env for knob in knobs()} == ENV_BEFORE_THE_PARTS | {"INHABIT_" + name.upper() for name in ADDED_SINCE}


def test_every_setting_has_a_unique_name_and_a_help_line():
    names = [knob.name for knob in knobs()]
    assert len(names) == len(set(names))
    assert all(knob.field.description for knob in knobs())


def test_flags_beat_variables_beat_defaults(monkeypatch):
    monkeypatch.setenv("INHABIT_MCP_IDLE_S", "5")
    monkeypatch.setenv("INHABIT_PORT", "9001")
    monkeypatch.setenv("inhabit_open", "1")  # any case, like before
    args = build_parser().parse_args(["serve", "--port", "9002", "--compact-every", "7", "--redis", "redis://r", "--database", "postgresql://d"])
    settings = Settings.from_flat(vars(args))
    assert settings.server.port == 9002  # flag over variable
    assert settings.mcp.idle_s == 5.0 and settings.server.open  # variable over default
    assert settings.server.history.compact_every == 7
    assert settings.server.cluster.redis_url == "redis://r" and settings.server.clustered
    assert settings.prompts.per_room == 30 and settings.agent.max_turns == 8  # defaults


def test_parts_read_their_flat_variables_not_nested_ones(monkeypatch):
    monkeypatch.setenv("INHABIT_ROOM_PROMPTS_PER_MINUTE", "3")
    monkeypatch.setenv("INHABIT_BEHAVIOUR_CHAIN", "2")
    monkeypatch.setenv("INHABIT_MAX_RUN_TOKENS", "1000")
    monkeypatch.setenv("INHABIT_REDIS_URL", "redis://r")
    monkeypatch.setenv("INHABIT_DATABASE_URL", "postgresql://d")
    monkeypatch.setenv("INHABIT_PROMPTS__PER_TOKEN", "1")  # pydantic-settings' nested form: not ours
    settings = Settings()
    assert (settings.prompts.per_room, settings.behaviours.chain, settings.agent.max_total_tokens) == (3, 2, 1000)
    assert settings.prompts.per_token == 6
    assert settings.server.cluster.database_url == "postgresql://d"


def test_bad_settings_name_the_flag_and_cluster_needs_both(capsys):
    assert main(["serve", "--redis", "redis://localhost"]) == 2
    err = capsys.readouterr().err
    assert "cluster mode needs both --redis and --database" in err and "Traceback" not in err
    assert main(["serve", "--max-message", "3"]) == 2
    err = capsys.readouterr().err
    assert "--max-message (INHABIT_MAX_MESSAGE)" in err and "greater than or equal to 1024" in err


def test_help_lists_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    out = capsys.readouterr().out
    assert all(flag in out for flag in FLAGS_BEFORE_THE_PARTS)
    assert "viewers" in out  # --room-prompts-per-minute counts viewers' prompts only
