"""A tool call's input checks and its answer: what ``Runtime.invoke`` validates and returns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from auth.errors import Conflict, InvalidRequest, validation_details
from server.runtime.models import Execution
from server.runtime.storable import refuse_nul
from tools.registry import Tool

MAX_IDEMPOTENCY_KEY_LENGTH = 255


@dataclass(frozen=True)
class InvocationResult:
    execution_id: str
    session_id: str
    status: Literal["succeeded", "failed", "running"]
    output: Any
    error: str | None

    @property
    def is_error(self) -> bool:
        return self.status == "failed"


def validate_input(tool: Tool, arguments: Any) -> Any:
    """Strict JSON validation: `true` or `"7"` is no integer (the schema the client saw says so)."""
    if not isinstance(arguments, dict):
        raise InvalidRequest("Tool input must be a JSON object", details={"input": "must be an object"})
    refuse_nul(arguments)
    try:
        return tool.input_model.model_validate_json(json.dumps(arguments), strict=True)
    except ValidationError as exc:
        raise InvalidRequest(
            f"Invalid input for tool {tool.name}", details=validation_details(exc, root="input")
        ) from None


def validate_idempotency_key(key: str) -> str:
    if not key or len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not key.isprintable() or not key.isascii():
        raise InvalidRequest(
            "Invalid Idempotency-Key", details={"Idempotency-Key": "1 to 255 printable ASCII characters"}
        )
    return key


def result_of(execution: Execution) -> InvocationResult:
    """What a retry with the same Idempotency-Key answers: the first call's result.

    An interrupted first call has no result, and may have applied in part (a write may have
    committed before the cut): the retry says exactly that rather than run the tool again.
    """
    if execution.status == "interrupted":
        raise Conflict(
            "The first call with this Idempotency-Key was interrupted and may have applied in part;"
            " check its execution, then retry with a new Idempotency-Key",
            code="idempotency_key_interrupted",
            details={"executionId": execution.id},
        )
    if execution.status == "succeeded":
        return InvocationResult(execution.id, execution.session_id, "succeeded", execution.output, None)
    return InvocationResult(execution.id, execution.session_id, "failed", None, execution.error or "Execution failed")


def tool_span_attributes(
    execution_id: str, session_id: str, arguments: dict[str, Any], record_io: bool
) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "capgate.execution_id": execution_id,
        "capgate.session_id": session_id,
    }
    if record_io:
        attributes["capgate.tool.arguments"] = json.dumps(arguments, default=str)[:4096]
    return attributes
