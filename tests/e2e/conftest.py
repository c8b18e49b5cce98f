from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from tests.e2e.harness import CapgateProcess, running_capgate


@pytest.fixture(scope="module")
def capgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CapgateProcess]:
    """One server per test module: every test makes its own keys, so tests cannot see each other's."""
    with running_capgate(tmp_path_factory.mktemp("capgate")) as server:
        yield server


@dataclass(frozen=True)
class ClientGate:
    """A real capgate process for the real-client tests, with one key per case the clients must report."""

    server: CapgateProcess
    key: str
    revoked_key: str
    no_runtime_key: str

    @property
    def mcp_url(self) -> str:
        return f"{self.server.url}/mcp"

    @property
    def wrong_key(self) -> str:
        # Same shape as a real key, one character off: what a typo or a stale copy looks like.
        last = self.key[-1]
        return self.key[:-1] + ("A" if last != "A" else "B")


@pytest.fixture(scope="session")
def client_gate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientGate]:
    with running_capgate(tmp_path_factory.mktemp("client-gate")) as server:
        # Each CLI call is a fresh Python process; three at once keep the fixture quick.
        with ThreadPoolExecutor(3) as pool:
            good, revoked, no_runtime = pool.map(
                lambda scopes: server.create_key("demo", *scopes), [(), (), ("--scope", "keys:manage")]
            )
        server.cli("keys", "revoke", revoked["id"])
        yield ClientGate(server=server, key=good["key"], revoked_key=revoked["key"], no_runtime_key=no_runtime["key"])
