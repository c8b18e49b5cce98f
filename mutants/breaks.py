"""Deliberate breaks of capgate's security rules, each with the tests that must notice it.

A break replaces one exact piece of source text (found exactly once, or the break is
stale and the run says so). Keep each break to the one rule it names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Break:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


BREAKS: tuple[Break, ...] = (
    # Error catalogue: revoked and expired keys are told apart only for the right secret, and never let in.
    Break(
        "revoked key accepted",
        "auth/verifier.py",
        "if record.revoked_at is not None:\n            raise RevokedApiKey()",
        "if False:\n            raise RevokedApiKey()",
        ("tests/auth/test_error_catalogue.py", "tests/auth/test_verifier.py"),
    ),
    Break(
        "expired key accepted",
        "auth/verifier.py",
        "if record.expires_at is not None and record.expires_at <= self._now():",
        "if False:",
        ("tests/auth/test_error_catalogue.py", "tests/auth/test_verifier.py"),
    ),
    # Revocation: a change through this process drops the cached record at once.
    Break(
        "revocation leaves the cached record",
        "auth/verifier.py",
        "        self._loads.invalidate(key_id)\n        self._records.pop(key_id)\n        self._verified.pop(key_id)",
        "        self._loads.invalidate(key_id)",
        ("tests/auth/test_verifier.py", "tests/server/test_keys_api.py"),
    ),
    # Kill switch: terminateStreams must end open requests (a broken one must fail, not hang: item 24).
    Break(
        "terminateStreams cancels nothing",
        "auth/streams.py",
        "            request.terminated = True\n            request.scope.cancel()",
        "            request.terminated = True",
        ("tests/auth/test_streams.py", "tests/server/test_mcp_call_bounds.py"),
    ),
    Break(
        "a legacy session's tool call escapes the kill switch",
        "server/mcp/server.py",
        "bound = state.streams.open(principal.key_id, is_stream=False)",
        "bound = type(state.streams)().open(principal.key_id, is_stream=False)",
        ("tests/server/test_mcp_call_bounds.py",),
    ),
    # Scopes.
    Break(
        "route scope not checked",
        "server/routes/routing.py",
        "    if not principal.has_scope(scope):\n        raise InsufficientScope(scope)",
        "    pass",
        ("tests/auth/test_error_catalogue.py", "tests/server/test_runtime_api.py", "tests/server/test_keys_api.py"),
    ),
    Break(
        "read-only key may call write tools",
        "tools/registry.py",
        "        if principal.read_only and not tool.read_only:\n            return False\n",
        "",
        ("tests/tools/test_registry.py",),
    ),
    # Allow-lists.
    Break(
        "allowedTools globs ignored",
        "tools/registry.py",
        "    return patterns is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)",
        "    return True",
        ("tests/tools/test_registry.py",),
    ),
    Break(
        "a tool-limited manager may grant unlimited tools (issue 18 item 22)",
        "auth/grants.py",
        "        if allowed_tools is None:\n            raise NotGrantable",
        "        if False:\n            raise NotGrantable",
        ("tests/server/test_key_lifecycle_rules.py", "tests/server/test_keys_api.py"),
    ),
    # Isolation.
    Break(
        "another organization's running execution's events stream (issue 18 item 21)",
        "server/routes/executions.py",
        "if live is None or live.organization_id != request.user.organization_id:",
        "if live is None:",
        ("tests/server/test_isolation.py",),
    ),
    Break(
        "another organization's execution readable",
        "server/runtime/store.py",
        '    if row is None or row.organization_id != organization_id:\n        raise NotFound("Unknown execution")',
        '    if row is None:\n        raise NotFound("Unknown execution")',
        ("tests/server/test_isolation.py",),
    ),
    Break(
        "another organization's session readable",
        "server/runtime/store.py",
        '    if row is None or row.organization_id != organization_id:\n        raise NotFound("Unknown session")',
        '    if row is None:\n        raise NotFound("Unknown session")',
        ("tests/server/test_isolation.py",),
    ),
    Break(
        "tools' reads see every organization: memory read, ls and search (issue 18 items 13, 23)",
        "tools/database.py",
        "    return statement.where(mine)",
        "    return statement if isinstance(statement, Select) else statement.where(mine)",
        ("tests/server/test_isolation.py", "tests/tools/test_database.py", "tests/tools/test_memory_tools.py"),
    ),
    Break(
        "tools may insert rows into another organization",
        "tools/database.py",
        "        _check_insert(statement, table, organization_id)\n        return statement",
        "        return statement",
        ("tests/tools/test_database.py", "tests/server/test_isolation.py"),
    ),
)
