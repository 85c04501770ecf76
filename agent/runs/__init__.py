"""Agent runs: the model loop that turns a prompt into tool calls (`loop`), the run records
(`store`, written behind to `records`), and their HTTP payloads and routes (`http`, `routes`).
"""
