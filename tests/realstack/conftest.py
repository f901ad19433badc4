"""Fixtures of the real-site tests: the clouds.yaml that testbed/realstack writes."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture(scope="module")
def clouds() -> dict[str, Any]:
    """Every real site's clouds.yaml entry (fails, not skips, when the sites are not up)."""
    path = Path(os.environ.get("OS_CLIENT_CONFIG_FILE", "/opt/realstack/clouds.yaml"))
    if not path.exists():
        pytest.fail(f"real sites are not up: {path} is missing (run testbed/realstack/up.sh)")
    found: dict[str, Any] = yaml.safe_load(path.read_text())["clouds"]
    return found
