"""Tools from installed packages, through the ``capgate.tools`` entry-point group.

An entry point may name a ``Tool``, an iterable of tools, or a callable taking no
argument that returns either. One bad plugin never stops the server: a plugin that
fails to load, or a tool whose name is already taken (by a built-in or an earlier
plugin), is logged and skipped, and ``capgate tools list`` shows it as skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from tools.registry import SkippedPlugin, Tool

ENTRY_POINT_GROUP = "capgate.tools"
logger = logging.getLogger(__name__)


@dataclass(slots=True)
class PluginTools:
    tools: list[Tool] = field(default_factory=list)
    skipped: list[SkippedPlugin] = field(default_factory=list)


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


def load_plugins(group: str = ENTRY_POINT_GROUP, *, taken: Iterable[str] = ()) -> PluginTools:
    """Every plugin tool that loads and whose name is free; the others, with the reason, in ``skipped``."""
    loaded = PluginTools()
    names = set(taken)
    for entry in entry_points(group=group):
        origin = f"{entry.name} = {entry.value}"
        try:
            tools = _as_tools(entry.load(), origin)
        except Exception as exc:  # a plugin's own bug: skip it, keep serving the others
            logger.exception("skipping tool plugin %s: it failed to load", origin)
            loaded.skipped.append(SkippedPlugin(entry.name, origin, f"failed to load: {type(exc).__name__}: {exc}"))
            continue
        for tool in tools:
            if tool.name in names:
                logger.error("skipping tool %s from plugin %s: the name is already taken", tool.name, origin)
                loaded.skipped.append(SkippedPlugin(f"{tool.name} ({entry.name})", origin, "name already taken"))
                continue
            names.add(tool.name)
            loaded.tools.append(tool)
        logger.info("loaded tools from entry point %s", origin)
    return loaded


def plugin_tools(group: str = ENTRY_POINT_GROUP) -> list[Tool]:
    return load_plugins(group).tools
