from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import CapgateProcess, running_capgate


@pytest.fixture
def capgate(tmp_path: Path) -> Iterator[CapgateProcess]:
    with running_capgate(tmp_path / "capgate") as server:
        yield server
