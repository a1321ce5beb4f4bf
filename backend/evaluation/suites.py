"""Regression suites: prompts a team keeps with the properties their answers must have.

A suite is a YAML file, kept per named adapter in the registry (``adapters suite NAME
SUITE --set FILE``) and reused by every version's evaluation::

    name: refunds
    prompts:
      - prompt: "A customer asks for a refund after 45 days. What do we say?"
        must_contain: ["30 days"]           # every text, case-insensitive
        must_not_contain: ["guarantee"]     # none of these
        must_match: "^(Sorry|Unfortunately)"  # a regular expression (search, case-insensitive)
        close_to_base: 0.3                  # ROUGE-L to the base's own answer at least this

Each model's answer to each prompt passes when it has every property asked; the report
lists, per suite and model, which prompts passed, and the adapter's record keeps the
pass rate and the per-prompt results so a gate can say "no prompt worse than production".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from backend.core.spec_errors import explain
from backend.evaluation.errors import EvaluationError
from backend.evaluation.task_metrics import score


class SuitePrompt(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1)
    must_contain: list[str] = Field(default_factory=list)
    must_not_contain: list[str] = Field(default_factory=list)
    must_match: str | None = None
    close_to_base: float | None = Field(None, ge=0, le=1)

    @field_validator("must_match")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"is not a regular expression Python can use ({exc})") from None
        return value


class Suite(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    prompts: list[SuitePrompt] = Field(min_length=1)


def read_suite(path: Path) -> Suite:
    try:
        return Suite.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise EvaluationError(f"The suite {path} cannot be read: {exc}.", error_type="data") from None
    except yaml.YAMLError as exc:
        raise EvaluationError(f"The suite {path} is not valid YAML: {exc}.", error_type="data") from None
    except ValidationError as exc:
        problems = "; ".join(explain(exc, Suite))
        raise EvaluationError(f"The suite {path} cannot be used: {problems}.", error_type="data") from None


def failures(item: SuitePrompt, answer: str, base_answer: str | None) -> list[str]:
    """The properties ``answer`` lacks, in words; empty when it passes."""
    text = answer.casefold()
    missing = [f"does not contain '{t}'" for t in item.must_contain if t.casefold() not in text]
    missing += [f"contains '{t}'" for t in item.must_not_contain if t.casefold() in text]
    if item.must_match and not re.search(item.must_match, answer, re.IGNORECASE):
        missing.append(f"does not match {item.must_match!r}")
    if item.close_to_base is not None and base_answer is not None:
        closeness = score(answer, base_answer)["rouge_l"]
        if closeness < item.close_to_base:
            missing.append(f"strays from the base's answer (ROUGE-L {closeness:.2f} < {item.close_to_base})")
    return missing


def check_suite(suite: Suite, answers: list[dict[str, str]], base_key: str) -> dict[str, Any]:
    """Per model: which prompts passed, the pass rate, and why each failure failed."""
    results: dict[str, Any] = {}
    for key in answers[0] if answers else []:
        per_prompt = [failures(item, a[key], a.get(base_key)) for item, a in zip(suite.prompts, answers, strict=True)]
        results[key] = {
            "passed": [not f for f in per_prompt],
            "pass_rate": sum(not f for f in per_prompt) / len(per_prompt),
            "why": [f for f in per_prompt],
        }
    return results
