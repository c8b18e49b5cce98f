"""Relayed legacy MCP requests across replicas: counted once toward the key's rate limit, and the mark that
says so cannot be forged without the pepper."""

from __future__ import annotations

import re
import time

import httpx
import pytest

from tests.e2e.harness import CapgateProcess
from tests.e2e.test_deploy import replicas  # noqa: F401  (fixture)
from tests.e2e.test_replicas_lb import legacy_headers, list_tools, open_session, replica_env  # noqa: F401

pytestmark = pytest.mark.e2e


def daily_remaining(response: httpx.Response) -> int:
    """The daily window's remaining count; exactly one replica may have counted (one RateLimit field)."""
    fields = response.headers.get_list("ratelimit")
    assert len(fields) == 1, fields
    found = re.search(r'"daily";r=(\d+)', fields[0])
    assert found, fields
    return int(found.group(1))


async def test_a_relayed_request_counts_once_and_a_forged_relay_mark_counts_normally(
    replicas: list[CapgateProcess],  # noqa: F811
) -> None:
    key = replicas[0].create_key("demo")["key"]
    session_id = open_session(replicas[0].url, key)  # owned by replica 1; Redis holds the shared counts
    before = daily_remaining(list_tools(replicas[2].url, key, session_id))  # relayed from replica 3
    after = daily_remaining(list_tools(replicas[2].url, key, session_id))
    assert after == before - 1  # counted at replica 3 only, not again at the owner

    forged = {
        **legacy_headers(key, session_id),
        "capgate-forwarded-by": replicas[2].url,
        "capgate-relay-signature": f"{int(time.time())}.{'0' * 64}",
    }
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    answered = httpx.post(f"{replicas[0].url}/mcp", headers=forged, json=body)
    assert answered.status_code == 200, answered.text
    assert daily_remaining(answered) == after - 1  # the owner counted it: the mark was not made with the pepper
