"""Which connected account a call of a tool goes to (a tool may be available on several)."""

from __future__ import annotations

from auth.errors import CapgateError, InvalidRequest
from tools.registry import Tool

ACCOUNT_FIELD = "connectedAccountId"


class AccountRequired(CapgateError):
    status = 409
    code = "account_required"


def account_required(tool: Tool) -> AccountRequired:
    return AccountRequired(
        f'Capability "{tool.name}" requires connectedAccountId because it is available on multiple connected accounts',
        details={"availableAccounts": [account.public() for account in tool.accounts]},
    )


def choose_account(tool: Tool, requested: str | None) -> str | None:
    """The account a call of ``tool`` goes to: the one asked for, or the only one (409 when ambiguous)."""
    if not tool.accounts:
        return requested
    ids = [account.connected_account_id for account in tool.accounts]
    if requested is None:
        if len(ids) > 1:
            raise account_required(tool)
        return ids[0]
    if requested not in ids:
        raise InvalidRequest(
            f"connectedAccountId {requested} is not a connected account of {tool.name}",
            details={ACCOUNT_FIELD: f"one of {', '.join(ids)}"},
        )
    return requested
