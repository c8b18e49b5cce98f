"""Imports every module that defines tables, so SQLModel.metadata knows them all."""

import auth.models  # noqa: F401
import server.admin.models  # noqa: F401
import server.integrations.models  # noqa: F401
import server.mcp.models  # noqa: F401
import server.observability.models  # noqa: F401
import server.runtime.models  # noqa: F401
import tools.memory.models  # noqa: F401
import tools.models  # noqa: F401
