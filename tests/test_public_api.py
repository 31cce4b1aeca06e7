"""Each part declares its public API in its __init__ with __all__, and every name resolves."""

from __future__ import annotations

import importlib

import pytest

PARTS = [
    "dynconform",
    "dynconform.contracts",
    "dynconform.mocker",
    "dynconform.conformance",
    "dynconform.stability",
    "dynconform.reports",
    "dynconform.graph",
    "dynconform.cli",
]


@pytest.mark.parametrize("name", PARTS)
def test_all_is_declared_and_resolves(name: str) -> None:
    module = importlib.import_module(name)
    exported = module.__all__
    assert isinstance(exported, list)
    assert len(set(exported)) == len(exported)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"
