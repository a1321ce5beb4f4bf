"""Shared pytest fixtures for LoRA Studio's tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.tiny_models import ARCHS, build_tiny_model

# huggingface_hub reads these once, on import, so they are set before any test imports it
# (nothing above does): a test that would reach the Hub fails at once instead of downloading,
# and forked workers (datasets, DataLoader) don't trip the tokenizers fork warning.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every tiny model (see ``tests/tiny_models.py``), built once per session, by architecture.

    The folders are shared by all tests: read them, or copy one to ``tmp_path`` before writing.
    """
    root = tmp_path_factory.mktemp("tiny_models")
    return {arch: build_tiny_model(arch, root / arch) for arch in ARCHS}


@pytest.fixture(params=ARCHS)
def tiny_model(request: pytest.FixtureRequest, tiny_model_dirs: dict[str, Path]) -> Path:
    """The folder of one tiny model; a test using it runs once per architecture.

    Narrow it with ``@pytest.mark.parametrize("tiny_model", ["llama", "gemma2"], indirect=True)``.
    """
    return tiny_model_dirs[request.param]


@pytest.fixture(scope="session")
def tiny_llama(tiny_model_dirs: dict[str, Path]) -> Path:
    """The tiny Llama folder, for tests that need just one model."""
    return tiny_model_dirs["llama"]
