"""Revocation from a separate CLI process reaches the running server within a second."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CapgateProcess, poll_until

pytestmark = pytest.mark.e2e


def test_key_revoked_by_the_cli_is_rejected_within_one_second(capgate: CapgateProcess) -> None:
    key = capgate.create_key("demo")
    headers = {"x-api-key": key["key"]}
    with httpx.Client(base_url=capgate.url, headers=headers) as http:
        assert http.get("/capabilities").status_code == 200
        capgate.cli("keys", "revoke", key["id"])

        def rejected() -> bool:
            return http.get("/capabilities").status_code == 401

        poll_until(rejected, timeout=1.0)
        response = http.get("/capabilities")
        assert response.json() == {"error": "API key has been revoked", "code": "revoked_api_key"}


def test_key_created_by_the_cli_works_at_once_and_other_keys_are_unaffected(capgate: CapgateProcess) -> None:
    first, second = capgate.create_key("demo"), capgate.create_key("demo")
    with httpx.Client(base_url=capgate.url) as http:
        assert http.get("/capabilities", headers={"x-api-key": first["key"]}).status_code == 200
        capgate.cli("keys", "revoke", first["id"])
        poll_until(lambda: http.get("/capabilities", headers={"x-api-key": first["key"]}).status_code == 401, timeout=1)
        assert http.get("/capabilities", headers={"Authorization": f"Bearer {second['key']}"}).status_code == 200


def test_serve_logs_one_json_line_per_request_without_the_key(capgate: CapgateProcess) -> None:
    key = capgate.create_key("demo")
    with httpx.Client(base_url=capgate.url) as http:
        http.get("/capabilities", headers={"x-api-key": key["key"]})
        http.get("/capabilities", headers={"x-api-key": key["key"][:-1] + "x"})

    poll_until(lambda: f'"key_id": "{key["id"]}"' in capgate.log_text(), timeout=EVENTUALLY)
    lines = [json.loads(line) for line in capgate.log_text().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("key_id") == key["id"]]
    assert ours[0]["path"] == "/capabilities" and ours[0]["status"] == 200
    assert {"request_id", "method", "latency_ms", "organization_id"} <= set(ours[0])
    assert key["key"][8:] not in capgate.log_text()
