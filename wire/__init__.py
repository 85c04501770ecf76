"""What every peer speaks: the y-websocket protocol (message types, close codes) and the
headless Python client. Used by the server, the agent and tests alike."""
