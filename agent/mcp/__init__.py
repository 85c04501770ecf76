"""Bring your own agent: `/rooms/NAME/mcp` (`endpoint`), each session a peer in its room
(`peer`), Code Mode's tools in MCP's terms (`tools`)."""
