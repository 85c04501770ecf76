"""The model-facing contract, defined once: the canvas JS API, the globals a behaviour sees, the
triggers and events, Code Mode's tools and reference, and the room's picture (`render`).

Everything the model reads (search results, TypeScript declarations, tool schemas, the MCP tool
list, the generated docs) comes from here; nothing here knows about peers, stores or HTTP.
"""
