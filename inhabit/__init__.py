"""The composition root: the `inhabit` command and the assembly of the app from its parts.

The only package that imports both the rooms server and the agent; nothing imports it.
"""
