"""Tools from installed packages, through the ``capgate.tools`` entry-point group.

An entry point may name a ``Tool``, an iterable of tools, or a callable taking no
argument that returns either.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import entry_points

from tools.registry import Tool

ENTRY_POINT_GROUP = "capgate.tools"
logger = logging.getLogger(__name__)


def _as_tools(value: object, origin: str) -> list[Tool]:
    if isinstance(value, Tool):
        return [value]
    if callable(value):
        return _as_tools(value(), origin)
    if isinstance(value, Iterable) and not isinstance(value, str | bytes):
        items = list(value)
        if all(isinstance(item, Tool) for item in items):
            return items
    raise TypeError(f"entry point {origin} must give a Tool, tools, or a callable returning them")


def plugin_tools(group: str = ENTRY_POINT_GROUP) -> list[Tool]:
    found: list[Tool] = []
    for entry in entry_points(group=group):
        origin = f"{entry.name} = {entry.value}"
        found.extend(_as_tools(entry.load(), origin))
        logger.info("loaded tools from entry point %s", origin)
    return found
