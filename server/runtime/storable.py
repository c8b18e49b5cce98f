"""What can be stored as given: PostgreSQL text and JSON refuse NUL, so NUL is refused at the edge (400) in
anything a client sends, and replaced in text capgate itself writes (tool error messages)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator

from auth.errors import InvalidRequest

NUL = "\x00"
NUL_MESSAGE = "Text must not contain NUL (\\u0000) characters"


def nul_location(value: Any, where: str = "") -> str | None:
    """The dotted path of the first string (value or object key) in ``value`` that contains NUL, else None."""
    pending: list[tuple[Any, str]] = [(value, where)]
    while pending:  # iterative: input may be nested as deep as the JSON parser allows
        item, path = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return path or "body"
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and NUL in key:
                    return path or "body"
                pending.append((child, child_path))
        elif isinstance(item, list):
            pending.extend((child, f"{path}.{index}" if path else str(index)) for index, child in enumerate(item))
    return None


def without_nul(text: str) -> str:
    return text.replace(NUL, "\ufffd")


def refuse_nul(data: Any, where: str = "") -> None:
    """400 naming the field when any string in ``data`` contains NUL."""
    location = nul_location(data, where)
    if location is not None:
        raise InvalidRequest(NUL_MESSAGE, details={location: NUL_MESSAGE})


def _no_nul(value: str) -> str:
    if NUL in value:
        raise ValueError(NUL_MESSAGE)
    return value


StoredText = Annotated[str, AfterValidator(_no_nul)]
"""A request field stored in a text column."""


TRUNCATED = "$truncated"
"""Marker of a stored input, result or event that was larger than ``record_max_bytes``."""


def for_storage(value: Any, max_bytes: int) -> Any:
    """``value`` when its JSON fits in ``max_bytes``; else ``{"$truncated": {"originalBytes", "preview"}}`` with
    the first ``max_bytes`` of the JSON as the preview. The caller still gets the whole value in its answer."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return value
    preview = encoded[:max_bytes].decode("utf-8", "ignore")
    return {TRUNCATED: {"originalBytes": len(encoded), "preview": preview}}


def text_for_storage(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8", "replace")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore") + f" … [truncated: {len(encoded)} bytes]"
