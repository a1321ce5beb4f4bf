"""Release gates decide promotion: real registry folders, real adapters, evaluation summaries in their records."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.evaluation.record import record_evaluation
from backend.registry.errors import RegistryError
from backend.registry.gates import Gate, Gates, parse_gates
from backend.registry.registry import Registry
from tests.adapters import make_adapter


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]) -> Path:
    return make_adapter(tiny_model_dirs["llama"], tmp_path_factory.mktemp("gates") / "a")


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapter: Path) -> Registry:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    for _ in range(3):
        registry.add(adapter, "triage")
    registry.set_gates(
        "triage",
        Gates(
            gates=[
                Gate(metric="loss", rule="<=", than="base"),
                Gate(metric="task.field_match", rule=">=", than=0.8),
                Gate(metric="refusal_rate", rule=">=", than="base", margin=-0.05),
                Gate(metric="task_score", rule=">=", than="production"),
            ]
        ),
    )
    return registry


def evaluated(registry: Registry, number: int, **summary: object) -> None:
    record_evaluation(registry.get("triage", number).folder, {"job_id": f"eval-{number}", **summary})


GOOD = {
    "loss": 1.2,
    "base_loss": 2.0,
    "task": {"field_match": 0.9, "primary": 0.9},
    "base_task": {"field_match": 0.2, "primary": 0.2},
    "task_score": 0.9,
    "refusal_rate": 0.9,
    "base_refusal_rate": 0.92,
}


def test_a_version_that_passes_every_gate_is_promoted(registry: Registry) -> None:
    evaluated(registry, 1, **GOOD)
    results = registry.gate_results("triage", 1)
    assert [r.passed for r in results] == [True, True, True, True]
    assert results[3].why == "no version is in production yet"
    registry.promote("triage", 1, reason="first release")
    assert registry.state("triage").production == 1


def test_a_failing_gate_blocks_promotion_naming_the_gate_and_its_numbers(registry: Registry) -> None:
    evaluated(registry, 1, **GOOD)
    registry.promote("triage", 1, reason="first")
    evaluated(registry, 2, **{**GOOD, "refusal_rate": 0.5, "task_score": 0.95})
    with pytest.raises(RegistryError) as refused:
        registry.promote("triage", 2, reason="more data")
    message = refused.value.message
    assert "refusal_rate >= base -0.05 failed" in message and "refusal_rate is 0.5; the base's is 0.92" in message
    assert "task_score" not in message  # the passing gates are not listed
    assert "--override" in (refused.value.hint or "")
    assert registry.state("triage").production == 1

    event = registry.promote("triage", 2, reason="more data", override="legal signed off the refusals")
    assert event["override"] == "legal signed off the refusals"
    assert [g["gate"] for g in event["failed_gates"]] == ["refusal_rate >= base -0.05"]
    assert registry.state("triage").production == 2
    assert registry.history("triage")[-1]["override"] == "legal signed off the refusals"


def test_production_is_the_reference_for_a_no_worse_gate(registry: Registry) -> None:
    evaluated(registry, 1, **GOOD)
    registry.promote("triage", 1)
    evaluated(registry, 3, **{**GOOD, "task_score": 0.85})
    (worse,) = [r for r in registry.gate_results("triage", 3) if not r.passed]
    assert worse.gate.metric == "task_score" and (worse.value, worse.reference) == (0.85, 0.9)


def test_missing_numbers_fail_and_say_which_evaluation_supplies_them(registry: Registry) -> None:
    results = {r.gate.metric: r for r in registry.gate_results("triage", 1)}
    assert results["loss"].why == "the version has not been evaluated"
    evaluated(registry, 1, loss=1.0, base_loss=2.0)
    results = {r.gate.metric: r for r in registry.gate_results("triage", 1)}
    assert results["loss"].passed
    assert "refusal check" in results["refusal_rate"].why and not results["refusal_rate"].passed


def test_no_gates_means_no_check_and_gate_files_are_validated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, adapter: Path
) -> None:
    monkeypatch.setenv("LORA_STUDIO_HOME", str(tmp_path / "home"))
    registry = Registry()
    registry.add(adapter, "free")
    registry.promote("free", 1)  # no gates.yaml: nothing to pass
    with pytest.raises(RegistryError, match="gates LoRA Studio cannot read"):
        parse_gates("gates:\n  - metric: loss\n    rule: '=='\n    than: base\n", "gates.yaml")
    with pytest.raises(RegistryError, match="not valid YAML"):
        parse_gates("gates: [", "gates.yaml")
    assert parse_gates("gates:\n  - {metric: loss, rule: '<=', than: 2.5}\n", "g").gates[0].than == 2.5


def test_the_cli_checks_sets_and_overrides_gates(registry: Registry, tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", "adapters", *args],
            cwd=root,
            env=dict(os.environ),
            capture_output=True,
            text=True,
        )

    gates_file = tmp_path / "gates.yaml"
    gates_file.write_text("gates:\n  - {metric: loss, rule: '<=', than: base}\n")
    evaluated(registry, 3, loss=2.5, base_loss=2.0)
    checked = cli("gates", "triage", "--set", str(gates_file))
    assert checked.returncode == 1 and "FAIL  loss <= base" in checked.stdout and "loss is 2.5" in checked.stdout
    refused = cli("promote", "triage", "3")
    assert refused.returncode == 1 and "does not pass its release gates" in refused.stderr
    forced = cli("promote", "triage", "3", "--override", "the base's loss is on other data", "--json")
    assert forced.returncode == 0 and json.loads(forced.stdout)["override"] == "the base's loss is on other data"


def test_a_regression_suite_gate_names_the_prompts_production_passed_and_this_version_fails(
    registry: Registry,
) -> None:
    prompts = ["Refund after 45 days?", "Opening hours?", "Cancel my order"]
    registry.set_gates(
        "triage",
        Gates(
            gates=[
                Gate(metric="suites.core.regressions", rule="<=", than=0),
                Gate(metric="suites.core.pass_rate", rule=">=", than=0.5),
            ]
        ),
    )
    evaluated(registry, 1, suites={"core": {"passed": [True, True, False], "pass_rate": 2 / 3, "prompts": prompts}})
    assert all(r.passed for r in registry.gate_results("triage", 1))  # nothing in production yet
    registry.promote("triage", 1)
    evaluated(registry, 2, suites={"core": {"passed": [False, True, True], "pass_rate": 2 / 3, "prompts": prompts}})
    regression, rate = registry.gate_results("triage", 2)
    assert not regression.passed and rate.passed
    assert regression.why == "1 prompt(s) of 'core' pass in production but fail here: 'Refund after 45 days?'"
    evaluated(registry, 3, suites={"core": {"passed": [True, True, True], "pass_rate": 1.0, "prompts": prompts}})
    assert all(r.passed for r in registry.gate_results("triage", 3))
    evaluated(registry, 3, suites={"core": {"passed": [True], "pass_rate": 1.0, "prompts": prompts[:1]}})
    (changed, _) = registry.gate_results("triage", 3)
    assert not changed.passed and "with the same prompts" in changed.why


def test_suite_properties_say_what_an_answer_lacks() -> None:
    from backend.evaluation.suites import SuitePrompt, failures

    item = SuitePrompt(
        prompt="p", must_contain=["30 days"], must_not_contain=["guarantee"], must_match="^sorry", close_to_base=0.5
    )
    assert failures(item, "Sorry, refunds are possible within 30 days.", "Sorry, refunds within 30 days only.") == []
    assert failures(item, "We guarantee a refund.", "Sorry, refunds within 30 days only.") == [
        "does not contain '30 days'",
        "contains 'guarantee'",
        "does not match '^sorry'",
        "strays from the base's answer (ROUGE-L 0.20 < 0.5)",
    ]
