"""Where revocation with ``terminateStreams=true`` closes a key's open streams."""

from __future__ import annotations

from server.state import AppState


async def terminate_key_streams(state: AppState, key_id: str) -> int:
    """Closes every open stream of the key and returns how many it closed.

    The stream registry belongs to the MCP endpoint (issue 5); the lead wires this
    function to it at merge. Until then this process holds no streams to close.
    """
    return 0
