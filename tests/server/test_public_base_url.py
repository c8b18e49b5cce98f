"""Issue 18 item 19: the advertised base URL must be one a client can reach, whatever --host binds."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.helpers import make_settings


@pytest.mark.parametrize("host", ["0.0.0.0", "::", ""])
def test_a_wildcard_bind_advertises_this_hosts_name(tmp_path: Path, host: str) -> None:
    settings = make_settings(tmp_path, public_base_url=None, host=host, port=8765)
    assert settings.resolved_public_base_url == f"http://{socket.gethostname()}:8765"


@pytest.mark.parametrize(
    ("host", "url"),
    [("::1", "http://[::1]:8765"), ("127.0.0.1", "http://127.0.0.1:8765"), ("localhost", "http://localhost:8765")],
)
def test_a_specific_bind_advertises_that_address(tmp_path: Path, host: str, url: str) -> None:
    assert make_settings(tmp_path, public_base_url=None, host=host, port=8765).resolved_public_base_url == url


def test_an_explicit_public_base_url_wins(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, public_base_url="https://mcp.example.com/", host="::", port=8765)
    assert settings.resolved_public_base_url == "https://mcp.example.com"
