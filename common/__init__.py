"""What the rooms server and the agent both stand on: how a part declares its settings (and the
cluster's part), access tokens and their lookup, and the SQLite set-up. Imports nothing of ours
but itself."""
