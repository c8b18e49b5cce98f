"""The four ways a key can be wrong, and the message capgate gives for each (DESIGN §3)."""

from __future__ import annotations

from tests.e2e.conftest import ClientGate

CASES = ["missing", "wrong", "revoked", "no-runtime"]
MESSAGES = {
    "missing": "Missing API key",
    "wrong": "Invalid API key",
    "revoked": "API key has been revoked",
    "no-runtime": "Missing required scope: runtime",
}


def key_for(gate: ClientGate, case: str) -> str | None:
    return {"missing": None, "wrong": gate.wrong_key, "revoked": gate.revoked_key, "no-runtime": gate.no_runtime_key}[
        case
    ]
