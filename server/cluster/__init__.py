"""Cluster mode: several `inhabit serve` processes share every room, live traffic through Redis
Streams (one stream per room) and durable state in PostgreSQL. `node.ClusterNode` builds the
seams the app runs on in this mode (writer, rooms, store, token authority); the rest of the
server is the same code as on one process."""
