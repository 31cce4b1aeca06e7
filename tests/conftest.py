from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Deterministic property tests: same examples on every run and every machine.
settings.register_profile(
    "dynconform",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("dynconform")

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURES = FIXTURES / "ai-dynamo-1.6.1"


@pytest.fixture(scope="session")
def captures() -> Path:
    """The real ai-dynamo 1.6.1 captures."""
    return CAPTURES
