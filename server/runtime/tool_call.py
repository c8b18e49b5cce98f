"""The tool boundary: what a tool's result or failure becomes. Never a 500, never a leak.

A result must be strict JSON (NaN and Infinity are not JSON numbers: the response, the stored
row and the event stream could not carry them). A database error inside a tool reaches the
caller as a reference id only; its SQL text and parameters could name another organization's
data, so they go to the log under that reference.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import Any, Literal

from pydantic_core import PydanticSerializationError, to_jsonable_python
from sqlalchemy.exc import SQLAlchemyError

from tools.context import ToolContext, ToolError
from tools.registry import Tool

logger = logging.getLogger(__name__)
Outcome = tuple[Literal["succeeded", "failed"], Any, str | None]
MAX_ERROR_LENGTH = 2000


def strict_json(value: Any) -> Any:
    """The value as JSON-ready data; PydanticSerializationError when it is no JSON, ValueError for NaN/Infinity."""
    data = to_jsonable_python(value)
    json.dumps(data, allow_nan=False)
    return data


async def call_tool(tool: Tool, ctx: ToolContext, args: Any) -> Outcome:
    try:
        result = await tool.handler(ctx, args)
    except ToolError as exc:
        return "failed", None, exc.message
    except SQLAlchemyError:
        reference = f"ref_{secrets.token_hex(6)}"
        logger.exception("tool %s failed on a database error (reference %s)", tool.name, reference)
        return "failed", None, f"Tool {tool.name} failed on a database error (reference {reference})"
    except Exception as exc:  # any other failure becomes a failed execution, never a 500
        logger.exception("tool %s raised", tool.name)
        return "failed", None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
    try:
        return "succeeded", strict_json(result), None
    except PydanticSerializationError:  # a ValueError too: caught first
        return "failed", None, f"Tool {tool.name} returned a result that is not JSON"
    except ValueError:
        return "failed", None, f"Tool {tool.name} returned NaN or Infinity, which JSON cannot carry"
