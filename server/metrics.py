"""Counters for /metrics in the Prometheus text format.

Plain integer attributes bumped on the hot path (no locks, no labels per message): the event
loop is single-threaded, and a metrics library would cost more than the work it measures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rooms import RoomManager


class Metrics:
    __slots__ = ("messages_in", "messages_out", "bytes_in", "bytes_out", "connections_total",
                 "rejected_total", "slow_closed_total", "bad_input_total", "rooms_loaded_total",
                 "rooms_unloaded_total")

    def __init__(self) -> None:
        for name in self.__slots__:
            setattr(self, name, 0)

    def render(self, rooms: RoomManager) -> str:
        writer = rooms.writer
        lines: list[str] = []

        def emit(name: str, kind: str, value: float, help_: str) -> None:
            lines.append(f"# HELP inhabit_{name} {help_}")
            lines.append(f"# TYPE inhabit_{name} {kind}")
            lines.append(f"inhabit_{name} {value}")

        emit("rooms", "gauge", len(rooms.rooms), "Rooms loaded in memory.")
        emit("connections", "gauge", sum(len(r.conns) for r in rooms.rooms.values()), "Open websocket connections.")
        emit("messages_in_total", "counter", self.messages_in, "Websocket messages received.")
        emit("messages_out_total", "counter", self.messages_out, "Websocket messages queued for sending.")
        emit("bytes_in_total", "counter", self.bytes_in, "Websocket bytes received.")
        emit("bytes_out_total", "counter", self.bytes_out, "Websocket bytes queued for sending.")
        emit("connections_total", "counter", self.connections_total, "Websocket connections accepted.")
        emit("rejected_total", "counter", self.rejected_total, "Websocket connections refused (token, room name).")
        emit("slow_closed_total", "counter", self.slow_closed_total, "Connections closed because their send queue overflowed.")
        emit("bad_input_total", "counter", self.bad_input_total, "Connections closed for protocol violations.")
        emit("rooms_loaded_total", "counter", self.rooms_loaded_total, "Rooms loaded from the store.")
        emit("rooms_unloaded_total", "counter", self.rooms_unloaded_total, "Rooms unloaded after their grace period.")
        emit("persistence_lag_seconds", "gauge", round(writer.lag, 6), "Age of the oldest update not yet committed.")
        emit("persistence_pending", "gauge", writer.pending, "Updates and snapshots waiting for the writer.")
        emit("persistence_last_flush_seconds", "gauge", round(writer.last_flush_s, 6), "Duration of the last commit.")
        emit("persistence_rows_written_total", "counter", writer.rows_written, "Update rows committed.")
        emit("persistence_errors_total", "counter", writer.errors, "Failed commits (retried).")
        return "\n".join(lines) + "\n"
