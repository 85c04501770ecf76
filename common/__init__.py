"""What the rooms server and the agent both stand on: the one settings model, access tokens
and their lookup, and the SQLite set-up. Imports nothing of ours but itself."""
