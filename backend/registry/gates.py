"""Release gates: the thresholds a version must meet, on its latest evaluation, to go into production.

A named adapter's gates live in its registry folder as ``gates.yaml`` (the folders are the
truth; edit it by hand or with ``lora-studio adapters gates NAME --set FILE``)::

    gates:
      - metric: loss              # held-out loss of the evaluation
        rule: "<="
        than: base                # the base model's value in the same evaluation
      - metric: task.field_match  # share of reference fields the answers give
        rule: ">="
        than: 0.8
      - metric: refusal_rate      # refusal check
        rule: ">="
        than: base
        margin: -0.05             # at most 5 points below the base
      - metric: task_score
        rule: ">="
        than: production          # the production version's latest evaluation

Metrics are the keys of an evaluation summary (``loss``, ``task_score``, ``refusal_rate``,
``over_refusal_rate``, ``task.<metric>`` for each task metric, ``tool_calls.<metric>`` for the
tool-call check (``tool_calls.valid_arguments_rate``, ``tool_calls.parse_rate``, ...), ``suites.<suite>.pass_rate``,
and ``suites.<suite>.regressions``: the prompts of a regression suite that the production
version's answers pass and this version's fail, compared prompt by prompt); ``than`` is a number,
``base`` (the base's value in the same evaluation) or ``production`` (the production
version's own latest value). A gate whose numbers are missing fails and says which
evaluation would supply them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.core.atomic import write_text_atomic
from backend.core.spec_errors import explain
from backend.registry.errors import RegistryError

GATES_FILE = "gates.yaml"
_RULES: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_BASE_KEYS = {"loss": "base_loss", "task_score": "base_task_score", "refusal_rate": "base_refusal_rate"}
_NEEDS = {
    "refusal_rate": "an evaluation with the refusal check (refusal_check: true)",
    "over_refusal_rate": "an evaluation with the refusal check (refusal_check: true)",
    "loss": "an evaluation with held-out data",
}


class Gate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(min_length=1, description="An evaluation summary key, or task.<metric>.")
    rule: Literal["<=", ">=", "<", ">"]
    than: float | Literal["base", "production"]
    margin: float = Field(0.0, description="Added to the reference value (a number, or base's or production's).")

    def describe(self) -> str:
        margin = f" {self.margin:+g}" if self.margin else ""
        return f"{self.metric} {self.rule} {self.than}{margin}"


class Gates(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gates: list[Gate] = Field(default_factory=list)


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    passed: bool
    value: float | None
    reference: float | None
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate.describe(),
            "passed": self.passed,
            "value": self.value,
            "reference": self.reference,
            "why": self.why,
        }


def read_gates(adapter_root: Path) -> Gates:
    path = adapter_root / GATES_FILE
    if not path.is_file():
        return Gates()
    return parse_gates(path.read_text(encoding="utf-8"), str(path))


def parse_gates(text: str, where: str) -> Gates:
    try:
        data = yaml.safe_load(text) or {}
        return Gates.model_validate(data)
    except yaml.YAMLError as exc:
        raise RegistryError(f"{where} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(explain(exc, Gates))
        raise RegistryError(
            f"{where} has gates LoRA Studio cannot read: {problems}",
            "See docs/registry.md#release-gates for the form of a gate.",
        ) from None


def write_gates(adapter_root: Path, gates: Gates) -> None:
    write_text_atomic(adapter_root / GATES_FILE, yaml.safe_dump(gates.model_dump(), sort_keys=False))


def _value(summary: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("task."):
        value = (summary.get("task") or {}).get(metric.removeprefix("task."))
    elif metric.startswith("tool_calls."):
        value = (summary.get("tool_calls") or {}).get(metric.removeprefix("tool_calls."))
    elif metric.startswith("suites."):
        suite, _, key = metric.removeprefix("suites.").rpartition(".")
        value = ((summary.get("suites") or {}).get(suite) or {}).get(key)
    else:
        value = summary.get(metric)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _regressions(summary: dict[str, Any], production: dict[str, Any], suite: str) -> tuple[int, str] | None:
    """Prompts of ``suite`` that production's answers passed and this version's fail, or None if not comparable."""
    mine = (summary.get("suites") or {}).get(suite) or {}
    theirs = (production.get("suites") or {}).get(suite) or {}
    if not mine.get("passed") or not theirs.get("passed") or mine.get("prompts") != theirs.get("prompts"):
        return None
    worse = [i for i, (a, b) in enumerate(zip(mine["passed"], theirs["passed"], strict=True)) if b and not a]
    listed = ", ".join(f"'{mine['prompts'][i][:40]}'" for i in worse[:3])
    return len(worse), listed


def _base_value(summary: dict[str, Any], metric: str) -> float | None:
    if metric.startswith("suites."):
        suite, _, key = metric.removeprefix("suites.").rpartition(".")
        value = ((summary.get("suites") or {}).get(suite) or {}).get(f"base_{key}")
        return float(value) if isinstance(value, int | float) else None
    if metric.startswith("task."):
        value = (summary.get("base_task") or {}).get(metric.removeprefix("task."))
        return float(value) if isinstance(value, int | float) else None
    if metric.startswith("tool_calls."):
        value = (summary.get("base_tool_calls") or {}).get(metric.removeprefix("tool_calls."))
        return float(value) if isinstance(value, int | float) else None
    return _value(summary, _BASE_KEYS.get(metric, f"base_{metric}"))


def check(gates: Gates, summary: dict[str, Any] | None, production: dict[str, Any] | None) -> list[GateResult]:
    """Each gate against ``summary`` (the version's latest evaluation) and the production version's."""
    results = []
    for gate in gates.gates:
        if summary is None:
            results.append(GateResult(gate, False, None, None, "the version has not been evaluated"))
            continue
        if gate.metric.startswith("suites.") and gate.metric.endswith(".regressions"):
            results.append(_regression_gate(gate, summary, production))
            continue
        value = _value(summary, gate.metric)
        if gate.than == "base":
            reference = _base_value(summary, gate.metric)
            source = "the base"
        elif gate.than == "production":
            reference = _value(production, gate.metric) if production else None
            source = "the production version"
        else:
            reference, source = float(gate.than), "the threshold"
        if value is None:
            need = _NEEDS.get(gate.metric) or (
                "an evaluation whose held-out examples carry tools and tool calls"
                if gate.metric.startswith("tool_calls.")
                else "an evaluation that measures it"
            )
            results.append(GateResult(gate, False, None, reference, f"{gate.metric} was not measured: run {need}"))
            continue
        if reference is None:
            if gate.than == "production" and production is None:
                results.append(GateResult(gate, True, value, None, "no version is in production yet"))
            else:
                results.append(GateResult(gate, False, value, None, f"{source}'s {gate.metric} was not measured"))
            continue
        bound = reference + gate.margin
        passed = _RULES[gate.rule](value, bound)
        why = f"{gate.metric} is {value:.4g}; {source}'s is {reference:.4g}" + (
            f", so the bound is {bound:.4g}" if gate.margin else ""
        )
        results.append(GateResult(gate, passed, value, reference, why))
    return results


def _regression_gate(gate: Gate, summary: dict[str, Any], production: dict[str, Any] | None) -> GateResult:
    """``suites.<name>.regressions``: prompts the production version passes and this one fails."""
    suite = gate.metric.removeprefix("suites.").removesuffix(".regressions")
    if production is None:
        return GateResult(gate, True, None, None, "no version is in production yet")
    found = _regressions(summary, production, suite)
    if found is None:
        why = f"the suite '{suite}' was not run on both this version and production with the same prompts"
        return GateResult(gate, False, None, None, why + ": evaluate both with it")
    count, listed = found
    bound = (float(gate.than) if isinstance(gate.than, int | float) else 0.0) + gate.margin
    passed = _RULES[gate.rule](count, bound)
    why = f"{count} prompt(s) of '{suite}' pass in production but fail here" + (f": {listed}" if count else "")
    return GateResult(gate, passed, float(count), 0.0, why)
