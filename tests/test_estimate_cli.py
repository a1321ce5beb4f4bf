"""``lora-studio estimate``: the VRAM gauge's content headless, for this machine's GPU or a given size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.cli.common import EXIT_FAILED, EXIT_OK
from backend.cli.main import main
from backend.core.spec import JobSpec
from backend.estimator.gpus import machine_gpus
from tests.hub_server import LocalHub
from tests.import_check import run_fresh

MIB = 2**20


@pytest.fixture
def spec_file(tmp_path: Path, tiny_llama: Path) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}\n')
    path = tmp_path / "spec.yaml"
    spec = JobSpec.from_dict(
        {
            "name": "t",
            "base_model": str(tiny_llama),
            "data": {"path": str(data)},
            "training": {"micro_batch_size": 8, "max_seq_length": 2048, "gradient_checkpointing": False},
        }
    )
    spec.save(path)
    return path


def _estimate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["estimate", *args])
    return code, capsys.readouterr().out


def test_a_job_too_big_for_the_card_says_what_to_change(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _estimate(capsys, str(spec_file), "--gpu-memory", "0.6", "--json")
    assert code == EXIT_OK
    result = json.loads(out)
    assert result["verdict"] == "wont_fit"
    assert sum(term["bytes"] for term in result["terms"]) == result["total_bytes"]
    suggestions = result["suggestions"]
    assert suggestions, "a job that will not fit must come with changes"
    assert all(s["peak_bytes"] < result["total_bytes"] for s in suggestions)
    assert any("training.gradient_checkpointing" in s["changes"] for s in suggestions)

    code, text = _estimate(capsys, str(spec_file), "--gpu-memory", "0.6")
    assert "verdict: will not fit" in text
    assert "what to change, best first:" in text
    assert "set training.gradient_checkpointing: true" in text


def test_the_same_job_fits_a_big_card_and_the_data_lengths_count(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out = _estimate(capsys, str(spec_file), "--gpu-memory", "80", "--json")
    full = json.loads(out)
    assert full["verdict"] == "fits" and not full["suggestions"]
    _, out = _estimate(capsys, str(spec_file), "--gpu-memory", "80", "--json", "--longest-tokens", "256")
    short = json.loads(out)
    assert short["total_bytes"] < full["total_bytes"]
    assert short["tokens_per_micro_batch"] == 8 * 256
    _, out = _estimate(capsys, str(spec_file), "--gpu-memory", "0.6", "--json", "--p99-tokens", "300")
    changes = [s["changes"] for s in json.loads(out)["suggestions"]]
    assert {"training.max_seq_length": 300} in changes


@pytest.mark.skipif(bool(machine_gpus()), reason="this machine has an NVIDIA GPU")
def test_without_a_gpu_it_still_estimates_and_says_how_to_check_a_card(
    spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, text = _estimate(capsys, str(spec_file))
    assert code == EXIT_OK
    assert "no NVIDIA GPU here: pass --gpu-memory" in text
    assert "estimated peak:" in text and "verdict" not in text


def test_a_model_that_is_nowhere_is_an_error_with_the_reason(
    tmp_path: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = JobSpec.load(spec_file).model_copy(update={"base_model": str(tmp_path / "missing")})
    spec.save(spec_file)
    code = main(["estimate", str(spec_file), "--gpu-memory", "8"])
    assert code == EXIT_FAILED
    assert "missing' is neither a model in the store" in capsys.readouterr().err


def test_the_built_in_model_is_estimated_before_it_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "empty-home"))
    spec = JobSpec.from_dict({"name": "t", "base_model": "default", "data": {"path": str(tmp_path / "d.jsonl")}})
    spec.save(tmp_path / "spec.yaml")
    code, text = _estimate(capsys, str(tmp_path / "spec.yaml"), "--gpu-memory", "8")
    assert code == EXIT_OK
    assert text.startswith("default: 0.13 B parameters")
    assert not (tmp_path / "empty-home" / "models").exists(), "estimating must not download the model"


@pytest.mark.skipif(not machine_gpus(), reason="needs an NVIDIA GPU")
def test_with_a_gpu_it_is_the_verdict_for_that_gpu(spec_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gpu = machine_gpus()[0]
    code, text = _estimate(capsys, str(spec_file))
    assert code == EXIT_OK
    assert f"GPU: {gpu.name}" in text and "verdict: " in text


@pytest.mark.parametrize("option,value", [("--gpu-memory", "-3"), ("--gpu-memory", "nan"), ("--p99-tokens", "0")])
def test_sizes_must_be_positive_numbers(spec_file: Path, option: str, value: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["estimate", str(spec_file), option, value])
    assert exited.value.code == 2


def test_a_hub_model_is_estimated_from_its_headers_before_import(
    local_hub: LocalHub, tiny_llama: Path, spec_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    local_hub.add("acme/tiny", tiny_llama)
    local_hub.add("acme/locked", tiny_llama, gated=True)
    spec = JobSpec.load(spec_file)
    spec.model_copy(update={"base_model": "acme/tiny"}).save(spec_file)
    code, out = _estimate(capsys, str(spec_file), "--gpu-memory", "8", "--json")
    assert code == EXIT_OK and json.loads(out)["verdict"] == "fits"

    spec.model_copy(update={"base_model": "acme/locked"}).save(spec_file)
    assert main(["estimate", str(spec_file), "--gpu-memory", "8"]) == EXIT_FAILED
    assert "acme/locked is gated: accept its license" in capsys.readouterr().err


def test_estimating_imports_no_torch(spec_file: Path) -> None:
    """The form recomputes on every edit: the estimator must stay light, and so must its command."""
    code = (
        "from backend.cli.main import main; "
        f"assert main(['estimate', {str(spec_file)!r}, '--gpu-memory', '8']) == {EXIT_OK}"
    )
    assert run_fresh(code).loaded == []
