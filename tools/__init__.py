"""Tools: the registry and the built-in tool set."""
