"""The tools a server offers: the built-in memory tools plus every installed plugin's tools."""

from __future__ import annotations

from tools.memory.store import MemoryLimits
from tools.memory.tools import memory_tools
from tools.plugins import plugin_tools
from tools.registry import ToolRegistry


def default_registry(limits: MemoryLimits) -> ToolRegistry:
    return ToolRegistry([*memory_tools(limits), *plugin_tools()])
