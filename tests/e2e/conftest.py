from collections.abc import Iterator

import pytest

from tests.e2e.harness import CapgateProcess, running_capgate


@pytest.fixture(scope="module")
def capgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CapgateProcess]:
    """One server per test module: every test makes its own keys, so tests cannot see each other's."""
    with running_capgate(tmp_path_factory.mktemp("capgate")) as server:
        yield server
