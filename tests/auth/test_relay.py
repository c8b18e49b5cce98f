"""The mark on relayed requests: only a holder of the pepper makes one, and it fits one request for a short time."""

from __future__ import annotations

from typing import Any

from auth.relay import MAX_SKEW_SECONDS, RELAY_SIGNATURE, RelaySigner


def scope(session_id: str = "s1", method: str = "POST", path: bytes = b"/mcp", mark: bytes | None = None) -> Any:
    headers = [(b"mcp-session-id", session_id.encode())]
    if mark is not None:
        headers.append((RELAY_SIGNATURE, mark))
    return {"type": "http", "method": method, "path": path.decode(), "raw_path": path, "headers": headers}


def test_a_mark_verifies_only_for_its_request_its_pepper_and_a_short_time() -> None:
    now = [1_000_000.0]
    signer = RelaySigner(b"pepper", clock=lambda: now[0])
    mark = signer.sign(scope())
    assert signer.relayed(scope(mark=mark))
    assert not signer.relayed(scope())  # no mark
    assert not signer.relayed(scope(session_id="s2", mark=mark))  # another session
    assert not signer.relayed(scope(method="DELETE", mark=mark))
    assert not signer.relayed(scope(path=b"/api/mcp", mark=mark))
    assert not RelaySigner(b"other pepper", clock=lambda: now[0]).relayed(scope(mark=mark))
    assert not signer.relayed(scope(mark=b"1000000." + b"0" * 64))  # forged
    assert not signer.relayed(scope(mark=b"garbage"))
    now[0] += MAX_SKEW_SECONDS + 1
    assert not signer.relayed(scope(mark=mark))  # stale
