"""What capgate relies on inside the installed mcp SDK that is not public API: fail loudly when it moves."""

from __future__ import annotations

import inspect

from mcp.server.connection import Connection
from mcp.server.session import ServerSession


def test_server_session_keeps_its_connection_in_the_private_attribute_the_session_tracker_reads() -> None:
    # server/mcp/server.py:SessionTracker reads ServerSession._connection to send list_changed to legacy
    # sessions later (server/mcp/sessions.py). If this fails, the SDK renamed it: find the new way there.
    connection = object.__new__(Connection)
    connection.protocol_version = "2025-06-18"  # a legacy (initialize-handshake) session
    session = ServerSession(object(), connection)  # type: ignore[arg-type]  # the request context is not read here
    assert session._connection is connection
    assert "connection" in inspect.signature(ServerSession.__init__).parameters


def test_the_connection_can_still_announce_tool_list_changes() -> None:
    assert inspect.iscoroutinefunction(Connection.send_tool_list_changed)
