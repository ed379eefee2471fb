"""MCP servers the project ships; each runs alone as `python -m integrations.servers.<name>`."""
