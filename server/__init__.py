"""Rooms server: y-websocket rooms over pycrdt documents, persisted in SQLite."""
