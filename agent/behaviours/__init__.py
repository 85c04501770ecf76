"""Behaviours: programs the agent leaves running in a room.

`model` (records), `settings` (bounds), `firing` (one sandbox run of a behaviour), `intake` (what
waits to fire), `scheduler` (when they fire), `store` + `records` (in memory, written behind to SQLite or PostgreSQL),
`installs` (a run's power to install), `routes` (HTTP), the room's strokes come from `agent.contract.room_view`.
"""
