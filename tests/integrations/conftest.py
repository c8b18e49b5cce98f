from pathlib import Path

import pytest

from server.settings import Settings
from tests.helpers import make_settings
from tests.integrations.upstreams import http_upstream, stdio_command  # noqa: F401  (fixtures)

# The test upstreams listen on 127.0.0.1, which capgate refuses for integrations set up over HTTP unless
# the operator allows it: these tests are that operator.
LOCAL_UPSTREAMS = ["127.0.0.1:*"]


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(tmp_path, sqlite_url, integration_allowed_urls=LOCAL_UPSTREAMS)
