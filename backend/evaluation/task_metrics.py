"""Task metrics: how close each model's answer comes to the held-out reference answer.

Loss says how surprised a model is by the reference; a lawyer wants to know whether the
answer is right. Each held-out prompt's answer is scored against its reference:

* ``exact``: the same text (surrounding white space aside);
* ``normalized``: the same after lower-casing, removing punctuation and articles and
  collapsing white space (the SQuAD normalization);
* ``field_match``: for structured references -- a JSON object, or ``key: value`` pairs
  separated by ``|`` or new lines -- the share of the reference's fields whose value the
  answer gives (normalized); absent for free text;
* ``rouge_l``: ROUGE-L F1 (Google's ``rouge-score``, with stemming) for free text;
* ``chrf``: chrF (``sacrebleu``), 0 to 1, which is kinder to inflections and other scripts.

``primary`` is the one number a table shows: the field match where the reference is
structured, else ROUGE-L. Averages skip examples where a metric does not apply.
"""

from __future__ import annotations

import json
import re
import statistics
import string
from functools import cache
from typing import Any

METRICS = ("exact", "normalized", "field_match", "rouge_l", "chrf")
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.IGNORECASE)
_PAIR = re.compile(r"^\s*([^:|\n]{1,60}?)\s*:\s*(.+?)\s*$")


def normalize(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _key(text: str) -> str:
    return " ".join(text.lower().replace("_", " ").split())


def fields(text: str) -> dict[str, str] | None:
    """The fields of a structured reply (a JSON object, or ``key: value`` pairs), or None for free text."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            data = None
        if isinstance(data, dict) and data:
            return {
                _key(str(k)): normalize(json.dumps(v) if isinstance(v, dict | list) else str(v))
                for k, v in data.items()
            }
    parts = [p for p in re.split(r"\||\n", stripped) if p.strip()]
    pairs = [_PAIR.match(p) for p in parts]
    if len(parts) >= 2 and all(pairs):
        return {_key(m.group(1)): normalize(m.group(2)) for m in pairs if m}
    return None


@cache
def _rouge() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def score(answer: str, reference: str) -> dict[str, float]:
    """Every metric that applies to this pair, each from 0 (nothing right) to 1 (all right)."""
    import sacrebleu

    scores = {
        "exact": float(answer.strip() == reference.strip()),
        "normalized": float(normalize(answer) == normalize(reference)),
        "rouge_l": _rouge().score(reference, answer)["rougeL"].fmeasure,
        "chrf": sacrebleu.sentence_chrf(answer, [reference]).score / 100.0,
    }
    wanted = fields(reference)
    if wanted:
        given = fields(answer) or {}
        scores["field_match"] = sum(given.get(key) == value for key, value in wanted.items()) / len(wanted)
    scores["primary"] = scores.get("field_match", scores["rouge_l"])
    return scores


def mean_scores(per_example: list[dict[str, float]]) -> dict[str, float]:
    """The mean of each metric over the examples it applies to, with ``examples`` counted."""
    means: dict[str, float] = {"examples": float(len(per_example))}
    for metric in (*METRICS, "primary"):
        values = [s[metric] for s in per_example if metric in s]
        if values:
            means[metric] = statistics.fmean(values)
    return means
