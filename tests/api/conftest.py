"""Fixtures of the API tests: switching the calling principal."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal
from skyfleet.api.deps import get_principal
from tests.support import ADMIN


@pytest.fixture
def as_user(client: TestClient) -> Iterator[Callable[[Principal], None]]:
    """Call as the given principal (a fleet admin until switched)."""
    def switch(principal: Principal) -> None:
        client.app.dependency_overrides[get_principal] = lambda: principal  # type: ignore[attr-defined]

    switch(ADMIN)
    yield switch
    client.app.dependency_overrides.clear()  # type: ignore[attr-defined]
