"""The tools a server offers: the built-in memory tools plus every installed plugin's tools."""

from __future__ import annotations

from tools.memory.store import MemoryLimits
from tools.memory.tools import memory_tools
from tools.plugins import load_plugins
from tools.registry import ToolRegistry


def default_registry(limits: MemoryLimits) -> ToolRegistry:
    built_in = memory_tools(limits)
    plugins = load_plugins(taken=[tool.name for tool in built_in])
    return ToolRegistry([*built_in, *plugins.tools], skipped=plugins.skipped)
