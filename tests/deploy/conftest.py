from __future__ import annotations

from typing import Any

import pytest

from tests.deploy.support import COMPOSE, COMPOSE_CPU, load_compose, merge


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_compose(COMPOSE)


@pytest.fixture(scope="session")
def compose_cpu(compose: dict[str, Any]) -> dict[str, Any]:
    """The stack with the CPU override applied, merged the way Compose merges files."""
    return merge(compose, load_compose(COMPOSE_CPU))


@pytest.fixture(scope="session")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]
