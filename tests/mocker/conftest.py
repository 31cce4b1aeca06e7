from __future__ import annotations

from pathlib import Path

import pytest

from dynconform.mocker import ModelDir, build_model_dir, load_model_dir


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly built tiny model directory (shared, read-only)."""
    return build_model_dir(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> ModelDir:
    """The tiny model directory, loaded."""
    return load_model_dir(tiny_model_path)
